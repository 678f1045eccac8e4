import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  "0001_deltas": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS deltas (
      id ${Database.serialKey(sql)},
      run_id TEXT NOT NULL,
      iteration INTEGER NOT NULL,
      purpose TEXT NOT NULL,
      text TEXT NOT NULL,
      at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS deltas_run ON deltas (run_id, id)`
  })
}

/** Text a model call of a run wrote, as the process running the run received it. */
export interface DeltaRow {
  readonly run_id: string
  readonly iteration: number
  readonly purpose: string
  readonly text: string
  /** When it was written: ISO-8601 UTC. */
  readonly at: string
}

/** A row with its place among all rows written: the order the text was written in. */
export interface StoredDelta extends DeltaRow {
  readonly id: number
}

const Row = Schema.Struct({
  id: Database.Int,
  run_id: Schema.String,
  iteration: Database.Int,
  purpose: Schema.String,
  text: Schema.String,
  at: Schema.String
})
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))

/**
 * The live text of running runs, for processes that did not run them (the API server). Only what is being
 * written now: a run's rows go when the step they belong to is committed, when the run ends, and after
 * an hour whatever a crashed writer left behind.
 */
export class DeltaStore extends Context.Tag("autopilot/DeltaStore")<
  DeltaStore,
  {
    readonly append: (rows: ReadonlyArray<DeltaRow>) => Effect.Effect<void, PersistenceError>
    /** A run's rows in the order written, after the given row id (0 for all). */
    readonly after: (runId: string, afterId: number) => Effect.Effect<ReadonlyArray<StoredDelta>, PersistenceError>
    /** A run's rows of the iterations `from` to `through` (both included); all of them without a range. */
    readonly remove: (
      runId: string,
      iterations?: { readonly from: number; readonly through: number }
    ) => Effect.Effect<void, PersistenceError>
    /** Every run's rows written before `before` (ISO-8601): what writers that died left behind. */
    readonly expire: (before: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_deltas_migrations", migrations)

  return DeltaStore.of({
    append: (rows) => Database.inSlices(rows, (slice) => sql`INSERT INTO deltas ${sql.insert(slice.map((row) => ({ ...row })))}`).pipe(Effect.asVoid, Database.refail),
    after: (runId, afterId) =>
      sql`SELECT id, run_id, iteration, purpose, text, at FROM deltas WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id`.pipe(
        Effect.flatMap(decodeRows),
        Effect.map((rows) => rows as ReadonlyArray<StoredDelta>),
        // A row that does not decode fails the read, as the database failing would: the feed tries again.
        Effect.catchTag("ParseError", (error) => Effect.fail(new PersistenceError({ message: `a live-text row of run ${runId} does not decode: ${error.message}`, busy: false }))),
        Effect.catchTag("SqlError", (error) => Database.refail(Effect.fail(error)))
      ),
    remove: (runId, iterations) =>
      (iterations === undefined
        ? sql`DELETE FROM deltas WHERE run_id = ${runId}`
        : sql`DELETE FROM deltas WHERE run_id = ${runId} AND iteration >= ${iterations.from} AND iteration <= ${iterations.through}`).pipe(
          Effect.asVoid,
          Database.refail
        ),
    expire: (before) => sql`DELETE FROM deltas WHERE at < ${before}`.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer = Layer.effect(DeltaStore, make)
