import { Either, Schema } from "effect"
import type { Goal } from "../domain/Goal.js"
import { type Step, Verdict } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import type { Specialist } from "../specialists/Specialist.js"

/** History is quoted, not replayed: long answers and tool outputs are cut so the prompt stays bounded. */
export const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`)

export const checklist = (goal: Goal, met: ReadonlyArray<boolean>) =>
  goal.success_criteria.map((c, i) => `${i + 1}. [${met[i] ? "x" : " "}] ${c}`).join("\n")

/** Steps never change, and each is quoted in every prompt its window spans: each is written out once. */
const described = new WeakMap<Step, string>()

const describeStep = (step: Step) => {
  const cached = described.get(step)
  if (cached !== undefined) return cached
  const text = [
    `### Iteration ${step.iteration}`,
    clip(step.answer, 1500),
    ...step.tool_calls.map((call) =>
      `Tool ${call.name}(${clip(JSON.stringify(call.arguments) ?? "", 200)}) ${call.ok ? "returned" : "failed"}: ${clip(call.output, 500)}`
    ),
    `Judge: ${clip(step.verdict, 300)}`
  ].join("\n")
  described.set(step, text)
  return text
}

interface ActOptions {
  readonly goal: Goal
  readonly iteration: number
  readonly criteriaMet: ReadonlyArray<boolean>
  readonly history: ReadonlyArray<Step>
  /** The critic's suggestions on the latest iteration, if a critic reviewed it. */
  readonly suggestions?: ReadonlyArray<string> | undefined
  /** The role the run runs as: its brief opens the system prompt. */
  readonly specialist?: Specialist | undefined
}

/**
 * Built with `+`, not `join`: V8 links long strings instead of copying them, so a long window costs a
 * link per step here, and its text is copied once, when the prompt is sent.
 */
const actPrompt = (options: ActOptions) => {
  let text = `Objective: ${options.goal.objective}\n\nSuccess criteria ([x] = already verified):\n${checklist(options.goal, options.criteriaMet)}\n\n`
  if (options.history.length === 0) text += "No earlier iterations."
  else {
    text += "Recent iterations:"
    for (const step of options.history) text += `\n\n${describeStep(step)}`
  }
  const suggestions = options.suggestions ?? []
  if (suggestions.length > 0) text += `\n\nA reviewer of the latest iteration suggests:\n${suggestions.map((s) => `- ${clip(s, 300)}`).join("\n")}`
  return `${text}\n\nThis is iteration ${options.iteration}. Continue.`
}

/** Who the model is in this run, how it works and which tools it has: the specialist's own words. */
export const specialistBrief = (s: Specialist): string =>
  [
    `You are the ${s.name}. ${s.role}`,
    `Your goal: ${s.goal}`,
    `Your background: ${s.background}`,
    `How you work:\n${s.instructions.map((line) => `- ${line}`).join("\n")}`,
    s.allowed_tools === "all"
      ? undefined
      : s.allowed_tools.length === 0
      ? "You have no tools in this role: work from the objective, the earlier iterations and what you know."
      : `Tools you may use in this role: ${s.allowed_tools.join(", ")}; no others.`
  ].filter((part) => part !== undefined).join("\n\n")

const agentPrompt = "You are an autonomous agent working toward an objective over many iterations. In each iteration, " +
  "make concrete progress on the criteria not yet met, call tools when they help, and answer in markdown. " +
  "A judge checks the criteria after every iteration."

export const actMessages = (options: ActOptions): ReadonlyArray<ChatMessage> => [
  {
    role: "system",
    content: options.specialist === undefined ? agentPrompt : `${specialistBrief(options.specialist)}\n\n${agentPrompt}`
  },
  { role: "user", content: actPrompt(options) }
]

export const judgeMessages = (options: {
  readonly goal: Goal
  readonly criteriaMet: ReadonlyArray<boolean>
  readonly answer: string
  readonly toolResults: ReadonlyArray<string>
}): ReadonlyArray<ChatMessage> => [
  {
    role: "system",
    content: "You are a strict judge. Decide which success criteria the work satisfies. Reply with JSON only: " +
      `{"criteria_met": [one boolean per criterion, in order], "notes": "one sentence"}`
  },
  {
    role: "user",
    content: [
      `Objective: ${options.goal.objective}`,
      "",
      "Criteria ([x] = verified earlier):",
      checklist(options.goal, options.criteriaMet),
      "",
      "Latest work:",
      clip(options.answer, 6000),
      ...options.toolResults.map((r) => `Tool result: ${clip(r, 1000)}`)
    ].join("\n")
  }
]

const decodeVerdict = Schema.decodeUnknownEither(Schema.parseJson(Verdict))

/** A model's JSON reply without the markdown fence it may have put around it. */
export const unfenced = (reply: string) => (/```(?:json)?\s*([\s\S]*?)```/.exec(reply)?.[1] ?? reply).trim()

/** Reads the judge's JSON, tolerating a markdown fence around it; anything else is not a verdict. */
export const parseVerdict = (reply: string, criteria: number): Either.Either<Verdict, string> => {
  const json = unfenced(reply)
  return decodeVerdict(json).pipe(
    Either.mapLeft(() => `judge reply is not a JSON verdict: ${clip(reply.replace(/\s+/g, " "), 120)}`),
    Either.filterOrLeft(
      (v) => v.criteria_met.length === criteria,
      (v) => `judge reported ${v.criteria_met.length} criteria, expected ${criteria}`
    )
  )
}
