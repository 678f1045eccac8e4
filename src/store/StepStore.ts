import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import { Step } from "../domain/Step.js"
import * as Database from "./Database.js"

const StepJson = Schema.parseJson(Step)
const encodeStep = Schema.encodeSync(StepJson)
const decodeStep = Schema.decodeUnknownOption(StepJson)

const migrations = {
  // `steps` keeps its rowid: a step (~1.3 KB) is too big for a WITHOUT ROWID page and would spill each
  // row to its own overflow page, more than doubling the file.
  "0001_steps": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS steps (
      run_id TEXT NOT NULL,
      iteration INTEGER NOT NULL,
      body TEXT NOT NULL,
      PRIMARY KEY (run_id, iteration)
    )`
  })
}

/** A step and the run it belongs to. */
export interface StepOf {
  readonly runId: string
  readonly step: Step
}

/** Every iteration of every run, appended once and never rewritten. */
export class StepStore extends Context.Tag("autopilot/StepStore")<
  StepStore,
  {
    /** Steps of any runs. */
    readonly append: (steps: ReadonlyArray<StepOf>) => Effect.Effect<void, PersistenceError>
    /** The newest step that still decodes, to rebuild a run whose checkpoint was lost. */
    readonly last: (runId: string) => Effect.Effect<Option.Option<Step>, PersistenceError>
    /** The latest `count` steps that decode, oldest first; -1 for all. */
    readonly recent: (runId: string, count: number) => Effect.Effect<ReadonlyArray<Step>, PersistenceError>
    /** Every step of a run, for a run that is deleted. */
    readonly remove: (runId: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_steps_migrations", migrations)

  return StepStore.of({
    append: (steps) =>
      Database.inSlices(steps, (slice) =>
        sql`INSERT INTO steps ${
          sql.insert(slice.map(({ runId, step }) => ({ run_id: runId, iteration: step.iteration, body: encodeStep(step) })))
        }`).pipe(Effect.asVoid, Database.refail),
    // Newest first, a page at a time, however many of the newest are corrupt: only a step that decodes
    // is worth recovering from, and skipping a good one would forget what it spent.
    last: (runId) => {
      const page = 50
      const from = (offset: number): Effect.Effect<Option.Option<Step>, SqlError.SqlError> =>
        sql<{ body: string }>`
          SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC LIMIT ${page} OFFSET ${offset}
        `.pipe(Effect.flatMap((rows) => {
          const found = Option.firstSomeOf(rows.map((row) => decodeStep(row.body)))
          return Option.isSome(found) || rows.length < page ? Effect.succeed(found) : from(offset + page)
        }))
      return Database.refail(from(0))
    },
    recent: (runId, count) =>
      sql<{ body: string }>`SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC ${
        count < 0 ? sql.literal("") : sql`LIMIT ${count}`
      }`.pipe(
        Effect.map((rows) => rows.flatMap((row) => Option.toArray(decodeStep(row.body))).reverse()),
        Database.refail
      ),
    remove: (runId) => sql`DELETE FROM steps WHERE run_id = ${runId}`.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer = Layer.effect(StepStore, make)
