import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { Goal } from "../../src/domain/Goal.js"
import * as Harness from "../../src/harness/index.js"
import { HarnessLlm } from "../../src/llm/HarnessLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Database from "../../src/store/Database.js"
import * as Storage from "../../src/store/Storage.js"
import { calculator } from "../../src/tools/Calculator.js"
import { Toolkit } from "../../src/tools/Tool.js"
import * as TestServer from "../llm/openai-test-server.js"
import { ask, call, config, configInput, designRequest, refusal, startInProcess, releaseNotesWriter } from "./fixtures.js"

describe("harness: a client naming the tier (auto:simple, auto:medium, auto:complex)", () => {
  it.scoped("is routed at that tier, whatever the request's content suggests, and the ledger says so", () =>
    Effect.gen(function*() {
      const harness = yield* startInProcess([{ content: "a" }, { content: "b" }])
      const client = harness.client(yield* harness.key())
      const short = yield* call(() => client.chat.completions.create({ ...ask("what is 2+2?"), model: "auto:complex" }).withResponse())
      assert.strictEqual(short.response.headers.get("x-autopilot-tier"), "complex")
      assert.strictEqual(short.response.headers.get("x-autopilot-model"), "gpt-4.1")
      const long = yield* call(() => client.chat.completions.create(designRequest("auto:simple")).withResponse())
      assert.strictEqual(long.response.headers.get("x-autopilot-model"), "gpt-4.1-nano")
      const rows = yield* harness.store.audit({})
      assert.deepStrictEqual(
        rows.map((row) => [row.model_requested, row.tier, row.model_used, row.confidence, row.policy_action]).sort(),
        [["auto:complex", "complex", "gpt-4.1", 1, "routed by tier"], ["auto:simple", "simple", "gpt-4.1-nano", 1, "routed by tier"]]
      )
      assert.deepStrictEqual((yield* harness.upstream.requests).map((r) => r.body.model).sort(), ["gpt-4.1", "gpt-4.1-nano"])
    }))

  it.scoped("stays under the key's max_tier", () =>
    Effect.gen(function*() {
      const harness = yield* startInProcess([{ content: "a" }], { policy: [{ scope: "user", id: "alice", max_tier: "medium" }] })
      const client = harness.client(yield* harness.key())
      const { response } = yield* call(() => client.chat.completions.create({ ...ask("hi"), model: "auto:complex" }).withResponse())
      assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4o-mini")
      const [row] = yield* harness.store.audit({})
      assert.match(row?.policy_action ?? "", /tier capped at medium/)
    }))

  it.scoped("a tier that does not exist is an unknown model", () =>
    Effect.gen(function*() {
      const harness = yield* startInProcess([])
      const client = harness.client(yield* harness.key())
      const error = yield* refusal(() => client.chat.completions.create({ ...ask("hi"), model: "auto:huge" }))
      assert.strictEqual(error.status, 404)
      assert.strictEqual(error.code, "model_not_found")
      assert.deepStrictEqual(yield* harness.upstream.requests, [])
    }))
})

describe("a mission run as a specialist through the harness", () => {
  const writer = releaseNotesWriter

  /** Runs one mission in process through the harness, and returns the models the ledger says were asked for and used. */
  const ledgerOf = (options: { readonly model?: string }) =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make([
        { content: "## Notes" },
        { content: JSON.stringify({ criteria_met: [true], notes: "done" }) }
      ])
      const database = yield* Layer.build(Database.layerSqlite(":memory:"))
      const onDatabase = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, database)
      const store = Harness.HarnessStore.layer
      const { key } = yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (s) => s.createKey({ user: "ana", project: "docs" })).pipe(Effect.provide(store)))
      const harness = config(upstream.baseURL, configInput(upstream.baseURL, { policy: [{ scope: "org", allow_client_model: true }] }))
      const layers = Layer.mergeAll(HarnessLlm.layerInProcess({ key: Redacted.make(key), harness }), Toolkit.layer([calculator]), Storage.layer)
      const result = yield* onDatabase(Mission.run({
        runId: "notes",
        goal: new Goal({ objective: "Release notes for 2.0", success_criteria: ["breaking changes first"] }),
        specialist: writer,
        ...(options.model === undefined ? {} : { llm: { provider: "harness", model: options.model } })
      }).pipe(Effect.provide(layers)))
      assert.strictEqual(result.status, "completed")
      const rows = yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (s) => s.audit({})).pipe(Effect.provide(store)))
      return rows.map((row) => [row.model_requested, row.model_used])
    })

  it.scoped("asks the harness for the specialist's tier on every call", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* ledgerOf({}), [["auto:simple", "gpt-4.1-nano"], ["auto:simple", "gpt-4.1-nano"]])
    }))

  it.scoped("a model named for the run wins over the tier", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* ledgerOf({ model: "gpt-4.1" }), [["gpt-4.1", "gpt-4.1"], ["gpt-4.1", "gpt-4.1"]])
    }))
})
