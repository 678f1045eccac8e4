import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import MiniSearch from "minisearch"
import * as nodeFs from "node:fs"
import { fileURLToPath } from "node:url"
import { stemmer } from "stemmer"
import { Blueprint, evaluate, type Node, problems, slotValue, templateOutputs, templateSlots } from "../../src/domain/Blueprint.js"
import { BudgetPolicy } from "../../src/domain/Budget.js"
import { files } from "../../src/routing/BuiltIn.js"
import * as Catalog from "../../src/routing/Catalog.js"
import * as Specialists from "../../src/specialists/Specialists.js"
import { defaultToolNames } from "../../src/tools/Defaults.js"

const catalogFolder = fileURLToPath(new URL("../../src/routing/catalog/", import.meta.url))

const required = [
  "scheduled_research",
  "support_triage",
  "daily_digest",
  "code_review",
  "incident_postmortem",
  "document_extraction",
  "content_writing",
  "data_analysis",
  "meeting_notes",
  "translation",
  "release_notes",
  "lead_research"
]

const blueprints = files.map(([file, content]) => [file, Schema.decodeUnknownSync(Blueprint, { onExcessProperty: "error" })(content)] as const)
const byId = new Map(blueprints.map(([, bp]) => [bp.id, bp]))
const get = (id: string) => byId.get(id) ?? assert.fail(`no built-in ${id}`)

/** The JSON Schema properties of a node's output, if it declares any. */
const propertiesOf = (node: Node): Record<string, Record<string, unknown>> =>
  (node.output_schema?.properties ?? {}) as Record<string, Record<string, unknown>>

describe("the built-in blueprints", () => {
  it.effect("are at least 12, the issue's among them, and each passes the Schema and every check against the real specialists and tools", () =>
    Effect.gen(function*() {
      assert.isAtLeast(files.length, 12)
      for (const id of required) assert.isTrue(byId.has(id), id)
      const specialists = (yield* Specialists.makeBuiltIn()).all.map((entry) => entry.specialist)
      const known = {
        specialists: specialists.map((s) => s.id),
        tools: defaultToolNames,
        allowedTools: new Map(specialists.map((s) => [s.id, s.allowed_tools] as const))
      }
      for (const [file, blueprint] of blueprints) assert.deepStrictEqual(problems(blueprint, known), [], file)
      const catalog = yield* Catalog.makeBuiltIn()
      assert.strictEqual(catalog.all.length, files.length)
      assert.deepStrictEqual(catalog.problems, [])
    }))

  it("names each file for its id, and no two share an id or a title", () => {
    for (const [file, blueprint] of blueprints) assert.strictEqual(file, `${blueprint.id}.json`)
    assert.strictEqual(byId.size, blueprints.length)
    assert.strictEqual(new Set(blueprints.map(([, bp]) => bp.title)).size, blueprints.length)
  })

  it("lists every file of the catalog folder, so none is left out of the package", () => {
    const inFolder = nodeFs.readdirSync(catalogFolder).filter((name) => name.endsWith(".json")).sort()
    assert.deepStrictEqual(files.map(([file]) => file).sort(), inFolder)
  })

  it("spell out every field and budget axis in their files rather than lean on defaults", () => {
    for (const [file, content] of files) {
      const raw = content as Record<string, any>
      assert.deepStrictEqual(Object.keys(raw.budget).sort(), Object.keys(BudgetPolicy.fields).sort(), file)
      for (const node of raw.graph.nodes) assert.isArray(node.tools, `${file}: ${node.id}`)
    }
  })

  it("give each at least 6 example goals of their own: none repeated anywhere in the catalog", () => {
    const seen = new Map<string, string>()
    for (const [, bp] of blueprints) {
      assert.isAtLeast(bp.example_goals.length, 6, bp.id)
      for (const goal of bp.example_goals) {
        const key = goal.toLowerCase()
        assert.isUndefined(seen.get(key), `${bp.id} repeats "${goal}" of ${seen.get(key)}`)
        seen.set(key, bp.id)
      }
    }
  })

  it("word example goals so that one held out of a plain BM25 index still finds its own blueprint first, nearly always", () => {
    const stop = new Set("a an the and or of to in on for from with by at into this these that those my our your me i we us it its is are be can you what which who how why do does did any all every each tell give make want need please".split(" "))
    const processTerm = (term: string) => (stop.has(term.toLowerCase()) ? null : stemmer(term.toLowerCase()))
    let found = 0
    let total = 0
    for (const [, own] of blueprints) {
      own.example_goals.forEach((goal, held) => {
        const index = new MiniSearch({ fields: ["title", "description", "goals"], processTerm })
        index.addAll(blueprints.map(([, bp]) => ({
          id: bp.id,
          title: bp.title,
          description: bp.description,
          goals: bp.example_goals.filter((_, i) => bp !== own || i !== held).join("\n")
        })))
        total++
        if (index.search(goal, { boost: { goals: 2, title: 1.5 } })[0]?.id === own.id) found++
      })
    }
    assert.isAtLeast(found / total, 0.85, `${found} of ${total}`)
  })

  it("have 2 to 6 nodes, prompts that build on earlier work, and use every slot they declare", () => {
    for (const [, bp] of blueprints) {
      const { edges, entry, nodes } = bp.graph
      assert.isAtLeast(nodes.length, 2, bp.id)
      assert.isAtMost(nodes.length, 6, bp.id)
      const used = new Set(nodes.flatMap((node) => templateSlots(node.prompt)))
      // A cron slot is read by the scheduler, not by a prompt.
      for (const slot of bp.slots.filter((s) => s.type !== "cron")) assert.isTrue(used.has(slot.name), `${bp.id}: slot ${slot.name} is never used`)
      for (const node of nodes.filter((n) => n.id !== entry)) {
        const parents = edges.filter((e) => e.to === node.id).map((e) => e.from)
        assert.isTrue(templateOutputs(node.prompt).some((ref) => parents.includes(ref)), `${bp.id}: ${node.id} ignores the output of ${parents.join(", ")}`)
      }
    }
  })

  it("give every slot default that the slot accepts, and every batch a required list to run over", () => {
    for (const [, bp] of blueprints) {
      for (const slot of bp.slots.filter((s) => s.default !== undefined)) assert.isTrue(Either.isRight(slotValue(slot, slot.default)), `${bp.id}.${slot.name}`)
      if (bp.mode === "batch") {
        const list = bp.slots.find((s) => s.type === "string_list" || s.type === "url_list")
        assert.isTrue(list?.required, `${bp.id}: its first list slot, what a batch runs over, is required`)
      }
    }
  })

  it("condition only on declared output fields, with values those fields can take", () => {
    const conditional = blueprints.flatMap(([, bp]) => bp.graph.edges.filter((e) => e.when !== undefined).map((e) => [bp, e] as const))
    assert.isAtLeast(conditional.length, 5)
    for (const [bp, edge] of conditional) {
      const from = bp.graph.nodes.find((n) => n.id === edge.from)!
      const property = propertiesOf(from)[edge.when!.field]
      assert.isDefined(property, `${bp.id}: ${edge.from} has no output field ${edge.when!.field}`)
      const values = Array.isArray(edge.when!.value) ? edge.when!.value : [edge.when!.value]
      if (Array.isArray(property!.enum)) for (const value of values) assert.include(property!.enum, value, `${bp.id}: ${edge.from} → ${edge.to}`)
      if (property!.type === "boolean") assert.isBoolean(edge.when!.value, `${bp.id}: ${edge.from} → ${edge.to}`)
      if (property!.type === "integer" || property!.type === "number") assert.isNumber(edge.when!.value, `${bp.id}: ${edge.from} → ${edge.to}`)
    }
  })

  it("support_triage: a classifier escalates high and critical tickets and drafts a reply for the rest, exactly one of the two", () => {
    const bp = get("support_triage")
    assert.strictEqual(bp.graph.entry, "classify")
    const classify = bp.graph.nodes.find((n) => n.id === "classify")!
    const properties = propertiesOf(classify)
    assert.includeMembers(Object.keys(properties), ["severity", "category"])
    const severities = properties.severity!.enum as ReadonlyArray<string>
    assert.deepStrictEqual(severities, ["low", "medium", "high", "critical"])
    const edges = bp.graph.edges.filter((e) => e.from === "classify")
    assert.deepStrictEqual(edges.map((e) => e.to).sort(), ["draft_reply", "escalate"])
    for (const severity of severities) {
      const taken = edges.filter((e) => Either.getOrThrow(evaluate(e.when!, { severity, category: "bug" }))).map((e) => e.to)
      assert.deepStrictEqual(taken, [severity === "high" || severity === "critical" ? "escalate" : "draft_reply"], severity)
    }
  })

  it("scheduled_research and daily_digest run on a cron slot with a sensible default; research takes vendors, a count and a focus", () => {
    for (const id of ["scheduled_research", "daily_digest"]) {
      const bp = get(id)
      assert.strictEqual(bp.mode, "scheduled")
      const cron = bp.slots.find((s) => s.type === "cron")
      assert.strictEqual(cron?.name, "schedule")
      assert.isTrue(Either.isRight(slotValue(cron!, cron!.default)), id)
    }
    const research = get("scheduled_research")
    const slot = (name: string) => research.slots.find((s) => s.name === name) ?? assert.fail(name)
    assert.include(["string_list", "url_list"], slot("vendors").type)
    assert.deepInclude(slot("vendor_count"), { type: "integer", min: 1, max: 50 })
    assert.strictEqual(slot("focus").type, "enum")
    assert.isTrue(slot("focus").values?.includes("pricing"))
  })

  it("document_extraction, translation and lead_research run as a batch over their list", () => {
    assert.deepStrictEqual(
      ["document_extraction", "translation", "lead_research"].map((id) => [get(id).mode, get(id).slots.find((s) => s.type.endsWith("_list"))?.name]),
      [["batch", "documents"], ["batch", "documents"], ["batch", "companies"]]
    )
  })
})
