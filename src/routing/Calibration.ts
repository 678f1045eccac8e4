import type { Blueprint } from "../domain/Blueprint.js"
import type { Features, LocalIndex } from "./LocalIndex.js"
import { distinctTerms } from "./Terms.js"

/**
 * Turns a match's features into the probability that it is the blueprint the goal is for: a logistic
 * function of the features (Platt scaling over more than one input), fitted on the catalog itself.
 *
 * The training data is leave-one-out over the catalog's own example goals. Each phrasing is ranked
 * twice: against the catalog with that phrasing removed from its blueprint (a new wording of a goal the
 * catalog serves: the top match is right or wrong), and against the catalog without its blueprint at
 * all (a goal the catalog does not serve: whatever comes first is wrong). The second kind is what keeps
 * a goal no blueprint fits from scoring high merely because some words matched.
 */

export interface Calibration {
  readonly bias: number
  readonly coverage: number
  readonly margin: number
}

export interface Sample {
  readonly features: Features
  readonly positive: boolean
}

/** What a fit was made from, for tests and the benchmark's report. */
export interface Fitted {
  readonly calibration: Calibration
  readonly samples: number
  readonly positives: number
  /** Phrasings used of those the catalog has (a big catalog is subsampled). */
  readonly phrasings: number
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z))

const logit = (c: Calibration, f: Features) => c.bias + c.coverage * f.coverage + c.margin * f.margin

/** The calibrated score of a match, 0–1. */
export const probability = (c: Calibration, f: Features): number => sigmoid(logit(c, f))

/**
 * Where a fit starts, and what it is pulled toward when the catalog has few examples: a score that rises
 * with coverage and margin and is a coin toss for a match covering half the goal just ahead of the rest.
 * Small on purpose: a catalog of a dozen blueprints outweighs it.
 */
export const prior: Calibration = { bias: -4, coverage: 6, margin: 4 }

/** How strongly a fit is pulled toward `prior`: a weight decay of this much per parameter. */
const strength = 1

/**
 * Every (blueprint, phrasing) pair, or at most `max` of them spread evenly over the catalog: a fit from a
 * few hundred phrasings is as good as one from all, and the cost of building a big catalog stays bounded.
 */
const phrasingsOf = (blueprints: ReadonlyArray<Blueprint>, max: number) => {
  const all: Array<{ blueprint: Blueprint; index: number }> = []
  for (const blueprint of blueprints) {
    if (blueprint.example_goals.length < 2) continue
    blueprint.example_goals.forEach((_, index) => all.push({ blueprint, index }))
  }
  if (all.length <= max) return all
  const step = all.length / max
  return Array.from({ length: max }, (_, i) => all[Math.floor(i * step)]!)
}

/** The leave-one-out samples described above, from at most `max` phrasings. */
export const samplesOf = (
  index: LocalIndex,
  blueprints: ReadonlyArray<Blueprint>,
  max: number
): { readonly samples: ReadonlyArray<Sample>; readonly phrasings: number } => {
  const samples: Array<Sample> = []
  const chosen = phrasingsOf(blueprints, max)
  for (const { blueprint, index: i } of chosen) {
    const terms = distinctTerms(blueprint.example_goals[i]!)
    if (terms.length === 0) continue
    const [first, ...others] = blueprint.example_goals.filter((_, j) => j !== i)
    const rest: Blueprint = { ...blueprint, example_goals: [first!, ...others] }
    const served = index.match(terms, 2, { id: blueprint.id, replacement: rest })
    for (const match of served) samples.push({ features: match.features, positive: match.blueprint.id === blueprint.id })
    const unserved = index.match(terms, 1, { id: blueprint.id, replacement: null })
    for (const match of unserved) samples.push({ features: match.features, positive: false })
  }
  return { samples, phrasings: chosen.length }
}

const vector = (c: Calibration) => [c.bias, c.coverage, c.margin]
const inputs = (f: Features) => [1, f.coverage, f.margin]

/** Solves the 3×3 system `a x = b` by Gaussian elimination with partial pivoting. */
const solve = (a: Array<Array<number>>, b: Array<number>): Array<number> => {
  const n = b.length
  const m = a.map((row, i) => [...row, b[i]!])
  for (let col = 0; col < n; col++) {
    let pivot = col
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r
    ;[m[col], m[pivot]] = [m[pivot]!, m[col]!]
    for (let r = col + 1; r < n; r++) {
      const factor = m[r]![col]! / m[col]![col]!
      for (let c = col; c <= n; c++) m[r]![c]! -= factor * m[col]![c]!
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let r = n - 1; r >= 0; r--) {
    let sum = m[r]![n]!
    for (let c = r + 1; c < n; c++) sum -= m[r]![c]! * x[c]!
    x[r] = sum / m[r]![r]!
  }
  return x
}

/**
 * The maximum a posteriori logistic fit: Newton's method on the cross-entropy against Platt's targets
 * (positives aim at (n₊+1)/(n₊+2), negatives at 1/(n₋+2), so a small catalog never claims certainty),
 * plus a Gaussian pull toward `prior`. Convex, so it converges to one answer, the same on every machine.
 */
export const fit = (samples: ReadonlyArray<Sample>): Calibration => {
  const positives = samples.filter((s) => s.positive).length
  const negatives = samples.length - positives
  const high = (positives + 1) / (positives + 2)
  const low = 1 / (negatives + 2)
  const w0 = vector(prior)
  let w = [...w0]
  for (let iteration = 0; iteration < 100; iteration++) {
    const gradient = w.map((wi, i) => strength * (wi - w0[i]!))
    const hessian = w.map((_, i) => w.map((__, j) => (i === j ? strength : 0)))
    for (const sample of samples) {
      const x = inputs(sample.features)
      const p = sigmoid(x.reduce((sum, xi, i) => sum + xi * w[i]!, 0))
      const target = sample.positive ? high : low
      for (let i = 0; i < 3; i++) {
        gradient[i]! += (p - target) * x[i]!
        for (let j = 0; j < 3; j++) hessian[i]![j]! += p * (1 - p) * x[i]! * x[j]!
      }
    }
    const step = solve(hessian, gradient)
    w = w.map((wi, i) => wi - step[i]!)
    if (step.every((s) => Math.abs(s) < 1e-9)) break
  }
  return { bias: w[0]!, coverage: w[1]!, margin: w[2]! }
}

/** Samples from at most `max` phrasings of the catalog in `index`, and the fit to them. */
export const calibrate = (index: LocalIndex, blueprints: ReadonlyArray<Blueprint>, max: number): Fitted => {
  const { phrasings, samples } = samplesOf(index, blueprints, max)
  return {
    calibration: fit(samples),
    samples: samples.length,
    positives: samples.filter((s) => s.positive).length,
    phrasings
  }
}
