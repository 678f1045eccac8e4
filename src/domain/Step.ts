import { Schema } from "effect"
import { BudgetUsage } from "./Budget.js"

export const ToolCallRecord = Schema.Struct({
  name: Schema.String,
  arguments: Schema.Unknown,
  ok: Schema.Boolean,
  output: Schema.String
})
export type ToolCallRecord = typeof ToolCallRecord.Type

/** The judge's answer: which criteria are met now, and why. */
export const Verdict = Schema.Struct({
  criteria_met: Schema.Array(Schema.Boolean),
  notes: Schema.optionalWith(Schema.String, { default: () => "" })
})
export type Verdict = typeof Verdict.Type

/**
 * One iteration, appended to the run's history and never rewritten. It carries the cumulative usage and
 * criteria after the iteration, so a run whose checkpoint is lost can resume from its last step.
 */
export class Step extends Schema.Class<Step>("Step")({
  iteration: Schema.Int,
  at: Schema.String,
  model: Schema.String,
  answer: Schema.String,
  tool_calls: Schema.Array(ToolCallRecord),
  verdict: Schema.String,
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean)
}) {}
