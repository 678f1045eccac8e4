import { Config, type ConfigError, DateTime, Duration, Effect, Layer, Option, type Redacted, Schema, Stream } from "effect"
import type OpenAI from "openai"
import { LlmError } from "../domain/Errors.js"
import {
  type ChatMessage,
  Llm,
  type LlmChunk,
  type LlmRequest,
  type LlmResponse,
  type OutputSchema,
  type ToolCallRequest,
  type ToolSpec
} from "./Llm.js"
import * as OpenAiCompat from "./OpenAiCompat.js"
import { fromSdkStream } from "./SdkStream.js"

export interface OpenAiLlmConfig {
  /** Where `/chat/completions` lives: `https://api.openai.com/v1`, a LiteLLM proxy, vLLM, Ollama's `/v1`. */
  readonly baseURL: string
  readonly apiKey: Redacted.Redacted<string>
  /** The model asked for when a request names none. */
  readonly model: string
  /**
   * OpenAI's reasoning models reject `max_tokens`; a server that knows only `max_tokens` ignores the newer
   * name, which costs the cap but not the call. Default `max_completion_tokens`.
   */
  readonly maxTokensParameter?: "max_tokens" | "max_completion_tokens" | undefined
  /**
   * The largest output cap every model behind `baseURL` accepts (default 4096). The runtime's cap is what is
   * left of the token budget, often millions, and OpenAI answers a cap above the model's own limit with a
   * 400; so a cap above this is not sent, and the model's own limit applies.
   */
  readonly outputTokenCeiling?: number | undefined
  /**
   * Take the dollars a proxy reports in `usage.cost_usd` (the harness does) instead of pricing the tokens
   * here. Off by default: a server's own figure is trusted only when the user chose that server.
   */
  readonly costFromProvider?: boolean | undefined
  /** How requests are sent; the in-process harness answers them without a socket. */
  readonly fetch?: typeof globalThis.fetch | undefined
  /** Headers a request carries beside the body (the harness's `x-autopilot-route`); none when it gives none. */
  readonly headers?: ((request: LlmRequest) => Record<string, string> | undefined) | undefined
}

const defaultModel = "gpt-4o-mini"
/** A server asking for a longer pause than this gets retried sooner; the run's own budgets still bound it. */
const maxRetryAfter = Duration.seconds(60)

type CompletionChunk = OpenAI.Chat.ChatCompletionChunk

const isCompletion = Schema.is(OpenAiCompat.ChatCompletion)
const costOf = Schema.decodeUnknownOption(Schema.Struct({ cost_usd: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()) }))

/**
 * A message in OpenAI's shape: an assistant turn with its tool calls (content null when it said nothing
 * else, as OpenAI gives it back), a tool message answering its call by id. A tool message without an id
 * (an older record) cannot answer a call, and OpenAI refuses one, so it is quoted as a user message.
 */
const toMessage = (message: ChatMessage): OpenAI.Chat.ChatCompletionMessageParam => {
  switch (message.role) {
    case "assistant":
      return message.tool_calls === undefined || message.tool_calls.length === 0
        ? { role: "assistant", content: message.content }
        : {
          role: "assistant",
          content: message.content === "" ? null : message.content,
          tool_calls: message.tool_calls.map((call) => ({ id: call.id, type: "function", function: { ...call.function } }))
        }
    case "tool":
      return message.tool_call_id === undefined
        ? { role: "user", content: `Tool result:\n${message.content}` }
        : { role: "tool", tool_call_id: message.tool_call_id, content: message.content }
    default:
      return { role: message.role, content: message.content }
  }
}

/** A call's id, or, from a server that sent none, one made from its place in the answer: its tool message must name one. */
const callId = (id: string | null | undefined, index: number) => (id ? id : `call_${index}`)

const toTool = (spec: ToolSpec): OpenAI.Chat.ChatCompletionFunctionTool => ({
  type: "function",
  function: { name: spec.name, description: spec.description, parameters: spec.parameters as Record<string, unknown> }
})

/** OpenAI's rule for a `json_schema` name; anything else in a node's schema name becomes `_`. */
const schemaName = (name: string) => name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64) || "output"

/**
 * Structured output, where the server supports it. Not `strict`: OpenAI's strict mode refuses schemas
 * that leave properties optional, which blueprints do; the runtime checks the answer itself either way.
 */
const responseFormat = (output: OutputSchema): OpenAI.ResponseFormatJSONSchema => ({
  type: "json_schema",
  json_schema: { name: schemaName(output.name), schema: output.schema as Record<string, unknown>, strict: false }
})

/** Malformed arguments stay a string, so the tool reports them as invalid to the model. */
const parseArguments = (raw: string): unknown => {
  if (raw.trim() === "") return {}
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

interface PartialCall {
  id: string
  name: string
  arguments: string
}

/** What a stream has said so far; tool calls arrive in pieces, keyed by their index. */
interface Assembly {
  content: string
  /** In order of arrival; `byIndex` finds the call a piece continues. */
  readonly calls: Array<PartialCall>
  readonly byIndex: Map<number, PartialCall>
  usage: unknown
  model: string
  /** A stream that ends without a finish_reason was cut off, whatever else it sent. */
  finished: boolean
}

/**
 * A chat model behind any OpenAI-compatible `/chat/completions`, through the official SDK. The SDK does not
 * retry: the runtime's Schedule does, so retries follow one policy instead of two stacked ones; a
 * Retry-After reaches it as the error's `retry_after_ms`.
 */
export const make = (config: OpenAiLlmConfig): Effect.Effect<Llm["Type"]> =>
  Effect.sync(() => {
    const client = OpenAiCompat.client(config)
    const scrub = OpenAiCompat.scrubber(config.apiKey)
    const provider = URL.canParse(config.baseURL) ? new URL(config.baseURL).host : config.baseURL
    const ceiling = config.outputTokenCeiling ?? 4096
    const capParameter = config.maxTokensParameter ?? "max_completion_tokens"

    const options = (request: LlmRequest, signal: AbortSignal) => {
      const headers = config.headers?.(request)
      return headers === undefined ? { signal } : { signal, headers }
    }

    const body = (request: LlmRequest, model: string) => ({
      model,
      messages: request.messages.map(toMessage),
      ...(request.tools.length > 0 ? { tools: request.tools.map(toTool) } : {}),
      ...(request.maxOutputTokens !== undefined && request.maxOutputTokens <= ceiling
        ? { [capParameter]: Math.max(1, Math.floor(request.maxOutputTokens)) }
        : {}),
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.output_schema === undefined ? {} : { response_format: responseFormat(request.output_schema) })
    })

    /** Fails at once; the server's Retry-After (capped) travels with the error for the runtime's schedule. */
    const fail = (model: string) => (error: unknown): Effect.Effect<never, LlmError> =>
      Effect.gen(function*() {
        const failure = OpenAiCompat.classify(error, yield* DateTime.now)
        const said = failure.kind === "timeout"
          ? "request timed out"
          : failure.kind === "unreachable"
          ? `connection failed: ${failure.message}`
          : failure.kind === "unreadable"
          ? `response failed: ${failure.message}`
          : failure.message
        return yield* new LlmError({
          message: OpenAiCompat.oneLine(scrub(`model ${model} at ${provider}: ${said}`)),
          transient: failure.verdict === "transient",
          ...(failure.verdict === "budget_exhausted" ? { budget_exhausted: true } : {}),
          retry_after_ms: Option.getOrUndefined(Option.map(failure.retryAfter, (d) => Duration.toMillis(Duration.min(d, maxRetryAfter))))
        })
      })

    /** Tokens must never silently be zero (or missing), or the token and dollar budgets stop gating the run. */
    const usageOf = (usage: unknown, model: string, how: string) =>
      Option.match(OpenAiCompat.usageOf(usage), {
        onNone: () =>
          Effect.fail(
            new LlmError({
              message: `model ${model} at ${provider} reported no token usage ${how}; the token and dollar budgets cannot be charged without it`,
              transient: false
            })
          ),
        onSome: (reported) => Effect.succeed({ input_tokens: reported.prompt_tokens, output_tokens: reported.completion_tokens })
      })
    const reportedCost = (usage: unknown): { cost_usd?: number } =>
      config.costFromProvider ? Option.match(costOf(usage), { onNone: () => ({}), onSome: ({ cost_usd }) => ({ cost_usd }) }) : {}

    const complete = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
      const model = request.model ?? config.model
      return Effect.tryPromise({
        try: (signal) => client.chat.completions.create(body(request, model), options(request, signal)),
        catch: (error) => error
      }).pipe(
        Effect.catchAll(fail(model)),
        Effect.flatMap((completion) =>
          Effect.gen(function*() {
            // A wrong base URL (an HTML page) or an error object sent with status 200 is no completion.
            if (!isCompletion(completion as unknown)) {
              return yield* new LlmError({
                message: `model ${model} at ${provider} did not answer like /chat/completions (no choices); check that the base URL ends in /v1`,
                transient: false
              })
            }
            const message = completion.choices[0]!.message
            return {
              content: message.content ?? message.refusal ?? "",
              tool_calls: (message.tool_calls ?? []).flatMap((call, index): ReadonlyArray<ToolCallRequest> =>
                call.type === "function"
                  ? [{ id: callId(call.id, index), name: call.function.name, arguments: parseArguments(call.function.arguments) }]
                  : []
              ),
              usage: yield* usageOf(completion.usage, model, "in its answer"),
              model: completion.model || model,
              ...reportedCost(completion.usage)
            } satisfies LlmResponse
          })
        )
      )
    }

    const absorb = (assembly: Assembly, chunk: CompletionChunk): ReadonlyArray<LlmChunk> => {
      if (chunk.model) assembly.model = chunk.model
      if (chunk.usage) assembly.usage = chunk.usage
      const choice = chunk.choices?.[0]
      if (choice?.finish_reason) assembly.finished = true
      const delta = choice?.delta
      if (delta === undefined) return []
      for (const piece of delta.tool_calls ?? []) {
        const index = piece.index ?? 0
        const known = assembly.byIndex.get(index)
        // Some servers send every call whole at index 0: a new id there is a new call, not more of the last.
        const call = known !== undefined && !(piece.id && known.id && piece.id !== known.id)
          ? known
          : { id: "", name: "", arguments: "" }
        if (call !== known) {
          assembly.calls.push(call)
          assembly.byIndex.set(index, call)
        }
        // Some servers repeat the id and name in every piece: the first one stands.
        if (call.id === "" && piece.id) call.id = piece.id
        if (call.name === "" && piece.function?.name) call.name = piece.function.name
        call.arguments += piece.function?.arguments ?? ""
      }
      const text = (delta.content ?? "") + (delta.refusal ?? "")
      if (text === "") return []
      assembly.content += text
      return [{ _tag: "Delta", text }]
    }

    const assembled = (assembly: Assembly, model: string) =>
      Effect.map(
        assembly.finished
          ? usageOf(assembly.usage, model, "at the end of its stream (does it support stream_options.include_usage?)")
          : Effect.fail(new LlmError({ message: `model ${model} at ${provider}: the stream ended before the answer did`, transient: true })),
        (usage): LlmChunk => ({
          _tag: "Done",
          response: {
            content: assembly.content,
            tool_calls: assembly.calls.map((call, index) => ({
              id: callId(call.id, index),
              name: call.name,
              arguments: parseArguments(call.arguments)
            })),
            usage,
            model: assembly.model || model,
            ...reportedCost(assembly.usage)
          }
        })
      )

    const stream = (request: LlmRequest): Stream.Stream<LlmChunk, LlmError> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const model = request.model ?? config.model
        // Lives as long as the stream: closing it early, or interrupting it, drops the connection.
        const controller = new AbortController()
        yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
        const chunks = yield* Effect.tryPromise({
          try: () =>
            client.chat.completions.create(
              { ...body(request, model), stream: true, stream_options: { include_usage: true } },
              options(request, controller.signal)
            ),
          catch: (error) => error
        }).pipe(Effect.catchAll(fail(model)))
        const assembly: Assembly = { content: "", calls: [], byIndex: new Map(), usage: undefined, model: "", finished: false }
        return fromSdkStream(chunks, controller, (error) => error).pipe(
          Stream.catchAll((error) => Stream.fromEffect(fail(model)(error))),
          Stream.mapConcat((chunk) => absorb(assembly, chunk)),
          Stream.concat(Stream.fromEffect(Effect.suspend(() => assembled(assembly, model))))
        )
      }))

    return { complete, stream }
  })

export const layer = (config: OpenAiLlmConfig): Layer.Layer<Llm> => Layer.effect(Llm, make(config))

/**
 * `AUTOPILOT_LLM_BASE_URL` (required, e.g. https://api.openai.com/v1), `AUTOPILOT_LLM_API_KEY` (required; any placeholder for a
 * server that ignores it) and `AUTOPILOT_LLM_MODEL` (default gpt-4o-mini; a request's model wins).
 */
export const config: Config.Config<OpenAiLlmConfig> = Config.all({
  // No default: a request goes only to a host the user named.
  baseURL: Config.url("AUTOPILOT_LLM_BASE_URL").pipe(Config.map((url) => url.href)),
  apiKey: Config.redacted("AUTOPILOT_LLM_API_KEY"),
  model: Config.nonEmptyString("AUTOPILOT_LLM_MODEL").pipe(Config.withDefault(defaultModel))
})

export const layerConfig: Layer.Layer<Llm, ConfigError.ConfigError> = Layer.unwrapEffect(Effect.map(config, layer))

export const OpenAiLlm = { defaultModel, make, layer, config, layerConfig }
