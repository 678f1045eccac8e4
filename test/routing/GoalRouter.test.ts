import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { toJson } from "../../src/domain/Blueprint.js"
import * as BlueprintService from "../../src/routing/BlueprintService.js"
import { Blueprints, fromEntries } from "../../src/routing/Blueprints.js"
import * as Calibration from "../../src/routing/Calibration.js"
import * as GoalRouter from "../../src/routing/GoalRouter.js"
import * as BlueprintCacheStore from "../../src/store/BlueprintCacheStore.js"
import * as Database from "../../src/store/Database.js"
import { fakeService, type Reply } from "./fake-service.js"
import { blueprint, blueprints, catalog, entries, showNotes, specs } from "./router-fixtures.js"

const offline = GoalRouter.layer.pipe(Layer.provide([Layer.succeed(Blueprints, catalog), BlueprintService.layerNone]))

const withRemote = (url: string) =>
  GoalRouter.layer.pipe(
    Layer.provide(Layer.succeed(Blueprints, catalog)),
    Layer.provide(BlueprintService.layer({ url, key: Option.none(), ttl: "1 hour", backoff: 0 })),
    Layer.provide([FetchHttpClient.layer, BlueprintCacheStore.layer.pipe(Layer.provide(Database.layerSqlite(":memory:")))])
  )

/** The router of `layer`, alive for the rest of the test's scope. */
const routerOf = <E>(layer: Layer.Layer<GoalRouter.GoalRouter, E>) => Effect.map(Layer.build(layer), Context.get(GoalRouter.GoalRouter))

const ids = (ranking: GoalRouter.Ranking) => ranking.candidates.map((c) => c.blueprint.id)

const sortedByScoreThenId = (candidates: ReadonlyArray<GoalRouter.Candidate>) =>
  candidates.every((c, i) => {
    const next = candidates[i + 1]
    return next === undefined || c.score > next.score || (c.score === next.score && c.blueprint.id < next.blueprint.id)
  })

describe("GoalRouter offline", () => {
  it.effect("ranks the catalog for a goal: calibrated scores, highest first, at most k, all local", () =>
    Effect.gen(function*() {
      const router = yield* GoalRouter.GoalRouter
      const ranking = yield* router.rank("Please review the pull request for security bugs before we merge", { tier: "anonymous", k: 3 })
      assert.strictEqual(ranking.candidates[0]?.blueprint.id, "code_review")
      assert.isAtMost(ranking.candidates.length, 3)
      assert.isTrue(sortedByScoreThenId(ranking.candidates))
      for (const c of ranking.candidates) {
        assert.strictEqual(c.source, "local")
        assert.isTrue(c.score > 0 && c.score < 1)
      }
      assert.deepStrictEqual([ranking.remote, ranking.dropped, ranking.note], ["unconfigured", 0, null])
      const five = yield* router.rank("Please review the pull request for security bugs before we merge", { tier: "skip" })
      assert.isAbove(five.candidates.length, 3)
      assert.isAtMost(five.candidates.length, GoalRouter.defaultK)
      assert.strictEqual(five.remote, "skipped")
    }).pipe(Effect.provide(offline)))

  it.effect("a goal in words no blueprint uses has no candidates", () =>
    Effect.gen(function*() {
      const router = yield* GoalRouter.GoalRouter
      assert.deepStrictEqual(ids(yield* router.rank("bake sourdough bread", { tier: "skip" })), [])
    }).pipe(Effect.provide(offline)))

  it.effect("equal scores are ordered by blueprint id, whatever the catalog's order", () =>
    Effect.gen(function*() {
      const twin = (id: string) => blueprint({ ...specs[3]!, id })
      const twins = [twin("zeta_review"), twin("alpha_review"), twin("mid_review")]
      const router = yield* GoalRouter.GoalRouter.pipe(
        Effect.provide(GoalRouter.layer.pipe(Layer.provide([
          Layer.succeed(Blueprints, fromEntries([...entries, ...twins.map((b) => ({ blueprint: b, file: null }))])),
          BlueprintService.layerNone
        ])))
      )
      const ranking = yield* router.rank("review this pull request for bugs", { tier: "skip", k: 4 })
      assert.deepStrictEqual(ids(ranking), ["alpha_review", "code_review", "mid_review", "zeta_review"])
      assert.strictEqual(new Set(ranking.candidates.map((c) => c.score)).size, 1)
    }).pipe(Effect.provide(offline)))

  it.effect("an empty goal, a goal too long, or k out of range is one line of bad input", () =>
    Effect.gen(function*() {
      const router = yield* GoalRouter.GoalRouter
      const messageOf = (goal: string, k?: number) => Effect.map(Effect.flip(router.rank(goal, { tier: "skip", k })), (e) => `${e._tag}: ${e.message}`)
      assert.match(yield* messageOf("   "), /^BadInput: the goal is empty/)
      assert.match(yield* messageOf("x".repeat(100_000)), /^BadInput: the goal has 100000 characters, more than the 4000/)
      for (const k of [0, 51, 2.5]) {
        assert.strictEqual(yield* messageOf("review code", k), `BadInput: the number of candidates must be a whole number from 1 to 50, got ${k}`)
      }
    }).pipe(Effect.provide(offline)))

  it("an empty catalog ranks nothing, and its calibration is the prior", () => {
    const empty = GoalRouter.makeLocal([])
    assert.deepStrictEqual(empty.rank("review this pull request", 5), [])
    assert.deepStrictEqual(empty.fitted.calibration, Calibration.prior)
  })

  it("the calibration is fitted once, when the router is built", () => {
    const local = GoalRouter.makeLocal(blueprints)
    assert.strictEqual(local.fitted.phrasings, blueprints.reduce((n, b) => n + b.example_goals.length, 0))
    assert.isAbove(local.fitted.calibration.coverage, 0)
    assert.isAbove(local.fitted.calibration.margin, 0)
  })
})

describe("GoalRouter.merge", () => {
  const candidate = (i: number, score: number, source: "local" | "remote"): GoalRouter.Candidate => ({ blueprint: blueprints[i]!, score, source })

  it("unites by blueprint id keeping the higher score (local on a tie), sorted, cut to k", () => {
    const merged = GoalRouter.merge(
      [candidate(0, 0.5, "local"), candidate(1, 0.9, "local"), candidate(2, 0.3, "local")],
      [candidate(0, 0.8, "remote"), candidate(1, 0.2, "remote"), candidate(2, 0.3, "remote"), candidate(4, 0.1, "remote")],
      3
    )
    assert.deepStrictEqual(merged.map((c) => [c.blueprint.id, c.score, c.source]), [
      [blueprints[1]!.id, 0.9, "local"],
      [blueprints[0]!.id, 0.8, "remote"],
      [blueprints[2]!.id, 0.3, "local"]
    ])
  })
})

describe("GoalRouter with the remote service", () => {
  const goal = "Review this pull request for security bugs"

  it.scoped("merges remote candidates with local ones by id, keeping the higher score, highest first", () =>
    Effect.gen(function*() {
      const local = yield* routerOf(offline)
      const offlineRanking = yield* local.rank(goal, { tier: "skip", k: 10 })
      const [first, second] = offlineRanking.candidates
      assert.strictEqual(first?.blueprint.id, "code_review")
      assert.isDefined(second)
      const fake = yield* fakeService((): Reply => ({
        json: {
          candidates: [
            { blueprint_json: toJson(showNotes), score: 0.55 },
            { blueprint_json: toJson(first!.blueprint), score: 0.999 },
            { blueprint_json: toJson(second!.blueprint), score: second!.score / 2 },
            { blueprint_json: "garbage", score: 0.99 }
          ]
        }
      }))
      const router = yield* routerOf(withRemote(fake.url))
      const ranking = yield* router.rank(goal, { tier: "anonymous", k: 10 })
      assert.deepStrictEqual([ranking.remote, ranking.dropped], ["ok", 1])
      assert.isTrue(sortedByScoreThenId(ranking.candidates))
      const byId = new Map(ranking.candidates.map((c) => [c.blueprint.id, c]))
      assert.deepStrictEqual([byId.get("code_review")?.score, byId.get("code_review")?.source], [0.999, "remote"])
      assert.deepStrictEqual(byId.get(second!.blueprint.id), second)
      assert.deepStrictEqual([byId.get("podcast_show_notes")?.score, byId.get("podcast_show_notes")?.source], [0.55, "remote"])
      assert.strictEqual(byId.size, ranking.candidates.length)
      assert.strictEqual(ranking.candidates.length, Math.min(10, offlineRanking.candidates.length + 1))
      assert.deepStrictEqual(fake.received().map((r) => r.body), [{ goal, k: 10 }])
    }))

  it.scoped("a remote candidate never replaces a catalog blueprint of its id, and one of its own is vetted like a user file", () =>
    Effect.gen(function*() {
      const local = yield* routerOf(offline)
      const own = (yield* local.rank(goal, { tier: "skip", k: 1 })).candidates[0]!.blueprint
      const edit = (json: string, f: (bp: any) => void) => {
        const bp = JSON.parse(json)
        f(bp)
        return JSON.stringify(bp)
      }
      const impostor = edit(toJson(own), (bp) => {
        bp.title = "Replaced by the service"
        for (const node of bp.graph.nodes) node.tools = ["rm_rf"]
      })
      const unknownRole = edit(toJson(showNotes), (bp) => {
        bp.id = "remote_notes"
        for (const node of bp.graph.nodes) (delete node.role, node.specialist = "no-such-specialist")
      })
      const fake = yield* fakeService((): Reply => ({
        json: { candidates: [{ blueprint_json: impostor, score: 0.9999 }, { blueprint_json: unknownRole, score: 0.98 }] }
      }))
      const vetting = fromEntries(entries, { problemsOf: (bp) => bp.graph.nodes.some((n) => n.specialist === "no-such-specialist") ? [{ field: "graph.nodes[0].specialist", message: "unknown specialist" }] : [] })
      const router = yield* routerOf(
        GoalRouter.layer.pipe(
          Layer.provide(Layer.succeed(Blueprints, vetting)),
          Layer.provide(BlueprintService.layer({ url: fake.url, key: Option.none(), ttl: "1 hour", backoff: 0 })),
          Layer.provide([FetchHttpClient.layer, BlueprintCacheStore.layer.pipe(Layer.provide(Database.layerSqlite(":memory:")))])
        )
      )
      const ranking = yield* router.rank(goal, { tier: "anonymous", k: 5 })
      const top = ranking.candidates[0]!
      assert.strictEqual(top.blueprint, own)
      assert.deepStrictEqual([top.score, top.source], [0.9999, "remote"])
      assert.notInclude(ranking.candidates.map((c) => c.blueprint.id), "remote_notes")
      assert.strictEqual(ranking.dropped, 1)
      assert.match(ranking.note ?? "", /^dropped 1 of the blueprint service's candidates: remote_notes: graph\.nodes\[0\]\.specialist: unknown specialist$/)
    }))

  it.scoped("down with nothing cached: local candidates only, and says so", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => "reset")
      const router = yield* routerOf(withRemote(fake.url))
      const local = yield* routerOf(offline)
      const ranking = yield* router.rank(goal, { tier: "anonymous" })
      assert.strictEqual(ranking.remote, "down")
      assert.include(ranking.note, "could not be reached")
      assert.deepStrictEqual(ranking.candidates, (yield* local.rank(goal, { tier: "skip" })).candidates)
      assert.isAbove(ranking.candidates.length, 0)
    }))

  it.scoped("skip ranks locally and never calls", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => ({ json: { candidates: [] } }))
      const router = yield* routerOf(withRemote(fake.url))
      const ranking = yield* router.rank(goal, { tier: "skip" })
      assert.strictEqual(ranking.remote, "skipped")
      assert.strictEqual(ranking.candidates[0]?.blueprint.id, "code_review")
      assert.deepStrictEqual(fake.received(), [])
    }))
})
