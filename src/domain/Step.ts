import { Schema } from "effect"
import { BudgetUsage } from "./Budget.js"
import { Critique } from "./Critic.js"

export const ToolCallRecord = Schema.Struct({
  /** The call's id as the model gave it, which the tool message answering it names; absent on older steps. */
  id: Schema.optionalWith(Schema.String, { exact: true }),
  name: Schema.String,
  arguments: Schema.Unknown,
  ok: Schema.Boolean,
  output: Schema.String,
  /** A call the run's specialist may not make: not run, and the model told so. */
  refused: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type ToolCallRecord = typeof ToolCallRecord.Type

/** The judge's answer: which criteria are met now, and why. */
export const Verdict = Schema.Struct({
  criteria_met: Schema.Array(Schema.Boolean),
  notes: Schema.optionalWith(Schema.String, { default: () => "" })
})
export type Verdict = typeof Verdict.Type

/** What one model call cost and took: the step's telemetry, one entry per call (act, then judge, …). */
export const ModelCall = Schema.Struct({
  purpose: Schema.String,
  model_used: Schema.String,
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cost_usd: Schema.Number,
  /** Of the attempt that answered; waits between retries are not the model's. */
  latency_ms: Schema.Number,
  /** 1, plus one per transient failure retried. */
  attempts: Schema.Number
})
export type ModelCall = typeof ModelCall.Type

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
  criteria_met: Schema.Array(Schema.Boolean),
  calls: Schema.optionalWith(Schema.Array(ModelCall), { default: () => [] }),
  /** How many earlier steps the act prompt quoted: with them, the prompt can be rebuilt exactly. */
  history_window: Schema.optionalWith(Schema.Int, { default: () => 6 }),
  /** The critic's verdict on this iteration, if it gave one: its suggestions feed the next act prompt. */
  critic: Schema.optionalWith(Critique, { exact: true })
}) {}
