import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A user blueprint in the sandbox's `$AUTOPILOT_HOME/blueprints`. */
const okr = (fields: Record<string, unknown> = {}) => ({
  id: "okr_check_in",
  version: 1,
  title: "Monthly OKR check-in",
  description: "Collects each team's key-result progress and writes the monthly check-in.",
  category: "planning",
  example_goals: ["prepare the monthly OKR check-in"],
  mode: "once",
  slots: [{ name: "updates", type: "text", required: true, description: "Workspace folder with the teams' updates." }],
  graph: {
    entry: "collect",
    nodes: [
      { id: "collect", specialist: "project-manager", prompt: "Read {updates}.", tools: ["read_file"], model_tier: "simple" },
      { id: "write", specialist: "technical-writer", prompt: "Write the check-in from {collect.output}.", tools: ["write_file"], model_tier: "medium" }
    ],
    edges: [{ from: "collect", to: "write" }]
  },
  success_criteria: ["every key result has a status"],
  budget: { max_iterations: 10 },
  curation: { capture: false },
  ...fields
})

const addBlueprint = (sb: Sandbox, file: string, content: unknown) => {
  fs.mkdirSync(path.join(sb.dir, "blueprints"), { recursive: true })
  return sb.writeFile(path.join("blueprints", file), typeof content === "string" ? content : JSON.stringify(content))
}

describe.concurrent("autopilot blueprints", () => {
  it("lists the built-in catalog grouped by category with id, mode, slot count and title, and filters by category", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const listed = await sb.run(["blueprints"], { db: false })
    expect(listed.code).toBe(0)
    expect(listed.stderr).toEqual([])
    const rows = listed.stdout.filter((line) => /^ {2}[a-z_]+ {2,}/.test(line))
    expect(rows.length).toBeGreaterThanOrEqual(12)
    const support = listed.stdout.indexOf("support")
    expect(support).toBeGreaterThan(-1)
    expect(listed.stdout[support + 1]).toMatch(/^ {2}support_triage +batch +4 slots +Support ticket triage with escalation and draft replies$/)
    expect(listed.stdout).toContainEqual(expect.stringMatching(/^ {2}scheduled_research +scheduled +5 slots +Recurring competitive and market research$/))
    expect(listed.stdout).toContainEqual(expect.stringMatching(/^ {2}code_review +once +\d slots +Code review/))
    expect(listed.stdout.join("\n")).toMatch(/^\d+ blueprints in \d+ categories\. `autopilot blueprints show ID` shows one\.$/m)
    expect(listed.stdout.join("\n")).toContain(`${path.join(sb.dir, "blueprints")}/*.json`)

    const json = await sb.run(["blueprints", "--format", "json"], { db: false })
    const all = JSON.parse(json.stdout.join("\n")) as Array<Record<string, any>>
    expect(all.length).toBe(rows.length)
    expect(new Set(all.map((b) => b.id)).size).toBe(all.length)
    expect(Object.keys(all[0]!)).toEqual(["id", "version", "title", "description", "category", "example_goals", "mode", "slots", "graph", "success_criteria", "budget", "curation"])
    const triage = all.find((b) => b.id === "support_triage")!
    expect(triage.graph.edges).toContainEqual({ from: "classify", to: "escalate", when: { field: "severity", op: "in", value: ["high", "critical"] } })

    const writing = await sb.run(["blueprints", "--category", "writing", "--format", "json"], { db: false })
    const inWriting = JSON.parse(writing.stdout.join("\n")) as Array<Record<string, any>>
    expect(inWriting.map((b) => b.id)).toEqual(expect.arrayContaining(["content_writing", "translation"]))
    expect(inWriting.every((b) => b.category === "writing")).toBe(true)
    expect(inWriting.length).toBe(all.filter((b) => b.category === "writing").length)
    const text = await sb.run(["blueprints", "--category", "writing"], { db: false })
    expect(text.stdout[0]).toBe("writing")
  })

  it("shows one blueprint as text: slots, nodes, edges with their conditions, criteria, budget and example goals", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const shown = await sb.run(["blueprints", "show", "support_triage"], { db: false })
    expect(shown.code).toBe(0)
    const out = shown.stdout
    expect(out[0]).toBe("support_triage: Support ticket triage with escalation and draft replies")
    expect(out[1]).toBe("category: support · mode: batch (one run per item of tickets) · version 1")
    expect(out).toContain("defined in: the built-in catalog")
    expect(out).toContain("  tickets: string_list, required")
    expect(out).toContain(`  tone: enum (friendly, formal, concise), optional, default "friendly"`)
    expect(out).toContainEqual(expect.stringMatching(/^ {2}classify \(entry\): specialist support-triage-lead · model tier simple · tools: read_file, list_files · output: \{severity, category, /))
    expect(out).toContain(`  classify → escalate  when severity in ["high","critical"]`)
    expect(out).toContain(`  classify → draft_reply  when severity not in ["high","critical"]`)
    expect(out).toContainEqual(expect.stringMatching(/^ {2}1\. The ticket has a severity and a category/))
    expect(out).toContain("budget: 600 s · 30 tool calls · 200,000 tokens · $0.50 · 15 iterations")
    expect(out).toContain("  - Triage the support tickets in the queue and draft replies to the easy ones")
    expect(out).toContainEqual(expect.stringMatching(/^healing \(the default policy\): 4 attempts per node, 12 per mission; .*schema_violation: stricter output → temperature 0 → fallback model;/))

    const research = await sb.run(["blueprints", "show", "scheduled_research"], { db: false })
    expect(research.stdout).toContain("category: research · mode: scheduled (on the cron of schedule) · version 1")
    expect(research.stdout).toContain(`  schedule: cron, required, default "0 9 * * 1"`)
    expect(research.stdout).toContain("  vendor_count: integer 1–50, optional, default 5")
  })

  it("show --format json prints the blueprint as its file holds it, which loads back as a user file", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const shown = await sb.run(["blueprints", "show", "meeting_notes", "--format", "json"], { db: false })
    expect(shown.code).toBe(0)
    const blueprint = JSON.parse(shown.stdout.join("\n"))
    expect(blueprint).toMatchObject({ id: "meeting_notes", mode: "once", graph: { entry: "extract" } })
    const file = addBlueprint(sb, "notes.json", { ...blueprint, id: "our_meeting_notes", title: "Our meeting notes" })
    const listed = await sb.run(["blueprints", "--category", "productivity"], { db: false })
    expect(listed.stderr).toEqual([])
    expect(listed.stdout).toContainEqual(expect.stringMatching(new RegExp(`^ {2}our_meeting_notes +once +4 slots +Our meeting notes +\\(${file}\\)$`)))
  })

  it("adds the user's own, lets one replace a built-in, and names a bad file's wrong field on one line while the rest load", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const good = addBlueprint(sb, "okr.json", okr({ healing: { max_attempts_per_node: 2, ladders: { cost_spike: [] } } }))
    const edge = okr({ id: "bad_edge" }) as any
    edge.graph.edges.push({ from: "write", to: "publish" })
    const badEdge = addBlueprint(sb, "bad-edge.json", edge)
    const typo = addBlueprint(sb, "typo.json", { ...okr({ id: "typo" }), exmaple_goals: ["x"] })
    const override = addBlueprint(sb, "triage.json", okr({ id: "support_triage", category: "support", title: "Our triage" }))
    const listed = await sb.run(["blueprints"], { db: false })
    expect(listed.code).toBe(0)
    expect(listed.stderr).toEqual([
      `autopilot: warning: blueprint file ${badEdge} skipped: graph.edges[1].to: no node has the id publish`,
      expect.stringMatching(new RegExp(`^autopilot: warning: blueprint file ${typo} skipped: exmaple_goals: is not a field of a blueprint \\(misspelt\\?\\); its fields: id, version, title, description, category, example_goals, mode, slots, graph, success_criteria, budget, curation, healing$`))
    ])
    expect(listed.stdout).toContain("planning")
    expect(listed.stdout).toContainEqual(expect.stringMatching(new RegExp(`^ {2}okr_check_in +once +1 slot +Monthly OKR check-in +\\(${good}\\)$`)))
    expect(listed.stdout).toContainEqual(expect.stringMatching(new RegExp(`^ {2}support_triage +once +1 slot +Our triage +\\(${override}\\)$`)))
    expect(listed.stdout.join("\n")).not.toContain("bad_edge")
    const shown = await sb.run(["blueprints", "show", "okr_check_in"], { db: false })
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain(`defined in: ${good}`)
    expect(shown.stdout).toContainEqual(expect.stringMatching(/^healing: 2 attempts per node, 12 per mission; .*cost_spike: no retry;/))
    expect(shown.stderr.length).toBe(2)
  })

  it("an unknown category or id is one line and exit 2, and nothing is written", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const category = await sb.run(["blueprints", "--category", "magic"], { db: false })
    expect(category.code).toBe(2)
    expect(category.stdout).toEqual([])
    expect(category.stderr).toEqual([expect.stringMatching(/^autopilot: unknown category "magic"; categories: data, engineering, .*writing$/)])
    const id = await sb.run(["blueprints", "show", "wizardry"], { db: false })
    expect(id.code).toBe(2)
    expect(id.stdout).toEqual([])
    expect(id.stderr).toEqual([expect.stringMatching(/^autopilot: unknown blueprint "wizardry"; `autopilot blueprints` lists the \d+ there are$/)])
    const format = await sb.run(["blueprints", "--format", "yaml"], { db: false })
    expect(format.code).toBe(2)
    expect(format.stderr).toEqual([`autopilot: --format must be text or json, got "yaml" (see \`autopilot blueprints --help\`)`])
    expect(sb.files()).toEqual([])
  })

  it("a malformed file's warning does not change the exit code of a listing, nor that of an unknown id", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const broken = addBlueprint(sb, "broken.json", "{ \"id\": \"half")
    const listed = await sb.run(["blueprints", "--format", "json"], { db: false })
    expect(listed.code).toBe(0)
    expect(listed.stderr).toEqual([expect.stringMatching(new RegExp(`^autopilot: warning: blueprint file ${broken} skipped: is not valid JSON: `))])
    expect(JSON.parse(listed.stdout.join("\n")).length).toBeGreaterThanOrEqual(12)
    const unknown = await sb.run(["blueprints", "show", "broken"], { db: false })
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toHaveLength(2)
  })

  it("blueprints add keeps a valid file as the user's own, which goals then route to; it never replaces another", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const file = sb.writeFile("okr.json", okr({ example_goals: ["prepare the monthly OKR check-in", "write our OKR check-in for this month"] }))
    const added = await sb.run(["blueprints", "add", file], { db: false })
    expect(added.code).toBe(0)
    expect(added.stdout).toEqual([`ok: blueprint okr_check_in kept as ${path.join(sb.dir, "blueprints", "okr_check_in.json")}; goals can be routed to it now`])
    const shown = await sb.run(["blueprints", "show", "okr_check_in", "--format", "json"], { db: false })
    expect(JSON.parse(shown.stdout.join("\n"))).toMatchObject({ id: "okr_check_in", title: "Monthly OKR check-in" })

    const again = await sb.run(["blueprints", "add", file], { db: false })
    expect(again.code).toBe(2)
    expect(again.stderr).toEqual([expect.stringMatching(/^autopilot: blueprint id "okr_check_in" is taken by .*okr_check_in\.json; choose another id$/)])
    const builtIn = await sb.run(["blueprints", "add", sb.writeFile("triage.json", okr({ id: "support_triage" }))], { db: false })
    expect(builtIn.stderr).toEqual(["autopilot: blueprint id \"support_triage\" is taken by the built-in catalog; choose another id"])
  })

  it("blueprints add refuses a malformed file in one line naming the field, exit 2, and writes nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cases: ReadonlyArray<[unknown, RegExp]> = [
      ["{ not json", /: is not valid JSON: /],
      [okr({ mode: "weekly" }), /: mode: must be one of "once", "scheduled", "batch", got "weekly"/],
      [okr({ graph: { ...okr().graph, edges: [{ from: "collect", to: "nowhere" }] } }), /graph\.edges\[0\]\.to: no node has the id nowhere/],
      [okr({ slots: [] }), /graph\.nodes\[0\]\.prompt: refers to \{updates\}, which is not a slot/]
    ]
    for (const [content, message] of cases) {
      const file = sb.writeFile("bad.json", typeof content === "string" ? content : JSON.stringify(content))
      const refused = await sb.run(["blueprints", "add", file], { db: false })
      expect(refused.code).toBe(2)
      expect(refused.stdout).toEqual([])
      expect(refused.stderr).toEqual([expect.stringMatching(message)])
      expect(fs.existsSync(path.join(sb.dir, "blueprints"))).toBe(false)
    }
  })
})
