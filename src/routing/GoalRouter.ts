import { Context, Effect, Layer } from "effect"
import { type Blueprint, describeProblems } from "../domain/Blueprint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { BlueprintService, type RemoteStatus, type ServiceTier } from "./BlueprintService.js"
import { Blueprints } from "./Blueprints.js"
import * as Calibration from "./Calibration.js"
import * as LocalIndex from "./LocalIndex.js"
import { goalTerms } from "./Terms.js"

/** A blueprint the router considers for a goal, with the probability that it is the right one. */
export interface Candidate {
  readonly blueprint: Blueprint
  /** Calibrated, 0–1: of the goals scored s, about a share s are for this blueprint. */
  readonly score: number
  readonly source: "local" | "remote"
}

export interface RankOptions {
  /** How many candidates at most: 5 unless given, 1 to 50. */
  readonly k?: number | undefined
  readonly tier: ServiceTier
}

export interface Ranking {
  /** Highest score first; equal scores by blueprint id. */
  readonly candidates: ReadonlyArray<Candidate>
  /** What became of the remote service (see `RemoteStatus`): a caller can say it routed offline. */
  readonly remote: RemoteStatus
  /** Remote candidates dropped because they were not valid blueprints. */
  readonly dropped: number
  /** Why the remote service was not used, or why its candidates were dropped; null when all went well. */
  readonly note: string | null
}

export class GoalRouter extends Context.Tag("autopilot/GoalRouter")<
  GoalRouter,
  {
    readonly rank: (goal: string, options: RankOptions) => Effect.Effect<Ranking, BadInput | PersistenceError>
    /** The calibration fitted to this catalog when the router was built. */
    readonly fitted: Calibration.Fitted
  }
>() {}

export const defaultK = 5
export const maxK = 50
/** A goal is a sentence or a paragraph; text longer than this is a document, not a goal. */
export const maxGoalLength = 4000
/** Phrasings the calibration is fitted on at most, so that a big catalog still loads quickly. */
export const maxPhrasings = 300

/** Why `goal` cannot be routed, or undefined when it can. */
export const goalProblem = (goal: string): string | undefined =>
  goal.trim() === ""
    ? "the goal is empty; say what you want done, e.g. \"review pull request 42 for security bugs\""
    : goal.length > maxGoalLength
    ? `the goal has ${goal.length} characters, more than the ${maxGoalLength} a goal may have; put long material in a slot or a file`
    : undefined

const byScoreThenId = (a: Candidate, b: Candidate) =>
  b.score - a.score || (a.blueprint.id < b.blueprint.id ? -1 : a.blueprint.id > b.blueprint.id ? 1 : 0)

/**
 * Local and remote candidates as one list: by blueprint id, the higher score wins (the local one on a
 * tie), then the best `k`.
 */
export const merge = (local: ReadonlyArray<Candidate>, remote: ReadonlyArray<Candidate>, k: number): ReadonlyArray<Candidate> => {
  const byId = new Map<string, Candidate>()
  for (const candidate of [...local, ...remote]) {
    const seen = byId.get(candidate.blueprint.id)
    if (seen === undefined || candidate.score > seen.score) byId.set(candidate.blueprint.id, candidate)
  }
  return [...byId.values()].sort(byScoreThenId).slice(0, k)
}

/**
 * A router over `blueprints`: the index is built and the calibration fitted once, here; ranking a goal is
 * then a search and a few multiplications.
 */
export const makeLocal = (blueprints: ReadonlyArray<Blueprint>) => {
  const index = LocalIndex.make(blueprints)
  const fitted = Calibration.calibrate(index, blueprints, maxPhrasings)
  const rank = (goal: string, k: number): ReadonlyArray<Candidate> => {
    // More than k by BM25, since calibration may reorder the few just below the cut.
    const matches = index.match(goalTerms(goal), Math.max(2 * k, 10))
    return matches
      .map((match): Candidate => ({
        blueprint: match.blueprint,
        score: Calibration.probability(fitted.calibration, match.features),
        source: "local"
      }))
      .sort(byScoreThenId)
      .slice(0, k)
  }
  return { fitted, rank }
}

export const make = Effect.gen(function*() {
  const catalog = yield* Blueprints
  const service = yield* BlueprintService
  const local = makeLocal(catalog.all.map((entry) => entry.blueprint))
  const catalogById = new Map(catalog.all.map((entry) => [entry.blueprint.id, entry.blueprint]))

  const rank = (goal: string, options: RankOptions) =>
    Effect.gen(function*() {
      const problem = goalProblem(goal)
      if (problem !== undefined) return yield* new BadInput({ message: problem })
      const k = options.k ?? defaultK
      if (!Number.isInteger(k) || k < 1 || k > maxK) {
        return yield* new BadInput({ message: `the number of candidates must be a whole number from 1 to ${maxK}, got ${k}` })
      }
      const remote = yield* service.retrieve(goal, { k, tier: options.tier })
      // A remote candidate never stands in for a blueprint of this catalog (the service's score counts, the
      // catalog's blueprint is used), and one of its own is vetted like a user file before it may be routed to.
      const refused: Array<string> = []
      const remoteCandidates = remote.candidates.flatMap((c): ReadonlyArray<Candidate> => {
        const own = catalogById.get(c.blueprint.id)
        if (own !== undefined) return [{ blueprint: own, score: c.score, source: "remote" }]
        const found = catalog.problemsOf(c.blueprint)
        if (found.length === 0) return [{ ...c, source: "remote" }]
        refused.push(`${c.blueprint.id}: ${describeProblems(found)}`)
        return []
      })
      const vetted = refused.length === 0 ? null : `dropped ${refused.length} of the blueprint service's candidates: ${refused.join("; ")}`
      return {
        candidates: merge(local.rank(goal, k), remoteCandidates, k),
        remote: remote.remote,
        dropped: remote.dropped + refused.length,
        note: [remote.note, vetted].filter((n) => n !== null).join("; ") || null
      } satisfies Ranking
    })

  return GoalRouter.of({ rank, fitted: local.fitted })
})

/** Built from the catalog when the layer is built (index and calibration), with the remote service beside it. */
export const layer: Layer.Layer<GoalRouter, never, Blueprints | BlueprintService> = Layer.effect(GoalRouter, make)
