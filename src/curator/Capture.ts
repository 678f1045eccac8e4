import type { Checkpoint } from "../domain/Checkpoint.js"
import type { RunStatus } from "../domain/RunStatus.js"
import type { Step } from "../domain/Step.js"
import type { ChatMessage, ToolSpec } from "../llm/Llm.js"
import { messagesOf } from "../runtime/Transcript.js"
import { allows } from "../specialists/Specialist.js"
import { hashOf } from "./Fingerprint.js"
import type { FunctionTool, SampleSource, TrainingSample } from "./Sample.js"
import { scrub, scrubArguments } from "./Scrub.js"

/**
 * Which units of work are training samples, and what each holds, as pure functions of what the stores
 * record: a run's checkpoint (goal, specialist) and its steps. Nothing is stored per prompt; the act
 * conversation is rebuilt exactly as it was sent, by the builder the prompts use (`Transcript.messagesOf`,
 * `Prompts.turnOf`), then scrubbed.
 */

/** Where a run's samples come from beyond the run itself. */
export interface Origin {
  readonly source: SampleSource
  /** The plain run's status, or for a node the mission run's. */
  readonly run_status: RunStatus
  readonly captured_at: string
  readonly mission?: {
    readonly mission_id: string
    readonly mission_run_id: string
    readonly node: string
    readonly blueprint?: string | undefined
    readonly blueprint_version?: number | undefined
    readonly tags?: ReadonlyArray<string> | undefined
    /** The blueprint's curation asks for at least this critic confidence. */
    readonly min_confidence?: number | undefined
  } | undefined
}

/**
 * Accepted: the judge, or a critic confident enough to overrule it, verified a criterion in this iteration
 * that was not verified before it. An iteration that verified nothing new did no work worth learning.
 */
export const accepted = (steps: ReadonlyArray<Step>, index: number, criteria: number): boolean => {
  const before = index === 0 ? Array.from({ length: criteria }, () => false) : steps[index - 1]!.criteria_met
  return steps[index]!.criteria_met.some((met, i) => met && before[i] !== true)
}

/** The tools the run's act calls offered: the toolkit's, as its specialist's allow-list has them. */
export const offeredTools = (specs: ReadonlyArray<ToolSpec>, checkpoint: Checkpoint): ReadonlyArray<FunctionTool> =>
  specs
    .filter((spec) => checkpoint.specialist === undefined || allows(checkpoint.specialist, spec.name))
    .map((spec) => ({
      type: "function",
      function: { name: spec.name, description: spec.description, parameters: { ...spec.parameters } }
    }))

/** About what a message takes in a line: its text, its calls' names and arguments, and the JSON around them. */
const charsOf = (m: ChatMessage) =>
  m.content.length + 30 + (m.tool_calls?.reduce((n, c) => n + c.id.length + c.function.name.length + c.function.arguments.length + 60, 0) ?? 0)

const scrubbed = (m: ChatMessage): ChatMessage => ({
  ...m,
  content: scrub(m.content),
  ...(m.tool_calls === undefined
    ? {}
    : { tool_calls: m.tool_calls.map((c) => ({ ...c, function: { ...c.function, arguments: scrubArguments(c.function.arguments) } })) })
})

/**
 * The samples of a run's accepted iterations. `steps` must be every step of the run, in order, as
 * `StepStore.recent(id, -1)` reads them: each prompt is rebuilt from the steps before it.
 */
export const samplesOf = (
  checkpoint: Checkpoint,
  steps: ReadonlyArray<Step>,
  specs: ReadonlyArray<ToolSpec>,
  origin: Origin
): ReadonlyArray<TrainingSample> => {
  const criteria = checkpoint.goal.success_criteria.length
  const wanted = steps.flatMap((step, index) => {
    if (!accepted(steps, index, criteria)) return []
    const confidence = step.critic?.confidence
    const floor = origin.mission?.min_confidence
    return floor !== undefined && (confidence === undefined || confidence < floor) ? [] : [index]
  })
  if (wanted.length === 0) return []
  // Calls of a step recorded before ids were kept get ids from their place: the turn is still learned whole.
  const transcript = messagesOf(checkpoint.goal, steps.slice(0, wanted.at(-1)! + 1), checkpoint.specialist, { placeIds: true })
  const tools = offeredTools(specs, checkpoint)
  // A line is its messages' text plus the tools' JSON and some punctuation: counted, not serialized again.
  const toolChars = tools.length === 0 ? 0 : JSON.stringify(tools).length
  const mission = origin.mission
  return wanted.map((index): TrainingSample => {
    const step = steps[index]!
    const messages = transcript[index]!.act.map(scrubbed)
    const act = step.calls.find((call) => call.purpose === "act")
    const specialist = checkpoint.specialist
    return {
      messages,
      tools,
      metadata: {
        source: origin.source,
        run_id: checkpoint.run_id,
        iteration: step.iteration,
        run_status: origin.run_status,
        ...(mission === undefined ? {} : {
          mission_id: mission.mission_id,
          mission_run_id: mission.mission_run_id,
          node: mission.node,
          ...(mission.blueprint === undefined ? {} : { blueprint: mission.blueprint }),
          ...(mission.blueprint_version === undefined ? {} : { blueprint_version: mission.blueprint_version }),
          ...(mission.tags === undefined || mission.tags.length === 0 ? {} : { tags: mission.tags })
        }),
        ...(specialist === undefined ? {} : { specialist: specialist.id, tier: specialist.model_tier }),
        model: act?.model_used ?? step.model,
        cost_usd: act?.cost_usd ?? 0,
        latency_ms: act?.latency_ms ?? 0,
        ...(step.critic === undefined ? {} : { critic_confidence: step.critic.confidence }),
        tokens: Math.ceil((toolChars + messages.reduce((n, m) => n + charsOf(m), 0)) / 4),
        hash: hashOf(messages),
        captured_at: origin.captured_at
      }
    }
  })
}
