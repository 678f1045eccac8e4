import { SqliteClient } from "@effect/sql-sqlite-node"
import { SqlClient } from "@effect/sql"
import { Config, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { migrate } from "./Migrations.js"

/**
 * One SQLite file in WAL mode, migrated on open. `synchronous = NORMAL` keeps every commit safe from a
 * process crash (kill -9) at a fraction of the cost of an fsync per iteration; set
 * AUTOPILOT_DB_SYNC=FULL to also survive power loss without losing the last commits.
 */
export const layer = (filename: string) =>
  Layer.effectDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const synchronous = yield* Config.literal("NORMAL", "FULL")("AUTOPILOT_DB_SYNC").pipe(Config.withDefault("NORMAL"))
      yield* sql.unsafe(`PRAGMA synchronous = ${synchronous}`)
      yield* sql`PRAGMA busy_timeout = 5000`
      yield* migrate
    }).pipe(Effect.orDie)
  ).pipe(
    Layer.provideMerge(
      Layer.suspend(() => {
        if (filename !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
        return SqliteClient.layer({ filename })
      })
    )
  )
