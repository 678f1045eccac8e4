import { Schema } from "effect"

const Confidence = Schema.Number.pipe(Schema.between(0, 1))

/**
 * How a run's critic reviews it: its verdict overrules the judge's when its confidence is at least
 * `threshold`, and at most `max_suggestions` of its suggestions are kept. Recorded with the run, so a
 * resume keeps it.
 */
export const CriticSettings = Schema.Struct({
  threshold: Confidence,
  max_suggestions: Schema.Int.pipe(Schema.nonNegative())
})
export type CriticSettings = typeof CriticSettings.Type

export const defaultSettings: CriticSettings = { threshold: 0.75, max_suggestions: 3 }

/** What the critic model answers; a reply that is not this is garbage, recorded and skipped. */
export const CriticVerdict = Schema.Struct({
  criteria_met: Schema.Array(Schema.Boolean),
  confidence: Confidence,
  suggestions: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  reasoning: Schema.optionalWith(Schema.String, { default: () => "" })
})
export type CriticVerdict = typeof CriticVerdict.Type

/** A verdict as its step keeps it, weighed against the threshold: `confident` when it overruled the judge. */
export const Critique = Schema.Struct({
  criteria_met: Schema.Array(Schema.Boolean),
  confidence: Confidence,
  suggestions: Schema.Array(Schema.String),
  reasoning: Schema.String,
  confident: Schema.Boolean
})
export type Critique = typeof Critique.Type
