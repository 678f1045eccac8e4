import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, Option, ParseResult, Schema } from "effect"
import { Checkpoint, CheckpointJson } from "../domain/Checkpoint.js"
import { type AutopilotEvent, AutopilotEventJson } from "../domain/Event.js"
import { Step } from "../domain/Step.js"
import * as Database from "./Database.js"

export type Loaded =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Found"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Corrupt"; readonly error: string }

/** A run as `autopilot runs` lists it; a row that does not decode is listed, not hidden. */
export type RunSummary =
  | { readonly _tag: "Found"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Corrupt"; readonly run_id: string; readonly updated_at: string; readonly error: string }

export interface StoredEvent {
  readonly id: number
  readonly event: AutopilotEvent
}

const StepJson = Schema.parseJson(Step)
const encodeCheckpoint = Schema.encodeSync(CheckpointJson)
const encodeStep = Schema.encodeSync(StepJson)
const encodeEvent = Schema.encodeSync(AutopilotEventJson)
const decodeCheckpoint = Schema.decodeUnknownEither(CheckpointJson)
const decodeStep = Schema.decodeUnknownOption(StepJson)
const decodeEvent = Schema.decodeUnknownOption(AutopilotEventJson)

const decodeError = (e: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(e).replace(/\s+/g, " ")

/**
 * Durable state of every run in one SQLite database. Each write is one short transaction: nothing here
 * is ever held open across a model call.
 */
export class CheckpointStore extends Context.Tag("autopilot/CheckpointStore")<
  CheckpointStore,
  {
    readonly load: (runId: string) => Effect.Effect<Loaded, SqlError.SqlError>
    readonly list: Effect.Effect<ReadonlyArray<RunSummary>, SqlError.SqlError>
    /** Moves the run's checkpoint row, bytes intact, to `quarantine`; returns the quarantine row id. */
    readonly quarantine: (runId: string, error: string, at: string) => Effect.Effect<number, SqlError.SqlError>
    /** The newest step that still decodes, to rebuild a run whose checkpoint was lost. */
    readonly lastStep: (runId: string) => Effect.Effect<Option.Option<Step>, SqlError.SqlError>
    readonly recentSteps: (runId: string, count: number) => Effect.Effect<ReadonlyArray<Step>, SqlError.SqlError>
    /** Writes the checkpoint together with the step and events that led to it, all or nothing. */
    readonly commit: (options: {
      readonly checkpoint: Checkpoint
      readonly step?: Step | undefined
      readonly events: ReadonlyArray<AutopilotEvent>
    }) => Effect.Effect<void, SqlError.SqlError>
    readonly appendEvents: (events: ReadonlyArray<AutopilotEvent>) => Effect.Effect<void, SqlError.SqlError>
    /** Events in the order they became durable, after the given event id (0 for all). */
    readonly events: (runId: string, afterId: number) => Effect.Effect<ReadonlyArray<StoredEvent>, SqlError.SqlError>
    /** Every `run_started` event of a run, oldest first: what is left of it when its checkpoint is gone. */
    readonly sessions: (runId: string) => Effect.Effect<ReadonlyArray<AutopilotEvent>, SqlError.SqlError>
    readonly nextSeq: (runId: string) => Effect.Effect<number, SqlError.SqlError>
    readonly requestStop: (runId: string, reason: string, at: string) => Effect.Effect<void, SqlError.SqlError>
    readonly pendingStop: (runId: string) => Effect.Effect<Option.Option<string>, SqlError.SqlError>
    readonly clearStop: (runId: string) => Effect.Effect<void, SqlError.SqlError>
  }
>() {
  static readonly make = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const insertEvents = (events: ReadonlyArray<AutopilotEvent>) =>
      events.length === 0 ? Effect.void : sql`INSERT INTO events ${
        sql.insert(events.map((e) => ({ run_id: e.run_id, seq: e.seq, kind: e.kind, body: encodeEvent(e) })))
      }`.pipe(Effect.asVoid)

    const load = (runId: string) =>
      sql<{ state: string }>`SELECT state FROM checkpoints WHERE run_id = ${runId}`.pipe(
        Effect.map((rows): Loaded => {
          const row = rows[0]
          if (row === undefined) return { _tag: "Missing" }
          const decoded = decodeCheckpoint(row.state)
          return decoded._tag === "Right"
            ? { _tag: "Found", checkpoint: decoded.right }
            : { _tag: "Corrupt", error: decodeError(decoded.left) }
        })
      )

    const list = sql<{ run_id: string; state: string; updated_at: string }>`
      SELECT run_id, state, updated_at FROM checkpoints ORDER BY updated_at DESC
    `.pipe(
      Effect.map((rows) =>
        rows.map((row): RunSummary => {
          const decoded = decodeCheckpoint(row.state)
          return decoded._tag === "Right"
            ? { _tag: "Found", checkpoint: decoded.right }
            : { _tag: "Corrupt", run_id: row.run_id, updated_at: row.updated_at, error: decodeError(decoded.left) }
        })
      )
    )

    const quarantine = (runId: string, error: string, at: string) =>
      sql.withTransaction(
        Effect.gen(function*() {
          // Copied inside SQLite as a BLOB so bytes that are not even valid UTF-8 survive untouched.
          const rows = yield* sql<{ id: number }>`
            INSERT INTO quarantine (run_id, state, error, quarantined_at)
            SELECT run_id, CAST(state AS BLOB), ${error}, ${at} FROM checkpoints WHERE run_id = ${runId}
            RETURNING id
          `
          yield* sql`DELETE FROM checkpoints WHERE run_id = ${runId}`
          return rows[0]?.id ?? 0
        })
      )

    const lastStep = (runId: string) =>
      sql<{ body: string }>`SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC LIMIT 20`.pipe(
        Effect.map((rows) => Option.firstSomeOf(rows.map((row) => decodeStep(row.body))))
      )

    const recentSteps = (runId: string, count: number) =>
      sql<{ body: string }>`SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC LIMIT ${count}`.pipe(
        Effect.map((rows) => rows.flatMap((row) => Option.toArray(decodeStep(row.body))).reverse())
      )

    const commit = (options: { readonly checkpoint: Checkpoint; readonly step?: Step | undefined; readonly events: ReadonlyArray<AutopilotEvent> }) => {
      const { checkpoint, step, events } = options
      return sql.withTransaction(
        Effect.all([
          step === undefined
            ? Effect.void
            : sql`INSERT INTO steps (run_id, iteration, body) VALUES (${checkpoint.run_id}, ${step.iteration}, ${encodeStep(step)})`,
          insertEvents(events),
          sql`INSERT INTO checkpoints (run_id, state, updated_at)
              VALUES (${checkpoint.run_id}, ${encodeCheckpoint(checkpoint)}, ${checkpoint.updated_at})
              ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`
        ], { discard: true })
      )
    }

    const events = (runId: string, afterId: number) =>
      sql<{ id: number; body: string }>`
        SELECT id, body FROM events WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id
      `.pipe(
        Effect.map((rows) =>
          rows.flatMap((row) => Option.toArray(Option.map(decodeEvent(row.body), (event) => ({ id: row.id, event }))))
        )
      )

    const sessions = (runId: string) =>
      sql<{ body: string }>`
        SELECT body FROM events WHERE run_id = ${runId} AND kind = 'run_started' ORDER BY id
      `.pipe(Effect.map((rows) => rows.flatMap((row) => Option.toArray(decodeEvent(row.body)))))

    const nextSeq = (runId: string) =>
      sql<{ next: number }>`SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM events WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => rows[0]?.next ?? 0)
      )

    return CheckpointStore.of({
      load,
      list,
      quarantine,
      lastStep,
      recentSteps,
      commit,
      appendEvents: insertEvents,
      events,
      sessions,
      nextSeq,
      requestStop: (runId, reason, at) =>
        sql`INSERT INTO stop_requests (run_id, reason, requested_at) VALUES (${runId}, ${reason}, ${at})
            ON CONFLICT (run_id) DO UPDATE SET reason = excluded.reason, requested_at = excluded.requested_at`.pipe(
          Effect.asVoid
        ),
      pendingStop: (runId) =>
        sql<{ reason: string }>`SELECT reason FROM stop_requests WHERE run_id = ${runId}`.pipe(
          Effect.map((rows) => Option.fromNullable(rows[0]?.reason))
        ),
      clearStop: (runId) => sql`DELETE FROM stop_requests WHERE run_id = ${runId}`.pipe(Effect.asVoid)
    })
  })

  static readonly layer = Layer.effect(CheckpointStore, CheckpointStore.make)

  /** The store on its own SQLite file (created, with its folders, if missing; ":memory:" for tests). */
  static readonly layerSqlite = (filename: string) => CheckpointStore.layer.pipe(Layer.provide(Database.layer(filename)))
}
