import { Either, Schema } from "effect"
import type { Goal } from "../domain/Goal.js"
import { type Step, type ToolCallRecord, Verdict } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import type { Specialist } from "../specialists/Specialist.js"

/** Long answers and tool outputs are cut, quoted or replayed, so the prompt stays bounded. */
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

/** A tool call's arguments as the wire carries them: JSON text. */
export const argumentsText = (value: unknown): string => JSON.stringify(value) ?? "{}"

/**
 * Whether a step's tool calls can be sent as real tool turns: each kept the id its tool message answers
 * (steps recorded before ids were kept did not, and are quoted instead).
 */
export const hasCallIds = (step: Step): boolean => step.tool_calls.every((call) => call.id !== undefined)

/** A call's id as the step recorded it, or, for a step recorded before ids were kept, one made from its place. */
export const callIdOf = (call: ToolCallRecord, iteration: number, index: number): string =>
  call.id !== undefined && call.id !== "" ? call.id : `call_${iteration}_${index + 1}`

/**
 * Arguments replayed into a later prompt, bounded like the outputs: over `max` characters they become one
 * JSON string, their start and how much was cut, so the wire still carries JSON text.
 */
export const clipArguments = (text: string, max: number): string => (text.length <= max ? text : JSON.stringify(clip(text, max)))

export interface TurnOptions {
  /** Clip the answer, each output and each call's arguments, as a replay into a later prompt does. */
  readonly limits?: { readonly answer: number; readonly output: number; readonly arguments: number } | undefined
  /** Give calls recorded without an id one made from their place (`callIdOf`) instead of leaving them out. */
  readonly placeIds?: boolean | undefined
}

/**
 * A step's act turn as real messages: the answer as an assistant turn with the tool calls it made (id,
 * name, JSON arguments), then one `tool` message per call with its output, in the order the calls were
 * made. A step without call ids is its answer alone, unless `placeIds`. The one builder of a turn: the
 * prompts replay it, the transcript shows it and the curator learns from it.
 */
export const turnOf = (step: Step, options: TurnOptions = {}): ReadonlyArray<ChatMessage> => {
  const calls = options.placeIds === true || hasCallIds(step)
    ? step.tool_calls.map((call, i) => ({ ...call, id: callIdOf(call, step.iteration, i) }))
    : []
  const limits = options.limits
  const cut = (text: string, max: number | undefined) => (max === undefined ? text : clip(text, max))
  const answer: ChatMessage = {
    role: "assistant",
    content: cut(step.answer, limits?.answer),
    ...(calls.length === 0 ? {} : {
      tool_calls: calls.map((call) => {
        const args = argumentsText(call.arguments)
        return {
          id: call.id,
          type: "function" as const,
          function: { name: call.name, arguments: limits === undefined ? args : clipArguments(args, limits.arguments) }
        }
      })
    })
  }
  return [answer, ...calls.map((call): ChatMessage => ({ role: "tool", tool_call_id: call.id, content: cut(call.output, limits?.output) }))]
}

/** How much of the latest step a prompt replays: its answer, each tool output and each call's arguments, clipped so the prompt stays bounded. */
export const replayLimits = { answer: 6000, output: 2000, arguments: 2000 } as const

const criteriaText = (options: ActOptions) =>
  `Objective: ${options.goal.objective}\n\nSuccess criteria ([x] = already verified):\n${checklist(options.goal, options.criteriaMet)}\n\n`

/**
 * Built with `+`, not `join`: V8 links long strings instead of copying them, so a long window costs a
 * link per step here, and its text is copied once, when the prompt is sent.
 */
const quoted = (label: string, steps: ReadonlyArray<Step>) => {
  let text = label
  for (const step of steps) text += `\n\n${describeStep(step)}`
  return text
}

const closing = (options: ActOptions) => {
  const suggestions = options.suggestions ?? []
  const reviewer = suggestions.length > 0
    ? `\n\nA reviewer of the latest iteration suggests:\n${suggestions.map((s) => `- ${clip(s, 300)}`).join("\n")}`
    : ""
  return `${reviewer}\n\nThis is iteration ${options.iteration}. Continue.`
}

/** Every earlier iteration quoted in one user message: the first iteration's prompt, and one after a step without call ids. */
const quotedPrompt = (options: ActOptions) =>
  criteriaText(options) + (options.history.length === 0 ? "No earlier iterations." : quoted("Recent iterations:", options.history)) +
  closing(options)

/** Before the replayed latest step: the objective, the criteria and the older iterations, quoted. */
const contextPrompt = (options: ActOptions, older: ReadonlyArray<Step>, latest: Step) =>
  criteriaText(options) + (older.length === 0 ? "" : `${quoted("Earlier iterations:", older)}\n\n`) +
  `Your latest iteration (iteration ${latest.iteration}) follows: your answer` +
  (latest.tool_calls.length === 0 ? "." : " and the results of the tools you called.")

/** After it: what the judge said of it, the reviewer's suggestions, and the new iteration. */
const nextPrompt = (options: ActOptions, latest: Step) => `Judge on iteration ${latest.iteration}: ${clip(latest.verdict, 300)}${closing(options)}`

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

/**
 * The act conversation: the system prompt, then, when the latest earlier step kept its call ids, the
 * older ones quoted in a user message, the latest replayed as real turns (its answer with its tool calls
 * and one tool message per call, clipped to `replayLimits`), and a user message asking for this
 * iteration; otherwise every earlier step quoted in one user message.
 */
export const actMessages = (options: ActOptions): ReadonlyArray<ChatMessage> => {
  const system: ChatMessage = {
    role: "system",
    content: options.specialist === undefined ? agentPrompt : `${specialistBrief(options.specialist)}\n\n${agentPrompt}`
  }
  const latest = options.history.at(-1)
  if (latest === undefined || !hasCallIds(latest)) return [system, { role: "user", content: quotedPrompt(options) }]
  return [
    system,
    { role: "user", content: contextPrompt(options, options.history.slice(0, -1), latest) },
    ...turnOf(latest, { limits: replayLimits }),
    { role: "user", content: nextPrompt(options, latest) }
  ]
}

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
