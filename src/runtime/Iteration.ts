import { Effect, Either } from "effect"
import type { Budget } from "../budget/Budget.js"
import type { BudgetUsage } from "../domain/Budget.js"
import type { CriticVerdict } from "../domain/Critic.js"
import type { EventBody } from "../domain/Event.js"
import type { Goal } from "../domain/Goal.js"
import { type ModelCall, Step, type ToolCallRecord, type Verdict } from "../domain/Step.js"
import type { LlmResponse } from "../llm/Llm.js"
import type { Specialist } from "../specialists/Specialist.js"
import { restrict } from "../specialists/ToolAllowList.js"
import { Toolkit } from "../tools/Tool.js"
import * as Critic from "./Critic.js"
import type { Journal } from "./Journal.js"
import type { ModelCalls } from "./ModelCalls.js"
import { actMessages, judgeMessages, parseVerdict } from "./Prompts.js"

/** What a run has achieved so far, as the next iteration starts from it. */
export interface Progress {
  readonly criteria_met: ReadonlyArray<boolean>
  readonly output: string
  /** The latest steps, as many as the model sees. */
  readonly history: ReadonlyArray<Step>
  /** The critic's suggestions on the latest iteration: only those feed the next one. */
  readonly suggestions?: ReadonlyArray<string> | undefined
  /** Set when the critic ended the run, confident every criterion is met: the run's halt_reason. */
  readonly ended?: string | undefined
}

/** What one iteration produced before it is counted; an iteration cut short leaves nothing behind. */
export interface Attempt {
  readonly response: LlmResponse
  readonly toolCalls: ReadonlyArray<ToolCallRecord>
  readonly verdict: Either.Either<Verdict, string>
  readonly calls: ReadonlyArray<ModelCall>
  /** The critic's review, when the run has a critic, with the threshold it is weighed against. */
  readonly critic?: { readonly threshold: number; readonly verdict: Either.Either<CriticVerdict, string> } | undefined
}

/** The first line of prose in an answer, skipping markdown headings and fences. */
export const summaryOf = (text: string) => {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  const line = lines.find((l) => !l.startsWith("#") && !l.startsWith("```")) ?? lines[0] ?? ""
  return line.length > 120 ? `${line.slice(0, 117)}...` : line
}

/**
 * One iteration's work: act, run the tools it asked for, then judge the answer against the criteria,
 * and with a critic, have it review the same work.
 */
export const make = (options: {
  readonly goal: Goal
  readonly budget: Budget
  readonly journal: Journal
  readonly models: ModelCalls
  readonly critic?: Critic.Critic["Type"] | undefined
  readonly specialist?: Specialist | undefined
}) =>
  Effect.gen(function*() {
    const { budget, critic, goal, journal, models, specialist } = options
    const toolkit = restrict(yield* Toolkit, specialist)

    const runTools = (response: LlmResponse, iteration: number) =>
      Effect.forEach(response.tool_calls, (call) =>
        Effect.gen(function*() {
          // Every call gets a record, run or not, so the next prompt's tool message answers each call by its id.
          const asked = { id: call.id, name: call.name, arguments: call.arguments }
          // A call the budget has no room for is not run and not charged; the model is told why.
          const record: ToolCallRecord = (yield* budget.takeToolCall)
            ? { ...asked, ...(yield* toolkit.call(call.name, call.arguments)) }
            : { ...asked, ok: false, output: "not run: the tool-call budget is spent" }
          // Tool calls act on the world, so they are on record at once, even if the iteration is cut short.
          yield* journal.emitNow({ kind: "tool_call", iteration, ...record })
          return record
        }))

    const attempt = (iteration: number, progress: Progress) =>
      Effect.gen(function*() {
        const before = progress.criteria_met
        const { call: act, response } = yield* models.call({
          purpose: "act",
          messages: actMessages({ goal, iteration, criteriaMet: before, history: progress.history, suggestions: progress.suggestions, specialist }),
          tools: toolkit.specs
        }, iteration, { live: true })
        const toolCalls = yield* runTools(response, iteration)
        const work = { goal, criteriaMet: before, answer: response.content, toolResults: toolCalls.map((c) => `${c.name}: ${c.output}`) }
        const { call: judge, response: reply } = yield* models.call({ purpose: "judge", messages: judgeMessages(work), tools: [] }, iteration)
        const review = critic === undefined
          ? undefined
          : { threshold: critic.settings.threshold, ...(yield* critic.review(work, (request) => models.call(request, iteration))) }
        return {
          response,
          toolCalls,
          verdict: parseVerdict(reply.content, goal.success_criteria.length),
          calls: [act, judge, ...(review?.calls ?? [])],
          ...(review === undefined ? {} : { critic: review })
        } satisfies Attempt
      })

    return { attempt }
  })

/**
 * What a finished attempt leaves behind once counted: its step, the progress after it, and the events
 * that announce it. A criterion once verified stays verified: a judge sees one iteration, not the run.
 * A critic confident enough overrules the judge for this iteration.
 */
export const settle = (options: {
  readonly goal: Goal
  readonly iteration: number
  readonly at: string
  readonly usage: BudgetUsage
  readonly window: number
  readonly progress: Progress
  readonly attempt: Attempt
}): { readonly step: Step; readonly progress: Progress; readonly events: ReadonlyArray<EventBody> } => {
  const { attempt: { calls, response, toolCalls, verdict }, goal, iteration, usage } = options
  const before = options.progress.criteria_met
  const critic = options.attempt.critic === undefined ? undefined : Critic.weigh(iteration, before.length, options.attempt.critic)
  const vouched = critic?.overrules ?? Either.getOrUndefined(Either.map(verdict, (v) => v.criteria_met))
  const after = vouched === undefined ? before : before.map((met, i) => met || vouched[i] === true)
  const newlyMet = goal.success_criteria.flatMap((criterion, index) => (after[index] && !before[index] ? [{ index, criterion }] : []))
  const step = new Step({
    iteration,
    at: options.at,
    model: response.model,
    answer: response.content,
    tool_calls: toolCalls,
    verdict: Either.match(verdict, { onLeft: (e) => e, onRight: (v) => v.notes }),
    usage,
    criteria_met: after,
    calls,
    history_window: options.window,
    ...(critic?.critique === undefined ? {} : { critic: critic.critique })
  }, true)
  const events: Array<EventBody> = []
  if (Either.isLeft(verdict)) events.push({ kind: "judge_invalid", iteration, error: verdict.left })
  if (critic !== undefined) events.push(critic.event)
  if (newlyMet.length > 0) events.push({ kind: "criteria_satisfied", iteration, newly_met: newlyMet, criteria_met: after })
  events.push({
    kind: "iteration",
    iteration,
    usage,
    criteria_met: after,
    summary: `${summaryOf(response.content)}${toolCalls.length > 0 ? ` (${toolCalls.length} tool calls)` : ""}`
  })
  return {
    step,
    progress: {
      criteria_met: after,
      output: response.content,
      history: [...options.progress.history, step].slice(-options.window),
      suggestions: critic?.critique?.suggestions ?? [],
      ...(critic?.ends === undefined ? {} : { ended: critic.ends })
    },
    events
  }
}
