import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { AutopilotEvent } from "../../src/domain/Event.js"
import * as Render from "../../src/cli/Render.js"

const usage = { seconds: 0, tool_calls: 0, tokens: 0, dollars: 0, iterations: 4 }

const started = (fields: Record<string, unknown>) =>
  Schema.decodeUnknownSync(AutopilotEvent)({
    kind: "run_started",
    run_id: "langs",
    at: "2025-01-01T00:00:00.000Z",
    seq: 0,
    remaining: { seconds: null, tool_calls: null, tokens: null, dollars: null, iterations: null },
    goal: { objective: "Research {item}", success_criteria: ["The objective is achieved: Research {item}"] },
    policy: { max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 },
    resuming: true,
    iterations: 4,
    usage,
    ...fields
  })

describe("Render.text", () => {
  it("starts a fan-out as a fan-out, without an iteration of its own; a run at its next iteration", () => {
    const fanout = { template: "Research {item}", items: ["Rust", "Go"], max_parallel: 4 }
    assert.strictEqual(Render.text(started({ fanout })).split("\n")[0], "Resuming fan-out langs: Research {item}")
    assert.strictEqual(Render.text(started({})).split("\n")[0], "Resuming run langs at iteration 5: Research {item}")
  })
})
