import { SqlClient } from "@effect/sql"
import { Context, DateTime, Duration, Effect, Layer, Schema } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  "0001_daemon": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS daemon_runners (
      address TEXT PRIMARY KEY,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      concurrency INTEGER NOT NULL,
      lease_ms INTEGER NOT NULL,
      state TEXT NOT NULL,
      started_at TEXT NOT NULL,
      heartbeat_at TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE IF NOT EXISTS daemon_work (
      run_id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      project_id TEXT NULL,
      mission_id TEXT NULL,
      slot TEXT NULL,
      priority INTEGER NOT NULL,
      sent_at TEXT NOT NULL,
      runner TEXT NULL,
      started_at TEXT NULL,
      deliveries INTEGER NOT NULL,
      generation INTEGER NOT NULL,
      ended_at TEXT NULL,
      outcome TEXT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS daemon_work_open ON daemon_work (ended_at)`
  })
}

export const RunnerStates = ["running", "draining", "stopped"] as const
export const RunnerState = Schema.Literal(...RunnerStates)

/** A daemon as it last said it was: its address in the cluster, how much it runs at once, its heartbeat. */
export class RunnerRow extends Schema.Class<RunnerRow>("RunnerRow")({
  address: Schema.String,
  host: Schema.String,
  pid: Schema.Number,
  concurrency: Schema.Number,
  /** How long it may be silent before the others count it gone. */
  lease_ms: Schema.Number,
  state: RunnerState,
  started_at: Schema.String,
  heartbeat_at: Schema.String
}) {
  /** Alive while its heartbeat is fresher than its lease; the cluster moves a silent runner's shards. */
  aliveAt(at: DateTime.Utc): boolean {
    return this.state !== "stopped" &&
      Duration.lessThanOrEqualTo(DateTime.distanceDuration(DateTime.unsafeMake(this.heartbeat_at), at), Duration.millis(this.lease_ms))
  }
}

export const WorkKinds = ["queued", "mission", "firing"] as const
export const WorkKind = Schema.Literal(...WorkKinds)

/** One piece of work the daemons were handed: sent once, run by whichever runner holds its shard, ended once. */
export class WorkRow extends Schema.Class<WorkRow>("WorkRow")({
  run_id: Schema.String,
  kind: WorkKind,
  project_id: Schema.NullOr(Schema.String),
  mission_id: Schema.NullOr(Schema.String),
  slot: Schema.NullOr(Schema.String),
  priority: Schema.Number,
  sent_at: Schema.String,
  runner: Schema.NullOr(Schema.String),
  started_at: Schema.NullOr(Schema.String),
  deliveries: Schema.Number,
  /** How many times it was sent again after a refusal: each time a message of its own. */
  generation: Schema.Number,
  ended_at: Schema.NullOr(Schema.String),
  outcome: Schema.NullOr(Schema.String)
}) {}

export type NewWork = Pick<WorkRow, "run_id" | "kind" | "project_id" | "mission_id" | "slot" | "priority" | "sent_at">

/**
 * What the daemons of one database know of each other and of the work they were handed. The cluster keeps
 * its own tables (runners, shard locks, messages); these are what `daemon status` shows and what the
 * dispatcher counts free capacity from.
 */
export class DaemonStore extends Context.Tag("autopilot/DaemonStore")<
  DaemonStore,
  {
    /** Adds or refreshes a runner's row. */
    readonly register: (runner: RunnerRow) => Effect.Effect<void, PersistenceError>
    readonly heartbeat: (address: string, state: typeof RunnerState.Type, at: string) => Effect.Effect<void, PersistenceError>
    readonly runners: Effect.Effect<ReadonlyArray<RunnerRow>, PersistenceError>
    /** Records work as sent; false, writing nothing, if it already was (another dispatcher, an earlier round). */
    readonly send: (work: NewWork) => Effect.Effect<boolean, PersistenceError>
    /** A runner began (or, after a lost runner, began again) running the work. */
    readonly begin: (runId: string, runner: string, at: string) => Effect.Effect<void, PersistenceError>
    readonly end: (runId: string, outcome: string, at: string) => Effect.Effect<void, PersistenceError>
    /**
     * Opens again work that was refused (a daemon without the model's key, say), as a new generation:
     * the row as it is now, or none if it is not a refusal ended before `endedBefore`.
     */
    readonly retry: (runId: string, endedBefore: string, at: string) => Effect.Effect<WorkRow | undefined, PersistenceError>
    /** Work sent and not yet ended, oldest first. */
    readonly open: Effect.Effect<ReadonlyArray<WorkRow>, PersistenceError>
    /** The latest ended work, newest first. */
    readonly ended: (limit: number) => Effect.Effect<ReadonlyArray<WorkRow>, PersistenceError>
    readonly get: (runId: string) => Effect.Effect<WorkRow | undefined, PersistenceError>
  }
>() {}

const decodeRunners = Schema.decodeUnknown(Schema.Array(RunnerRow))
const decodeWork = Schema.decodeUnknown(Schema.Array(WorkRow))

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_daemon_migrations", migrations)
  const work = (rows: ReadonlyArray<unknown>) => Effect.orDie(decodeWork(rows))

  return DaemonStore.of({
    register: (runner) =>
      sql`INSERT INTO daemon_runners ${sql.insert({ ...runner })}
        ON CONFLICT (address) DO UPDATE SET host = ${runner.host}, pid = ${runner.pid}, concurrency = ${runner.concurrency}, lease_ms = ${runner.lease_ms},
          state = ${runner.state}, started_at = ${runner.started_at}, heartbeat_at = ${runner.heartbeat_at}`.pipe(Effect.asVoid, Database.refail),
    heartbeat: (address, state, at) =>
      sql`UPDATE daemon_runners SET state = ${state}, heartbeat_at = ${at} WHERE address = ${address}`.pipe(Effect.asVoid, Database.refail),
    runners: sql`SELECT * FROM daemon_runners ORDER BY started_at, address`.pipe(
      Database.refail,
      Effect.flatMap((rows) => Effect.orDie(decodeRunners(rows)))
    ),
    send: (row) =>
      sql`INSERT INTO daemon_work ${sql.insert({ ...row, deliveries: 0, generation: 0 })} ON CONFLICT (run_id) DO NOTHING RETURNING run_id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Database.refail
      ),
    begin: (runId, runner, at) =>
      sql`UPDATE daemon_work SET runner = ${runner}, started_at = ${at}, deliveries = deliveries + 1 WHERE run_id = ${runId}`.pipe(
        Effect.asVoid,
        Database.refail
      ),
    end: (runId, outcome, at) =>
      sql`UPDATE daemon_work SET ended_at = ${at}, outcome = ${outcome} WHERE run_id = ${runId} AND ended_at IS NULL`.pipe(
        Effect.asVoid,
        Database.refail
      ),
    retry: (runId, endedBefore, at) =>
      sql`UPDATE daemon_work SET generation = generation + 1, sent_at = ${at}, runner = NULL, started_at = NULL, ended_at = NULL, outcome = NULL
        WHERE run_id = ${runId} AND outcome LIKE 'refused:%' AND ended_at < ${endedBefore} RETURNING *`.pipe(
        Database.refail,
        Effect.flatMap(work),
        Effect.map((rows) => rows[0])
      ),
    open: sql`SELECT * FROM daemon_work WHERE ended_at IS NULL ORDER BY sent_at, run_id`.pipe(Database.refail, Effect.flatMap(work)),
    ended: (limit) =>
      sql`SELECT * FROM daemon_work WHERE ended_at IS NOT NULL ORDER BY ended_at DESC, run_id LIMIT ${limit}`.pipe(Database.refail, Effect.flatMap(work)),
    get: (runId) => sql`SELECT * FROM daemon_work WHERE run_id = ${runId}`.pipe(Database.refail, Effect.flatMap(work), Effect.map((rows) => rows[0]))
  })
})

export const layer: Layer.Layer<DaemonStore, never, SqlClient.SqlClient> = Layer.effect(DaemonStore, make)
