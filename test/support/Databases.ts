import { SqlClient } from "@effect/sql"
import { type Context, Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, inject } from "vitest"
import * as Database from "../../src/store/Database.js"
import * as Postgres from "../../scripts/lib/postgres.js"

/**
 * The databases every store suite runs over: SQLite in memory, and the Postgres server the global setup
 * started (test/support/postgres-global.ts). Each build of a database's layer is a database of its own,
 * as fresh as `:memory:`: on Postgres a new database, dropped when the layer is released, so no two
 * tests (nor two test files running at once) ever share a table.
 */
export interface TestDatabase {
  readonly name: "sqlite" | "postgres"
  readonly layer: Layer.Layer<SqlClient.SqlClient>
  /**
   * A fresh database that outlives one connection (a SQLite file, a Postgres database), gone when the
   * scope closes: each build of the layer given is a connection of its own, as another process would open.
   */
  readonly shared: Effect.Effect<Layer.Layer<SqlClient.SqlClient>, never, Scope.Scope>
  /** Why this database's half of a suite is skipped: no server could be started. */
  readonly skipped?: string | undefined
}

const provided = inject("postgres")

/** The server the tests use, and why there is none. */
export const postgresServer: { readonly url: string } | { readonly unavailable: string } = provided

/** A new, empty database on the test server, dropped (whoever is still connected) when the scope closes. */
export const freshPostgres = (serverUrl: string): Effect.Effect<string, never, Scope.Scope> => Postgres.freshDatabase(serverUrl, "autopilot_test")

/** For process tests: a fresh database's URL, and how to drop it. */
export const createPostgres = (serverUrl: string): Promise<{ readonly url: string; readonly drop: () => Promise<void> }> =>
  Postgres.createDatabase(serverUrl, "autopilot_test")

const sqliteFile = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-db-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => Database.layerSqlite(path.join(dir, "a.db"))))

export const sqlite: TestDatabase = { name: "sqlite", layer: Database.layerSqlite(":memory:"), shared: sqliteFile }

const noPostgres = (reason: string) => new Error(`no Postgres: ${reason}`)

export const postgres: TestDatabase = "url" in provided
  ? {
    name: "postgres",
    layer: Layer.unwrapScoped(Effect.map(freshPostgres(provided.url), Database.layerPg)).pipe(Layer.orDie),
    shared: Effect.map(freshPostgres(provided.url), (url) => Layer.orDie(Database.layerPg(url)))
  }
  : {
    name: "postgres",
    layer: Layer.die(noPostgres(provided.unavailable)),
    shared: Effect.die(noPostgres(provided.unavailable)),
    skipped: provided.unavailable
  }

export const databases: ReadonlyArray<TestDatabase> = [sqlite, postgres]

/**
 * Registers `suite` once per database, each under a name saying which; the Postgres half, when no server
 * could be started, is registered skipped with the reason in its name, never passed in silence.
 */
export const eachDatabase = (name: string, suite: (database: TestDatabase) => void) => {
  for (const database of databases) {
    if (database.skipped === undefined) describe(`${name} [${database.name}]`, () => suite(database))
    else describe.skip(`${name} [${database.name}: SKIPPED, ${database.skipped}]`, () => suite(database))
  }
}

/** Registers tests that need the Postgres server itself (its URL); skipped, with the reason in the name, without one. */
export const onPostgres = (name: string, suite: (serverUrl: string) => void, options: { readonly concurrent?: boolean } = {}) => {
  if ("url" in postgresServer) (options.concurrent ? describe.concurrent : describe)(`${name} [postgres]`, () => suite(postgresServer.url))
  else describe.skip(`${name} [postgres: SKIPPED, ${postgresServer.unavailable}]`, () => suite(""))
}

/**
 * `layer` built once, by the first test of the enclosing describe that uses it, and released after its
 * last: for a property whose runs may share one database. Unlike `it.layer`, no test services are built
 * with it, so every run keeps a TestClock of its own.
 */
export const sharedLayer = <ROut>(layer: Layer.Layer<ROut>) => {
  const scope = Effect.runSync(Scope.make())
  const built = Effect.runSync(Effect.cached(Layer.buildWithScope(layer, scope)))
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, ROut>> =>
    Effect.flatMap(built, (context: Context.Context<ROut>) => Effect.provide(effect, context))
}
