import { Context, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { type CriticSettings, CriticSettings as Settings, CriticVerdict, type Critique, defaultSettings } from "../domain/Critic.js"
import { BadInput, type LlmError, type PersistenceError } from "../domain/Errors.js"
import type { EventBody } from "../domain/Event.js"
import type { Goal } from "../domain/Goal.js"
import type { ModelCall } from "../domain/Step.js"
import type { ChatMessage, LlmResponse } from "../llm/Llm.js"
import type { ModelRequest } from "./ModelCalls.js"
import { checklist, clip, unfenced } from "./Prompts.js"

/** The work of one iteration, as the critic reviews it. */
export interface Work {
  readonly goal: Goal
  /** Verified before this iteration. */
  readonly criteriaMet: ReadonlyArray<boolean>
  readonly answer: string
  readonly toolResults: ReadonlyArray<string>
}

/** The run's own model calls: retried, priced, charged to the run and kept in its step telemetry. */
export type Call = (request: ModelRequest) => Effect.Effect<{ readonly response: LlmResponse; readonly call: ModelCall }, LlmError | PersistenceError>

/** A review: the critic's verdict, or why there is none; and the calls it made, for the step's telemetry. */
export interface Reviewed {
  readonly verdict: Either.Either<CriticVerdict, string>
  readonly calls: ReadonlyArray<ModelCall>
}

/**
 * A strict reviewer that checks each iteration's work after the judge. A mission uses it when this
 * service is provided, or when the run it resumes was started with one; without it, only the judge decides.
 */
export class Critic extends Context.Tag("autopilot/Critic")<
  Critic,
  {
    readonly settings: CriticSettings
    /** Never fails for the model's sake: a call that keeps failing or a garbage reply is a `Left`. */
    readonly review: (work: Work, call: Call) => Effect.Effect<Reviewed, PersistenceError>
  }
>() {}

export const messages = (work: Work, maxSuggestions: number): ReadonlyArray<ChatMessage> => [
  {
    role: "system",
    content: "You are a strict reviewer. An agent did the work below toward an objective; check it yourself, " +
      "sceptically, against each success criterion. A criterion is met only if the work itself shows it, " +
      "complete and correct; a claim without evidence is not enough. Reply with JSON only: " +
      `{"criteria_met": [one boolean per criterion, in order], "confidence": how sure you are of this verdict, from 0 to 1, ` +
      (maxSuggestions > 0
        ? `"suggestions": [at most ${maxSuggestions} short, concrete improvements for the next iteration], `
        : `"suggestions": [], `) +
      `"reasoning": "one or two sentences"}`
  },
  {
    role: "user",
    content: [
      `Objective: ${work.goal.objective}`,
      "",
      "Criteria ([x] = verified earlier):",
      checklist(work.goal, work.criteriaMet),
      "",
      "Latest work:",
      clip(work.answer, 6000),
      ...work.toolResults.map((r) => `Tool result: ${clip(r, 1000)}`)
    ].join("\n")
  }
]

const decodeVerdict = Schema.decodeUnknownEither(Schema.parseJson(CriticVerdict))

const countMismatch = (verdict: CriticVerdict, criteria: number) => `critic reported ${verdict.criteria_met.length} criteria, expected ${criteria}`

/**
 * Reads the critic's JSON, tolerating a markdown fence around it. Suggestions past `maxSuggestions` are
 * dropped, and blank ones with them; anything that is not a verdict on every criterion is a `Left`.
 */
export const parse = (reply: string, criteria: number, maxSuggestions: number): Either.Either<CriticVerdict, string> =>
  decodeVerdict(unfenced(reply)).pipe(
    Either.mapLeft(() =>
      `critic reply is not a JSON verdict with criteria_met, a confidence from 0 to 1, suggestions and reasoning: ${
        clip(reply.replace(/\s+/g, " "), 120)
      }`
    ),
    Either.filterOrLeft((v) => v.criteria_met.length === criteria, (v) => countMismatch(v, criteria)),
    Either.map((v) => ({ ...v, suggestions: v.suggestions.map((s) => s.trim()).filter((s) => s !== "").slice(0, maxSuggestions) }))
  )

/** The critic of the given settings: one model call of purpose `critic` per iteration. */
export const make = (settings: CriticSettings): Critic["Type"] => ({
  settings,
  review: (work, call) =>
    call({ purpose: "critic", messages: messages(work, settings.max_suggestions), tools: [] }).pipe(
      Effect.map(({ call, response }): Reviewed => ({
        verdict: parse(response.content, work.goal.success_criteria.length, settings.max_suggestions),
        calls: [call]
      })),
      // Whatever the model did, the critic only advises: the run goes on with the judge's verdict.
      Effect.catchTag("LlmError", (error) => Effect.succeed<Reviewed>({ verdict: Either.left(`critic call failed: ${error.message}`), calls: [] }))
    )
})

/** What a library caller or the CLI asks for; what it leaves out is the run's own, else the defaults. */
export interface Options {
  /** Confidence from 0 to 1 at which the critic's verdict overrules the judge's (default 0.75). */
  readonly threshold?: number | undefined
  /** How many suggestions the next iteration is given (default 3). */
  readonly maxSuggestions?: number | undefined
}

const decodeSettings = Schema.decodeUnknown(Settings)

/** Checked settings: a threshold outside 0–1 or a bad count is a one-line BadInput. */
export const settingsOf = (options: Options, base: CriticSettings = defaultSettings): Effect.Effect<CriticSettings, BadInput> =>
  decodeSettings({
    threshold: options.threshold ?? base.threshold,
    max_suggestions: options.maxSuggestions ?? base.max_suggestions
  }).pipe(
    Effect.mapError((e) =>
      new BadInput({
        message: `critic ${
          ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.join(".")} ${i.message}`).join("; ")
        } (threshold: a number from 0 to 1; max_suggestions: a whole number, 0 or more)`
      })
    )
  )

/** A critic for a mission: `Effect.provide(Critic.layer({ threshold: 0.8 }))`. */
export const layer = (options: Options = {}): Layer.Layer<Critic, BadInput> => Layer.effect(Critic, Effect.map(settingsOf(options), make))

/** What one review decides for its iteration: its event, its record on the step, and its weight. */
export interface Weighed {
  readonly event: EventBody
  /** Absent when the critic gave no verdict. */
  readonly critique?: Critique
  /** The criteria the critic vouches for, when it is confident enough to overrule the judge. */
  readonly overrules?: ReadonlyArray<boolean>
  /** The run's halt_reason, when the critic is confident every criterion is met: the run ends now. */
  readonly ends?: string
}

/**
 * Weighs a review against the threshold it was made under. A verdict that does not cover exactly the
 * run's criteria (a critic of the caller's own may give one) is no verdict: it could end a run on nothing.
 */
export const weigh = (
  iteration: number,
  criteria: number,
  review: { readonly threshold: number; readonly verdict: Either.Either<CriticVerdict, string> }
): Weighed =>
  Either.match(Either.filterOrLeft(review.verdict, (v) => v.criteria_met.length === criteria, (v) => countMismatch(v, criteria)), {
    onLeft: (error): Weighed => ({ event: { kind: "critic", iteration, ok: false, error } }),
    onRight: (verdict): Weighed => {
      const confident = verdict.confidence >= review.threshold
      const ended = confident && verdict.criteria_met.every(Boolean)
      const critique: Critique = { ...verdict, confident }
      return {
        event: { kind: "critic", iteration, ok: true, ...critique, ended_run: ended },
        critique,
        ...(confident ? { overrules: verdict.criteria_met } : {}),
        ...(ended ? { ends: `critic confident every criterion is met (confidence ${verdict.confidence} ≥ ${review.threshold})` } : {})
      }
    }
  })
