import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import {
  addUsage,
  Axes,
  type Axis,
  AxisLimits,
  BudgetPolicy,
  BudgetUsage,
  capOf,
  haltReasonFor,
  remainingOf,
  trippedAxis
} from "../../src/domain/Budget.js"

const decodePolicy = Schema.decodeUnknownEither(BudgetPolicy)

const usageOf = (fields: Partial<BudgetUsage>) => new BudgetUsage({ ...BudgetUsage.zero, ...fields })

const policy = Arbitrary.make(BudgetPolicy)

/** Usage that often lands just below, exactly on or above each cap, where an off-by-one would show. */
const usageNear = (p: BudgetPolicy) => {
  const around = (axis: Axis) => {
    const cap = capOf(p, axis)
    const below = cap > 0 ? [cap / 2, Math.max(0, cap - (AxisLimits[axis].integer ? 1 : 1e-9))] : []
    return fc.oneof(
      fc.constantFrom(0, cap, cap + 1, ...below),
      fc.double({ min: 0, max: Math.max(1, cap * 2), noNaN: true })
    )
  }
  return fc.record({
    seconds: around("seconds"),
    tool_calls: around("tool_calls"),
    tokens: around("tokens"),
    dollars: around("dollars"),
    iterations: around("iterations")
  }).map((fields) => new BudgetUsage(fields))
}

const policyAndUsage = policy.chain((p) => usageNear(p).map((u) => [p, u] as const))

describe("BudgetPolicy", () => {
  it("defaults to 1800 s, 100 tool calls, 2,000,000 tokens, $5 and 200 iterations", () => {
    const defaults = Either.getOrThrow(decodePolicy({}))
    assert.deepStrictEqual(
      { ...defaults },
      { max_seconds: 1800, max_tool_calls: 100, max_tokens: 2_000_000, max_dollars: 5, max_iterations: 200 }
    )
    assert.deepStrictEqual(new BudgetPolicy({}), defaults)
  })

  it("keeps the caps it is given, 0 included", () => {
    const given = { max_seconds: 0, max_tool_calls: 7, max_tokens: 0, max_dollars: 0.25, max_iterations: 1 }
    assert.deepStrictEqual({ ...Either.getOrThrow(decodePolicy(given)) }, given)
  })

  it("accepts fractional seconds and dollars", () => {
    assert.isTrue(Either.isRight(decodePolicy({ max_seconds: 0.5, max_dollars: 0.01 })))
  })

  it("rejects negative, NaN, infinite and non-numeric caps on every axis", () => {
    for (const axis of Axes) {
      const { field } = AxisLimits[axis]
      for (const bad of [-1, -0.5, NaN, Infinity, -Infinity, "10", null]) {
        assert.isTrue(Either.isLeft(decodePolicy({ [field]: bad })), `${field} = ${String(bad)}`)
      }
    }
  })

  it("rejects fractional counts of tool calls, tokens and iterations", () => {
    for (const field of ["max_tool_calls", "max_tokens", "max_iterations"]) {
      assert.isTrue(Either.isLeft(decodePolicy({ [field]: 1.5 })), field)
    }
  })

  it("accepts each axis's largest cap and rejects anything above it", () => {
    const largest = {
      max_seconds: 366 * 24 * 3600,
      max_tool_calls: 1e9,
      max_tokens: 1e12,
      max_dollars: 1e6,
      max_iterations: 1e9
    }
    for (const [field, max] of Object.entries(largest)) {
      assert.isTrue(Either.isRight(decodePolicy({ [field]: max })), `${field} = ${max}`)
      assert.isTrue(Either.isLeft(decodePolicy({ [field]: max + 1 })), `${field} = ${max + 1}`)
    }
  })

  it("says what is allowed when it rejects a cap", () => {
    const error = decodePolicy({ max_tokens: -1 })
    assert.isTrue(Either.isLeft(error))
    if (Either.isLeft(error)) assert.include(error.left.message, "must be a whole number from 0 to 1000000000000 (0 disables the axis)")
  })
})

describe("trippedAxis", () => {
  it.prop("reports only an enabled axis whose usage has reached its cap", [policyAndUsage], ([[p, u]]) => {
    const axis = trippedAxis(p, u)
    if (axis !== undefined) {
      assert.isAbove(capOf(p, axis), 0)
      assert.isAtLeast(u[axis], capOf(p, axis))
    }
  }, { fastCheck: { numRuns: 500 } })

  it.prop("always trips once an enabled axis reaches its cap, naming the first such axis", [policyAndUsage], ([[p, u]]) => {
    const reached = Axes.filter((axis) => capOf(p, axis) > 0 && u[axis] >= capOf(p, axis))
    assert.strictEqual(trippedAxis(p, u), reached[0])
  }, { fastCheck: { numRuns: 500 } })

  it.prop("never trips a disabled axis, however much is used", [policy, fc.double({ min: 0, max: 1e300, noNaN: true })], ([p, used]) => {
    const disabled = new BudgetPolicy({ ...p, max_tokens: 0 })
    const usage = usageOf({ tokens: used })
    assert.notStrictEqual(trippedAxis(disabled, usage), "tokens")
  })

  it("trips at the cap and not one unit before", () => {
    const defaults = new BudgetPolicy({})
    assert.isUndefined(trippedAxis(defaults, usageOf({ iterations: 199 })))
    assert.strictEqual(trippedAxis(defaults, usageOf({ iterations: 200 })), "iterations")
    assert.isUndefined(trippedAxis(defaults, usageOf({ seconds: 1799.999 })))
    assert.strictEqual(trippedAxis(defaults, usageOf({ seconds: 1800 })), "seconds")
    assert.isUndefined(trippedAxis(defaults, usageOf({ dollars: 4.9999 })))
    assert.strictEqual(trippedAxis(defaults, usageOf({ dollars: 5 })), "dollars")
    assert.isUndefined(trippedAxis(defaults, BudgetUsage.zero))
  })

  it("checks axes in the order seconds, tool calls, tokens, dollars, iterations", () => {
    const defaults = new BudgetPolicy({})
    const all = usageOf({ seconds: 1800, tool_calls: 100, tokens: 2_000_000, dollars: 5, iterations: 200 })
    assert.strictEqual(trippedAxis(defaults, all), "seconds")
    assert.strictEqual(trippedAxis(defaults, usageOf({ tokens: 2_000_000, iterations: 200 })), "tokens")
  })

  it("never trips when every axis is disabled", () => {
    const off = new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 })
    assert.isUndefined(trippedAxis(off, usageOf({ seconds: 1e9, tool_calls: 1e9, tokens: 1e12, dollars: 1e6, iterations: 1e9 })))
  })
})

describe("remainingOf", () => {
  it.prop("is null exactly for disabled axes and otherwise the headroom, never negative", [policyAndUsage], ([[p, u]]) => {
    const remaining = remainingOf(p, u)
    for (const axis of Axes) {
      const cap = capOf(p, axis)
      if (cap === 0) assert.isNull(remaining[axis], axis)
      else assert.strictEqual(remaining[axis], Math.max(0, cap - u[axis]), axis)
    }
  }, { fastCheck: { numRuns: 500 } })

  it("reports the default headroom of a fresh run", () => {
    assert.deepStrictEqual(remainingOf(new BudgetPolicy({}), usageOf({ tokens: 500_000, iterations: 250 })), {
      seconds: 1800,
      tool_calls: 100,
      tokens: 1_500_000,
      dollars: 5,
      iterations: 0
    })
  })
})

describe("haltReasonFor", () => {
  const defaults = new BudgetPolicy({})
  const spent = usageOf({ seconds: 1800.04, tool_calls: 100, tokens: 2_000_000, dollars: 5.00001, iterations: 200 })

  it("names the axis that tripped at the start of the reason", () => {
    const prefixes: Record<Axis, string> = {
      iterations: "iteration limit reached",
      tokens: "token limit reached",
      dollars: "dollar limit reached",
      tool_calls: "tool-call limit reached",
      seconds: "wall-clock limit reached"
    }
    for (const axis of Axes) assert.isTrue(haltReasonFor(axis, defaults, spent).startsWith(`${prefixes[axis]}: `), axis)
  })

  it("states the usage and the cap", () => {
    assert.strictEqual(haltReasonFor("seconds", defaults, spent), "wall-clock limit reached: 1800.0s of 1800s")
    assert.strictEqual(haltReasonFor("tool_calls", defaults, spent), "tool-call limit reached: 100 of 100 tool calls")
    assert.strictEqual(haltReasonFor("tokens", defaults, spent), "token limit reached: 2000000 of 2000000 tokens")
    assert.strictEqual(haltReasonFor("dollars", defaults, spent), "dollar limit reached: $5.0000 of $5.00")
    assert.strictEqual(haltReasonFor("iterations", defaults, spent), "iteration limit reached: 200 of 200 iterations")
  })
})

describe("addUsage", () => {
  it("adds each axis of the delta and leaves the others alone", () => {
    const start = usageOf({ seconds: 3, tool_calls: 1, tokens: 10, dollars: 0.5, iterations: 2 })
    assert.deepStrictEqual(
      addUsage(start, { tokens: 90, iterations: 1 }),
      usageOf({ seconds: 3, tool_calls: 1, tokens: 100, dollars: 0.5, iterations: 3 })
    )
  })
})
