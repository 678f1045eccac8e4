import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { calculator } from "../../src/tools/Calculator.js"
import { Toolkit } from "../../src/tools/Tool.js"

const toolkit = Toolkit.make([calculator])
const calculate = (expression: string) => toolkit.call("calculator", { expression })

describe("calculator", () => {
  it.effect("evaluates arithmetic", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["2 + 3 * 4", "14"],
        ["(2 + 3) * 4", "20"],
        ["2 ^ 10", "1024"],
        ["2 ^ 3 ^ 2", "512"],
        ["-2 ^ 2", "-4"],
        ["1.5 * 4", "6"],
        ["0.1 + 0.2", "0.3"],
        ["10 / 4", "2.5"],
        ["7 % 3", "1"],
        ["sqrt(16) + abs(-2)", "6"],
        ["x = 3; x * 2", "6"],
        ["1 + 1\n2 * 3", "2\n6"]
      ]
      for (const [expression, expected] of cases) {
        assert.deepStrictEqual(yield* calculate(expression), { ok: true, output: expected }, expression)
      }
    }))

  it.effect("refuses functions that reach the evaluator or change mathjs", () =>
    Effect.gen(function*() {
      for (
        const expression of [
          "import({}, {override: true})",
          "evaluate(\"1\")",
          "createUnit(\"x\")",
          "parse(\"1\")",
          "compile(\"1\")",
          "simplify(\"x + x\")",
          "derivative(\"x^2\", \"x\")",
          "resolve(\"x\", {})"
        ]
      ) {
        const outcome = yield* calculate(expression)
        assert.isFalse(outcome.ok, expression)
        assert.include(outcome.output, "is not allowed", expression)
      }
      // The disabled functions stay disabled for later calls.
      assert.deepStrictEqual(yield* calculate("1 + 1"), { ok: true, output: "2" })
    }))

  it.effect("refuses functions that build a large matrix from a few characters", () =>
    Effect.gen(function*() {
      for (const expression of ["ones(1500, 1500)", "zeros(1e5, 1e5)", "sum(1:1e9)", "identity(1e4)", "random([1e4, 1e4])"]) {
        const outcome = yield* calculate(expression)
        assert.isFalse(outcome.ok, expression)
        assert.include(outcome.output, "is not allowed", expression)
      }
      assert.deepStrictEqual(yield* calculate("[1, 2; 3, 4] * [5; 6]"), { ok: true, output: "[[17], [39]]" })
    }))

  it.effect("reports non-finite results", () =>
    Effect.gen(function*() {
      for (const expression of ["1 / 0", "0 / 0", "2 ^ 1024", "[1, 1/0]"]) {
        const outcome = yield* calculate(expression)
        assert.isFalse(outcome.ok, expression)
        assert.include(outcome.output, "no finite result", expression)
      }
    }))

  it.effect("reports syntax errors, unknown symbols and non-values", () =>
    Effect.gen(function*() {
      const syntax = yield* calculate("2 +")
      assert.isFalse(syntax.ok)
      assert.include(syntax.output, "cannot evaluate \"2 +\"")
      const unknown = yield* calculate("foo * 2")
      assert.isFalse(unknown.ok)
      assert.include(unknown.output, "Undefined symbol foo")
      const fn = yield* calculate("sin")
      assert.deepStrictEqual(fn, { ok: false, output: "\"sin\" does not evaluate to a value" })
      assert.deepStrictEqual(yield* calculate("  "), { ok: false, output: "expression is empty" })
    }))

  it.effect("refuses expressions over 1000 characters", () =>
    Effect.gen(function*() {
      const outcome = yield* calculate(Array.from({ length: 501 }, () => "1").join("+"))
      assert.deepStrictEqual(outcome, { ok: false, output: "expression is 1001 characters long; the limit is 1000" })
      assert.isTrue((yield* calculate(Array.from({ length: 500 }, () => "1").join("+") + " ")).ok)
    }))

  it.effect("turns unknown tools and invalid arguments into results", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* toolkit.call("abacus", { expression: "1" }), {
        ok: false,
        output: "unknown tool \"abacus\"; available tools: calculator"
      })
      for (const args of [{}, { expression: 42 }, null, "1 + 1"]) {
        const outcome = yield* toolkit.call("calculator", args)
        assert.isFalse(outcome.ok)
        assert.include(outcome.output, "invalid arguments for calculator")
      }
    }))
})
