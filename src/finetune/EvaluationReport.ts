import { Schema } from "effect"

/**
 * What the evaluation of a finished fine-tune found: the dataset's held-out samples replayed on the new
 * model (the candidate) and on the one that takes the traffic now (the baseline), each answer scored by
 * the judge, side by side; and whether that earns it the traffic.
 */

/** One model's side of the report. Costs and latencies are per step: per replayed sample. */
export const ModelScore = Schema.Struct({
  model: Schema.String,
  samples: Schema.Int,
  passed: Schema.Int,
  pass_rate: Schema.Number,
  /** Null when the model has no price (the pricing table does not know it, and the provider said none). */
  cost_per_step_usd: Schema.NullOr(Schema.Number),
  latency_per_step_ms: Schema.Number,
  /** The replays that failed outright (the model could not be reached, or refused): each counts as not passed. */
  errors: Schema.Int,
  /** The first of those failures, said in the reason: an evaluation with failed replays proves nothing. */
  first_error: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
export type ModelScore = typeof ModelScore.Type

export const Verdict = Schema.Literal("promotable", "candidate")
export type Verdict = typeof Verdict.Type

export class EvaluationReport extends Schema.Class<EvaluationReport>("EvaluationReport")({
  id: Schema.String,
  job_id: Schema.String,
  dataset_id: Schema.String,
  /** The routing scope the dataset describes (`ModelRoute.scopeText`); null when it names none. */
  scope: Schema.NullOr(Schema.String),
  candidate: ModelScore,
  baseline: ModelScore,
  /**
   * The route the baseline was (null: the provider's default, `baseline.model` then what was asked of it): a
   * promotion needs the scope's traffic to be where it was measured, or the comparison is stale.
   */
  baseline_route: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** How many points (of 100) below the baseline's pass rate the candidate may be. */
  tolerance_points: Schema.Number,
  verdict: Verdict,
  /** One line: why it may take the traffic, or why it stays a candidate. */
  reason: Schema.String,
  /** What the evaluation itself spent: every replay and every judge call. */
  cost_usd: Schema.Number,
  evaluated_at: Schema.String
}) {}

export const defaultTolerancePoints = 2

const percent = (rate: number) => `${Math.round(rate * 1000) / 10}%`
const dollars = (usd: number) => `$${usd.toPrecision(3)}`

/**
 * The rule: promotable when the candidate passes at most `tolerance` points less often than the baseline
 * and costs less per step. A model without a price cannot show it is cheaper, and an empty split shows
 * nothing: both stay candidates, as does a dataset that names no scope to route.
 */
export const verdictOf = (
  scores: { readonly candidate: ModelScore; readonly baseline: ModelScore; readonly scope: string | null },
  tolerancePoints: number
): { readonly verdict: Verdict; readonly reason: string } => {
  const { baseline, candidate, scope } = scores
  const stay = (reason: string) => ({ verdict: "candidate" as const, reason })
  if (candidate.samples === 0) return stay("the dataset's evaluation split is empty: nothing to compare on")
  // A replay that failed (an endpoint down past the retries) is no evidence either way: on the baseline's
  // side it would flatter the candidate, on the candidate's it would hide why it did badly.
  for (const side of [candidate, baseline]) {
    if (side.errors > 0) return stay(`${side.errors} of ${side.samples} replays on ${side.model} failed (${side.first_error ?? "no answer"}): evaluate it again once it answers`)
  }
  const floor = baseline.pass_rate - tolerancePoints / 100
  // A hair of float noise must not refuse a candidate exactly at the floor.
  if (candidate.pass_rate < floor - 1e-9) {
    return stay(`pass rate ${percent(candidate.pass_rate)} is more than ${tolerancePoints} points below the baseline's ${percent(baseline.pass_rate)}`)
  }
  if (candidate.cost_per_step_usd === null) return stay(`${candidate.model} has no price, so it cannot be shown to cost less`)
  if (baseline.cost_per_step_usd === null) return stay(`${baseline.model} has no price, so the candidate cannot be shown to cost less`)
  if (candidate.cost_per_step_usd >= baseline.cost_per_step_usd) {
    return stay(`it costs ${dollars(candidate.cost_per_step_usd)} a step, not less than the baseline's ${dollars(baseline.cost_per_step_usd)}`)
  }
  if (scope === null) return stay("its dataset names no blueprint, node or specialist, so there is no traffic to route to it")
  const saving = 1 - candidate.cost_per_step_usd / baseline.cost_per_step_usd
  return {
    verdict: "promotable",
    reason: `pass rate ${percent(candidate.pass_rate)} against ${percent(baseline.pass_rate)} (tolerance ${tolerancePoints} points), ${
      percent(saving)
    } cheaper a step (${dollars(candidate.cost_per_step_usd)} against ${dollars(baseline.cost_per_step_usd)})`
  }
}
