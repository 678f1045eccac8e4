import { Array, Config, Context, Data, DateTime, Duration, Effect, Layer, Option, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { home } from "../domain/Home.js"
import { FineTuneStore, type NewEvent } from "../store/FineTuneStore.js"
import { FineTune } from "./FineTune.js"
import { type EventKind, FineTuneError, FineTuneJob, FineTuneJobNotFound, isFinished, type JobEvent, type ProviderJob } from "./FineTuneJob.js"

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
   * Default 10 minutes, and never less than a minute beyond the longest a start can take (a large upload).
   */
  readonly abandonAfter?: Duration.DurationInput | undefined
  /**
   * The folder of dataset snapshots (`$AUTOPILOT_HOME/finetune/datasets`): a file there is removed once no
   * job that has not ended trains on it. Files elsewhere are the user's and never removed.
   */
  readonly snapshots?: string | undefined
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
    /**
     * Asks the provider once about every unfinished job started there (a job of another provider or endpoint
     * is said once, not asked about); the number of those still unfinished. A refusal that asking again will
     * not change (a wrong key, an endpoint that moved) fails it, once every job was asked.
     */
    readonly pollOnce: Effect.Effect<number, PersistenceError | FineTuneError>
    /** Polls on the Schedule until no job started at the provider is unfinished, or the provider refuses for good. */
    readonly untilDone: Effect.Effect<void, PersistenceError | FineTuneError>
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
    // A starter still waiting for its answer is never taken for one that died.
    const abandonAfter = config.abandonAfter === undefined
      ? Duration.max(Duration.minutes(10), Duration.sum(provider.startsWithin, Duration.minutes(1)))
      : Duration.decode(config.abandonAfter)
    const now = Effect.map(DateTime.now, DateTime.formatIso)
    const snapshots = config.snapshots === undefined ? undefined : path.resolve(config.snapshots)

    /** Removes a snapshot file of ours that no job still going trains on: exports would otherwise pile up forever. */
    const discard = (file: string) =>
      snapshots === undefined || path.dirname(path.resolve(file)) !== snapshots
        ? Effect.void
        : Effect.flatMap(store.fileInUse(file), (used) =>
          used ? Effect.void : Effect.try(() => fs.rmSync(file, { force: true })).pipe(
            Effect.catchAll((error) => Effect.logWarning(`cannot remove the fine-tune snapshot ${file}: ${String(error.cause)}`))
          ))

    const get = store.require

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
          if (finished) yield* discard(job.file)
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
        // Claimed by another starter since the look above: it is this snapshot's job, not another one training.
        const same = jobs.find((j) => j.snapshot === dataset.snapshot)
        if (same !== undefined) return Considered.Exists({ job: same })
        const going = jobs.find((j) => !isFinished(j.status))
        if (going !== undefined) return Considered.Training({ job: going })
        const since = jobs.find((j) => j.status === "succeeded")?.samples ?? 0
        if (dataset.samples - since < threshold) return Considered.BelowThreshold({ samples: dataset.samples, threshold, since })
        // From the claim to the provider's answer nothing interrupts: a start cut short could have made a paid
        // job at the provider while the claim was let go, and the next consider would make a second one.
        return yield* Effect.uninterruptible(Effect.gen(function*() {
          const at = yield* now
          const claimed = yield* store.claim(FineTuneJob.claimed({
            id: `ft-${randomBytes(6).toString("hex")}`,
            dataset_id: dataset.id,
            snapshot: dataset.snapshot,
            samples: dataset.samples,
            file: dataset.file,
            provider: provider.provider,
            endpoint: provider.endpoint,
            base_model: dataset.base_model ?? config.baseModel,
            at
          }))
          if (Option.isNone(claimed)) {
            // Another starter claimed the snapshot between the look and the claim.
            return Considered.Exists({ job: yield* Effect.flatMap(store.forSnapshot(dataset.id, dataset.snapshot), Effect.orDieWith(() => `the job of ${dataset.id} ${dataset.snapshot} vanished`)) })
          }
          const job = claimed.value
          const reported = yield* provider.start({ file: dataset.file, base_model: job.base_model, suffix: dataset.id }).pipe(
            Effect.catchTag("FineTuneError", (error) => error.mayHoldJob ? uncertain(job, error) : Effect.zipRight(refused(job), Effect.fail(error)))
          )
          return Considered.Started({ job: yield* apply(job, reported) })
        }))
      }).pipe(
        // Nothing started: a snapshot file written for this consider is not kept for nobody.
        Effect.tap((considered) => considered._tag === "Started" ? Effect.void : discard(dataset.file))
      )

    /** A refusal that certainly made no job (a 4xx, no connection): the claim goes, and the next consider tries again. */
    const refused = (job: FineTuneJob) => Effect.zipRight(store.release(job.id), discard(job.file))

    /**
     * The provider's answer was lost after it may have made the job: the claim stays, `starting`, so the
     * snapshot is never started twice, and once it has waited `abandonAfter` it is failed for the operator to check.
     */
    const uncertain = (job: FineTuneJob, error: FineTuneError) =>
      Effect.gen(function*() {
        const at = yield* now
        const message = `the provider may hold a job for it: ${error.message}`
        yield* store.append(job.id, { kind: "finetune_start_unknown", at, status: "starting", message, ref: null })
        return yield* new FineTuneError({
          message: `${error.message}; the provider may have made the job anyway, so fine-tune job ${job.id} stays starting and is never started twice: check ${provider.endpoint} for it`,
          unreachable: error.unreachable,
          mayHoldJob: true
        })
      })

    /** Writes what the provider logged, once each; a provider that cannot say is asked again next poll. */
    const recordProviderEvents = (job: FineTuneJob, providerJobId: string) =>
      store.lastRef(job.id).pipe(
        Effect.flatMap((after) => provider.events(providerJobId, Option.getOrNull(after))),
        Effect.flatMap((events) =>
          Effect.forEach(events, (event) => {
            const entry: NewEvent = { kind: "finetune_message", at: event.at, status: job.status, message: `${event.level}: ${event.message}`, ref: event.id }
            return store.append(job.id, entry)
          }, { discard: true })),
        Effect.catchTag("FineTuneError", (error) => Effect.logWarning(`fine-tune job ${job.id}: ${error.message}`))
      )

    /** Polls one job; a refusal that will stand is handed back, for the poll to stop on once every job was asked. */
    const pollJob = (job: FineTuneJob): Effect.Effect<Option.Option<FineTuneError>, PersistenceError> =>
      Effect.gen(function*() {
        if (job.provider_job_id === null) {
          const age = DateTime.distanceDuration(DateTime.unsafeMake(job.created_at), yield* DateTime.now)
          if (Duration.lessThan(age, abandonAfter)) return Option.none()
          const at = yield* now
          const where = job.endpoint ?? job.provider
          const moved = yield* store.transition(job.id, "starting", {
            status: "failed",
            error: `no provider job was recorded for it (its starter ended, or the provider's answer was lost); check ${where} for a stray job before training this dataset again`,
            at,
            finished: true
          }, {
            kind: "finetune_failed",
            at,
            status: "failed",
            message: `no provider job was recorded for it; check ${where} for a stray job`,
            ref: null
          })
          if (Option.isSome(moved)) yield* discard(job.file)
          return Option.none()
        }
        const providerJobId = job.provider_job_id
        return yield* provider.retrieve(providerJobId).pipe(
          Effect.flatMap((reported) => apply(job, reported)),
          Effect.flatMap((current) => recordProviderEvents(current, providerJobId)),
          Effect.as(Option.none<FineTuneError>()),
          Effect.catchTag("FineTuneError", (error) =>
            error.permanent
              ? Effect.succeed(Option.some(new FineTuneError({ message: `fine-tune job ${job.id}: ${error.message} (polling stops: this refusal will not change by itself)`, unreachable: false, permanent: true })))
              // Unreachable or failing now: the job stays as it is, and is asked again next poll.
              : Effect.as(Effect.logWarning(`fine-tune job ${job.id}: ${error.message}`), Option.none()))
        )
      })

    /** Whether a job was started where this poller asks; jobs from before endpoints were recorded are taken to be. */
    const startedHere = (job: FineTuneJob) => job.provider === provider.provider && (job.endpoint === null || job.endpoint === provider.endpoint)
    const saidElsewhere = new Set<string>()

    const pollOnce = Effect.gen(function*() {
      const [here, elsewhere] = Array.partition(yield* store.unfinished(), (job) => !startedHere(job))
      for (const job of elsewhere.filter((j) => !saidElsewhere.has(j.id))) {
        saidElsewhere.add(job.id)
        yield* Effect.logWarning(
          `fine-tune job ${job.id} was started on ${job.provider}${job.endpoint === null ? "" : ` at ${job.endpoint}`}, not on the configured ${provider.provider} at ${provider.endpoint}: not polled here`
        )
      }
      const refusals = yield* Effect.forEach(here, pollJob, { concurrency: 4 })
      const refusal = Array.getSomes(refusals)[0]
      if (refusal !== undefined) return yield* refusal
      return (yield* store.unfinished(provider.provider)).filter(startedHere).length
    })

    const every = Schedule.spaced(config.pollEvery)

    return FineTunes.of({
      consider,
      pollOnce,
      untilDone: Effect.asVoid(Effect.repeat(pollOnce, { schedule: every, until: (left) => left === 0 })),
      // A daemon's poller goes on whatever the provider says: a refusal is a warning each poll until it is fixed.
      run: Effect.repeat(pollOnce.pipe(Effect.catchTag("FineTuneError", (error) => Effect.as(Effect.logWarning(error.message), 0))), every).pipe(
        Effect.zipRight(Effect.never)
      ),
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
          if (!startedHere(job)) {
            return yield* new BadInput({ message: `fine-tune job ${id} was started at ${job.endpoint}, not at the configured ${provider.endpoint}: cancel it with that endpoint configured` })
          }
          if (job.provider_job_id === null) return yield* new BadInput({ message: `fine-tune job ${id} is still starting: cancel it once its provider has it` })
          return yield* Effect.flatMap(provider.cancel(job.provider_job_id), (reported) => apply(job, reported))
        })
    })
  })

export const layer = (config: FineTunesConfig): Layer.Layer<FineTunes, never, FineTuneStore | FineTune> => Layer.effect(FineTunes, make(config))

/**
 * `AUTOPILOT_FINETUNE_THRESHOLD` (default 100), `AUTOPILOT_FINETUNE_BASE_MODEL` (default
 * gpt-4o-mini-2024-07-18), `AUTOPILOT_FINETUNE_POLL_SECONDS` (default 30); a bad value is one line. Snapshots are
 * kept in `$AUTOPILOT_HOME/finetune/datasets`.
 */
export const config: Effect.Effect<FineTunesConfig & { readonly snapshots: string }, BadInput> = Effect.gen(function*() {
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
  const snapshots = path.join(yield* Effect.orDie(home), "finetune", "datasets")
  return { threshold, baseModel, pollEvery, snapshots }
})

export const layerConfig: Layer.Layer<FineTunes, BadInput, FineTuneStore | FineTune> = Layer.unwrapEffect(Effect.map(config, layer))
