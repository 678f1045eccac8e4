import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import type { LlmChoice } from "../../src/domain/LlmChoice.js"
import type { LlmRequest } from "../../src/llm/Llm.js"
import * as LlmLayer from "../../src/llm/LlmLayer.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Database from "../../src/store/Database.js"
import * as TestServer from "./openai-test-server.js"

const env = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))
const openai: LlmChoice = { provider: "openai" }
const request: LlmRequest = {
  messages: [{ role: "user", content: "build the thing" }],
  tools: [],
  purpose: "act",
  metadata: { run_id: "ms-1.plan", iteration: 1, criteria: 1 }
}
/** What building a provider's Layer may need: files for a mock script, a database for an in-process harness. */
const needs = Layer.merge(NodeContext.layer, Database.layerSqlite(":memory:"))

describe("LlmLayer.fallbackLayerOf", () => {
  it.effect("an openai fallback without its own variables is bad input in one line naming them, even when the run's are set", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LlmLayer.fallbackLayerOf(openai)).pipe(
        env({ AUTOPILOT_LLM_BASE_URL: "http://127.0.0.1:1/v1", AUTOPILOT_LLM_API_KEY: "run-key" })
      )
      assert.strictEqual(error._tag, "BadInput")
      assert.include(error.message, "the fallback provider openai needs AUTOPILOT_FALLBACK_LLM_BASE_URL")
      assert.include(error.message, "AUTOPILOT_FALLBACK_LLM_API_KEY")
      assert.notInclude(error.message, "\n")
      // The run's own provider is unaffected by the fallback's variables.
      const own = yield* Effect.flip(LlmLayer.layerOf(openai)).pipe(env({ AUTOPILOT_FALLBACK_LLM_BASE_URL: "http://127.0.0.1:1/v1", AUTOPILOT_FALLBACK_LLM_API_KEY: "k" }))
      assert.include(own.message, "--llm openai needs AUTOPILOT_LLM_BASE_URL")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("the run's provider and its fallback are two servers, each with its own key and default model, held at once", () =>
    Effect.gen(function*() {
      const primaryServer = yield* TestServer.make([{ content: "primary" }])
      const fallbackServer = yield* TestServer.make([{ content: "fallback" }])
      const [primary, fallback] = yield* Effect.all([LlmLayer.layerOf(openai), LlmLayer.fallbackLayerOf(openai)]).pipe(
        Effect.flatMap(Effect.forEach(LlmLayer.serviceOf)),
        env({
          AUTOPILOT_LLM_BASE_URL: primaryServer.baseURL,
          AUTOPILOT_LLM_API_KEY: "run-key",
          AUTOPILOT_FALLBACK_LLM_BASE_URL: fallbackServer.baseURL,
          AUTOPILOT_FALLBACK_LLM_API_KEY: "fallback-key",
          AUTOPILOT_FALLBACK_LLM_MODEL: "gpt-4.1"
        })
      )
      assert.strictEqual((yield* primary!.complete(request)).content, "primary")
      assert.strictEqual((yield* fallback!.complete(request)).content, "fallback")
      const [toPrimary] = yield* primaryServer.requests
      const [toFallback] = yield* fallbackServer.requests
      assert.strictEqual(toPrimary?.headers.authorization, "Bearer run-key")
      assert.strictEqual(toPrimary?.body.model, "gpt-4o-mini")
      assert.strictEqual(toFallback?.headers.authorization, "Bearer fallback-key")
      assert.strictEqual(toFallback?.body.model, "gpt-4.1")
    }).pipe(Effect.provide(needs)))

  it.scoped("a mock fallback runs its own script and answers with its script's model, beside a primary on another", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* fs.makeTempDirectoryScoped()
      const script = (model: string) => JSON.stringify({ model, turns: [{ content: `${model} answers` }] })
      yield* fs.writeFileString(path.join(dir, "primary.json"), script("primary-model"))
      yield* fs.writeFileString(path.join(dir, "fallback.json"), script("fallback-model"))
      const primary = yield* Effect.flatMap(LlmLayer.layerOf({ provider: "mock", mock_script: path.join(dir, "primary.json") }), LlmLayer.serviceOf)
      const fallback = yield* Effect.flatMap(LlmLayer.fallbackLayerOf({ provider: "mock", mock_script: path.join(dir, "fallback.json") }), LlmLayer.serviceOf)
      const unscripted = yield* Effect.flatMap(LlmLayer.fallbackLayerOf({ provider: "mock" }), LlmLayer.serviceOf)
      assert.deepInclude(yield* fallback.complete(request), { model: "fallback-model", content: "fallback-model answers" })
      assert.deepInclude(yield* primary.complete(request), { model: "primary-model", content: "primary-model answers" })
      assert.strictEqual((yield* unscripted.complete(request)).model, MockLlm.defaultModel)
    }).pipe(Effect.provide(needs)))

  it.effect("a mock fallback's script that does not load is bad input naming the file", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LlmLayer.fallbackLayerOf({ provider: "mock", mock_script: "/nonexistent/fallback.json" }))
      assert.strictEqual(error._tag, "BadInput")
      assert.include(error.message, "/nonexistent/fallback.json")
    }).pipe(Effect.provide(NodeContext.layer)))
})
