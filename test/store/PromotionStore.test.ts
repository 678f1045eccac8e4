import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { randomBytes } from "node:crypto"
import { EvaluationReport } from "../../src/finetune/EvaluationReport.js"
import { ModelRoute } from "../../src/finetune/ModelRoute.js"
import * as Store from "../../src/store/PromotionStore.js"
import { PromotionStore } from "../../src/store/PromotionStore.js"
import { eachDatabase } from "../support/Databases.js"

const routeOf = (scope: string, model: string, at: string) =>
  new ModelRoute({
    id: `route-${randomBytes(4).toString("hex")}`,
    scope,
    model,
    base_url: null,
    job_id: `ft-${model}`,
    evaluation_id: `eval-${model}`,
    baseline_model: null,
    replaces: null,
    promoted_at: at,
    retired_at: null,
    retired_reason: null
  })

const score = (model: string, passed: number, cost: number | null) => ({
  model,
  samples: 10,
  passed,
  pass_rate: passed / 10,
  cost_per_step_usd: cost,
  latency_per_step_ms: 12.5,
  errors: 0,
  first_error: null
})

eachDatabase("PromotionStore", (database) => {
  const store = Store.layer.pipe(Layer.provideMerge(database.layer))

  describe("routes", () => {
    it.effect("a promotion retires the scope's active route and remembers it; a rollback brings it back; other scopes are untouched", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const scope = `specialist:s-${randomBytes(3).toString("hex")}`
        const other = yield* routes.promote(routeOf("blueprint:other", "ft:other", "2025-03-10T09:00:00.000Z"))
        const first = yield* routes.promote(routeOf(scope, "ft:first", "2025-03-10T10:00:00.000Z"))
        assert.isNull(first.replaces)
        const second = yield* routes.promote(routeOf(scope, "ft:second", "2025-03-10T11:00:00.000Z"))
        assert.strictEqual(second.replaces, first.id)
        const active = (yield* routes.active).map((r) => r.model).sort()
        assert.deepStrictEqual(active, ["ft:other", "ft:second"])
        const retired = (yield* routes.routes).find((r) => r.id === first.id)!
        assert.deepStrictEqual([retired.retired_at, retired.retired_reason], ["2025-03-10T11:00:00.000Z", "replaced by ft:second (fine-tune ft-ft:second)"])

        const rolled = Option.getOrThrow(yield* routes.rollback(second.id, "2025-03-10T12:00:00.000Z", "worse in production"))
        assert.strictEqual(rolled.retired.retired_reason, "worse in production")
        assert.strictEqual(Option.getOrThrow(rolled.restored).id, first.id)
        assert.deepStrictEqual((yield* routes.active).map((r) => r.model).sort(), ["ft:first", "ft:other"])
        // Twice is nothing: the route is retired already.
        assert.isTrue(Option.isNone(yield* routes.rollback(second.id, "2025-03-10T12:00:01.000Z", "again")))
        // The first had replaced nothing: rolling it back leaves the scope to the default.
        const last = Option.getOrThrow(yield* routes.rollback(first.id, "2025-03-10T13:00:00.000Z", "done"))
        assert.isTrue(Option.isNone(last.restored))
        assert.deepStrictEqual((yield* routes.active).map((r) => r.id), [other.id])
      }).pipe(Effect.provide(store)))

    it.effect("after a rollback restored the route before, a newer promotion replaces that one; the rolled-back route stays retired", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const scope = `node:b-${randomBytes(3).toString("hex")}/classify`
        const a = yield* routes.promote(routeOf(scope, "ft:a", "2025-03-10T10:00:00.000Z"))
        const b = yield* routes.promote(routeOf(scope, "ft:b", "2025-03-10T11:00:00.000Z"))
        yield* routes.rollback(b.id, "2025-03-10T12:00:00.000Z", "x")
        const c = yield* routes.promote(routeOf(scope, "ft:c", "2025-03-10T13:00:00.000Z"))
        assert.strictEqual(c.replaces, a.id)
        assert.deepStrictEqual((yield* routes.active).filter((r) => r.scope === scope).map((r) => r.model), ["ft:c"])
        assert.isTrue(Option.isNone(yield* routes.rollback(b.id, "2025-03-10T14:00:00.000Z", "late")))
      }).pipe(Effect.provide(store)))

    it.effect("a rollback does not bring back the route of a job an operator rolled back since", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const scope = `specialist:s-${randomBytes(3).toString("hex")}`
        const a = yield* routes.promote(routeOf(scope, "ft:a", "2025-03-10T10:00:00.000Z"))
        const b = yield* routes.promote(routeOf(scope, "ft:b", "2025-03-10T11:00:00.000Z"))
        const a2 = yield* routes.promote(new ModelRoute({ ...routeOf(scope, "ft:a", "2025-03-10T12:00:00.000Z"), job_id: a.job_id }))
        assert.strictEqual(a2.replaces, b.id)
        // A again proves bad: its rollback gives the scope back to B.
        const first = Option.getOrThrow(yield* routes.rollback(a2.id, "2025-03-10T13:00:00.000Z", "rolled back by an operator"))
        assert.strictEqual(Option.getOrThrow(first.restored).id, b.id)
        // B rolled back too: A's first route, replaced by B, stays retired, since A was rolled back after it.
        const second = Option.getOrThrow(yield* routes.rollback(b.id, "2025-03-10T14:00:00.000Z", "rolled back by an operator"))
        assert.isTrue(Option.isNone(second.restored))
        assert.deepStrictEqual((yield* routes.active).filter((r) => r.scope === scope), [])
      }).pipe(Effect.provide(store)))

    it.effect("a job promoted twice (two processes at once) keeps its one route, so a rollback cannot bring it back", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const scope = `specialist:s-${randomBytes(3).toString("hex")}`
        const first = yield* routes.promote(routeOf(scope, "ft:same", "2025-03-10T10:00:00.000Z"))
        const again = yield* routes.promote(new ModelRoute({ ...routeOf(scope, "ft:same", "2025-03-10T10:00:01.000Z"), job_id: first.job_id }))
        assert.strictEqual(again.id, first.id)
        assert.deepStrictEqual((yield* routes.routes).filter((r) => r.scope === scope).map((r) => r.id), [first.id])
        const rolled = Option.getOrThrow(yield* routes.rollback(first.id, "2025-03-10T11:00:00.000Z", "bad"))
        assert.isTrue(Option.isNone(rolled.restored))
      }).pipe(Effect.provide(store)))

    it.effect("a review is claimed by one process at a time; a claim an hour old is taken over", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const job = `ft-${randomBytes(4).toString("hex")}`
        const claims = yield* Effect.all(Array.from({ length: 8 }, () => routes.claimReview(job, "2025-03-10T10:00:00.000Z", "2025-03-10T09:00:00.000Z")), { concurrency: "unbounded" })
        assert.strictEqual(claims.filter(Boolean).length, 1)
        assert.isFalse(yield* routes.claimReview(job, "2025-03-10T10:30:00.000Z", "2025-03-10T09:30:00.000Z"))
        assert.isTrue(yield* routes.claimReview(job, "2025-03-10T11:30:00.000Z", "2025-03-10T10:30:00.000Z"))
        yield* routes.releaseReview(job)
        assert.isTrue(yield* routes.claimReview(job, "2025-03-10T11:31:00.000Z", "2025-03-10T10:31:00.000Z"))
      }).pipe(Effect.provide(store)))

    it.effect("of ten promotions into one scope at once, one route stays active and each retired one names its successor", () =>
      Effect.gen(function*() {
        const routes = yield* PromotionStore
        const scope = `blueprint:race-${randomBytes(3).toString("hex")}`
        yield* Effect.all(Array.from({ length: 10 }, (_, i) => routes.promote(routeOf(scope, `ft:m${i}`, `2025-03-10T10:00:0${i}.000Z`))), { concurrency: "unbounded" })
        const all = (yield* routes.routes).filter((r) => r.scope === scope)
        assert.strictEqual(all.length, 10)
        assert.strictEqual(all.filter((r) => r.retired_at === null).length, 1)
        for (const r of all.filter((r) => r.retired_at !== null)) assert.match(r.retired_reason!, /^replaced by ft:m\d /)
        // One chain: each route but the first replaced exactly the one before it, ending at the active one.
        const byReplaces = new Map(all.filter((r) => r.replaces !== null).map((r) => [r.replaces!, r]))
        let at = all.find((r) => r.replaces === null)!
        for (let i = 1; i < 10; i++) at = byReplaces.get(at.id)!
        assert.isNull(at.retired_at)
      }).pipe(Effect.provide(store)))
  })

  describe("evaluations", () => {
    it.effect("keeps each report whole, a job's newest first", () =>
      Effect.gen(function*() {
        const store = yield* PromotionStore
        const job = `ft-${randomBytes(4).toString("hex")}`
        const report = (id: string, at: string, cost: number | null) =>
          new EvaluationReport({
            id,
            job_id: job,
            dataset_id: "specialist.coder",
            scope: "specialist:coder",
            candidate: score("ft:gpt-4o-mini:x", 9, cost),
            baseline: score("gpt-4o", 10, 0.0123),
            tolerance_points: 2,
            verdict: "candidate",
            reason: "pass rate 90% is more than 2 points below the baseline's 100%",
            cost_usd: 0.25,
            evaluated_at: at
          })
        const older = report("eval-1", "2025-03-10T10:00:00.000Z", 0.001)
        const newer = report("eval-2", "2025-03-10T11:00:00.000Z", null)
        yield* store.saveEvaluation(older)
        yield* store.saveEvaluation(newer)
        assert.deepStrictEqual(yield* store.evaluations(job), [newer, older])
        assert.deepStrictEqual(yield* store.evaluations("ft-none"), [])
      }).pipe(Effect.provide(store)))
  })
})
