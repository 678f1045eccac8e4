import { Schema } from "effect"
import { FiringRef } from "./Firing.js"
import { LlmChoice } from "./LlmChoice.js"

/**
 * What marks a run as a mission's run: which mission's agent graph it drives, kept in its checkpoint and
 * `run_started` as a fan-out keeps its spec, so `resume` continues it as the same graph. The graph itself
 * is the mission's (a snapshot of its blueprint, frozen at approval); only what the run adds is here.
 */
export const MissionRef = Schema.Struct({
  mission_id: Schema.String,
  project_id: Schema.String,
  /** How many nodes run at a time. */
  max_parallel: Schema.Int,
  /** The provider a node falls back to (healing's `fallback_provider`, an open circuit breaker); none when absent. */
  fallback: Schema.optionalWith(LlmChoice, { exact: true }),
  /** A scheduled mission's firing this run is: its run id is the firing's, not the mission's. */
  firing: Schema.optionalWith(FiringRef, { exact: true })
})
export type MissionRef = typeof MissionRef.Type

/** The run a mission run is: the mission's own (its id), or one of its firings. */
export const runIdOf = (ref: MissionRef) => ref.firing?.run_id ?? ref.mission_id

/** What one node attempt cost and took: the StepResult's `telemetry`, summed over its model calls. */
export const NodeTelemetry = Schema.Struct({
  /** The models that answered its act calls, in order of first use, comma-separated. */
  model_used: Schema.String,
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cost_usd: Schema.Number,
  latency_ms: Schema.Number
})
export type NodeTelemetry = typeof NodeTelemetry.Type

export const NodeStatus = Schema.Literal("succeeded", "failed", "skipped")
export type NodeStatus = typeof NodeStatus.Type
