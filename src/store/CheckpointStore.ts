import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, Option, ParseResult, Schema } from "effect"
import type { BudgetUsage } from "../domain/Budget.js"
import { Checkpoint, CheckpointJson } from "../domain/Checkpoint.js"
import { type AutopilotEvent, AutopilotEventJson } from "../domain/Event.js"
import { Step } from "../domain/Step.js"
import * as Database from "./Database.js"

/** A run's checkpoint row; `raw` is the stored value as read, to claim the row only if it is unchanged. */
export type Loaded =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Found"; readonly checkpoint: Checkpoint; readonly raw: string | Uint8Array }
  | { readonly _tag: "Corrupt"; readonly error: string; readonly raw: string | Uint8Array }

/** `Conflict`: another session wrote or claimed the row since it was loaded. */
export type Claim = { readonly _tag: "Claimed"; readonly quarantineId: number | undefined } | { readonly _tag: "Conflict" }

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
    /**
     * Starts a session: writes its first checkpoint and events only if the row is still as it was
     * loaded (`expected` is the `raw` of `load`, or undefined for a run that had no row). A corrupt row
     * is first moved, bytes intact, to `quarantine`. One transaction, so two sessions cannot both win.
     */
    readonly claim: (options: {
      readonly checkpoint: Checkpoint
      readonly expected: string | Uint8Array | undefined
      readonly quarantine?: { readonly error: string } | undefined
      readonly events: ReadonlyArray<AutopilotEvent>
    }) => Effect.Effect<Claim, SqlError.SqlError>
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
    /** Usage as of the run's last heartbeat: newer than the checkpoint when a session was killed mid-iteration. */
    readonly lastHeartbeatUsage: (runId: string) => Effect.Effect<Option.Option<BudgetUsage>, SqlError.SqlError>
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

    const decodeRow = (state: string | Uint8Array) => {
      const decoded = decodeCheckpoint(typeof state === "string" ? state : Buffer.from(state).toString("utf8"))
      return decoded._tag === "Right"
        ? { _tag: "Found" as const, checkpoint: decoded.right, raw: state as string | Uint8Array }
        : { _tag: "Corrupt" as const, error: decodeError(decoded.left), raw: state as string | Uint8Array }
    }

    const load = (runId: string) =>
      sql<{ state: string | Uint8Array }>`SELECT state FROM checkpoints WHERE run_id = ${runId}`.pipe(
        Effect.map((rows): Loaded => (rows[0] === undefined ? { _tag: "Missing" } : decodeRow(rows[0].state)))
      )

    const list = sql<{ run_id: string; state: string | Uint8Array; updated_at: string }>`
      SELECT run_id, state, updated_at FROM checkpoints ORDER BY updated_at DESC
    `.pipe(
      Effect.map((rows) =>
        rows.map((row): RunSummary => {
          const loaded = decodeRow(row.state)
          return loaded._tag === "Found"
            ? loaded
            : { _tag: "Corrupt", run_id: row.run_id, updated_at: row.updated_at, error: loaded.error }
        })
      )
    )

    const writeCheckpoint = (checkpoint: Checkpoint) =>
      sql`INSERT INTO checkpoints (run_id, state, updated_at)
          VALUES (${checkpoint.run_id}, ${encodeCheckpoint(checkpoint)}, ${checkpoint.updated_at})
          ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`

    const claim = (options: {
      readonly checkpoint: Checkpoint
      readonly expected: string | Uint8Array | undefined
      readonly quarantine?: { readonly error: string } | undefined
      readonly events: ReadonlyArray<AutopilotEvent>
    }) =>
      sql.withTransaction(Effect.gen(function*() {
        const { checkpoint, expected, quarantine } = options
        const runId = checkpoint.run_id
        let quarantineId: number | undefined
        if (expected === undefined) {
          const inserted = yield* sql`
            INSERT INTO checkpoints (run_id, state, updated_at)
            VALUES (${runId}, ${encodeCheckpoint(checkpoint)}, ${checkpoint.updated_at})
            ON CONFLICT (run_id) DO NOTHING RETURNING run_id
          `
          if (inserted.length === 0) return { _tag: "Conflict" } as const
        } else {
          if (quarantine !== undefined) {
            // Copied inside SQLite as a BLOB so bytes that are not even valid UTF-8 survive untouched.
            const moved = yield* sql<{ id: number }>`
              INSERT INTO quarantine (run_id, state, error, quarantined_at)
              SELECT run_id, CAST(state AS BLOB), ${quarantine.error}, ${checkpoint.updated_at}
              FROM checkpoints WHERE run_id = ${runId} AND state = ${expected}
              RETURNING id
            `
            if (moved[0] === undefined) return { _tag: "Conflict" } as const
            quarantineId = moved[0].id
          }
          const updated = yield* sql`
            UPDATE checkpoints SET state = ${encodeCheckpoint(checkpoint)}, updated_at = ${checkpoint.updated_at}
            WHERE run_id = ${runId} AND state = ${expected} RETURNING run_id
          `
          if (updated.length === 0) return { _tag: "Conflict" } as const
        }
        yield* insertEvents(options.events)
        return { _tag: "Claimed", quarantineId } as const
      }))

    const lastStep = (runId: string) =>
      sql<{ body: string }>`SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC LIMIT 20`.pipe(
        Effect.map((rows) => Option.firstSomeOf(rows.map((row) => decodeStep(row.body))))
      )

    const recentSteps = (runId: string, count: number) =>
      sql<{ body: string }>`SELECT body FROM steps WHERE run_id = ${runId} ORDER BY iteration DESC LIMIT ${count}`.pipe(
        Effect.map((rows) => rows.flatMap((row) => Option.toArray(decodeStep(row.body))).reverse())
      )

    const commit = (options: { readonly checkpoint: Checkpoint; readonly step?: Step | undefined; readonly events: ReadonlyArray<AutopilotEvent> }) =>
      sql.withTransaction(
        Effect.all([
          options.step === undefined
            ? Effect.void
            : sql`INSERT INTO steps (run_id, iteration, body)
                  VALUES (${options.checkpoint.run_id}, ${options.step.iteration}, ${encodeStep(options.step)})`,
          insertEvents(options.events),
          writeCheckpoint(options.checkpoint)
        ], { discard: true })
      )

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

    const lastHeartbeatUsage = (runId: string) =>
      sql<{ body: string }>`
        SELECT body FROM events WHERE run_id = ${runId} AND kind = 'heartbeat' ORDER BY seq DESC LIMIT 1
      `.pipe(
        Effect.map((rows) =>
          Option.flatMap(Option.fromNullable(rows[0]), (row) => decodeEvent(row.body)).pipe(
            Option.flatMap((e) => (e.kind === "heartbeat" ? Option.some(e.usage) : Option.none()))
          )
        )
      )

    const nextSeq = (runId: string) =>
      sql<{ next: number }>`SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM events WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => rows[0]?.next ?? 0)
      )

    return CheckpointStore.of({
      load,
      list,
      claim,
      lastStep,
      recentSteps,
      commit,
      appendEvents: insertEvents,
      events,
      sessions,
      nextSeq,
      lastHeartbeatUsage,
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
