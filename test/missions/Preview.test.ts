import { assert, describe, it } from "@effect/vitest"
import { preview, stages } from "../../src/missions/Preview.js"
import { digest, research, vendors } from "./fixtures.js"

describe("preview", () => {
  it("names the blueprint, each slot as Label: value, the agents in the order they run, the criteria and the budget", () => {
    assert.strictEqual(
      preview(research(), { schedule: "0 9 * * 1-5", vendors, depth: 2 }, []),
      [
        "Scheduled research (scheduled_research v3, scheduled)",
        "Schedule: 0 9 * * 1-5",
        "Vendors: 3 URLs (https://a.example, https://b.example, https://c.example)",
        "Depth: 2",
        "Tone: not set",
        "Agents: collect → analyze → alert, report",
        "Success criteria: 2",
        "Budget: 600s · 100 tool calls · 2,000,000 tokens · $0.50 · 200 iterations"
      ].join("\n")
    )
  })

  it("flags missing slots with what they take, and summarizes long lists and long text", () => {
    const many = ["https://a.example", "https://b.example", "https://c.example", "https://d.example", "https://e.example"]
    const shown = preview(research(), { vendors: many, tone: "critical" }, ["schedule", "depth"]).split("\n")
    assert.strictEqual(shown[1], 'Schedule: missing (a cron expression of 5 fields, like "0 9 * * 1-5")')
    assert.strictEqual(shown[2], "Vendors: 5 URLs (https://a.example, https://b.example, https://c.example, +2 more)")
    assert.strictEqual(shown[3], "Depth: missing (a whole number from 1 to 5)")
    assert.strictEqual(shown[4], "Tone: critical")
    // A required slot with no value is missing, listed or not.
    assert.strictEqual(preview(research(), {}, []).split("\n")[2], "Vendors: missing (a list of http(s) URLs)")
    const long = preview(
      research({ slots: [{ name: "brief", type: "text", required: true, description: "What to write" }] }),
      { brief: `${"word ".repeat(40)}\nend` },
      []
    )
    assert.match(long.split("\n")[1]!, /^Brief: (word ){15}word…$/)
  })

  it("orders a graph's nodes in stages: a node runs after every node with an edge to it", () => {
    const node = (id: string) => ({ id, role: "r", prompt: "p", tools: [], model_tier: "simple" as const })
    const graph = {
      entry: "a",
      nodes: [node("a"), node("d"), node("b"), node("c")] as const,
      edges: [{ from: "a", to: "b" }, { from: "a", to: "c" }, { from: "b", to: "d" }, { from: "c", to: "d" }, { from: "a", to: "d" }]
    }
    assert.deepStrictEqual(stages(graph), [["a"], ["b", "c"], ["d"]])
    assert.deepStrictEqual(stages(digest.graph), [["summarize"]])
  })

  it("says unlimited when every budget axis is disabled", () => {
    const free = research({ budget: { max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 } })
    assert.strictEqual(preview(free, {}, []).split("\n").at(-1), "Budget: unlimited")
  })
})
