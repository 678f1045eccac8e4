import * as Sse from "@effect/experimental/Sse"
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Context, Data, Effect, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"
import { AutopilotApi, prefix } from "../api/Api.js"
import * as ApiError from "../api/ApiError.js"
import { AutopilotEventJson, type AutopilotEvent } from "../domain/Event.js"
import type { MissionStatus } from "../domain/MissionState.js"
import * as MissionJson from "../missions/MissionJson.js"
import type { RunState } from "../runtime/Runs.js"
import * as RunJson from "./RunJson.js"
import type { Connection } from "./Server.js"

/**
 * The CLI's client of `autopilot serve`: the HttpApi's derived client with the token and the project on
 * every request, its answers decoded into what the commands print, and every way a call can fail as one
 * line: the server's own message for what it refused, the URL for a server that cannot be reached.
 */

/** The server refused the request (a 4xx): its message, as the same command run locally would say it. */
export class ServerRefused extends Schema.TaggedError<ServerRefused>()("ServerRefused", { message: Schema.String }) {}

/** No autopilot answers at the URL: nothing listens, the name does not resolve, or something else answers. */
export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  url: Schema.String,
  reason: Schema.String
}) {
  get message() {
    return `cannot use the server at ${this.url}: ${this.reason}`
  }
}

/** The server could not do it (a 5xx: its database or its model is out of reach). */
export class ServerFailed extends Schema.TaggedError<ServerFailed>()("ServerFailed", { message: Schema.String }) {}

/** A followed run's process is gone, as the server tells it: `events --follow` exits 5, as it does locally. */
export class ServerRunInterrupted extends Schema.TaggedError<ServerRunInterrupted>()("ServerRunInterrupted", { message: Schema.String }) {}

export type RemoteError = ServerRefused | ServerUnreachable | ServerFailed

/** What a command prints: `json` as it is for --format json, `view` decoded for its text. */
export interface Shown<A> {
  readonly json: unknown
  readonly view: A
}

const tagOf = (error: unknown) => (typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "")

const codes: Record<string, string> = {
  ECONNREFUSED: "nothing listens there (ECONNREFUSED)",
  ENOTFOUND: "no such host (ENOTFOUND)",
  EAI_AGAIN: "its host name could not be looked up (EAI_AGAIN)",
  ECONNRESET: "it closed the connection (ECONNRESET)",
  ETIMEDOUT: "it did not answer in time (ETIMEDOUT)"
}

/** What fetch's "fetch failed" was: the innermost of its causes, by its code where it has one. */
const transportReason = (cause: unknown): string => {
  let reason = cause instanceof Error ? cause.message : String(cause)
  let at: unknown = cause
  for (let depth = 0; depth < 5 && typeof at === "object" && at !== null; depth++) {
    const { cause: inner, code, message } = at as { readonly code?: unknown; readonly cause?: unknown; readonly message?: unknown }
    if (typeof code === "string") return codes[code] ?? code
    if (typeof message === "string" && message !== "") reason = message
    at = inner
  }
  return reason
}

/** Every failure of a call to the server as one of the three, never with a stack trace. */
export const failureOf = (url: string) => (error: unknown): RemoteError => {
  const e = error as { readonly message?: string; readonly reason?: string; readonly cause?: unknown; readonly response?: { readonly status: number } }
  switch (tagOf(error)) {
    case "Unauthorized":
      return new ServerRefused({ message: `the server at ${url} refused the token: ${e.message}` })
    case "BadRequest":
    case "Forbidden":
    case "NotFound":
    case "MethodNotAllowed":
    case "Conflict":
    case "PayloadTooLarge":
      return new ServerRefused({ message: e.message ?? "refused" })
    case "Unavailable":
      return new ServerFailed({ message: `the server at ${url} could not do it: ${e.message}` })
    case "RequestError":
      return new ServerUnreachable({ url, reason: e.reason === "Transport" ? transportReason(e.cause) : String(e.message) })
    case "ResponseError":
      return e.response !== undefined && e.response.status >= 500
        ? new ServerFailed({ message: `the server at ${url} failed (HTTP ${e.response.status}); its log says why` })
        : new ServerUnreachable({ url, reason: `it does not answer as autopilot's API does (HTTP ${e.response?.status ?? "?"})` })
    case "ParseError":
      return new ServerUnreachable({ url, reason: "it does not answer as autopilot's API does (an answer of an unexpected shape)" })
    default:
      return new ServerFailed({ message: `the server at ${url}: ${e.message ?? String(error)}` })
  }
}

const ErrorJson = Schema.Union(
  ApiError.BadRequestJson,
  ApiError.UnauthorizedJson,
  ApiError.ForbiddenJson,
  ApiError.NotFoundJson,
  ApiError.MethodNotAllowedJson,
  ApiError.ConflictJson,
  ApiError.PayloadTooLargeJson,
  ApiError.UnavailableJson
)

/** The event stream ended (or the server went away) before the run did: the follower comes back. */
class Dropped extends Data.TaggedError("Dropped")<{}> {}

/** The server's one error event, `{"error": {"code", "message"}}`. */
const StreamError = Schema.parseJson(Schema.Struct({ error: Schema.Struct({ code: Schema.String, message: Schema.String }) }))

/** After a dropped stream, the follower reconnects (with Last-Event-ID) for about half a minute before it gives up. */
const reconnecting = Schedule.exponential("250 millis").pipe(Schedule.union(Schedule.spaced("4 seconds")), Schedule.intersect(Schedule.recurs(10)))

const make = (connection: Connection) =>
  Effect.gen(function*() {
    const { url } = connection
    const http = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest((request) => {
        const authorized = HttpClientRequest.bearerToken(request, connection.token)
        return Option.match(connection.project, {
          onNone: () => authorized,
          onSome: (project) => HttpClientRequest.setHeader(authorized, "x-project-id", project)
        })
      })
    )
    const client = yield* HttpApiClient.make(AutopilotApi, { baseUrl: url }).pipe(Effect.provideService(HttpClient.HttpClient, http))
    const ask = <A, E, R>(call: Effect.Effect<A, E, R>): Effect.Effect<A, RemoteError, R> => Effect.mapError(call, failureOf(url))
    const decode = <A, I>(schema: Schema.Schema<A, I>) => (value: unknown) => ask(Schema.decodeUnknown(schema)(value))
    /** The JSON as the server sent it, printed as it is, and decoded for the text made of it. */
    const shown = <A, I>(schema: Schema.Schema<A, I>) => (json: unknown) => Effect.map(decode(schema)(json), (view): Shown<A> => ({ json, view }))

    /** One connection to a run's event stream, from after the last event already seen. */
    const connect = (runId: string, follow: boolean, state: Ref.Ref<{ readonly seq: number; readonly ended: boolean; readonly connected: boolean }>) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const { seq } = yield* Ref.get(state)
        const request = HttpClientRequest.get(`${url}${prefix}/runs/${encodeURIComponent(runId)}/events`).pipe(
          HttpClientRequest.setUrlParam("follow", String(follow)),
          // Events only, as a local `events` prints them: not the answer's live text.
          HttpClientRequest.setUrlParam("deltas", "false"),
          HttpClientRequest.accept("text/event-stream"),
          seq >= 0 ? HttpClientRequest.setHeader("last-event-id", String(seq)) : (r) => r
        )
        const response = yield* ask(http.execute(request))
        // The run is over and this follower has every event of it.
        if (response.status === 204) return Stream.fromEffect(Ref.update(state, (s) => ({ ...s, ended: true }))).pipe(Stream.drain)
        if (response.status >= 300) {
          const body = yield* ask(response.json)
          return yield* Effect.flatMap(decode(ErrorJson)(body), (error) => Effect.fail(failureOf(url)(error)))
        }
        yield* Ref.update(state, (s) => ({ ...s, connected: true }))
        return response.stream.pipe(
          Stream.mapError(failureOf(url)),
          Stream.decodeText(),
          Stream.pipeThroughChannel(Sse.makeChannel()),
          Stream.mapEffect((frame): Effect.Effect<Option.Option<AutopilotEvent>, RemoteError | ServerRunInterrupted | Dropped> => {
            switch (frame.event) {
              case "server_shutdown":
              // Fell too far behind the run: the rest is read from the log after the last event it got.
              case "lagged":
              // The token was revoked (or the session ended) while streaming: asking again says so in one line.
              case "unauthorized":
                return Effect.fail(new Dropped())
              case "interrupted":
              case "error":
                return Effect.flatMap(decode(StreamError)(frame.data), ({ error }) =>
                  Effect.fail(
                    frame.event === "interrupted" ? new ServerRunInterrupted({ message: error.message }) : new ServerFailed({ message: error.message })
                  ))
              default:
                return Effect.map(decode(AutopilotEventJson)(frame.data), (event) => Option.some(event)).pipe(
                  Effect.tap(Option.match({
                    onNone: () => Effect.void,
                    onSome: (event) => Ref.update(state, (s) => ({ ...s, seq: event.seq, ended: event.kind === "result" }))
                  }))
                )
            }
          }),
          Stream.filterMap((event) => event),
          // Ending before the run's `result`, a followed stream was cut: the follower comes back for the rest.
          Stream.concat(Stream.unwrap(Effect.map(Ref.get(state), (s) => (follow && !s.ended ? Stream.fail(new Dropped()) : Stream.empty))))
        )
      }))

    const events = (runId: string, options: { readonly follow: boolean }) =>
      Stream.unwrap(Effect.map(Ref.make({ seq: -1, ended: false, connected: false }), (state) =>
        connect(runId, options.follow, state).pipe(
          Stream.retry(reconnecting.pipe(Schedule.whileInputEffect((error: RemoteError | ServerRunInterrupted | Dropped) =>
            Effect.map(Ref.get(state), (s) => error._tag === "Dropped" || (s.connected && error._tag === "ServerUnreachable"))))),
          Stream.catchTag("Dropped", () =>
            Stream.fail(new ServerUnreachable({ url, reason: "it ended the event stream before the run's end, and did not come back" })))
        )))

    const session = ask(client.session.current())

    return {
      url,
      client,
      ask,
      /** The project the server takes this command to be about (the token's own, unless --project names one). */
      project: Option.match(connection.project, { onSome: Effect.succeed, onNone: () => Effect.map(session, (s) => s.project) }),
      /** `GET /runs`, as `runs` lists it. */
      runs: (options: { readonly states: ReadonlyArray<RunState>; readonly limit: number }) =>
        ask(client.runs.list({
          urlParams: { status: options.states.length === 0 ? undefined : options.states.join(","), limit: options.limit === 0 ? undefined : options.limit }
        })).pipe(Effect.flatMap(shown(Schema.Array(RunJson.Listed)))),
      /** `GET /runs/{id}`, as `show` prints it. */
      run: (runId: string, options: { readonly steps: number; readonly messages: boolean }) =>
        ask(client.runs.show({ path: { id: runId }, urlParams: { steps: options.steps, messages: options.messages ? "true" : undefined } })).pipe(
          Effect.flatMap(shown(RunJson.View))
        ),
      /** `GET /missions`, as `missions` lists them. */
      missions: (status: ReadonlyArray<MissionStatus>) =>
        Effect.map(ask(client.missions.list({ urlParams: { status: status.length === 0 ? undefined : status } })), (listed) => ({ json: listed, view: listed })),
      /** `GET /missions/{id}`, as `missions show` prints it, and the mission itself. */
      mission: (id: string, options: { readonly steps: boolean; readonly messages: boolean }) =>
        ask(client.missions.show({ path: { id }, urlParams: { steps: options.steps ? "true" : undefined, messages: options.messages ? "true" : undefined } })).pipe(
          Effect.flatMap(shown(MissionJson.ShowJson)),
          Effect.map(({ json, view }) => ({ json, view: MissionJson.fromShowJson(view) }))
        ),
      /** A run's events, replayed then (with `follow`) live to its end, reconnecting after a dropped connection. */
      events
    }
  })

export class RemoteApi extends Context.Tag("autopilot/cli/RemoteApi")<RemoteApi, Effect.Effect.Success<ReturnType<typeof make>>>() {}

/** The client of the server `connection` names, over fetch. */
export const layer = (connection: Connection) => Layer.effect(RemoteApi, make(connection)).pipe(Layer.provide(FetchHttpClient.layer))
