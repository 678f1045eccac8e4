import { Clock, Context, DateTime, Duration, Effect, Layer, Ref } from "effect"
import { FineTuneError, type ProviderEvent, type ProviderJob, type ProviderStatus } from "./FineTuneJob.js"

/** What a provider needs to start a job: a chat fine-tuning JSONL file and the model to tune. */
export interface StartRequest {
  readonly file: string
  readonly base_model: string
  /** Goes into the model's name where the provider allows (OpenAI's `suffix`): the dataset, so it can be told apart. */
  readonly suffix: string
}

/**
 * Where fine-tunes run: OpenAI or a provider speaking its API (OpenAiFineTune), a trainer command on this
 * machine (CommandFineTune), or a mock on the Clock. Jobs are named by the provider's id; the store and
 * the polling live in FineTunes.
 */
export class FineTune extends Context.Tag("autopilot/FineTune")<
  FineTune,
  {
    /** Recorded with each job, so that a poller asks only the provider that holds it. */
    readonly provider: string
    /** Where this provider's jobs live (a base URL, a trainer command), recorded with each job it starts. */
    readonly endpoint: string
    /** The longest a `start` can take (its timeouts): a claim older than this without a provider job lost its starter. */
    readonly startsWithin: Duration.Duration
    readonly start: (request: StartRequest) => Effect.Effect<ProviderJob, FineTuneError>
    readonly retrieve: (id: string) => Effect.Effect<ProviderJob, FineTuneError>
    /**
     * What the provider logged about the job, oldest first; `after` is the id of the last event already
     * recorded, so a provider that can (a trainer's output, read from where it was left) gives only newer ones.
     */
    readonly events: (id: string, after: string | null) => Effect.Effect<ReadonlyArray<ProviderEvent>, FineTuneError>
    readonly cancel: (id: string) => Effect.Effect<ProviderJob, FineTuneError>
  }
>() {}

export interface MockOptions {
  /** How long each of `validating_files`, `queued` and `running` lasts on the Clock (default 1 minute). */
  readonly step?: Duration.DurationInput | undefined
  /** Every job fails at the end of `running` with this error instead of succeeding. */
  readonly failWith?: string | undefined
}

const mockPhases: ReadonlyArray<ProviderStatus> = ["validating_files", "queued", "running"]

interface MockJob {
  readonly id: string
  readonly base_model: string
  readonly created: number
  readonly cancelled: number | null
}

/** A job that moves through `validating_files → queued → running → succeeded` as the Clock goes (TestClock drives it). */
export const makeMock = (options: MockOptions = {}) =>
  Effect.gen(function*() {
    const step = Duration.toMillis(options.step ?? Duration.minutes(1))
    const jobs = yield* Ref.make(new Map<string, MockJob>())
    const counter = yield* Ref.make(0)

    const phaseAt = (job: MockJob, now: number): number => Math.floor((Math.min(now, job.cancelled ?? now) - job.created) / step)

    const view = (job: MockJob, now: number): ProviderJob => {
      const phase = phaseAt(job, now)
      if (job.cancelled !== null) return { id: job.id, status: "cancelled", fine_tuned_model: null, base_url: null, error: null }
      if (phase < mockPhases.length) return { id: job.id, status: mockPhases[phase]!, fine_tuned_model: null, base_url: null, error: null }
      return options.failWith === undefined
        ? { id: job.id, status: "succeeded", fine_tuned_model: `ft:${job.base_model}:autopilot:${job.id}`, base_url: null, error: null }
        : { id: job.id, status: "failed", fine_tuned_model: null, base_url: null, error: options.failWith }
    }

    const find = (id: string) =>
      Effect.flatMap(Ref.get(jobs), (all) => {
        const job = all.get(id)
        return job === undefined ? Effect.fail(new FineTuneError({ message: `the mock fine-tune provider has no job "${id}"`, unreachable: false })) : Effect.succeed(job)
      })

    return FineTune.of({
      provider: "mock",
      endpoint: "mock",
      startsWithin: Duration.zero,
      start: (request) =>
        Effect.gen(function*() {
          const n = yield* Ref.updateAndGet(counter, (c) => c + 1)
          const job: MockJob = { id: `ftjob-mock-${n}`, base_model: request.base_model, created: yield* Clock.currentTimeMillis, cancelled: null }
          yield* Ref.update(jobs, (all) => new Map(all).set(job.id, job))
          return view(job, job.created)
        }),
      retrieve: (id) => Effect.flatMap(find(id), (job) => Effect.map(Clock.currentTimeMillis, (now) => view(job, now))),
      events: (id) =>
        Effect.gen(function*() {
          const job = yield* find(id)
          const now = yield* Clock.currentTimeMillis
          const reached = Math.min(phaseAt(job, now), mockPhases.length)
          const shown = [...mockPhases.slice(0, reached + 1), ...(reached === mockPhases.length ? [view(job, now).status] : [])]
          return shown.map((status, i) => ({
            id: `${id}-event-${i}`,
            at: DateTime.formatIso(DateTime.unsafeMake(job.created + i * step)),
            level: status === "failed" ? "error" : "info",
            message: status === "failed" ? `job failed: ${options.failWith}` : `job is ${status.replace("_", " ")}`
          }))
        }),
      cancel: (id) =>
        Effect.gen(function*() {
          const job = yield* find(id)
          const now = yield* Clock.currentTimeMillis
          if (phaseAt(job, now) >= mockPhases.length || job.cancelled !== null) return view(job, now)
          const cancelled = { ...job, cancelled: now }
          yield* Ref.update(jobs, (all) => new Map(all).set(id, cancelled))
          return view(cancelled, now)
        })
    })
  })

export const layerMock = (options: MockOptions = {}): Layer.Layer<FineTune> => Layer.effect(FineTune, makeMock(options))
