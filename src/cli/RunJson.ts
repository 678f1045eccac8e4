import { Schema } from "effect"
import { BudgetUsage } from "../domain/Budget.js"
import { CriticSettings } from "../domain/Critic.js"
import { Goal } from "../domain/Goal.js"
import { LlmChoice } from "../domain/LlmChoice.js"
import { RunStatus } from "../domain/RunStatus.js"
import { ModelCall } from "../domain/Step.js"
import { ChatMessage } from "../llm/Llm.js"

/**
 * What `runs` and `show` print as JSON (Runs.listedJson, Runs.viewJson), which is also what
 * `GET /runs` and `GET /runs/{id}` answer: as Schemas of the fields their text is made of, so the text of a
 * run is made from the JSON, the same text whether the JSON came from the database here or from a server.
 */

/** One run of `runs`; a corrupt one has only its id and when it was last written. */
export const Listed = Schema.Struct({
  run_id: Schema.String,
  status: Schema.Union(RunStatus, Schema.Literal("corrupt")),
  interrupted: Schema.Boolean,
  interrupted_reason: Schema.NullOr(Schema.String),
  objective: Schema.NullOr(Schema.String),
  iterations: Schema.NullOr(Schema.Number),
  criteria_met: Schema.NullOr(Schema.Array(Schema.Boolean)),
  cost_usd: Schema.NullOr(Schema.Number),
  updated_at: Schema.String,
  fanout: Schema.NullOr(Schema.Struct({ children: Schema.Number }))
})
export type Listed = typeof Listed.Type

const Messages = Schema.Array(ChatMessage)

/** A fan-out's child as `show` lists it. */
export const Child = Schema.Struct({
  index: Schema.Number,
  run_id: Schema.String,
  item: Schema.String,
  status: Schema.String,
  halt_reason: Schema.NullOr(Schema.String)
})
export type Child = typeof Child.Type

/** A run as of its latest checkpoint, with its latest steps' telemetry (and messages, when asked for). */
export const View = Schema.Struct({
  run_id: Schema.String,
  project: Schema.optionalWith(Schema.String, { default: () => "default" }),
  status: RunStatus,
  interrupted: Schema.Boolean,
  interrupted_reason: Schema.NullOr(Schema.String),
  halt_reason: Schema.NullOr(Schema.String),
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean),
  goal: Goal,
  llm: Schema.NullOr(LlmChoice),
  critic: Schema.NullOr(CriticSettings),
  specialist: Schema.NullOr(Schema.Struct({ id: Schema.String, name: Schema.String, model_tier: Schema.String })),
  artifacts: Schema.Number,
  created_at: Schema.String,
  updated_at: Schema.String,
  steps: Schema.Array(Schema.Struct({
    iteration: Schema.Number,
    cost_usd: Schema.Number,
    calls: Schema.Array(ModelCall),
    messages: Schema.optional(Schema.Struct({ act: Messages, judge: Messages }))
  })),
  fanout: Schema.optional(Schema.Struct({
    template: Schema.String,
    max_parallel: Schema.Number,
    children: Schema.Array(Child)
  }))
})
export type View = typeof View.Type
