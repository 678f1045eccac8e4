import * as fs from "node:fs"
import { afterEach, describe, it } from "vitest"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** Never meets its second criterion: every session ends on its iteration cap and can be resumed. */
const halfway = { turns: [{ content: "Working on it.", criteria_met: [true, false] }], repeat_last: true }

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

/** `runs --format json [--project P]`: run id and project of each, newest first. */
const runsIn = async (sb: Sandbox, project?: string) => {
  const listed = await sb.run(["runs", "--format", "json", ...(project === undefined ? [] : ["--project", project])])
  if (listed.code !== 0) throw new Error(`runs exited ${listed.code}: ${listed.stderr.join("\n")}`)
  return (json(listed.stdout) as Array<{ run_id: string; project: string }>).map((r) => `${r.run_id}@${r.project}`)
}

describe.concurrent("a project on every run", () => {
  it("a run started with --project is listed under it, not under another, and keeps it when resumed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("halfway.json", halfway)
    const args = ["--criterion", "one", "--criterion", "two", "--max-iterations", "1", "--mock-script", script]
    expect((await sb.run(["run", "Explain dicts", "--run-id", "r1", "--project", "p1", ...args])).code).toBe(3)
    expect((await sb.run(["run", "Explain sets", "--run-id", "r2", ...args])).code).toBe(3)
    expect(await runsIn(sb, "p1")).toEqual(["r1@p1"])
    expect(await runsIn(sb, "p2")).toEqual([])
    expect(await runsIn(sb, "default")).toEqual(["r2@default"])
    expect((await runsIn(sb)).sort()).toEqual(["r1@p1", "r2@default"])
    expect((await sb.show("r1")).project).toBe("p1")
    expect((await sb.run(["show", "r1"])).stdout).toContain("project: p1")

    const resumed = await sb.run(["resume", "r1", "--max-iterations", "2"])
    expect(resumed.code).toBe(3)
    const shown = await sb.show("r1")
    expect(shown.iterations).toBe(2)
    expect(shown.project).toBe("p1")
    expect(sb.checkpoint("r1").project).toBe("p1")
    // `run --resume` without --project keeps the run's own; with another, it is refused and nothing changes.
    expect((await sb.run(["run", "Explain dicts", "--run-id", "r1", "--resume", ...args.slice(0, 4), "--max-iterations", "3"])).code).toBe(3)
    const moved = await sb.run(["run", "Explain dicts", "--run-id", "r1", "--resume", "--project", "p2", ...args.slice(0, 4), "--max-iterations", "4"])
    expect(moved.code).toBe(2)
    expect(moved.stderr).toEqual(["autopilot: run \"r1\" belongs to project \"p1\", not \"p2\"; `autopilot resume r1` continues it in its own"])
    expect((await sb.show("r1")).iterations).toBe(3)
    expect(await runsIn(sb, "p1")).toEqual(["r1@p1"])
  })

  it("a fan-out's children inherit its project", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("halfway.json", halfway)
    const done = await sb.run(["fanout", "--template", "Summarize {item}", "--item", "alpha", "--item", "beta", "--run-id", "f", "--project", "research", "--max-iterations", "4", "--mock-script", script])
    expect(done.code).toBe(0)
    const listed = await runsIn(sb, "research")
    expect(listed.sort()).toEqual(["f.0-alpha@research", "f.1-beta@research", "f@research"])
    expect(await runsIn(sb, "default")).toEqual([])
  })

  it("queue entries belong to a project, and list filters by it", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    expect((await sb.run(["queue", "add", "Write release notes", "--run-id", "notes", "--project", "p1"])).stdout).toEqual(["notes"])
    expect((await sb.run(["queue", "add", "Triage the inbox", "--run-id", "triage"])).stdout).toEqual(["triage"])
    const list = async (...args: Array<string>) =>
      (json((await sb.run(["queue", "list", "--format", "json", ...args])).stdout) as Array<{ id: string; project: string }>).map((e) => `${e.id}@${e.project}`)
    expect(await list("--project", "p1")).toEqual(["notes@p1"])
    expect(await list("--project", "p2")).toEqual([])
    expect(await list()).toEqual(["notes@p1", "triage@default"])
    const added = json((await sb.run(["queue", "add", "Plan the week", "--project", "p2", "--format", "json"])).stdout)
    expect(added.project).toBe("p2")
  })

  it("a bad --project is refused with one line and exit 2, and nothing is written", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const line = "autopilot: project \"two words\" is not allowed: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"
    for (const args of [
      ["run", "Explain dicts", "--project", "two words"],
      ["fanout", "--template", "Summarize {item}", "--item", "a", "--project", "two words"],
      ["queue", "add", "Explain dicts", "--project", "two words"],
      ["queue", "list", "--project", "two words"],
      ["runs", "--project", "two words"]
    ]) {
      const done = await sb.run(args)
      expect(done.code, args.join(" ")).toBe(2)
      expect(done.stderr).toEqual([line])
      expect(done.stdout).toEqual([])
    }
    expect(fs.existsSync(sb.db)).toBe(false)
  })
})
