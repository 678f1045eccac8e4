import { Hash } from "effect"
import { PCGRandom } from "effect/Utils"
import type { Blueprint } from "../domain/Blueprint.js"
import type { Features, LocalIndex } from "./LocalIndex.js"
import { goalTerms } from "./Terms.js"

/**
 * Turns a match's features into the probability that it is the blueprint the goal is for: a logistic
 * function of the features (Platt scaling over more than one input), fitted on the catalog itself.
 *
 * The training data is leave-one-out over the catalog's own example goals. Each phrasing is ranked
 * twice: against the catalog with that phrasing removed from its blueprint (a new wording of a goal the
 * catalog serves: the top match is right or wrong), and against the catalog without its blueprint at
 * all (a goal the catalog does not serve: whatever comes first is wrong). The second kind is what keeps
 * a goal no blueprint fits from scoring high merely because some words matched.
 *
 * Example goals are whole sentences, but people also type "research" or "do some analysis". So each
 * phrasing is also cut down to one, two or three of its terms, drawn by a generator seeded from the
 * blueprint's id and the phrasing's place, and ranked the same two ways: the fit sees how often a terse
 * goal's first match is the blueprint it was cut from, instead of extrapolating from sentences.
 */

export interface Calibration {
  readonly bias: number
  readonly coverage: number
  readonly margin: number
  readonly evidence: number
  /** The weight of margin × evidence: a lead over the runner-up says more when many words back it. */
  readonly backing: number
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

const vector = (c: Calibration) => [c.bias, c.coverage, c.margin, c.evidence, c.backing]
const inputs = (f: Features) => [1, f.coverage, f.margin, f.evidence, f.margin * f.evidence]
const dot = (x: ReadonlyArray<number>, w: ReadonlyArray<number>) => x.reduce((sum, xi, i) => sum + xi * w[i]!, 0)

/** The calibrated score of a match, 0–1. */
export const probability = (c: Calibration, f: Features): number => sigmoid(dot(inputs(f), vector(c)))

/**
 * Where a fit starts, and what it is pulled toward when the catalog has few examples: a score that rises
 * with coverage, margin and evidence, and is a coin toss for a match covering half the goal, level with
 * the runner-up, with two rare words matched. Small on purpose: a catalog of a dozen blueprints
 * outweighs it.
 */
export const prior: Calibration = { bias: -5, coverage: 6, margin: 4, evidence: 1, backing: 0 }

/** How strongly a fit is pulled toward `prior`: a weight decay of this much per parameter. */
const strength = 1

/** A cut-down phrasing keeps at most this many terms, and always fewer than the phrasing has. */
const terseMax = 3

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

/**
 * What a phrasing is ranked as: its terms, and, when it has two or more, a terse version of it: one to
 * three of its terms (fewer than it has), drawn without replacement, in their order. Seeded by the
 * blueprint's id and the phrasing's place, so the same catalog always gives the same samples and one
 * blueprint's change leaves the others' alone. One terse version per phrasing keeps whole and terse goals
 * equally weighted in the fit, and its cost at most twice the sentences' alone.
 */
export const queriesOf = (blueprint: Blueprint, index: number): ReadonlyArray<ReadonlyArray<string>> => {
  const terms = goalTerms(blueprint.example_goals[index]!)
  if (terms.length < 2) return terms.length === 0 ? [] : [terms]
  const random = new PCGRandom(Hash.string(`${blueprint.id}#${index}`))
  const size = 1 + random.integer(Math.min(terseMax, terms.length - 1))
  const order = [...terms.keys()]
  for (let i = 0; i < size; i++) {
    const j = i + random.integer(order.length - i)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return [terms, order.slice(0, size).sort((a, b) => a - b).map((i) => terms[i]!)]
}

/** The leave-one-out samples described above, from at most `max` phrasings and their terse versions. */
export const samplesOf = (
  index: LocalIndex,
  blueprints: ReadonlyArray<Blueprint>,
  max: number
): { readonly samples: ReadonlyArray<Sample>; readonly phrasings: number } => {
  const samples: Array<Sample> = []
  const chosen = phrasingsOf(blueprints, max)
  for (const { blueprint, index: i } of chosen) {
    const [first, ...others] = blueprint.example_goals.filter((_, j) => j !== i)
    const rest: Blueprint = { ...blueprint, example_goals: [first!, ...others] }
    for (const terms of queriesOf(blueprint, i)) {
      const served = index.match(terms, 2, { id: blueprint.id, replacement: rest })
      for (const match of served) samples.push({ features: match.features, positive: match.blueprint.id === blueprint.id })
      const unserved = index.match(terms, 1, { id: blueprint.id, replacement: null })
      for (const match of unserved) samples.push({ features: match.features, positive: false })
    }
  }
  return { samples, phrasings: chosen.length }
}

/** Solves the n×n system `a x = b` by Gaussian elimination with partial pivoting. */
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
 * plus a Gaussian pull toward `prior`. Each step is halved until the objective falls: a full Newton step
 * from a start where most scores are saturated overshoots. Convex, so it converges to one answer, the
 * same on every machine.
 */
export const fit = (samples: ReadonlyArray<Sample>): Calibration => {
  const positives = samples.filter((s) => s.positive).length
  const negatives = samples.length - positives
  const high = (positives + 1) / (positives + 2)
  const low = 1 / (negatives + 2)
  const w0 = vector(prior)
  const n = w0.length
  // Inputs row by row in one flat array: the loops below run over every sample a few dozen times.
  const xs = new Float64Array(samples.length * n)
  samples.forEach((s, k) => xs.set(inputs(s.features), k * n))
  const targets = Float64Array.from(samples, (s) => (s.positive ? high : low))
  const logitOf = (k: number, w: ReadonlyArray<number>) => {
    let z = 0
    for (let i = 0; i < n; i++) z += xs[k * n + i]! * w[i]!
    return z
  }
  /** The penalized cross-entropy, written with log1p(exp) so that saturated scores stay finite. */
  const objective = (w: ReadonlyArray<number>) => {
    let sum = 0
    for (let k = 0; k < targets.length; k++) {
      const z = logitOf(k, w)
      sum += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - targets[k]! * z
    }
    for (let i = 0; i < n; i++) sum += (strength / 2) * (w[i]! - w0[i]!) ** 2
    return sum
  }
  let w = [...w0]
  let current = objective(w)
  for (let iteration = 0; iteration < 100; iteration++) {
    const gradient = w.map((wi, i) => strength * (wi - w0[i]!))
    const hessian = w.map((_, i) => w.map((__, j) => (i === j ? strength : 0)))
    for (let k = 0; k < targets.length; k++) {
      const p = sigmoid(logitOf(k, w))
      const residual = p - targets[k]!
      const curvature = p * (1 - p)
      for (let i = 0; i < n; i++) {
        const xi = xs[k * n + i]!
        gradient[i]! += residual * xi
        for (let j = 0; j <= i; j++) hessian[i]![j]! += curvature * xi * xs[k * n + j]!
      }
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) hessian[i]![j] = hessian[j]![i]!
    const step = solve(hessian, gradient)
    if (step.every((s) => Math.abs(s) < 1e-9)) break
    let t = 1
    let next = w.map((wi, i) => wi - step[i]!)
    let value = objective(next)
    while (value > current && t > 1e-6) {
      t /= 2
      next = w.map((wi, i) => wi - t * step[i]!)
      value = objective(next)
    }
    w = next
    current = value
  }
  return { bias: w[0]!, coverage: w[1]!, margin: w[2]!, evidence: w[3]!, backing: w[4]! }
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
