import { Config, Context, Data, DateTime, Duration, Effect, Layer, Option, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { FineTuneStore, type NewEvent } from "../store/FineTuneStore.js"
import { FineTune } from "./FineTune.js"
import { type EventKind, type FineTuneError, FineTuneJob, FineTuneJobNotFound, isFinished, type JobEvent, type ProviderJob } from "./FineTuneJob.js"

/** A dataset as the curator hands it over: enough to decide whether, and on what, to train. */
export interface Dataset {
  readonly id: string
  readonly samples: number
  /** Names this content of the dataset (a content hash): one job per snapshot, ever. */
  readonly snapshot: string
  /** The chat fine-tuning JSONL file to upload. */
  readonly file: string
  /** This dataset's own threshold, instead of AUTOPILOT_FINETUNE_THRESHOLD. */
  readonly threshold?: number | undefined
  /** This dataset's base model, instead of AUTOPILOT_FINETUNE_BASE_MODEL. */
  readonly base_model?: string | undefined
}

export type Considered = Data.TaggedEnum<{
  /** A job was started now. */
  Started: { readonly job: FineTuneJob }
  /** The snapshot has a job already (started by anyone, any time): nothing was started. */
  Exists: { readonly job: FineTuneJob }
  /** Another job of the dataset has not ended: one at a time, however fast the dataset grows. */
  Training: { readonly job: FineTuneJob }
  /**
   * Fewer than `threshold` samples since `since`, what the dataset's last succeeded job was trained on (0 before
   * any): a dataset is trained again only once it has grown by the threshold, not at every sample it gains.
   */
  BelowThreshold: { readonly samples: number; readonly threshold: number; readonly since: number }
}>
export const Considered = Data.taggedEnum<Considered>()

export interface FineTunesConfig {
  /** Samples a dataset needs before it is trained on. */
  readonly threshold: number
  readonly baseModel: string
  /** How often a poller asks the provider about unfinished jobs. */
  readonly pollEvery: Duration.DurationInput
  /**
   * A job still `starting` this long after it was claimed belongs to a starter that died before the
   * provider answered; it is failed rather than started again (the provider may hold it: never twice).
   */
  readonly abandonAfter?: Duration.DurationInput | undefined
}

export const defaultThreshold = 100
export const defaultBaseModel = "gpt-4o-mini-2024-07-18"
const maxThreshold = 1_000_000_000

/** A threshold as text (a variable, a flag): a whole number from 1, else one line saying so. */
export const thresholdOf = (from: string, raw: string): Effect.Effect<number, BadInput> => {
  const value = /^\d{1,10}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
  return value >= 1 && value <= maxThreshold
    ? Effect.succeed(value)
    : Effect.fail(new BadInput({ message: `${from} must be a whole number of samples from 1 to ${maxThreshold}, got "${raw}"` }))
}

/**
 * Starting jobs when datasets cross their threshold (once per snapshot), polling them on a Schedule until
 * they end, and cancelling them. Every change is written to the job's row and its log in the store, so a
 * poller that restarts, or another process polling the same database, carries on where it was left.
 */
export class FineTunes extends Context.Tag("autopilot/FineTunes")<
  FineTunes,
  {
    /** Starts a job for the dataset's snapshot when it has enough samples and none exists for it. */
    readonly consider: (dataset: Dataset) => Effect.Effect<Considered, BadInput | FineTuneError | PersistenceError>
    /** Asks the provider once about every unfinished job of it; the number still unfinished. */
    readonly pollOnce: Effect.Effect<number, PersistenceError>
    /** Polls on the Schedule until no job of the provider is unfinished. */
    readonly untilDone: Effect.Effect<void, PersistenceError>
    /** Polls on the Schedule for as long as it runs: for a daemon. */
    readonly run: Effect.Effect<never, PersistenceError>
    readonly get: (id: string) => Effect.Effect<FineTuneJob, FineTuneJobNotFound | PersistenceError>
    readonly list: () => Effect.Effect<ReadonlyArray<FineTuneJob>, PersistenceError>
    readonly events: (id: string) => Effect.Effect<ReadonlyArray<JobEvent>, FineTuneJobNotFound | PersistenceError>
    readonly cancel: (id: string) => Effect.Effect<FineTuneJob, FineTuneJobNotFound | BadInput | FineTuneError | PersistenceError>
  }
>() {}

const kindOf = (status: ProviderJob["status"]): EventKind =>
  status === "succeeded" ? "finetune_succeeded" : status === "failed" ? "finetune_failed" : status === "cancelled" ? "finetune_cancelled" : "finetune_status"

const messageOf = (job: ProviderJob): string =>
  job.status === "succeeded"
    ? `model ${job.fine_tuned_model ?? "(unnamed)"}${job.base_url === null ? "" : ` served at ${job.base_url}`}`
    : job.status === "failed"
    ? job.error ?? "failed"
    : job.status.replace("_", " ")

export const make = (config: FineTunesConfig) =>
  Effect.gen(function*() {
    const store = yield* FineTuneStore
    const provider = yield* FineTune
    const abandonAfter = Duration.decode(config.abandonAfter ?? Duration.minutes(10))
    const now = Effect.map(DateTime.now, DateTime.formatIso)

    const get = (id: string) => Effect.flatMap(store.get(id), Option.match({ onNone: () => Effect.fail(new FineTuneJobNotFound({ id })), onSome: Effect.succeed }))

    /**
     * Moves the job to what the provider said, logging the change once: when another poller moved it
     * first, the job is read again and moved from where it is now, unless it is there already or ended.
     */
    const apply = (job: FineTuneJob, reported: ProviderJob): Effect.Effect<FineTuneJob, PersistenceError> =>
      Effect.gen(function*() {
        if (job.status === reported.status || isFinished(job.status)) return job
        const at = yield* now
        const finished = isFinished(reported.status)
        const moved = yield* store.transition(job.id, job.status, {
          status: reported.status,
          provider_job_id: reported.id,
          fine_tuned_model: reported.fine_tuned_model,
          base_url: reported.base_url,
          error: reported.error,
          at,
          finished
        }, { kind: job.status === "starting" ? "finetune_started" : kindOf(reported.status), at, status: reported.status, message: job.status === "starting" ? `provider job ${reported.id} (${reported.status.replace("_", " ")})` : messageOf(reported), ref: null })
        if (Option.isSome(moved)) {
          // A provider that answers a start with a job already ended gets its end logged too.
          if (job.status === "starting" && finished) {
            yield* store.append(job.id, { kind: kindOf(reported.status), at, status: reported.status, message: messageOf(reported), ref: null })
          }
          return moved.value
        }
        return yield* Effect.flatMap(get(job.id), (current) => apply(current, reported)).pipe(Effect.catchTag("FineTuneJobNotFound", () => Effect.succeed(job)))
      })

    const consider = (dataset: Dataset) =>
      Effect.gen(function*() {
        const threshold = dataset.threshold === undefined ? config.threshold : yield* thresholdOf(`the threshold of dataset ${dataset.id}`, String(dataset.threshold))
        if (dataset.samples < threshold) return Considered.BelowThreshold({ samples: dataset.samples, threshold, since: 0 })
        const existing = yield* store.forSnapshot(dataset.id, dataset.snapshot)
        if (Option.isSome(existing)) return Considered.Exists({ job: existing.value })
        // Newest first. Each job costs money: one at a time per dataset, and again only after real growth.
        const jobs = (yield* store.list()).filter((j) => j.dataset_id === dataset.id)
        const going = jobs.find((j) => !isFinished(j.status))
        if (going !== undefined) return Considered.Training({ job: going })
        const since = jobs.find((j) => j.status === "succeeded")?.samples ?? 0
        if (dataset.samples - since < threshold) return Considered.BelowThreshold({ samples: dataset.samples, threshold, since })
        const at = yield* now
        const claimed = yield* store.claim(new FineTuneJob({
          id: `ft-${randomBytes(6).toString("hex")}`,
          dataset_id: dataset.id,
          snapshot: dataset.snapshot,
          samples: dataset.samples,
          file: dataset.file,
          provider: provider.provider,
          provider_job_id: null,
          base_model: dataset.base_model ?? config.baseModel,
          status: "starting",
          fine_tuned_model: null,
          base_url: null,
          error: null,
          created_at: at,
          updated_at: at,
          finished_at: null
        }))
        if (Option.isNone(claimed)) {
          // Another starter claimed the snapshot between the look and the claim.
          return Considered.Exists({ job: yield* Effect.flatMap(store.forSnapshot(dataset.id, dataset.snapshot), Effect.orDieWith(() => `the job of ${dataset.id} ${dataset.snapshot} vanished`)) })
        }
        const job = claimed.value
        // A provider that refused, or could not be reached, took no job: the claim goes, and the next consider tries again.
        const reported = yield* provider.start({ file: dataset.file, base_model: job.base_model, suffix: dataset.id }).pipe(
          Effect.tapError(() => store.release(job.id))
        )
        return Considered.Started({ job: yield* apply(job, reported) })
      })

    /** Writes what the provider logged, once each; a provider that cannot say is asked again next poll. */
    const recordProviderEvents = (job: FineTuneJob, providerJobId: string) =>
      provider.events(providerJobId).pipe(
        Effect.flatMap((events) =>
          Effect.forEach(events, (event) => {
            const entry: NewEvent = { kind: "finetune_message", at: event.at, status: job.status, message: `${event.level}: ${event.message}`, ref: event.id }
            return store.append(job.id, entry)
          }, { discard: true })),
        Effect.catchTag("FineTuneError", (error) => Effect.logWarning(`fine-tune job ${job.id}: ${error.message}`))
      )

    const pollJob = (job: FineTuneJob): Effect.Effect<void, PersistenceError> =>
      Effect.gen(function*() {
        if (job.provider_job_id === null) {
          const age = DateTime.distanceDuration(DateTime.unsafeMake(job.created_at), yield* DateTime.now)
          if (Duration.lessThan(age, abandonAfter)) return
          const at = yield* now
          yield* store.transition(job.id, "starting", { status: "failed", error: "its starter ended before the provider answered; check the provider for a stray job", at, finished: true }, {
            kind: "finetune_failed",
            at,
            status: "failed",
            message: "its starter ended before the provider answered",
            ref: null
          })
          return
        }
        const providerJobId = job.provider_job_id
        yield* provider.retrieve(providerJobId).pipe(
          Effect.flatMap((reported) => apply(job, reported)),
          Effect.flatMap((current) => recordProviderEvents(current, providerJobId)),
          // The provider unreachable or refusing now: the job stays as it is, and is asked again next poll.
          Effect.catchTag("FineTuneError", (error) => Effect.logWarning(`fine-tune job ${job.id}: ${error.message}`))
        )
      })

    const pollOnce = Effect.gen(function*() {
      const jobs = yield* store.unfinished(provider.provider)
      yield* Effect.forEach(jobs, pollJob, { concurrency: 4, discard: true })
      return (yield* store.unfinished(provider.provider)).length
    })

    const every = Schedule.spaced(config.pollEvery)

    return FineTunes.of({
      consider,
      pollOnce,
      untilDone: Effect.asVoid(Effect.repeat(pollOnce, { schedule: every, until: (left) => left === 0 })),
      run: Effect.repeat(pollOnce, every).pipe(Effect.zipRight(Effect.never)),
      get,
      list: () => store.list(),
      events: (id) => Effect.zipRight(get(id), store.events(id)),
      cancel: (id) =>
        Effect.gen(function*() {
          const job = yield* get(id)
          if (isFinished(job.status)) return yield* new BadInput({ message: `fine-tune job ${id} has ended already (${job.status})` })
          if (job.provider !== provider.provider) {
            return yield* new BadInput({ message: `fine-tune job ${id} runs on provider ${job.provider}, not on ${provider.provider} (set AUTOPILOT_FINETUNE_PROVIDER=${job.provider})` })
          }
          if (job.provider_job_id === null) return yield* new BadInput({ message: `fine-tune job ${id} is still starting: cancel it once its provider has it` })
          return yield* Effect.flatMap(provider.cancel(job.provider_job_id), (reported) => apply(job, reported))
        })
    })
  })

export const layer = (config: FineTunesConfig): Layer.Layer<FineTunes, never, FineTuneStore | FineTune> => Layer.effect(FineTunes, make(config))

/**
 * `AUTOPILOT_FINETUNE_THRESHOLD` (default 100), `AUTOPILOT_FINETUNE_BASE_MODEL` (default
 * gpt-4o-mini-2024-07-18), `AUTOPILOT_FINETUNE_POLL_SECONDS` (default 30); a bad value is one line.
 */
export const config: Effect.Effect<FineTunesConfig, BadInput> = Effect.gen(function*() {
  const text = (name: string) => Config.option(Config.string(name)).pipe(Effect.orDie, Effect.map(Option.filter((value) => value.trim() !== "")))
  const threshold = yield* Option.match(yield* text("AUTOPILOT_FINETUNE_THRESHOLD"), {
    onNone: () => Effect.succeed(defaultThreshold),
    onSome: (raw) => thresholdOf("AUTOPILOT_FINETUNE_THRESHOLD", raw)
  })
  const baseModel = Option.getOrElse(yield* text("AUTOPILOT_FINETUNE_BASE_MODEL"), () => defaultBaseModel)
  const pollEvery = yield* Option.match(yield* text("AUTOPILOT_FINETUNE_POLL_SECONDS"), {
    onNone: () => Effect.succeed(Duration.seconds(30)),
    onSome: (raw) => {
      const value = /^(\d+(\.\d*)?|\.\d+)$/.test(raw.trim()) ? Number(raw) : Number.NaN
      return value >= 0.05 && value <= 86_400
        ? Effect.succeed(Duration.millis(Math.round(value * 1000)))
        : Effect.fail(new BadInput({ message: `AUTOPILOT_FINETUNE_POLL_SECONDS must be a number of seconds from 0.05 to 86400, got "${raw}"` }))
    }
  })
  return { threshold, baseModel, pollEvery }
})

export const layerConfig: Layer.Layer<FineTunes, BadInput, FineTuneStore | FineTune> = Layer.unwrapEffect(Effect.map(config, layer))
