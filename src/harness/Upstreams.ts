import { Config, DateTime, Duration, Effect, Option, Redacted, Stream } from "effect"
import type OpenAI from "openai"
import { BadInput } from "../domain/Errors.js"
import * as OpenAiCompat from "../llm/OpenAiCompat.js"
import { fromSdkStream } from "../llm/SdkStream.js"
import type { HarnessConfig, ModelEntry } from "./HarnessConfig.js"
import { HarnessError } from "./HarnessError.js"

type Completion = OpenAI.Chat.ChatCompletion
type Chunk = OpenAI.Chat.ChatCompletionChunk

/**
 * The upstreams a harness forwards to, through the official SDK, whose own retries are off: clients retry.
 * Every message quoting an upstream has the upstream's key scrubbed.
 */
export interface Upstreams {
  readonly complete: (model: ModelEntry, body: object) => Effect.Effect<Completion, HarnessError>
  /** Resolves once the upstream has answered with a status, so an early failure is still a proper status. */
  readonly stream: (model: ModelEntry, body: object) => Effect.Effect<Stream.Stream<Chunk, HarnessError>, HarnessError>
}

interface Fields {
  readonly type?: string
  readonly code?: string | null
  readonly param?: string
  readonly final?: boolean
  readonly retry_after_ms?: number
}

/**
 * An upstream's failure, told to the client as the status a client can act on. `final` marks what a client
 * must not retry although its status would invite it.
 */
const failure = (tell: (status: number, message: string, fields?: Fields) => HarnessError) => (error: unknown, now: DateTime.Utc) => {
  const failed = OpenAiCompat.classify(error, now)
  const answer = (status: number, message: string, fields: Fields = {}) =>
    tell(status, message, {
      ...(failed.verdict !== "transient" && OpenAiCompat.retryableStatus(status) ? { final: true } : {}),
      ...Option.match(failed.retryAfter, { onNone: () => ({}), onSome: (wait) => ({ retry_after_ms: Duration.toMillis(wait) }) }),
      ...fields
    })
  switch (failed.kind) {
    case "timeout":
      return answer(504, "timed out")
    // Where the harness's upstreams live is the operator's business, not the client's.
    case "unreachable":
      return answer(502, "connection failed")
    case "status": {
      const status = failed.status!
      if (status >= 500 || status < 400) return answer(502, `answered ${status}: ${failed.message}`)
      // The harness's own key or model name is wrong: not something the client did, nor can fix by retrying
      // with its key, which a 401 passed on would tell it to.
      if (status === 401 || status === 403 || status === 404) return answer(502, `refused the harness (${status}): ${failed.message}`)
      return answer(status, failed.message, {
        type: failed.type ?? "upstream_error",
        code: failed.code ?? null,
        ...(failed.param === undefined ? {} : { param: failed.param })
      })
    }
    case "unreadable":
      return answer(502, `the answer could not be read: ${failed.message}`)
    // An error event in the middle of a stream, or a base URL the config let through.
    default:
      return answer(502, failed.message, failed.code === undefined ? {} : { code: failed.code })
  }
}

export const make = (config: HarnessConfig): Effect.Effect<Upstreams, BadInput> =>
  Effect.gen(function*() {
    const clients = new Map<string, {
      readonly client: OpenAI
      /** An upstream's misbehaviour as the client is told it: one line, without the upstream's key. */
      readonly tell: (status: number, message: string, fields?: Fields) => HarnessError
      readonly fail: (error: unknown) => Effect.Effect<never, HarnessError>
      readonly idle: Duration.Duration
    }>()
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      const key = upstream.api_key_env === undefined
        ? Option.none()
        : yield* Config.option(Config.redacted(upstream.api_key_env)).pipe(Effect.orDie)
      if (upstream.api_key_env !== undefined && Option.isNone(key)) {
        return yield* new BadInput({ message: `harness upstream "${name}": environment variable ${upstream.api_key_env} is not set` })
      }
      // A local server (vLLM, Ollama) takes no key; the SDK insists on one, so it gets a placeholder.
      const apiKey = Option.getOrElse(key, () => Redacted.make("none"))
      const scrub = OpenAiCompat.scrubber(apiKey)
      const idle = Duration.seconds(upstream.timeout_seconds)
      const tell = (status: number, message: string, fields: Fields = {}) =>
        new HarnessError({
          status,
          type: "upstream_error",
          code: null,
          message: OpenAiCompat.oneLine(scrub(`upstream ${name}: ${message}`)),
          ...fields
        })
      const failed = failure(tell)
      clients.set(name, {
        client: OpenAiCompat.client({ baseURL: upstream.base_url, apiKey, timeout: idle }),
        tell,
        fail: (error) => Effect.flatMap(DateTime.now, (now) => Effect.fail(failed(error, now))),
        idle
      })
    }
    const clientOf = (model: ModelEntry) => clients.get(model.upstream)!

    const complete = (model: ModelEntry, body: object) => {
      const { client, fail } = clientOf(model)
      return Effect.tryPromise({
        try: (signal) => client.chat.completions.create({ ...body, stream: false } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal }),
        catch: (error) => error
      }).pipe(Effect.catchAll(fail))
    }

    const stream = (model: ModelEntry, body: object) => {
      const { client, fail, idle, tell } = clientOf(model)
      const controller = new AbortController()
      return Effect.tryPromise({
        try: () => client.chat.completions.create(body as OpenAI.Chat.ChatCompletionCreateParamsStreaming, { signal: controller.signal }),
        catch: (error) => error
      }).pipe(
        Effect.catchAll(fail),
        Effect.onInterrupt(() => Effect.sync(() => controller.abort())),
        // The client going away ends the stream, and with it the upstream's connection.
        Effect.map((chunks) =>
          fromSdkStream(chunks, controller, (error) => error).pipe(
            Stream.catchAll((error) => Stream.fromEffect(fail(error))),
            Stream.timeoutFail(() => tell(504, `the stream went quiet for ${Duration.format(idle)}`), idle)
          )
        )
      )
    }

    return { complete, stream }
  })
