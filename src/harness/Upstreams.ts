import { Chunk, Config, DateTime, FiberId, Duration, Effect, Either, Option, type ParseResult, Redacted, Schema, type Scope, Stream } from "effect"
import OpenAI from "openai"
import { BadInput } from "../domain/Errors.js"
import * as OpenAiCompat from "../llm/OpenAiCompat.js"
import { fromSdkStream } from "../llm/SdkStream.js"
import type { HarnessConfig, ModelEntry } from "./HarnessConfig.js"
import * as Forwarder from "./Forwarder.js"
import * as SseEvents from "./SseEvents.js"
import { describeParseError, HarnessError } from "./HarnessError.js"

/** An upstream's 200 that is a completion: read as decoded, relayed as it came, every field in its order. */
export interface Completion {
  readonly completion: OpenAiCompat.ChatCompletion
  readonly body: unknown
}

/** An upstream's 200 that is no completion: the 502 the client gets, and what the body says it used. */
export interface NotACompletion {
  readonly error: HarnessError
  readonly usage: Option.Option<OpenAiCompat.Usage>
}

/**
 * The upstreams a harness forwards to: chat completions, plain or streamed, through the lean Forwarder; the
 * Responses API through the official SDK; no retries of their own: clients retry.
 * What an upstream answers is checked here, and every message quoting it has the upstream's key scrubbed.
 */
export interface Upstreams {
  readonly complete: (model: ModelEntry, body: object) => Effect.Effect<Either.Either<Completion, NotACompletion>, HarnessError>
  /**
   * `complete` in node callbacks, for the plain-completion fast path (PlainChat.ts): `done` is called once with
   * what `complete` would succeed (right) or fail (left) with; the function returned cancels the call.
   */
  readonly completeNow: (
    model: ModelEntry,
    body: object,
    done: (outcome: Either.Either<Either.Either<Completion, NotACompletion>, HarnessError>) => void
  ) => () => void
  /**
   * Resolves once the upstream has sent its first chunk, so an upstream that fails, or answers with
   * something other than completion chunks, is still a proper status: nothing has been sent to the client.
   */
  readonly stream: (model: ModelEntry, body: object) => Effect.Effect<Stream.Stream<StreamedChunk, HarnessError>, HarnessError>
  /** `POST /responses` on an upstream that has the Responses API: its Response object, checked as `complete` checks. */
  readonly respond: (model: ModelEntry, body: object) => Effect.Effect<Either.Either<Answered, NotACompletion>, HarnessError>
  /** Its events, streamed, resolving at the first as `stream` does. */
  readonly respondStream: (model: ModelEntry, body: object) => Effect.Effect<Stream.Stream<ResponsesEvent, HarnessError>, HarnessError>
}

/** A chunk of a streamed completion: as read, and as the bytes of the event it came in, to relay unchanged. */
export interface StreamedChunk {
  readonly chunk: OpenAiCompat.ChatCompletionChunk
  readonly raw: Uint8Array
}

/** An upstream's Response object: read for its usage (Responses counts), relayed as it came. */
export interface Answered {
  readonly usage: Option.Option<OpenAiCompat.Usage>
  readonly body: unknown
}

/** One event of a Responses stream: its type is all that is read of most. */
export const ResponsesEvent = Schema.Struct({ type: Schema.String })
export type ResponsesEvent = typeof ResponsesEvent.Type & Record<string, unknown>

/** A Responses usage in chat's counts, which the ledger and prices take. */
const tokens = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const ResponsesUsage = Schema.Struct({ input_tokens: tokens, output_tokens: tokens })
export const responsesUsage = (usage: unknown): Option.Option<OpenAiCompat.Usage> =>
  Option.map(Schema.decodeUnknownOption(ResponsesUsage)(usage), (u) => ({ prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens }))

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

const decodeCompletion = Schema.decodeUnknownEither(OpenAiCompat.ChatCompletion)
/** What makes an answer a Response: the object says so and has its output; the rest is relayed as it came. */
const decodeResponse = Schema.decodeUnknownEither(
  Schema.Struct({ object: Schema.Literal("response"), output: Schema.Array(Schema.Unknown), usage: Schema.optional(Schema.Unknown) })
)
const reportedUsage = Schema.decodeUnknownOption(Schema.Struct({ usage: OpenAiCompat.Usage }))
const isChunk = Schema.is(OpenAiCompat.ChatCompletionChunk)
const isEvent = Schema.is(ResponsesEvent) as (item: unknown) => item is ResponsesEvent
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** What a body was instead of a completion, in a few words and the start of what it said. */
const describe = (body: unknown, error: ParseResult.ParseError) => {
  if (body === undefined || body === null || body === "") return "an empty body"
  if (typeof body === "string") return `text that is not JSON: ${OpenAiCompat.oneLine(body, 200)}`
  const { message, param } = describeParseError(error)
  return `${param || "body"}: ${OpenAiCompat.oneLine(message, 200)}`
}

export const make = (config: HarnessConfig): Effect.Effect<Upstreams, BadInput, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const clients = new Map<string, {
      readonly client: OpenAI
      readonly forwarder: Forwarder.Forwarder
      /** An upstream's misbehaviour as the client is told it: one line, without the upstream's key. */
      readonly tell: (status: number, message: string, fields?: Fields) => HarnessError
      readonly fail: (error: unknown) => Effect.Effect<never, HarnessError>
      /** `fail`'s error, now. */
      readonly failure: (error: unknown) => HarnessError
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
      const forwarder = Forwarder.make({ baseUrl: upstream.base_url, apiKey: Redacted.value(apiKey), timeout: idle })
      yield* Effect.addFinalizer(() => Effect.sync(forwarder.close))
      clients.set(name, {
        client: OpenAiCompat.client({ baseURL: upstream.base_url, apiKey, timeout: idle }),
        forwarder,
        tell,
        fail: (error) => Effect.flatMap(DateTime.now, (now) => Effect.fail(failed(error, now))),
        failure: (error) => failed(error, DateTime.unsafeMake(clock.unsafeCurrentTimeMillis())),
        idle
      })
    }
    const clientOf = (model: ModelEntry) => clients.get(model.upstream)!

    const completeNow = (
      model: ModelEntry,
      body: object,
      done: (outcome: Either.Either<Either.Either<Completion, NotACompletion>, HarnessError>) => void
    ) => {
      const { failure, forwarder, tell } = clientOf(model)
      return forwarder.postNow("/chat/completions", JSON.stringify({ ...body, stream: false }), (outcome) =>
        done(Either.match(outcome, {
          onLeft: (error) => Either.left(failure(error)),
          onRight: (answer) =>
            Either.right(Either.match(decodeCompletion(answer), {
              onLeft: (error) =>
                Either.left({
                  error: tell(502, `answered 200 with something that is not a chat completion (${describe(answer, error)})`),
                  usage: Option.map(reportedUsage(answer), ({ usage }) => usage)
                }),
              onRight: (completion) => Either.right({ completion, body: answer })
            }))
        })))
    }

    const complete = (model: ModelEntry, body: object) =>
      Effect.async<Either.Either<Completion, NotACompletion>, HarnessError>((resume) =>
        Effect.sync(completeNow(model, body, (outcome) => resume(Either.isRight(outcome) ? Effect.succeed(outcome.right) : Effect.fail(outcome.left))))
      )

    /** A stream of `what`s opened by `open`, each checked by `is`. */
    const streamOf = <A>(
      model: ModelEntry,
      open: (client: OpenAI, signal: AbortSignal) => Promise<AsyncIterable<unknown>>,
      is: (item: unknown) => item is A,
      what: string
    ) => {
      const { client, fail, idle, tell } = clientOf(model)
      const quiet = () => tell(504, `the stream went quiet for ${Duration.format(idle)}`)
      const checked = (chunk: unknown) =>
        is(chunk)
          ? Effect.succeed(chunk)
          : Effect.fail(tell(502, `streamed something that is not a ${what}: ${OpenAiCompat.oneLine(JSON.stringify(chunk) ?? "", 200)}`))
      const controller = new AbortController()
      return Effect.gen(function*() {
        const chunks = yield* Effect.tryPromise({
          try: () => open(client, controller.signal),
          catch: (error) => error
        }).pipe(Effect.catchAll(fail))
        const iterator: AsyncIterator<unknown> = chunks[Symbol.asyncIterator]()
        // A page from a misconfigured proxy has no events at all: the stream ends before its first chunk.
        const first = yield* Effect.tryPromise({ try: () => iterator.next(), catch: (error) => error }).pipe(
          Effect.catchAll(fail),
          Effect.timeoutFail({ duration: idle, onTimeout: quiet })
        )
        if (first.done === true) return yield* tell(502, `answered 200 with a stream that holds no ${what}s`)
        const head = yield* checked(first.value)
        // The client going away ends the stream, and with it the upstream's connection.
        const rest = fromSdkStream({ [Symbol.asyncIterator]: () => iterator }, controller, (error) => error).pipe(
          Stream.catchAll((error) => Stream.fromEffect(fail(error))),
          Stream.mapEffect(checked),
          Stream.timeoutFail(quiet, idle)
        )
        return Stream.concat(Stream.succeed(head), rest)
      }).pipe(Effect.onError(() => Effect.sync(() => controller.abort())))
    }

    /**
     * A chat stream read off the upstream's connection as it comes: each event's data parsed to check and
     * account for it, its bytes kept to be relayed as they came. Fails as the SDK's stream did: on a `data`
     * that is not JSON or carries an `error`; after `[DONE]` nothing more is read into chunks.
     */
    const stream = (model: ModelEntry, body: object) => {
      const { fail, forwarder, idle, tell } = clientOf(model)
      const quiet = () => tell(504, `the stream went quiet for ${Duration.format(idle)}`)
      const what = "chat completion chunk"
      return Effect.gen(function*() {
        const clock = yield* Effect.clock
        const answer = yield* forwarder.stream("/chat/completions", JSON.stringify(body)).pipe(Effect.catchAll(fail))
        const decoder = SseEvents.decoder()
        let done = false
        // A failure after chunks read in the same bytes: those go first, then it.
        let failure: Effect.Effect<never, HarnessError> | undefined
        // Since when a read has waited for the upstream; undefined while the client is the one to wait for.
        let waitingSince: number | undefined
        const chunksOf = (bytes: Buffer) => {
          waitingSince = undefined
          const chunks: Array<StreamedChunk> = []
          for (const event of decoder.push(bytes)) {
            if (done || event.data === null) continue
            if (event.data.startsWith("[DONE]")) {
              done = true
              continue
            }
            let data: unknown
            try {
              data = JSON.parse(event.data)
            } catch (error) {
              failure = fail(error)
              break
            }
            if (isRecord(data) && data["error"]) {
              failure = fail(new OpenAI.APIError(undefined, data["error"] as object, undefined, undefined))
              break
            }
            if (!isChunk(data)) {
              failure = Effect.fail(tell(502, `streamed something that is not a ${what}: ${OpenAiCompat.oneLine(JSON.stringify(data) ?? "", 200)}`))
              break
            }
            chunks.push({ chunk: data, raw: event.raw })
          }
          return chunks.length === 0 && failure !== undefined ? failure : Effect.succeed(chunks)
        }
        /** The chunks of the upstream's next bytes (maybe none yet); undefined at the body's end. */
        const next: Effect.Effect<ReadonlyArray<StreamedChunk> | undefined, HarnessError> = Effect.suspend(() => {
          if (failure !== undefined) return failure
          waitingSince = clock.unsafeCurrentTimeMillis()
          return Effect.flatMap(
            Effect.catchAll(answer.read, (error) => (error instanceof HarnessError ? Effect.fail(error) : fail(error))),
            (bytes) => (bytes === undefined ? Effect.succeed(undefined) : chunksOf(bytes))
          )
        })
        // One timer for the whole stream, not one per read (Stream.interruptWhen or a timeout per read cost more
        // CPU than the rest of the relay): it wakes when the upstream could have gone quiet, and if it has, fails
        // the waiting read and drops the connection.
        const idleMs = Duration.toMillis(idle)
        const watch: Effect.Effect<void> = Effect.suspend(() => {
          const left = waitingSince === undefined ? idleMs : waitingSince + idleMs - clock.unsafeCurrentTimeMillis()
          return left <= 0 ? Effect.sync(() => answer.abort(quiet())) : Effect.zipRight(Effect.sleep(Duration.millis(left)), watch)
        })
        const watchdog = yield* Effect.forkDaemon(watch)
        const stop = Effect.sync(() => {
          answer.close()
          watchdog.unsafeInterruptAsFork(FiberId.none)
        })
        // A page from a misconfigured proxy has no events at all: the body ends before its first chunk.
        const head = yield* Effect.gen(function*() {
          for (;;) {
            const chunks = yield* next
            if (chunks === undefined) return yield* tell(502, `answered 200 with a stream that holds no ${what}s`)
            if (chunks.length > 0) return chunks
          }
        }).pipe(Effect.onError(() => stop))
        const rest = Stream.repeatEffectChunkOption(
          next.pipe(
            Effect.mapError(Option.some),
            Effect.flatMap((chunks) => (chunks === undefined ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(chunks))))
          )
        )
        // The client going away ends the stream, and with it the upstream's connection.
        return Stream.fromIterable(head).pipe(
          Stream.concat(rest),
          Stream.ensuring(stop)
        )
      })
    }

    // The SDK's own `responses.create` adds `output_text` to the answer; a plain post relays it as it came.
    const respond = (model: ModelEntry, body: object) => {
      const { client, fail, tell } = clientOf(model)
      return Effect.tryPromise({
        try: (signal) => client.post<unknown>("/responses", { body: { ...body, stream: false }, signal }),
        catch: (error) => error
      }).pipe(
        Effect.catchAll(fail),
        Effect.map((answer) =>
          Either.match(decodeResponse(answer), {
            onLeft: (error) =>
              Either.left({
                error: tell(502, `answered 200 with something that is not a response (${describe(answer, error)})`),
                usage: responsesUsage(isRecord(answer) ? answer["usage"] : undefined)
              }),
            onRight: (response) => Either.right({ usage: responsesUsage(response.usage), body: answer })
          })
        )
      )
    }

    const respondStream = (model: ModelEntry, body: object) =>
      streamOf(
        model,
        (client, signal) => client.post<AsyncIterable<unknown>>("/responses", { body: { ...body, stream: true }, stream: true, signal }),
        isEvent,
        "Responses event"
      )

    return { complete, completeNow, stream, respond, respondStream }
  })
