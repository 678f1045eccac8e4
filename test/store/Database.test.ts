import { SqlClient } from "@effect/sql"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import { HarnessStore } from "../../src/harness/HarnessStore.js"
import * as Database from "../../src/store/Database.js"
import * as BlueprintCacheStore from "../../src/store/BlueprintCacheStore.js"
import * as MissionStore from "../../src/store/MissionStore.js"
import * as SettingsStore from "../../src/store/SettingsStore.js"
import * as Storage from "../../src/store/Storage.js"
import { eachDatabase } from "../support/Databases.js"

const Sqlite = createRequire(import.meta.url)("better-sqlite3")

/** Every store, so every migration: what a process builds when it boots. */
const everyStore = Layer.mergeAll(Storage.layer, HarnessStore.layer, MissionStore.layer, SettingsStore.layer, BlueprintCacheStore.layer)

const migrationTables = [
  "autopilot_runs_migrations",
  "autopilot_steps_migrations",
  "autopilot_events_migrations",
  "autopilot_quarantine_migrations",
  "autopilot_artifacts_migrations",
  "autopilot_harness_migrations",
  "autopilot_missions_migrations",
  "autopilot_settings_migrations",
  "autopilot_blueprint_cache_migrations"
]

eachDatabase("Database.migrate", (database) => {
  it.effect("processes booting together on an empty database all migrate it, each migration once", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 3; round++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const connection = yield* database.shared
          // Four connections of their own, as four processes would have, building every store at once.
          yield* Effect.all(Array.from({ length: 4 }, () => Layer.build(everyStore.pipe(Layer.provide(connection)))), { concurrency: "unbounded" })
          const counts = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.forEach(migrationTables, (table) =>
              Effect.map(sql<{ n: number; ids: number }>`SELECT COUNT(*) AS n, COUNT(DISTINCT migration_id) AS ids FROM ${sql(table)}`, (rows) =>
                [table, Number(rows[0]?.n), Number(rows[0]?.ids)] as const))).pipe(Effect.provide(connection))
          for (const [table, n, ids] of counts) assert.isTrue(n > 0 && n === ids, `${table}: ${n} rows, ${ids} migrations`)
        }))
      }
    }))
})

/**
 * The tables of the cluster the daemons form (messages, replies, runners, shard locks), made as a daemon
 * makes them. Without the lock, four at once on Postgres fail to create the same table.
 */
const clusterTables = Database.exclusively("cluster_storage")(
  Effect.scoped(Layer.build(Layer.mergeAll(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(Layer.provide(ShardingConfig.layerDefaults))))
)

eachDatabase("Database.exclusively", (database) => {
  it.effect("daemons booting together on an empty database make the cluster's tables once, none failing", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 3; round++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const connection = yield* database.shared
          yield* Effect.all(Array.from({ length: 4 }, () => Effect.provide(clusterTables, connection)), { concurrency: "unbounded" })
        }))
      }
    }))
})

eachDatabase("Database.size", (database) => {
  it.effect("grows with what is written, not with the files' slack", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`
      const before = yield* Database.size
      assert.isAbove(before, 0)
      yield* sql`INSERT INTO notes ${sql.insert(Array.from({ length: 500 }, (_, i) => ({ id: i + 1, body: "x".repeat(1000) })))}`
      const after = yield* Database.size
      // 500 KB of text, and whatever pages and headers hold it.
      assert.isAtLeast(after - before, 500_000)
    }).pipe(Effect.provide(database.layer)))
})

eachDatabase("Database.integrity", (database) => {
  it.effect("a sound database has no problem", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`
      yield* sql`CREATE INDEX notes_by_body ON notes (body)`
      yield* sql`INSERT INTO notes (id, body) VALUES (1, 'a'), (2, 'b'), (3, 'c')`
      assert.deepStrictEqual(yield* Database.integrity, [])
      // On Postgres, what a crash leaves at this level: an index whose build never finished.
      if (database.name === "postgres") {
        yield* sql`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'notes_by_body'::regclass`
        assert.deepStrictEqual(yield* Database.integrity, ["index notes_by_body is invalid"])
      }
    }).pipe(Effect.provide(database.layer)))
})

it.effect("SQLite: a torn index page is a problem the check names", () =>
  Effect.gen(function*() {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-integrity-")), "torn.db")
    const raw = new Sqlite(file)
    raw.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); CREATE INDEX notes_by_body ON notes (body)")
    const insert = raw.prepare("INSERT INTO notes (body) VALUES (?)")
    for (let i = 0; i < 200; i++) insert.run(`note ${i}`)
    const { rootpage } = raw.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'notes_by_body'").get() as { rootpage: number }
    const pageSize = (raw.pragma("page_size", { simple: true }) as number)
    raw.close()
    // The index's root page half overwritten, as a write torn by a power cut would leave it.
    const fd = fs.openSync(file, "r+")
    fs.writeSync(fd, Buffer.alloc(pageSize / 2, 0x5a), 0, pageSize / 2, (rootpage - 1) * pageSize + 8)
    fs.closeSync(fd)
    const problems = yield* Database.integrity.pipe(Effect.provide(Database.layerSqlite(file)))
    assert.isNotEmpty(problems)
  }))
