import { Schema } from "effect"
import { Blueprint } from "../domain/Blueprint.js"
import { HealingPolicy, policyOf } from "../domain/Healing.js"
import { type MissionRecord, summaryJson, type Transition } from "../domain/MissionRecord.js"
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
