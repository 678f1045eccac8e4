import { type HttpApp, HttpBody, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, DateTime, Effect, Exit, FiberRef, Stream } from "effect"
import type { LedgerEntry } from "./HarnessStore.js"

/** What handling one request learned about it, for its log line; the routes note it as they go. */
export interface Facts {
  key_id?: string
  /** The request's ledger row, for a chat request that got one: models, tokens and cost. */
  entry?: LedgerEntry
}

/** The current request's facts; none where requests are not logged (in process, or served with --quiet). */
export const current = FiberRef.unsafeMake<Facts | undefined>(undefined)

export const note = (facts: Facts): Effect.Effect<void> =>
  Effect.map(FiberRef.get(current), (noted) => {
    if (noted !== undefined) Object.assign(noted, facts)
  })

/** A logfmt value: bare when it is one printable token, quoted and escaped otherwise (a model name is the client's text). */
const value = (text: string) => (/^[\x21-\x7e]+$/.test(text) && !/["=\\]/.test(text) ? text : JSON.stringify(text))

/** One request as one logfmt line: never the key, only its id. */
export const line = (request: {
  readonly at: DateTime.Utc
  readonly method: string
  readonly path: string
  readonly status: number
  readonly latency_ms: number
  readonly facts: Facts
}): string => {
  const { entry, key_id } = request.facts
  const fields = [
    `at=${DateTime.formatIso(request.at)}`,
    `method=${value(request.method)}`,
    `path=${value(request.path)}`,
    `status=${request.status}`,
    ...(key_id === undefined && entry === undefined ? [] : [`key_id=${value(entry?.key_id ?? key_id!)}`]),
    ...(entry === undefined ? [] : [
      `model=${value(entry.model_requested)}`,
      `model_used=${entry.model_used === null ? "-" : value(entry.model_used)}`,
      `input_tokens=${entry.input_tokens}`,
      `output_tokens=${entry.output_tokens}`,
      `cost_usd=${entry.cost_usd}`
    ]),
    `latency_ms=${request.latency_ms}`
  ]
  return fields.join(" ")
}

/** The line of a request to `url` begun at `startedAt` (ms) and answered with `status` at `at`. */
export const answeredLine = (method: string, url: string, status: number, startedAt: number, at: DateTime.Utc, facts: Facts) =>
  line({ at, method, path: url.split("?", 1)[0]!, status, latency_ms: DateTime.toEpochMillis(at) - startedAt, facts })

/**
 * Writes one line per request once it is answered: a streamed answer when its stream ends, with what the
 * ledger row says it used; a request whose client went away as 499, as proxies log it.
 */
export const logged = (write: (line: string) => Effect.Effect<void>) => <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => answering(write, request.method, request.url)(app))

/** A request's facts so far and when it came: what `answering` starts from for a request begun elsewhere. */
export interface Begun {
  readonly facts: Facts
  readonly startedAt: number
}

/**
 * As `logged`, for the response `handle` makes to a request known by its method and URL; `begun` when the
 * plain-completion fast path (PlainChat.ts) hands it over part way, with what it noted.
 */
export const answering = (write: (line: string) => Effect.Effect<void>, method: string, url: string, begun?: Begun) =>
<E, R>(handle: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.gen(function*() {
    const startedAt = begun?.startedAt ?? (yield* Clock.currentTimeMillis)
    const facts: Facts = begun?.facts ?? {}
    const log = (status: number) => Effect.flatMap(DateTime.now, (at) => write(answeredLine(method, url, status, startedAt, at, facts)))
    const response = yield* Effect.locally(handle, current, facts).pipe(
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : log(Exit.isInterrupted(exit) ? 499 : 500)))
    )
    const body = response.body
    if (body._tag !== "Stream") return yield* Effect.as(log(response.status), response)
    return HttpServerResponse.setBody(
      response,
      HttpBody.stream(Stream.ensuring(body.stream, Effect.suspend(() => log(response.status))), body.contentType, body.contentLength)
    )
  })
