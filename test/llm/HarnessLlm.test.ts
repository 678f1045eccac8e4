import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Stream } from "effect"
import * as Harness from "../../src/harness/index.js"
import { HarnessLlm } from "../../src/llm/HarnessLlm.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import * as Database from "../../src/store/Database.js"
import { config } from "../harness/fixtures.js"
import * as TestServer from "./openai-test-server.js"

const schema = { type: "object", properties: { severity: { type: "string", enum: ["low", "high"] } }, required: ["severity"] }

const request = (overrides: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [{ role: "user", content: "triage this ticket" }],
  tools: [],
  purpose: "act",
  metadata: { run_id: "ms-1.classify", iteration: 1, criteria: 1, node: "classify" },
  ...overrides
})

/** The in-process harness in front of a scripted upstream, called through HarnessLlm; returns what the upstream received. */
const bodiesSent = (calls: (llm: Llm["Type"]) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const upstream = yield* TestServer.make([{ content: "{\"severity\": \"low\"}" }, { content: "{\"severity\": \"low\"}" }, { content: "ok" }, { content: "ok" }])
    const database = yield* Layer.build(Database.layerSqlite(":memory:"))
    const { key } = yield* Effect.flatMap(Harness.HarnessStore, (s) => s.createKey({ user: "ana", project: "p" })).pipe(
      Effect.provide(Harness.HarnessStore.layer),
      Effect.provide(database)
    )
    const llm = HarnessLlm.layerInProcess({ key: Redacted.make(key), harness: config(upstream.baseURL) })
    yield* Effect.flatMap(Llm, calls).pipe(Effect.provide(llm), Effect.provide(database))
    return (yield* upstream.requests).map((r) => r.body)
  })

describe("HarnessLlm", () => {
  it.scoped("the harness forwards a node's temperature and structured-output request to the upstream as sent, in calls and streams", () =>
    Effect.gen(function*() {
      const bodies = yield* bodiesSent((llm) =>
        Effect.gen(function*() {
          yield* llm.complete(request({ temperature: 0, output_schema: { name: "support_triage.classify", schema } }))
          yield* Stream.runDrain(llm.stream(request({ temperature: 1.5, output_schema: { name: "classify", schema } })))
          yield* llm.complete(request())
        })
      )
      assert.strictEqual(bodies.length, 3)
      assert.strictEqual(bodies[0].temperature, 0)
      assert.deepStrictEqual(bodies[0].response_format, {
        type: "json_schema",
        json_schema: { name: "support_triage_classify", schema, strict: false }
      })
      assert.strictEqual(bodies[1].stream, true)
      assert.strictEqual(bodies[1].temperature, 1.5)
      assert.deepStrictEqual(bodies[1].response_format.json_schema.name, "classify")
      assert.notProperty(bodies[2], "temperature")
      assert.notProperty(bodies[2], "response_format")
    }))

  it.scoped("the harness forwards tool turns unchanged: the assistant's tool_calls and each tool message's tool_call_id, in calls and streams", () =>
    Effect.gen(function*() {
      const turns: LlmRequest["messages"] = [
        { role: "user", content: "triage ticket 7" },
        { role: "assistant", content: "", tool_calls: [{ id: "call_7", type: "function", function: { name: "read_file", arguments: "{\"path\":\"t7.md\"}" } }] },
        { role: "tool", tool_call_id: "call_7", content: "printer on fire" },
        { role: "user", content: "continue" }
      ]
      const bodies = yield* bodiesSent((llm) =>
        Effect.gen(function*() {
          yield* llm.complete(request({ messages: turns }))
          yield* Stream.runDrain(llm.stream(request({ messages: turns })))
        })
      )
      const onTheWire = [
        { role: "user", content: "triage ticket 7" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_7", type: "function", function: { name: "read_file", arguments: "{\"path\":\"t7.md\"}" } }] },
        { role: "tool", tool_call_id: "call_7", content: "printer on fire" },
        { role: "user", content: "continue" }
      ]
      assert.strictEqual(bodies.length, 2)
      assert.deepStrictEqual(bodies[0].messages, onTheWire)
      assert.deepStrictEqual(bodies[1].messages, onTheWire)
    }))

  it.scoped("a work (act) call names its blueprint, node and specialist in x-autopilot-route, called or streamed; no other call does, nor one that names nothing", () =>
    Effect.gen(function*() {
      // A plain HTTP server stands in for a served harness: it sees what any client of the harness would send.
      const server = yield* TestServer.make(Array.from({ length: 5 }, () => ({ content: "ok" })))
      const llm = yield* Effect.provide(Llm, HarnessLlm.layerHttp({ key: Redacted.make("hk-test"), url: server.baseURL.replace(/\/v1$/, "") }))
      const keys = { run_id: "ms-1.classify", iteration: 1, criteria: 1, blueprint: "support triage", node: "2.classify", specialist: "triager" }
      yield* llm.complete(request({ metadata: keys }))
      yield* Stream.runDrain(llm.stream(request({ metadata: { ...keys, blueprint: undefined, node: undefined } })))
      yield* llm.complete(request({ purpose: "judge", metadata: keys }))
      yield* llm.complete(request({ purpose: "critic", metadata: keys }))
      yield* llm.complete(request({ metadata: { run_id: "r", iteration: 1, criteria: 1 } }))
      const sent = (yield* server.requests).map((r) => [r.body.stream === true, r.headers["x-autopilot-route"]])
      assert.deepStrictEqual(sent, [
        [false, "blueprint=support%20triage;node=2.classify;specialist=triager"],
        [true, "specialist=triager"],
        [false, undefined],
        [false, undefined],
        [false, undefined]
      ])
    }))
})
