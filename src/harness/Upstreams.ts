import { Config, Duration, Effect, Option, Redacted, Stream } from "effect"
import OpenAI from "openai"
import { BadInput } from "../domain/Errors.js"
import { fromSdkStream } from "../llm/SdkStream.js"
import type { HarnessConfig, ModelEntry } from "./HarnessConfig.js"
import { HarnessError } from "./HarnessError.js"

type Completion = OpenAI.Chat.ChatCompletion
type Chunk = OpenAI.Chat.ChatCompletionChunk

/** The upstreams a harness forwards to, through the official SDK, whose own retries are off: clients retry. */
export interface Upstreams {
  readonly complete: (model: ModelEntry, body: object) => Effect.Effect<Completion, HarnessError>
  /** Resolves once the upstream has answered with a status, so an early failure is still a proper status. */
  readonly stream: (model: ModelEntry, body: object) => Effect.Effect<Stream.Stream<Chunk, HarnessError>, HarnessError>
}

const plainFailure = (status: number, type: string, message: string) =>
  new HarnessError({ status, type, code: null, message })

/** An upstream's failure, told to the client without its key and as the status a client can act on. */
const failure = (upstream: string, scrub: (s: string) => string) => (error: unknown): HarnessError => {
  const plain = (status: number, type: string, message: string) => plainFailure(status, type, scrub(`upstream ${upstream}: ${message}`))
  if (error instanceof OpenAI.APIConnectionTimeoutError) return plain(504, "upstream_error", "timed out")
  if (error instanceof OpenAI.APIConnectionError) return plain(502, "upstream_error", "connection failed")
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    if (error.status >= 500) return plain(502, "upstream_error", `answered ${error.status}: ${error.message}`)
    // The harness's own key or model name is wrong: not something the client did, nor can fix by retrying
    // with its key, which a 401 passed on would tell it to.
    if (error.status === 401 || error.status === 403 || error.status === 404) {
      return plain(502, "upstream_error", `refused the harness (${error.status}): ${error.message}`)
    }
    const retryAfter = Number.parseFloat(error.headers?.get("retry-after") ?? "")
    return new HarnessError({
      status: error.status,
      type: error.type ?? "upstream_error",
      code: typeof error.code === "string" ? error.code : null,
      message: scrub(`upstream ${upstream}: ${error.message}`),
      ...(error.status === 429 && Number.isFinite(retryAfter) ? { retry_after_ms: retryAfter * 1000 } : {})
    })
  }
  // An error event in the middle of a stream, or a body that is not JSON.
  return plain(502, "upstream_error", error instanceof Error ? error.message : String(error))
}

export const make = (config: HarnessConfig): Effect.Effect<Upstreams, BadInput> =>
  Effect.gen(function*() {
    const clients = new Map<string, { client: OpenAI; fail: (error: unknown) => HarnessError; idle: Duration.Duration }>()
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const key = upstream.api_key_env === undefined
        ? Option.none()
        : yield* Config.option(Config.redacted(upstream.api_key_env)).pipe(Effect.orDie)
      if (upstream.api_key_env !== undefined && Option.isNone(key)) {
        return yield* new BadInput({ message: `harness upstream "${name}": environment variable ${upstream.api_key_env} is not set` })
      }
      // A local server (vLLM, Ollama) takes no key; the SDK insists on one, so it gets a placeholder.
      const apiKey = Option.match(key, { onNone: () => "none", onSome: Redacted.value })
      const scrub = apiKey.length >= 8 ? (text: string) => text.replaceAll(apiKey, "[redacted]") : (text: string) => text
      const client = new OpenAI({
        baseURL: upstream.base_url,
        apiKey,
        maxRetries: 0,
        timeout: upstream.timeout_seconds * 1000,
        organization: null,
        project: null,
        logLevel: "off"
      })
      clients.set(name, { client, fail: failure(name, scrub), idle: Duration.seconds(upstream.timeout_seconds) })
    }
    const clientOf = (model: ModelEntry) => clients.get(model.upstream)!

    const complete = (model: ModelEntry, body: object) => {
      const { client, fail } = clientOf(model)
      return Effect.tryPromise({
        try: (signal) => client.chat.completions.create({ ...body, stream: false } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal }),
        catch: fail
      })
    }

    const stream = (model: ModelEntry, body: object) => {
      const { client, fail, idle } = clientOf(model)
      const controller = new AbortController()
      return Effect.tryPromise({
        try: () => client.chat.completions.create(body as OpenAI.Chat.ChatCompletionCreateParamsStreaming, { signal: controller.signal }),
        catch: fail
      }).pipe(
        Effect.onInterrupt(() => Effect.sync(() => controller.abort())),
        // The client going away ends the stream, and with it the upstream's connection.
        Effect.map((chunks) =>
          fromSdkStream(chunks, controller, fail).pipe(
            Stream.timeoutFail(() => plainFailure(504, "upstream_error", `upstream ${model.upstream}: the stream went quiet for ${Duration.format(idle)}`), idle)
          ))
      )
    }

    return { complete, stream }
  })
