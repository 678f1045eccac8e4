import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"
import type { Raw } from "./RunStore.js"

const migrations = {
  "0001_quarantine": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS quarantine (
      id ${Database.serialKey(sql)},
      run_id TEXT NOT NULL,
      state ${Database.bytesType(sql)} NOT NULL,
      error TEXT NOT NULL,
      quarantined_at TEXT NOT NULL
    )`
  }),
  // Steps too: a run rebuilt from its history must not trip over a corrupt step newer than the one it
  // continues from.
  "0002_steps": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE quarantine ADD COLUMN source TEXT NOT NULL DEFAULT 'checkpoint'`
    yield* sql`ALTER TABLE quarantine ADD COLUMN iteration INTEGER NULL`
  })
}

/** Rows that no longer decode, moved aside bytes intact instead of being dropped or overwritten. */
export class QuarantineStore extends Context.Tag("autopilot/QuarantineStore")<
  QuarantineStore,
  {
    /**
     * Moves a run's checkpoint row here if it is still `expected`; the quarantine row's id, or none if
     * the row changed meanwhile.
     */
    readonly checkpoint: (options: {
      readonly runId: string
      readonly expected: Raw
      readonly error: string
      readonly at: string
    }) => Effect.Effect<Option.Option<number>, PersistenceError>
    /** Moves every step of a run after `iteration` here; the iterations moved. */
    readonly stepsAfter: (options: {
      readonly runId: string
      readonly iteration: number
      readonly error: string
      readonly at: string
    }) => Effect.Effect<ReadonlyArray<number>, PersistenceError>
    /** Every quarantined row of a run, for a run that is deleted. */
    readonly remove: (runId: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_quarantine_migrations", migrations)

  return QuarantineStore.of({
    checkpoint: ({ at, error, expected, runId }) =>
      sql<{ id: number }>`
        INSERT INTO quarantine (run_id, state, error, quarantined_at)
        SELECT run_id, ${Database.asBytes(sql, "state")}, ${error}, ${at}
        FROM checkpoints WHERE run_id = ${runId} AND state = ${expected}
        RETURNING id
      `.pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => Number(row.id))), Database.refail),
    stepsAfter: ({ at, error, iteration, runId }) =>
      Effect.gen(function*() {
        const moved = yield* sql<{ iteration: number }>`
          INSERT INTO quarantine (run_id, state, error, quarantined_at, source, iteration)
          SELECT run_id, ${Database.asBytes(sql, "body")}, ${error}, ${at}, 'step', iteration
          FROM steps WHERE run_id = ${runId} AND iteration > ${iteration}
          RETURNING iteration
        `
        if (moved.length > 0) yield* sql`DELETE FROM steps WHERE run_id = ${runId} AND iteration > ${iteration}`
        return moved.map((row) => Number(row.iteration)).sort((a, b) => a - b)
      }).pipe(Database.refail),
    remove: (runId) => sql`DELETE FROM quarantine WHERE run_id = ${runId}`.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer = Layer.effect(QuarantineStore, make)
