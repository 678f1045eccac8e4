import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A user definition in the sandbox's `$AUTOPILOT_HOME/specialists`. */
const tutor = (fields: Record<string, unknown> = {}) => ({
  id: "sql-tutor",
  name: "SQL Tutor",
  category: "education",
  role: "Teaches SQL to analysts who know spreadsheets.",
  goal: "Learners write correct, readable queries on their own.",
  background: "Taught database courses for ten years.",
  instructions: ["Start every explanation from a small table the learner can see."],
  allowed_tools: ["read_file"],
  model_tier: "simple",
  ...fields
})

const addSpecialist = (sb: Sandbox, file: string, content: unknown) => {
  fs.mkdirSync(path.join(sb.dir, "specialists"), { recursive: true })
  return sb.writeFile(path.join("specialists", file), typeof content === "string" ? content : JSON.stringify(content))
}

describe.concurrent("autopilot specialists", () => {
  it("lists the built-in catalog with id, name, category and tier, and filters by category", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const listed = await sb.run(["specialists"], { db: false })
    expect(listed.code).toBe(0)
    expect(listed.stderr).toEqual([])
    expect(listed.stdout[0]).toMatch(/^ID +NAME +CATEGORY +TIER$/)
    const rows = listed.stdout.slice(1).filter((line) => /^[a-z0-9-]+ {2,}/.test(line))
    expect(rows.length).toBeGreaterThanOrEqual(40)
    expect(listed.stdout).toContainEqual(expect.stringMatching(/^security-auditor +Security Auditor +security +complex$/))
    expect(listed.stdout).toContainEqual(expect.stringMatching(/^sre +Site Reliability Engineer +operations +medium$/))
    expect(listed.stdout.join("\n")).toContain(`${path.join(sb.dir, "specialists")}/*.json`)

    const json = await sb.run(["specialists", "--format", "json"], { db: false })
    const all = JSON.parse(json.stdout.join("\n")) as Array<Record<string, any>>
    expect(all.length).toBe(rows.length)
    expect(new Set(all.map((s) => s.id)).size).toBe(all.length)
    expect(all.find((s) => s.id === "code-reviewer")).toMatchObject({ category: "engineering", allowed_tools: ["read_file", "list_files"], file: null })

    const security = await sb.run(["specialists", "--category", "security", "--format", "json"], { db: false })
    const inSecurity = JSON.parse(security.stdout.join("\n")) as Array<Record<string, any>>
    expect(inSecurity.map((s) => s.id)).toContain("security-auditor")
    expect(inSecurity.every((s) => s.category === "security")).toBe(true)
    expect(inSecurity.length).toBe(all.filter((s) => s.category === "security").length)
  })

  it("shows one specialist, as text and as JSON", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const text = await sb.run(["specialists", "show", "security-auditor"], { db: false })
    expect(text.code).toBe(0)
    expect(text.stdout[0]).toBe("security-auditor: Security Auditor")
    expect(text.stdout[1]).toBe("category: security · model tier: complex · tools: read_file, list_files")
    expect(text.stdout).toContain("defined in: the built-in catalog")
    expect(text.stdout).toContainEqual(expect.stringMatching(/^ {2}1\. Map the attack surface first/))
    const json = JSON.parse((await sb.run(["specialists", "show", "architect", "--format", "json"], { db: false })).stdout.join("\n"))
    expect(Object.keys(json)).toEqual(["id", "name", "category", "role", "goal", "background", "instructions", "allowed_tools", "model_tier", "file"])
    expect(json.model_tier).toBe("complex")
  })

  it("adds the user's own, lets one replace a built-in, and names a bad file's wrong field on one line while the rest load", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const good = addSpecialist(sb, "tutor.json", tutor())
    const bad = addSpecialist(sb, "bad.json", tutor({ id: "bad-one", model_tier: "huge" }))
    const override = addSpecialist(sb, "architect.json", tutor({ id: "architect", name: "Our Architect", category: "engineering" }))
    const listed = await sb.run(["specialists"], { db: false })
    expect(listed.code).toBe(0)
    expect(listed.stderr).toEqual([
      `autopilot: warning: specialist file ${bad} skipped: model_tier: must be "simple", "medium" or "complex"`
    ])
    expect(listed.stdout).toContainEqual(expect.stringMatching(new RegExp(`^sql-tutor +SQL Tutor +education +simple +\\(${good}\\)$`)))
    expect(listed.stdout).toContainEqual(expect.stringMatching(new RegExp(`^architect +Our Architect +engineering +simple +\\(${override}\\)$`)))
    expect(listed.stdout.join("\n")).not.toContain("bad-one")
    const shown = await sb.run(["specialists", "show", "sql-tutor"], { db: false })
    expect(shown.stdout).toContain(`defined in: ${good}`)
  })

  it("an unknown category or id is one line and exit 2", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const category = await sb.run(["specialists", "--category", "magic"], { db: false })
    expect(category.code).toBe(2)
    expect(category.stdout).toEqual([])
    expect(category.stderr).toEqual([expect.stringMatching(/^autopilot: unknown category "magic"; categories: data, engineering, .*writing$/)])
    const id = await sb.run(["specialists", "show", "wizard"], { db: false })
    expect(id.code).toBe(2)
    expect(id.stderr).toEqual([expect.stringMatching(/^autopilot: unknown specialist "wizard"; `autopilot specialists` lists the \d+ there are$/)])
    expect(sb.files()).toEqual([])
  })
})

describe.concurrent("autopilot run --specialist", () => {
  it("puts the specialist's brief in the act system prompt and records it with the run", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const run = await sb.run(["run", "Audit the login code", "--criterion", "findings listed", "--specialist", "security-auditor", "--run-id", "audit"])
    expect(run.code).toBe(0)
    expect(run.stdout[0]).toBe("Starting run audit as Security Auditor (security-auditor) at iteration 1: Audit the login code")
    const shown = await sb.show("audit")
    expect(shown.specialist).toMatchObject({ id: "security-auditor", model_tier: "complex", allowed_tools: ["read_file", "list_files"] })
    const messages = JSON.parse((await sb.run(["show", "audit", "--messages", "--format", "json"])).stdout.join("\n"))
    const system = messages.steps[0].messages.act[0]
    expect(system.role).toBe("system")
    expect(system.content).toMatch(/^You are the Security Auditor\. Reviews code/)
    for (const instruction of shown.specialist.instructions) expect(system.content).toContain(`- ${instruction}`)
    expect(system.content).toContain("Tools you may use in this role: read_file, list_files; no others.")
    expect(messages.steps[0].messages.judge[0].content).not.toContain("Security Auditor")
    const text = await sb.run(["show", "audit"])
    expect(text.stdout).toContain("specialist: security-auditor (Security Auditor, model tier complex)")
  })

  it("refuses a tool outside the allow-list without running it, and says so in the tool_call event", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", {
      turns: [{
        content: "Reviewing.",
        tool_calls: [
          { name: "write_file", arguments: { path: "pwned.txt", content: "x" } },
          { name: "list_files", arguments: {} }
        ],
        criteria_met: [true]
      }]
    })
    const run = await sb.run(["run", "Audit", "--specialist", "security-auditor", "--mock-script", script, "--run-id", "r", "--format", "jsonl"])
    expect(run.code).toBe(0)
    const calls = run.stdout.map((line) => JSON.parse(line)).filter((e) => e.kind === "tool_call")
    expect(calls.map((c) => [c.name, c.ok, c.refused])).toEqual([["write_file", false, true], ["list_files", true, undefined]])
    expect(calls[0].output).toBe(`refused: the security-auditor specialist may not use "write_file"; its tools: read_file, list_files`)
    expect(fs.existsSync(path.join(sb.dir, "workspaces", "r", "pwned.txt"))).toBe(false)
    const text = await sb.run(["events", "r"])
    expect(text.stdout).toContain(`    tool write_file not run, refused: the security-auditor specialist may not use "write_file"; its tools: read_file, list_files`)
    expect(text.stdout).toContain(`    tool list_files -> "." is empty`)
  })

  it("resume keeps the specialist as it was defined when the run started, though its file changed since", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const file = addSpecialist(sb, "tutor.json", tutor())
    const script = sb.writeFile("never.json", { turns: [{ content: "Lesson.", criteria_met: [false] }] })
    const first = await sb.run(["run", "Teach joins", "--specialist", "sql-tutor", "--mock-script", script, "--run-id", "t", "--max-iterations", "1"])
    expect(first.code).toBe(4)
    fs.writeFileSync(file, JSON.stringify(tutor({ instructions: ["Edited after the run started."], model_tier: "complex" })))

    const resumed = await sb.run(["resume", "t", "--max-iterations", "2", "--format", "jsonl"])
    expect(resumed.code).toBe(4)
    const started = JSON.parse(resumed.stdout[0]!)
    expect(started).toMatchObject({ kind: "run_started", resuming: true, specialist: tutor() })
    const shown = JSON.parse((await sb.run(["show", "t", "--messages", "--format", "json"])).stdout.join("\n"))
    expect(shown.specialist).toEqual(tutor())
    expect(shown.steps.map((step: any) => step.messages.act[0].content.includes("Start every explanation"))).toEqual([true, true])
    expect(JSON.stringify(shown)).not.toContain("Edited after the run started")

    // Asking for another specialist on a resume is bad input; the run is left as it was.
    const other = await sb.run(["run", "Teach joins", "--resume", "--run-id", "t", "--specialist", "architect"])
    expect(other.code).toBe(2)
    expect(other.stderr).toEqual([`autopilot: run "t" was started as specialist "sql-tutor"; \`autopilot resume t\` continues it as it was`])
    expect((await sb.show("t")).iterations).toBe(2)
  })

  it("an unknown specialist is one line, exit 2, and nothing written", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const run = await sb.run(["run", "Audit", "--specialist", "wizard"])
    expect(run.code).toBe(2)
    expect(run.stdout).toEqual([])
    expect(run.stderr).toEqual([expect.stringMatching(/^autopilot: unknown specialist "wizard"; `autopilot specialists` lists the \d+ there are$/)])
    expect(sb.files()).toEqual([])
  })

  it("a bad user file is a warning, not a failure, for a run as another specialist", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const bad = addSpecialist(sb, "broken.json", "{\"id\": ")
    const run = await sb.run(["run", "Write the README", "--specialist", "technical-writer", "--run-id", "w"])
    expect(run.code).toBe(0)
    expect(run.stderr[0]).toMatch(new RegExp(`^autopilot: warning: specialist file ${bad} skipped: is not valid JSON`))
    expect((await sb.show("w")).specialist.id).toBe("technical-writer")
  })
})
