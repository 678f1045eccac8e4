import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { Checkpoint, CheckpointJson } from "../domain/Checkpoint.js"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

/** A run's checkpoint row; `raw` is the stored value as read, to claim the row only if it is unchanged. */
export type Loaded =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Found"; readonly checkpoint: Checkpoint; readonly raw: Raw }
  | { readonly _tag: "Corrupt"; readonly error: string; readonly raw: Raw }

/** A checkpoint as the database holds it: text, or bytes when it is not even valid UTF-8. */
export type Raw = string | Uint8Array

/** A run as `autopilot runs` lists it; a row that does not decode is listed, not hidden. */
export type RunSummary =
  | { readonly _tag: "Found"; readonly checkpoint: Checkpoint }
  | { readonly _tag: "Corrupt"; readonly run_id: string; readonly updated_at: string; readonly error: string; readonly project: string }

const encodeCheckpoint = Schema.encodeSync(CheckpointJson)
const decodeCheckpoint = Schema.decodeUnknownEither(CheckpointJson)

const decodeRow = (raw: Raw): Exclude<Loaded, { _tag: "Missing" }> => {
  const decoded = decodeCheckpoint(typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8"))
  return decoded._tag === "Right"
    ? { _tag: "Found", checkpoint: decoded.right, raw }
    : { _tag: "Corrupt", error: Database.decodeError(decoded.left), raw }
}

/**
 * How stale a stop request's read may be: no operator notices a quarter of a second, and a query per
 * iteration of every session would cost more than the rest of a fast iteration.
 */
const stopPollMillis = 250

const migrations = {
  "0001_checkpoints": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS checkpoints (
      run_id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE IF NOT EXISTS stop_requests (
      run_id TEXT PRIMARY KEY,
      reason TEXT NOT NULL,
      requested_at TEXT NOT NULL
    )`
  }),
  // The run's project beside its checkpoint, so one project's runs are one indexed query; every run
  // before projects is the default project's, as its checkpoint reads.
  "0002_checkpoints_project": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE checkpoints ADD COLUMN project TEXT NOT NULL DEFAULT 'default'`
    yield* sql`CREATE INDEX IF NOT EXISTS checkpoints_by_project ON checkpoints (project, updated_at)`
  })
}

/**
 * The latest checkpoint of every run, one row each, overwritten after every iteration; and the stop
 * requests other processes leave for a run. A session owns its run by writing its row only while the
 * row is still as it last read it.
 */
export class RunStore extends Context.Tag("autopilot/RunStore")<
  RunStore,
  {
    readonly load: (runId: string) => Effect.Effect<Loaded, PersistenceError>
    /** Newest first; only one project's runs when given. */
    readonly list: (options?: { readonly project?: string | undefined }) => Effect.Effect<ReadonlyArray<RunSummary>, PersistenceError>
    /** The project of a run that has a checkpoint (read beside it, so even a corrupt one has its project). */
    readonly projectOf: (runId: string) => Effect.Effect<Option.Option<string>, PersistenceError>
    /** The first checkpoint of a new run; false if the id was taken meanwhile. */
    readonly create: (checkpoint: Checkpoint) => Effect.Effect<boolean, PersistenceError>
    /** The first checkpoints of several new runs; the ids of those created, not taken meanwhile. */
    readonly createAll: (checkpoints: ReadonlyArray<Checkpoint>) => Effect.Effect<ReadonlyArray<string>, PersistenceError>
    /** Replaces the checkpoint only if the row is still `expected`; false if another session changed it. */
    readonly replace: (checkpoint: Checkpoint, expected: Raw) => Effect.Effect<boolean, PersistenceError>
    readonly save: (checkpoint: Checkpoint) => Effect.Effect<void, PersistenceError>
    /** Several runs' checkpoints at once, one each. */
    readonly saveAll: (checkpoints: ReadonlyArray<Checkpoint>) => Effect.Effect<void, PersistenceError>
    readonly requestStop: (runId: string, reason: string, at: string) => Effect.Effect<void, PersistenceError>
    readonly pendingStop: (runId: string) => Effect.Effect<Option.Option<string>, PersistenceError>
    /** Where the reads of `recentStop` stand now: a session takes it once it has claimed its run. */
    readonly stopReads: Effect.Effect<number>
    /**
     * A run's pending stop request, from one read of every run's requests that all sessions on this store
     * share: at most one read per 250 ms however many sessions ask, not one each. Only a read begun after
     * `after` (what `stopReads` said) counts, so a session never sees a request its claim cleared.
     */
    readonly recentStop: (runId: string, after: number) => Effect.Effect<Option.Option<string>, PersistenceError>
    readonly clearStop: (runId: string) => Effect.Effect<void, PersistenceError>
    readonly clearStops: (runIds: ReadonlyArray<string>) => Effect.Effect<void, PersistenceError>
    /**
     * Deletes a run: its checkpoint if the row is still `expected` (with none expected, if there still
     * is none), and with it its stop request. False, deleting nothing, if the checkpoint changed
     * meanwhile. Its steps, events and quarantined rows are their stores' to delete, in the same
     * transaction.
     */
    readonly remove: (runId: string, expected: Option.Option<Raw>) => Effect.Effect<boolean, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_runs_migrations", migrations)

  const rowsOf = (checkpoints: ReadonlyArray<Checkpoint>) =>
    sql.insert(checkpoints.map((checkpoint) => ({
      run_id: checkpoint.run_id,
      state: encodeCheckpoint(checkpoint),
      updated_at: checkpoint.updated_at,
      project: checkpoint.project
    })))

  const saveAll = (checkpoints: ReadonlyArray<Checkpoint>) =>
    Database.inSlices(checkpoints, (slice) =>
      sql`
        INSERT INTO checkpoints ${rowsOf(slice)}
        ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, project = excluded.project
      `).pipe(Effect.asVoid, Database.refail)

  const clearStops = (runIds: ReadonlyArray<string>) =>
    Database.inSlices(runIds, (slice) => sql`DELETE FROM stop_requests WHERE run_id IN ${sql.in(slice)}`).pipe(Effect.asVoid, Database.refail)

  const createAll = (checkpoints: ReadonlyArray<Checkpoint>) =>
    Database.inSlices(checkpoints, (slice) =>
      sql<{ run_id: string }>`
        INSERT INTO checkpoints ${rowsOf(slice)} ON CONFLICT (run_id) DO NOTHING RETURNING run_id
      `).pipe(Effect.map((rows) => rows.map((row) => row.run_id)), Database.refail)

  // Plain state: each change happens within one synchronous step, so no two fibers interleave in it.
  let stopReads = 0
  let stops: { readonly read: number; readonly at: number; readonly reasons: ReadonlyMap<string, string> } | undefined
  const recentStop = (runId: string, after: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (stops !== undefined && stops.read > after && now - stops.at < stopPollMillis) {
        return Effect.succeed(Option.fromNullable(stops.reasons.get(runId)))
      }
      const read = ++stopReads
      return sql<{ run_id: string; reason: string }>`SELECT run_id, reason FROM stop_requests`.pipe(
        Effect.map((rows) => {
          const reasons = new Map(rows.map((row) => [row.run_id, row.reason]))
          if (stops === undefined || read > stops.read) stops = { read, at: now, reasons }
          return Option.fromNullable(reasons.get(runId))
        }),
        Database.refail
      )
    })

  return RunStore.of({
    load: (runId) =>
      sql<{ state: Raw }>`SELECT state FROM checkpoints WHERE run_id = ${runId}`.pipe(
        Effect.map((rows): Loaded => (rows[0] === undefined ? { _tag: "Missing" } : decodeRow(rows[0].state))),
        Database.refail
      ),
    list: (options = {}) =>
      (options.project === undefined
        ? sql<{ run_id: string; state: Raw; updated_at: string; project: string }>`
          SELECT run_id, state, updated_at, project FROM checkpoints ORDER BY updated_at DESC`
        : sql<{ run_id: string; state: Raw; updated_at: string; project: string }>`
          SELECT run_id, state, updated_at, project FROM checkpoints WHERE project = ${options.project} ORDER BY updated_at DESC`).pipe(
          Effect.map((rows) =>
            rows.map((row): RunSummary => {
              const loaded = decodeRow(row.state)
              return loaded._tag === "Found"
                ? loaded
                : { _tag: "Corrupt", run_id: row.run_id, updated_at: row.updated_at, error: loaded.error, project: row.project }
            })
          ),
          Database.refail
        ),
    projectOf: (runId) =>
      sql<{ project: string }>`SELECT project FROM checkpoints WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]?.project)),
        Database.refail
      ),
    create: (checkpoint) => Effect.map(createAll([checkpoint]), (created) => created.length > 0),
    createAll,
    replace: (checkpoint, expected) =>
      sql`
        UPDATE checkpoints SET state = ${encodeCheckpoint(checkpoint)}, updated_at = ${checkpoint.updated_at}, project = ${checkpoint.project}
        WHERE run_id = ${checkpoint.run_id} AND state = ${expected} RETURNING run_id
      `.pipe(Effect.map((rows) => rows.length > 0), Database.refail),
    save: (checkpoint) => saveAll([checkpoint]),
    saveAll,
    requestStop: (runId, reason, at) =>
      sql`
        INSERT INTO stop_requests (run_id, reason, requested_at) VALUES (${runId}, ${reason}, ${at})
        ON CONFLICT (run_id) DO UPDATE SET reason = excluded.reason, requested_at = excluded.requested_at
      `.pipe(Effect.asVoid, Database.refail),
    pendingStop: (runId) =>
      sql<{ reason: string }>`SELECT reason FROM stop_requests WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]?.reason)),
        Database.refail
      ),
    stopReads: Effect.sync(() => stopReads),
    recentStop,
    clearStop: (runId) => clearStops([runId]),
    clearStops,
    remove: (runId, expected) =>
      Effect.gen(function*() {
        const unchanged = yield* Option.match(expected, {
          onSome: (raw) =>
            Effect.map(sql`DELETE FROM checkpoints WHERE run_id = ${runId} AND state = ${raw} RETURNING run_id`, (rows) => rows.length > 0),
          onNone: () => Effect.map(sql`SELECT run_id FROM checkpoints WHERE run_id = ${runId}`, (rows) => rows.length === 0)
        })
        if (!unchanged) return false
        yield* sql`DELETE FROM stop_requests WHERE run_id = ${runId}`
        return true
      }).pipe(Database.refail)
  })
})

export const layer = Layer.effect(RunStore, make)
