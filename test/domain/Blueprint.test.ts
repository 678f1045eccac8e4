import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import {
  Blueprint,
  type BlueprintEncoded,
  type Condition,
  evaluate,
  problems,
  type Slot,
  slotValue,
  templateOutputs,
  templateSlots,
  toJson
} from "../../src/domain/Blueprint.js"

const slot = (fields: Partial<Slot> & Pick<Slot, "type">): Slot => ({ name: "s", required: true, description: "a slot", ...fields })

const valid = (s: Slot, value: unknown) => Either.getOrThrowWith(slotValue(s, value), (e) => new Error(e))
const invalid = (s: Slot, value: unknown) => Either.match(slotValue(s, value), { onLeft: (e) => e, onRight: (v) => assert.fail(`accepted ${JSON.stringify(v)}`) })

describe("slotValue", () => {
  it("cron: five fields that Effect's Cron parses, spaces normalized", () => {
    const cron = slot({ name: "schedule", type: "cron" })
    assert.strictEqual(valid(cron, "0 9 * * 1-5"), "0 9 * * 1-5")
    assert.strictEqual(valid(cron, "  */15   8-18 * * MON-FRI "), "*/15 8-18 * * MON-FRI")
    assert.strictEqual(valid(cron, "0 0 1 1 *"), "0 0 1 1 *")
    for (const bad of ["every monday", "61 * * * *", "0 25 * * *", "0 9 * *", "0 0 9 * * 1", "", 9]) invalid(cron, bad)
    assert.strictEqual(invalid(cron, "daily"), `slot schedule must be a cron expression of 5 fields, like "0 9 * * 1-5", got "daily"`)
  })

  it("url: http or https with a host, trimmed", () => {
    const url = slot({ name: "site", type: "url" })
    assert.strictEqual(valid(url, " https://example.com/pricing?x=1 "), "https://example.com/pricing?x=1")
    assert.strictEqual(valid(url, "http://localhost:8080"), "http://localhost:8080")
    for (const bad of ["example.com", "ftp://example.com/file", "https://", "mailto:a@b.c", ["https://a.com"], 3]) invalid(url, bad)
  })

  it("url_list: a list or a comma-separated text of URLs, each one valid", () => {
    const urls = slot({ name: "pages", type: "url_list" })
    assert.deepStrictEqual(valid(urls, ["https://a.com", " https://b.com/x "]), ["https://a.com", "https://b.com/x"])
    assert.deepStrictEqual(valid(urls, "https://a.com, https://b.com"), ["https://a.com", "https://b.com"])
    for (const bad of [[], "", ["https://a.com", "b.com"], "https://a.com, not a url", [1], { url: "https://a.com" }]) invalid(urls, bad)
    assert.match(invalid(urls, ["b.com"]), /^slot pages must be a list of http\(s\) URLs, got \["b\.com"\]$/)
  })

  it("string_list: a list or a comma-separated text of non-empty strings, trimmed", () => {
    const list = slot({ name: "vendors", type: "string_list" })
    assert.deepStrictEqual(valid(list, "Stripe, Adyen ,Braintree"), ["Stripe", "Adyen", "Braintree"])
    assert.deepStrictEqual(valid(list, [" Datadog "]), ["Datadog"])
    assert.deepStrictEqual(valid(list, "a,,b"), ["a", "b"])
    for (const bad of [[], "", " , ", [""], ["ok", " "], [1], 5]) invalid(list, bad)
  })

  it("integer: whole numbers within the bounds, digits as text accepted", () => {
    const count = slot({ name: "vendor_count", type: "integer", min: 1, max: 50 })
    assert.strictEqual(valid(count, 1), 1)
    assert.strictEqual(valid(count, 50), 50)
    assert.strictEqual(valid(count, " 7 "), 7)
    for (const bad of [0, 51, -3, 3.5, "3.5", "abc", "1e1", "", Number.NaN, Number.POSITIVE_INFINITY, [3]]) invalid(count, bad)
    assert.strictEqual(invalid(count, 51), "slot vendor_count must be a whole number from 1 to 50, got 51")
    assert.strictEqual(valid(slot({ type: "integer" }), -12), -12)
    assert.match(invalid(slot({ type: "integer", min: 3 }), 2), /a whole number of at least 3/)
    assert.match(invalid(slot({ type: "integer", max: 3 }), 4), /a whole number of at most 3/)
  })

  it("enum: one of the values, in any case, given back as the value is spelt", () => {
    const focus = slot({ name: "focus", type: "enum", values: ["pricing", "Product", "hiring"] })
    assert.strictEqual(valid(focus, "PRICING"), "pricing")
    assert.strictEqual(valid(focus, " product "), "Product")
    for (const bad of ["price", "", ["pricing"], 1]) invalid(focus, bad)
    assert.strictEqual(invalid(focus, "funding"), `slot focus must be one of "pricing", "Product", "hiring", got "funding"`)
  })

  it("text: any non-empty text, trimmed", () => {
    const text = slot({ name: "market", type: "text" })
    assert.strictEqual(valid(text, "  payments for SaaS "), "payments for SaaS")
    for (const bad of ["", "   ", 3, null, undefined, ["a"]]) invalid(text, bad)
  })
})

describe("templates", () => {
  it("tell slot references from node outputs", () => {
    const prompt = "Research {market} for {vendors}; use {gather.output} and {market} again, not {Capital} or {\"json\": 1}"
    assert.deepStrictEqual(templateSlots(prompt), ["market", "vendors"])
    assert.deepStrictEqual(templateOutputs(prompt), ["gather"])
  })
})

/** A small valid blueprint; tests change one thing at a time. */
const base = (): BlueprintEncoded => ({
  id: "weekly_scan",
  version: 1,
  title: "Weekly scan",
  description: "Scans a market every week.",
  category: "research",
  example_goals: ["scan the CRM market every Monday"],
  mode: "once",
  slots: [
    { name: "market", type: "text", required: true, description: "The market." },
    { name: "depth", type: "enum", required: false, default: "quick", values: ["quick", "deep"], description: "How deep." }
  ],
  graph: {
    entry: "gather",
    nodes: [
      {
        id: "gather",
        specialist: "market-researcher",
        prompt: "Research {market} at {depth} depth.",
        tools: ["read_file"],
        model_tier: "medium",
        output_schema: { type: "object", properties: { changed: { type: "boolean" }, vendors: { type: "array" } } }
      },
      { id: "report", role: "A writer.", prompt: "Report on {market}: {gather.output}", model_tier: "simple" },
      { id: "alert", role: "An analyst.", prompt: "Alert about {gather.output}", model_tier: "simple" }
    ],
    edges: [
      { from: "gather", to: "report" },
      { from: "gather", to: "alert", when: { field: "changed", op: "equals", value: true } }
    ]
  },
  success_criteria: ["a report exists"],
  budget: { max_iterations: 10 },
  curation: { capture: true, nodes: ["report"], tags: [] }
})

const decode = Schema.decodeUnknownSync(Blueprint)

/** The problems of `base` after `change` mutates its encoded form. */
const problemsAfter = (change: (bp: any) => void, known = {}) => {
  const encoded = structuredClone(base()) as any
  change(encoded)
  return problems(decode(encoded), known).map((p) => `${p.field}: ${p.message}`)
}

describe("problems", () => {
  it("finds none in a valid blueprint, which round-trips through its JSON", () => {
    const bp = decode(base())
    assert.deepStrictEqual(problems(bp, { specialists: ["market-researcher"], tools: ["read_file"] }), [])
    assert.deepStrictEqual(decode(JSON.parse(toJson(bp))), bp)
  })

  it("a cycle, named by its path", () => {
    assert.deepStrictEqual(
      problemsAfter((bp) => bp.graph.edges.push({ from: "report", to: "alert" }, { from: "alert", to: "report" })),
      ["graph.edges: the graph has a cycle: report → alert → report"]
    )
    assert.include(problemsAfter((bp) => bp.graph.edges.push({ from: "report", to: "report" })), "graph.edges[2]: an edge from report to itself is a cycle")
    assert.include(problemsAfter((bp) => bp.graph.edges.push({ from: "report", to: "gather" })), "graph.edges[2].to: no edge may lead back to the entry node gather")
  })

  it("a node no path from the entry reaches", () => {
    assert.deepStrictEqual(problemsAfter((bp) => bp.graph.edges.pop()), ["graph.nodes: not reachable from gather: alert"])
  })

  it("edges and the entry that name no node", () => {
    assert.include(problemsAfter((bp) => (bp.graph.edges[1].to = "x")), "graph.edges[1].to: no node has the id x")
    assert.include(problemsAfter((bp) => (bp.graph.edges[0].from = "y")), "graph.edges[0].from: no node has the id y")
    assert.include(problemsAfter((bp) => (bp.graph.entry = "start")), "graph.entry: no node has the id start (nodes: gather, report, alert)")
  })

  it("a prompt that refers to a slot that does not exist", () => {
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.nodes[1].prompt = "Report on {markets}: {gather.output}")), [
      "graph.nodes[1].prompt: refers to {markets}, which is not a slot (slots: market, depth)"
    ])
  })

  it("a prompt that uses the output of a node that does not run before it", () => {
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.nodes[1].prompt = "Report on {alert.output}")), [
      "graph.nodes[1].prompt: refers to {alert.output}, but alert does not run before report"
    ])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.nodes[0].prompt = "Start from {report.output}")), [
      "graph.nodes[0].prompt: refers to {report.output}, but report does not run before gather"
    ])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.nodes[1].prompt = "Report on {ghost.output}")), [
      "graph.nodes[1].prompt: refers to {ghost.output}, and no node has the id ghost"
    ])
  })

  it("a condition on a node without an output_schema, or on a field it does not have", () => {
    assert.deepStrictEqual(problemsAfter((bp) => delete bp.graph.nodes[0].output_schema), [
      "graph.edges[1].when: a condition reads the structured output of gather, which has no output_schema"
    ])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.edges[1].when.field = "severity.level")), [
      "graph.edges[1].when.field: severity is not a property of gather's output_schema (changed, vendors)"
    ])
  })

  it("a condition whose value does not suit its op", () => {
    const when = (condition: object) => problemsAfter((bp) => (bp.graph.edges[1].when = { field: "changed", ...condition }))
    assert.deepStrictEqual(when({ op: "equals" }), ["graph.edges[1].when.value: the equals condition needs a value"])
    assert.deepStrictEqual(when({ op: "in", value: "high" }), ["graph.edges[1].when.value: the in condition needs a list"])
    assert.deepStrictEqual(when({ op: "gte", value: "3" }), ["graph.edges[1].when.value: the gte condition needs a number"])
    assert.deepStrictEqual(when({ op: "exists" }), [])
  })

  it("slot definitions that cannot work", () => {
    assert.deepStrictEqual(problemsAfter((bp) => delete bp.slots[1].values), ["slots[1].values: an enum slot must list its values"])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.slots[0].values = ["a"])), ["slots[0].values: only an enum slot has values (this one is text)"])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.slots[0].max = 3)), ["slots[0].max: only an integer slot has bounds (this one is text)"])
    assert.deepStrictEqual(problemsAfter((bp) => bp.slots.push({ name: "n", type: "integer", required: true, min: 5, max: 1, description: "n" })), [
      "slots[2].min: must not exceed max (5 > 1)"
    ])
    assert.deepStrictEqual(problemsAfter((bp) => bp.slots.push({ ...bp.slots[0] })), ["slots: two slots are named market"])
  })

  it("a default that its own slot would refuse", () => {
    assert.deepStrictEqual(problemsAfter((bp) => (bp.slots[1].default = "thorough")), [
      `slots[1].default: slot depth must be one of "quick", "deep", got "thorough"`
    ])
    assert.deepStrictEqual(
      problemsAfter((bp) => bp.slots.push({ name: "count", type: "integer", required: false, default: 100, min: 1, max: 50, description: "c" })),
      ["slots[2].default: slot count must be a whole number from 1 to 50, got 100"]
    )
  })

  it("a scheduled blueprint without a cron slot, a batch one without a list to run over", () => {
    assert.deepStrictEqual(problemsAfter((bp) => (bp.mode = "scheduled")), ["mode: a scheduled blueprint needs a slot of type cron"])
    assert.deepStrictEqual(
      problemsAfter((bp) => {
        bp.mode = "scheduled"
        bp.slots.push({ name: "schedule", type: "cron", required: true, default: "0 9 * * 1", description: "when" })
      }),
      []
    )
    assert.deepStrictEqual(problemsAfter((bp) => (bp.mode = "batch")), ["mode: a batch blueprint needs a slot of type url_list or string_list to run over"])
  })

  it("nodes: duplicate ids, not exactly one of specialist or role, unknown specialists and tools, tools outside the allow-list", () => {
    assert.include(problemsAfter((bp) => (bp.graph.nodes[2].id = "report")), "graph.nodes: two nodes have the id report")
    assert.include(problemsAfter((bp) => (bp.graph.nodes[1].specialist = "researcher")), "graph.nodes[1]: a node names exactly one of specialist or role")
    assert.include(problemsAfter((bp) => delete bp.graph.nodes[1].role), "graph.nodes[1]: a node names exactly one of specialist or role")
    const known = { specialists: ["researcher"], tools: ["read_file", "write_file"] }
    assert.deepStrictEqual(problemsAfter((bp) => bp.graph.nodes[0].tools.push("web_search"), known), [
      `graph.nodes[0].specialist: unknown specialist "market-researcher" (see \`autopilot specialists\`)`,
      `graph.nodes[0].tools: unknown tool "web_search" (tools: read_file, write_file)`
    ])
    const allowList = { allowedTools: new Map<string, "all" | ReadonlyArray<string>>([["market-researcher", ["read_file"]], ["researcher", "all"]]) }
    assert.deepStrictEqual(problemsAfter((bp) => bp.graph.nodes[0].tools.push("write_file"), allowList), [
      `graph.nodes[0].tools: the market-researcher specialist may not use "write_file" (its tools: read_file)`
    ])
    assert.deepStrictEqual(problemsAfter((bp) => (bp.graph.nodes[0].specialist = "researcher"), allowList), [])
  })

  it("curation of a node that does not exist", () => {
    assert.deepStrictEqual(problemsAfter((bp) => bp.curation.nodes.push("summary")), ["curation.nodes[1]: no node has the id summary"])
  })

  /** A random DAG: node k > 0 has a parent below it, so every node is reachable from n0; more edges only go up in index. */
  const dags = fc.integer({ min: 1, max: 9 }).chain((size) =>
    fc.record({
      size: fc.constant(size),
      parents: fc.tuple(...Array.from({ length: size }, (_, k) => fc.nat({ max: Math.max(0, k - 1) }))),
      extra: fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.nat({ max: size - 1 })), { maxLength: 15 }),
      order: fc.shuffledSubarray(Array.from({ length: size }, (_, k) => k), { minLength: size, maxLength: size }),
      back: fc.nat()
    })
  )

  const graphOf = ({ extra, order, parents, size }: { size: number; parents: ReadonlyArray<number>; extra: ReadonlyArray<readonly [number, number]>; order: ReadonlyArray<number> }) => {
    const pairs = new Map<string, readonly [number, number]>()
    for (let k = 1; k < size; k++) pairs.set(`${parents[k]}-${k}`, [parents[k]!, k])
    for (const [a, b] of extra) if (a !== b) pairs.set(`${Math.min(a, b)}-${Math.max(a, b)}`, [Math.min(a, b), Math.max(a, b)])
    const edges = [...pairs.values()].map(([from, to]) => ({ from: `n${from}`, to: `n${to}` }))
    const nodes = order.map((k) => ({
      id: `n${k}`,
      role: "A worker.",
      // Each node builds on its own parent's output: an ancestor, so always allowed.
      prompt: k === 0 ? "Start on {market}." : `Continue {market} from {n${parents[k]}.output}.`,
      model_tier: "simple" as const
    }))
    return { edges, nodes }
  }

  it.prop("a random DAG has no problems; reversing one of its edges as well makes it a cycle", [dags], ([dag]) => {
    const { edges, nodes } = graphOf(dag)
    const blueprint = (list: ReadonlyArray<{ from: string; to: string }>) =>
      decode({ ...base(), graph: { entry: "n0", nodes, edges: list }, curation: { capture: false } })
    assert.deepStrictEqual(problems(blueprint(edges)), [])
    if (edges.length === 0) return
    const { from, to } = edges[dag.back % edges.length]!
    const found = problems(blueprint([...edges, { from: to, to: from }]))
    const cycle = found.find((p) => p.field === "graph.edges" && p.message.startsWith("the graph has a cycle: "))
    assert.isDefined(cycle, JSON.stringify(found))
    const path = cycle!.message.slice("the graph has a cycle: ".length).split(" → ")
    assert.strictEqual(path[0], path.at(-1))
    for (const [i, id] of path.slice(1).entries()) {
      assert.isTrue([...edges, { from: to, to: from }].some((e) => e.from === path[i] && e.to === id), `${path[i]} → ${id} is not an edge`)
    }
  })
})

describe("evaluate", () => {
  const output = { severity: "high", score: 72, ticket: { priority: "p1", tags: ["billing", "vip"] }, note: "Customer is Angry", empty: null }
  const check = (condition: Condition, of: unknown = output) =>
    Either.getOrThrowWith(evaluate(condition, of), (e) => new Error(`cannot evaluate: ${e}`))
  const error = (condition: Condition, of: unknown = output) =>
    Either.match(evaluate(condition, of), { onLeft: (e) => e, onRight: (b) => assert.fail(`evaluated to ${b}`) })

  it("equals and not_equals compare JSON values, down dotted paths, whatever the order of an object's keys", () => {
    assert.isTrue(check({ field: "severity", op: "equals", value: "high" }))
    assert.isFalse(check({ field: "severity", op: "equals", value: "High" }))
    assert.isTrue(check({ field: "ticket.priority", op: "equals", value: "p1" }))
    assert.isTrue(check({ field: "ticket.tags", op: "equals", value: ["billing", "vip"] }))
    assert.isFalse(check({ field: "ticket.tags", op: "equals", value: ["vip", "billing"] }))
    assert.isTrue(check({ field: "ticket", op: "equals", value: { tags: ["billing", "vip"], priority: "p1" } }))
    assert.isFalse(check({ field: "ticket", op: "equals", value: { priority: "p1" } }))
    assert.isFalse(check({ field: "score", op: "equals", value: "72" }))
    assert.isTrue(check({ field: "empty", op: "equals", value: null }))
    assert.isTrue(check({ field: "severity", op: "not_equals", value: "low" }))
    assert.isFalse(check({ field: "severity", op: "not_equals", value: "high" }))
  })

  it("in and not_in test membership of a list", () => {
    assert.isTrue(check({ field: "severity", op: "in", value: ["high", "critical"] }))
    assert.isFalse(check({ field: "severity", op: "in", value: ["low", "medium"] }))
    assert.isTrue(check({ field: "severity", op: "not_in", value: ["low", "medium"] }))
    assert.isFalse(check({ field: "severity", op: "not_in", value: ["high"] }))
  })

  it("gt, gte, lt and lte compare numbers", () => {
    assert.isTrue(check({ field: "score", op: "gt", value: 71 }))
    assert.isFalse(check({ field: "score", op: "gt", value: 72 }))
    assert.isTrue(check({ field: "score", op: "gte", value: 72 }))
    assert.isFalse(check({ field: "score", op: "gte", value: 73 }))
    assert.isTrue(check({ field: "score", op: "lt", value: 73 }))
    assert.isFalse(check({ field: "score", op: "lt", value: 72 }))
    assert.isTrue(check({ field: "score", op: "lte", value: 72 }))
    assert.isFalse(check({ field: "score", op: "lte", value: 71 }))
  })

  it("exists and not_exists judge any output: null, a missing field or a field under a non-object does not exist", () => {
    assert.isTrue(check({ field: "ticket.priority", op: "exists" }))
    assert.isFalse(check({ field: "empty", op: "exists" }))
    assert.isFalse(check({ field: "ticket.owner", op: "exists" }))
    assert.isTrue(check({ field: "empty", op: "not_exists" }))
    assert.isTrue(check({ field: "severity.level", op: "not_exists" }))
    assert.isFalse(check({ field: "score", op: "not_exists" }))
    assert.isTrue(check({ field: "severity", op: "not_exists" }, ["high"]))
    assert.isFalse(check({ field: "severity", op: "exists" }, "high"))
  })

  it("contains: text without regard to case, or an item of a list", () => {
    assert.isTrue(check({ field: "note", op: "contains", value: "angry" }))
    assert.isFalse(check({ field: "note", op: "contains", value: "calm" }))
    assert.isTrue(check({ field: "ticket.tags", op: "contains", value: "vip" }))
    assert.isFalse(check({ field: "ticket.tags", op: "contains", value: "VIP" }))
  })

  it("a condition that cannot be judged is an error naming the field and why, never a quiet false", () => {
    assert.strictEqual(error({ field: "severity", op: "gt", value: 1 }), `severity is "high", not a number`)
    assert.strictEqual(error({ field: "empty", op: "lte", value: 1 }), "empty is null, not a number")
    assert.strictEqual(error({ field: "score", op: "gt", value: "70" }), `the gt condition on score needs a number as its value, not "70"`)
    assert.strictEqual(error({ field: "severity", op: "in", value: "high" }), `the in condition on severity needs a list as its value, not "high"`)
    assert.strictEqual(error({ field: "severity", op: "not_in" }), "the not_in condition on severity needs a list as its value, not undefined")
    assert.strictEqual(error({ field: "score", op: "contains", value: 7 }), "score is 72, not text or a list")
    assert.strictEqual(error({ field: "note", op: "contains", value: 7 }), "note is text, and the contains condition's value 7 is not")
    assert.strictEqual(error({ field: "missing", op: "lt", value: 100 }), "missing is missing, so lt cannot be judged")
    assert.strictEqual(error({ field: "ticket.owner", op: "equals", value: "bo" }), "ticket.owner is missing, so equals cannot be judged")
    assert.strictEqual(
      error({ field: "ticket.priority.level", op: "not_equals", value: "x" }),
      `ticket.priority is "p1", not an object with level, so not_equals cannot be judged`
    )
  })

  it("reads nothing of an output that is not an object: every operator but exists and not_exists is an error", () => {
    assert.strictEqual(error({ field: "severity", op: "equals", value: "high" }, "high"), `the output is "high", not an object with severity, so equals cannot be judged`)
    assert.strictEqual(error({ field: "severity", op: "in", value: ["high"] }, ["high"]), `the output is ["high"], not an object with severity, so in cannot be judged`)
    const long = "x".repeat(200)
    assert.match(error({ field: "a", op: "equals", value: 1 }, long), /^the output is "x{58}…, not an object with a, so equals cannot be judged$/)
  })
})
