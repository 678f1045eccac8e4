import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { SqlClient, SqlError } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import type { Fragment } from "@effect/sql/Statement"
import { Config, Data, Duration, Effect, Layer, ParseResult, Redacted, Schedule, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseUnavailable, PersistenceError } from "../domain/Errors.js"

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

/** Where a Postgres URL points, for messages: never its password. */
export interface PgAddress {
  readonly host: string
  readonly port: string
  readonly database: string
  readonly user: string
}

/**
 * The address a `postgres://` or `postgresql://` URL names, with libpq's defaults (PGHOST, PGPORT,
 * PGDATABASE, PGUSER, then localhost:5432 and the user's name); undefined if it is no such URL.
 */
export const pgAddress = (url: string): PgAddress | undefined => {
  if (!/^postgres(ql)?:\/\//i.test(url)) return undefined
  try {
    const parsed = new URL(url)
    const param = (name: string) => parsed.searchParams.get(name) ?? undefined
    const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name])
    const user = decodeURIComponent(parsed.username) || param("user") || env("PGUSER") || os.userInfo().username
    return {
      host: parsed.hostname.replace(/^\[(.*)\]$/, "$1") || param("host") || env("PGHOST") || "localhost",
      port: parsed.port || param("port") || env("PGPORT") || "5432",
      database: decodeURIComponent(parsed.pathname.slice(1)) || param("dbname") || env("PGDATABASE") || user,
      user
    }
  } catch {
    return undefined
  }
}

/** The URL as it may be shown: without its password. */
export const pgDisplay = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = ""
    return parsed.toString()
  } catch {
    return "a Postgres URL"
  }
}

/** Connection failures as a person reads them; the driver's own text for anything the server said. */
const connectReasons: Record<string, string> = {
  ECONNREFUSED: "connection refused (no server listening there)",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "the host name cannot be resolved now",
  ETIMEDOUT: "no answer (timed out)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "the server closed the connection"
}

const connectTimeout = Duration.seconds(10)

const reasonOf = (error: SqlError.SqlError, secret: string) => {
  const cause = error.cause
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : ""
  const text = connectReasons[code] ??
    (cause instanceof Error && cause.message === "Connection timed out"
      ? `no answer within ${Duration.format(connectTimeout)}`
      : cause instanceof Error && cause.message !== ""
      ? cause.message
      : error.message)
  const oneLine = text.replace(/\s+/g, " ").trim()
  return secret === "" ? oneLine : oneLine.replaceAll(secret, "***")
}

/**
 * A Postgres database, `postgres://user:password@host:port/name`. Connecting is checked when the layer is
 * built: a server that cannot be reached, a refused login or a missing database fail it with one
 * `DatabaseUnavailable`. BIGINT results (COUNT, SUM, BIGSERIAL keys) come back as text, exact to 64 bits:
 * read them with `Int`.
 */
export const layerPg = (url: string | Redacted.Redacted<string>): Layer.Layer<SqlClient.SqlClient, DatabaseUnavailable> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const text = Redacted.isRedacted(url) ? Redacted.value(url) : url
    const address = pgAddress(text)
    const where = address ?? { host: "?", port: "?", database: "?" }
    const unavailable = (reason: string) => new DatabaseUnavailable({ host: where.host, port: where.port, database: where.database, reason })
    if (address === undefined) return Layer.fail(unavailable("not a postgres:// or postgresql:// URL"))
    const secret = (() => {
      try {
        return decodeURIComponent(new URL(text).password)
      } catch {
        return ""
      }
    })()
    return PgClient.layer({ url: Redacted.make(text), applicationName: "autopilot", connectTimeout }).pipe(
      Layer.mapError((error) => unavailable(reasonOf(error, secret)))
    )
  }))

/** Why a row does not decode, as one line: what a store's "does not decode" error says after its row's name. */
export const decodeError = (e: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(e).replace(/\s+/g, " ")

/** An integer column or aggregate as read: a number from SQLite, text from Postgres for a BIGINT. */
export const Int = Schema.Union(Schema.Number, Schema.NumberFromString)

/** A floating-point column: SQLite's REAL is 8 bytes, Postgres's only 4. */
export const doubleType = (sql: SqlClient.SqlClient): Fragment =>
  sql.onDialectOrElse({ pg: () => sql.literal("DOUBLE PRECISION"), orElse: () => sql.literal("REAL") })

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

/** The advisory lock of one store's migrations on Postgres: a fixed pair of keys, the second the table's. */
const lockKeys = (table: string) => {
  let hash = 0x811c9dc5
  for (const char of table) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193)
  return [0x61757470, hash | 0] as const
}

/**
 * Inside a transaction, waits for any other transaction holding `key` to end, and holds it until this one
 * ends: Postgres's transaction-level advisory lock. SQLite writes one transaction at a time already.
 */
export const lockUntilCommit = (sql: SqlClient.SqlClient, key: string): Effect.Effect<void, SqlError.SqlError> => {
  const [a, b] = lockKeys(key)
  return sql.onDialectOrElse({ pg: () => Effect.asVoid(sql`SELECT pg_advisory_xact_lock(${a}, ${b})`), orElse: () => Effect.void })
}

/**
 * Runs `effect` (a migration of tables the stores do not own, such as the cluster's) while no other
 * process runs one under the same name: on Postgres holding its advisory lock on a connection of its own
 * (the effect's statements may use any other); on SQLite as it is, where a writer waits for another's lock.
 */
export const exclusively = (name: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | PersistenceError, R | SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.onDialectOrElse({
      pg: () => {
        const [classKey, objectKey] = lockKeys(name)
        return Effect.scoped(Effect.gen(function*() {
          const connection = yield* refail(sql.reserve)
          yield* Effect.acquireRelease(
            refail(connection.executeRaw(`SELECT pg_advisory_lock(${classKey}, ${objectKey})`, [])),
            () => Effect.ignore(connection.executeRaw(`SELECT pg_advisory_unlock(${classKey}, ${objectKey})`, []))
          )
          return yield* effect
        }))
      },
      orElse: () => effect
    }))

/** Migrations another process has recorded as begun, but not yet committed. */
class Unfinished extends Data.TaggedError("Unfinished") {}

/**
 * Runs one store's migrations, recorded in its own table: each concept owns its schema. Released
 * migrations are never edited; the first of each creates its tables only if missing, so a database made
 * before the stores were split is adopted as it is.
 *
 * Two processes booting together on an empty database must not race. On Postgres the migrations run in
 * one transaction holding an advisory lock (the Migrator's own lock needs its table to exist, which is
 * the race). On SQLite a writer waits for another's lock, and when the Migrator gives way to another
 * process ("already running"), the migrations are checked to be there, and waited for if not.
 */
export const migrate = (table: string, migrations: Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const run = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table })
    const latest = Math.max(0, ...Object.keys(migrations).map((name) => Number(/^(\d+)_/.exec(name)?.[1] ?? 0)))
    yield* sql.onDialectOrElse({
      pg: () => {
        const [classKey, objectKey] = lockKeys(table)
        return sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(${classKey}, ${objectKey})`
          yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
            migration_id integer PRIMARY KEY,
            created_at timestamp with time zone NOT NULL DEFAULT now(),
            name text NOT NULL
          )`
          yield* run
        }))
      },
      orElse: () =>
        run.pipe(
          Effect.zipRight(sql<{ id: number | null }>`SELECT MAX(migration_id) AS id FROM ${sql(table)}`),
          Effect.filterOrFail((rows) => Number(rows[0]?.id ?? 0) >= latest, () => new Unfinished()),
          Effect.retry({
            schedule: whileBusy,
            while: (error) => error._tag === "Unfinished" || (error instanceof SqlError.SqlError && isBusy(error.cause))
          })
        )
    })
  }).pipe(Effect.orDie)

/**
 * What the database itself says of its health, as a list of problems (empty: sound). SQLite checks every
 * page, index and constraint (`PRAGMA integrity_check`); Postgres keeps its pages' checksums itself and
 * reports what a crash can leave behind at this level: an index left invalid (a build that never finished).
 */
export const integrity: Effect.Effect<ReadonlyArray<string>, PersistenceError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql.onDialectOrElse({
      pg: () =>
        sql<{ readonly name: string }>`SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid OR NOT indisready`.pipe(
          Effect.map((rows) => rows.map((r) => `index ${r.name} is invalid`))
        ),
      orElse: () =>
        sql<{ readonly integrity_check: string }>`PRAGMA integrity_check`.pipe(
          Effect.map((rows) => rows.map((r) => r.integrity_check).filter((line) => line !== "ok"))
        )
    })
).pipe(refail)

/**
 * The bytes the database's data takes: SQLite's pages in use as this connection sees them (its WAL's
 * included, its free pages not), Postgres's size of the database. What "bytes per iteration" is measured in:
 * the files' sizes would move with WAL checkpoints, not with what was written.
 */
export const size: Effect.Effect<number, PersistenceError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql.onDialectOrElse({
      pg: () => sql<{ readonly size: string | number }>`SELECT pg_database_size(current_database()) AS size`.pipe(Effect.map((rows) => Number(rows[0]!.size))),
      orElse: () =>
        sql<{ readonly size: number }>`SELECT (page_count - freelist_count) * page_size AS size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()`.pipe(
          Effect.map((rows) => Number(rows[0]!.size))
        )
    })
).pipe(refail)
