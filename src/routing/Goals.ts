import { Context, Effect, Layer, Option } from "effect"
import type { AutopilotDisabled, ServiceTier } from "../domain/AutopilotSettings.js"
import { type Blueprint, toJson } from "../domain/Blueprint.js"
import { BadInput, type LlmError, type PersistenceError } from "../domain/Errors.js"
import type { Candidate as OutcomeCandidate, GoalOutcome } from "../domain/GoalOutcome.js"
import { checkProject } from "../domain/MissionRecord.js"
import { Missions } from "../missions/Missions.js"
import { Settings } from "../missions/Settings.js"
import { BlueprintService, type RemoteStatus } from "./BlueprintService.js"
import { ConfidenceConfig, gate } from "./Confidence.js"
import { type Candidate, goalProblem, GoalRouter } from "./GoalRouter.js"
import { Slots } from "./Slots.js"
import { Synthesis, type SynthesisFailed } from "./Synthesis.js"

/** A goal to route, for a project, on behalf of `actor` (`cli:alice`). */
export interface GoalRequest {
  readonly goal: string
  readonly project: string
  readonly actor: string
  /** Make the mission from the Nth (1-based) of the candidates routing this goal lists, whatever its score. */
  readonly pick?: number | undefined
  /** Write a new blueprint for the goal (remote service first, by tier; then the model) and route to it. */
  readonly synthesize?: boolean | undefined
}

/** What a goal came to, and what became of the remote service on the way (for people; not in the JSON). */
export interface Routed {
  readonly outcome: GoalOutcome
  readonly remote: RemoteStatus
  readonly note: string | null
}

export type GoalError = BadInput | AutopilotDisabled | SynthesisFailed | LlmError | PersistenceError

/**
 * From a plain-English goal to a draft mission, as the seed's controller does: the router ranks the
 * catalog, the confidence gate decides between a mission, a picker and synthesis, the slots are filled
 * from the goal, and the draft is stored for approval. The CLI and the HTTP API both call this.
 */
export class Goals extends Context.Tag("autopilot/Goals")<
  Goals,
  { readonly submit: (request: GoalRequest) => Effect.Effect<Routed, GoalError> }
>() {}

/** How many candidates a picker or a synthesis outcome offers, and `--pick` chooses among. */
export const shown = 3

/** Scores as people read them, and as the outcome carries them: three decimals. */
const round = (score: number) => Math.round(score * 1000) / 1000

const candidateOf = (candidate: Candidate): OutcomeCandidate => ({
  blueprint_id: candidate.blueprint.id,
  score: round(candidate.score),
  blueprint_json: toJson(candidate.blueprint)
})

/** Everything about a request that can be refused before anything is read or written. */
export const check = (request: GoalRequest): Effect.Effect<void, BadInput> =>
  Effect.gen(function*() {
    const problem = goalProblem(request.goal)
    if (problem !== undefined) return yield* new BadInput({ message: problem })
    yield* checkProject(request.project)
    if (request.pick !== undefined && request.synthesize === true) {
      return yield* new BadInput({ message: "--pick chooses a listed blueprint and --synthesize writes a new one: give one of them" })
    }
    if (request.pick !== undefined && (!Number.isInteger(request.pick) || request.pick < 1 || request.pick > shown)) {
      return yield* new BadInput({ message: `--pick must be a whole number from 1 to ${shown} (a candidate the goal lists), got ${request.pick}` })
    }
  })

export const make = Effect.gen(function*() {
  const settings = yield* Settings
  const thresholds = yield* ConfidenceConfig
  const router = yield* GoalRouter
  const service = yield* BlueprintService
  const slots = yield* Slots
  const synthesis = yield* Synthesis
  const missions = yield* Missions

  /** The mission a goal is routed to: slots filled from the goal, stored as a draft with why it was made. */
  const draft = (request: GoalRequest, blueprint: Blueprint, score: number, reason: string) =>
    Effect.gen(function*() {
      const filled = yield* slots.fill(blueprint, request.goal)
      const mission = yield* missions.create({
        project: request.project,
        goal: request.goal,
        blueprint,
        slots: filled.values,
        missing: filled.missing,
        actor: request.actor,
        reason
      })
      const outcome: GoalOutcome = {
        kind: "auto_routed",
        mission_id: mission.mission_id,
        blueprint_id: blueprint.id,
        score: round(score),
        preview: mission.preview,
        slots: mission.slots,
        missing_slots: mission.missing_slots,
        ...(filled.invalid.length === 0 ? {} : { invalid_slots: filled.invalid })
      }
      return { outcome }
    })

  const synthesized = (request: GoalRequest, tier: ServiceTier) =>
    Effect.gen(function*() {
      const remote = yield* service.synthesize(request.goal, tier)
      const draftJson = Option.getOrUndefined(remote.blueprint_json)
      const entry = yield* synthesis.synthesize(request.goal, { draft: draftJson })
      const origin = draftJson !== undefined ? "the blueprint service's draft" : "the model"
      const made = yield* draft(request, entry.blueprint, 1, `synthesized for the goal by ${origin}, kept as ${entry.file}`)
      return { ...made, remote: remote.remote, note: remote.note } satisfies Routed
    })

  const submit = (request: GoalRequest) =>
    Effect.gen(function*() {
      yield* check(request)
      const { tier } = yield* settings.requireEnabled()
      if (request.synthesize === true) return yield* synthesized(request, tier)

      const ranking = yield* router.rank(request.goal, { tier, k: shown })
      const listed = ranking.candidates.slice(0, shown)
      const best = listed[0]
      const verdict = best === undefined ? "synthesis_needed" : gate(thresholds, best.score)
      // What the goal offers a person: the picker shows only the candidates that reach its threshold.
      const offered = verdict === "picker_needed" ? listed.filter((c) => c.score >= thresholds.picker_threshold) : listed
      const routed = (made: { readonly outcome: GoalOutcome }): Routed => ({
        outcome: made.outcome,
        remote: ranking.remote,
        note: ranking.note
      })

      if (request.pick !== undefined) {
        const picked = offered[request.pick - 1]
        if (picked === undefined) {
          return yield* new BadInput({
            message: offered.length === 0
              ? "no blueprint is a candidate for this goal, so there is nothing to pick; --synthesize writes one"
              : `--pick ${request.pick} is out of range: this goal lists ${offered.length} candidate${offered.length === 1 ? "" : "s"}`
          })
        }
        const reason = `picked candidate ${request.pick} of ${offered.length} (score ${round(picked.score)})`
        return routed(yield* draft(request, picked.blueprint, picked.score, reason))
      }

      switch (verdict) {
        case "auto_routed": {
          const reason = `auto-routed at score ${round(best!.score)} (threshold ${thresholds.auto_route_threshold})`
          return routed(yield* draft(request, best!.blueprint, best!.score, reason))
        }
        case "picker_needed":
          return routed({ outcome: { kind: "picker_needed", candidates: offered.map(candidateOf) } })
        case "synthesis_needed":
          return routed({ outcome: { kind: "synthesis_needed", goal: request.goal, candidates: offered.map(candidateOf) } })
      }
    })

  return Goals.of({ submit })
})

export const layer: Layer.Layer<
  Goals,
  never,
  Settings | ConfidenceConfig | GoalRouter | BlueprintService | Slots | Synthesis | Missions
> = Layer.effect(Goals, make)
