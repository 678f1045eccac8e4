import { SqliteClient } from "@effect/sql-sqlite-node"
import { SqlClient, type SqlError } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import type { Fragment } from "@effect/sql/Statement"
import { Config, Effect, Layer, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { PersistenceError } from "../domain/Errors.js"

/**
 * The database the stores share, and everything about it that is not portable SQL: connection setup,
 * column types that differ per dialect, and which failures mean "busy, try again".
 */

/**
 * One SQLite file in WAL mode. `synchronous = NORMAL` keeps every commit safe from a process crash
 * (kill -9) at a fraction of the cost of an fsync per iteration; set AUTOPILOT_DB_SYNC=FULL to also
 * survive power loss without losing the last commits. Each store migrates its own tables when built.
 */
export const layerSqlite = (filename: string): Layer.Layer<SqlClient.SqlClient> =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const synchronous = yield* Config.literal("NORMAL", "FULL")("AUTOPILOT_DB_SYNC").pipe(Config.withDefault("NORMAL"))
      yield* sql.unsafe(`PRAGMA synchronous = ${synchronous}`)
      yield* sql`PRAGMA busy_timeout = 5000`
    }).pipe(Effect.orDie)
  ).pipe(
    Layer.provideMerge(
      Layer.suspend(() => {
        if (filename !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
        return SqliteClient.layer({ filename })
      })
    ),
    Layer.orDie
  )

/** A primary key the database numbers itself, in insertion order. */
export const serialKey = (sql: SqlClient.SqlClient): Fragment =>
  sql.onDialectOrElse({
    pg: () => sql.literal("BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT")
  })

/** A column of raw bytes. */
export const bytesType = (sql: SqlClient.SqlClient): Fragment =>
  sql.onDialectOrElse({ pg: () => sql.literal("BYTEA"), orElse: () => sql.literal("BLOB") })

/** A text column's value as raw bytes, copied inside the database so that even invalid UTF-8 survives. */
export const asBytes = (sql: SqlClient.SqlClient, column: string): Fragment =>
  sql.onDialectOrElse({
    pg: () => sql`convert_to(${sql(column)}, 'UTF8')`,
    orElse: () => sql`CAST(${sql(column)} AS BLOB)`
  })

/**
 * Writes `rows` a slice at a time: a statement holds at most 500 rows, far below both dialects' limits on
 * bound parameters (32,766 in SQLite, 65,535 in Postgres) for the few columns a row has here.
 */
export const inSlices = <A, B, E, R>(
  rows: ReadonlyArray<A>,
  write: (slice: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<B>, E, R>
): Effect.Effect<ReadonlyArray<B>, E, R> => {
  if (rows.length === 0) return Effect.succeed([])
  if (rows.length <= 500) return write(rows)
  const slices: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < rows.length; i += 500) slices.push(rows.slice(i, i + 500))
  return Effect.map(Effect.forEach(slices, write), (returned) => returned.flat())
}

/** Whether `table` exists, without creating anything: how a question asked of a new database writes nothing. */
export const hasTable = (table: string): Effect.Effect<boolean, PersistenceError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => sql`SELECT to_regclass(${table}) IS NOT NULL AS found`.pipe(Effect.map((rows) => rows[0]?.found === true)),
      orElse: () => sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ${table}`.pipe(Effect.map((rows) => rows.length > 0))
    })).pipe(refail)

/** SQLite's SQLITE_BUSY/LOCKED; Postgres's serialization failure, deadlock and lock timeout. */
const busyCodes = new Set(["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED", "40001", "40P01", "55P03"])

const isBusy = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause && busyCodes.has(String(cause.code))

const describe = (error: SqlError.SqlError) => {
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause === undefined || error.message.includes(cause) ? error.message : `${error.message}: ${cause}`
}

/**
 * A lock held past the busy timeout (another process writing, a backup), or a WAL snapshot gone stale
 * under a transaction that then wants to write, is waited out, up to a minute, rather than failing.
 */
export const whileBusy = Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")), Schedule.upTo("1 minute"))

/** Runs a whole transaction again while it fails because the database is busy. */
export const retryBusy = <A, E, R>(transaction: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(transaction, {
    schedule: whileBusy,
    while: (error) => error instanceof PersistenceError && error.busy
  })

/** Every store fails with one domain error, not the driver's. */
export const refail = <A, R>(effect: Effect.Effect<A, SqlError.SqlError, R>): Effect.Effect<A, PersistenceError, R> =>
  Effect.mapError(effect, (error) => new PersistenceError({ message: describe(error), busy: isBusy(error.cause) }))

/**
 * Runs one store's migrations, recorded in its own table: each concept owns its schema. Released
 * migrations are never edited; the first of each creates its tables only if missing, so a database made
 * before the stores were split is adopted as it is.
 */
export const migrate = (table: string, migrations: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>>) =>
  Migrator.make({})({ loader: Migrator.fromRecord(migrations), table }).pipe(Effect.orDie)
