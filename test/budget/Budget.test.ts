import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Option, TestClock } from "effect"
import * as Budget from "../../src/budget/Budget.js"
import { BudgetPolicy, BudgetUsage } from "../../src/domain/Budget.js"

const spentBefore = new BudgetUsage({ seconds: 12.25, tool_calls: 2, tokens: 1_000, dollars: 0.125, iterations: 3 })

const delta = fc.record({
  tokens: fc.nat({ max: 1_000_000 }),
  dollars: fc.double({ min: 0, max: 10, noNaN: true }),
  iterations: fc.nat({ max: 3 })
}, { requiredKeys: [] })

/** Option.none and Option.some look alike to chai's deep equality, so options are unwrapped before comparing. */
const millisLeft = (left: Option.Option<Duration.Duration>): number | null => Option.getOrNull(Option.map(left, Duration.toMillis))

describe("Budget", () => {
  describe("seconds", () => {
    it.effect("are measured on the Effect Clock, on top of what earlier sessions spent", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({}), spentBefore)
        assert.strictEqual((yield* budget.usage).seconds, spentBefore.seconds)
        yield* TestClock.adjust("90 seconds")
        assert.strictEqual((yield* budget.usage).seconds, spentBefore.seconds + 90)
        yield* TestClock.adjust("500 millis")
        assert.strictEqual((yield* budget.usage).seconds, spentBefore.seconds + 90.5)
      }))

    it.effect("count from the moment the budget was made, not from the clock's origin", () =>
      Effect.gen(function*() {
        yield* TestClock.adjust("1 hour")
        const budget = yield* Budget.make(new BudgetPolicy({}), BudgetUsage.zero)
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual((yield* budget.usage).seconds, 10)
      }))

    it.effect("keep every charged axis as it was", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({}), spentBefore)
        yield* TestClock.adjust("90 seconds")
        const usage = yield* budget.usage
        assert.deepStrictEqual(
          { ...usage, seconds: 0 },
          { ...spentBefore, seconds: 0 }
        )
      }))
  })

  describe("timeLeft", () => {
    it.effect("is none when the wall-clock axis is disabled", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_seconds: 0 }), spentBefore)
        assert.isTrue(Option.isNone(yield* budget.timeLeft))
        yield* TestClock.adjust("3 hours")
        assert.isTrue(Option.isNone(yield* budget.timeLeft))
      }))

    it.effect("is the cap minus the seconds used", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_seconds: 1800 }), new BudgetUsage({ ...BudgetUsage.zero, seconds: 100 }))
        assert.strictEqual(millisLeft(yield* budget.timeLeft), 1_700_000)
        yield* TestClock.adjust("90 seconds")
        assert.strictEqual(millisLeft(yield* budget.timeLeft), 1_610_000)
      }))

    it.effect("is zero, never negative, once the cap has passed", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_seconds: 60 }), BudgetUsage.zero)
        yield* TestClock.adjust("2 minutes")
        assert.strictEqual(millisLeft(yield* budget.timeLeft), 0)
      }))
  })

  describe("exceeded", () => {
    it.effect("trips the wall clock at exactly its cap and not a second before", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_seconds: 1800 }), BudgetUsage.zero)
        yield* TestClock.adjust("1799 seconds")
        assert.isTrue(Option.isNone(yield* budget.exceeded))
        yield* TestClock.adjust("1 second")
        const exceeded = Option.getOrNull(yield* budget.exceeded)
        assert.strictEqual(exceeded?.axis, "seconds")
        assert.strictEqual(exceeded?.reason, "wall-clock limit reached: 1800.0s of 1800s")
        assert.strictEqual(exceeded?.usage.seconds, 1800)
      }))

    it.effect("trips a charged axis once the charges reach its cap", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_iterations: 3 }), BudgetUsage.zero)
        yield* budget.charge({ iterations: 2 })
        assert.isTrue(Option.isNone(yield* budget.exceeded))
        yield* budget.charge({ iterations: 1 })
        const exceeded = Option.getOrNull(yield* budget.exceeded)
        assert.strictEqual(exceeded?.axis, "iterations")
        assert.strictEqual(exceeded?.reason, "iteration limit reached: 3 of 3 iterations")
      }))

    it.effect("never trips a disabled axis", () =>
      Effect.gen(function*() {
        const off = new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 })
        const budget = yield* Budget.make(off, BudgetUsage.zero)
        yield* budget.charge({ tokens: 1e12, dollars: 1e6, iterations: 1e9 })
        yield* TestClock.adjust("400 days")
        assert.isTrue(Option.isNone(yield* budget.exceeded))
      }))
  })

  describe("takeToolCall", () => {
    it.effect("allows exactly max_tool_calls calls, then refuses", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_tool_calls: 3 }), BudgetUsage.zero)
        const taken = yield* Effect.replicateEffect(budget.takeToolCall, 5)
        assert.deepStrictEqual(taken, [true, true, true, false, false])
        assert.strictEqual((yield* budget.usage).tool_calls, 3)
      }))

    it.effect("allows exactly max_tool_calls calls when many fibers race for them", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_tool_calls: 10 }), BudgetUsage.zero)
        const taken = yield* Effect.all(Array.from({ length: 50 }, () => budget.takeToolCall), { concurrency: "unbounded" })
        assert.strictEqual(taken.filter(Boolean).length, 10)
        assert.strictEqual((yield* budget.usage).tool_calls, 10)
      }))

    it.effect("counts the calls earlier sessions already made", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_tool_calls: 3 }), spentBefore)
        const taken = yield* Effect.replicateEffect(budget.takeToolCall, 3)
        assert.deepStrictEqual(taken, [true, false, false])
      }))

    it.effect("is unlimited when the axis is disabled", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({ max_tool_calls: 0 }), BudgetUsage.zero)
        const taken = yield* Effect.all(Array.from({ length: 500 }, () => budget.takeToolCall), { concurrency: "unbounded" })
        assert.isTrue(taken.every(Boolean))
        assert.strictEqual((yield* budget.usage).tool_calls, 500)
      }))
  })

  describe("charge", () => {
    it.effect("adds to each charged axis and returns the new usage", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({}), spentBefore)
        const first = yield* budget.charge({ tokens: 500, dollars: 0.25 })
        const second = yield* budget.charge({ tokens: 250, iterations: 1 })
        assert.deepStrictEqual(
          [first.tokens, first.dollars, first.iterations],
          [1_500, 0.375, 3]
        )
        assert.deepStrictEqual(
          [second.tokens, second.dollars, second.iterations, second.tool_calls],
          [1_750, 0.375, 4, 2]
        )
        assert.deepStrictEqual(yield* budget.usage, second)
      }))

    it.effect.prop("totals every charge exactly, in the order made", [fc.array(delta, { maxLength: 30 })], ([deltas]) =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(new BudgetPolicy({}), spentBefore)
        for (const d of deltas) yield* budget.charge(d)
        const usage = yield* budget.usage
        assert.strictEqual(usage.tokens, deltas.reduce((n, d) => n + (d.tokens ?? 0), spentBefore.tokens))
        assert.strictEqual(usage.dollars, deltas.reduce((n, d) => n + (d.dollars ?? 0), spentBefore.dollars))
        assert.strictEqual(usage.iterations, deltas.reduce((n, d) => n + (d.iterations ?? 0), spentBefore.iterations))
      }))

    it.effect.prop(
      "never lets usage decrease, on any axis, under any sequence of charges and clock moves",
      [fc.array(fc.tuple(delta, fc.nat({ max: 10_000 })), { maxLength: 30 })],
      ([steps]) =>
        Effect.gen(function*() {
          const budget = yield* Budget.make(new BudgetPolicy({}), spentBefore)
          let before = yield* budget.usage
          for (const [d, millis] of steps) {
            yield* TestClock.adjust(Duration.millis(millis))
            const after = yield* budget.charge(d)
            for (const axis of ["seconds", "tool_calls", "tokens", "dollars", "iterations"] as const) {
              assert.isAtLeast(after[axis], before[axis], axis)
            }
            before = after
          }
        })
    )
  })

  describe("remaining", () => {
    it.effect("is null for disabled axes and the headroom elsewhere", () =>
      Effect.gen(function*() {
        const policy = new BudgetPolicy({ max_seconds: 100, max_tool_calls: 0, max_tokens: 5_000, max_dollars: 0, max_iterations: 10 })
        const budget = yield* Budget.make(policy, BudgetUsage.zero)
        yield* budget.charge({ tokens: 1_200, iterations: 4 })
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(yield* budget.remaining, { seconds: 70, tool_calls: null, tokens: 3_800, dollars: null, iterations: 6 })
      }))
  })
})
