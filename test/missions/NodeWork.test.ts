import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Blueprint, Node } from "../../src/domain/Blueprint.js"
import { BudgetUsage } from "../../src/domain/Budget.js"
import { Step } from "../../src/domain/Step.js"
import * as NodeWork from "../../src/missions/NodeWork.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import { researchJson } from "./fixtures.js"

const node = (fields: Record<string, unknown>) =>
  Schema.decodeUnknownSync(Node)(
    Object.fromEntries(
      Object.entries({ id: "report", role: "Writes the report", prompt: "Report on {vendors}", model_tier: "medium", ...fields }).filter(([, v]) => v !== undefined)
    )
  )

const schema = { type: "object", properties: { changed: { type: "boolean" } }, required: ["changed"] }

describe("NodeWork", () => {
  it("fills slots and quoted outputs in full, and gives unquoted inputs under Inputs", () => {
    const task = NodeWork.taskOf(
      node({ prompt: "Compare {vendors} using {collect.output}" }),
      { vendors: ["https://a.example", "https://b.example"] },
      { collect: "page text ".repeat(500), check: "{\"ok\": true}" },
      ["collect", "check"]
    )
    assert.include(task, "Compare https://a.example, https://b.example using page text")
    assert.include(task, "page text ".repeat(500).trim(), "the full output, never a preview")
    assert.include(task, "Inputs:\n### From check\n{\"ok\": true}")
    assert.notInclude(task, "### From collect", "an output the prompt quotes is not given twice")
  })

  it("trims each quoted output to its newest part when the context is trimmed", () => {
    const text = `${"old ".repeat(100)}${"new ".repeat(100)}`
    const task = NodeWork.taskOf(node({ prompt: "Use {collect.output}" }), {}, { collect: text }, ["collect"], 0.5)
    assert.include(task, "earlier characters trimmed]")
    assert.include(task, "new ".repeat(100).trim())
    assert.notInclude(task, "old old")
  })

  it("asks for the schema's JSON, and a stricter attempt quotes what was wrong", () => {
    const withSchema = node({ output_schema: schema })
    const first = NodeWork.goalOf(withSchema, "Decide", undefined)
    assert.match(first.objective, /JSON Schema/)
    assert.match(first.success_criteria[0]!, /JSON object matching the report output schema/)
    const stricter = NodeWork.goalOf(withSchema, "Decide", { kind: "stricter_output", validation_error: "/changed must be boolean" })
    assert.include(stricter.objective, "rejected: /changed must be boolean")
    const plain = NodeWork.goalOf(node({}), "Write", { kind: "stricter_output", validation_error: "the answer was empty" })
    assert.include(plain.objective, "an empty answer or a refusal is not an answer")
  })

  it("decodes a schema node's answer and keeps a text node's answer as it is", () => {
    assert.deepStrictEqual(NodeWork.outputOf(node({ output_schema: schema }), "```json\n{\"changed\": false}\n```"), Either.right({ changed: false }))
    assert.isTrue(Either.isLeft(NodeWork.outputOf(node({ output_schema: schema }), "{\"changed\": \"no\"}")))
    assert.deepStrictEqual(NodeWork.outputOf(node({}), "plain"), Either.right("plain"))
  })

  it("runs a role node as a role of its own, and a specialist node as the specialist narrowed to the node", () => {
    const role = NodeWork.specialistOf(node({ id: "draft__reply_", tools: ["read_file"] }), new Map(), "answer tickets")!
    assert.strictEqual(role.id, "draft-reply")
    assert.deepStrictEqual(role.allowed_tools, ["read_file"])
    const auditor = { id: "security-auditor", allowed_tools: "all", model_tier: "complex" } as unknown as Specialist
    const known = new Map([["security-auditor", auditor]])
    const narrowed = NodeWork.specialistOf(node({ role: undefined, specialist: "security-auditor", tools: ["read_file"] }), known, "g")!
    assert.deepStrictEqual([narrowed.allowed_tools, narrowed.model_tier], [["read_file"], "medium"])
    assert.isUndefined(NodeWork.specialistOf(node({ role: undefined, specialist: "nobody" }), known, "g"))
  })

  it("gives a batch one instance per item of its list slot, a once mission one", () => {
    const batch = Schema.decodeUnknownSync(Blueprint)(researchJson({ mode: "batch" }))
    const instances = NodeWork.instancesOf(batch, { vendors: ["https://a.example", "https://b.example"], schedule: "0 9 * * *" })
    assert.deepStrictEqual(instances.map((i) => [i.instance, i.slots.vendors]), [[1, "https://a.example"], [2, "https://b.example"]])
    const once = Schema.decodeUnknownSync(Blueprint)(researchJson({ mode: "once" }))
    assert.deepStrictEqual(NodeWork.instancesOf(once, { vendors: ["x"] }).map((i) => i.instance), [0])
    assert.strictEqual(NodeWork.runIdOf("ms-1", NodeWork.keyOf("collect", 2), 3), "ms-1.2.collect.3")
    assert.strictEqual(NodeWork.runIdOf("ms-1", NodeWork.keyOf("collect", 0), 1), "ms-1.collect")
  })

  it("sums an attempt's model calls into its telemetry, the act models in order", () => {
    const call = (purpose: string, model: string, cost: number) => ({
      purpose,
      model_used: model,
      input_tokens: 10,
      output_tokens: 5,
      cost_usd: cost,
      latency_ms: 100,
      attempts: 1
    })
    const step = (calls: ReadonlyArray<ReturnType<typeof call>>) =>
      new Step({
        iteration: 1,
        at: "t",
        model: "m",
        answer: "a",
        tool_calls: [],
        verdict: "",
        usage: new BudgetUsage({ seconds: 0, tool_calls: 0, tokens: 0, dollars: 0, iterations: 1 }),
        criteria_met: [true],
        calls,
        history_window: 6
      })
    const t = NodeWork.telemetryOf([step([call("act", "gpt-4o", 0.01), call("judge", "judge-model", 0.001)]), step([call("act", "gpt-4.1", 0.02)])])
    assert.deepStrictEqual({ ...t, cost_usd: Math.round(t.cost_usd * 1000) / 1000 }, {
      model_used: "gpt-4o, gpt-4.1",
      input_tokens: 30,
      output_tokens: 15,
      cost_usd: 0.031,
      latency_ms: 300
    })
  })
})
