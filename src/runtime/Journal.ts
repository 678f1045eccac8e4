import { Chunk, Clock, Deferred, Effect, Exit, Option, Ref, Schedule, Stream } from "effect"
import type { BudgetRemaining } from "../domain/Budget.js"
import { isInterrupted } from "../domain/Checkpoint.js"
import type { PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent, EventBody } from "../domain/Event.js"
import { EventStore } from "../store/EventStore.js"
import { GroupCommit } from "../store/GroupCommit.js"
import { RunStore } from "../store/RunStore.js"

/**
 * A run's event log as one session writes it. An event is published only once it is durable, and
 * numbering, writing and publishing are one step: whoever watches, live or by replaying the log, sees
 * the same events in the same order, and a seq that was ever shown is never handed out again.
 */
export interface Journal {
  /**
   * Written and published now, without the held events; with any others emitted now at the same time
   * (a fan-out's children reporting to it), in one commit.
   */
  readonly emitNow: (body: EventBody) => Effect.Effect<void, PersistenceError>
  /** Held until the next commit, then written with it and published. */
  readonly emit: (body: EventBody) => Effect.Effect<void>
  /** Several held at once: a commit, whoever makes it, writes all of them or none. */
  readonly emitAll: (bodies: ReadonlyArray<EventBody>) => Effect.Effect<void>
  /**
   * Writes the held events through `write`, which makes them durable together with whatever they
   * announce, then publishes them. If `write` fails, the held events are dropped unseen and their seqs
   * are handed out again.
   */
  readonly commit: <A, E, R>(write: (events: ReadonlyArray<AutopilotEvent>) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/** An event as stamped when emitted; its seq is given when it is written. */
type Unnumbered = Omit<AutopilotEvent, "seq">

/** An event to write now, and its caller, answered once it is durable and published (or failed). */
interface Urgent {
  readonly event: Unnumbered
  readonly done: Deferred.Deferred<void, PersistenceError>
}

export const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

export const make = (options: {
  readonly runId: string
  readonly firstSeq: number
  /** The headroom every event carries, as of when it is emitted. */
  readonly remaining: Effect.Effect<BudgetRemaining>
  /** Receives every event once it is durable, in `seq` order. */
  readonly onEvent: (event: AutopilotEvent) => Effect.Effect<void>
}): Effect.Effect<Journal, never, GroupCommit> =>
  Effect.gen(function*() {
    const commits = yield* GroupCommit
    const next = yield* Ref.make(options.firstSeq)
    const held = yield* Ref.make<ReadonlyArray<Unnumbered>>([])
    const urgent = yield* Ref.make<ReadonlyArray<Urgent>>([])
    const permit = yield* Effect.makeSemaphore(1)

    const stamp = (body: EventBody) =>
      Effect.gen(function*() {
        return {
          ...(body as Omit<EventBody, "kind">),
          kind: body.kind,
          run_id: options.runId,
          at: yield* isoNow,
          remaining: yield* options.remaining
        } as Unnumbered
      })

    // Field order is for people reading the JSONL: kind, run, seq and time first.
    const numbered = (events: ReadonlyArray<Unnumbered>, first: number) =>
      events.map(({ at, kind, run_id, ...rest }, i) => ({ kind, run_id, seq: first + i, at, ...rest }) as AutopilotEvent)

    const publish = (events: ReadonlyArray<AutopilotEvent>) => Effect.forEach(events, options.onEvent, { discard: true })

    // Writing, numbering and publishing are one step that an interruption cannot split: an event written
    // but not counted would hand its seq out twice, and the run could then never write its end.
    const commit = <A, E, R>(write: (events: ReadonlyArray<AutopilotEvent>) => Effect.Effect<A, E, R>) =>
      permit.withPermits(1)(Effect.uninterruptible(Effect.gen(function*() {
        const events = numbered(yield* Ref.getAndSet(held, []), yield* Ref.get(next))
        const written = yield* write(events)
        yield* Ref.update(next, (n) => n + events.length)
        yield* publish(events)
        return written
      })))

    // Every event waiting to be written now, in one commit: whoever holds the permit writes those that
    // queued meanwhile too, so a run with many callers at once (a fan-out's children) pays one commit
    // for them, not one each in a row. Each caller learns its own event's fate.
    const writeUrgent = Effect.uninterruptible(Effect.gen(function*() {
      const taken = yield* Ref.getAndSet(urgent, [])
      if (taken.length === 0) return
      const events = numbered(taken.map((u) => u.event), yield* Ref.get(next))
      const exit = yield* Effect.exit(commits.commit({ events }))
      if (Exit.isSuccess(exit)) {
        yield* Ref.update(next, (n) => n + events.length)
        yield* publish(events)
      }
      yield* Effect.forEach(taken, (u) => Deferred.done(u.done, exit), { discard: true })
    }))

    return {
      emitNow: (body) =>
        Effect.flatMap(stamp(body), (event) =>
          Effect.gen(function*() {
            const mine: Urgent = { event, done: yield* Deferred.make<void, PersistenceError>() }
            yield* Ref.update(urgent, (u) => [...u, mine])
            // Interrupted before its turn, an event no one has taken yet is not written.
            yield* permit.withPermits(1)(writeUrgent).pipe(Effect.onInterrupt(() => Ref.update(urgent, (u) => u.filter((x) => x !== mine))))
            // Written by this turn or by an earlier one, which answered it before letting go of the permit.
            yield* Deferred.await(mine.done)
          })),
      // No permit: a commit takes the held events in one atomic step, so one emitted while it writes is
      // held for the next commit, as it would be after waiting for the permit.
      emit: (body) => Effect.flatMap(stamp(body), (event) => Ref.update(held, (es) => [...es, event])),
      emitAll: (bodies) => Effect.flatMap(Effect.forEach(bodies, stamp), (events) => Ref.update(held, (es) => [...es, ...events])),
      commit
    }
  })

/** How many stored events a replay reads at a time. */
export const REPLAY_PAGE = 500

/**
 * A run's stored events from the start (with `after`, from the event after that seq, read from there, not
 * read and dropped); with `follow`, then those written later, until the run is over or the process that
 * owns it is gone (killed with no chance to say so). Another process writes the run, so the log is polled.
 */
export const replay = (
  runId: string,
  options: { readonly follow: boolean; readonly pollInterval?: number | undefined; readonly after?: number | undefined }
): Stream.Stream<AutopilotEvent, PersistenceError, EventStore | RunStore> =>
  Stream.unwrap(Effect.gen(function*() {
    const events = yield* EventStore
    const runs = yield* RunStore
    const after = yield* Ref.make(options.after === undefined ? 0 : yield* events.idAtSeq(runId, options.after))
    const drain = Effect.flatMap(Ref.get(after), (id) => events.after(runId, id)).pipe(
      Effect.tap((batch) => Option.match(Option.fromNullable(batch.at(-1)), { onNone: () => Effect.void, onSome: (last) => Ref.set(after, last.id) })),
      Effect.map((batch) => batch.map((stored) => stored.event))
    )
    // The log so far a page at a time, so a long log is never held at once (nor makes a reader wait for all of it).
    const logged = Stream.paginateChunkEffect(undefined, () =>
      Effect.flatMap(Ref.get(after), (id) => events.page(runId, id, REPLAY_PAGE)).pipe(
        Effect.tap((page) => (page.lastId === undefined ? Effect.void : Ref.set(after, page.lastId))),
        Effect.map((page) => [Chunk.unsafeFromArray(page.events.map((stored) => stored.event)), page.end ? Option.none() : Option.some(undefined)] as const)
      ))
    if (!options.follow) return logged
    // The run's state is read before the log, so no event written before the run ended can be missed.
    const over = Effect.map(runs.load(runId), (loaded) =>
      loaded._tag !== "Found" || loaded.checkpoint.status !== "running" || isInterrupted(loaded.checkpoint))
    const poll = Effect.flatMap(over, (done) => Effect.map(drain, (batch) => ({ batch, done })))
    return logged.pipe(
      Stream.concat(
        Stream.repeatEffectWithSchedule(poll, Schedule.spaced(options.pollInterval ?? 250)).pipe(
          Stream.takeUntil(({ done }) => done),
          Stream.mapConcat(({ batch }) => batch)
        )
      )
    )
  }))
