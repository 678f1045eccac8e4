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
})
