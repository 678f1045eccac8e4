import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import { FiringRecord, type FiringRef, type FiringStatus } from "../domain/Firing.js"
import * as Database from "./Database.js"

const migrations = {
  "0001_mission_firings": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS mission_firings (
      mission_id TEXT NOT NULL,
      slot TEXT NOT NULL,
      kind TEXT NOT NULL,
      run_id TEXT NOT NULL,
      status TEXT NOT NULL,
      fired_at TEXT NOT NULL,
      ended_at TEXT NULL,
      reason TEXT NULL,
      PRIMARY KEY (mission_id, slot)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS mission_firings_by_status ON mission_firings (mission_id, status)`
  })
}

const columns = "mission_id, slot, kind, run_id, status, fired_at, ended_at, reason"

const decodeRecord = Schema.decodeUnknown(FiringRecord)

const recordOf = (row: unknown) =>
  decodeRecord(row).pipe(Effect.mapError((error) =>
    new PersistenceError({
      message: `a firing of mission ${String((row as { mission_id?: unknown }).mission_id)} in the database does not decode: ${Database.decodeError(error)}`,
      busy: false
    })
  ))

/**
 * The firings of scheduled missions, one row per (mission, slot): a slot is claimed by inserting its row,
 * so it fires once across every process and machine sharing the database. Slots are ISO times in UTC of
 * one format, so their text sorts as time does.
 */
export class FiringStore extends Context.Tag("autopilot/FiringStore")<
  FiringStore,
  {
    /**
     * Claims a slot of a mission, as `running`: the row written, or none when the slot was claimed
     * already or another firing of the mission is still running (firings of a mission never overlap).
     */
    readonly claim: (missionId: string, firing: FiringRef, firedAt: string) => Effect.Effect<Option.Option<FiringRecord>, PersistenceError>
    readonly get: (missionId: string, slot: string) => Effect.Effect<Option.Option<FiringRecord>, PersistenceError>
    /** The mission's firings, latest slot first; `limit` 0 for all. */
    readonly recent: (missionId: string, limit: number) => Effect.Effect<ReadonlyArray<FiringRecord>, PersistenceError>
    /** Sets a firing's status, when it ended and why (null while it runs again). False when there is no such firing. */
    readonly mark: (
      missionId: string,
      slot: string,
      status: FiringStatus,
      ended: { readonly at: string; readonly reason: string | null } | null
    ) => Effect.Effect<boolean, PersistenceError>
    /** Forgets a claim whose run never started, as if it had never been made. */
    readonly release: (missionId: string, slot: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_firings_migrations", migrations)

  const text = (value: string) => sql`CAST(${value} AS TEXT)`

  return FiringStore.of({
    // One statement, so two claimers cannot both see the mission idle: the insert is the decision.
    claim: (missionId, firing, firedAt) =>
      sql`INSERT INTO mission_firings (${sql.literal(columns)})
        SELECT ${text(missionId)}, ${text(firing.slot)}, ${text(firing.kind)}, ${text(firing.run_id)}, ${text("running")}, ${text(firedAt)}, NULL, NULL
        WHERE NOT EXISTS (SELECT 1 FROM mission_firings WHERE mission_id = ${missionId} AND status = ${"running"})
        ON CONFLICT (mission_id, slot) DO NOTHING
        RETURNING ${sql.literal(columns)}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => (rows.length === 0 ? Effect.succeedNone : Effect.asSome(recordOf(rows[0]))))
      ),
    get: (missionId, slot) =>
      sql`SELECT ${sql.literal(columns)} FROM mission_firings WHERE mission_id = ${missionId} AND slot = ${slot}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => (rows.length === 0 ? Effect.succeedNone : Effect.asSome(recordOf(rows[0]))))
      ),
    recent: (missionId, limit) =>
      sql`SELECT ${sql.literal(columns)} FROM mission_firings WHERE mission_id = ${missionId} ORDER BY slot DESC ${
        limit > 0 ? sql`LIMIT ${limit}` : sql``
      }`.pipe(Database.refail, Effect.flatMap((rows) => Effect.forEach(rows, recordOf))),
    mark: (missionId, slot, status, ended) =>
      sql`UPDATE mission_firings SET ${sql.update({ status, ended_at: ended?.at ?? null, reason: ended?.reason ?? null })}
        WHERE mission_id = ${missionId} AND slot = ${slot} RETURNING mission_id`.pipe(
        Database.refail,
        Effect.map((rows) => rows.length > 0)
      ),
    release: (missionId, slot) =>
      sql`DELETE FROM mission_firings WHERE mission_id = ${missionId} AND slot = ${slot}`.pipe(Database.refail, Effect.asVoid)
  })
})

export const layer = Layer.effect(FiringStore, make)
