import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Layer, Option, Redacted, Ref, Schema, TestClock } from "effect"
import { randomBytes } from "node:crypto"
import { costOf, priceOf } from "../../src/budget/Pricing.js"
import { PersistenceError } from "../../src/domain/Errors.js"
import { Goal } from "../../src/domain/Goal.js"
import { ModelRoute } from "../../src/finetune/ModelRoute.js"
import { refreshEvery } from "../../src/finetune/RoutedLlm.js"
import { HarnessConfig } from "../../src/harness/HarnessConfig.js"
import * as Harness from "../../src/harness/index.js"
import { effectivePolicy, type Route } from "../../src/harness/Policy.js"
import * as PromotedRoutes from "../../src/harness/PromotedRoutes.js"
import { HarnessLlm } from "../../src/llm/HarnessLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Database from "../../src/store/Database.js"
import * as Promotions from "../../src/store/PromotionStore.js"
import { PromotionStore } from "../../src/store/PromotionStore.js"
import * as Storage from "../../src/store/Storage.js"
import { calculator } from "../../src/tools/Calculator.js"
import { Toolkit } from "../../src/tools/Tool.js"
import * as TestServer from "../llm/openai-test-server.js"
import { ask, call, config, configInput, designRequest, drain, http, start, startInProcess, releaseNotesWriter } from "./fixtures.js"

/** An OpenAI fine-tune of the simple tier's model (gpt-4.1-nano, in the fixtures' catalog). */
const nanoTune = "ft:gpt-4.1-nano-2025-04-14:acme:writer:Bx7Qa1"
/** One of the medium tier's model, gpt-4o-mini. */
const miniTune = "ft:gpt-4o-mini-2024-07-18:acme:triage:Cq2Lz9"

const routeOf = (scope: string, model: string, base_url: string | null = null) =>
  new ModelRoute({
    id: `route-${randomBytes(4).toString("hex")}`,
    scope,
    model,
    base_url,
    job_id: "ftjob-1",
    evaluation_id: "eval-1",
    baseline_model: null,
    replaces: null,
    promoted_at: "2026-01-01T00:00:00.000Z",
    retired_at: null,
    retired_reason: null
  })

/** What a header naming these keys says, as HarnessLlm sends it. */
const naming = (header: string) => ({ headers: { "x-autopilot-route": header } })

interface Routed {
  readonly promotions: PromotionStore["Type"]
}

/** Writes the route to the harness's database; the harness follows it once it read it again. */
const promote = (harness: Routed, scope: string, model: string, base_url: string | null = null) =>
  Effect.orDie(harness.promotions.promote(routeOf(scope, model, base_url)))

/** One refresh period passes on the TestClock: the harness reads the routes again before it decides the next request naming one. */
const aPeriodPasses = TestClock.adjust(refreshEvery)

const models = (upstream: TestServer.TestServer) => Effect.map(upstream.requests, (requests) => requests.map((r) => r.body.model))

/** The price the shared table gives a model, for usage of 1000 tokens in and 500 out. */
const costAt = (model: string) => costOf(Option.getOrThrow(priceOf(model)), { input_tokens: 1000, output_tokens: 500 })
const usage = { prompt_tokens: 1000, completion_tokens: 500 }

describe("PromotedRoutes: the harness's copy of the active routes", () => {
  const first = routeOf("specialist:writer", nanoTune)
  const second = routeOf("blueprint:triage", miniTune)
  /** A store whose `active` is this read, and a count of the reads. */
  const copyOver = (active: Effect.Effect<ReadonlyArray<ModelRoute>, PersistenceError>) =>
    Effect.gen(function*() {
      const reads = yield* Ref.make(0)
      const store = { active: Effect.zipRight(Ref.update(reads, (n) => n + 1), active) } as unknown as PromotionStore["Type"]
      const routes = yield* Effect.provideService(PromotedRoutes.make, PromotionStore, store)
      return { routes, reads: Ref.get(reads) }
    })
  const ids = (routes: ReadonlyArray<ModelRoute> | undefined) => routes?.map((r) => r.id)

  it.effect("is read at the start and trusted for a refresh period, then read again: once for everyone asking at once", () =>
    Effect.gen(function*() {
      const table = yield* Ref.make<ReadonlyArray<ModelRoute>>([first])
      // The read yields, so the callers below really do ask at once.
      const { reads, routes } = yield* copyOver(Effect.zipRight(Effect.yieldNow(), Ref.get(table)))
      assert.strictEqual(yield* reads, 1)
      yield* Ref.set(table, [first, second])
      yield* TestClock.adjust(Duration.subtract(refreshEvery, Duration.millis(1)))
      assert.deepStrictEqual(ids(routes.current(yield* Clock.currentTimeMillis)), [first.id])
      assert.deepStrictEqual(ids(yield* routes.fresh), [first.id])
      assert.strictEqual(yield* reads, 1)
      yield* TestClock.adjust(Duration.millis(1))
      assert.isUndefined(routes.current(yield* Clock.currentTimeMillis))
      const all = yield* Effect.all(Array.from({ length: 5 }, () => routes.fresh), { concurrency: "unbounded" })
      assert.deepStrictEqual(all.map(ids), Array.from({ length: 5 }, () => [first.id, second.id]))
      assert.strictEqual(yield* reads, 2)
      assert.deepStrictEqual(ids(routes.current(yield* Clock.currentTimeMillis)), [first.id, second.id])
    }))

  it.effect("a read that fails keeps the last copy for another period; the next one after it is read", () =>
    Effect.gen(function*() {
      const table = yield* Ref.make<ReadonlyArray<ModelRoute>>([first])
      const down = yield* Ref.make(false)
      const { reads, routes } = yield* copyOver(Effect.flatMap(Ref.get(down), (isDown) =>
        isDown ? Effect.fail(new PersistenceError({ message: "the database is unreachable", busy: false })) : Ref.get(table)))
      yield* Ref.set(down, true)
      yield* Ref.set(table, [second])
      yield* TestClock.adjust(refreshEvery)
      assert.deepStrictEqual(ids(yield* routes.fresh), [first.id])
      assert.deepStrictEqual(ids(yield* routes.fresh), [first.id])
      assert.strictEqual(yield* reads, 2)
      yield* Ref.set(down, false)
      yield* TestClock.adjust(refreshEvery)
      assert.deepStrictEqual(ids(yield* routes.fresh), [second.id])
      assert.strictEqual(yield* reads, 3)
    }))
})

describe("PromotedRoutes.servedBy: which upstream of the harness serves a route's model", () => {
  const settings = Schema.decodeUnknownSync(HarnessConfig)(configInput("http://upstream.test/v1", {
    upstreams: { test: { base_url: "http://upstream.test/v1" }, other: { base_url: "http://other.test/v1" } },
    models: [
      { id: "gpt-4.1-nano", upstream: "test" },
      { id: "gpt-4o", upstream: "test" },
      { id: "mini", upstream: "other", upstream_model: "gpt-4o-mini" },
      { id: "gpt-4.1", upstream: "test" },
      { id: "o4-mini", upstream: "test" },
      { id: "writer-lora", upstream: "other", input_per_mtok: 0.05, output_per_mtok: 0.1 }
    ],
    tiers: { simple: "gpt-4.1-nano", medium: "mini", complex: "gpt-4.1" }
  }))

  it("a fine-tune goes to the upstream of the catalog model it was trained from, asked for by its own id, at the fine-tuned price", () => {
    const served = Either.getOrThrow(PromotedRoutes.servedBy(settings, routeOf("specialist:w", miniTune)))
    // gpt-4o-mini-2024-07-18 extends both gpt-4o and gpt-4o-mini: the longer, the model it is, wins.
    assert.deepStrictEqual(served.entry, { id: miniTune, upstream: "other", upstream_model: miniTune })
    assert.strictEqual(served.judgedAs, "mini")
    assert.deepStrictEqual(served.price, { model: "ft:gpt-4o-mini", input_per_mtok: 0.3, output_per_mtok: 1.2 })
  })

  it("a model in the catalog is served as listed, at its listed price; on the upstream at the route's base_url only if it is that one's", () => {
    const listed = Either.getOrThrow(PromotedRoutes.servedBy(settings, routeOf("blueprint:b", "writer-lora")))
    assert.strictEqual(listed.entry.upstream, "other")
    assert.deepStrictEqual(listed.price, { model: "writer-lora", input_per_mtok: 0.05, output_per_mtok: 0.1 })
    const there = PromotedRoutes.servedBy(settings, routeOf("blueprint:b", "writer-lora", "http://other.test/v1/"))
    assert.strictEqual(Either.getOrThrow(there).entry.upstream, "other")
    const elsewhere = PromotedRoutes.servedBy(settings, routeOf("blueprint:b", "writer-lora", "http://upstream.test/v1"))
    assert.deepStrictEqual(elsewhere, Either.left("writer-lora is served at upstream.test, which is not where this harness's upstreams serve it"))
  })

  it("what no configured upstream serves is refused with why, and a route's endpoint is named by its host alone", () => {
    const trainer = PromotedRoutes.servedBy(settings, routeOf("node:b/n", "writer-lora-2", "http://ops:s3cret@10.0.0.5:8000/v1"))
    assert.deepStrictEqual(trainer, Either.left("writer-lora-2 is served at 10.0.0.5:8000, which is not where this harness's upstreams serve it"))
    assert.deepStrictEqual(
      PromotedRoutes.servedBy(settings, routeOf("node:b/n", "llama-3-writer")),
      Either.left("no upstream of this harness serves llama-3-writer (it is not in models)")
    )
    assert.deepStrictEqual(
      PromotedRoutes.servedBy(settings, routeOf("node:b/n", "ft:gpt-3.5-turbo-0125:acme::Dz1")),
      Either.left("no upstream of this harness serves ft:gpt-3.5-turbo-0125:acme::Dz1 (it is not in models, nor is its base gpt-3.5-turbo-0125)")
    )
    // o4-mini is served here, but OpenAI's fine-tuned prices know no o4-mini: never a silent $0.
    assert.deepStrictEqual(
      PromotedRoutes.servedBy(settings, routeOf("node:b/n", "ft:o4-mini-2025-04-16:acme::Ez2")),
      Either.left("no price is known for ft:o4-mini-2025-04-16:acme::Ez2; list it in models with input_per_mtok and output_per_mtok")
    )
  })
})

describe("PromotedRoutes.apply: only a request the harness routes by tier follows a route, to a model policy permits", () => {
  const settings = config("http://upstream.test/v1")
  const promoted = routeOf("specialist:w", nanoTune)
  const served = PromotedRoutes.servedBy(settings, promoted)
  const byTier: Route = { model: "gpt-4o-mini", tier: "medium", via: "tier", notes: ["tier capped at medium by org"] }
  const policy = (rules: ReadonlyArray<object> = []) =>
    effectivePolicy(Schema.decodeUnknownSync(HarnessConfig)(configInput("http://upstream.test/v1", { policy: rules as any })).policy, {
      key_id: "k",
      user: "alice",
      team: null,
      project: "p1"
    })
  const note = (why: string) => `promotion ${promoted.id} (specialist:w) not followed: ${why}`

  it("a request routed by tier goes to the route's model at its tier, keeping the policy's notes", () => {
    const applied = PromotedRoutes.apply({ routed: byTier, promoted, served, policy: policy(), tiers: settings.tiers })
    assert.deepStrictEqual(applied.route, { model: nanoTune, tier: "medium", via: "promoted", notes: ["tier capped at medium by org"] })
    assert.strictEqual(Option.getOrThrow(applied.served).entry.upstream_model, nanoTune)
  })

  it("a forced model, a budget's downgrade and a client's permitted choice stand, and say the route was not followed", () => {
    for (
      const [via, why] of [["forced", "the model is forced"], ["downgrade", "a budget downgraded the request"], ["client", "the client named gpt-4o-mini"]] as const
    ) {
      const applied = PromotedRoutes.apply({ routed: { ...byTier, via }, promoted, served, policy: policy(), tiers: settings.tiers })
      assert.deepStrictEqual(applied.route, { ...byTier, via, notes: [...byTier.notes, note(why)] })
      assert.isTrue(Option.isNone(applied.served))
    }
  })

  it("a fine-tune of a blocked model, or of one above the key's max_tier, is not followed", () => {
    const blocked = PromotedRoutes.apply({ routed: byTier, promoted, served, policy: policy([{ scope: "org", blocked_models: ["gpt-4.1-nano"] }]), tiers: settings.tiers })
    assert.deepStrictEqual(blocked.route.notes, [...byTier.notes, note(`${nanoTune} (a fine-tune of gpt-4.1-nano) is blocked by org`)])
    const big = routeOf("specialist:w", "ft:gpt-4.1-2025-04-14:acme:writer:Fz3")
    const capped = PromotedRoutes.apply({
      routed: byTier,
      promoted: big,
      served: PromotedRoutes.servedBy(settings, big),
      policy: policy([{ scope: "user", id: "alice", max_tier: "medium" }]),
      tiers: settings.tiers
    })
    assert.strictEqual(capped.route.model, "gpt-4o-mini")
    assert.match(capped.route.notes.at(-1)!, /not followed: ft:gpt-4\.1-2025-04-14:acme:writer:Fz3 \(a fine-tune of gpt-4\.1\) is above the max_tier medium set by user:alice$/)
  })
})

describe("the harness follows promoted routes, end to end over HTTP", () => {
  it.scoped("a request naming its specialist goes to the promoted fine-tune once the harness read the route, priced at its rate; back to the tier's model after a rollback", () =>
    Effect.gen(function*() {
      const harness = yield* start(Array.from({ length: 7 }, () => ({ content: "ok", usage })))
      const client = harness.client(yield* harness.key())
      const route = yield* promote(harness, "specialist:writer", nanoTune)

      // Its copy is read again once it is refreshEvery old, not per request: until then the tier's model answers.
      yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")))
      yield* aPeriodPasses

      const { data: answer, response } = yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")).withResponse())
      assert.strictEqual(response.headers.get("x-autopilot-model"), nanoTune)
      assert.strictEqual(response.headers.get("x-autopilot-tier"), "simple")
      // ft:gpt-4.1-nano: $0.20 in and $0.80 out per million tokens, twice the base model's.
      assert.strictEqual(costAt(nanoTune), (1000 * 0.2 + 500 * 0.8) / 1e6)
      assert.strictEqual((answer.usage as any).cost_usd, costAt(nanoTune))
      const [row] = yield* harness.store.audit({ limit: 1 })
      assert.strictEqual(row?.model_requested, "auto")
      assert.strictEqual(row?.model_used, nanoTune)
      assert.strictEqual(row?.tier, "simple")
      assert.strictEqual(row?.cost_usd, costAt(nanoTune))
      assert.strictEqual(row?.policy_action, `routed by promotion ${route.id} (specialist:writer)`)

      // With the copy read, the plain-completion fast path follows it too; a stream takes the Effect path, and follows it.
      yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")))
      const streamed = yield* drain(() => client.chat.completions.create({ ...ask("hi"), stream: true }, naming("specialist=writer")))
      assert.isUndefined(streamed.error)
      // Without the header, or naming another specialist, the request is routed as before.
      yield* call(() => client.chat.completions.create(ask("hi")))
      yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=reviewer")))

      const rolledBack = yield* Effect.orDie(harness.promotions.rollback(route.id, "2026-01-02T00:00:00.000Z", "worse in production"))
      assert.isTrue(Option.isSome(rolledBack))
      yield* aPeriodPasses
      yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")))

      assert.deepStrictEqual(yield* models(harness.upstream), [
        "gpt-4.1-nano",
        nanoTune,
        nanoTune,
        nanoTune,
        "gpt-4.1-nano",
        "gpt-4.1-nano",
        "gpt-4.1-nano"
      ])
      const actions = (yield* harness.store.audit({})).map((r) => r.policy_action).reverse()
      assert.deepStrictEqual(actions, [
        "routed by tier",
        `routed by promotion ${route.id} (specialist:writer)`,
        `routed by promotion ${route.id} (specialist:writer)`,
        `routed by promotion ${route.id} (specialist:writer)`,
        "routed by tier",
        "routed by tier",
        "routed by tier"
      ])
    }))

  it.scoped("a node's route beats its blueprint's, which beats the specialist's; a batch item's node key (2.classify) is the node's", () =>
    Effect.gen(function*() {
      const harness = yield* start(Array.from({ length: 4 }, () => ({ content: "ok" })))
      const client = harness.client(yield* harness.key())
      const node = yield* promote(harness, "node:triage/classify", nanoTune)
      const blueprint = yield* promote(harness, "blueprint:triage", miniTune)
      const specialist = yield* promote(harness, "specialist:writer", "gpt-4.1")
      yield* aPeriodPasses
      for (const header of ["blueprint=triage;node=2.classify;specialist=writer", "blueprint=triage;node=summarize;specialist=writer", "specialist=writer", "node=classify"]) {
        yield* call(() => client.chat.completions.create(ask("hi"), naming(header)))
      }
      // A node alone names no blueprint: it matches no route.
      assert.deepStrictEqual(yield* models(harness.upstream), [nanoTune, miniTune, "gpt-4.1", "gpt-4.1-nano"])
      assert.deepStrictEqual((yield* harness.store.audit({})).map((r) => r.policy_action).reverse(), [
        `routed by promotion ${node.id} (node:triage/classify)`,
        `routed by promotion ${blueprint.id} (blueprint:triage)`,
        `routed by promotion ${specialist.id} (specialist:writer)`,
        "routed by tier"
      ])
    }))

  it.scoped("the Responses API follows a route as chat does", () =>
    Effect.gen(function*() {
      const harness = yield* start([{ content: "ok", usage }])
      const key = yield* harness.key()
      const route = yield* promote(harness, "blueprint:triage", miniTune)
      yield* aPeriodPasses
      const answer = yield* http(harness, "POST", "/v1/responses", { key, body: { model: "auto", input: "hi" }, headers: { "x-autopilot-route": "blueprint=triage" } })
      assert.strictEqual(answer.status, 200, answer.text)
      assert.strictEqual(answer.body.model, miniTune)
      assert.strictEqual(answer.body.usage.cost_usd, costAt(miniTune))
      assert.deepStrictEqual(yield* models(harness.upstream), [miniTune])
      const [row] = yield* harness.store.audit({ limit: 1 })
      assert.strictEqual(row?.policy_action, `routed by promotion ${route.id} (blueprint:triage)`)
    }))
})

describe("policy still wins over a promoted route", () => {
  it.scoped("a forced model, a blocked base, a budget's downgrade and a client's permitted model are kept, and the ledger says the route was not followed", () =>
    Effect.gen(function*() {
      const harness = yield* start(Array.from({ length: 5 }, () => ({ content: "ok" })), {
        policy: [
          { scope: "project", id: "locked", forced_model: "gpt-4.1" },
          { scope: "project", id: "nomini", blocked_models: ["gpt-4o-mini"] },
          { scope: "project", id: "picky", allow_client_model: true }
        ],
        budgets: [{ scope: "project", id: "broke", period: "daily", limit_usd: 0, action: "downgrade" }]
      })
      const route = yield* promote(harness, "specialist:writer", miniTune)
      yield* aPeriodPasses
      const not = (why: string) => `promotion ${route.id} (specialist:writer) not followed: ${why}`
      const asking = (project: string, body: Parameters<ReturnType<typeof harness.client>["chat"]["completions"]["create"]>[0]) =>
        Effect.gen(function*() {
          const client = harness.client(yield* harness.key({ user: project, project }))
          yield* call(() => client.chat.completions.create(body as any, naming("specialist=writer")))
          const [row] = yield* harness.store.audit({ limit: 1 })
          return [row?.model_used, row?.policy_action]
        })
      assert.deepStrictEqual(yield* asking("locked", ask("hi")), ["gpt-4.1", `routed by forced; model forced by project:locked; ${not("the model is forced")}`])
      assert.deepStrictEqual(
        yield* asking("nomini", ask("hi")),
        ["gpt-4.1-nano", `routed by tier; ${not(`${miniTune} (a fine-tune of gpt-4o-mini) is blocked by project:nomini`)}`]
      )
      assert.deepStrictEqual(
        yield* asking("broke", designRequest()),
        ["gpt-4.1-nano", `routed by downgrade; downgraded to the simple tier by a budget; ${not("a budget downgraded the request")}`]
      )
      assert.deepStrictEqual(yield* asking("picky", { ...ask("hi"), model: "gpt-4.1" }), ["gpt-4.1", `routed by client; ${not("the client named gpt-4.1")}`])
      // Without allow_client_model a named model is routed by the harness, and so follows the route.
      assert.deepStrictEqual(
        yield* asking("p1", { ...ask("hi"), model: "gpt-4.1" }),
        [miniTune, `routed by promotion ${route.id} (specialist:writer); client asked for gpt-4.1; routed by tier (allow_client_model is off)`]
      )
    }))

  it.scoped("a route served at its own endpoint (a trainer's server) the harness was not given is not followed, and that endpoint is never reached", () =>
    Effect.gen(function*() {
      const harness = yield* start([{ content: "ok" }])
      const trainer = yield* TestServer.make([{ content: "from the trainer" }])
      const route = yield* promote(harness, "specialist:writer", "writer-lora", trainer.baseURL)
      yield* aPeriodPasses
      const client = harness.client(yield* harness.key())
      const answer = yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")))
      assert.strictEqual(answer.choices[0]?.message.content, "ok")
      assert.deepStrictEqual(yield* trainer.requests, [])
      assert.deepStrictEqual(yield* models(harness.upstream), ["gpt-4.1-nano"])
      const [row] = yield* harness.store.audit({ limit: 1 })
      assert.strictEqual(
        row?.policy_action,
        `routed by tier; promotion ${route.id} (specialist:writer) not followed: writer-lora is served at ${new URL(trainer.baseURL).host}, which is not where this harness's upstreams serve it`
      )
    }))

  it.scoped("a route the harness's catalog lists, at the upstream the route names, is followed at its listed price", () =>
    Effect.gen(function*() {
      const harness = yield* startInProcess([{ content: "ok", usage }], {
        models: [
          { id: "gpt-4.1-nano", upstream: "test" },
          { id: "gpt-4o-mini", upstream: "test" },
          { id: "gpt-4.1", upstream: "test" },
          { id: "writer-lora", upstream: "test", input_per_mtok: 0.05, output_per_mtok: 0.1 }
        ]
      })
      const route = yield* promote(harness, "specialist:writer", "writer-lora", harness.upstream.baseURL)
      yield* aPeriodPasses
      const client = harness.client(yield* harness.key())
      yield* call(() => client.chat.completions.create(ask("hi"), naming("specialist=writer")))
      const [row] = yield* harness.store.audit({ limit: 1 })
      assert.strictEqual(row?.model_used, "writer-lora")
      assert.strictEqual(row?.policy_action, `routed by promotion ${route.id} (specialist:writer)`)
      assert.strictEqual(row?.cost_usd, (1000 * 0.05 + 500 * 0.1) / 1e6)
      assert.deepStrictEqual(yield* models(harness.upstream), ["writer-lora"])
    }))
})

describe("a run through the in-process harness follows a promoted route", () => {
  const writer = releaseNotesWriter

  it.scoped("its work calls, as the specialist's, go to the promoted fine-tune; its judge stays on the tier's model", () =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make([
        { content: "## Notes", usage },
        { content: JSON.stringify({ criteria_met: [true], notes: "done" }) }
      ])
      const database = yield* Layer.build(Database.layerSqlite(":memory:"))
      const onDatabase = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, database)
      const store = Harness.HarnessStore.layer
      const { key } = yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (s) => s.createKey({ user: "ana", project: "docs" })).pipe(Effect.provide(store)))
      // Promoted before the run: the harness the run starts reads it at once.
      const route = yield* onDatabase(Effect.flatMap(PromotionStore, (s) => s.promote(routeOf(`specialist:${writer.id}`, nanoTune))).pipe(
        Effect.provide(Promotions.layer)
      ))
      const layers = Layer.mergeAll(HarnessLlm.layerInProcess({ key: Redacted.make(key), harness: config(upstream.baseURL) }), Toolkit.layer([calculator]), Storage.layer)
      const result = yield* onDatabase(Mission.run({
        runId: "notes",
        goal: new Goal({ objective: "Release notes for 2.0", success_criteria: ["breaking changes first"] }),
        specialist: writer
      }).pipe(Effect.provide(layers)))
      assert.strictEqual(result.status, "completed")
      const requests = yield* upstream.requests
      assert.deepStrictEqual(requests.map((r) => r.body.model), [nanoTune, "gpt-4.1-nano"])
      // Oldest first: the work call, then the judge's.
      const rows = [...yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (s) => s.audit({})).pipe(Effect.provide(store)))].reverse()
      assert.deepStrictEqual(rows.map((r) => [r.model_requested, r.model_used, r.policy_action]), [
        ["auto:simple", nanoTune, `routed by promotion ${route.id} (specialist:${writer.id})`],
        ["auto:simple", "gpt-4.1-nano", "routed by tier"]
      ])
      assert.strictEqual(rows[0]?.cost_usd, costAt(nanoTune))
    }))
})
