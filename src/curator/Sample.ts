import { Schema } from "effect"
import { ChatMessage } from "../llm/Llm.js"
import { RunStatus } from "../domain/RunStatus.js"
import { Tier } from "../domain/Tier.js"

/** A tool as OpenAI's fine-tuning lines (and chat requests) offer one. */
export const FunctionTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.NonEmptyString,
    description: Schema.optionalWith(Schema.String, { exact: true }),
    parameters: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { exact: true })
  })
})
export type FunctionTool = typeof FunctionTool.Type

/** What did the work: an iteration of a plain run, or a node attempt of a mission's graph. */
export const SampleSource = Schema.Literal("run", "node")
export type SampleSource = typeof SampleSource.Type

/**
 * Where a sample came from and what its call cost: what datasets filter on and what a fine-tune's
 * evaluation compares against. `run_status` is the plain run's, or for a node the mission run's.
 */
export const SampleMetadata = Schema.Struct({
  source: SampleSource,
  run_id: Schema.String,
  iteration: Schema.Int,
  run_status: RunStatus,
  mission_id: Schema.optionalWith(Schema.String, { exact: true }),
  /** The mission's run (its own id, or a firing's) for a node sample. */
  mission_run_id: Schema.optionalWith(Schema.String, { exact: true }),
  blueprint: Schema.optionalWith(Schema.String, { exact: true }),
  blueprint_version: Schema.optionalWith(Schema.Int, { exact: true }),
  /** The node's key (`classify`, or `2.classify` for item 2 of a batch). */
  node: Schema.optionalWith(Schema.String, { exact: true }),
  tags: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  specialist: Schema.optionalWith(Schema.String, { exact: true }),
  tier: Schema.optionalWith(Tier, { exact: true }),
  /** The model that answered the act call, and that call's cost and latency. */
  model: Schema.String,
  cost_usd: Schema.Number,
  latency_ms: Schema.Number,
  critic_confidence: Schema.optionalWith(Schema.Number, { exact: true }),
  /** An estimate at four characters a token of the line as exported: what `max_tokens` bounds. */
  tokens: Schema.Int,
  /** The normalized hash: equal for exact and near duplicates; it also places the sample in a split. */
  hash: Schema.String,
  captured_at: Schema.String
})
export type SampleMetadata = typeof SampleMetadata.Type

/**
 * One successful unit of work as training data: the full conversation of the call that did it (secrets
 * and e-mail addresses already scrubbed), the tools that call offered, and where it came from.
 */
export const TrainingSample = Schema.Struct({
  messages: Schema.Array(ChatMessage),
  tools: Schema.Array(FunctionTool),
  metadata: SampleMetadata
})
export type TrainingSample = typeof TrainingSample.Type

export const TrainingSampleJson = Schema.parseJson(TrainingSample)
