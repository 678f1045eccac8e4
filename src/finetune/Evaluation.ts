import { Duration, Effect, Either, Option, Schema } from "effect"
import * as Pricing from "../budget/Pricing.js"
import type { LlmError } from "../domain/Errors.js"
import type { ChatMessage, Llm, LlmRequest, LlmResponse, ToolSpec } from "../llm/Llm.js"
import * as ModelCalls from "../runtime/ModelCalls.js"
import type { ModelScore } from "./EvaluationReport.js"

/**
 * Replaying a dataset's held-out samples on a model and judging each answer against the one that was
 * accepted: the evidence a fine-tune needs before it takes traffic. A sample is one line of the chat
 * fine-tuning JSONL the curator exports: its last assistant turn is the accepted answer, everything
 * before it is what the model is asked.
 */

const Line = Schema.parseJson(Schema.Struct({
  messages: Schema.Array(Schema.Struct({
    role: Schema.Literal("system", "user", "assistant", "tool"),
    content: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
    tool_calls: Schema.optionalWith(
      Schema.Array(Schema.Struct({ id: Schema.String, type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String, arguments: Schema.String }) })),
      { exact: true }
    ),
    tool_call_id: Schema.optionalWith(Schema.String, { exact: true })
  })),
  tools: Schema.optionalWith(
    Schema.Array(Schema.Struct({
      type: Schema.Literal("function"),
      function: Schema.Struct({ name: Schema.String, description: Schema.optional(Schema.String), parameters: Schema.optional(Schema.Object) })
    })),
    { default: () => [] }
  )
}))
const decodeLine = Schema.decodeUnknownEither(Line)

/** One held-out sample: what is asked, the tools offered, and the answer that was accepted. */
export interface Case {
  readonly prompt: ReadonlyArray<ChatMessage>
  readonly tools: ReadonlyArray<ToolSpec>
  readonly reference: ChatMessage
}

/** A line as a case, or why it is none (no assistant turn to compare with). */
export const caseOf = (line: string): Either.Either<Case, string> =>
  Either.flatMap(Either.mapLeft(decodeLine(line), () => "not a chat fine-tuning line"), (decoded) => {
    const messages: ReadonlyArray<ChatMessage> = decoded.messages.map((m) => ({
      role: m.role,
      content: m.content ?? "",
      ...(m.tool_calls === undefined ? {} : { tool_calls: m.tool_calls }),
      ...(m.tool_call_id === undefined ? {} : { tool_call_id: m.tool_call_id })
    }))
    const last = messages.map((m) => m.role).lastIndexOf("assistant")
    if (last <= 0) return Either.left("no assistant turn after a prompt")
    return Either.right({
      prompt: messages.slice(0, last),
      tools: decoded.tools.map((t) => ({ name: t.function.name, description: t.function.description ?? "", parameters: t.function.parameters ?? { type: "object" } })),
      reference: messages[last]!
    })
  })

/** How one model did on one case. */
export interface Outcome {
  readonly model: string
  readonly passed: boolean
  readonly cost_usd: number | null
  readonly latency_ms: number
  /** The replay's own failure, when the model could not answer. */
  readonly error?: string | undefined
  /** What the replay and its grading cost, whoever answered: the evaluation's own spend. */
  readonly spent_usd: number
}

const costOf = (response: LlmResponse): number | null =>
  response.cost_usd ?? Option.getOrNull(Option.map(Pricing.priceOf(response.model), (price) => Pricing.costOf(price, response.usage)))

const clip = (text: string, max: number) => (text.length <= max ? text : `…${text.slice(text.length - max)}`)

/** A turn as the judge reads it: its words, and its tool calls written out. */
const render = (m: ChatMessage): string =>
  [
    m.content,
    ...(m.tool_calls ?? []).map((c) => `call ${c.function.name}(${clip(c.function.arguments, 2_000)})`)
  ].filter((part) => part !== "").join("\n")

const answerOf = (response: LlmResponse): ChatMessage => ({
  role: "assistant",
  content: response.content,
  ...(response.tool_calls.length === 0 ? {} : {
    tool_calls: response.tool_calls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: JSON.stringify(c.arguments ?? {}) } }))
  })
})

export const graderPrompt =
  "You grade an AI assistant's answer against a reference answer that was accepted for the same conversation. " +
  "Pass it when it does the same work as well: the same tool calls with equivalent arguments, or content as correct and complete; " +
  "wording may differ. Reply with JSON only: {\"pass\": true or false, \"reason\": \"one sentence\"}."

const Grade = Schema.Struct({ pass: Schema.Boolean, reason: Schema.optional(Schema.String) })
const decodeGrade = Schema.decodeUnknownEither(Schema.parseJson(Grade))

/** The judge's verdict from its reply: the first JSON object in it; anything else is not a pass. */
export const gradeOf = (reply: string): Option.Option<boolean> => {
  const start = reply.indexOf("{")
  const end = reply.lastIndexOf("}")
  return start < 0 || end < start ? Option.none() : Option.map(Option.getRight(decodeGrade(reply.slice(start, end + 1))), (g) => g.pass)
}

/**
 * Replays `cases` on `model` (undefined: the provider's default, as the runtime calls it) through
 * `replayWith`, and has `judge` grade each answer against the accepted one, blind to which model gave it.
 * Transient failures are retried as the runtime retries them; a replay that still fails counts as not
 * passed, and a judge that cannot be reached fails the evaluation.
 */
export const replay = (options: {
  readonly cases: ReadonlyArray<Case>
  readonly model: string | undefined
  readonly replayWith: Llm["Type"]
  readonly judge: Llm["Type"]
  /** Names the evaluation in the calls' metadata (providers that record it can tell its calls apart). */
  readonly id: string
}): Effect.Effect<ReadonlyArray<Outcome>, LlmError> =>
  Effect.forEach(options.cases, (c, i) =>
    Effect.gen(function*() {
      const request: LlmRequest = {
        messages: c.prompt,
        tools: c.tools,
        purpose: "replay",
        model: options.model,
        metadata: { run_id: options.id, iteration: i + 1, criteria: 1 }
      }
      // Timed per attempt: a rate limit waited out is not the model's latency.
      const replayed = yield* Effect.either(patiently(Effect.timed(options.replayWith.complete(request))))
      if (Either.isLeft(replayed)) {
        return { model: options.model ?? "(default)", passed: false, cost_usd: null, latency_ms: 0, error: replayed.left.message, spent_usd: 0 } satisfies Outcome
      }
      const [took, response] = replayed.right
      const graded = yield* patiently(options.judge.complete({
        messages: [
          { role: "system", content: graderPrompt },
          {
            role: "user",
            content: [
              `Conversation (latest turns last):\n${clip(c.prompt.map((m) => `[${m.role}] ${render(m)}`).join("\n"), 8_000)}`,
              `Reference answer:\n${clip(render(c.reference), 4_000)}`,
              `Answer to grade:\n${clip(render(answerOf(response)), 4_000)}`
            ].join("\n\n")
          }
        ],
        tools: [],
        purpose: "grade",
        metadata: { run_id: options.id, iteration: i + 1, criteria: 1 }
      }))
      const cost = costOf(response)
      return {
        model: response.model,
        passed: Option.getOrElse(gradeOf(graded.content), () => false),
        cost_usd: cost,
        latency_ms: Duration.toMillis(took),
        spent_usd: (cost ?? 0) + (costOf(graded) ?? 0)
      } satisfies Outcome
    }), { concurrency })

/** Replays at once: enough to finish 50 samples in minutes on a real model, few enough not to trip a rate limit. */
const concurrency = 4

/** A rate limit or a blip is waited out as the runtime waits it out; only what stays failed counts. */
const patiently = <A>(call: Effect.Effect<A, LlmError>): Effect.Effect<A, LlmError> =>
  Effect.retry(call, { schedule: ModelCalls.retrySchedule, while: (error) => error.transient })

/** One model's outcomes summed up: pass rate, and cost and latency per step (null cost when any step has no price). */
export const scoreOf = (model: string, outcomes: ReadonlyArray<Outcome>): ModelScore => {
  const answered = outcomes.filter((o) => o.error === undefined)
  const n = outcomes.length
  const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)
  const priced = answered.every((o) => o.cost_usd !== null)
  return {
    model: answered[0]?.model ?? model,
    samples: n,
    passed: outcomes.filter((o) => o.passed).length,
    pass_rate: n === 0 ? 0 : outcomes.filter((o) => o.passed).length / n,
    cost_per_step_usd: answered.length === 0 || !priced ? null : mean(answered.map((o) => o.cost_usd!)),
    latency_per_step_ms: mean(answered.map((o) => o.latency_ms)),
    errors: n - answered.length,
    first_error: outcomes.find((o) => o.error !== undefined)?.error ?? null
  }
}
