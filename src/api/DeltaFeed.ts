import { Context, type Duration, Effect, Layer, PubSub, RcMap, Ref, Schedule, Stream } from "effect"
import type { Delta } from "../runtime/ModelCalls.js"
import { DeltaStore, type StoredDelta } from "../store/DeltaStore.js"

/**
 * Running runs' live text (what `LiveText` writes in the process running each run) for many clients at
 * once: one poll per run, shared by every client streaming it, as `EventHub` does for events. A client
 * joining mid-answer gets the text so far from the database first, then what the poll reads after it.
 * Live text is best effort: a failed read is tried again at the next poll, and the stream never fails.
 */
export class DeltaFeed extends Context.Tag("autopilot/api/DeltaFeed")<
  DeltaFeed,
  {
    /** The run's live text so far, then as it is written, for as long as the stream is read. */
    readonly follow: (runId: string) => Stream.Stream<Delta>
  }
>() {}

const viewOf = (row: StoredDelta): Delta => ({ iteration: row.iteration, purpose: row.purpose, text: row.text })

export const make = (options: {
  /** How often a followed run's new text is read: as often as `LiveText` writes it by default. */
  readonly pollInterval?: Duration.DurationInput | undefined
  readonly idleTimeToLive?: Duration.DurationInput | undefined
} = {}) =>
  Effect.gen(function*() {
    const store = yield* DeltaStore
    const polls: RcMap.RcMap<string, PubSub.PubSub<ReadonlyArray<StoredDelta>>> = yield* RcMap.make({
      lookup: (runId: string) =>
        Effect.gen(function*() {
          // Unbounded: a slow client holds its own backlog, never the poll nor the other clients.
          const rows = yield* Effect.acquireRelease(PubSub.unbounded<ReadonlyArray<StoredDelta>>(), PubSub.shutdown)
          const after = yield* Ref.make(0)
          yield* Effect.gen(function*() {
            const read = yield* store.after(runId, yield* Ref.get(after))
            const last = read.at(-1)
            if (last === undefined) return
            yield* Ref.set(after, last.id)
            yield* PubSub.publish(rows, read)
          }).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(options.pollInterval ?? "100 millis")), Effect.forkScoped)
          return rows
        }),
      // Outlives its last client briefly, for one that reconnects at once.
      idleTimeToLive: options.idleTimeToLive ?? "5 seconds"
    })

    const follow = (runId: string): Stream.Stream<Delta> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        // Subscribed before the text so far is read: every row is in one or the other (then dropped by id).
        const subscription = yield* PubSub.subscribe(yield* RcMap.get(polls, runId))
        const now = yield* Effect.orElseSucceed(store.after(runId, 0), () => [])
        const last = now.at(-1)?.id ?? 0
        const later = Stream.fromQueue(subscription).pipe(Stream.flattenIterables, Stream.filter((row) => row.id > last))
        return Stream.concat(Stream.fromIterable(now), later).pipe(Stream.map(viewOf))
      }))

    return DeltaFeed.of({ follow })
  })

export const layer = Layer.scoped(DeltaFeed, make())
