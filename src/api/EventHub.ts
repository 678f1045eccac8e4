import { Chunk, Context, Deferred, type Duration, Effect, Exit, Layer, PubSub, RcMap, Schema, Stream, Take } from "effect"
import type { PersistenceError, RunInterrupted, RunNotFound } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import * as Journal from "../runtime/Journal.js"
import { Runs } from "../runtime/Runs.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"

/**
 * A client fell more than the hub's capacity behind a run's live events: its stream ends here rather than
 * hold an ever longer backlog, and the client reconnects after the last event it got (SSE's Last-Event-ID)
 * to read the rest from the log. Nothing is skipped: this ends the stream before the first event it missed.
 */
export class Lagged extends Schema.TaggedError<Lagged>()("Lagged", {
  run_id: Schema.String,
  capacity: Schema.Number
}) {
  get message() {
    return `this client fell more than ${this.capacity} events behind run ${this.run_id}; reconnect after the last event it got (Last-Event-ID) to read the rest from the log`
  }
}

type Failure = RunNotFound | RunInterrupted | PersistenceError

/**
 * Runs' events for many clients at once: one follower per run reads its log from the database and
 * publishes what it reads to every client streaming that run, so 200 clients on one run cost one poll, not
 * 200. A client joining late gets the log from the database first, then the follower's events after the
 * last it was given: every event once, in order, whenever it joins; or, if it falls more than `capacity`
 * events behind, the events up to where it fell behind and then `Lagged`.
 */
export class EventHub extends Context.Tag("autopilot/api/EventHub")<
  EventHub,
  {
    /**
     * As `Runs.events(runId, { follow: true })`: the whole log, then live to the run's end; with `after` (a
     * reconnecting client's Last-Event-ID), from the event after that seq, none before it read.
     */
    readonly follow: (runId: string, after?: number | undefined) => Stream.Stream<AutopilotEvent, Failure | Lagged>
    /**
     * Whether the run is over and its log holds nothing after the event `after` (none: from the start): a
     * client that has it all is told so (SSE's 204) rather than reconnect forever.
     */
    readonly ended: (runId: string, after: number | undefined) => Effect.Effect<boolean, PersistenceError>
  }
>() {}

interface Follower {
  readonly events: PubSub.PubSub<Take.Take<AutopilotEvent, Failure>>
  /** Done when the follower has read the run's last event (or failed, as `Runs.events` fails). */
  readonly done: Deferred.Deferred<void, Failure>
  /**
   * The last `capacity` events published, oldest first: while they go back to the first event a joining client
   * lacks, it takes them from here, decoded and encoded once for all, rather than read and decode the log itself.
   */
  readonly recent: Array<AutopilotEvent>
}

const lastSeq = (chunk: Chunk.Chunk<AutopilotEvent>, otherwise: number) => (Chunk.isEmpty(chunk) ? otherwise : Chunk.unsafeLast(chunk).seq)

/** How many live events a client may fall behind before its stream ends with `Lagged`. */
export const defaultCapacity = 512

export const make = (options: {
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  readonly capacity?: number | undefined
  /**
   * How often (ms) a run's follower reads its log for new events: what delivery lags behind writing, at most.
   * One read per run, whatever the number of clients, so more often than a lone `events --follow` (250).
   */
  readonly pollInterval?: number | undefined
} = {}) =>
  Effect.gen(function*() {
    const runs = yield* Runs
    const checkpoints = yield* RunStore
    const log = yield* EventStore
    const stores = Context.make(RunStore, checkpoints).pipe(Context.add(EventStore, log))
    // At least 2: the newest of what a slow client still holds is at most the end, so one before it shows the gap.
    const capacity = Math.max(2, options.capacity ?? defaultCapacity)
    const pollInterval = options.pollInterval ?? 50
    const followers: RcMap.RcMap<string, Follower> = yield* RcMap.make({
      lookup: (runId: string) =>
        Effect.gen(function*() {
          // Sliding: the follower never waits on a slow client, and what a slow client has not taken is held
          // once for all clients, at most `capacity` items; a client that lost some sees a gap in the seqs.
          const events = yield* Effect.acquireRelease(PubSub.sliding<Take.Take<AutopilotEvent, Failure>>(capacity), PubSub.shutdown)
          const done = yield* Deferred.make<void, Failure>()
          const recent: Array<AutopilotEvent> = []
          const live = yield* checkpoints.load(runId).pipe(
            Effect.map((loaded) => loaded._tag === "Found" && loaded.checkpoint.status === "running"),
            Effect.orElseSucceed(() => false)
          )
          // Kept before publishing: a client that subscribes in between finds an event in both, then drops one by its seq.
          const remember = (chunk: Chunk.Chunk<AutopilotEvent>) =>
            Effect.sync(() => {
              recent.push(...chunk)
              if (recent.length > capacity) recent.splice(0, recent.length - capacity)
            })
          yield* runs.events(runId, { follow: true, pollInterval }).pipe(
            Stream.runForEachChunk((chunk) => Effect.zipRight(remember(chunk), PubSub.publishAll(events, Chunk.map(chunk, Take.of)))),
            Effect.exit,
            // A run followed live ends a poll after its last events: every client writes those before any
            // closes its stream. Closing 200 streams costs a few hundred ms of CPU, which would otherwise come
            // before the last events of the clients closed last. A run over before it was followed has none live.
            Effect.zipLeft(live ? Effect.sleep(pollInterval) : Effect.void),
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
          return { events, done, recent } satisfies Follower
        }),
      // A run's follower outlives its last client briefly, for one that reconnects at once.
      idleTimeToLive: options.idleTimeToLive ?? "5 seconds"
    })

    const follow = (runId: string, after?: number | undefined): Stream.Stream<AutopilotEvent, Failure | Lagged> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const follower = yield* RcMap.get(followers, runId)
        // Subscribed before the log is read: whatever the follower publishes from now on is either in the
        // log read below or in this subscription, or both (then dropped by its seq).
        const subscription = yield* PubSub.subscribe(follower.events)
        const ended = yield* Deferred.isDone(follower.done)
        const held = yield* Effect.sync(() => follower.recent.slice())
        // The seq of the last event this client was given (or had before it came back).
        let last = after ?? -1
        // What the follower holds if it goes back to the first event the client lacks; else the log from the row
        // after that, streamed a page at a time, straight from the store, not through Runs.events, which would
        // decode the run's checkpoint again for every client to tell an unknown run: the follower already fails
        // for one, and so does this stream, after it.
        const past = (held.length > 0 && held[0]!.seq <= last + 1
          ? Stream.fromIterable(held.filter((event) => event.seq > last))
          : Journal.replay(runId, { follow: false, after }).pipe(Stream.provideContext(stores))).pipe(
          Stream.mapChunks((chunk) => {
            last = lastSeq(chunk, last)
            return chunk
          })
        )
        // Ended before this client subscribed: its end is not in the subscription, but all it read is in the past.
        if (ended) return Stream.concat(past, Stream.drain(Stream.fromEffect(Deferred.await(follower.done))))
        const live = Stream.fromQueue(subscription).pipe(
          Stream.flattenTake,
          Stream.mapChunksEffect((chunk) => {
            const fresh = Chunk.filter(chunk, (event) => event.seq > last)
            // A run's seqs follow one another: a gap is what the sliding subscription dropped for this client.
            let expected = last + 1
            for (const event of fresh) {
              if (event.seq !== expected++) return Effect.fail(new Lagged({ run_id: runId, capacity }))
            }
            last = lastSeq(fresh, last)
            return Effect.succeed(fresh)
          })
        )
        return Stream.concat(past, live)
      }))

    // The run's state before its log, as its follower reads them: a run over has written all its events.
    const ended = (runId: string, after: number | undefined) =>
      Effect.gen(function*() {
        const loaded = yield* checkpoints.load(runId)
        const over = loaded._tag === "Found" ? loaded.checkpoint.status !== "running" : loaded._tag === "Missing"
        const next = yield* log.nextSeq(runId)
        // A run with no event at all is no run: not "ended", but unknown, as `follow` says.
        return over && next > 0 && next <= (after ?? -1) + 1
      })

    return EventHub.of({ follow, ended })
  })

export const layer = Layer.scoped(EventHub, make())
