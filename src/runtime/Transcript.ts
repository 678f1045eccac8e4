import type { Goal } from "../domain/Goal.js"
import type { Step } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import type { Specialist } from "../specialists/Specialist.js"
import { actMessages, judgeMessages, turnOf } from "./Prompts.js"

/**
 * The messages of one step: the act conversation with its turn (the answer with its tool calls, then one
 * tool message per call with its output, whole), and the prompt the judge was given.
 */
export interface StepMessages {
  readonly iteration: number
  readonly act: ReadonlyArray<ChatMessage>
  readonly judge: ReadonlyArray<ChatMessage>
}

/**
 * Every message a step exchanged, rebuilt from the run's history rather than stored with it: a prompt
 * quotes up to a window of earlier steps, so storing prompts would multiply the history several times
 * over, while each is a pure function of the goal, the specialist and the steps before it. `steps` must be every step
 * up to the last one wanted, in order (`StepStore.recent(id, -1)`).
 */
export const messagesOf = (
  goal: Goal,
  steps: ReadonlyArray<Step>,
  specialist?: Specialist,
  /** `placeIds`: a step recorded before call ids were kept shows its calls too (`Prompts.turnOf`). */
  options: { readonly placeIds?: boolean } = {}
): ReadonlyArray<StepMessages> =>
  steps.map((step, index) => {
    const earlier = steps.slice(0, index)
    const criteriaMet = earlier.at(-1)?.criteria_met ?? goal.success_criteria.map(() => false)
    const history = step.history_window === 0 ? [] : earlier.slice(-step.history_window)
    return {
      iteration: step.iteration,
      act: [
        ...actMessages({ goal, iteration: step.iteration, criteriaMet, history, suggestions: earlier.at(-1)?.critic?.suggestions, specialist }),
        ...turnOf(step, { placeIds: options.placeIds })
      ],
      judge: judgeMessages({
        goal,
        criteriaMet,
        answer: step.answer,
        toolResults: step.tool_calls.map((call) => `${call.name}: ${call.output}`)
      })
    }
  })
