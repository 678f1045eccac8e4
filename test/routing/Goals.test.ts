import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, FastCheck, Layer, Option, Schema } from "effect"
import { type ServiceTier } from "../../src/domain/AutopilotSettings.js"
import { Blueprint, toJson } from "../../src/domain/Blueprint.js"
import { GoalOutcome } from "../../src/domain/GoalOutcome.js"
import { Llm } from "../../src/llm/Llm.js"
import { Missions } from "../../src/missions/Missions.js"
import { Settings } from "../../src/missions/Settings.js"
import { BlueprintService, none } from "../../src/routing/BlueprintService.js"
import { Blueprints, fromEntries } from "../../src/routing/Blueprints.js"
import * as Catalog from "../../src/routing/Catalog.js"
import * as Confidence from "../../src/routing/Confidence.js"
import { Goals, type GoalRequest, layer as goalsLayer, shown } from "../../src/routing/Goals.js"
import * as GoalRouter from "../../src/routing/GoalRouter.js"
import * as Slots from "../../src/routing/Slots.js"
import * as Synthesis from "../../src/routing/Synthesis.js"
import * as Specialists from "../../src/specialists/Specialists.js"
import { layerSqlite } from "../missions/fixtures.js"
import { recordingLlm } from "./fixtures.js"

const seedGoal = "run daily competitive research on 3 vendors"

/** A remote service that answers nothing but remembers the tier each call came with. */
const recordingService = (draft?: string) => {
  const tiers: Array<string> = []
  const service = BlueprintService.of({
    ...none,
    synthesize: (_goal: string, tier: ServiceTier) =>
      Effect.sync(() => {
        tiers.push(tier)
        const answered = tier !== "skip" && draft !== undefined
        return { remote: tier === "skip" ? "skipped" : answered ? "ok" : "down", blueprint_json: answered ? Option.some(draft) : Option.none(), note: null }
      })
  })
  return { tiers, service }
}

/**
 * The whole of `autopilot goal` but the command line: the built-in catalog (user blueprints kept in
 * memory), the mock model recorded, missions on an in-memory SQLite database.
 */
const setup = (options: { thresholds?: Partial<Confidence.Thresholds>; draft?: string } = {}) =>
  Effect.gen(function*() {
    const builtIn = yield* Catalog.makeBuiltIn()
    const kept: Array<Blueprint> = []
    const catalog = fromEntries(builtIn.all, {
      add: (blueprint) => Effect.sync(() => (kept.push(blueprint), { blueprint, file: `/blueprints/${blueprint.id}.json` }))
    })
    const { llm, requests } = yield* recordingLlm()
    const { service, tiers } = recordingService(options.draft)
    const base = Layer.mergeAll(
      Layer.succeed(Blueprints, catalog),
      Layer.succeed(Llm, llm),
      Layer.succeed(BlueprintService, service),
      Specialists.layerBuiltIn,
      Confidence.layer(options.thresholds)
    )
    const layer = goalsLayer.pipe(
      Layer.provideMerge(Layer.mergeAll(GoalRouter.layer, Slots.layer, Synthesis.layer, layerSqlite(":memory:"))),
      Layer.provideMerge(base)
    )
    return { layer, kept, requests, tiers }
  })

const submit = (request: Partial<GoalRequest> & { goal: string }) =>
  Effect.flatMap(Goals, (goals) => goals.submit({ project: "acme", actor: "test:alice", ...request }))

const missionsOf = (project = "acme") => Effect.flatMap(Missions, (missions) => missions.list(project, {}))

const decodeOutcome = Schema.decodeUnknownSync(GoalOutcome)

describe("Goals", () => {
  it.effect("auto-routes the seed's goal: a draft of scheduled_research, slots read from the goal, stored with why", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup()
      yield* Effect.gen(function*() {
        const { outcome } = yield* submit({ goal: seedGoal })
        assert.deepStrictEqual(decodeOutcome(outcome), outcome)
        assert.strictEqual(outcome.kind, "auto_routed")
        if (outcome.kind !== "auto_routed") return
        assert.strictEqual(outcome.blueprint_id, "scheduled_research")
        assert.isAtLeast(outcome.score, 0.85)
        assert.strictEqual(outcome.slots["schedule"], "0 9 * * *")
        assert.strictEqual(outcome.slots["vendor_count"], 3)

        const missions = yield* Missions
        const { mission, transitions } = yield* missions.show("acme", outcome.mission_id)
        assert.strictEqual(mission.status, "draft")
        assert.strictEqual(mission.goal, seedGoal)
        assert.strictEqual(mission.preview, outcome.preview)
        assert.deepStrictEqual(mission.missing_slots, outcome.missing_slots)
        assert.strictEqual(transitions.length, 1)
        assert.strictEqual(transitions[0]!.actor, "test:alice")
        assert.match(transitions[0]!.reason, /^auto-routed at score 0\.\d+ \(threshold 0\.85\)$/)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("offers the candidates above the picker threshold, best first, and makes no mission", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup({ thresholds: { auto_route_threshold: 1, picker_threshold: 0.2 } })
      yield* Effect.gen(function*() {
        const { outcome } = yield* submit({ goal: seedGoal })
        assert.strictEqual(outcome.kind, "picker_needed")
        if (outcome.kind !== "picker_needed") return
        assert.isAtLeast(outcome.candidates.length, 1)
        assert.isAtMost(outcome.candidates.length, shown)
        assert.strictEqual(outcome.candidates[0]!.blueprint_id, "scheduled_research")
        const scores = outcome.candidates.map((c) => c.score)
        assert.deepStrictEqual(scores, [...scores].sort((a, b) => b - a))
        for (const candidate of outcome.candidates) {
          assert.isAtLeast(candidate.score, 0.2)
          const decoded = Schema.decodeUnknownSync(Schema.parseJson(Blueprint))(candidate.blueprint_json)
          assert.strictEqual(decoded.id, candidate.blueprint_id)
        }
        assert.deepStrictEqual(yield* missionsOf(), [])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a goal no blueprint serves needs synthesis, with the best candidates it had, and makes no mission", () =>
    Effect.gen(function*() {
      const { layer, requests } = yield* setup()
      yield* Effect.gen(function*() {
        const { outcome } = yield* submit({ goal: "bake a sourdough loaf with a crisp crust for sunday lunch" })
        assert.strictEqual(outcome.kind, "synthesis_needed")
        if (outcome.kind !== "synthesis_needed") return
        assert.strictEqual(outcome.goal, "bake a sourdough loaf with a crisp crust for sunday lunch")
        assert.isAtMost(outcome.candidates.length, shown)
        for (const candidate of outcome.candidates) assert.isBelow(candidate.score, 0.65)
        assert.deepStrictEqual(yield* missionsOf(), [])
        assert.deepStrictEqual(requests, [], "routing alone never calls the model")
      }).pipe(Effect.provide(layer))
    }))

  it.effect("--pick N makes the mission from the Nth candidate, whatever its score, and says so in its history", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup({ thresholds: { auto_route_threshold: 1, picker_threshold: 0 } })
      yield* Effect.gen(function*() {
        const { outcome: offered } = yield* submit({ goal: "summarize the incident and what the meeting decided" })
        assert.strictEqual(offered.kind, "picker_needed")
        if (offered.kind !== "picker_needed") return
        assert.isAtLeast(offered.candidates.length, 2)
        const second = offered.candidates[1]!

        const { outcome } = yield* submit({ goal: "summarize the incident and what the meeting decided", pick: 2 })
        assert.strictEqual(outcome.kind, "auto_routed")
        if (outcome.kind !== "auto_routed") return
        assert.strictEqual(outcome.blueprint_id, second.blueprint_id)
        assert.strictEqual(outcome.score, second.score)
        const { transitions } = yield* (yield* Missions).show("acme", outcome.mission_id)
        assert.match(transitions[0]!.reason, new RegExp(`^picked candidate 2 of ${offered.candidates.length} \\(score `))
      }).pipe(Effect.provide(layer))
    }))

  it.effect("--synthesize writes a blueprint with the model, keeps it as the user's, and makes the mission from it", () =>
    Effect.gen(function*() {
      const { kept, layer, requests, tiers } = yield* setup()
      yield* Effect.gen(function*() {
        const { outcome } = yield* submit({ goal: "plan our team offsite in Lisbon", synthesize: true })
        assert.strictEqual(outcome.kind, "auto_routed")
        if (outcome.kind !== "auto_routed") return
        assert.deepStrictEqual(kept.map((b) => b.id), [outcome.blueprint_id])
        assert.strictEqual(outcome.score, 1)
        assert.deepStrictEqual(tiers, ["anonymous"], "the remote service is asked first, with the settings' tier")
        assert.deepStrictEqual(requests.map((r) => r.purpose), ["synthesis", ...(kept[0]!.slots.length > 0 ? ["slots"] : [])])
        const { mission, transitions } = yield* (yield* Missions).show("acme", outcome.mission_id)
        assert.deepStrictEqual(mission.blueprint, kept[0])
        assert.match(transitions[0]!.reason, /^synthesized for the goal by the model, kept as \/blueprints\//)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a valid draft from the remote service is used without calling the model; tier skip never asks", () =>
    Effect.gen(function*() {
      const builtIn = yield* Catalog.makeBuiltIn()
      const draft = toJson({ ...builtIn.all.find((e) => e.blueprint.id === "meeting_notes")!.blueprint, id: "offsite_planning" })
      const { kept, layer, requests, tiers } = yield* setup({ draft })
      yield* Effect.gen(function*() {
        const { outcome, remote } = yield* submit({ goal: "plan our team offsite in Lisbon", synthesize: true })
        assert.strictEqual(remote, "ok")
        assert.strictEqual(outcome.kind === "auto_routed" && outcome.blueprint_id, "offsite_planning")
        assert.deepStrictEqual(kept.map((b) => b.id), ["offsite_planning"])
        assert.notInclude(requests.map((r) => r.purpose), "synthesis")

        yield* (yield* Settings).enable("skip")
        yield* submit({ goal: "plan our team offsite in Porto", synthesize: true })
        assert.deepStrictEqual(tiers, ["anonymous", "skip"])
        assert.include(requests.map((r) => r.purpose), "synthesis", "with the service skipped, the model writes it")
      }).pipe(Effect.provide(layer))
    }))

  it.effect("--pick chooses among the candidates the picker shows, never one below its threshold", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup({ thresholds: { auto_route_threshold: 1, picker_threshold: 0.5 } })
      yield* Effect.gen(function*() {
        const goal = "review this pull request for security bugs"
        const { outcome } = yield* submit({ goal })
        if (outcome.kind !== "picker_needed") return assert.fail(`expected picker_needed, got ${outcome.kind}`)
        const ranked = (yield* (yield* GoalRouter.GoalRouter).rank(goal, { tier: "anonymous", k: shown })).candidates
        assert.isAbove(ranked.length, outcome.candidates.length, "the ranking has candidates the picker does not show")
        const error = yield* Effect.flip(submit({ goal, pick: outcome.candidates.length + 1 }))
        assert.strictEqual(error.message, `--pick ${outcome.candidates.length + 1} is out of range: this goal lists ${outcome.candidates.length} candidate${outcome.candidates.length === 1 ? "" : "s"}`)
        assert.deepStrictEqual(yield* missionsOf(), [])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a value the goal states wrongly is reported, and its slot stays missing", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup({ thresholds: { auto_route_threshold: 0.5, picker_threshold: 0.3 } })
      yield* Effect.gen(function*() {
        const routed = yield* submit({ goal: `${seedGoal}, vendor_count=999` })
        if (routed.outcome.kind !== "auto_routed") return assert.fail(`expected auto_routed, got ${routed.outcome.kind}`)
        assert.strictEqual(routed.outcome.blueprint_id, "scheduled_research")
        assert.deepStrictEqual(routed.outcome.invalid_slots?.map((i) => i.slot), ["vendor_count"])
        assert.include(routed.outcome.missing_slots, "vendor_count")
        assert.notProperty(routed.outcome.slots, "vendor_count")
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a disabled autopilot refuses new goals and writes nothing; enabling takes them again", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup()
      yield* Effect.gen(function*() {
        yield* (yield* Settings).disable()
        const refused = yield* Effect.flip(submit({ goal: seedGoal }))
        assert.strictEqual(refused._tag, "AutopilotDisabled")
        assert.deepStrictEqual(yield* missionsOf(), [])
        yield* (yield* Settings).enable()
        assert.strictEqual((yield* submit({ goal: seedGoal })).outcome.kind, "auto_routed")
      }).pipe(Effect.provide(layer))
    }))

  it.effect("bad requests are refused before anything is read or written, each naming what is wrong", () =>
    Effect.gen(function*() {
      const { layer, requests } = yield* setup()
      yield* Effect.gen(function*() {
        const cases: ReadonlyArray<[Partial<GoalRequest> & { goal: string }, RegExp]> = [
          [{ goal: "   " }, /the goal is empty/],
          [{ goal: "x".repeat(100 * 1024) }, /102400 characters, more than the 4000/],
          [{ goal: seedGoal, project: "no spaces" }, /project "no spaces" is not allowed/],
          [{ goal: seedGoal, pick: 0 }, /--pick must be a whole number from 1 to 3/],
          [{ goal: seedGoal, pick: 4 }, /--pick must be a whole number from 1 to 3/],
          [{ goal: seedGoal, pick: 1, synthesize: true }, /give one of them/]
        ]
        for (const [request, message] of cases) {
          const error = yield* Effect.flip(submit(request))
          assert.strictEqual(error._tag, "BadInput")
          assert.match(error.message, message)
          assert.notInclude(error.message, "\n")
        }
        assert.deepStrictEqual(yield* missionsOf(), [])
        assert.deepStrictEqual(requests, [])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("--pick beyond the candidates a goal has is refused, naming how many there are", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup()
      yield* Effect.gen(function*() {
        const error = yield* Effect.flip(submit({ goal: "xylophone zebra quux", pick: 1 }))
        assert.strictEqual(error._tag, "BadInput")
        assert.match(error.message, /nothing to pick; --synthesize writes one/)
        assert.deepStrictEqual(yield* missionsOf(), [])
      }).pipe(Effect.provide(layer))
    }))

  it.effect.prop(
    "whatever the thresholds, the outcome is the gate's verdict on the best candidate's score",
    [FastCheck.double({ min: 0, max: 1, noNaN: true }), FastCheck.double({ min: 0, max: 1, noNaN: true })],
    ([a, b]) =>
      Effect.gen(function*() {
        const thresholds = { auto_route_threshold: Math.max(a, b), picker_threshold: Math.min(a, b) }
        const { layer } = yield* setup({ thresholds })
        yield* Effect.gen(function*() {
          const goal = "review this pull request for security bugs"
          const ranking = yield* (yield* GoalRouter.GoalRouter).rank(goal, { tier: "anonymous", k: shown })
          const { outcome } = yield* submit({ goal })
          assert.strictEqual(outcome.kind, Confidence.gate(thresholds, ranking.candidates[0]!.score))
          assert.strictEqual((yield* missionsOf()).length, outcome.kind === "auto_routed" ? 1 : 0)
        }).pipe(Effect.provide(layer))
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("a mission of one project is not another's", () =>
    Effect.gen(function*() {
      const { layer } = yield* setup()
      yield* Effect.gen(function*() {
        const { outcome } = yield* submit({ goal: seedGoal, project: "acme" })
        if (outcome.kind !== "auto_routed") return assert.fail(`expected auto_routed, got ${outcome.kind}`)
        const missions = yield* Missions
        const elsewhere = yield* Effect.exit(missions.get("globex", outcome.mission_id))
        assert.isTrue(Exit.isFailure(elsewhere))
        assert.deepStrictEqual(yield* missionsOf("globex"), [])
        assert.isTrue(Either.isRight(yield* Effect.either(missions.get("acme", outcome.mission_id))))
      }).pipe(Effect.provide(layer))
    }))
})
