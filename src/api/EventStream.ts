import * as Sse from "@effect/experimental/Sse"
import { HttpServerResponse } from "@effect/platform"
import { Context, Deferred, Duration, Effect, Layer, Schedule, Stream } from "effect"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Delta } from "../runtime/ModelCalls.js"

/**
 * A run's events as Server-Sent Events: `id` the event's seq (what a client sends back as Last-Event-ID),
 * `event` its kind, `data` the event as JSON. Replayed after the id the client has, then live; a comment
 * every so often keeps proxies from cutting an idle stream; it ends after the run's last event, or when the
 * server shuts down (with a `server_shutdown` event, so a client knows to come back rather than that the
 * run ended).
 */

/** Completed when the server begins to shut down: every open stream ends then, rather than hold the exit up. */
export class ServerShutdown extends Context.Tag("autopilot/api/ServerShutdown")<ServerShutdown, Deferred.Deferred<void>>() {}

export const layerShutdown = Layer.effect(ServerShutdown, Deferred.make<void>())

/** How often an idle stream gets a keep-alive comment. */
export class KeepAlive extends Context.Reference<KeepAlive>()("autopilot/api/KeepAlive", {
  defaultValue: () => Duration.seconds(15)
}) {}

const frame = (event: AutopilotEvent) =>
  Sse.encoder.write({ _tag: "Event", event: event.kind, id: String(event.seq), data: JSON.stringify(event) })

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

/** The stream as text frames, ending on the run's end, on shutdown, or with a last `error` event if reading failed. */
export const frames = <E extends { readonly _tag: string; readonly message: string }>(
  events: Stream.Stream<AutopilotEvent, E>,
  after: number | undefined,
  deltas?: Stream.Stream<Delta> | undefined
) =>
  Effect.gen(function*() {
    const shutdown = yield* ServerShutdown
    const every = yield* KeepAlive
    const live = events.pipe(
      Stream.filter((event) => after === undefined || event.seq > after),
      Stream.map(frame),
      Stream.catchAll((error) =>
        Stream.succeed(
          Sse.encoder.write({
            _tag: "Event",
            // A run whose process is gone ends its stream with what it wrote, as `events --follow` does.
            event: error._tag === "RunInterrupted" ? "interrupted" : "error",
            id: undefined,
            data: JSON.stringify({ error: { code: error._tag, message: error.message } })
          })
        )
      ),
      // Live text between the events, for as long as the events go on.
      (framed) => (deltas === undefined ? framed : Stream.merge(framed, Stream.map(deltas, deltaFrame), { haltStrategy: "left" })),
      Stream.merge(Stream.fromSchedule(Schedule.spaced(every)).pipe(Stream.as(": keep-alive\n\n")), { haltStrategy: "left" })
    )
    const ending = Stream.fromEffect(Deferred.await(shutdown)).pipe(
      Stream.as(Sse.encoder.write({ _tag: "Event", event: "server_shutdown", id: undefined, data: "{}" }))
    )
    return Stream.merge(live, ending, { haltStrategy: "either" })
  })

export const response = <E extends { readonly _tag: string; readonly message: string }>(
  events: Stream.Stream<AutopilotEvent, E>,
  after: number | undefined,
  deltas?: Stream.Stream<Delta> | undefined
) =>
  Effect.map(frames(events, after, deltas), (body) =>
    HttpServerResponse.stream(Stream.encodeText(body), {
      contentType: "text/event-stream",
      // Not kept alive for another request: a client reconnecting to a server that is shutting down would
      // otherwise get a request onto the draining server, which neither answers it nor exits.
      headers: { "cache-control": "no-cache", "x-accel-buffering": "no", connection: "close" }
    }))
