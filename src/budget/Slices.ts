import { Deferred, Duration, Effect, Either, Exit, Option, Ref } from "effect"
import { type Axis, AxisLimits, BudgetPolicy, BudgetUsage, addUsage, capOf } from "../domain/Budget.js"
import { roundDollars } from "../domain/Quantity.js"
import type { Budget } from "./Budget.js"

/**
 * A parent's budget shared among its children. Before a child starts, the parent reserves for it a slice
 * of what it has left on every axis; when the child ends, what it spent is charged to the parent and the
 * rest of the slice returns to it. So at every instant the parent's use (its own and its ended children's)
 * plus the slices held by running children stays within the parent's cap on every axis.
 *
 * The slice rule: on tool calls, tokens, dollars and iterations, a child gets an equal share of what is
 * left, `(cap - used - held) / children not yet started`, whole numbers rounded down but at least 1 on
 * the whole-number axes. Each child is sure of its share however the others spend, and what a child leaves
 * unused goes to the children after it. Seconds are not shared but a deadline: children run at the same
 * time, so each one may run until the parent's wall clock runs out. A disabled axis stays disabled.
 *
 * A child with nothing left on some axis waits while running siblings hold slices (they may return
 * some); with none running, it is not started at all, since its first boundary would halt it anyway.
 */
export interface Slices {
  /**
   * Runs `use` on the next child's slice, then charges what the child spent (`spentAfter`, in all,
   * including what it had spent before) and returns the rest; Left with the axis that has nothing left
   * when the child must not start. Only waiting for a slice and `use` can be interrupted: a slice once
   * taken is always settled.
   */
  readonly withSlice: <A, E, R>(
    spent: BudgetUsage,
    use: (reservation: Reservation) => Effect.Effect<A, E, R>,
    spentAfter: (exit: Exit.Exit<A, E>) => Effect.Effect<BudgetUsage, never, R>
  ) => Effect.Effect<Either.Either<A, Axis>, E, R>
  /** A child that will not start at all. */
  readonly skip: Effect.Effect<void>
  /** One more child than counted so far will ask for a slice (a mission node re-run to heal it). */
  readonly more: Effect.Effect<void>
  /** The parent's use and what running children hold, summed, as of one instant. */
  readonly snapshot: Effect.Effect<{ readonly used: BudgetUsage; readonly held: BudgetUsage }>
}

export interface Reservation {
  /** The child's caps: what it had spent before, plus its slice; seconds up to the parent's deadline. */
  readonly policy: BudgetPolicy
  /** What is held for it on each shared axis; seconds are not held. */
  readonly slice: BudgetUsage
  /** What it had spent before this slice: already part of the parent's use. */
  readonly spent: BudgetUsage
}

/** The axes shared out; seconds are a deadline instead. */
export const SharedAxes = ["tool_calls", "tokens", "dollars", "iterations"] as const satisfies ReadonlyArray<Axis>

/** Less than this part of a cap left on a fractional axis is float noise, not budget. */
const NOISE = 1e-12

/**
 * Each shared axis's slice for the next of `waiting` children, or the first axis with nothing left. A
 * disabled axis's slice is 0 (it stays disabled for the child).
 */
export const sliceOf = (
  policy: BudgetPolicy,
  used: BudgetUsage,
  held: BudgetUsage,
  waiting: number
): Either.Either<BudgetUsage, Axis> => {
  const slice: Record<string, number> = { seconds: 0 }
  for (const axis of SharedAxes) {
    const cap = capOf(policy, axis)
    const left = cap - used[axis] - held[axis]
    if (cap === 0) {
      slice[axis] = 0
    } else if (AxisLimits[axis].integer) {
      if (left < 1) return Either.left(axis)
      slice[axis] = Math.max(1, Math.floor(left / Math.max(1, waiting)))
    } else {
      if (left <= cap * NOISE) return Either.left(axis)
      slice[axis] = left / Math.max(1, waiting)
    }
  }
  return Either.right(new BudgetUsage(slice as unknown as BudgetUsage, true))
}

/** The child's caps: its spending so far plus its slice, seconds up to `secondsLeft` more; 0 where the parent's axis is 0. */
export const policyOf = (
  parent: BudgetPolicy,
  spent: BudgetUsage,
  slice: BudgetUsage,
  secondsLeft: Option.Option<number>
): BudgetPolicy => {
  const caps: Record<string, number> = {}
  for (const axis of [...SharedAxes, "seconds"] as const) {
    const { field, max } = AxisLimits[axis]
    const more = axis === "seconds" ? Option.getOrElse(secondsLeft, () => 0) : slice[axis]
    const cap = capOf(parent, axis) === 0 ? 0 : Math.min(max, spent[axis] + more)
    // Money is kept without float noise: a cap of $0.30000000000000004 would be shown as such in its halt reason.
    caps[field] = axis === "dollars" ? roundDollars(cap) : cap
  }
  return new BudgetPolicy(caps as unknown as BudgetPolicy, true)
}

const minus = (a: BudgetUsage, b: BudgetUsage) =>
  ({ tool_calls: a.tool_calls - b.tool_calls, tokens: a.tokens - b.tokens, dollars: a.dollars - b.dollars, iterations: a.iterations - b.iterations })

/**
 * Slices of `budget` for `children` children. The parent's use is the budget's own: every child's
 * spending is charged to it as the child ends, so it must already hold what the children had spent
 * before (a resumed fan-out).
 */
export const make = (budget: Budget, children: number): Effect.Effect<Slices> =>
  Effect.gen(function*() {
    const lock = yield* Effect.makeSemaphore(1)
    const state = yield* Ref.make({ held: BudgetUsage.zero, running: 0, waiting: children })
    // Completed and replaced whenever a child returns its slice: a waiting child then looks again.
    const returned = yield* Ref.make(yield* Deferred.make<void>())

    type Decision = { readonly _tag: "Done"; readonly result: Either.Either<Reservation, Axis> } | {
      readonly _tag: "Wait"
      readonly until: Deferred.Deferred<void>
    }

    const attempt = (spent: BudgetUsage) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const now = yield* Ref.get(state)
        const timeLeft = Option.map(yield* budget.timeLeft, Duration.toSeconds)
        // Time is never returned by a sibling, so a child with none left does not wait for one.
        const slice: Either.Either<BudgetUsage, Axis> = Option.exists(timeLeft, (left) => left <= 0)
          ? Either.left("seconds")
          : sliceOf(budget.policy, yield* budget.usage, now.held, now.waiting)
        if (Either.isLeft(slice)) {
          if (slice.left !== "seconds" && now.running > 0) return { _tag: "Wait", until: yield* Ref.get(returned) } satisfies Decision
          yield* Ref.set(state, { ...now, waiting: now.waiting - 1 })
          return { _tag: "Done", result: Either.left(slice.left) } satisfies Decision
        }
        yield* Ref.set(state, { held: addUsage(now.held, slice.right), running: now.running + 1, waiting: now.waiting - 1 })
        const reservation: Reservation = { policy: policyOf(budget.policy, spent, slice.right, timeLeft), slice: slice.right, spent }
        return { _tag: "Done", result: Either.right(reservation) } satisfies Decision
      }))

    // Charged before the slice is let go, under one lock: no one sees the slice free and the spending not yet counted.
    const settle = (reservation: Reservation, spent: BudgetUsage) =>
      lock.withPermits(1)(Effect.gen(function*() {
        yield* budget.charge(minus(spent, reservation.spent))
        yield* Ref.update(state, (now) => ({
          ...now,
          held: addUsage(now.held, {
            tool_calls: -reservation.slice.tool_calls,
            tokens: -reservation.slice.tokens,
            dollars: -reservation.slice.dollars,
            iterations: -reservation.slice.iterations
          }),
          running: now.running - 1
        }))
        const next = yield* Deferred.make<void>()
        yield* Deferred.succeed(yield* Ref.getAndSet(returned, next), undefined)
      }))

    const withSlice = <A, E, R>(
      spent: BudgetUsage,
      use: (reservation: Reservation) => Effect.Effect<A, E, R>,
      spentAfter: (exit: Exit.Exit<A, E>) => Effect.Effect<BudgetUsage, never, R>
    ): Effect.Effect<Either.Either<A, Axis>, E, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          while (true) {
            const decision = yield* attempt(spent)
            if (decision._tag === "Wait") {
              yield* restore(Deferred.await(decision.until))
              continue
            }
            if (Either.isLeft(decision.result)) return Either.left(decision.result.left)
            const reservation = decision.result.right
            const exit = yield* Effect.exit(restore(use(reservation)))
            yield* settle(reservation, yield* spentAfter(exit))
            return yield* Effect.map(exit, Either.right)
          }
        })
      )

    return {
      withSlice,
      skip: lock.withPermits(1)(Ref.update(state, (now) => ({ ...now, waiting: now.waiting - 1 }))),
      more: lock.withPermits(1)(Ref.update(state, (now) => ({ ...now, waiting: now.waiting + 1 }))),
      snapshot: lock.withPermits(1)(Effect.zipWith(budget.usage, Ref.get(state), (used, now) => ({ used, held: now.held })))
    }
  })

/**
 * Brings a resumed parent's use on the shared axes up to what its children spent, as their checkpoints
 * say: its own checkpoint may lag them (a kill -9 mid-child). Never down: what the parent spent itself (a
 * mission's criteria check) stays counted. Its wall clock stays its own.
 */
export const chargeChildren = (budget: Budget, spent: ReadonlyArray<BudgetUsage>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const now = yield* budget.usage
    const delta: Record<string, number> = {}
    for (const axis of SharedAxes) delta[axis] = Math.max(0, spent.reduce((sum, u) => sum + u[axis], 0) - now[axis])
    yield* budget.charge(delta)
  })
