import { Deferred, Effect, Runtime, type Scope } from "effect"

const signals = ["SIGTERM", "SIGINT", "SIGHUP"] as const

export interface SignalHalts {
  /** Completes with `halted by SIGTERM` (etc.) on the first signal. */
  readonly halt: Effect.Effect<string>
  /** Completes on any later signal, for an operator who will not wait out the grace period. */
  readonly haltNow: Effect.Effect<void>
}

/**
 * Listens for SIGTERM, SIGINT and SIGHUP while the scope is open. We install our own listeners instead
 * of relying on NodeRuntime.runMain, which interrupts at once on SIGINT/SIGTERM and ignores SIGHUP: a
 * run must halt at an iteration boundary and say which signal stopped it.
 */
export const listen: Effect.Effect<SignalHalts, never, Scope.Scope> = Effect.gen(function*() {
  const first = yield* Deferred.make<string>()
  const again = yield* Deferred.make<void>()
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())
  const listeners = signals.map((signal) => {
    const listener = () => {
      runFork(Effect.flatMap(Deferred.succeed(first, `halted by ${signal}`), (isFirst) => (isFirst ? Effect.void : Deferred.succeed(again, undefined))))
    }
    return [signal, listener] as const
  })
  yield* Effect.acquireRelease(
    Effect.sync(() => listeners.forEach(([signal, listener]) => process.on(signal, listener))),
    () => Effect.sync(() => listeners.forEach(([signal, listener]) => process.removeListener(signal, listener)))
  )
  return { halt: Deferred.await(first), haltNow: Deferred.await(again) }
})
