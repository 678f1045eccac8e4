import { Deferred, Effect, Runtime, type Scope } from "effect"

const signals = ["SIGTERM", "SIGINT", "SIGHUP"] as const

/**
 * While the scope is open, the first SIGTERM, SIGINT or SIGHUP completes the returned effect with
 * `halted by SIGTERM` (etc.) so the run can stop at its next iteration boundary; any further signal
 * runs `force`, for an operator who will not wait. We install our own listeners instead of relying on
 * NodeRuntime.runMain, which interrupts at once on SIGINT/SIGTERM and ignores SIGHUP.
 */
export const haltOnSignal = (force: Effect.Effect<void>): Effect.Effect<Effect.Effect<string>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const first = yield* Deferred.make<string>()
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const listeners = signals.map((signal) => {
      const listener = () => {
        runFork(Deferred.succeed(first, `halted by ${signal}`).pipe(Effect.flatMap((isFirst) => (isFirst ? Effect.void : force))))
      }
      return [signal, listener] as const
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => listeners.forEach(([signal, listener]) => process.on(signal, listener))),
      () => Effect.sync(() => listeners.forEach(([signal, listener]) => process.removeListener(signal, listener)))
    )
    return Deferred.await(first)
  })
