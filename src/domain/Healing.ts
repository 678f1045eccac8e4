import { Schema } from "effect"

/**
 * How a mission heals a node that failed: the failure classes it tells apart, the adjustments it may
 * retry with, and the policy (per blueprint, `defaultPolicy` when the blueprint has none) that says, per
 * class, which adjustments to try in which order and how many attempts a node and a mission may make.
 * Data only: `missions/Healing.ts` decides, the mission driver applies.
 */

/**
 * What a node attempt failed with. `transient`: the provider failed in a way worth retrying (a 5xx, a
 * dropped connection), after the runtime's own retries of the call; `rate_limit`: a 429 or a Retry-After;
 * `timeout`: the call or the node took too long; `schema_violation`: the answer did not match the node's
 * output Schema; `empty_answer`: nothing, or a refusal; `cost_spike`: the node spent more than
 * `cost_spike_factor` times its estimate; `tool_error_loop`: the node's last tool calls all failed.
 */
export const FailureClasses = [
  "transient",
  "rate_limit",
  "timeout",
  "schema_violation",
  "empty_answer",
  "cost_spike",
  "tool_error_loop"
] as const
export const FailureClass = Schema.Literal(...FailureClasses)
export type FailureClass = typeof FailureClass.Type

export const AdjustmentKinds = [
  "backoff",
  "lower_temperature",
  "stricter_output",
  "trim_context",
  "fallback_model",
  "fallback_provider"
] as const
export const AdjustmentKind = Schema.Literal(...AdjustmentKinds)
export type AdjustmentKind = typeof AdjustmentKind.Type

const Temperature = Schema.Number.pipe(Schema.between(0, 2, { message: () => "must be a temperature from 0 to 2" }))
const Fraction = Schema.Number.pipe(Schema.filter((n) => n > 0 && n < 1, { message: () => "must be a fraction above 0 and below 1" }))
const kind = <K extends AdjustmentKind>(k: K) => Schema.Literal(k)

/** A re-run that the other adjustments leave as it was; nothing to add. */
const FallbackModel = Schema.Struct({ kind: kind("fallback_model") })
const FallbackProvider = Schema.Struct({ kind: kind("fallback_provider") })

/**
 * One rung of a ladder, as a policy holds it. `lower_temperature` re-runs at `temperature`;
 * `trim_context` keeps that fraction (`keep`) of the node's context, the newest part; `fallback_model`
 * is another model of the node's tier; `fallback_provider` another provider (Layer configuration).
 */
export const Rung = Schema.Union(
  Schema.Struct({ kind: kind("backoff") }),
  Schema.Struct({ kind: kind("lower_temperature"), temperature: Schema.optionalWith(Temperature, { default: () => 0 }) }),
  Schema.Struct({ kind: kind("stricter_output") }),
  Schema.Struct({ kind: kind("trim_context"), keep: Schema.optionalWith(Fraction, { default: () => 0.5 }) }),
  FallbackModel,
  FallbackProvider
)
export type Rung = typeof Rung.Type

/**
 * What one healing attempt changes, decided from a rung and the failure: `backoff` waits `delay_ms`
 * before the re-run; `stricter_output` adds an instruction quoting `validation_error` (what was wrong
 * with the last answer, word for word).
 */
export const Adjustment = Schema.Union(
  Schema.Struct({ kind: kind("backoff"), delay_ms: Schema.NonNegativeInt }),
  Schema.Struct({ kind: kind("lower_temperature"), temperature: Temperature }),
  Schema.Struct({ kind: kind("stricter_output"), validation_error: Schema.String }),
  Schema.Struct({ kind: kind("trim_context"), keep: Fraction }),
  // The model chosen, once the driver has chosen it: recorded, so the node keeps it and a resume replays it.
  Schema.Struct({ kind: kind("fallback_model"), model: Schema.optionalWith(Schema.String, { exact: true }) }),
  FallbackProvider
)
export type Adjustment = typeof Adjustment.Type

const ladder = (...rungs: ReadonlyArray<Rung>) => Schema.optionalWith(Schema.Array(Rung), { default: () => rungs })

/**
 * Per class, the adjustments to try, in order: a node's nth failure of a class is retried with the
 * class's nth rung, and once the ladder is spent the node gives up (a rung to repeat is listed twice).
 * An empty ladder never retries that class. Why the defaults are what they are:
 */
export const Ladders = Schema.Struct({
  /**
   * The runtime already retried the call with backoff, so first wait longer (twice: a provider's bad
   * minute usually passes), then suspect the model's deployment, then the provider.
   */
  transient: ladder({ kind: "backoff" }, { kind: "backoff" }, { kind: "fallback_model" }, { kind: "fallback_provider" }),
  /** Waiting (at least the Retry-After) is what a 429 asks; limits are often per model, then per account. */
  rate_limit: ladder({ kind: "backoff" }, { kind: "fallback_model" }, { kind: "fallback_provider" }),
  /**
   * The same request would take as long again: send less, then try a faster model of the tier, then
   * another provider.
   */
  timeout: ladder({ kind: "trim_context", keep: 0.5 }, { kind: "fallback_model" }, { kind: "fallback_provider" }),
  /**
   * Telling the model exactly what was wrong fixes most malformed answers; a cooler sample drifts less
   * from the format; a model that still cannot follow it is replaced by another of its tier.
   */
  schema_violation: ladder({ kind: "stricter_output" }, { kind: "lower_temperature", temperature: 0 }, { kind: "fallback_model" }),
  /** Ask again, saying an empty answer or a refusal is not one; then another model, another provider. */
  empty_answer: ladder({ kind: "stricter_output" }, { kind: "fallback_model" }, { kind: "fallback_provider" }),
  /**
   * Money already went: one re-run with half the context (the usual cause is a context that grew), and
   * no more, since every further try spends again.
   */
  cost_spike: ladder({ kind: "trim_context", keep: 0.5 }),
  /**
   * A model that keeps calling failing tools keeps reading its own failures: drop them from the context,
   * then try another model; no backoff, since the tools, not the provider, failed.
   */
  tool_error_loop: ladder({ kind: "trim_context", keep: 0.5 }, { kind: "fallback_model" })
})
export type Ladders = typeof Ladders.Type

const Count = (max: number) =>
  Schema.Int.pipe(Schema.between(0, max, { message: () => `must be a whole number from 0 to ${max}` }))

/**
 * When a provider is circuit-broken for the rest of the mission: after `failures` failures of the
 * `classes` that are the provider's doing (not the answer's), and calls move to the fallback provider.
 */
export const Breaker = Schema.Struct({
  failures: Schema.optionalWith(
    Schema.Int.pipe(Schema.between(1, 1000, { message: () => "must be a whole number from 1 to 1000" })),
    { default: () => 3 }
  ),
  classes: Schema.optionalWith(Schema.Array(FailureClass), { default: () => ["transient", "rate_limit", "timeout"] })
})
export type Breaker = typeof Breaker.Type

/** A healing policy; every field has a default, so `{}` is the default policy and a blueprint sets what it changes. */
export const HealingPolicy = Schema.Struct({
  ladders: Schema.optionalWith(Ladders, { default: () => Schema.decodeSync(Ladders)({}) }),
  /** Healing attempts (re-runs) of one node; its first run is not one. */
  max_attempts_per_node: Schema.optionalWith(Count(100), { default: () => 4 }),
  /** Healing attempts of every node of the mission together. */
  max_attempts_per_mission: Schema.optionalWith(Count(1000), { default: () => 12 }),
  /** k: a node whose spend is above k times its estimate has a cost spike. */
  cost_spike_factor: Schema.optionalWith(
    Schema.Number.pipe(Schema.filter((n) => n > 1 && n <= 1000, { message: () => "must be a number above 1 and at most 1000" })),
    { default: () => 3 }
  ),
  /** A node whose last this-many tool calls all failed is in a tool error loop. */
  tool_error_loop_after: Schema.optionalWith(
    Schema.Int.pipe(Schema.between(2, 100, { message: () => "must be a whole number from 2 to 100" })),
    { default: () => 3 }
  ),
  breaker: Schema.optionalWith(Breaker, { default: () => Schema.decodeSync(Breaker)({}) })
})
export type HealingPolicy = typeof HealingPolicy.Type

/** What a mission heals by when its blueprint names no policy. */
export const defaultPolicy: HealingPolicy = Schema.decodeSync(HealingPolicy)({})

/** The policy a blueprint's missions heal by. */
export const policyOf = (blueprint: { readonly healing?: HealingPolicy | undefined }): HealingPolicy =>
  blueprint.healing ?? defaultPolicy

/** One healing attempt of a mission, as its `healing` event records it (without the outcome). */
export const Attempt = Schema.Struct({
  node: Schema.String,
  /** 1 for the node's first healing attempt, 2 for its second… */
  attempt: Schema.Int,
  class: FailureClass,
  adjustment: Adjustment
})
export type Attempt = typeof Attempt.Type

/** How a healing attempt ended: the node succeeded, or failed again (and healing decides anew). */
export const Outcome = Schema.Literal("healed", "failed")
export type Outcome = typeof Outcome.Type

const quoted = (text: string) => {
  const line = text.replace(/\s+/g, " ").trim()
  return JSON.stringify(line.length <= 80 ? line : `${line.slice(0, 79)}…`)
}

/** An adjustment in a few words, for event lines. */
export const describeAdjustment = (adjustment: Adjustment): string => {
  switch (adjustment.kind) {
    case "backoff":
      return `backoff ${adjustment.delay_ms} ms`
    case "lower_temperature":
      return `temperature ${adjustment.temperature}`
    case "stricter_output":
      return `stricter output instruction quoting ${quoted(adjustment.validation_error)}`
    case "trim_context":
      return `context trimmed to ${Math.round(adjustment.keep * 100)}%`
    case "fallback_model":
      return adjustment.model === undefined ? "fallback model of the same tier" : `fallback model ${adjustment.model} of the same tier`
    case "fallback_provider":
      return "fallback provider"
  }
}

const rungText = (rung: Rung): string =>
  rung.kind === "lower_temperature"
    ? `temperature ${rung.temperature}`
    : rung.kind === "trim_context"
    ? `trim to ${Math.round(rung.keep * 100)}%`
    : rung.kind.replace(/_/g, " ")

/** The policy in one line: limits, then each class's ladder (`schema_violation: stricter output → …`). */
export const describePolicy = (policy: HealingPolicy): string =>
  `${policy.max_attempts_per_node} attempts per node, ${policy.max_attempts_per_mission} per mission; ` +
  `cost spike above ${policy.cost_spike_factor}× the estimate; provider broken after ${policy.breaker.failures} failures; ` +
  FailureClasses.map((c) => `${c}: ${policy.ladders[c].length === 0 ? "no retry" : policy.ladders[c].map(rungText).join(" → ")}`).join("; ")
