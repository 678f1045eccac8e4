import { HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, FastCheck, Layer, Ref, Runtime } from "effect"
import * as Gateway from "../../src/harness/Gateway.js"
import { HarnessStore } from "../../src/harness/HarnessStore.js"
import * as LedgerWriter from "../../src/harness/LedgerWriter.js"
import * as PromotedRoutes from "../../src/harness/PromotedRoutes.js"
import * as Server from "../../src/harness/Server.js"
import * as Database from "../../src/store/Database.js"
import * as TestServer from "../llm/openai-test-server.js"
import { config, type ConfigInput, http } from "./fixtures.js"

// A blocked model and client choice allowed, so some requests are refused with a row; a high rate limit.
const overrides: Partial<ConfigInput> = {
  policy: [{ scope: "org", blocked_models: ["gpt-4o-mini"], allow_client_model: true }],
  requests_per_minute: 1_000_000
}

/** What the upstream answers, named in the request's `metadata` (forwarded as the client sent it). */
const replies = {
  ok: { content: "OK", usage: { prompt_tokens: 12, completion_tokens: 3 } },
  "no usage": { content: "a longer answer with no usage", usage: null },
  "429": { status: 429, error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" }, headers: { "retry-after": "2" } },
  "500": { status: 500, error: { message: "boom" } },
  "not a completion": { raw: { contentType: "application/json", body: `{"object":"page","usage":{"prompt_tokens":5,"completion_tokens":0}}` } }
} satisfies Record<string, TestServer.Reply>
type ReplyName = keyof typeof replies

/**
 * A harness on its own in-memory ledger in front of `upstream`, counting the calls the fast path makes.
 * `cached: false` leaves the KeyCache out, so no key is ever remembered and every request takes the Effect path.
 */
const harness = (upstream: TestServer.TestServer, cached: boolean) =>
  Effect.gen(function*() {
    const fastCalls = yield* Ref.make(0)
    const runSync = Runtime.runSync(yield* Effect.runtime<never>())
    const counting = Layer.effect(
      Gateway.Gateway,
      Effect.map(Gateway.Gateway, (gateway) => ({
        ...gateway,
        unsafe: {
          ...gateway.unsafe,
          complete: (...args: Parameters<typeof gateway.unsafe.complete>) => {
            runSync(Ref.update(fastCalls, (n) => n + 1))
            return gateway.unsafe.complete(...args)
          }
        }
      }))
    )
    const settings = config(upstream.baseURL, overrides)
    const writer = LedgerWriter.layer({ within: Duration.millis(settings.ledger_batch_ms) }).pipe(Layer.provide(HarnessStore.layer))
    const uncached = Gateway.layer(settings).pipe(
      Layer.provide(PromotedRoutes.layer),
      Layer.provideMerge(LedgerWriter.readsAfterWrites.pipe(Layer.provideMerge(Layer.merge(HarnessStore.layer, writer))))
    )
    const context = yield* Layer.build(
      Server.layer({ port: 0, host: "127.0.0.1", log: () => Effect.void }).pipe(
        Layer.provide(counting),
        Layer.provideMerge(cached ? Gateway.layerWithStore(settings) : uncached),
        Layer.provide(Database.layerSqlite(":memory:"))
      )
    ).pipe(Effect.orDie)
    const store = Context.get(context, HarnessStore)
    const key = (yield* Effect.orDie(store.createKey({ user: "alice", project: "p1" }))).key
    const url = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
    // Any authenticated route puts the key in the cache (where there is one).
    assert.strictEqual((yield* http({ url } as any, "GET", "/v1/models", { key })).status, 200)
    return { url, key, store, fastCalls: Ref.get(fastCalls) }
  })

const request = FastCheck.record({
  model: FastCheck.constantFrom("auto", "auto", "auto:complex", "auto:medium", "gpt-4.1", "gpt-4o-mini", "no-such-model"),
  messages: FastCheck.array(
    FastCheck.record({
      role: FastCheck.oneof({ weight: 12, arbitrary: FastCheck.constantFrom("system", "user", "assistant") }, FastCheck.constant("robot")),
      content: FastCheck.constantFrom("Say OK.", "Prove it, step by step, and weigh the trade-offs.", "```ts\nconst x = 1\n```", "")
    }),
    { minLength: 1, maxLength: 3 }
  ),
  max_tokens: FastCheck.option(FastCheck.integer({ min: 1, max: 9000 }), { nil: undefined }),
  tools: FastCheck.option(FastCheck.array(FastCheck.constant({ type: "function", function: { name: "f" } }), { maxLength: 5 }), { nil: undefined }),
  stream: FastCheck.constantFrom(undefined, false, null, true),
  metadata: FastCheck.record({ reply: FastCheck.constantFrom(...(Object.keys(replies) as Array<ReplyName>)) })
}, { requiredKeys: ["model", "messages", "metadata"] })

/** A request as JSON, or a body the harness must refuse. */
const body = FastCheck.oneof(
  { weight: 8, arbitrary: request.map((r) => JSON.stringify(r)) },
  { weight: 1, arbitrary: FastCheck.constantFrom("{", "[]", `{"model":"auto","messages":[]}`) }
)

/** What a client sees of an answer, but the date. */
const seen = (answer: { readonly status: number; readonly headers: Headers; readonly text: string }) => ({
  status: answer.status,
  headers: [...answer.headers].filter(([name]) => name !== "date"),
  text: answer.text
})

describe("PlainChat, the plain-completion fast path", () => {
  it.scoped("answers every request byte for byte as the Effect path does, and writes the same ledger row", () =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make(
        Array.from({ length: 400 }, () => (recorded: TestServer.RecordedRequest) => replies[(recorded.body?.metadata?.reply ?? "ok") as ReplyName])
      )
      const fast = yield* harness(upstream, true)
      const slow = yield* harness(upstream, false)
      const run = Runtime.runPromise(yield* Effect.runtime<never>())
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(body, (text) =>
            run(Effect.gen(function*() {
              const calls = (yield* upstream.requests).length
              const before = yield* fast.fastCalls
              const viaFast = yield* http(fast as any, "POST", "/v1/chat/completions", { key: fast.key, body: text })
              const forwarded = (yield* upstream.requests).length > calls
              const viaEffect = yield* http(slow as any, "POST", "/v1/chat/completions", { key: slow.key, body: text })
              assert.deepStrictEqual(seen(viaFast), seen(viaEffect), text)
              // Every plain request the gate let through went the fast way; nothing else did.
              const plain = !text.includes(`"stream":true`)
              assert.strictEqual((yield* fast.fastCalls) - before, forwarded && plain ? 1 : 0, text)
            }))),
          { numRuns: 120 }
        )
      )
      assert.strictEqual(yield* slow.fastCalls, 0)
      assert.isAbove(yield* fast.fastCalls, 10)
      const rows = (store: HarnessStore["Type"]) =>
        Effect.map(Effect.orDie(store.audit({ limit: 1000 })), (entries) => entries.map(({ id: _id, key_id: _key, ...row }) => row))
      const fastRows = yield* rows(fast.store)
      assert.isAbove(fastRows.length, 60)
      assert.deepStrictEqual(fastRows, yield* rows(slow.store))
    }))
})
