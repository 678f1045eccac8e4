import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Redacted, Ref, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as Pricing from "../../src/budget/Pricing.js"
import type { Step } from "../../src/domain/Step.js"
import * as Missions from "../../src/missions/Missions.js"
import * as PromotionStore from "../../src/store/PromotionStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import { diamond, runnerLayer } from "../missions/fixtures.js"
import { LlmError, PersistenceError } from "../../src/domain/Errors.js"
import { ModelRoute } from "../../src/finetune/ModelRoute.js"
import * as RoutedLlm from "../../src/finetune/RoutedLlm.js"
import type { Llm, LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm } from "../../src/llm/MockLlm.js"

const route = (scope: string, model: string, retired = false) =>
  new ModelRoute({
    id: `route-${model}`,
    scope,
    model,
    base_url: null,
    job_id: `ft-${model}`,
    evaluation_id: "eval-1",
    baseline_model: null,
    replaces: null,
    promoted_at: "2025-03-10T09:00:00.000Z",
    retired_at: retired ? "2025-03-10T10:00:00.000Z" : null,
    retired_reason: retired ? "rolled back" : null
  })

const request = (purpose: string, metadata: Partial<LlmRequest["metadata"]>, model?: string): LlmRequest => ({
  messages: [{ role: "user", content: "do the work" }],
  tools: [],
  purpose,
  ...(model === undefined ? {} : { model }),
  metadata: { run_id: "r1", iteration: 1, criteria: 1, ...metadata }
})

/** The mock behind routes held in a Ref (the store's `active`), and how often they were read. */
const setup = (initial: ReadonlyArray<ModelRoute>) =>
  Effect.gen(function*() {
    const routes = yield* Ref.make<ReadonlyArray<ModelRoute> | "unreadable">(initial)
    const reads = yield* Ref.make(0)
    const llm = yield* RoutedLlm.make({
      inner: yield* MockLlm.make(),
      routes: Effect.zipRight(
        Ref.update(reads, (n) => n + 1),
        Effect.flatMap(Ref.get(routes), (r) => r === "unreadable" ? Effect.fail(new PersistenceError({ message: "database is locked", busy: true })) : Effect.succeed(r))
      ),
      serving: { endpoints: false }
    })
    const modelOf = (r: LlmRequest) => Effect.map(llm.complete(r), (response) => response.model)
    return { llm, routes, reads, modelOf }
  })

/** An OpenAI-compatible server on 127.0.0.1 that answers every chat completion, and remembers who asked for what. */
const servingServer = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly seen: Array<{ readonly model: string; readonly authorization: string | undefined }>; readonly server: http.Server }>((resume) => {
    const seen: Array<{ model: string; authorization: string | undefined }> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (chunk) => (body += chunk))
      req.on("end", () => {
        const model = JSON.parse(body).model as string
        seen.push({ model, authorization: req.headers.authorization })
        res.setHeader("content-type", "application/json")
        res.end(JSON.stringify({
          id: "c1",
          object: "chat.completion",
          created: 0,
          model,
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "served" } }],
          usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12, cost_usd: 0.00001 }
        }))
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`, seen, server })))
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((done) => server.close(() => done())))
)

describe("RoutedLlm", () => {
  it.effect("a work call takes the most specific active route: a blueprint's node, then the blueprint, then the specialist", () =>
    Effect.gen(function*() {
      const { modelOf } = yield* setup([
        route("specialist:coder", "ft:coder"),
        route("blueprint:triage", "ft:triage"),
        route("node:triage/classify", "ft:classify"),
        route("blueprint:old", "ft:old", true)
      ])
      assert.strictEqual(yield* modelOf(request("act", { specialist: "coder" })), "ft:coder")
      assert.strictEqual(yield* modelOf(request("act", { blueprint: "triage", node: "reply", specialist: "coder" })), "ft:triage")
      // A batch item's node (`2.classify`) is the node.
      assert.strictEqual(yield* modelOf(request("act", { blueprint: "triage", node: "2.classify", specialist: "coder" })), "ft:classify")
      // Retired routes, and calls from nowhere routed, keep the provider's default.
      assert.strictEqual(yield* modelOf(request("act", { blueprint: "old" })), MockLlm.defaultModel)
      assert.strictEqual(yield* modelOf(request("act", {})), MockLlm.defaultModel)
    }))

  it.effect("only work calls follow a route, and a run's explicit model beats it", () =>
    Effect.gen(function*() {
      const { llm, modelOf } = yield* setup([route("specialist:coder", "ft:coder")])
      assert.strictEqual(yield* modelOf(request("act", { specialist: "coder" }, "gpt-4.1")), "gpt-4.1")
      for (const purpose of ["judge", "critic", "slots", "replay"]) {
        assert.strictEqual(yield* modelOf(request(purpose, { specialist: "coder" })), MockLlm.defaultModel, purpose)
      }
      // Streamed calls route the same way.
      const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(llm.stream(request("act", { specialist: "coder" }))))
      const done = chunks.at(-1)!
      assert.strictEqual(done._tag === "Done" ? done.response.model : "no Done chunk", "ft:coder")
    }))

  it.effect("a call naming the model a route was measured against (a daemon's --model) takes the route; one naming another keeps its own", () =>
    Effect.gen(function*() {
      const { modelOf } = yield* setup([new ModelRoute({ ...route("specialist:coder", "ft:coder"), baseline_model: "gpt-4o" })])
      assert.strictEqual(yield* modelOf(request("act", { specialist: "coder" }, "gpt-4o")), "ft:coder")
      assert.strictEqual(yield* modelOf(request("act", { specialist: "coder" }, "gpt-4.1")), "gpt-4.1")
      assert.strictEqual(yield* modelOf(request("act", { specialist: "coder" })), "ft:coder")
    }))

  it.effect("a routed model that refuses for good hands that call to the provider's default; a transient failure is the runtime's to retry", () =>
    Effect.gen(function*() {
      const calls: Array<string | undefined> = []
      const failing = (transient: boolean): Llm["Type"] => ({
        complete: (r) =>
          Effect.suspend(() => {
            calls.push(r.model)
            return r.model?.startsWith("ft:") ? Effect.fail(new LlmError({ message: "model not found", transient })) : Effect.succeed({ content: "ok", tool_calls: [], usage: { input_tokens: 1, output_tokens: 1 }, model: r.model ?? "default" })
          }),
        stream: (r) => Stream.fromEffect(Effect.map(failing(transient).complete(r), (response) => ({ _tag: "Done" as const, response })))
      })
      const routes = Effect.succeed([route("specialist:coder", "ft:coder")])
      const permanent = yield* RoutedLlm.make({ inner: failing(false), routes, serving: { endpoints: false } })
      assert.strictEqual((yield* permanent.complete(request("act", { specialist: "coder" }))).model, "default")
      assert.deepStrictEqual(calls, ["ft:coder", undefined])
      const streamed = Chunk.toReadonlyArray(yield* Stream.runCollect(permanent.stream(request("act", { specialist: "coder" }))))
      assert.strictEqual(streamed.at(-1)?._tag === "Done" ? streamed.at(-1)!._tag : "none", "Done")
      const transient = yield* RoutedLlm.make({ inner: failing(true), routes, serving: { endpoints: false } })
      const error = yield* Effect.flip(transient.complete(request("act", { specialist: "coder" })))
      assert.isTrue(error.transient)
    }))

  it.effect("routes are read at most every refreshEvery: a rollback elsewhere reaches the process within it, and an unreadable table keeps the last copy", () =>
    Effect.gen(function*() {
      const { modelOf, reads, routes } = yield* setup([route("specialist:coder", "ft:coder")])
      const coder = request("act", { specialist: "coder" })
      assert.strictEqual(yield* modelOf(coder), "ft:coder")
      yield* Ref.set(routes, [])
      assert.strictEqual(yield* modelOf(coder), "ft:coder")
      assert.strictEqual(yield* Ref.get(reads), 1)
      yield* TestClock.adjust(RoutedLlm.refreshEvery)
      assert.strictEqual(yield* modelOf(coder), MockLlm.defaultModel)
      assert.strictEqual(yield* Ref.get(reads), 2)

      yield* Ref.set(routes, [route("specialist:coder", "ft:again")])
      yield* TestClock.adjust(RoutedLlm.refreshEvery)
      assert.strictEqual(yield* modelOf(coder), "ft:again")
      yield* Ref.set(routes, "unreadable")
      yield* TestClock.adjust(RoutedLlm.refreshEvery)
      assert.strictEqual(yield* modelOf(coder), "ft:again")
    }))

  it.scoped("a route served elsewhere is called there, with the serving key and never the provider's; one served where the provider is goes through it", () =>
    Effect.gen(function*() {
      const trainer = yield* servingServer
      const inner = yield* MockLlm.make()
      // The serving key is for the trainer's origin; the provider's endpoint is elsewhere.
      const serving = { endpoints: true, own: "http://provider.example/v1", key: { value: Redacted.make("sk-serving"), origin: new URL(trainer.url).origin } }
      const elsewhere = yield* RoutedLlm.clientFor(inner, serving, { model: "lora-7b", base_url: trainer.url })
      const answered = yield* elsewhere.complete(request("act", {}, "lora-7b"))
      // A model of its own has no price in the table: the server's own figure is what the call cost.
      assert.deepStrictEqual([answered.model, answered.content, answered.cost_usd], ["lora-7b", "served", 0.00001])
      assert.deepStrictEqual(trainer.seen, [{ model: "lora-7b", authorization: "Bearer sk-serving" }])
      // A key bound to another origin is not sent to this one.
      const elsewhereKeyless = yield* RoutedLlm.clientFor(inner, { ...serving, key: { value: Redacted.make("sk-serving"), origin: "https://api.openai.com" } }, { model: "lora-7b", base_url: trainer.url })
      yield* elsewhereKeyless.complete(request("act", {}, "lora-7b"))
      assert.deepStrictEqual(trainer.seen[1], { model: "lora-7b", authorization: "Bearer none" })
      // Where the provider serves it (trailing slash or not), or with a provider that serves any name, the provider's own client.
      assert.strictEqual(yield* RoutedLlm.clientFor(inner, serving, { model: "ft:x", base_url: "http://provider.example/v1/" }), inner)
      assert.strictEqual(yield* RoutedLlm.clientFor(inner, { endpoints: false }, { model: "lora-7b", base_url: trainer.url }), inner)
      assert.strictEqual(yield* RoutedLlm.clientFor(inner, serving, { model: "ft:x", base_url: null }), inner)
    }))

  it.scoped("a mission's node with a promoted route works on the route's model, charged at its price; the other nodes keep the default", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-routed-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const model = "ft:gpt-4o-mini-2024-07-18:acme:right:abc123"
      const layer = runnerLayer(path.join(dir, "a.db"), dir)
      const steps = yield* Effect.gen(function*() {
        yield* Effect.flatMap(PromotionStore.PromotionStore, (store) => store.promote(route("node:diamond/right", model))).pipe(Effect.provide(PromotionStore.layer))
        const missions = yield* Missions.Missions
        const made = yield* missions.create({ project: "default", goal: "decide and report", blueprint: diamond(), slots: {}, missing: [], actor: "test", reason: "test" })
        yield* missions.approve("default", made.mission_id, { actor: "test" })
        const script = path.join(dir, "script.json")
        fs.writeFileSync(script, JSON.stringify({ model: "gpt-4o", nodes: { split: [{ content: "{\"go\": false}" }], right: [{ content: "Went right." }] } }))
        const ran = yield* Missions.run("default", made.mission_id, { actor: "test", llm: { provider: "mock", mock_script: script } })
        assert.strictEqual(ran.mission.status, "completed")
        const store = yield* StepStore
        return {
          split: yield* store.recent(`${made.mission_id}.split`, 10),
          right: yield* store.recent(`${made.mission_id}.right`, 10)
        }
      }).pipe(Effect.provide(layer))
      const act = (s: ReadonlyArray<Step>) => s.flatMap((step) => step.calls).filter((c) => c.purpose === "act")
      const [right] = act(steps.right)
      assert.strictEqual(right?.model_used, model)
      assert.strictEqual(right?.cost_usd, Pricing.costOf({ model: "ft:gpt-4o-mini", input_per_mtok: 0.3, output_per_mtok: 1.2 }, right!))
      assert.deepStrictEqual(act(steps.split).map((c) => c.model_used), ["gpt-4o"])
    }))
})
