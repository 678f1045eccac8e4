import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Option, Ref, Schema, Stream, TestClock } from "effect"
import * as Budget from "../../src/budget/Budget.js"
import { BudgetPolicy, BudgetUsage } from "../../src/domain/Budget.js"
import { LlmError } from "../../src/domain/Errors.js"
import { Breaker as BreakerSettings, defaultPolicy } from "../../src/domain/Healing.js"
import { Llm, type LlmRequest, type LlmResponse } from "../../src/llm/Llm.js"
import * as Breaker from "../../src/missions/Breaker.js"
import * as NodeLlm from "../../src/missions/NodeLlm.js"
import type { Journal } from "../../src/runtime/Journal.js"
import * as ModelCalls from "../../src/runtime/ModelCalls.js"

const unavailable = new LlmError({ message: "model gpt-4o at openai: 503 Service Unavailable", transient: true })
const badKey = new LlmError({ message: "model gpt-4o at openai: 401 Incorrect API key provided", transient: false })
const schema = { name: "verdict", schema: { type: "object", properties: { changed: { type: "boolean" } }, required: ["changed"] } }

const request = (purpose: string, fields: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [{ role: "user", content: "compare the vendors" }],
  tools: [],
  purpose,
  model: "gpt-4o",
  metadata: { run_id: "ms-1.analyze", iteration: 1, criteria: 1 },
  ...fields
})

/** A provider that records what it was asked and answers (or fails) as `answer` says, by call number. */
const provider = (name: string, answer: (call: number) => Option.Option<LlmError> = () => Option.none(), model?: string) =>
  Effect.gen(function*() {
    const asked = yield* Ref.make<ReadonlyArray<LlmRequest>>([])
    const reply = (req: LlmRequest) =>
      Effect.flatMap(Ref.updateAndGet(asked, (all) => [...all, req]), (all) =>
        Option.match(answer(all.length), {
          onSome: Effect.fail,
          onNone: (): Effect.Effect<LlmResponse> =>
            Effect.succeed({ content: `${name} answers`, tool_calls: [], usage: { input_tokens: 10, output_tokens: 5 }, model: req.model ?? `${name}-default` })
        }))
    const llm: Llm["Type"] = {
      complete: reply,
      stream: (req) =>
        Stream.flatMap(Stream.fromEffect(reply(req)), (response) =>
          Stream.make({ _tag: "Delta" as const, text: response.content }, { _tag: "Done" as const, response }))
    }
    return { provider: { name, llm, ...(model === undefined ? {} : { model }) } satisfies NodeLlm.Provider, asked: Ref.get(asked) }
  })

const failing = (error: LlmError) => () => Option.some(error)

const mission = (primary: NodeLlm.Provider, fallback: Option.Option<NodeLlm.Provider>, failures = 3) =>
  Effect.map(Breaker.make(Schema.decodeSync(BreakerSettings)({ failures })), (breaker) => ({
    providers: { primary, fallback, breaker, policy: defaultPolicy } satisfies NodeLlm.Providers,
    breaker
  }))

/** A journal that keeps what is emitted: ModelCalls only reports retries through it. */
const journal = Effect.map(Ref.make<ReadonlyArray<string>>([]), (emitted) => ({
  emitted: Ref.get(emitted),
  journal: {
    emitNow: (body) => Ref.update(emitted, (all) => [...all, body.kind]),
    emit: (body) => Ref.update(emitted, (all) => [...all, body.kind]),
    emitAll: (bodies) => Ref.update(emitted, (all) => [...all, ...bodies.map((b) => b.kind)]),
    commit: (write) => write([])
  } satisfies Journal
}))

/** One call as a node's child run makes it: through the runtime's ModelCalls, retried on the Clock. */
const runtimeCall = (llm: Llm["Type"], live = false) =>
  Effect.gen(function*() {
    const budget = yield* Budget.make(new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 }), BudgetUsage.zero)
    const { emitted, journal: j } = yield* journal
    const calls = yield* ModelCalls.make({ runId: "ms-1.analyze", criteria: 1, model: "gpt-4o", budget, journal: j, onDelta: () => Effect.void }).pipe(
      Effect.provideService(Llm, llm)
    )
    const fiber = yield* Effect.fork(Effect.exit(calls.call({ messages: [], tools: [], purpose: "act" }, 1, { live })))
    yield* TestClock.adjust("1 minute")
    return { exit: yield* Fiber.join(fiber), retries: Effect.map(emitted, (all) => all.filter((k) => k === "model_retry").length) }
  })

describe("NodeLlm", () => {
  describe("the attempt's parameters", () => {
    it.effect("act calls get the node, the temperature, the model and the output schema", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const { providers } = yield* mission(primary.provider, Option.none())
        const node = yield* NodeLlm.make(providers)({ node: "analyze", temperature: 0, model: "gpt-4.1", output_schema: schema, provider: "primary" })
        const response = yield* node.llm.complete(request("act", { temperature: 0.7 }))
        const [asked] = yield* primary.asked
        assert.strictEqual(asked?.metadata.node, "analyze")
        assert.strictEqual(asked?.metadata.run_id, "ms-1.analyze", "the rest of the metadata is kept")
        assert.strictEqual(asked?.temperature, 0)
        assert.strictEqual(asked?.model, "gpt-4.1")
        assert.deepStrictEqual(asked?.output_schema, schema)
        assert.strictEqual(response.model, "gpt-4.1")
        assert.deepStrictEqual(yield* node.providerUsed, Option.some("openai"))
      }))

    it.effect("judge and critic calls keep their own model and temperature, and get only the node", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const { providers } = yield* mission(primary.provider, Option.none())
        const node = yield* NodeLlm.make(providers)({ node: "analyze", temperature: 0, model: "gpt-4.1", output_schema: schema, provider: "primary" })
        yield* node.llm.complete(request("judge"))
        yield* node.llm.complete(request("critic", { temperature: 0.2 }))
        const [judge, critic] = yield* primary.asked
        assert.deepStrictEqual(judge, { ...request("judge"), metadata: { ...request("judge").metadata, node: "analyze" } })
        assert.strictEqual(critic?.temperature, 0.2)
        assert.strictEqual(critic?.model, "gpt-4o")
        assert.isUndefined(critic?.output_schema)
      }))

    it.effect("an attempt without parameters leaves act calls as the runtime made them, but for the node", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const { providers } = yield* mission(primary.provider, Option.none())
        const node = yield* NodeLlm.make(providers)(NodeLlm.first("collect"))
        yield* node.llm.complete(request("act", { temperature: 1 }))
        assert.deepStrictEqual(yield* primary.asked, [{ ...request("act", { temperature: 1 }), metadata: { ...request("act").metadata, node: "collect" } }])
      }))
    it.effect("every call carries the mission's blueprint beside the node, so a route promoted for either applies", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const { providers } = yield* mission(primary.provider, Option.none())
        const node = yield* NodeLlm.make(providers)({ ...NodeLlm.first("2.classify"), blueprint: "support_triage" })
        yield* node.llm.complete(request("act"))
        yield* node.llm.complete(request("judge"))
        for (const asked of yield* primary.asked) assert.deepInclude(asked.metadata, { node: "2.classify", blueprint: "support_triage" })
      }))
  })

  describe("the provider of each call", () => {
    it.effect("an attempt moved to the fallback sends every call there, with the fallback's own model", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const fallback = yield* provider("anthropic", undefined, "claude-sonnet-4-5")
        const { providers } = yield* mission(primary.provider, Option.some(fallback.provider))
        const node = yield* NodeLlm.make(providers)({ node: "analyze", model: "gpt-4.1", provider: "fallback" })
        const response = yield* node.llm.complete(request("act"))
        yield* node.llm.complete(request("judge"))
        assert.deepStrictEqual(yield* primary.asked, [])
        assert.deepStrictEqual((yield* fallback.asked).map((r) => r.model), ["claude-sonnet-4-5", "claude-sonnet-4-5"])
        assert.strictEqual(response.model, "claude-sonnet-4-5")
        assert.deepStrictEqual(yield* node.providerUsed, Option.some("anthropic"))
      }))

    it.effect("an attempt moved to a fallback the mission does not have stays on the primary", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const { providers } = yield* mission(primary.provider, Option.none())
        const node = yield* NodeLlm.make(providers)({ node: "analyze", provider: "fallback" })
        yield* node.llm.complete(request("act"))
        assert.strictEqual((yield* primary.asked).length, 1)
      }))

    it.effect("a primary that always fails opens its breaker, and the runtime's next retry of the same call goes to the fallback", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai", failing(unavailable))
        const fallback = yield* provider("anthropic")
        const { breaker, providers } = yield* mission(primary.provider, Option.some(fallback.provider), 3)
        const node = yield* NodeLlm.make(providers)(NodeLlm.first("analyze"))
        const { exit, retries } = yield* runtimeCall(node.llm)
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        if (Exit.isSuccess(exit)) {
          assert.strictEqual(exit.value.response.content, "anthropic answers")
          assert.strictEqual(exit.value.call.attempts, 4, "three failures on the primary, then the fallback")
        }
        assert.strictEqual((yield* primary.asked).length, 3)
        assert.strictEqual((yield* fallback.asked).length, 1)
        assert.strictEqual(yield* retries, 3)
        assert.deepStrictEqual(yield* breaker.opened, ["openai"])
        assert.deepStrictEqual(yield* node.lastError, Option.some(unavailable))
        assert.deepStrictEqual(yield* node.providerUsed, Option.some("anthropic"))

        // The breaker is the mission's: the next node's first call goes straight to the fallback.
        const next = yield* NodeLlm.make(providers)(NodeLlm.first("report"))
        yield* next.llm.complete(request("act"))
        assert.strictEqual((yield* primary.asked).length, 3)
        assert.strictEqual((yield* fallback.asked).length, 2)
      }))

    it.effect("the same through a streamed call", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai", failing(unavailable))
        const fallback = yield* provider("anthropic")
        const { breaker, providers } = yield* mission(primary.provider, Option.some(fallback.provider), 2)
        const node = yield* NodeLlm.make(providers)(NodeLlm.first("analyze"))
        const { exit } = yield* runtimeCall(node.llm, true)
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        assert.strictEqual((yield* primary.asked).length, 2)
        assert.strictEqual((yield* fallback.asked).length, 1)
        assert.deepStrictEqual(yield* breaker.opened, ["openai"])
        assert.deepStrictEqual(yield* node.providerUsed, Option.some("anthropic"))
      }))

    it.effect("without a fallback the call fails after the runtime's retries, all on the primary", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai", failing(unavailable))
        const { breaker, providers } = yield* mission(primary.provider, Option.none(), 3)
        const node = yield* NodeLlm.make(providers)(NodeLlm.first("analyze"))
        const { exit } = yield* runtimeCall(node.llm)
        assert.deepStrictEqual(exit, Exit.fail(unavailable))
        assert.strictEqual((yield* primary.asked).length, ModelCalls.maxAttempts)
        assert.deepStrictEqual(yield* breaker.opened, ["openai"])
        assert.deepStrictEqual(yield* node.providerUsed, Option.none())
      }))

    it.effect("a permanent failure is not the kind the breaker counts, and the call is not moved", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai", failing(badKey))
        const fallback = yield* provider("anthropic")
        const { breaker, providers } = yield* mission(primary.provider, Option.some(fallback.provider), 1)
        const node = yield* NodeLlm.make(providers)(NodeLlm.first("analyze"))
        const error = yield* Effect.flip(node.llm.complete(request("act")))
        assert.strictEqual(error, badKey)
        assert.deepStrictEqual(yield* breaker.opened, [])
        yield* Effect.flip(node.llm.complete(request("act")))
        assert.strictEqual((yield* fallback.asked).length, 0)
        assert.deepStrictEqual(yield* node.lastError, Option.some(badKey))
      }))

    it.effect("a failing fallback is counted on its own breaker, not the primary's", () =>
      Effect.gen(function*() {
        const primary = yield* provider("openai")
        const fallback = yield* provider("anthropic", (n) => n === 1 ? Option.some(unavailable) : Option.none())
        const { breaker, providers } = yield* mission(primary.provider, Option.some(fallback.provider), 1)
        const node = yield* NodeLlm.make(providers)({ node: "analyze", provider: "fallback" })
        const failed = yield* Stream.runCollect(node.llm.stream(request("act"))).pipe(Effect.flip)
        assert.strictEqual(failed, unavailable)
        assert.deepStrictEqual(yield* breaker.opened, ["anthropic"])
        const chunks = yield* Stream.runCollect(node.llm.stream(request("act")))
        assert.strictEqual(Chunk.size(chunks), 2)
        assert.deepStrictEqual(yield* node.providerUsed, Option.some("anthropic"))
      }))
  })
})

