import { Config, type ConfigError, DateTime, Effect, Layer, type Redacted } from "effect"
import type OpenAI from "openai"
import { toFile } from "openai"
import * as fs from "node:fs"
import * as path from "node:path"
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
  /** How requests are sent (tests, an in-process server). */
  readonly fetch?: typeof globalThis.fetch | undefined
}

/** Fine-tunes through the openai SDK against any server that speaks OpenAI's files and fine-tuning API. */
export const make = (config: OpenAiFineTuneConfig) =>
  Effect.sync(() => {
    const client = OpenAiCompat.client({ baseURL: config.baseURL, apiKey: config.apiKey, timeout: "60 seconds", fetch: config.fetch })
    const scrub = OpenAiCompat.scrubber(config.apiKey)
    const servingURL = config.servingURL ?? config.baseURL

    /** One line naming the endpoint and what went wrong; no connection at all is `unreachable`. */
    const fail = (doing: string) => (error: unknown) =>
      Effect.flatMap(DateTime.now, (now) => {
        if (error instanceof FineTuneError) return Effect.fail(error)
        const failure = OpenAiCompat.classify(error, now)
        const unreachable = failure.kind === "unreachable" || failure.kind === "timeout" || failure.kind === "invalid_url"
        const said = failure.kind === "timeout" ? "no answer in time" : failure.kind === "unreachable" ? `unreachable: ${failure.message}` : failure.message
        return Effect.fail(new FineTuneError({ message: OpenAiCompat.oneLine(scrub(`fine-tune endpoint ${config.baseURL} (${doing}): ${said}`)), unreachable }))
      })

    const call = <A>(doing: string, f: (signal: AbortSignal) => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e }).pipe(Effect.catchAll(fail(doing)))

    const jobOf = (job: OpenAI.FineTuning.FineTuningJob): ProviderJob => ({
      id: job.id,
      status: job.status,
      fine_tuned_model: job.fine_tuned_model ?? null,
      base_url: job.status === "succeeded" && job.fine_tuned_model ? servingURL : null,
      error: job.error?.message ? `${job.error.message}${job.error.code ? ` (${job.error.code})` : ""}` : job.status === "failed" ? "the provider gave no reason" : null
    })

    return FineTune.of({
      provider: "openai",
      start: (request) =>
        Effect.gen(function*() {
          const upload = yield* call("uploading the training file", async (signal) =>
            client.files.create({ file: await toFile(fs.createReadStream(request.file), path.basename(request.file)), purpose: "fine-tune" }, { signal }))
          const created = yield* call("creating the job", (signal) =>
            client.fineTuning.jobs.create({ training_file: upload.id, model: request.base_model, suffix: request.suffix.slice(0, 64) }, { signal }))
          return jobOf(created)
        }),
      retrieve: (id) => Effect.map(call(`reading job ${id}`, (signal) => client.fineTuning.jobs.retrieve(id, { signal })), jobOf),
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

export const layerConfig: Layer.Layer<FineTune, ConfigError.ConfigError> = Layer.unwrapEffect(Effect.map(config, layerOpenAi))
