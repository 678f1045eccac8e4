import { Schema } from "effect"

/**
 * What routing a goal comes to, in the seed's shapes: a draft mission made from the best blueprint, a
 * choice for a person to make, or a goal no blueprint serves well enough.
 */

/** A blueprint the router considered, as the seed's API carries it: the blueprint whole, as JSON text. */
export const Candidate = Schema.Struct({
  blueprint_id: Schema.String,
  score: Schema.Number,
  blueprint_json: Schema.String
})
export type Candidate = typeof Candidate.Type

/** A value the goal gave that its slot refused: not in the mission, so the slot is missing until given. */
export const InvalidSlot = Schema.Struct({ slot: Schema.String, message: Schema.String })

/** A draft mission was made; it runs once approved (`missing_slots` must be given first). */
export const AutoRouted = Schema.Struct({
  kind: Schema.Literal("auto_routed"),
  mission_id: Schema.String,
  blueprint_id: Schema.String,
  score: Schema.Number,
  preview: Schema.String,
  slots: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  missing_slots: Schema.Array(Schema.String),
  /** Beyond the seed's shape, and only when there are some: what the goal offered that its slots refused. */
  invalid_slots: Schema.optionalWith(Schema.Array(InvalidSlot), { exact: true })
})

/** Several blueprints fit, none surely: `autopilot goal … --pick N` makes the mission from the Nth. */
export const PickerNeeded = Schema.Struct({
  kind: Schema.Literal("picker_needed"),
  candidates: Schema.Array(Candidate)
})

/** Nothing fits well enough: `autopilot goal … --synthesize` writes a blueprint for the goal. */
export const SynthesisNeeded = Schema.Struct({
  kind: Schema.Literal("synthesis_needed"),
  goal: Schema.String,
  candidates: Schema.Array(Candidate)
})

export const GoalOutcome = Schema.Union(AutoRouted, PickerNeeded, SynthesisNeeded)
export type GoalOutcome = typeof GoalOutcome.Type
