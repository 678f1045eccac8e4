import * as Sse from "@effect/experimental/Sse"
import { HttpServerResponse } from "@effect/platform"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Mailbox, Option, Stream } from "effect"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Delta } from "../runtime/ModelCalls.js"

/**
 * A run's events as Server-Sent Events: `id` the event's seq (what a client sends back as Last-Event-ID),
 * `event` its kind, `data` the event as JSON. Replayed after the id the client has, then live; a comment
 * every so often keeps proxies from cutting an idle stream; it ends after the run's last event, or when the
 * server shuts down (with a `server_shutdown` event, so a client knows to come back rather than that the
 * run ended), or when the client falls too far behind (`lagged`: it comes back after the last id it got).
 * A client that already has every event of a run that is over gets 204, which stops an EventSource.
 */

/** Completed when the server begins to shut down: every open stream ends then, rather than hold the exit up. */
export class ServerShutdown extends Context.Tag("autopilot/api/ServerShutdown")<ServerShutdown, Deferred.Deferred<void>>() {}

export const layerShutdown = Layer.effect(ServerShutdown, Deferred.make<void>())

/** How often an idle stream gets a keep-alive comment. */
export class KeepAlive extends Context.Reference<KeepAlive>()("autopilot/api/KeepAlive", {
  defaultValue: () => Duration.seconds(15)
}) {}

/**
 * One event's frame, encoded once however many clients it goes to: a run's follower hands every client the
 * same event, so 200 clients cost one JSON.stringify per event, not 200.
 */
const encoded = new WeakMap<AutopilotEvent, string>()

const frame = (event: AutopilotEvent) => {
  let text = encoded.get(event)
  if (text === undefined) {
    text = Sse.encoder.write({ _tag: "Event", event: event.kind, id: String(event.seq), data: JSON.stringify(event) })
    encoded.set(event, text)
  }
  return text
}

/** Why a stream ended early, without an id: a client reconnecting sends the id of the last event it got. */
const failure = (error: { readonly _tag: string; readonly message: string }) =>
  Sse.encoder.write({
    _tag: "Event",
    // A run whose process is gone ends its stream with what it wrote, as `events --follow` does; a client that
    // fell behind reconnects and reads the rest from the log.
    event: error._tag === "RunInterrupted" ? "interrupted" : error._tag === "Lagged" ? "lagged" : "error",
    id: undefined,
    data: JSON.stringify({ error: { code: error._tag, message: error.message } })
  })

const keepAlive = ": keep-alive\n\n"

const serverShutdown = Sse.encoder.write({ _tag: "Event", event: "server_shutdown", id: undefined, data: "{}" })

/** Frames a stream holds for a client that is slow to take them, before it stops reading its events. */
const buffered = 16

/** The answer as it is written: no `id`, so Last-Event-ID keeps naming the last event the client was given. */
const deltaFrame = ({ iteration, purpose, text }: Delta) =>
  Sse.encoder.write({ _tag: "Event", event: "delta", id: undefined, data: JSON.stringify({ iteration, purpose, text }) })

/**
 * The last event a client has seen: the seq its Last-Event-ID names; none (replay from the first event,
 * seq 0) without one or with one that is not a whole number.
 */
export const lastEventId = (header: string | undefined): number | undefined => {
  const n = Number(header)
  return header !== undefined && header.trim() !== "" && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/**
 * The stream as text frames, ending on the run's end, on shutdown, or with a last `error` event if reading
 * failed (`interrupted` if the run's process is gone, `lagged` if the client fell too far behind).
 */
/** Sent, without an id, to a stream whose token or session has ended since it was opened; then it ends. */
const unauthorized = Sse.encoder.write({
  _tag: "Event",
  event: "unauthorized",
  id: undefined,
  data: JSON.stringify({ error: { code: "unauthorized", message: "the token or session this stream was opened with has ended" } })
})

export const frames = <E extends { readonly _tag: string; readonly message: string }>(
  events: Stream.Stream<AutopilotEvent, E>,
  after: number | undefined,
  deltas?: Stream.Stream<Delta> | undefined,
  stillAllowed: Effect.Effect<boolean> = Effect.succeed(true)
) =>
  Effect.gen(function*() {
    const shutdown = yield* ServerShutdown
    const every = yield* KeepAlive
    // One mailbox takes the events, the keep-alive comments and the shutdown, each from its own fiber, and is
    // the stream: two Stream.merge in a row cost every event of every client a fork and a hand-over each.
    return Stream.unwrapScoped(Effect.gen(function*() {
      const out = yield* Mailbox.make<string>(buffered)
      const body = yield* events.pipe(
        Stream.filterMap((event) => (after === undefined || event.seq > after ? Option.some(frame(event)) : Option.none())),
        Stream.catchAll((error) => Stream.succeed(failure(error))),
        Stream.runForEachChunk((chunk) => out.offerAll(chunk)),
        Effect.zipRight(out.end),
        Effect.forkScoped
      )
      // Each keep-alive also asks whether the stream's credential still holds: signing out or a revoked token
      // ends an open stream within one period, not when the run ends hours later.
      const comments = yield* Effect.forkScoped(Effect.forever(Effect.delay(
        Effect.flatMap(stillAllowed, (allowed) =>
          allowed ? out.offer(keepAlive) : Effect.zipRight(out.offer(unauthorized), Effect.zipRight(out.end, Effect.never))),
        every
      )))
      // Live text between the events, for as long as the events go on (the mailbox's end ends the stream).
      const text = deltas === undefined ? [] : [yield* Effect.forkScoped(Stream.runForEach(deltas, (delta) => out.offer(deltaFrame(delta))))]
      yield* Deferred.await(shutdown).pipe(
        Effect.zipRight(Fiber.interruptAll([body, comments, ...text])),
        // Not waited on: a client that stopped reading, its mailbox full, must not hold the server's exit up.
        Effect.zipRight(Effect.sync(() => out.unsafeOffer(serverShutdown))),
        Effect.zipRight(out.end),
        Effect.forkScoped
      )
      return Mailbox.toStream(out)
    }))
  })

/** What a client that has every event of a run that is over gets: SSE tells an EventSource to stop reconnecting on a 204. */
export const ended = HttpServerResponse.empty({ status: 204 })

export const response = <E extends { readonly _tag: string; readonly message: string }>(
  events: Stream.Stream<AutopilotEvent, E>,
  after: number | undefined,
  deltas?: Stream.Stream<Delta> | undefined,
  stillAllowed?: Effect.Effect<boolean>
) =>
  Effect.map(frames(events, after, deltas, stillAllowed), (body) =>
    HttpServerResponse.stream(Stream.encodeText(body), {
      contentType: "text/event-stream",
      // Not kept alive for another request: a client reconnecting to a server that is shutting down would
      // otherwise get a request onto the draining server, which neither answers it nor exits.
      headers: { "cache-control": "no-cache", "x-accel-buffering": "no", connection: "close" }
    }))
