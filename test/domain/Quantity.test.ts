import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { costOf, knownModels, priceOf } from "../../src/budget/Pricing.js"
import { BudgetPolicy, BudgetUsage, haltReasonFor } from "../../src/domain/Budget.js"
import { dollarCap, dollars, plural, roundDollars } from "../../src/domain/Quantity.js"

/** Significant digits of a number as JavaScript prints it: `0.00004935` has 4, `1.2e-7` has 2. */
const significantDigits = (n: number) =>
  String(Math.abs(n)).replace(/e.*$/, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "").length

/** Twelve significant digits: half a unit in the twelfth digit, relative to the amount. */
const precision = 5e-12

const amounts = fc.oneof(
  fc.double({ min: 0, max: 1e7, noNaN: true }),
  fc.double({ min: 1e-9, max: 1e-3, noNaN: true }),
  fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_000 * 0.15)
)

describe("money", () => {
  it.prop("rounding never changes an amount by more than its precision, twelve significant digits", [amounts], ([amount]) => {
    const rounded = roundDollars(amount)
    assert.isAtMost(Math.abs(rounded - amount), amount * precision * (1 + 1e-3), `${amount} -> ${rounded}`)
    assert.isAtMost(significantDigits(rounded), 12, `${amount} -> ${rounded}`)
    assert.strictEqual(roundDollars(rounded), rounded)
  }, { fastCheck: { numRuns: 2000 } })

  it.prop(
    "a call's cost is what the price says, to the precision, and prints without float noise",
    [fc.constantFrom(...knownModels), fc.nat({ max: 10_000_000 }), fc.nat({ max: 1_000_000 })],
    ([model, input, output]) => {
      const price = Option.getOrThrow(priceOf(model))
      const exact = (input * price.input_per_mtok + output * price.output_per_mtok) / 1_000_000
      const cost = costOf(price, { input_tokens: input, output_tokens: output })
      assert.isAtMost(Math.abs(cost - exact), exact * precision * (1 + 1e-3))
      assert.isAtMost(significantDigits(cost), 12, String(cost))
    }
  )

  it("drops the noise people saw in JSON", () => {
    assert.strictEqual(roundDollars(0.00004934999999999999), 0.00004935)
    assert.strictEqual(roundDollars(0.1 + 0.2), 0.3)
    assert.strictEqual(costOf(Option.getOrThrow(priceOf("gpt-4o-mini")), { input_tokens: 77, output_tokens: 11 }), 0.00001815)
  })

  it("shows amounts with enough digits to be truthful: four decimals, two significant digits below a cent", () => {
    assert.strictEqual(dollars(5), "$5.0000")
    assert.strictEqual(dollars(1.05), "$1.0500")
    assert.strictEqual(dollars(0.0123), "$0.0123")
    assert.strictEqual(dollars(0.000264), "$0.00026")
    assert.strictEqual(dollars(0.0000384), "$0.000038")
    assert.strictEqual(dollars(0), "$0.0000")
    assert.strictEqual(dollars(0.0000384, 6), "$0.000038")
    assert.strictEqual(dollars(0.123456, 6), "$0.123456")
  })

  it("shows a cap as it was given, cents at least", () => {
    assert.strictEqual(dollarCap(5), "$5.00")
    assert.strictEqual(dollarCap(2.5), "$2.50")
    assert.strictEqual(dollarCap(0.0003), "$0.0003")
    assert.strictEqual(dollarCap(0.00025), "$0.00025")
  })

  it("a tiny dollar cap is named as given in the halt reason, not as $0.00", () => {
    const policy = new BudgetPolicy({ max_dollars: 0.0003 })
    const usage = new BudgetUsage({ ...BudgetUsage.zero, dollars: 0.000361 })
    assert.strictEqual(haltReasonFor("dollars", policy, usage), "dollar limit reached: $0.00036 of $0.0003")
  })
})

describe("counts", () => {
  it("say one thing in the singular and anything else in the plural", () => {
    assert.strictEqual(plural(1, "iteration"), "1 iteration")
    assert.strictEqual(plural(0, "iteration"), "0 iterations")
    assert.strictEqual(plural(2, "tool call"), "2 tool calls")
    assert.strictEqual(plural(1200, "token", "1.2k"), "1.2k tokens")
  })

  it("halt reasons name a cap of one in the singular", () => {
    const policy = new BudgetPolicy({ max_iterations: 1, max_tool_calls: 1 })
    const usage = new BudgetUsage({ ...BudgetUsage.zero, iterations: 1, tool_calls: 1 })
    assert.strictEqual(haltReasonFor("iterations", policy, usage), "iteration limit reached: 1 of 1 iteration")
    assert.strictEqual(haltReasonFor("tool_calls", policy, usage), "tool-call limit reached: 1 of 1 tool call")
  })
})
