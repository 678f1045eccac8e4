import { Deferred, type Duration, Effect, Option, type Scope } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import { RunStore } from "../store/RunStore.js"
import type { Journal } from "./Journal.js"

/** When a run must stop from outside: a signal, an embedding program, or a stop request in the database. */
export interface HaltControl {
  /** Why the run must halt before its next iteration, if it must: checked at every iteration boundary. */
  readonly requested: Effect.Effect<Option.Option<string>, PersistenceError>
  /**
   * Runs the iterations; after a halt request the one in flight gets the grace period, or none once told
   * not to wait, and is then interrupted (None).
   */
  readonly guard: <A, E, R>(work: Effect.Effect<Option.Option<A>, E, R>) => Effect.Effect<Option.Option<A>, E, R>
}

export const make = (options: {
  readonly runId: string
  readonly journal: Journal
  /** Completes with a reason when the run should halt at its next iteration boundary, e.g. on a signal. */
  readonly halt?: Effect.Effect<string> | undefined
  /** How long the iteration in flight may go on after a halt request before it is interrupted. */
  readonly grace?: Duration.DurationInput | undefined
  /** Completes when a requested halt must not wait out the grace period (a second signal). */
  readonly now?: Effect.Effect<void> | undefined
}): Effect.Effect<HaltControl, never, RunStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const requested = yield* Deferred.make<string>()
    const { halt } = options
    if (halt !== undefined) {
      yield* halt.pipe(
        Effect.flatMap((reason) =>
          Effect.zipRight(Deferred.succeed(requested, reason), options.journal.emitNow({ kind: "halt_requested", reason }))
        ),
        Effect.forkScoped
      )
    }

    // Another process's stop request, as read for every session on the store at once (the run is claimed by now).
    const stopRequest = store.recentStop(options.runId, yield* store.stopReads)

    const graceOver = Deferred.await(requested).pipe(
      Effect.zipRight(Effect.race(Effect.sleep(options.grace ?? "5 seconds"), options.now ?? Effect.never)),
      Effect.as(Option.none())
    )

    return {
      requested: Effect.flatMap(Deferred.poll(requested), Option.match({
        onNone: () => stopRequest,
        onSome: (reason) => Effect.asSome(reason)
      })),
      guard: (work) => (halt === undefined ? work : Effect.raceFirst(work, graceOver))
    }
  })

/**
 * The halt of a run that has child runs (a fan-out, a mission's graph): its signal or `halt`, or a stop
 * request for it, looked for every 250 ms as a run does (one that cannot be read is not one; a signal
 * still halts). It is on record as `halt_requested` before any child hears of it, so a resume knows which
 * halts were the parent's own; children await the Deferred.
 */
export const forParent = (options: {
  readonly runId: string
  readonly journal: Journal
  readonly halt?: Effect.Effect<string> | undefined
}): Effect.Effect<Deferred.Deferred<string>, never, RunStore | Scope.Scope> =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const halt = yield* Deferred.make<string>()
    const stopRequest: Effect.Effect<string> = Effect.orElseSucceed(runs.pendingStop(options.runId), () => Option.none<string>()).pipe(
      Effect.flatMap(Option.match({
        onNone: () => Effect.zipRight(Effect.sleep("250 millis"), Effect.suspend(() => stopRequest)),
        onSome: Effect.succeed
      }))
    )
    yield* Effect.raceFirst(options.halt ?? Effect.never, stopRequest).pipe(
      Effect.tap((reason) => Effect.ignore(options.journal.emitNow({ kind: "halt_requested", reason }))),
      Effect.flatMap((reason) => Deferred.succeed(halt, reason)),
      Effect.forkScoped
    )
    return halt
  })
