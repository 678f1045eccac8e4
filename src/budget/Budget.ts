import { Clock, Duration, Effect, Option, Ref } from "effect"
import {
  type Axis,
  type BudgetPolicy,
  type BudgetRemaining,
  BudgetUsage,
  addUsage,
  haltReasonFor,
  remainingOf,
  trippedAxis
} from "../domain/Budget.js"

export interface Exceeded {
  readonly axis: Axis
  readonly reason: string
  readonly usage: BudgetUsage
}

/**
 * One mission's budget: all five axes behind one Ref, so every charge is atomic. Seconds are not charged
 * but measured on the Effect Clock from the moment the budget was made, on top of what earlier sessions
 * of the same run already spent.
 */
export interface Budget {
    readonly policy: BudgetPolicy
    readonly usage: Effect.Effect<BudgetUsage>
    readonly remaining: Effect.Effect<BudgetRemaining>
    /** Adds tokens, dollars or iterations. */
    readonly charge: (delta: Partial<Omit<BudgetUsage, "seconds">>) => Effect.Effect<BudgetUsage>
    /** Takes one tool call if the axis has room; false means the call must not run. */
    readonly takeToolCall: Effect.Effect<boolean>
    /** The first axis that has reached its cap, if any. */
    readonly exceeded: Effect.Effect<Option.Option<Exceeded>>
    /** Wall-clock time left, if that axis is enabled: the bound for whatever runs next. */
    readonly timeLeft: Effect.Effect<Option.Option<Duration.Duration>>
}

export const make = (policy: BudgetPolicy, spent: BudgetUsage): Effect.Effect<Budget> =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const charged = yield* Ref.make(spent)
      // Sums of valid amounts are valid: skip the constructor's re-validation on this hot path.
      const usage = Effect.zipWith(charged, Clock.currentTimeMillis, (usage, now) =>
        new BudgetUsage({ ...usage, seconds: spent.seconds + (now - startedAt) / 1000 }, true))
      return {
        policy,
        usage,
        remaining: Effect.map(usage, (usage) => remainingOf(policy, usage)),
        charge: (delta) => Ref.update(charged, (usage) => addUsage(usage, delta)).pipe(Effect.zipRight(usage)),
        takeToolCall: Ref.modify(charged, (usage) =>
          policy.max_tool_calls > 0 && usage.tool_calls >= policy.max_tool_calls
            ? [false, usage]
            : [true, addUsage(usage, { tool_calls: 1 })]),
        exceeded: Effect.map(usage, (usage) =>
          Option.fromNullable(trippedAxis(policy, usage)).pipe(
            Option.map((axis) => ({ axis, reason: haltReasonFor(axis, policy, usage), usage }))
          )),
        timeLeft: Effect.map(usage, (usage) =>
          policy.max_seconds === 0
            ? Option.none()
            : Option.some(Duration.millis(Math.max(0, (policy.max_seconds - usage.seconds) * 1000))))
      }
    })
