import { Config, type ConfigError, DateTime, Duration, Effect, Layer, Option, type Redacted } from "effect"
import type OpenAI from "openai"
import { toFile } from "openai"
import * as fs from "node:fs"
import * as path from "node:path"
import { BadInput } from "../domain/Errors.js"
import * as OpenAiCompat from "../llm/OpenAiCompat.js"
import { FineTune } from "./FineTune.js"
import { FineTuneError, type ProviderJob } from "./FineTuneJob.js"

export interface OpenAiFineTuneConfig {
  /** Where `/files` and `/fine_tuning/jobs` live: `https://api.openai.com/v1`, or a provider speaking the same API. */
  readonly baseURL: string
  readonly apiKey: Redacted.Redacted<string>
  /**
   * The endpoint that serves the tuned models, recorded with each job (default `baseURL`: OpenAI serves a
   * fine-tuned model where it trained it).
   */
  readonly servingURL?: string | undefined
  /** How long a call may take to be answered (default 60 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long the training file's upload may take (default 10 minutes): a JSONL file can be large. */
  readonly uploadTimeout?: Duration.DurationInput | undefined
  /** How requests are sent (tests, an in-process server). */
  readonly fetch?: typeof globalThis.fetch | undefined
}

/** Fine-tunes through the openai SDK against any server that speaks OpenAI's files and fine-tuning API. */
export const make = (config: OpenAiFineTuneConfig) =>
  Effect.sync(() => {
    const timeout = Duration.decode(config.timeout ?? Duration.seconds(60))
    const client = OpenAiCompat.client({ baseURL: config.baseURL, apiKey: config.apiKey, timeout, fetch: config.fetch })
    const uploadTimeout = Duration.decode(config.uploadTimeout ?? Duration.minutes(10))
    const scrub = OpenAiCompat.scrubber(config.apiKey)
    const servingURL = config.servingURL ?? config.baseURL

    /**
     * One line naming the endpoint and what went wrong; no connection at all is `unreachable`, a 4xx other
     * than 408/409/429 `permanent`. For a call that creates (`creates`), any failure after the request may have
     * gone out is `mayHoldJob`: only a 4xx, or a connection never made, certainly created nothing.
     */
    const fail = (doing: string, creates = false) => (error: unknown) =>
      Effect.flatMap(DateTime.now, (now) => {
        if (error instanceof FineTuneError) return Effect.fail(error)
        const failure = OpenAiCompat.classify(error, now)
        const unreachable = failure.kind === "unreachable" || failure.kind === "timeout" || failure.kind === "invalid_url"
        const permanent = failure.kind === "status" && failure.status !== undefined && !OpenAiCompat.retryableStatus(failure.status)
        const refused = failure.kind === "status" && failure.status !== undefined && failure.status < 500
        const mayHoldJob = creates && !refused && !neverSent(error)
        const said = failure.kind === "timeout" ? "no answer in time" : failure.kind === "unreachable" ? `unreachable: ${failure.message}` : failure.message
        return Effect.fail(new FineTuneError({ message: OpenAiCompat.oneLine(scrub(`fine-tune endpoint ${config.baseURL} (${doing}): ${said}`)), unreachable, permanent, mayHoldJob }))
      })

    const call = <A>(doing: string, f: (signal: AbortSignal) => Promise<A>, creates = false) =>
      Effect.tryPromise({ try: f, catch: (e) => e }).pipe(Effect.catchAll(fail(doing, creates)))

    const jobOf = (job: OpenAI.FineTuning.FineTuningJob): ProviderJob => ({
      id: job.id,
      status: job.status,
      fine_tuned_model: job.fine_tuned_model ?? null,
      base_url: job.status === "succeeded" && job.fine_tuned_model ? servingURL : null,
      error: job.error?.message ? `${job.error.message}${job.error.code ? ` (${job.error.code})` : ""}` : job.status === "failed" ? "the provider gave no reason" : null
    })

    return FineTune.of({
      provider: "openai",
      endpoint: config.baseURL,
      startsWithin: Duration.sum(uploadTimeout, timeout),
      start: (request) =>
        Effect.gen(function*() {
          // An upload that fails, however, leaves no job: at most a file the provider keeps.
          const upload = yield* call("uploading the training file", async (signal) =>
            client.files.create({ file: await toFile(fs.createReadStream(request.file), path.basename(request.file)), purpose: "fine-tune" }, { signal, timeout: Duration.toMillis(uploadTimeout) }))
          const created = yield* call("creating the job", (signal) =>
            client.fineTuning.jobs.create({ training_file: upload.id, model: request.base_model, suffix: request.suffix.slice(0, 64) }, { signal }), true)
          return jobOf(created)
        }),
      retrieve: (id) => Effect.map(call(`reading job ${id}`, (signal) => client.fineTuning.jobs.retrieve(id, { signal })), jobOf),
      // OpenAI's cursor pages towards older events: the newest hundred are read, and each is written once by its id.
      events: (id) =>
        Effect.map(call(`reading the events of job ${id}`, (signal) => client.fineTuning.jobs.listEvents(id, { limit: 100 }, { signal })), (page) =>
          // OpenAI lists the newest first.
          page.data.map((event) => ({
            id: event.id,
            at: DateTime.formatIso(DateTime.unsafeMake(event.created_at * 1000)),
            level: event.level,
            message: event.message
          })).reverse()),
      cancel: (id) => Effect.map(call(`cancelling job ${id}`, (signal) => client.fineTuning.jobs.cancel(id, { signal })), jobOf)
    })
  })

/** Connection errors that mean the request never reached the server: nothing there can have been created. */
const unsentCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ERR_INVALID_URL"])

const neverSent = (error: unknown): boolean => {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (unsentCodes.has(String((current as { code?: unknown }).code))) return true
  }
  return false
}

export const layerOpenAi = (config: OpenAiFineTuneConfig): Layer.Layer<FineTune> => Layer.effect(FineTune, make(config))

/**
 * `AUTOPILOT_FINETUNE_BASE_URL` (required: requests go only to a host the user named, e.g.
 * https://api.openai.com/v1), `AUTOPILOT_FINETUNE_API_KEY` (required), `AUTOPILOT_FINETUNE_SERVING_URL`
 * (default the base URL).
 */
export const config: Config.Config<OpenAiFineTuneConfig> = Config.all({
  baseURL: Config.url("AUTOPILOT_FINETUNE_BASE_URL").pipe(Config.map((url) => url.href.replace(/\/$/, ""))),
  apiKey: Config.redacted("AUTOPILOT_FINETUNE_API_KEY"),
  servingURL: Config.option(Config.url("AUTOPILOT_FINETUNE_SERVING_URL")).pipe(Config.map((url) => url._tag === "Some" ? url.value.href.replace(/\/$/, "") : undefined))
})

/** `AUTOPILOT_FINETUNE_UPLOAD_SECONDS`, how long the upload may take: a whole number from 1 to 86400, else one line. */
export const uploadTimeoutConfig: Effect.Effect<Duration.Duration | undefined, BadInput> = Config.option(Config.string("AUTOPILOT_FINETUNE_UPLOAD_SECONDS")).pipe(
  Effect.orDie,
  Effect.flatMap((raw) => {
    if (Option.isNone(raw) || raw.value.trim() === "") return Effect.succeed(undefined)
    const value = /^\d{1,5}$/.test(raw.value.trim()) ? Number(raw.value.trim()) : Number.NaN
    return value >= 1 && value <= 86_400
      ? Effect.succeed(Duration.seconds(value))
      : Effect.fail(new BadInput({ message: `AUTOPILOT_FINETUNE_UPLOAD_SECONDS must be a whole number of seconds from 1 to 86400, got "${raw.value}"` }))
  })
)

export const layerConfig: Layer.Layer<FineTune, ConfigError.ConfigError | BadInput> = Layer.unwrapEffect(
  Effect.map(Effect.all([config, uploadTimeoutConfig]), ([read, uploadTimeout]) => layerOpenAi({ ...read, uploadTimeout }))
)
