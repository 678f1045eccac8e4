import { Chunk, Context, Deferred, type Duration, Effect, Exit, Layer, PubSub, RcMap, Stream, Take } from "effect"
import type { PersistenceError, RunInterrupted, RunNotFound } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { Runs } from "../runtime/Runs.js"

type Failure = RunNotFound | RunInterrupted | PersistenceError

/**
 * Runs' events for many clients at once: one follower per run reads its log from the database and
 * publishes what it reads to every client streaming that run, so 200 clients on one run cost one poll, not
 * 200. A client joining late gets the log from the database first, then the follower's events after the
 * last it was given: every event once, in order, whenever it joins.
 */
export class EventHub extends Context.Tag("autopilot/api/EventHub")<
  EventHub,
  {
    /** As `Runs.events(runId, { follow: true })`: the whole log, then live to the run's end. */
    readonly follow: (runId: string) => Stream.Stream<AutopilotEvent, Failure>
  }
>() {}

interface Follower {
  readonly events: PubSub.PubSub<Take.Take<AutopilotEvent, Failure>>
  /** Done when the follower has read the run's last event (or failed, as `Runs.events` fails). */
  readonly done: Deferred.Deferred<void, Failure>
}

export const make = (options: { readonly idleTimeToLive?: Duration.DurationInput | undefined } = {}) =>
  Effect.gen(function*() {
    const runs = yield* Runs
    const followers: RcMap.RcMap<string, Follower> = yield* RcMap.make({
      lookup: (runId: string) =>
        Effect.gen(function*() {
          // Unbounded: a slow client holds its own backlog, never the follower nor the other clients.
          const events = yield* Effect.acquireRelease(PubSub.unbounded<Take.Take<AutopilotEvent, Failure>>(), PubSub.shutdown)
          const done = yield* Deferred.make<void, Failure>()
          yield* runs.events(runId, { follow: true }).pipe(
            Stream.runForEach((event) => PubSub.publish(events, Take.of(event))),
            Effect.exit,
            Effect.flatMap((exit) =>
              // `done` first: a client that subscribes after the end is published must see `done` and read the
              // log, or it would wait on a subscription that never ends.
              Effect.zipRight(
                Deferred.done(done, exit),
                PubSub.publish(events, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))
              ).pipe(
                // A follower that failed (the database for a moment, a run whose process was gone and has
                // resumed since) is not handed to the next client: it gets a new one. Forked, as invalidating
                // closes the scope this fiber runs in.
                Effect.zipRight(Exit.isSuccess(exit) ? Effect.void : Effect.asVoid(Effect.forkDaemon(RcMap.invalidate(followers, runId))))
              )
            ),
            Effect.forkScoped
          )
          return { events, done } satisfies Follower
        }),
      // A run's follower outlives its last client briefly, for one that reconnects at once.
      idleTimeToLive: options.idleTimeToLive ?? "5 seconds"
    })

    const follow = (runId: string): Stream.Stream<AutopilotEvent, Failure> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const follower = yield* RcMap.get(followers, runId)
        // Subscribed before the log is read: whatever the follower publishes from now on is either in the
        // log read below or in this subscription, or both (then dropped by its seq).
        const subscription = yield* PubSub.subscribe(follower.events)
        const ended = yield* Deferred.isDone(follower.done)
        const logged = Chunk.toReadonlyArray(yield* Stream.runCollect(runs.events(runId, { follow: false })))
        const past = Stream.fromIterable(logged)
        // Ended before this client subscribed: its end is not in the subscription, but all it read is in the log.
        if (ended) return Stream.concat(past, Stream.drain(Stream.fromEffect(Deferred.await(follower.done))))
        const last = logged.at(-1)?.seq ?? -1
        const live = Stream.fromQueue(subscription).pipe(Stream.flattenTake, Stream.filter((event) => event.seq > last))
        return Stream.concat(past, live)
      }))

    return EventHub.of({ follow })
  })

export const layer = Layer.scoped(EventHub, make())
