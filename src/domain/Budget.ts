import { Schema } from "effect"
import { dollarCap, dollars, plural } from "./Quantity.js"

/** The five budget axes, in the order they are checked and printed. */
export const Axes = ["seconds", "tool_calls", "tokens", "dollars", "iterations"] as const
export const Axis = Schema.Literal(...Axes)
export type Axis = typeof Axis.Type

/** Per axis: the policy field, the CLI flag, whether values are whole numbers, the largest sane cap. */
export const AxisLimits: Record<Axis, { readonly field: keyof BudgetPolicy; readonly flag: string; readonly integer: boolean; readonly max: number }> = {
  seconds: { field: "max_seconds", flag: "--max-seconds", integer: false, max: 366 * 24 * 3600 },
  tool_calls: { field: "max_tool_calls", flag: "--max-tool-calls", integer: true, max: 1e9 },
  tokens: { field: "max_tokens", flag: "--max-tokens", integer: true, max: 1e12 },
  dollars: { field: "max_dollars", flag: "--max-dollars", integer: false, max: 1e6 },
  iterations: { field: "max_iterations", flag: "--max-iterations", integer: true, max: 1e9 }
}

/** Why `value` cannot be a cap on `axis`, or undefined if it can: one rule for the Schema and the CLI. */
export const capProblem = (axis: Axis, value: number): string | undefined => {
  const { integer, max } = AxisLimits[axis]
  return Number.isFinite(value) && value >= 0 && value <= max && (!integer || Number.isInteger(value))
    ? undefined
    : `must be ${integer ? "a whole number" : "a number"} from 0 to ${max} (0 disables the axis)`
}

const cap = (axis: Axis, defaultValue: number) =>
  Schema.optionalWith(
    Schema.Number.pipe(Schema.filter((n) => capProblem(axis, n) === undefined, { message: () => capProblem(axis, Number.NaN)! })),
    { default: () => defaultValue }
  )

/** Caps per axis; 0 disables an axis. Defaults follow the seed runtime. */
export class BudgetPolicy extends Schema.Class<BudgetPolicy>("BudgetPolicy")({
  max_seconds: cap("seconds", 1800),
  max_tool_calls: cap("tool_calls", 100),
  max_tokens: cap("tokens", 2_000_000),
  max_dollars: cap("dollars", 5),
  max_iterations: cap("iterations", 200)
}) {}

const Amount = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/** What a run has spent, cumulative across every resume. */
export class BudgetUsage extends Schema.Class<BudgetUsage>("BudgetUsage")({
  seconds: Amount,
  tool_calls: Amount,
  tokens: Amount,
  dollars: Amount,
  iterations: Amount
}) {
  static readonly zero = new BudgetUsage({ seconds: 0, tool_calls: 0, tokens: 0, dollars: 0, iterations: 0 })
}

/** Headroom per axis; null where the axis is disabled. */
export const BudgetRemaining = Schema.Struct({
  seconds: Schema.NullOr(Schema.Number),
  tool_calls: Schema.NullOr(Schema.Number),
  tokens: Schema.NullOr(Schema.Number),
  dollars: Schema.NullOr(Schema.Number),
  iterations: Schema.NullOr(Schema.Number)
})
export type BudgetRemaining = typeof BudgetRemaining.Type

export const capOf = (policy: BudgetPolicy, axis: Axis): number => policy[AxisLimits[axis].field] as number

export const remainingOf = (policy: BudgetPolicy, usage: BudgetUsage): BudgetRemaining => {
  const headroom = (axis: Axis) => {
    const max = capOf(policy, axis)
    return max === 0 ? null : Math.max(0, max - usage[axis])
  }
  return {
    seconds: headroom("seconds"),
    tool_calls: headroom("tool_calls"),
    tokens: headroom("tokens"),
    dollars: headroom("dollars"),
    iterations: headroom("iterations")
  }
}

/** An axis trips exactly when its usage reaches its cap, never before. */
export const trippedAxis = (policy: BudgetPolicy, usage: BudgetUsage): Axis | undefined =>
  Axes.find((axis) => {
    const max = capOf(policy, axis)
    return max > 0 && usage[axis] >= max
  })

const describe: Record<Axis, (used: number, max: number) => string> = {
  seconds: (used, max) => `wall-clock limit reached: ${used.toFixed(1)}s of ${max}s`,
  tool_calls: (used, max) => `tool-call limit reached: ${used} of ${plural(max, "tool call")}`,
  tokens: (used, max) => `token limit reached: ${used} of ${plural(max, "token")}`,
  dollars: (used, max) => `dollar limit reached: ${dollars(used)} of ${dollarCap(max)}`,
  iterations: (used, max) => `iteration limit reached: ${used} of ${plural(max, "iteration")}`
}

export const haltReasonFor = (axis: Axis, policy: BudgetPolicy, usage: BudgetUsage): string =>
  describe[axis](usage[axis], capOf(policy, axis))

export const addUsage = (usage: BudgetUsage, delta: Partial<BudgetUsage>): BudgetUsage =>
  new BudgetUsage({
    seconds: usage.seconds + (delta.seconds ?? 0),
    tool_calls: usage.tool_calls + (delta.tool_calls ?? 0),
    tokens: usage.tokens + (delta.tokens ?? 0),
    dollars: usage.dollars + (delta.dollars ?? 0),
    iterations: usage.iterations + (delta.iterations ?? 0)
  }, true)
