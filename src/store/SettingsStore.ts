import { SqlClient } from "@effect/sql"
import { Context, DateTime, Effect, Layer, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { AutopilotStatus, ServiceTier } from "../domain/AutopilotSettings.js"
import { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  // One row (id 1): the settings of the instance this database is.
  "0001_autopilot_settings": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS autopilot_settings (
      id INTEGER PRIMARY KEY,
      enabled INTEGER NOT NULL,
      tier TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`
  })
}

const Row = Schema.Struct({
  enabled: Schema.Number,
  tier: ServiceTier,
  instance_id: Schema.String
})

const decodeRow = Schema.decodeUnknown(Row)

/** Whether autopilot takes new goals, its service tier and its instance id. */
export class SettingsStore extends Context.Tag("autopilot/SettingsStore")<
  SettingsStore,
  {
    /** The settings; a database that has none yet gets the defaults: enabled, tier anonymous, a new instance id. */
    readonly load: () => Effect.Effect<AutopilotStatus, PersistenceError>
    /** Sets `enabled` and `tier`; the instance id never changes. */
    readonly save: (settings: { readonly enabled: boolean; readonly tier: ServiceTier }) => Effect.Effect<AutopilotStatus, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_settings_migrations", migrations)

  const now = Effect.map(DateTime.now, DateTime.formatIso)

  // Two processes may both find no row: the first insert wins and both read the same instance id back.
  const ensure = Effect.gen(function*() {
    const row = {
      id: 1,
      enabled: 1,
      tier: "anonymous" satisfies ServiceTier,
      // node:crypto, not effect's Random: that one is seeded with 32 bits, too few for an id meant to be unique.
      instance_id: randomBytes(16).toString("hex"),
      updated_at: yield* now
    }
    yield* sql`INSERT INTO autopilot_settings ${sql.insert(row)} ON CONFLICT (id) DO NOTHING`
  })

  const read = sql`SELECT enabled, tier, instance_id FROM autopilot_settings WHERE id = 1`.pipe(
    Effect.flatMap((rows) => rows.length === 0 ? Effect.zipRight(ensure, sql`SELECT enabled, tier, instance_id FROM autopilot_settings WHERE id = 1`) : Effect.succeed(rows)),
    Database.refail,
    Effect.flatMap((rows) => decodeRow(rows[0])),
    Effect.map((row) => new AutopilotStatus({ enabled: row.enabled !== 0, tier: row.tier, instance_id: row.instance_id })),
    Effect.catchTag("ParseError", (error) =>
      new PersistenceError({ message: `the autopilot settings in the database do not decode: ${Database.decodeError(error)}`, busy: false }))
  )

  return SettingsStore.of({
    load: () => read,
    save: ({ enabled, tier }) =>
      Effect.gen(function*() {
        yield* read
        yield* sql`UPDATE autopilot_settings SET ${sql.update({ enabled: enabled ? 1 : 0, tier, updated_at: yield* now })} WHERE id = 1`.pipe(Database.refail)
        return yield* read
      })
  })
})

export const layer = Layer.effect(SettingsStore, make)
