import type { SqlClient } from "@effect/sql"
import { Config, Data, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { BadInput, type DatabaseUnavailable, type PersistenceError } from "../domain/Errors.js"
import { home } from "../domain/Home.js"
import * as Database from "./Database.js"

/**
 * The database a command works on: a SQLite file (the default), or a Postgres database, which several
 * processes on several machines can share.
 */
export type DatabaseTarget = Data.TaggedEnum<{
  Sqlite: { readonly file: string }
  Postgres: { readonly url: Redacted.Redacted<string> }
}>

export const DatabaseTarget = Data.taggedEnum<DatabaseTarget>()

const allowed = "a postgres:// or postgresql:// URL, e.g. postgres://user:password@host:5432/autopilot"

/** What was given, as it may be shown: a URL without its password, anything else as typed. */
const shown = (raw: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? Database.pgDisplay(raw) : raw)

/** A Postgres URL, or bad input naming where it came from (`--database`, a variable) and what is allowed. */
export const postgresUrl = (from: string, raw: string): Effect.Effect<DatabaseTarget, BadInput> =>
  Database.pgAddress(raw) === undefined
    ? Effect.fail(new BadInput({ message: `${from} must be ${allowed} (a SQLite file goes in ${from === "--database" ? "--db" : "AUTOPILOT_DB"}), got "${shown(raw)}"` }))
    : Effect.succeed(DatabaseTarget.Postgres({ url: Redacted.make(raw) }))

const variable = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.orDie,
    Effect.map(Option.filter((value) => value !== ""))
  )

/**
 * The target the flags and environment choose: `--database URL`, else `--db FILE`, else
 * `$AUTOPILOT_DATABASE_URL`, else `$AUTOPILOT_DB`, else `$AUTOPILOT_HOME/autopilot.db`. Both flags at
 * once is bad input: they name two databases.
 */
export const fromConfig = (given: { readonly file: Option.Option<string>; readonly url: Option.Option<string> }) =>
  Effect.gen(function*() {
    if (Option.isSome(given.file) && Option.isSome(given.url)) {
      return yield* new BadInput({ message: "--db and --database name two databases: give one (--db for a SQLite file, --database for a Postgres URL)" })
    }
    if (Option.isSome(given.url)) return yield* postgresUrl("--database", given.url.value)
    if (Option.isSome(given.file)) return DatabaseTarget.Sqlite({ file: path.resolve(given.file.value) })
    const url = yield* variable("AUTOPILOT_DATABASE_URL")
    if (Option.isSome(url)) return yield* postgresUrl("AUTOPILOT_DATABASE_URL", url.value)
    const file = yield* variable("AUTOPILOT_DB")
    if (Option.isSome(file)) return DatabaseTarget.Sqlite({ file: path.resolve(file.value) })
    return DatabaseTarget.Sqlite({ file: path.join(yield* Effect.orDie(home), "autopilot.db") })
  })

/** The one way a target becomes a database: a SQLite file is made, with its folders, if missing. */
export const layer = (target: DatabaseTarget): Layer.Layer<SqlClient.SqlClient, DatabaseUnavailable> =>
  DatabaseTarget.$match(target, {
    Sqlite: ({ file }) => Database.layerSqlite(file),
    Postgres: ({ url }) => Database.layerPg(url)
  })

/** The target as it may be shown: the file, or the URL without its password. */
export const describe = (target: DatabaseTarget): string =>
  DatabaseTarget.$match(target, {
    Sqlite: ({ file }) => file,
    Postgres: ({ url }) => Database.pgDisplay(Redacted.value(url))
  })

/**
 * Where runs' workspaces live (`<root>/workspaces/<run>`): beside a SQLite file, and under
 * `$AUTOPILOT_HOME` (default ~/.autopilot) for a Postgres database, which has no folder of its own.
 */
export const workspaceRoot = (target: DatabaseTarget): Effect.Effect<string> =>
  DatabaseTarget.$match(target, {
    Sqlite: ({ file }) => Effect.succeed(path.dirname(file)),
    Postgres: () => Effect.orDie(home)
  })

/**
 * `effect` on the target if it holds `table`, else `absent`: a question about something that is not
 * there creates nothing, neither a SQLite file nor a table. On SQLite this is also how a database that
 * does not exist stays so.
 */
export const whenHolds = <A, E, R, A2, E2>(
  target: DatabaseTarget,
  table: string,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A | A2, E | E2 | DatabaseUnavailable | PersistenceError, Exclude<R, SqlClient.SqlClient>> =>
  target._tag === "Sqlite" && !fs.existsSync(target.file)
    ? absent
    : Effect.provide(
      Effect.flatMap(Database.hasTable(table), (has): Effect.Effect<A | A2, E | E2, R> => (has ? effect : absent)),
      layer(target)
    )

/** Whether the target holds `table`, creating nothing. */
export const holds = (target: DatabaseTarget, table: string) => whenHolds(target, table, Effect.succeed(false), Effect.succeed(true))
