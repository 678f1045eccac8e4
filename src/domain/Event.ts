import { Schema } from "effect"
import { ArtifactKind } from "./Artifact.js"
import { Axis, BudgetPolicy, BudgetRemaining, BudgetUsage } from "./Budget.js"
import { CriticSettings, Critique } from "./Critic.js"
import { FanoutSpec } from "./Fanout.js"
import { Goal } from "./Goal.js"
import { Adjustment, Attempt, FailureClass, Outcome } from "./Healing.js"
import { LlmChoice } from "./LlmChoice.js"
import { MissionRef, NodeStatus, NodeTelemetry } from "./MissionRun.js"
import { RunStatus } from "./RunStatus.js"
import { ModelCall, ToolCallRecord } from "./Step.js"
import { Specialist } from "../specialists/Specialist.js"

/** Every event names its run, its time (ISO), its place in the run's log and the headroom left per axis. */
const event = <Kind extends string, Fields extends Schema.Struct.Fields>(kind: Kind, fields: Fields) =>
  Schema.Struct({
    kind: Schema.Literal(kind),
    run_id: Schema.String,
    at: Schema.String,
    seq: Schema.Int,
    remaining: BudgetRemaining,
    ...fields
  })

export const RunStarted = event("run_started", {
  goal: Goal,
  policy: BudgetPolicy,
  resuming: Schema.Boolean,
  iterations: Schema.Int,
  usage: BudgetUsage,
  /** The model Layer this session runs on, when known: a run rebuilt from history keeps it. */
  llm: Schema.optionalWith(LlmChoice, { exact: true }),
  /** The run's critic, when it has one. */
  critic: Schema.optionalWith(CriticSettings, { exact: true }),
  /** The role the run runs as, as recorded with it: a run rebuilt from history keeps it. */
  specialist: Schema.optionalWith(Specialist, { exact: true }),
  /** What a fan-out run fans out over: a fan-out rebuilt from history keeps it. */
  fanout: Schema.optionalWith(FanoutSpec, { exact: true }),
  /** The mission whose graph a mission's run drives: a run rebuilt from history keeps it. */
  mission: Schema.optionalWith(MissionRef, { exact: true }),
  /** The project the run belongs to: a run rebuilt from history keeps it. */
  project: Schema.optionalWith(Schema.String, { exact: true })
})
export const Iteration = event("iteration", {
  iteration: Schema.Int,
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean),
  summary: Schema.String
})
export const Heartbeat = event("heartbeat", {
  iteration: Schema.Int,
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean)
})
export const ToolCall = event("tool_call", { iteration: Schema.Int, ...ToolCallRecord.fields })
export const CriteriaSatisfied = event("criteria_satisfied", {
  iteration: Schema.Int,
  newly_met: Schema.Array(Schema.Struct({ index: Schema.Int, criterion: Schema.String })),
  criteria_met: Schema.Array(Schema.Boolean)
})
/** The judge answered something that is not a verdict on every criterion: criteria stay as they were. */
export const JudgeInvalid = event("judge_invalid", { iteration: Schema.Int, error: Schema.String })
/** The critic's verdict on an iteration; `ended_run` when it was confident every criterion is met. */
export const CriticReviewed = event("critic", {
  iteration: Schema.Int,
  ok: Schema.Literal(true),
  ...Critique.fields,
  ended_run: Schema.Boolean
})
/** The critic call failed or answered garbage: recorded, and the iteration goes on without it. */
export const CriticFailed = event("critic", { iteration: Schema.Int, ok: Schema.Literal(false), error: Schema.String })
export const BudgetExceeded = event("budget_exceeded", { axis: Axis, reason: Schema.String, usage: BudgetUsage })
export const CheckpointQuarantined = event("checkpoint_quarantined", {
  quarantine_id: Schema.Int,
  error: Schema.String,
  recovered_from: Schema.String,
  /** Iterations whose steps did not decode either, moved to quarantine too. */
  quarantined_steps: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] })
})
export const ModelUnpriced = event("model_unpriced", { model: Schema.String })
export const ModelRetry = event("model_retry", { iteration: Schema.Int, attempt: Schema.Int, error: Schema.String })
export const HaltRequested = event("halt_requested", { reason: Schema.String })
export const Result = event("result", {
  status: RunStatus,
  halt_reason: Schema.NullOr(Schema.String),
  iterations: Schema.Int,
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean),
  output: Schema.String,
  /**
   * The model calls of an iteration the end cut short (a call that kept failing after others answered, a
   * halt's grace run out): charged to `usage`, in no step. With them every dollar of a run is itemized.
   */
  unfinished_calls: Schema.optionalWith(Schema.Array(ModelCall), { exact: true })
})

/** A fan-out session starts its children; `finished` ended in an earlier session and do not run again. */
export const FanoutStarted = event("fanout_started", {
  template: Schema.String,
  max_parallel: Schema.Int,
  children: Schema.Array(Schema.Struct({ index: Schema.Int, run_id: Schema.String, item: Schema.String })),
  finished: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] })
})
/** A child of a fan-out ended; `usage` is the child's own (`run_id` is the fan-out's, as in every event). */
export const FanoutChild = event("fanout_child", {
  index: Schema.Int,
  child_run_id: Schema.String,
  status: RunStatus,
  halt_reason: Schema.NullOr(Schema.String),
  usage: BudgetUsage
})
/**
 * A new version of an artifact, stored with its iteration; its content is kept with the run, not in the
 * event. `artifact_kind`, since `kind` is the event's own.
 */
export const Artifact = event("artifact", {
  iteration: Schema.Int,
  name: Schema.String,
  version: Schema.Int,
  artifact_kind: ArtifactKind,
  language: Schema.optionalWith(Schema.String, { exact: true }),
  path: Schema.optionalWith(Schema.String, { exact: true }),
  bytes: Schema.Int,
  truncated: Schema.Boolean
})
/** A mission's node was re-run to heal a failure: which node, its attempt, the class, what changed, how it ended. */
export const Healing = event("healing", { ...Attempt.fields, outcome: Outcome })

/**
 * A node attempt of a mission's graph starts as its own child run (`child_run_id`): attempt 1 is its first
 * run; a healing attempt carries the class it heals and its adjustment, so a resume re-applies it.
 */
export const NodeStarted = event("node_started", {
  node: Schema.String,
  attempt: Schema.Int,
  child_run_id: Schema.String,
  healing: Schema.optionalWith(Schema.Struct({ class: FailureClass, adjustment: Adjustment }), { exact: true })
})
/**
 * A node attempt ended, or a node was skipped (attempt 0, no child run): `reason` says why it failed or
 * was skipped; `telemetry` is the attempt's, summed over its model calls.
 */
export const NodeEnded = event("node_ended", {
  node: Schema.String,
  attempt: Schema.Int,
  child_run_id: Schema.NullOr(Schema.String),
  status: NodeStatus,
  reason: Schema.NullOr(Schema.String),
  telemetry: Schema.NullOr(NodeTelemetry)
})

/** A mission's circuit breaker opened on a provider: its calls go to the fallback for the rest of the mission. */
export const BreakerOpened = event("breaker_opened", { provider: Schema.String })

export const AutopilotEvent = Schema.Union(
  RunStarted,
  Iteration,
  Heartbeat,
  ToolCall,
  CriteriaSatisfied,
  JudgeInvalid,
  BudgetExceeded,
  CriticReviewed,
  CriticFailed,
  CheckpointQuarantined,
  ModelUnpriced,
  ModelRetry,
  HaltRequested,
  Result,
  FanoutStarted,
  FanoutChild,
  Artifact,
  Healing,
  NodeStarted,
  NodeEnded,
  BreakerOpened
)
export type AutopilotEvent = typeof AutopilotEvent.Type
export type EventKind = AutopilotEvent["kind"]
export const AutopilotEventJson = Schema.parseJson(AutopilotEvent)

/** The fields a producer supplies; the event log adds run_id, at, seq and remaining. */
export type EventBody<E extends AutopilotEvent = AutopilotEvent> = E extends AutopilotEvent
  ? Omit<E, "run_id" | "at" | "seq" | "remaining">
  : never
