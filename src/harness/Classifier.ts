import { type HarnessConfig, type Tier, Tiers } from "./HarnessConfig.js"

/** The parts of a `/v1/chat/completions` body the classifier reads; a validated ChatRequest is one. */
export interface ClassifiableRequest {
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content?: unknown }>
  readonly tools?: ReadonlyArray<unknown> | null | undefined
  readonly max_tokens?: number | null | undefined
  readonly max_completion_tokens?: number | null | undefined
}

export interface Classification {
  readonly tier: Tier
  /** 0.5 on a threshold, 1 as far from one as the score's band allows. */
  readonly confidence: number
  /** 0..1, the weighted sum of the features below. */
  readonly score: number
  readonly reasons: ReadonlyArray<string>
}

/**
 * Each feature adds at most its weight, reached at its saturation point. The weights sum to 1.
 *
 * | feature                            | weight | full at                             |
 * | ---------------------------------- | ------ | ----------------------------------- |
 * | prompt tokens (text chars / 4)     | 0.30   | 8000 tokens, rising as √ of the way |
 * | turns (non-system messages) past 1 | 0.10   | 10 more turns                       |
 * | tools offered                      | 0.15   | 4 tools                             |
 * | code blocks (``` fences)           | 0.15   | 1 block                             |
 * | reasoning cues, last user message  | 0.20   | 2 distinct cues                     |
 * | requested output cap               | 0.10   | 8000 tokens                         |
 */
const weights = { prompt: 0.3, turns: 0.1, tools: 0.15, code: 0.15, reasoning: 0.2, output: 0.1 } as const

// Stems without a trailing word boundary, so text appended to a message never unmatches a cue.
const cues: ReadonlyArray<readonly [label: string, pattern: RegExp]> = [
  ["prove", /\bprov(?:e|ing)|\bproof/i],
  ["design", /\bdesign/i],
  ["architect", /\barchitect/i],
  ["analyse", /\banaly[sz]/i],
  ["refactor", /\brefactor/i],
  ["optimise", /\boptimi[sz]/i],
  ["debug", /\bdebug/i],
  ["think step by step", /\bstep[\s-]+by[\s-]+step/i],
  ["weigh trade-offs", /\btrade[\s-]?off/i]
]

const textsOf = (content: unknown): ReadonlyArray<string> =>
  typeof content === "string"
    ? [content]
    : Array.isArray(content)
    ? content.flatMap((part: unknown) =>
      typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? [part.text] : []
    )
    : []

const saturate = (value: number, full: number) => Math.min(1, Math.max(0, value) / full)

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`

const isConversation = (role: string) => role !== "system" && role !== "developer"

const features = (request: ClassifiableRequest) => {
  const texts = request.messages.flatMap((m) => textsOf(m.content))
  const tokens = Math.ceil(texts.reduce((n, t) => n + t.length, 0) / 4)
  const turns = request.messages.filter((m) => isConversation(m.role)).length
  const tools = request.tools?.length ?? 0
  const blocks = Math.ceil(texts.reduce((n, t) => n + t.split("```").length - 1, 0) / 2)
  const lastUser = [...request.messages].reverse().find((m) => m.role === "user")
  const asks = cues.filter(([, pattern]) => textsOf(lastUser?.content).some((t) => pattern.test(t))).map(([label]) => label)
  const output = request.max_completion_tokens ?? request.max_tokens ?? 0
  return [
    [weights.prompt * Math.sqrt(saturate(tokens, 8000)), `~${tokens} prompt tokens`],
    [weights.turns * saturate(turns - 1, 10), plural(turns, "turn")],
    [weights.tools * saturate(tools, 4), plural(tools, "tool")],
    [weights.code * saturate(blocks, 1), blocks === 1 ? "code" : `code (${blocks} blocks)`],
    [weights.reasoning * saturate(asks.length, 2), `asks to ${asks.join(", ")}`],
    [weights.output * saturate(output, 8000), `up to ${output} output tokens`]
  ] as const
}

const tierOf = (score: number, settings: HarnessConfig["classification"]): Tier =>
  score >= settings.complex_at ? "complex" : score >= settings.medium_at ? "medium" : "simple"

const confidenceOf = (score: number, tier: Tier, { complex_at, medium_at }: HarnessConfig["classification"]) => {
  // The farthest a score in this band can be from a threshold: its whole width at either end, half in the middle.
  const [distance, reach] = tier === "complex"
    ? [score - complex_at, 1 - complex_at]
    : tier === "medium"
    ? [Math.min(score - medium_at, complex_at - score), (complex_at - medium_at) / 2]
    : [medium_at - score, medium_at]
  return 0.5 + 0.5 * (reach > 0 ? Math.min(1, Math.max(0, distance / reach)) : 0)
}

export const classify = (
  request: ClassifiableRequest,
  settings: HarnessConfig["classification"]
): Classification => {
  const drivers = features(request).filter(([contribution]) => contribution > 0)
  const score = Math.min(1, drivers.reduce((sum, [contribution]) => sum + contribution, 0))
  const reasons = drivers.map(([, reason]) => reason)
  const tier = tierOf(score, settings)
  const confidence = confidenceOf(score, tier, settings)
  const up = Tiers[Tiers.indexOf(tier) + 1]
  return confidence < settings.escalate_below && up !== undefined
    ? {
      tier: up,
      confidence,
      score,
      reasons: [
        ...reasons,
        `escalated from ${tier} to ${up}: confidence ${confidence.toFixed(2)} is below ${settings.escalate_below}`
      ]
    }
    : { tier, confidence, score, reasons }
}
