import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterEach } from "vitest"
import * as Pricing from "../../src/budget/Pricing.js"
import * as TestServer from "../llm/openai-test-server.js"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const apiKey = "sk-test-0123456789abcdef"
const verdict = (met: ReadonlyArray<boolean>) => JSON.stringify({ criteria_met: met, notes: "checked" })

describe("--llm openai", () => {
  it.scopedLive("a mission against an OpenAI-compatible server completes, and its dollars match the pricing table", (context) =>
    Effect.gen(function*() {
      const server = yield* TestServer.make([
        { content: "## Gotcha 1\n\nMutable default arguments.", usage: { prompt_tokens: 1200, completion_tokens: 300 }, model: "gpt-4o-mini" },
        { content: verdict([true, false]), usage: { prompt_tokens: 400, completion_tokens: 20 }, model: "gpt-4o-mini" },
        { content: "## Gotcha 2\n\nIterating while mutating.", usage: { prompt_tokens: 1500, completion_tokens: 280 }, model: "gpt-4o-mini" },
        { content: verdict([true, true]), usage: { prompt_tokens: 420, completion_tokens: 22 }, model: "gpt-4o-mini" }
      ])
      const sb = sandbox(context)
      const exit = yield* Effect.promise(() =>
        sb.run(["run", "dict gotchas", "--criterion", "one", "--criterion", "two", "--llm", "openai", "--run-id", "o", "--format", "jsonl"], {
          env: { AUTOPILOT_LLM_BASE_URL: server.baseURL, AUTOPILOT_LLM_API_KEY: apiKey }
        })
      )
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const result = JSON.parse(exit.stdout.at(-1)!)
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.iterations, 2)
      assert.strictEqual(result.usage.tokens, 1200 + 300 + 400 + 20 + 1500 + 280 + 420 + 22)
      const price = Pricing.priceOf("gpt-4o-mini")
      assert(price._tag === "Some")
      const expected = Pricing.costOf(price.value, { input_tokens: 1200 + 400 + 1500 + 420, output_tokens: 300 + 20 + 280 + 22 })
      assert.closeTo(result.usage.dollars, expected, 1e-12)

      const requests = yield* server.requests
      assert.strictEqual(requests.length, 4)
      assert.strictEqual(requests[0]!.headers.authorization, `Bearer ${apiKey}`)
      assert.include(JSON.stringify(requests[0]!.body.messages), "dict gotchas")
      assert.notInclude(exit.stdout.join("\n") + exit.stderr.join("\n"), apiKey)

      // show: per-step telemetry and the run's total cost, from the same numbers.
      const shown = JSON.parse((yield* Effect.promise(() => sb.run(["show", "o", "--format", "json"]))).stdout.join("\n"))
      assert.deepStrictEqual(shown.steps.map((s: any) => s.calls.map((c: any) => [c.purpose, c.model_used, c.input_tokens, c.output_tokens])), [
        [["act", "gpt-4o-mini", 1200, 300], ["judge", "gpt-4o-mini", 400, 20]],
        [["act", "gpt-4o-mini", 1500, 280], ["judge", "gpt-4o-mini", 420, 22]]
      ])
      assert.closeTo(shown.steps.reduce((sum: number, s: any) => sum + s.cost_usd, 0), expected, 1e-12)
      assert.closeTo(shown.cost_usd, expected, 1e-12)
      for (const step of shown.steps) for (const call of step.calls) assert.isAtLeast(call.latency_ms, 0)
      const text = (yield* Effect.promise(() => sb.run(["show", "o"]))).stdout.join("\n")
      assert.include(text, `total cost: $${expected.toFixed(6)}`)
      assert.match(text, /\[1\] \$\d+\.\d{6} · act gpt-4o-mini 1200\+300 tokens/)
    }))

  it.scopedLive("a run whose model calls a tool sends the next iteration real tool turns, and show --messages gives them back", (context) =>
    Effect.gen(function*() {
      const call = { id: "call_calc_1", name: "calculator", arguments: "{\"expression\":\"6*7\"}" }
      const server = yield* TestServer.make([
        { content: "Let me compute that.", toolCalls: [call] },
        { content: verdict([true, false]) },
        { content: "6*7 is 42." },
        { content: verdict([true, true]) }
      ])
      const sb = sandbox(context)
      const exit = yield* Effect.promise(() =>
        sb.run(["run", "multiply", "--criterion", "one", "--criterion", "two", "--llm", "openai", "--run-id", "t", "--format", "jsonl"], {
          env: { AUTOPILOT_LLM_BASE_URL: server.baseURL, AUTOPILOT_LLM_API_KEY: apiKey }
        })
      )
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const toolEvent = exit.stdout.map((line) => JSON.parse(line)).find((e) => e.kind === "tool_call")
      assert.deepStrictEqual([toolEvent.id, toolEvent.name, toolEvent.ok, toolEvent.output], ["call_calc_1", "calculator", true, "42"])

      // On the wire: iteration 2's act request replays iteration 1 as an assistant turn with its call and a tool message answering it.
      const sent = (yield* server.requests).map((request) => request.body.messages)
      assert.deepStrictEqual(sent[2].map((m: any) => m.role), ["system", "user", "assistant", "tool", "user"])
      assert.deepStrictEqual(sent[2][2], {
        role: "assistant",
        content: "Let me compute that.",
        tool_calls: [{ id: "call_calc_1", type: "function", function: { name: "calculator", arguments: "{\"expression\":\"6*7\"}" } }]
      })
      assert.deepStrictEqual(sent[2][3], { role: "tool", tool_call_id: "call_calc_1", content: "42" })

      // Recorded: each step's act conversation is what was sent, then its own turn with its tool messages.
      const full = JSON.parse((yield* Effect.promise(() => sb.run(["show", "t", "--messages", "--format", "json"]))).stdout.join("\n"))
      assert.deepStrictEqual(full.steps[0].messages.act.slice(0, 2), sent[0])
      assert.deepStrictEqual(full.steps[0].messages.act.slice(2), [sent[2][2], sent[2][3]])
      assert.deepStrictEqual(full.steps[1].messages.act.slice(0, -1), sent[2])
      assert.deepStrictEqual(full.steps[1].messages.act.at(-1), { role: "assistant", content: "6*7 is 42." })
      assert.deepStrictEqual(full.steps[1].messages.judge, sent[3])
      const text = (yield* Effect.promise(() => sb.run(["show", "t", "--messages"]))).stdout
      assert.include(text, "      assistant: Let me compute that.")
      assert.include(text, "        → call_calc_1 calculator({\"expression\":\"6*7\"})")
      assert.include(text, "      tool (call_calc_1): 42")
    }))
})
