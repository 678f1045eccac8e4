import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, TestClock } from "effect"
import type OpenAI from "openai"
import { costOf, priceOf } from "../../src/budget/Pricing.js"
import type { AuditEntry } from "../../src/harness/HarnessStore.js"
import type * as TestServer from "../llm/openai-test-server.js"
import {
  type Answer,
  ask,
  call,
  closedPort,
  designRequest,
  drain,
  eventually,
  type Harness,
  http,
  refusal,
  start,
  startInProcess
} from "./fixtures.js"

/** `n` copies of one scripted reply. */
const replies = (n: number, reply: TestServer.Reply = {}): ReadonlyArray<TestServer.Reply> => Array.from({ length: n }, () => reply)

/** What the shared pricing table says `usage` on `model` costs. */
const tableCost = (model: string, input_tokens: number, output_tokens: number) =>
  costOf(Option.getOrThrow(priceOf(model)), { input_tokens, output_tokens })

/** Every error the harness sends is OpenAI's shape, and exactly it. */
const assertErrorShape = (body: any) => {
  assert.deepStrictEqual(Object.keys(body ?? {}), ["error"], JSON.stringify(body))
  assert.deepStrictEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"], JSON.stringify(body))
  assert.isString(body.error.message)
  assert.isString(body.error.type)
}

/** A plain-HTTP error answer: its status, shape, type and code. */
const assertError = (answer: Answer, status: number, type: string, code: string | null) => {
  assert.strictEqual(answer.status, status, answer.text)
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/)
  assertErrorShape(answer.body)
  assert.strictEqual(answer.body.error.type, type, answer.text)
  assert.strictEqual(answer.body.error.code, code, answer.text)
}

/** The newest ledger row. */
const lastRow = (harness: Harness) =>
  Effect.map(harness.store.audit({ limit: 1 }), ([row]) => {
    assert.isDefined(row, "the ledger has no row")
    return row as AuditEntry
  })

const usageOf = (completion: { usage?: unknown }) => completion.usage as OpenAI.CompletionUsage & { cost_usd: number }

const upstreamModels = (harness: Harness) => Effect.map(harness.upstream.requests, (requests) => requests.map((r) => r.body.model))

describe("harness, end to end over HTTP", () => {
  describe("routing by tier", () => {
    it.scoped("routes a short question to the simple tier's model and prices it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "4", usage: { prompt_tokens: 1000, completion_tokens: 500 } }])
        const client = harness.client(yield* harness.key())
        const { data: answer, response } = yield* call(() => client.chat.completions.create(ask("what is 2+2?")).withResponse())
        assert.strictEqual(answer.choices[0]?.message.content, "4")
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1-nano"])
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "simple")
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4.1-nano")
        // gpt-4.1-nano: $0.10 in, $0.40 out per million tokens.
        assert.closeTo(usageOf(answer).cost_usd, (1000 * 0.1 + 500 * 0.4) / 1e6, 1e-12)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.model_requested, "auto")
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.strictEqual(row.tier, "simple")
        assert.strictEqual(row.status, 200)
        assert.strictEqual(row.policy_action, "routed by tier")
        assert.isNull(row.budget_action)
        assert.isNull(row.error)
      }))

    it.scoped("routes a long multi-turn request with tools and code asking to design and refactor to the complex tier's model", () =>
      Effect.gen(function*() {
        const harness = yield* start([{
          toolCalls: [{ id: "call_2", name: "write_file", arguments: "{\"path\":\"src/cache.ts\"}" }],
          usage: { prompt_tokens: 3000, completion_tokens: 200 }
        }])
        const client = harness.client(yield* harness.key())
        const { data: answer, response } = yield* call(() => client.chat.completions.create(designRequest()).withResponse())
        assert.strictEqual(answer.choices[0]?.message.tool_calls?.[0]?.id, "call_2")
        const [forwarded] = yield* harness.upstream.requests
        assert.strictEqual(forwarded?.body.model, "gpt-4.1")
        // Everything else the client sent reaches the upstream as sent.
        assert.deepStrictEqual(forwarded?.body.tools, designRequest().tools)
        assert.deepStrictEqual(forwarded?.body.messages, designRequest().messages)
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "complex")
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4.1")
        const row = yield* lastRow(harness)
        assert.strictEqual(row.model_used, "gpt-4.1")
        assert.strictEqual(row.tier, "complex")
        assert.strictEqual(row.input_tokens, 3000)
        assert.strictEqual(row.output_tokens, 200)
        assert.closeTo(row.cost_usd, tableCost("gpt-4.1", 3000, 200), 1e-12)
      }))
  })

  describe("policy, end to end", () => {
    const policy = {
      policy: [
        { scope: "org", blocked_models: ["gpt-4.1"] },
        { scope: "team", id: "research", allow_client_model: true, max_tier: "medium" },
        { scope: "project", id: "p1", blocked_models: [] },
        { scope: "user", id: "alice", max_tier: "complex" },
        { scope: "project", id: "locked", forced_model: "gpt-4o-mini" }
      ]
    } as const

    it.scoped("lets the most specific rule win per field: user over team for max_tier, project over org for blocked_models", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(2), policy)
        const alice = harness.client(yield* harness.key({ user: "alice", team: "research", project: "p1" }))
        const bob = harness.client(yield* harness.key({ user: "bob", team: "research", project: "p1" }))
        yield* call(() => alice.chat.completions.create(designRequest()))
        const aliceRow = yield* lastRow(harness)
        yield* call(() => bob.chat.completions.create(designRequest()))
        const bobRow = yield* lastRow(harness)
        // alice: her own max_tier (complex) beats the team's, and p1 unblocks what the org blocks.
        // bob: the team's max_tier (medium) applies.
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1", "gpt-4o-mini"])
        assert.strictEqual(aliceRow.tier, "complex")
        assert.strictEqual(aliceRow.policy_action, "routed by tier")
        assert.strictEqual(bobRow.tier, "medium")
        assert.strictEqual(bobRow.policy_action, "routed by tier; tier capped at medium by team:research")
      }))

    it.scoped("sends every request of a project with a forced_model to it, whatever the tier or the client names", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(2), policy)
        const client = harness.client(yield* harness.key({ user: "erin", team: "research", project: "locked" }))
        const { response } = yield* call(() => client.chat.completions.create(designRequest("gpt-4.1-nano")).withResponse())
        yield* call(() => client.chat.completions.create(ask("hi")))
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4o-mini", "gpt-4o-mini"])
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4o-mini")
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "medium")
        const rows = yield* harness.store.audit({})
        // The team's cap still shows in the notes, but a forced model is not subject to it.
        assert.deepStrictEqual(rows.map((r) => r.policy_action), [
          "routed by forced; model forced by project:locked",
          "routed by forced; tier capped at medium by team:research; model forced by project:locked"
        ])
        assert.deepStrictEqual(rows.map((r) => r.model_requested), ["auto", "gpt-4.1-nano"])
      }))

    it.scoped("with allow_client_model, gives the client the model it names, at that model's tier", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), policy)
        const client = harness.client(yield* harness.key({ user: "alice", team: "research", project: "p1" }))
        const { response } = yield* call(() => client.chat.completions.create(designRequest("gpt-4.1-nano")).withResponse())
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1-nano"])
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "simple")
        const row = yield* lastRow(harness)
        assert.strictEqual(row.model_requested, "gpt-4.1-nano")
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.strictEqual(row.policy_action, "routed by client")
      }))

    it.scoped("with allow_client_model, still refuses a tier's model above the key's max_tier", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), policy)
        // bob's team caps him at medium; p1 unblocks gpt-4.1, but naming it must not lift the cap.
        const client = harness.client(yield* harness.key({ user: "bob", team: "research", project: "p1" }))
        const error = yield* refusal(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-4.1" }))
        assert.strictEqual(error.status, 403)
        assert.strictEqual(error.code, "model_not_permitted")
        assert.include(error.message, "model gpt-4.1 is above the max_tier medium set by team:research")
        yield* call(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-4o-mini" }))
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4o-mini"])
      }))

    it.scoped("without allow_client_model (the default), routes a named model by tier and says so in the ledger", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), policy)
        const client = harness.client(yield* harness.key({ user: "dave", project: "p2" }))
        const { response } = yield* call(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-4o-mini" }).withResponse())
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1-nano"])
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4.1-nano")
        const row = yield* lastRow(harness)
        assert.strictEqual(row.model_requested, "gpt-4o-mini")
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.strictEqual(row.policy_action, "routed by tier; client asked for gpt-4o-mini; routed by tier (allow_client_model is off)")
      }))

    it.scoped("without allow_client_model, routes even a blocked model the client names by tier rather than refusing it", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), policy)
        const client = harness.client(yield* harness.key({ user: "dave", project: "p2" }))
        yield* call(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-4.1" }))
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1-nano"])
        assert.strictEqual((yield* lastRow(harness)).model_requested, "gpt-4.1")
      }))

    it.scoped("refuses a blocked model the client names with 403 model_not_permitted, without calling the upstream", () =>
      Effect.gen(function*() {
        const harness = yield* start([], policy)
        const client = harness.client(yield* harness.key({ user: "carol", team: "research", project: "p2" }))
        const error = yield* refusal(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-4.1" }))
        assert.strictEqual(error.status, 403)
        assertErrorShape({ error: error.error })
        assert.strictEqual(error.type, "permission_error")
        assert.strictEqual(error.code, "model_not_permitted")
        assert.strictEqual(error.param, "model")
        assert.include(error.message, "model gpt-4.1 is blocked by org; allowed: any model but gpt-4.1")
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
        const row = yield* lastRow(harness)
        assert.strictEqual(row.status, 403)
        assert.isNull(row.model_used)
        assert.include(row.error ?? "", "blocked by org")
      }))

    it.scoped("lists on /v1/models only the models the key's policy permits, plus auto", () =>
      Effect.gen(function*() {
        const harness = yield* start([], policy)
        const ids = (key: string) =>
          call(() => harness.client(key).models.list()).pipe(Effect.map((page) => page.data.map((m) => m.id)))
        const carol = yield* harness.key({ user: "carol", team: "research", project: "p2" })
        const alice = yield* harness.key({ user: "alice", team: "research", project: "p1" })
        assert.deepStrictEqual(yield* ids(carol), ["auto", "gpt-4.1-nano", "gpt-4o-mini"])
        assert.deepStrictEqual(yield* ids(alice), ["auto", "gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1"])
        // bob's project unblocks gpt-4.1, but his team's max_tier keeps him from naming it, so it is not listed.
        const bob = yield* harness.key({ user: "bob", team: "research", project: "p1" })
        assert.deepStrictEqual(yield* ids(bob), ["auto", "gpt-4.1-nano", "gpt-4o-mini"])
        const listed = yield* call(() => harness.client(carol).models.list())
        assert.deepStrictEqual(listed.data[1], { id: "gpt-4.1-nano", object: "model", created: 0, owned_by: "acme" })
      }))
  })

  describe("budgets", () => {
    const budget = (action: "warn" | "downgrade" | "stop", limit_usd: number, period: "daily" | "monthly" = "daily") => ({
      budgets: [{ scope: "user" as const, id: "alice", period, limit_usd, action }]
    })
    // gpt-4.1-nano at 1000 in, 500 out: $0.0003, over a $0.0002 limit after one request.
    const priced = { usage: { prompt_tokens: 1000, completion_tokens: 500 } }

    it.scoped("warn: lets the request through, says so in x-autopilot-budget and in the ledger", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), budget("warn", 0))
        const client = harness.client(yield* harness.key())
        const { response } = yield* call(() => client.chat.completions.create(ask("hi")).withResponse())
        assert.strictEqual(response.headers.get("x-autopilot-budget"), "warn: user alice daily budget $0.00 is spent ($0.00)")
        assert.strictEqual((yield* harness.upstream.requests).length, 1)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.status, 200)
        assert.match(row.budget_action ?? "", /^warn: user alice daily budget/)
      }))

    it.scoped("answers a budget or model named in any script with headers Node can send, not a 500 after paying the upstream", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), (url) => ({
          upstreams: { test: { base_url: url } },
          models: [
            { id: "gpt-4.1-nano", upstream: "test" },
            { id: "gpt-4o-mini", upstream: "test" },
            { id: "Ünï-模型", upstream: "test", upstream_model: "gpt-4.1", input_per_mtok: 1, output_per_mtok: 1 }
          ],
          tiers: { simple: "Ünï-模型", medium: "gpt-4o-mini", complex: "gpt-4.1-nano" },
          budgets: [{ scope: "project", id: "项目", period: "daily", limit_usd: 0, action: "warn" }]
        }))
        const client = harness.client(yield* harness.key({ project: "项目" }))
        const { response } = yield* call(() => client.chat.completions.create(ask("hi")).withResponse())
        assert.strictEqual(decodeURIComponent(response.headers.get("x-autopilot-model") ?? ""), "Ünï-模型")
        assert.strictEqual(
          decodeURIComponent(response.headers.get("x-autopilot-budget") ?? ""),
          "warn: project 项目 daily budget $0.00 is spent ($0.00)"
        )
        assert.strictEqual((yield* lastRow(harness)).status, 200)
      }))

    it.scoped("downgrade: sends even a complex request to the simple tier's model", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), budget("downgrade", 0))
        const client = harness.client(yield* harness.key())
        const { response } = yield* call(() => client.chat.completions.create(designRequest()).withResponse())
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4.1-nano"])
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "simple")
        assert.match(response.headers.get("x-autopilot-budget") ?? "", /^downgrade: /)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.strictEqual(row.policy_action, "routed by downgrade; downgraded to the simple tier by a budget")
        assert.match(row.budget_action ?? "", /^downgrade: /)
      }))

    it.scoped("stop: once prior requests have spent the limit, answers 429 budget_exceeded without calling the upstream", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(2, priced), budget("stop", 0.0002))
        const client = harness.client(yield* harness.key())
        yield* call(() => client.chat.completions.create(ask("hi")))
        const error = yield* refusal(() => client.chat.completions.create(ask("hi again")))
        assert.strictEqual(error.status, 429)
        assertErrorShape({ error: error.error })
        assert.strictEqual(error.type, "budget_exceeded")
        assert.strictEqual(error.code, "budget_exceeded")
        assert.strictEqual(error.message, "429 user alice daily budget $0.00020 is spent ($0.00030)")
        assert.strictEqual(error.headers?.get("x-should-retry"), "false")
        assert.strictEqual((yield* harness.upstream.requests).length, 1)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.status, 429)
        assert.isNull(row.model_used)
        assert.strictEqual(row.cost_usd, 0)
        assert.match(row.budget_action ?? "", /^stop: /)
      }))

    it.scoped("stop with limit_usd 0 refuses the very first request", () =>
      Effect.gen(function*() {
        const harness = yield* start([], budget("stop", 0))
        const client = harness.client(yield* harness.key())
        const error = yield* refusal(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual(error.status, 429)
        assert.strictEqual(error.code, "budget_exceeded")
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
      }))

    it.scoped("a daily budget opens again on the next UTC day", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T23:59:00Z"))
        const harness = yield* start(replies(2, priced), budget("stop", 0.0002))
        const client = harness.client(yield* harness.key())
        yield* call(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual((yield* refusal(() => client.chat.completions.create(ask("hi")))).status, 429)
        yield* TestClock.setTime(new Date("2026-03-11T00:00:00Z"))
        yield* call(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual((yield* harness.upstream.requests).length, 2)
        const days = (yield* harness.store.audit({})).map((r) => [r.day, r.status])
        assert.deepStrictEqual(days, [["2026-03-11", 200], ["2026-03-10", 429], ["2026-03-10", 200]])
      }))

    it.scoped("a monthly budget stays spent through the month's other days and opens on the 1st of the next", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T12:00:00Z"))
        const harness = yield* start(replies(2, priced), budget("stop", 0.0002, "monthly"))
        const client = harness.client(yield* harness.key())
        yield* call(() => client.chat.completions.create(ask("hi")))
        yield* TestClock.setTime(new Date("2026-03-11T00:00:00Z"))
        assert.strictEqual((yield* refusal(() => client.chat.completions.create(ask("hi")))).status, 429)
        yield* TestClock.setTime(new Date("2026-03-31T23:59:59Z"))
        assert.strictEqual((yield* refusal(() => client.chat.completions.create(ask("hi")))).status, 429)
        yield* TestClock.setTime(new Date("2026-04-01T00:00:00Z"))
        yield* call(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual((yield* harness.upstream.requests).length, 2)
      }))

    it.scoped("counts spend already in the ledger when the harness starts", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T12:00:00Z"))
        const harness = yield* start([], budget("stop", 0.0002))
        const key = yield* harness.key()
        const [keyRecord] = yield* harness.store.listKeys().pipe(Effect.orDie)
        // A row as another harness process on the same database would have written it.
        yield* harness.store.record({
          at: "2026-03-10T08:00:00.000Z",
          key_id: keyRecord!.id,
          user: "alice",
          team: null,
          project: "p1",
          model_requested: "auto",
          model_used: "gpt-4.1-nano",
          tier: "simple",
          confidence: 1,
          input_tokens: 1000,
          output_tokens: 500,
          cost_usd: 0.0003,
          latency_ms: 10,
          status: 200,
          stream: false,
          policy_action: "routed by tier",
          budget_action: null,
          error: null
        }).pipe(Effect.orDie)
        const error = yield* refusal(() => harness.client(key).chat.completions.create(ask("hi")))
        assert.strictEqual(error.code, "budget_exceeded")
      }))
  })

  describe("budgets, with other writers on the ledger", () => {
    // A row as another harness process on the same database writes it (another `harness serve`, or a
    // mission running the harness in process), after this one has started counting.
    const elsewhere = (harness: Harness, cost_usd: number) =>
      Effect.flatMap(harness.store.listKeys(), ([key]) =>
        harness.store.record({
          at: "2026-03-10T09:00:00.000Z",
          key_id: key!.id,
          user: "alice",
          team: null,
          project: "p1",
          model_requested: "auto",
          model_used: "gpt-4.1-nano",
          tier: "simple",
          confidence: 1,
          input_tokens: 1000,
          output_tokens: 500,
          cost_usd,
          latency_ms: 10,
          status: 200,
          stream: false,
          policy_action: "routed by tier",
          budget_action: null,
          error: null
        })).pipe(Effect.orDie)

    it.scoped("counts what another process spends after this one began counting, once per counter even when two rules share it", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T12:00:00Z"))
        // Both on alice's day: one counter. $0.0003 a request.
        const harness = yield* start(replies(3, { usage: { prompt_tokens: 1000, completion_tokens: 500 } }), {
          budgets: [
            { scope: "user", id: "alice", period: "daily", limit_usd: 0.0001, action: "warn" },
            { scope: "user", id: "alice", period: "daily", limit_usd: 0.0008, action: "stop" }
          ]
        })
        const key = yield* harness.key()
        const budgetOf = Effect.map(
          call(() => harness.client(key).chat.completions.create(ask("hi")).withResponse()),
          ({ response }) => response.headers.get("x-autopilot-budget")
        )
        assert.isNull(yield* budgetOf)
        yield* elsewhere(harness, 0.0003)
        // $0.0006: warned, not stopped (a cost counted twice would make it $0.0012, over the stop).
        assert.strictEqual(yield* budgetOf, "warn: user alice daily budget $0.00010 is spent ($0.00060)")
        yield* elsewhere(harness, 0.0003)
        // $0.0012 with this process's second request: stopped.
        const error = yield* refusal(() => harness.client(key).chat.completions.create(ask("hi")))
        assert.strictEqual(error.code, "budget_exceeded")
        assert.strictEqual(error.message, "429 user alice daily budget $0.00080 is spent ($0.0012)")
        assert.strictEqual((yield* harness.upstream.requests).length, 2)
      }))
  })

  describe("keys", () => {
    it.scoped("turns away a request without a key: 401 missing_api_key", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        for (const headers of [{}, { authorization: "Basic YWxpY2U6c2VjcmV0" }, { authorization: "Bearer " }]) {
          assertError(yield* http(harness, "POST", "/v1/chat/completions", { headers, body: ask("hi") }), 401, "invalid_request_error", "missing_api_key")
        }
        assertError(yield* http(harness, "GET", "/v1/models"), 401, "invalid_request_error", "missing_api_key")
      }))

    it.scoped("turns away an unknown key: 401 invalid_api_key", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        for (const key of [`ahk_${"A".repeat(32)}`, "sk-not-ours", "garbage"]) {
          const error = yield* refusal(() => harness.client(key).chat.completions.create(ask("hi")))
          assert.strictEqual(error.status, 401)
          assert.strictEqual(error.code, "invalid_api_key")
          assert.notInclude(error.message, key)
        }
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
      }))

    it.scoped("turns away a revoked key: 401", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1))
        const admin = yield* harness.key({ admin: true })
        const created = yield* http(harness, "POST", "/admin/keys", { key: admin, body: { user: "bob", project: "p2" } })
        const client = harness.client(created.body.key)
        yield* call(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual((yield* http(harness, "DELETE", `/admin/keys/${created.body.id}`, { key: admin })).status, 200)
        const error = yield* refusal(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.code, "invalid_api_key")
      }))

    it.scoped("turns away a key past its expiry on the clock: 401", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T12:00:00Z"))
        const harness = yield* start(replies(1))
        const admin = yield* harness.key({ admin: true })
        const created = yield* http(harness, "POST", "/admin/keys", { key: admin, body: { user: "bob", project: "p2", expires_in_days: 1 } })
        assert.strictEqual(created.body.expires_at, "2026-03-11T12:00:00.000Z")
        const client = harness.client(created.body.key)
        yield* TestClock.adjust("23 hours")
        yield* call(() => client.chat.completions.create(ask("hi")))
        yield* TestClock.adjust("1 hour")
        const error = yield* refusal(() => client.chat.completions.create(ask("hi")))
        assert.strictEqual(error.status, 401)
        assert.strictEqual(error.code, "invalid_api_key")
      }))

    it.scoped("never shows a key in an answer, the ledger, the key list, or to the upstream", () =>
      Effect.gen(function*() {
        const harness = yield* start([{}, { status: 400, error: { message: "bad temperature" } }])
        const admin = yield* harness.key({ admin: true })
        const key = yield* harness.key({ user: "bob", project: "p2" })
        const answers = [
          yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") }),
          yield* http(harness, "POST", "/v1/chat/completions", { key, body: { ...ask("hi"), temperature: 9 } }),
          yield* http(harness, "POST", "/v1/chat/completions", { key, body: { model: "nope", messages: [] } }),
          yield* http(harness, "POST", "/v1/chat/completions", { key, body: { ...ask("hi"), model: "nope" } }),
          yield* http(harness, "GET", "/v1/models", { key }),
          yield* http(harness, "GET", "/admin/keys", { key }),
          yield* http(harness, "GET", "/admin/keys", { key: admin }),
          yield* http(harness, "GET", "/admin/audit", { key: admin }),
          yield* http(harness, "GET", "/admin/spend", { key: admin })
        ]
        const seen = [
          ...answers.map((a) => a.text),
          ...answers.flatMap((a) => [...a.headers.values()]),
          JSON.stringify(yield* harness.store.audit({})),
          JSON.stringify(yield* harness.store.listKeys().pipe(Effect.orDie)),
          JSON.stringify(yield* harness.upstream.requests)
        ]
        for (const secret of [key, admin]) {
          for (const text of seen) assert.notInclude(text, secret)
        }
        // The upstream gets the harness's own credentials, not the client's.
        const [forwarded] = yield* harness.upstream.requests
        assert.strictEqual(forwarded?.headers.authorization, "Bearer none")
      }))

    it.scoped("refuses a key that is not an admin key on every /admin route: 403", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        const routes = [
          ["GET", "/admin/keys"],
          ["POST", "/admin/keys"],
          ["DELETE", "/admin/keys/key_000000000000"],
          ["GET", "/admin/spend"],
          ["GET", "/admin/audit"]
        ] as const
        for (const [method, path] of routes) {
          const answer = yield* http(harness, method, path, { key, ...(method === "POST" ? { body: { user: "x", project: "y" } } : {}) })
          assertError(answer, 403, "permission_error", "admin_key_required")
        }
        assert.strictEqual((yield* harness.store.listKeys().pipe(Effect.orDie)).length, 1)
      }))

    it.scoped("lets an admin key create a key (shown once), list keys (never the key or its hash) and revoke one", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(new Date("2026-03-10T12:00:00Z"))
        const harness = yield* start([])
        const admin = yield* harness.key({ admin: true })
        const created = yield* http(harness, "POST", "/admin/keys", {
          key: admin,
          body: { user: "bob", team: "research", project: "p2", requests_per_minute: 30 }
        })
        assert.strictEqual(created.status, 201)
        const { key, ...record } = created.body
        assert.match(key, /^ahk_[A-Za-z0-9_-]{32}$/)
        assert.deepStrictEqual(record, {
          id: record.id,
          prefix: key.slice(0, 12),
          user: "bob",
          team: "research",
          project: "p2",
          admin: false,
          requests_per_minute: 30,
          created_at: "2026-03-10T12:00:00.000Z",
          expires_at: null,
          revoked_at: null
        })
        assert.strictEqual((yield* http(harness, "GET", "/v1/models", { key })).status, 200)

        const listed = yield* http(harness, "GET", "/admin/keys", { key: admin })
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(listed.body.keys[0], record)
        assert.strictEqual(listed.body.keys.length, 2)
        for (const listedKey of listed.body.keys) {
          assert.notProperty(listedKey, "key")
          assert.notProperty(listedKey, "hash")
        }

        yield* TestClock.adjust("1 hour")
        const revoked = yield* http(harness, "DELETE", `/admin/keys/${record.id}`, { key: admin })
        assert.deepStrictEqual([revoked.status, revoked.body], [200, { id: record.id, revoked: true }])
        assertError(yield* http(harness, "DELETE", `/admin/keys/${record.id}`, { key: admin }), 404, "invalid_request_error", "not_found")
        assertError(yield* http(harness, "GET", "/v1/models", { key }), 401, "invalid_request_error", "invalid_api_key")
        const after = yield* http(harness, "GET", "/admin/keys", { key: admin })
        assert.strictEqual(after.body.keys[0].revoked_at, "2026-03-10T13:00:00.000Z")
      }))

    it.scoped("refuses a new key's body that does not decode: 400 naming the field", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const admin = yield* harness.key({ admin: true })
        const cases = [
          [{ project: "p1" }, "user"],
          [{ user: "bob", project: "p1", requests_per_minute: 0 }, "requests_per_minute"],
          [{ user: "bob", project: "p1", expires_in_days: -1 }, "expires_in_days"],
          // Past what a Date can hold: once a 500 from an invalid time value.
          [{ user: "bob", project: "p1", expires_in_days: 1e9 }, "expires_in_days"],
          [{ user: "bob", project: "p1", hash: "x" }, "hash"]
        ] as const
        for (const [body, param] of cases) {
          const answer = yield* http(harness, "POST", "/admin/keys", { key: admin, body })
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.param, param, answer.text)
        }
      }))
  })

  describe("rate limit", () => {
    it.scoped("answers a key's third request in a minute at 2 per minute with 429 and Retry-After, and again after the minute", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(3))
        const client = harness.client(yield* harness.key({ requests_per_minute: 2 }))
        yield* call(() => client.chat.completions.create(ask("one")))
        yield* call(() => client.chat.completions.create(ask("two")))
        const error = yield* refusal(() => client.chat.completions.create(ask("three")))
        assert.strictEqual(error.status, 429)
        assertErrorShape({ error: error.error })
        assert.strictEqual(error.code, "rate_limit_exceeded")
        assert.strictEqual(error.headers?.get("retry-after"), "60")
        assert.strictEqual(error.headers?.get("retry-after-ms"), "60000")
        assert.isNull(error.headers?.get("x-should-retry") ?? null)
        assert.strictEqual((yield* harness.upstream.requests).length, 2)

        yield* TestClock.adjust("1 minute")
        yield* call(() => client.chat.completions.create(ask("four")))
        assert.strictEqual((yield* harness.upstream.requests).length, 3)
      }))

    it.scoped("counts each key on its own, and applies the config's requests_per_minute to keys without a limit", () =>
      Effect.gen(function*() {
        const harness = yield* start([], { requests_per_minute: 1 })
        const first = yield* harness.key()
        const second = yield* harness.key()
        assert.strictEqual((yield* http(harness, "GET", "/v1/models", { key: first })).status, 200)
        assert.strictEqual((yield* http(harness, "GET", "/v1/models", { key: second })).status, 200)
        assertError(yield* http(harness, "GET", "/v1/models", { key: first }), 429, "requests", "rate_limit_exceeded")
      }))
  })

  describe("admin spend and audit", () => {
    /** Four requests over three days, two projects and two models. */
    const traffic = Effect.gen(function*() {
      const harness = yield* start([
        { usage: { prompt_tokens: 1000, completion_tokens: 500 } },
        { usage: { prompt_tokens: 2000, completion_tokens: 1000 } },
        { usage: { prompt_tokens: 1000, completion_tokens: 500 } },
        { usage: { prompt_tokens: 100, completion_tokens: 100 } }
      ])
      const alice = harness.client(yield* harness.key({ user: "alice", team: "core", project: "p1" }))
      const bob = harness.client(yield* harness.key({ user: "bob", project: "p2" }))
      yield* TestClock.setTime(new Date("2026-03-10T10:00:00Z"))
      yield* call(() => alice.chat.completions.create(ask("hi")))
      yield* call(() => alice.chat.completions.create(designRequest()))
      yield* TestClock.setTime(new Date("2026-03-11T10:00:00Z"))
      yield* call(() => bob.chat.completions.create(ask("hi")))
      yield* TestClock.setTime(new Date("2026-03-12T10:00:00Z"))
      yield* call(() => bob.chat.completions.create({ ...ask("hi"), model: "gpt-4.1" }))
      return { harness, admin: yield* harness.key({ admin: true }) }
    })
    const nano = (i: number, o: number) => tableCost("gpt-4.1-nano", i, o)

    it.scoped("totals spend per project and model", () =>
      Effect.gen(function*() {
        const { admin, harness } = yield* traffic
        const answer = yield* http(harness, "GET", "/admin/spend?group_by=project,model", { key: admin })
        assert.strictEqual(answer.status, 200)
        const rows = answer.body.rows
        assert.deepStrictEqual(rows.map((r: any) => [r.project, r.model, r.requests, r.input_tokens, r.output_tokens]), [
          ["p1", "gpt-4.1", 1, 2000, 1000],
          ["p1", "gpt-4.1-nano", 1, 1000, 500],
          ["p2", "gpt-4.1-nano", 2, 1100, 600]
        ])
        assert.closeTo(rows[0].cost_usd, tableCost("gpt-4.1", 2000, 1000), 1e-12)
        assert.closeTo(rows[2].cost_usd, nano(1000, 500) + nano(100, 100), 1e-12)
      }))

    it.scoped("totals spend per day within from and to, both inclusive, and filters by user, team, project and model", () =>
      Effect.gen(function*() {
        const { admin, harness } = yield* traffic
        const spend = (query: string) =>
          Effect.map(http(harness, "GET", `/admin/spend?${query}`, { key: admin }), (a) => {
            assert.strictEqual(a.status, 200, a.text)
            return a.body.rows.map(({ cost_usd: _, ...row }: any) => row)
          })
        assert.deepStrictEqual(yield* spend("group_by=day&from=2026-03-11&to=2026-03-12"), [
          { day: "2026-03-11", requests: 1, input_tokens: 1000, output_tokens: 500 },
          { day: "2026-03-12", requests: 1, input_tokens: 100, output_tokens: 100 }
        ])
        assert.deepStrictEqual(yield* spend("group_by=day&to=2026-03-10"), [
          { day: "2026-03-10", requests: 2, input_tokens: 3000, output_tokens: 1500 }
        ])
        assert.deepStrictEqual(yield* spend("group_by=user&project=p2"), [
          { user: "bob", requests: 2, input_tokens: 1100, output_tokens: 600 }
        ])
        assert.deepStrictEqual(yield* spend("group_by=team&team=core"), [
          { team: "core", requests: 2, input_tokens: 3000, output_tokens: 1500 }
        ])
        assert.deepStrictEqual(yield* spend("group_by=project&model=gpt-4.1"), [
          { project: "p1", requests: 1, input_tokens: 2000, output_tokens: 1000 }
        ])
        assert.deepStrictEqual(yield* spend("group_by=user&user=nobody"), [])
        // The default grouping is project, then day.
        assert.deepStrictEqual((yield* spend("")).map((r: any) => [r.project, r.day]), [
          ["p1", "2026-03-10"],
          ["p2", "2026-03-11"],
          ["p2", "2026-03-12"]
        ])
      }))

    it.scoped("lists a project's ledger newest first, limited, with what was decided and what it cost", () =>
      Effect.gen(function*() {
        const { admin, harness } = yield* traffic
        const answer = yield* http(harness, "GET", "/admin/audit?project=p2&limit=1", { key: admin })
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.body.entries.length, 1)
        const [entry] = answer.body.entries
        const [bobKey] = (yield* harness.store.listKeys().pipe(Effect.orDie)).filter((k) => k.user === "bob")
        assert.deepStrictEqual(entry, {
          id: 4,
          day: "2026-03-12",
          at: "2026-03-12T10:00:00.000Z",
          key_id: bobKey!.id,
          user: "bob",
          team: null,
          project: "p2",
          model_requested: "gpt-4.1",
          model_used: "gpt-4.1-nano",
          tier: "simple",
          confidence: entry.confidence,
          input_tokens: 100,
          output_tokens: 100,
          cost_usd: nano(100, 100),
          // On the TestClock no time passes while the upstream answers.
          latency_ms: 0,
          status: 200,
          stream: false,
          policy_action: "routed by tier; client asked for gpt-4.1; routed by tier (allow_client_model is off)",
          budget_action: null,
          error: null
        })
        assert.isAbove(entry.confidence, 0.5)
        const next = yield* http(harness, "GET", `/admin/audit?project=p2&limit=1&before_id=${entry.id}`, { key: admin })
        assert.deepStrictEqual(next.body.entries.map((e: any) => [e.id, e.day]), [[3, "2026-03-11"]])
        const all = yield* http(harness, "GET", "/admin/audit", { key: admin })
        assert.deepStrictEqual(all.body.entries.map((e: any) => e.id), [4, 3, 2, 1])
        const byModel = yield* http(harness, "GET", "/admin/audit?model=gpt-4.1&day=2026-03-10", { key: admin })
        assert.deepStrictEqual(byModel.body.entries.map((e: any) => [e.id, e.tier]), [[2, "complex"]])
      }))
  })

  describe("streaming", () => {
    const content = "hello there world"

    it.scoped("streams the content and, when include_usage is set, a final usage chunk with cost_usd", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content, usage: { prompt_tokens: 1200, completion_tokens: 300 } }])
        const client = harness.client(yield* harness.key())
        const { chunks, error } = yield* drain(() =>
          client.chat.completions.create({ ...ask("hi"), stream: true, stream_options: { include_usage: true } })
        )
        assert.isUndefined(error)
        assert.strictEqual(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), content)
        const last = chunks.at(-1)!
        assert.deepStrictEqual(last.choices, [])
        const cost = tableCost("gpt-4.1-nano", 1200, 300)
        assert.strictEqual(last.usage?.prompt_tokens, 1200)
        assert.strictEqual(last.usage?.completion_tokens, 300)
        assert.closeTo((last.usage as any).cost_usd, cost, 1e-12)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.stream, true)
        assert.strictEqual(row.status, 200)
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.deepStrictEqual([row.input_tokens, row.output_tokens], [1200, 300])
        assert.closeTo(row.cost_usd, cost, 1e-12)
        assert.isNull(row.error)
      }))

    it.scoped("without include_usage sends no usage chunk, yet asks the upstream for usage and records it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content, usage: { prompt_tokens: 1200, completion_tokens: 300 } }])
        const client = harness.client(yield* harness.key())
        const { data: stream, response } = yield* call(() =>
          client.chat.completions.create({ ...ask("hi"), stream: true }).withResponse()
        )
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4.1-nano")
        assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/)
        const { chunks, error } = yield* drain(() => Promise.resolve(stream))
        assert.isUndefined(error)
        assert.strictEqual(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), content)
        assert.isTrue(chunks.every((c) => c.usage == null && c.choices.length > 0))
        const [forwarded] = yield* harness.upstream.requests
        assert.deepStrictEqual(forwarded?.body.stream_options, { include_usage: true })
        const row = yield* lastRow(harness)
        assert.deepStrictEqual([row.input_tokens, row.output_tokens], [1200, 300])
        assert.closeTo(row.cost_usd, tableCost("gpt-4.1-nano", 1200, 300), 1e-12)
        assert.isNull(row.error)
      }))

    it.scoped("relays an upstream error in mid-stream to the client as an error, and records it in the ledger", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content, streamError: "the model fell over" }])
        const client = harness.client(yield* harness.key())
        const { chunks, error } = yield* drain(() => client.chat.completions.create({ ...ask("hi"), stream: true }))
        assert.strictEqual(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), content)
        assert.isDefined(error)
        assert.include(error!.message, "the model fell over")
        assert.strictEqual(error!.type, "upstream_error")
        // The client stops reading at the error event, maybe before the harness has finished writing the row.
        const row = yield* eventually(Effect.map(lastRow(harness), (row) => {
          assert.strictEqual(row.stream, true)
          return row
        }))
        assert.strictEqual(row.stream, true)
        assert.include(row.error ?? "", "the model fell over")
      }))

    it.scoped("answers a stream the upstream refuses up front with a JSON error status, not an event stream", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ status: 503, error: { message: "overloaded" } }])
        const key = yield* harness.key()
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: { ...ask("hi"), stream: true } })
        assertError(answer, 502, "upstream_error", null)
        const row = yield* lastRow(harness)
        assert.strictEqual(row.status, 502)
        assert.strictEqual(row.stream, true)
      }))
  })

  describe("streaming, upstreams that do not stream completions", () => {
    const events = (...data: ReadonlyArray<unknown>): TestServer.Reply["raw"] & {} => ({
      contentType: "text/event-stream",
      body: data.map((d) => `data: ${JSON.stringify(d)}\n\n`).join("") + "data: [DONE]\n\n"
    })
    const chunk = (content: string, finish: string | null = null) => ({
      id: "c",
      object: "chat.completion.chunk",
      created: 1,
      model: "m",
      choices: [{ index: 0, delta: { content }, finish_reason: finish }]
    })

    it.scoped("answers 502, not an event stream, when a stream's 200 is a page, holds no chunks, or starts with something else", () =>
      Effect.gen(function*() {
        const noChunks = "upstream test: answered 200 with a stream that holds no chat completion chunks"
        const cases: ReadonlyArray<readonly [TestServer.Reply["raw"] & {}, string]> = [
          [{ contentType: "text/html", body: "<html><body>Welcome to nginx</body></html>" }, noChunks],
          [events(), noChunks],
          [events({ foo: 1 }, chunk("hi", "stop")), `upstream test: streamed something that is not a chat completion chunk: {"foo":1}`]
        ]
        const harness = yield* start(cases.map(([raw]) => ({ raw })))
        const key = yield* harness.key()
        for (const [raw, message] of cases) {
          const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: { ...ask("hi"), stream: true } })
          assertError(answer, 502, "upstream_error", null)
          assert.strictEqual(answer.body.error.message, message, raw.body)
          const row = yield* lastRow(harness)
          assert.deepStrictEqual([row.status, row.stream, row.error], [502, true, message])
          // Nothing the client could use came of it, and no usage was reported: nothing is charged.
          assert.deepStrictEqual([row.input_tokens, row.output_tokens, row.cost_usd], [0, 0, 0])
        }
      }))

    it.scoped("ends a stream with an error event at a chunk that is not a completion chunk, and records it, charged by estimate", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ raw: events(chunk("hello "), { foo: 1 }, chunk("world", "stop")) }])
        const client = harness.client(yield* harness.key())
        const { chunks, error } = yield* drain(() => client.chat.completions.create({ ...ask("hi"), stream: true }))
        assert.strictEqual(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "hello ")
        assert.isDefined(error)
        assert.strictEqual(error!.type, "upstream_error")
        assert.include(error!.message, `upstream test: streamed something that is not a chat completion chunk: {"foo":1}`)
        const row = yield* eventually(Effect.filterOrFail(lastRow(harness), (row) => row.stream))
        assert.strictEqual(row.status, 200)
        assert.include(row.error ?? "", "not a chat completion chunk")
        assert.include(row.error ?? "", "tokens estimated from characters")
        // The model did answer in part: what was sent and streamed is charged by estimate, as for a stream cut short.
        assert.isAbove(row.cost_usd, 0)
      }))
  })

  describe("streaming, relayed as sent", () => {
    it.scoped("relays each chunk as the upstream's bytes, untouched, and rewrites only the usage chunk to add cost_usd", () =>
      Effect.gen(function*() {
        // Spacing, field order, an id line and CRLFs no JSON encoder would reproduce: only bytes relayed as sent keep them.
        const first = `id: 1\r\ndata: {"object":"chat.completion.chunk", "id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"héllo"},"finish_reason":null}]}\r\n\r\n`
        const second = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" 👋"},"finish_reason":"stop"}]}\n\n`
        const usage = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":300}}\n\n`
        const harness = yield* start([{ raw: { contentType: "text/event-stream", body: `${first}: keep-alive\n\n${second}${usage}data: [DONE]\n\n` } }])
        const key = yield* harness.key()
        const answer = yield* http(harness, "POST", "/v1/chat/completions", {
          key,
          body: { ...ask("hi"), stream: true, stream_options: { include_usage: true } }
        })
        assert.strictEqual(answer.status, 200)
        assert.isTrue(answer.text.startsWith(`${first}${second}data: {`), answer.text)
        const [priced, done] = answer.text.slice(first.length + second.length).split("\n\n")
        const chunk = JSON.parse(priced!.slice("data: ".length))
        assert.deepStrictEqual(chunk.usage.prompt_tokens, 1200)
        assert.closeTo(chunk.usage.cost_usd, tableCost("gpt-4.1-nano", 1200, 300), 1e-12)
        assert.strictEqual(done, "data: [DONE]")
        const row = yield* eventually(Effect.filterOrFail(lastRow(harness), (row) => row.stream))
        assert.deepStrictEqual([row.status, row.input_tokens, row.output_tokens, row.error], [200, 1200, 300, null])
      }))
  })

  describe("abandoned", () => {
    it.scoped("writes the ledger row of a request whose client goes away before the upstream answers", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ delayMs: 2_000 }])
        const key = yield* harness.key()
        const outcome = yield* Effect.promise(async () => {
          const controller = new AbortController()
          setTimeout(() => controller.abort(), 200)
          return fetch(`${harness.url}/v1/chat/completions`, {
            method: "POST",
            signal: controller.signal,
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify(ask("hi"))
          }).then(() => "answered", () => "aborted")
        })
        assert.strictEqual(outcome, "aborted")
        yield* harness.upstream.aborted
        const row = yield* eventually(lastRow(harness))
        assert.strictEqual(row.status, 499)
        assert.strictEqual(row.stream, false)
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.strictEqual(row.error, "the client went away before the answer; tokens estimated from characters")
        // The prompt was sent, so it is charged, at about four characters a token.
        assert.isAbove(row.input_tokens, 0)
        assert.closeTo(row.cost_usd, costOf(priceOf("gpt-4.1-nano").pipe(Option.getOrThrow), { input_tokens: row.input_tokens, output_tokens: 0 }), 1e-15)
        assert.strictEqual((yield* harness.store.audit({})).length, 1)
      }))
  })

  describe("streaming, abandoned", () => {
    it.scoped("closes the upstream's connection when the client goes away mid-stream, and still writes the ledger row", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "one two three", usage: null, stall: true }])
        const client = harness.client(yield* harness.key())
        const first = yield* Effect.promise(async () => {
          const stream = await client.chat.completions.create({ ...ask("hi"), stream: true })
          for await (const chunk of stream) return chunk // leaving the loop aborts the request
          return undefined
        })
        assert.strictEqual(first?.choices[0]?.delta.role, "assistant")
        // The upstream stalls: only the harness closing it ends its reply.
        yield* harness.upstream.aborted
        const row = yield* eventually(lastRow(harness))
        assert.strictEqual(row.stream, true)
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        // Cut short before its usage: what was sent and streamed is charged by estimate, never as free.
        assert.isAbove(row.input_tokens, 0)
        assert.isAbove(row.cost_usd, 0)
        assert.include(row.error ?? "", "tokens estimated from characters")
      }))
  })

  describe("streaming, stalled upstream", () => {
    it.scoped("ends a stream that stays quiet for the upstream's timeout with an error event, and records it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "one two three", usage: null, stall: true }], (url) => ({
          upstreams: { test: { base_url: url, timeout_seconds: 30 } }
        }))
        const client = harness.client(yield* harness.key())
        const seen: Array<unknown> = []
        const reading = yield* Effect.fork(drain(() => client.chat.completions.create({ ...ask("hi"), stream: true }), seen))
        // Once what the upstream sent has reached the client, half a minute passes on the harness's clock.
        yield* eventually(Effect.filterOrFail(harness.upstream.requests, (r) => r.length === 1))
        yield* eventually(Effect.filterOrFail(Effect.sync(() => seen.length), (n) => n > 0))
        yield* TestClock.adjust("30 seconds")
        const { chunks, error } = yield* Fiber.join(reading)
        assert.isAbove(chunks.length, 0)
        assert.include(error?.message ?? "", "went quiet for 30s")
        yield* harness.upstream.aborted
        const row = yield* eventually(lastRow(harness))
        assert.include(row.error ?? "", "went quiet")
      }))
  })

  describe("upstream failures", () => {
    const failing = (reply: TestServer.Reply) =>
      Effect.gen(function*() {
        const harness = yield* start([reply])
        const key = yield* harness.key()
        const error = yield* refusal(() => harness.client(key).chat.completions.create(ask("hi")))
        assertErrorShape({ error: error.error })
        const row = yield* lastRow(harness)
        return { error, row }
      })

    it.scoped("answers an upstream 500 with 502 upstream_error, and records it", () =>
      Effect.gen(function*() {
        const { error, row } = yield* failing({ status: 500, error: { message: "boom" } })
        assert.strictEqual(error.status, 502)
        assert.strictEqual(error.type, "upstream_error")
        assert.include(error.message, "upstream test: answered 500")
        assert.strictEqual(row.status, 502)
        assert.strictEqual(row.model_used, "gpt-4.1-nano")
        assert.include(row.error ?? "", "answered 500")
      }))

    it.scoped("passes on an upstream 429 with its retry-after", () =>
      Effect.gen(function*() {
        const { error, row } = yield* failing({
          status: 429,
          headers: { "retry-after": "7" },
          error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" }
        })
        assert.strictEqual(error.status, 429)
        assert.strictEqual(error.headers?.get("retry-after"), "7")
        assert.strictEqual(error.headers?.get("retry-after-ms"), "7000")
        assert.include(error.message, "slow down")
        assert.strictEqual(row.status, 429)
      }))

    it.scoped("passes on an upstream 400 with the upstream's message", () =>
      Effect.gen(function*() {
        const { error, row } = yield* failing({
          status: 400,
          error: { message: "max_tokens is too large", type: "invalid_request_error", code: "invalid_value" }
        })
        assert.strictEqual(error.status, 400)
        assert.strictEqual(error.type, "invalid_request_error")
        assert.strictEqual(error.code, "invalid_value")
        assert.include(error.message, "max_tokens is too large")
        assert.strictEqual(row.status, 400)
        assert.include(row.error ?? "", "max_tokens is too large")
      }))

    it.scoped("answers 502, not 401, when the upstream refuses the harness's own key", () =>
      Effect.gen(function*() {
        const { error, row } = yield* failing({
          status: 401,
          error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" }
        })
        assert.strictEqual(error.status, 502)
        assert.strictEqual(error.type, "upstream_error")
        assert.isNull(error.code)
        assert.include(error.message, "Incorrect API key provided")
        assert.strictEqual(row.status, 502)
      }))

    it.scoped("sends the upstream its configured key and never repeats that key to the client or the ledger", () =>
      Effect.gen(function*() {
        const secret = "sk-upstream-secret-0123456789"
        yield* Effect.acquireRelease(
          Effect.sync(() => (process.env.HARNESS_TEST_UPSTREAM_KEY = secret)),
          () => Effect.sync(() => delete process.env.HARNESS_TEST_UPSTREAM_KEY)
        )
        const harness = yield* start(
          [(request) => ({ status: 400, error: { message: `you sent ${request.headers.authorization}` } })],
          (live) => ({ upstreams: { test: { base_url: live, api_key_env: "HARNESS_TEST_UPSTREAM_KEY" } } })
        )
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 400, "invalid_request_error", null)
        assert.strictEqual(answer.body.error.message, "upstream test: 400 you sent Bearer [redacted]")
        const [forwarded] = yield* harness.upstream.requests
        assert.strictEqual(forwarded?.headers.authorization, `Bearer ${secret}`)
        assert.notInclude(JSON.stringify(yield* harness.store.audit({})), secret)
      }))

    it.scoped("answers 502 when the upstream cannot be reached", () =>
      Effect.gen(function*() {
        const dead = yield* closedPort
        const harness = yield* start([], (live) => ({
          upstreams: { test: { base_url: live }, dead: { base_url: dead } },
          models: [
            { id: "gpt-4.1-nano", upstream: "dead" },
            { id: "gpt-4o-mini", upstream: "test" },
            { id: "gpt-4.1", upstream: "test" }
          ]
        }))
        const key = yield* harness.key()
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assertError(answer, 502, "upstream_error", null)
        assert.strictEqual(answer.body.error.message, "upstream dead: connection failed")
        const row = yield* lastRow(harness)
        assert.strictEqual(row.status, 502)
        assert.strictEqual(row.error, "upstream dead: connection failed")
      }))

    it.scoped("answers 502 when the upstream's 200 is not a completion", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ raw: { contentType: "application/json", body: "{not json" } }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 502, "upstream_error", null)
        assert.strictEqual((yield* lastRow(harness)).status, 502)
      }))

    it.scoped("answers any upstream error body in OpenAI's shape, passing the upstream's 4xx on, and records it", () =>
      Effect.gen(function*() {
        const bodies: ReadonlyArray<readonly [string, TestServer.Reply["raw"] & {}, RegExp]> = [
          ["a type that is not a string", { contentType: "application/json", body: `{"error":{"message":"bad request","type":123}}` }, /400 bad request/],
          ["no field of OpenAI's", { contentType: "application/json", body: `{"error":{"message":{"why":"nested"},"type":null,"code":456,"param":[1]}}` }, /400 \{"why":"nested"\}/],
          ["a body without error", { contentType: "application/json", body: `{"detail":"Not Found"}` }, /400 status code \(no body\)/],
          ["an error that is a string", { contentType: "application/json", body: `{"error":"nope"}` }, /400 "nope"/],
          ["an HTML page", { contentType: "text/html", body: "<html>\n<body>\n<h1>400 Bad Request</h1>\n</body>\n</html>" }, /400 <html> <body> <h1>400 Bad Request<\/h1>/],
          ["plain text", { contentType: "text/plain", body: "no" }, /400 no/],
          ["an empty body", { contentType: "application/json", body: "" }, /400 status code \(no body\)/]
        ]
        const harness = yield* start(bodies.map(([, raw]) => ({ status: 400, raw })))
        const key = yield* harness.key()
        for (const [what, , message] of bodies) {
          const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
          assert.strictEqual(answer.status, 400, `${what}: ${answer.text}`)
          assertErrorShape(answer.body)
          assert.match(answer.body.error.message, message, what)
          assert.notMatch(answer.body.error.message, /\n/, what)
          const row = yield* lastRow(harness)
          assert.strictEqual(row.status, 400, what)
          assert.strictEqual(row.model_used, "gpt-4.1-nano", what)
          assert.strictEqual(row.error, answer.body.error.message, what)
        }
        assert.strictEqual((yield* harness.store.audit({})).length, bodies.length)
      }))

    it.scoped("keeps a numeric code as its digits and a string param, and drops a type that is not a string", () =>
      Effect.gen(function*() {
        const harness = yield* start([{
          status: 422,
          raw: { contentType: "application/json", body: `{"error":{"message":"unprocessable","type":7,"code":422,"param":"messages"}}` }
        }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 422, "upstream_error", "422")
        assert.strictEqual(answer.body.error.param, "messages")
      }))

    it.scoped("answers an upstream 5xx HTML page with 502 in OpenAI's shape, on one line", () =>
      Effect.gen(function*() {
        const page = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n" + "<p>x</p>\n".repeat(500) + "</html>"
        const harness = yield* start([{ status: 503, raw: { contentType: "text/html", body: page } }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 502, "upstream_error", null)
        assert.match(answer.body.error.message, /^upstream test: answered 503: 503 <html> <head><title>503 Service Temporarily Unavailable/)
        assert.isAtMost(answer.body.error.message.length, 500)
        assert.strictEqual((yield* lastRow(harness)).status, 502)
      }))

    it.scoped("passes on an upstream's wait in every form: retry-after-ms, and Retry-After as an HTTP date on the harness's clock", () =>
      Effect.gen(function*() {
        const harness = yield* start([
          { status: 429, headers: { "retry-after-ms": "1500", "retry-after": "9" }, error: { message: "slow down" } },
          // The harness's clock stands at the epoch in tests.
          { status: 429, headers: { "retry-after": "Thu, 01 Jan 1970 00:00:07 GMT" }, error: { message: "slow down" } }
        ])
        const key = yield* harness.key()
        const ms = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assert.strictEqual(ms.status, 429)
        assert.strictEqual(ms.headers.get("retry-after-ms"), "1500")
        assert.strictEqual(ms.headers.get("retry-after"), "2")
        const date = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assert.strictEqual(date.headers.get("retry-after-ms"), "7000")
        assert.strictEqual(date.headers.get("retry-after"), "7")
      }))

    it.scoped("passes an upstream 503's Retry-After on with the 502 it answers", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ status: 503, headers: { "retry-after": "2" }, error: { message: "overloaded" } }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 502, "upstream_error", null)
        assert.strictEqual(answer.headers.get("retry-after"), "2")
        assert.isNull(answer.headers.get("x-should-retry"))
      }))

    it.scoped("tells the client not to retry what retrying cannot fix: a spent upstream quota, an upstream saying so, the harness's own key refused", () =>
      Effect.gen(function*() {
        const harness = yield* start([
          { status: 429, headers: { "retry-after": "7" }, error: { message: "You exceeded your current quota", type: "insufficient_quota", code: "insufficient_quota" } },
          { status: 503, headers: { "x-should-retry": "false" }, error: { message: "maintenance" } },
          { status: 401, error: { message: "Incorrect API key provided" } }
        ])
        const key = yield* harness.key()
        const quota = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assertError(quota, 429, "insufficient_quota", "insufficient_quota")
        assert.strictEqual(quota.headers.get("x-should-retry"), "false")
        assert.isNull(quota.headers.get("retry-after"))
        const maintenance = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assertError(maintenance, 502, "upstream_error", null)
        assert.strictEqual(maintenance.headers.get("x-should-retry"), "false")
        const refused = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assertError(refused, 502, "upstream_error", null)
        assert.strictEqual(refused.headers.get("x-should-retry"), "false")
      }))

    it.scoped("answers 502 for a 200 that is a page or JSON but no completion, recording it without charging an estimate", () =>
      Effect.gen(function*() {
        const notACompletion = "upstream test: answered 200 with something that is not a chat completion"
        const bodies: ReadonlyArray<readonly [TestServer.Reply["raw"] & {}, string]> = [
          [{ contentType: "text/html", body: "<html><body>Welcome to nginx</body></html>" }, `${notACompletion} (text that is not JSON: <html><body>Welcome to nginx</body></html>)`],
          [{ contentType: "application/json", body: JSON.stringify({ error: { message: "no such model" } }) }, `${notACompletion} (choices: is missing)`],
          [{ contentType: "application/json", body: JSON.stringify({ object: "chat.completion", choices: [] }) }, `${notACompletion} (choices: must hold at least one choice)`],
          [{ contentType: "text/plain", body: "" }, `${notACompletion} (an empty body)`],
          [{ contentType: "application/json", body: "" }, "upstream test: the answer could not be read: Unexpected end of JSON input"]
        ]
        const harness = yield* start(bodies.map(([raw]) => ({ raw })))
        const key = yield* harness.key()
        for (const [raw, why] of bodies) {
          const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
          assertError(answer, 502, "upstream_error", null)
          assert.strictEqual(answer.body.error.message, why, raw.body)
          const row = yield* lastRow(harness)
          assert.strictEqual(row.status, 502)
          assert.strictEqual(row.model_used, "gpt-4.1-nano")
          assert.strictEqual(row.error, answer.body.error.message)
          assert.deepStrictEqual([row.input_tokens, row.output_tokens, row.cost_usd], [0, 0, 0], raw.body)
        }
      }))

    it.scoped("charges a 200 that is no completion the usage it reports, since the upstream bills it", () =>
      Effect.gen(function*() {
        const body = JSON.stringify({ object: "chat.completion", choices: [], usage: { prompt_tokens: 900, completion_tokens: 0 } })
        const harness = yield* start([{ raw: { contentType: "application/json", body } }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("hi") })
        assertError(answer, 502, "upstream_error", null)
        const row = yield* lastRow(harness)
        assert.deepStrictEqual([row.status, row.input_tokens, row.output_tokens], [502, 900, 0])
        assert.closeTo(row.cost_usd, tableCost("gpt-4.1-nano", 900, 0), 1e-15)
      }))

    it.scoped("charges an answer without usage by estimate, and says so in the ledger", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "ok", usage: null }])
        const key = yield* harness.key()
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        assert.strictEqual(answer.status, 200)
        // The client is not told a made-up cost; only the ledger, which budgets read, carries the estimate.
        assert.isNull(answer.headers.get("x-autopilot-cost-usd"))
        assert.notProperty(answer.body.usage ?? {}, "cost_usd")
        const row = yield* lastRow(harness)
        assert.isAbove(row.input_tokens, 0)
        assert.isAbove(row.output_tokens, 0)
        assert.closeTo(
          row.cost_usd,
          costOf(priceOf("gpt-4.1-nano").pipe(Option.getOrThrow), { input_tokens: row.input_tokens, output_tokens: row.output_tokens }),
          1e-15
        )
        assert.strictEqual(row.error, "upstream reported no usage; tokens estimated from characters")
      }))
  })

  describe("bad input", () => {
    const post = (harness: Harness, key: string, body: unknown) => http(harness, "POST", "/v1/chat/completions", { key, body })

    it.scoped("refuses a body that is not JSON, or not a JSON object: 400", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        const malformed = yield* post(harness, key, "{\"model\": \"auto\", ")
        assertError(malformed, 400, "invalid_request_error", null)
        assert.match(malformed.body.error.message, /^the request body is not valid JSON/)
        for (const body of ["[1, 2]", "42", "null", "\"hi\""]) {
          const answer = yield* post(harness, key, body)
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.message, "the request body must be a JSON object")
        }
        assertError(yield* post(harness, key, ""), 400, "invalid_request_error", null)
      }))

    it.scoped("refuses a request without messages, or with a bad one, naming the field in param", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        const cases = [
          [{ model: "auto" }, "messages"],
          [{ model: "auto", messages: [] }, "messages"],
          [{ model: "auto", messages: "hi" }, "messages"],
          [{ model: "auto", messages: [{ role: "robot", content: "hi" }] }, "messages.0.role"],
          [{ messages: [{ role: "user", content: "hi" }] }, "model"],
          [{ ...ask("hi"), stream: "yes" }, "stream"]
        ] as const
        for (const [body, param] of cases) {
          const answer = yield* post(harness, key, body)
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.param, param, answer.text)
        }
        // A field with a few allowed values names them all, not just the first.
        const role = yield* post(harness, key, { model: "auto", messages: [{ role: "robot", content: "hi" }] })
        assert.strictEqual(
          role.body.error.message,
          "messages.0.role: Expected \"system\" | \"developer\" | \"user\" | \"assistant\" | \"tool\" | \"function\", actual \"robot\""
        )
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
      }))

    it.scoped("refuses a body nested deeper than 256 levels with 400, never a 500 or a 502 blaming the upstream", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1))
        const key = yield* harness.key()
        const deep = "[".repeat(100_000) + "]".repeat(100_000)
        for (
          const body of [
            `{"model": ${deep}, "messages": [{"role": "user", "content": "hi"}]}`,
            `{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": ${deep}}`,
            `{"model": "auto", "stream": true, "messages": [{"role": "user", "content": ${deep}}]}`
          ]
        ) {
          const answer = yield* post(harness, key, body)
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.message, "the request body nests deeper than 256 levels")
        }
        const admin = yield* harness.key({ admin: true })
        const newKey = yield* http(harness, "POST", "/admin/keys", { key: admin, body: `{"user": ${deep}, "project": "p"}` })
        assertError(newKey, 400, "invalid_request_error", null)
        // Brackets inside strings are not nesting, and 256 levels are fine.
        const nested = "[".repeat(250) + "\"[[[[[[[[[[\"" + "]".repeat(250)
        const fine = yield* post(harness, key, `{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "metadata": {"x": ${nested}}}`)
        assert.strictEqual(fine.status, 200, fine.text)
        assert.strictEqual((yield* harness.upstream.requests).length, 1)
      }))

    it.scoped("refuses an output cap that is not a finite number (1e400 parses as Infinity, then is sent as null)", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        for (const field of ["max_tokens", "max_completion_tokens"]) {
          const answer = yield* post(harness, key, `{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "${field}": 1e400}`)
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.param, field, answer.text)
        }
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
      }))

    it.scoped("answers an unknown model with 404 model_not_found listing the models there are", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const client = harness.client(yield* harness.key())
        const error = yield* refusal(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-5" }))
        assert.strictEqual(error.status, 404)
        assertErrorShape({ error: error.error })
        assert.strictEqual(error.code, "model_not_found")
        assert.strictEqual(error.param, "model")
        assert.strictEqual(error.message, "404 the model \"gpt-5\" does not exist here; use one of: auto, gpt-4.1-nano, gpt-4o-mini, gpt-4.1")
      }))

    it.scoped("lists, for an unknown model, only the models this key may name", () =>
      Effect.gen(function*() {
        const harness = yield* start([], { policy: [{ scope: "project", id: "p1", blocked_models: ["gpt-4.1"] }] })
        const client = harness.client(yield* harness.key())
        const error = yield* refusal(() => client.chat.completions.create({ ...ask("hi"), model: "gpt-5" }))
        assert.strictEqual(error.message, "404 the model \"gpt-5\" does not exist here; use one of: auto, gpt-4.1-nano, gpt-4o-mini")
      }))

    it.scoped("refuses a body over max_request_bytes with 413, with or without a content-length", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1), { max_request_bytes: 300 })
        const key = yield* harness.key()
        const big = JSON.stringify(ask("x".repeat(400)))
        assertError(yield* post(harness, key, big), 413, "invalid_request_error", "request_too_large")
        // Chunked, so the harness only learns the size while reading.
        const chunked = yield* Effect.promise(async () => {
          const response = await fetch(`${harness.url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: new ReadableStream({
              start(controller) {
                controller.enqueue(new TextEncoder().encode(big))
                controller.close()
              }
            }),
            duplex: "half"
          } as RequestInit)
          return { status: response.status, body: await response.json() as any }
        })
        assert.strictEqual(chunked.status, 413)
        assert.strictEqual(chunked.body.error.code, "request_too_large")
        // Just under the limit is fine.
        assert.strictEqual((yield* post(harness, key, ask("hi"))).status, 200)
        assert.strictEqual((yield* harness.upstream.requests).length, 1)
      }))

    it.scoped("answers an unknown route with a 404 error body", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        for (const [method, path] of [["GET", "/v1/nothing"], ["POST", "/v1/completions"], ["GET", "/v1/chat/completions"], ["GET", "/"]]) {
          const answer = yield* http(harness, method!, path!, { key })
          assertError(answer, 404, "invalid_request_error", "not_found")
          assert.strictEqual(answer.body.error.message, `no route ${method} ${path}`)
        }
      }))

    it.scoped("refuses an admin query that does not decode: 400 naming the parameter", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const admin = yield* harness.key({ admin: true })
        const cases = [
          ["/admin/spend?group_by=nonsense", "group_by"],
          ["/admin/spend?group_by=project,nonsense", "group_by"],
          ["/admin/spend?from=not-a-date", "from"],
          ["/admin/spend?to=2026-3-1", "to"],
          ["/admin/spend?colour=red", "colour"],
          ["/admin/audit?limit=0", "limit"],
          ["/admin/audit?limit=1001", "limit"],
          ["/admin/audit?limit=ten", "limit"],
          ["/admin/audit?before_id=-1", "before_id"],
          ["/admin/audit?day=yesterday", "day"]
        ] as const
        for (const [path, param] of cases) {
          const answer = yield* http(harness, "GET", path, { key: admin })
          assertError(answer, 400, "invalid_request_error", null)
          assert.strictEqual(answer.body.error.param, param, `${path}: ${answer.text}`)
        }
        const groupBy = yield* http(harness, "GET", "/admin/spend?group_by=project,nonsense", { key: admin })
        assert.strictEqual(
          groupBy.body.error.message,
          "group_by: must be a comma-separated list of user, team, project, model and day"
        )
      }))
  })

  describe("in process", () => {
    it.scoped("answers through a web handler as it does over HTTP, size limit included", () =>
      Effect.gen(function*() {
        const harness = yield* startInProcess([{ content: "4", usage: { prompt_tokens: 1000, completion_tokens: 500 } }], {
          max_request_bytes: 300
        })
        const key = yield* harness.key()
        const answer = yield* call(() => harness.client(key).chat.completions.create(ask("what is 2+2?")))
        assert.strictEqual(answer.choices[0]?.message.content, "4")
        assert.closeTo(usageOf(answer).cost_usd, tableCost("gpt-4.1-nano", 1000, 500), 1e-12)
        const tooBig = yield* Effect.promise(async () => {
          const response = await harness.fetch("http://harness.in-process/v1/chat/completions", {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify(ask("x".repeat(400)))
          })
          return { status: response.status, body: await response.json() as any }
        })
        assert.strictEqual(tooBig.status, 413)
        assert.strictEqual(tooBig.body.error.code, "request_too_large")
        assert.strictEqual((yield* harness.upstream.requests).length, 1)
        assert.strictEqual((yield* harness.store.audit({})).length, 1)
      }))
  })

  describe("request log", () => {
    /** A logfmt line's fields; the values in these tests need no quoting. */
    const fieldsOf = (line: string) => Object.fromEntries(line.split(" ").map((field) => field.split("=", 2) as [string, string]))

    it.scoped("writes one line per request: method, path, status, key id (never the key), models, tokens, cost and latency", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "4", usage: { prompt_tokens: 1000, completion_tokens: 500 } }])
        const key = yield* harness.key()
        yield* call(() => harness.client(key).chat.completions.create(ask("what is 2+2?")))
        yield* http(harness, "GET", "/v1/models", { key })
        yield* http(harness, "GET", "/v1/models?x=1")
        const lines = yield* harness.log
        assert.strictEqual(lines.length, 3, lines.join("\n"))
        const [chat, models, anonymous] = lines.map(fieldsOf)
        const row = yield* lastRow(harness)
        assert.deepStrictEqual(chat, {
          at: "1970-01-01T00:00:00.000Z",
          method: "POST",
          path: "/v1/chat/completions",
          status: "200",
          key_id: row.key_id,
          model: "auto",
          model_used: "gpt-4.1-nano",
          input_tokens: "1000",
          output_tokens: "500",
          cost_usd: String(row.cost_usd),
          latency_ms: "0"
        })
        assert.deepStrictEqual(models, { at: "1970-01-01T00:00:00.000Z", method: "GET", path: "/v1/models", status: "200", key_id: row.key_id, latency_ms: "0" })
        assert.deepStrictEqual(anonymous, { at: "1970-01-01T00:00:00.000Z", method: "GET", path: "/v1/models", status: "401", latency_ms: "0" })
        assert.notInclude(lines.join("\n"), key)
      }))

    it.scoped("logs a refusal with the ledger's view of it, and a failed upstream with the status the client got", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ status: 400, raw: { contentType: "application/json", body: `{"error":{"message":"bad","type":123}}` } }], {
          policy: [{ scope: "org", blocked_models: ["gpt-4.1"] }, { scope: "org", allow_client_model: true }]
        })
        const key = yield* harness.key()
        yield* http(harness, "POST", "/v1/chat/completions", { key, body: { ...ask("hi"), model: "gpt-4.1" } })
        yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("hi") })
        const [refused, failed] = (yield* harness.log).map(fieldsOf)
        assert.deepStrictEqual([refused?.status, refused?.model, refused?.model_used], ["403", "gpt-4.1", "-"])
        assert.deepStrictEqual([failed?.status, failed?.model, failed?.model_used, failed?.cost_usd], ["400", "auto", "gpt-4.1-nano", "0"])
      }))

    it.scoped("writes a streamed request's line when its stream ends, with the tokens its ledger row has", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "hello there", usage: { prompt_tokens: 1200, completion_tokens: 300 } }])
        const client = harness.client(yield* harness.key())
        const { error } = yield* drain(() => client.chat.completions.create({ ...ask("hi"), stream: true }))
        assert.isUndefined(error)
        const line = yield* eventually(Effect.flatMap(harness.log, (lines) => Effect.fromNullable(lines[0])))
        const fields = fieldsOf(line)
        assert.deepStrictEqual([fields.status, fields.input_tokens, fields.output_tokens], ["200", "1200", "300"])
        assert.closeTo(Number(fields.cost_usd), tableCost("gpt-4.1-nano", 1200, 300), 1e-12)
        assert.lengthOf(yield* harness.log, 1)
      }))

    it.scoped("logs a request whose client went away before the answer as 499, as its ledger row has it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ delayMs: 2_000 }])
        const key = yield* harness.key()
        const controller = new AbortController()
        const sent = yield* Effect.fork(Effect.promise(() =>
          fetch(`${harness.url}/v1/chat/completions`, {
            method: "POST",
            signal: controller.signal,
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify(ask("hi"))
          }).catch(() => undefined)
        ))
        // Gone once the upstream has the request and is still thinking.
        yield* eventually(Effect.filterOrFail(harness.upstream.requests, (requests) => requests.length === 1))
        controller.abort()
        yield* Fiber.join(sent)
        const line = yield* eventually(Effect.flatMap(harness.log, (lines) => Effect.fromNullable(lines[0])))
        assert.deepStrictEqual([fieldsOf(line).status, fieldsOf(line).model_used], ["499", "gpt-4.1-nano"])
      }))
  })

  describe("cost", () => {
    it.scoped("prices every answer by the shared pricing table for the model used, in the body, a header and the ledger", () =>
      Effect.gen(function*() {
        const usage = { prompt_tokens: 123_456, completion_tokens: 7_890 }
        const harness = yield* start(replies(3, { usage }), { policy: [{ scope: "org", allow_client_model: true }] })
        const client = harness.client(yield* harness.key())
        for (const model of ["gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1"]) {
          const { data, response } = yield* call(() => client.chat.completions.create({ ...ask("hi"), model }).withResponse())
          const expected = tableCost(model, usage.prompt_tokens, usage.completion_tokens)
          assert.strictEqual(usageOf(data).cost_usd, expected, model)
          assert.strictEqual(Number(response.headers.get("x-autopilot-cost-usd")), expected, model)
          const row = yield* lastRow(harness)
          assert.strictEqual(row.model_used, model)
          assert.strictEqual(row.cost_usd, expected, model)
        }
      }))

    it.scoped("relays the completion as the upstream sent it, every field in its order, adding only the cost to its usage", () =>
      Effect.gen(function*() {
        const sent = {
          id: "chatcmpl-1",
          object: "chat.completion",
          created: 1,
          model: "gpt-4.1-nano-2025-04-14",
          system_fingerprint: "fp_1",
          choices: [{ index: 0, message: { role: "assistant", content: "4", annotations: [] }, logprobs: null, finish_reason: "stop" }],
          usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11, prompt_tokens_details: { cached_tokens: 0 } },
          service_tier: "default"
        }
        const harness = yield* start([{ raw: { contentType: "application/json", body: JSON.stringify(sent) } }])
        const answer = yield* http(harness, "POST", "/v1/chat/completions", { key: yield* harness.key(), body: ask("what is 2+2?") })
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.text, JSON.stringify({ ...sent, usage: { ...sent.usage, cost_usd: tableCost("gpt-4.1-nano", 10, 1) } }))
      }))

    it.scoped("prices a catalog model by the upstream model it stands for, and forwards that name", () =>
      Effect.gen(function*() {
        const harness = yield* start(replies(1, { usage: { prompt_tokens: 1000, completion_tokens: 1000 } }), {
          models: [
            { id: "cheap", upstream: "test", upstream_model: "gpt-4o-mini" },
            { id: "gpt-4o-mini", upstream: "test" },
            { id: "gpt-4.1", upstream: "test" }
          ],
          tiers: { simple: "cheap", medium: "gpt-4o-mini", complex: "gpt-4.1" }
        })
        const client = harness.client(yield* harness.key())
        const answer = yield* call(() => client.chat.completions.create(ask("hi")))
        assert.deepStrictEqual(yield* upstreamModels(harness), ["gpt-4o-mini"])
        assert.strictEqual(usageOf(answer).cost_usd, tableCost("gpt-4o-mini", 1000, 1000))
        assert.strictEqual((yield* lastRow(harness)).model_used, "cheap")
      }))
  })
})
