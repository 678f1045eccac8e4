import { Schema } from "effect"
import { Blueprint } from "../domain/Blueprint.js"
import { FiringRecord } from "../domain/Firing.js"
import { Adjustment, FailureClass, HealingPolicy, Outcome, policyOf } from "../domain/Healing.js"
import { MissionRecord, SlotValues, summaryJson, Transition } from "../domain/MissionRecord.js"
import { NodeTelemetry } from "../domain/MissionRun.js"
import { MissionStatus } from "../domain/MissionState.js"
import { RunStatus } from "../domain/RunStatus.js"
import { CatchUp } from "../domain/Schedule.js"
import { ChatMessage } from "../llm/Llm.js"
import type * as StepResults from "./StepResults.js"

/** A mission as `missions show --format json` and `GET /missions/{id}` give it: one shape for both. */

export interface ShowView {
  readonly steps: boolean
  readonly messages: boolean
}

export const transitionJson = (t: Transition) => ({ seq: t.seq, at: t.at, from: t.from, to: t.to, actor: t.actor, reason: t.reason })

const encodeBlueprint = Schema.encodeSync(Blueprint)
const encodePolicy = Schema.encodeSync(HealingPolicy)

const attemptJson = (a: StepResults.StepResult, messages: boolean) => {
  const { messages: conversation, ...rest } = a
  return messages ? { ...rest, messages: conversation } : rest
}

/** `schedule` is a scheduled mission's schedule, next and latest firings as `Schedules.json` gives them. */
export const showJson = (
  m: MissionRecord,
  transitions: ReadonlyArray<Transition>,
  steps: StepResults.MissionSteps,
  view: ShowView,
  schedule: object
) => ({
  ...summaryJson(m),
  preview: m.preview,
  transitions: transitions.map(transitionJson),
  blueprint: encodeBlueprint(m.blueprint),
  policy: encodePolicy(policyOf(m.blueprint)),
  ...schedule,
  run: steps.run,
  healed: { nodes: steps.healed, cost: steps.healing_cost },
  ...(view.steps ? { steps: steps.nodes.map((n) => ({ ...n, attempts: n.attempts.map((a) => attemptJson(a, view.messages)) })) } : {})
})

// ---------------------------------------------------------------------------------------------------------
// The same shape read back (a server's `GET /missions/{id}`), into what `missions show` prints.

const HealingStep = Schema.Struct({ class: FailureClass, adjustment: Adjustment, outcome: Schema.NullOr(Outcome) })

const Attempt = Schema.Struct({
  node: Schema.String,
  attempt: Schema.Number,
  run_id: Schema.String,
  status: Schema.Literal("succeeded", "failed", "running", "unfinished"),
  reason: Schema.NullOr(Schema.String),
  output: Schema.String,
  /** Only with `messages`. */
  messages: Schema.optionalWith(Schema.Array(ChatMessage), { default: () => [] }),
  telemetry: NodeTelemetry,
  healing: Schema.optionalWith(HealingStep, { exact: true })
})

const NodeStepsJson = Schema.Struct({
  node: Schema.String,
  status: Schema.Literal("succeeded", "failed", "skipped", "running", "unfinished", "not_run"),
  reason: Schema.NullOr(Schema.String),
  attempts: Schema.Array(Attempt)
})

const HealedNodeJson = Schema.Struct({
  node: Schema.String,
  attempts: Schema.Number,
  healing: Schema.Array(Schema.Struct({ attempt: Schema.Number, ...HealingStep.fields })),
  outcome: Schema.Literal("healed", "failed", "pending")
})

const RunSummaryJson = Schema.Struct({
  run_id: Schema.String,
  status: Schema.Union(RunStatus, Schema.Literal("corrupt")),
  interrupted: Schema.Boolean,
  halt_reason: Schema.NullOr(Schema.String),
  cost_usd: Schema.Number
})

/** `showJson`'s output, as far as its text needs it. */
export const ShowJson = Schema.Struct({
  mission_id: Schema.String,
  project_id: Schema.String,
  goal: Schema.String,
  status: MissionStatus,
  slots: SlotValues,
  missing_slots: Schema.Array(Schema.String),
  created_at: Schema.String,
  updated_at: Schema.String,
  preview: Schema.String,
  blueprint: Blueprint,
  transitions: Schema.Array(Transition.pipe(Schema.omit("mission_id"))),
  schedule: Schema.NullOr(Schema.Struct({ time_zone: Schema.String, catch_up: CatchUp, armed_at: Schema.NullOr(Schema.String) })),
  firings: Schema.Array(FiringRecord.pipe(Schema.omit("mission_id"))),
  run: Schema.NullOr(RunSummaryJson),
  healed: Schema.Struct({ nodes: Schema.Array(HealedNodeJson), cost: NodeTelemetry }),
  steps: Schema.optionalWith(Schema.Array(NodeStepsJson), { default: () => [] })
})

/**
 * The mission, its history, its run's steps and its latest firings as `showJson` was made from them: what
 * `missions show` and `approve` print, whether the mission was read here or asked of a server.
 */
export const fromShowJson = (json: typeof ShowJson.Type) => {
  const { schedule } = json
  const mission = new MissionRecord({
    mission_id: json.mission_id,
    project_id: json.project_id,
    goal: json.goal,
    blueprint: json.blueprint,
    slots: json.slots,
    missing_slots: json.missing_slots,
    status: json.status,
    preview: json.preview,
    created_at: json.created_at,
    updated_at: json.updated_at,
    // A schedule's view says when it was armed only while it is: any other time, `armed_at` is not shown.
    ...(schedule === null ? {} : { schedule: { time_zone: schedule.time_zone, catch_up: schedule.catch_up, armed_at: schedule.armed_at ?? json.updated_at } })
  })
  const steps: StepResults.MissionSteps = { run: json.run, nodes: json.steps, healed: json.healed.nodes, healing_cost: json.healed.cost }
  return {
    mission,
    transitions: json.transitions.map((t) => new Transition({ mission_id: json.mission_id, ...t })),
    steps,
    firings: json.firings.map((f) => new FiringRecord({ mission_id: json.mission_id, ...f }))
  }
}
