import { SqlClient } from "@effect/sql"
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
