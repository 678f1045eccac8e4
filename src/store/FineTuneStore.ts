import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import { type EventKind, FineTuneJob, FineTuneJobNotFound, JobEvent, type Status } from "../finetune/FineTuneJob.js"
import * as Database from "./Database.js"

const migrations = {
  "0001_finetune_jobs": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS finetune_jobs (
      id TEXT PRIMARY KEY,
      dataset_id TEXT NOT NULL,
      snapshot TEXT NOT NULL,
      samples INTEGER NOT NULL,
      file TEXT NOT NULL,
      provider TEXT NOT NULL,
      provider_job_id TEXT NULL,
      base_model TEXT NOT NULL,
      status TEXT NOT NULL,
      fine_tuned_model TEXT NULL,
      base_url TEXT NULL,
      error TEXT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      finished_at TEXT NULL,
      UNIQUE (dataset_id, snapshot)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS finetune_jobs_by_status ON finetune_jobs (status)`
    yield* sql`CREATE TABLE IF NOT EXISTS finetune_events (
      seq ${Database.serialKey(sql)},
      job_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      at TEXT NOT NULL,
      status TEXT NOT NULL,
      message TEXT NULL,
      ref TEXT NULL,
      UNIQUE (job_id, ref)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS finetune_events_by_job ON finetune_events (job_id, seq)`
  }),
  // Where each job was started, so a poller configured elsewhere does not ask the wrong endpoint; NULL for older jobs.
  "0002_finetune_endpoint": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE finetune_jobs ADD COLUMN endpoint TEXT NULL`)
}

const jobColumns = "id, dataset_id, snapshot, samples, file, provider, provider_job_id, endpoint, base_model, status, fine_tuned_model, base_url, error, created_at, updated_at, finished_at"
const eventColumns = "job_id, seq, kind, at, status, message, ref"

const JobRow = Schema.Struct({ ...FineTuneJob.fields, samples: Database.Int })
const EventRow = Schema.Struct({ ...JobEvent.fields, seq: Database.Int })
const decodeJob = Schema.decodeUnknown(JobRow)
const decodeEvent = Schema.decodeUnknown(EventRow)

const undecodable = (what: string) => (error: Parameters<typeof Database.decodeError>[0]) =>
  new PersistenceError({ message: `${what} in the database does not decode: ${Database.decodeError(error)}`, busy: false })

const jobOf = (row: unknown) =>
  decodeJob(row).pipe(
    Effect.map((fields) => new FineTuneJob(fields)),
    Effect.mapError(undecodable(`fine-tune job ${String((row as { id?: unknown }).id)}`))
  )

const eventOf = (row: unknown) =>
  decodeEvent(row).pipe(
    Effect.map((fields) => new JobEvent(fields)),
    Effect.mapError(undecodable(`an event of fine-tune job ${String((row as { job_id?: unknown }).job_id)}`))
  )

/** What a status change writes besides the status; fields left out keep their values. */
export interface Change {
  readonly status: Status
  readonly provider_job_id?: string | undefined
  readonly fine_tuned_model?: string | null | undefined
  readonly base_url?: string | null | undefined
  readonly error?: string | null | undefined
  readonly at: string
  readonly finished: boolean
}

/** An entry for a job's log. */
export interface NewEvent {
  readonly kind: EventKind
  readonly at: string
  readonly status: Status
  readonly message: string | null
  /** The provider's id of what it logged: an entry with a ref is written once. */
  readonly ref: string | null
}

/**
 * Fine-tune jobs and each job's own log. A job is claimed by inserting its row, unique per (dataset,
 * snapshot): a snapshot is trained once, whoever asks and however many ask at once.
 */
export class FineTuneStore extends Context.Tag("autopilot/FineTuneStore")<
  FineTuneStore,
  {
    /** Inserts the job as given, or none when its dataset's snapshot has a job already. */
    readonly claim: (job: FineTuneJob) => Effect.Effect<Option.Option<FineTuneJob>, PersistenceError>
    readonly get: (id: string) => Effect.Effect<Option.Option<FineTuneJob>, PersistenceError>
    /** The job, or FineTuneJobNotFound: for every caller that is asked about a job by its id. */
    readonly require: (id: string) => Effect.Effect<FineTuneJob, FineTuneJobNotFound | PersistenceError>
    readonly forSnapshot: (datasetId: string, snapshot: string) => Effect.Effect<Option.Option<FineTuneJob>, PersistenceError>
    /** Every job, newest first. */
    readonly list: () => Effect.Effect<ReadonlyArray<FineTuneJob>, PersistenceError>
    /** The jobs of `provider` (of every provider when absent) that have not ended, oldest first: what a poller polls. */
    readonly unfinished: (provider?: string | undefined) => Effect.Effect<ReadonlyArray<FineTuneJob>, PersistenceError>
    /** Whether a job that has not ended trains on `file`: its snapshot file is kept while one does. */
    readonly fileInUse: (file: string) => Effect.Effect<boolean, PersistenceError>
    /**
     * Moves a job from status `from` to the change, and appends `event` to its log, in one transaction;
     * none when the job is no longer in `from` (another poller moved it first), and then nothing is written.
     */
    readonly transition: (id: string, from: Status, change: Change, event: NewEvent | null) => Effect.Effect<Option.Option<FineTuneJob>, PersistenceError>
    /** Appends to a job's log; an entry whose ref is there already is not written again. */
    readonly append: (id: string, event: NewEvent) => Effect.Effect<void, PersistenceError>
    readonly events: (id: string) => Effect.Effect<ReadonlyArray<JobEvent>, PersistenceError>
    /** The ref of the provider's message last written to a job's log: where reading the provider's log goes on. */
    readonly lastRef: (id: string) => Effect.Effect<Option.Option<string>, PersistenceError>
    /** Forgets a claim whose provider never took the job, as if it had never been made. */
    readonly release: (id: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_finetune_migrations", migrations)

  const one = (rows: ReadonlyArray<unknown>) => (rows.length === 0 ? Effect.succeedNone : Effect.asSome(jobOf(rows[0])))

  const append = (id: string, event: NewEvent) =>
    sql`INSERT INTO finetune_events ${sql.insert({ job_id: id, kind: event.kind, at: event.at, status: event.status, message: event.message, ref: event.ref })}
      ON CONFLICT (job_id, ref) DO NOTHING`.pipe(Effect.asVoid)

  const get = (id: string) => sql`SELECT ${sql.literal(jobColumns)} FROM finetune_jobs WHERE id = ${id}`.pipe(Database.refail, Effect.flatMap(one))

  return FineTuneStore.of({
    claim: (job) =>
      sql`INSERT INTO finetune_jobs ${sql.insert({ ...job })} ON CONFLICT (dataset_id, snapshot) DO NOTHING RETURNING ${sql.literal(jobColumns)}`.pipe(
        Database.refail,
        Effect.flatMap(one)
      ),
    get,
    require: (id) => Effect.flatMap(get(id), Option.match({ onNone: () => Effect.fail(new FineTuneJobNotFound({ id })), onSome: Effect.succeed })),
    forSnapshot: (datasetId, snapshot) =>
      sql`SELECT ${sql.literal(jobColumns)} FROM finetune_jobs WHERE dataset_id = ${datasetId} AND snapshot = ${snapshot}`.pipe(Database.refail, Effect.flatMap(one)),
    list: () =>
      sql`SELECT ${sql.literal(jobColumns)} FROM finetune_jobs ORDER BY created_at DESC, id DESC`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, jobOf))
      ),
    unfinished: (provider) =>
      sql`SELECT ${sql.literal(jobColumns)} FROM finetune_jobs
        WHERE ${provider === undefined ? sql.literal("1 = 1") : sql`provider = ${provider}`}
        AND status NOT IN (${"succeeded"}, ${"failed"}, ${"cancelled"}) ORDER BY created_at, id`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, jobOf))
      ),
    fileInUse: (file) =>
      sql`SELECT id FROM finetune_jobs WHERE file = ${file} AND status NOT IN (${"succeeded"}, ${"failed"}, ${"cancelled"})`.pipe(
        Database.refail,
        Effect.map((rows) => rows.length > 0)
      ),
    transition: (id, from, change, event) =>
      sql.withTransaction(Effect.gen(function*() {
        const set: Record<string, string | null> = { status: change.status, updated_at: change.at }
        if (change.provider_job_id !== undefined) set.provider_job_id = change.provider_job_id
        if (change.fine_tuned_model !== undefined) set.fine_tuned_model = change.fine_tuned_model
        if (change.base_url !== undefined) set.base_url = change.base_url
        if (change.error !== undefined) set.error = change.error
        if (change.finished) set.finished_at = change.at
        // The status compared in the statement itself: of two pollers, one moves the job and logs it.
        const rows = yield* sql`UPDATE finetune_jobs SET ${sql.update(set)} WHERE id = ${id} AND status = ${from} RETURNING ${sql.literal(jobColumns)}`
        if (rows.length > 0 && event !== null) yield* append(id, event)
        return rows
      })).pipe(Database.refail, Database.retryBusy, Effect.flatMap(one)),
    append: (id, event) => append(id, event).pipe(Database.refail),
    events: (id) =>
      sql`SELECT ${sql.literal(eventColumns)} FROM finetune_events WHERE job_id = ${id} ORDER BY seq`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, eventOf))
      ),
    lastRef: (id) =>
      sql<{ ref: string }>`SELECT ref FROM finetune_events WHERE job_id = ${id} AND kind = ${"finetune_message"} AND ref IS NOT NULL
        ORDER BY seq DESC LIMIT 1`.pipe(Database.refail, Effect.map((rows) => Option.fromNullable(rows[0]?.ref))),
    release: (id) =>
      sql.withTransaction(Effect.zipRight(sql`DELETE FROM finetune_events WHERE job_id = ${id}`, sql`DELETE FROM finetune_jobs WHERE id = ${id}`)).pipe(
        Database.refail,
        Effect.asVoid
      )
  })
})

export const layer = Layer.effect(FineTuneStore, make)
