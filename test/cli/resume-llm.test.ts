import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { afterEach } from "vitest"
import * as TestServer from "../llm/openai-test-server.js"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const verdict = (met: ReadonlyArray<boolean>) => JSON.stringify({ criteria_met: met, notes: "checked" })

describe("resume keeps the model a run was started on", () => {
  it.scopedLive("a run started with --llm openai is resumed on the same server, not on the mock", (context) =>
    Effect.gen(function*() {
      const server = yield* TestServer.make([
        { content: "## Part 1", usage: { prompt_tokens: 100, completion_tokens: 10 }, model: "gpt-4o-mini" },
        { content: verdict([true, false]), usage: { prompt_tokens: 50, completion_tokens: 5 }, model: "gpt-4o-mini" },
        { content: "## Part 2", usage: { prompt_tokens: 100, completion_tokens: 10 }, model: "gpt-4o-mini" },
        { content: verdict([true, true]), usage: { prompt_tokens: 50, completion_tokens: 5 }, model: "gpt-4o-mini" }
      ])
      const env = { AUTOPILOT_LLM_BASE_URL: server.baseURL, AUTOPILOT_LLM_API_KEY: "sk-test" }
      const sb = sandbox(context)
      const first = yield* Effect.promise(() =>
        sb.run(["run", "two parts", "--criterion", "one", "--criterion", "two", "--llm", "openai", "--model", "gpt-4o-mini", "--run-id", "o", "--max-iterations", "1"], { env })
      )
      assert.strictEqual(first.code, 3, first.stderr.join("\n"))
      const resumed = yield* Effect.promise(() => sb.run(["resume", "o", "--max-iterations", "2", "--format", "jsonl"], { env }))
      assert.strictEqual(resumed.code, 0, resumed.stderr.join("\n"))
      assert.strictEqual(JSON.parse(resumed.stdout.at(-1)!).output, "## Part 2")
      const requests = yield* server.requests
      assert.strictEqual(requests.length, 4)
      assert.strictEqual(requests[2]!.body.model, "gpt-4o-mini")
      const shown = yield* Effect.promise(() => sb.show("o"))
      assert.deepStrictEqual(shown.llm, { provider: "openai", model: "gpt-4o-mini" })
      const text = (yield* Effect.promise(() => sb.run(["show", "o"]))).stdout.join("\n")
      assert.include(text, "model: openai gpt-4o-mini")
    }))

  it.live("a run started with a mock script is resumed on that script, recorded by its full path", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      sb.writeFile("turns.json", { turns: [{ content: "SCRIPTED ANSWER", criteria_met: [false] }] })
      const first = yield* Effect.promise(() => sb.run(["run", "scripted", "--mock-script", "turns.json", "--run-id", "m", "--max-iterations", "1"]))
      assert.strictEqual(first.code, 4, first.stderr.join("\n"))
      const resumed = yield* Effect.promise(() => sb.run(["resume", "m", "--max-iterations", "2", "--format", "jsonl"]))
      assert.strictEqual(resumed.code, 4, resumed.stderr.join("\n"))
      assert.strictEqual(JSON.parse(resumed.stdout.at(-1)!).output, "SCRIPTED ANSWER")
      const shown = yield* Effect.promise(() => sb.show("m"))
      assert.deepStrictEqual(shown.llm, { provider: "mock", mock_script: path.join(sb.dir, "turns.json") })
    }))

  it.live("naming another model on resume is honoured; a mock script for a run on another provider is bad input", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const first = yield* Effect.promise(() => sb.run(["run", "plain", "--criterion", "a", "--criterion", "b", "--criterion", "c", "--run-id", "p", "--max-iterations", "1"]))
      assert.strictEqual(first.code, 3, first.stderr.join("\n"))
      const renamed = yield* Effect.promise(() => sb.run(["resume", "p", "--max-iterations", "2", "--model", "gpt-4o"]))
      assert.strictEqual(renamed.code, 3, renamed.stderr.join("\n"))
      assert.deepStrictEqual((yield* Effect.promise(() => sb.show("p"))).llm, { provider: "mock", model: "gpt-4o" })

      sb.writeFile("turns.json", { turns: [{ content: "x" }] })
      const events = sb.count("events", "p")
      const refused = yield* Effect.promise(() =>
        sb.run(["resume", "p", "--llm", "openai", "--mock-script", "turns.json"], { env: { AUTOPILOT_LLM_BASE_URL: "http://127.0.0.1:9/v1", AUTOPILOT_LLM_API_KEY: "k" } })
      )
      assert.strictEqual(refused.code, 2)
      assert.strictEqual(refused.stderr.length, 1)
      assert.include(refused.stderr[0], "--mock-script is for the mock model")
      assert.strictEqual(sb.count("events", "p"), events)
    }))
})
