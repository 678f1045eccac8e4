import { Effect, Schema } from "effect"
import type { MathJsInstance } from "mathjs"
import { ToolError } from "../domain/Errors.js"
import { make, type Tool } from "./Tool.js"

const maxExpressionLength = 1000

// Functions that let an expression reach the evaluator itself or change the instance (mathjs docs,
// "Security"), and those that build a large matrix from a few characters (`ones(1e4, 1e4)`, `1:1e9`),
// which would block the process beyond the reach of any timeout; an expression calling one gets an error.
const disabled = [
  "import", "createUnit", "evaluate", "parse", "simplify", "derivative", "resolve", "compile",
  "ones", "zeros", "identity", "range", "resize", "reshape", "random", "randomInt", "pickRandom",
  "matrixFromFunction", "matrixFromRows", "matrixFromColumns", "kron", "diag"
] as const

interface Evaluator {
  readonly math: MathJsInstance
  readonly evaluate: (expression: string) => unknown
}

// Loaded on first use so that starting the CLI does not pay for mathjs; the instance is built once.
const evaluator = Effect.runSync(
  Effect.cached(
    Effect.tryPromise({
      try: () => import("mathjs"),
      catch: (error) => new ToolError({ message: `calculator unavailable: ${String(error)}` })
    }).pipe(
      Effect.map(({ all, create }): Evaluator => {
        // mathjs's typings declare `all` as an indexed (possibly missing) member; the module always exports it.
        const math = create(all!)
        const evaluate = math.evaluate
        math.import(
          Object.fromEntries(
            disabled.map((name) => [
              name,
              () => {
                throw new Error(`function ${name} is not allowed in the calculator`)
              }
            ])
          ),
          { override: true }
        )
        return { math, evaluate: (expression) => evaluate(expression, {}) }
      })
    )
  )
)

const isFinite = (math: MathJsInstance, value: unknown): boolean => {
  if (typeof value === "number") return Number.isFinite(value)
  if (math.isBigNumber(value)) return value.isFinite()
  if (math.isComplex(value)) return Number.isFinite(value.re) && Number.isFinite(value.im)
  if (math.isUnit(value)) return value.value === null || isFinite(math, value.value)
  if (math.isMatrix(value)) return isFinite(math, value.toArray())
  if (Array.isArray(value)) return value.every((item) => isFinite(math, item))
  return true
}

const format = (math: MathJsInstance, expression: string, value: unknown): Effect.Effect<string, ToolError> => {
  if (value === undefined || typeof value === "function") {
    return Effect.fail(new ToolError({ message: `"${expression}" does not evaluate to a value` }))
  }
  if (!isFinite(math, value)) {
    return Effect.fail(
      new ToolError({ message: `"${expression}" has no finite result (${math.format(value)}); check for division by zero or overflow` })
    )
  }
  // 14 significant digits hides binary rounding noise such as 0.1 + 0.2 = 0.30000000000000004.
  return Effect.succeed(math.format(value, { precision: 14 }))
}

export const calculator: Tool = make({
  name: "calculator",
  description:
    "Evaluate an arithmetic expression and return the result, e.g. \"(2 + 3) * 4 ^ 2 / 7\", \"sqrt(2) * pi\" or \"5 cm to inch\". " +
    "Supports + - * / ^ %, parentheses, common functions (sqrt, log, sin, round, ...), constants, matrices and units. " +
    `Separate several expressions with ";" or newlines to get one result per line. At most ${maxExpressionLength} characters.`,
  parameters: Schema.Struct({
    expression: Schema.String.annotations({ description: "the expression to evaluate" })
  }),
  handler: ({ expression }) =>
    Effect.gen(function*() {
      if (expression.trim() === "") {
        return yield* new ToolError({ message: "expression is empty" })
      }
      if (expression.length > maxExpressionLength) {
        return yield* new ToolError({
          message: `expression is ${expression.length} characters long; the limit is ${maxExpressionLength}`
        })
      }
      const { evaluate, math } = yield* evaluator
      const result = yield* Effect.try({
        try: () => evaluate(expression),
        catch: (error) =>
          new ToolError({ message: `cannot evaluate "${expression}": ${error instanceof Error ? error.message : String(error)}` })
      })
      const values = math.isResultSet(result) ? result.entries : [result]
      if (values.length === 0) {
        return yield* new ToolError({ message: `"${expression}" does not evaluate to a value` })
      }
      const lines = yield* Effect.forEach(values, (value) => format(math, expression, value))
      return lines.join("\n")
    })
})
