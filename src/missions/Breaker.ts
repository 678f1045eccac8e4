import { Effect, HashMap, Option, Schedule, SynchronizedRef } from "effect"
import type { Breaker as Settings, FailureClass } from "../domain/Healing.js"

/**
 * A mission's circuit breaker over its model providers: a provider that keeps failing in ways that are
 * its own doing (`settings.classes`) is open after `settings.failures` such failures, for the rest of
 * the mission, and callers move its calls to the fallback provider. One per mission, shared by every
 * node attempt, so a provider's failures in one node count for all.
 */
export interface Breaker {
  /**
   * Counts a failure of `provider` when `failureClass` is one the breaker counts, and says whether the
   * provider is open now (it may have been before).
   */
  readonly failure: (provider: string, failureClass: FailureClass) => Effect.Effect<boolean>
  readonly isOpen: (provider: string) => Effect.Effect<boolean>
  /** The open providers, in the order they opened. */
  readonly opened: Effect.Effect<ReadonlyArray<string>>
  /** Opens a provider at once: one a mission's earlier session broke stays broken when it resumes. */
  readonly open: (provider: string) => Effect.Effect<void>
}

/**
 * Each provider's failure budget is a Schedule, `recurs(failures - 1)`, stepped once per counted
 * failure: it allows `failures - 1` of them and is done at the next, and a done schedule stays done, so
 * an open provider never closes again. One SynchronizedRef holds the budgets and serializes the steps,
 * since nodes fail concurrently.
 */
interface State {
  readonly budgets: HashMap.HashMap<string, Schedule.ScheduleDriver<number, unknown>>
  readonly opened: ReadonlyArray<string>
}

export const make = (settings: Settings): Effect.Effect<Breaker> =>
  Effect.gen(function*() {
    const state = yield* SynchronizedRef.make<State>({ budgets: HashMap.empty(), opened: [] })
    const budget = Schedule.recurs(settings.failures - 1)

    const isOpen = (provider: string) => Effect.map(SynchronizedRef.get(state), (s) => s.opened.includes(provider))

    const count = (provider: string) =>
      SynchronizedRef.modifyEffect(state, (s) =>
        Effect.gen(function*() {
          if (s.opened.includes(provider)) return [true, s] as const
          const driver = yield* Option.match(HashMap.get(s.budgets, provider), {
            onNone: () => Schedule.driver(budget),
            onSome: Effect.succeed
          })
          const spent = yield* Effect.isFailure(driver.next(undefined))
          const budgets = HashMap.set(s.budgets, provider, driver)
          return [spent, { budgets, opened: spent ? [...s.opened, provider] : s.opened }] as const
        }))

    return {
      failure: (provider, failureClass) => settings.classes.includes(failureClass) ? count(provider) : isOpen(provider),
      isOpen,
      opened: Effect.map(SynchronizedRef.get(state), (s) => s.opened),
      open: (provider) => SynchronizedRef.update(state, (s) => (s.opened.includes(provider) ? s : { ...s, opened: [...s.opened, provider] }))
    }
  })
