import { Effect } from "effect"
import { afterEach, describe, it } from "vitest"
import { chain, layerSqlite, madeMission } from "../missions/fixtures.js"
import { type CliEvent, cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A mission of `chain` made (and, unless `draft`, approved) through the service on the sandbox's file. */
const mission = (sb: Sandbox, options: { readonly draft?: boolean; readonly cancelled?: boolean } = {}) =>
  Effect.runPromise(madeMission(chain(), options).pipe(Effect.provide(layerSqlite(sb.db))))

/**
 * `second` never meets its criterion, slowly, so a stop or a signal lands while it runs and `first` has
 * finished. Its iterations are cheap beside `first`'s: on a busy machine it may iterate for a while before
 * the stop lands, and must not reach a cost spike (3× what `first` cost) meanwhile.
 */
const endless = (sb: Sandbox) =>
  sb.writeFile("script.json", {
    nodes: {
      first: [{ content: "First part done.", cost_usd: 0.1 }],
      second: [{ content: "Still working on the second part.", criteria_met: [false], latency_ms: 500, cost_usd: 0.0001 }]
    }
  })

/** What the next process reads from the recorded script: `second` done at once. */
const quick = (sb: Sandbox) =>
  sb.writeFile("script.json", { nodes: { first: [{ content: "First part again?" }], second: [{ content: "Second part done." }] } })

/** `second` answers slowly, so a signal or a kill lands while it runs and `first` has finished. */
const script = (sb: Sandbox, latencyMs: number) =>
  sb.writeFile("script.json", {
    nodes: {
      first: [{ content: "First part done." }],
      second: [{ content: "Second part done.", latency_ms: latencyMs }]
    }
  })

const missionStatus = async (sb: Sandbox, id: string) => {
  const shown = await sb.run(["missions", "show", id, "--format", "json"])
  return JSON.parse(shown.stdout.join("\n")).status as string
}

/** Every event of a run, as `autopilot events` prints them. */
const eventsOf = async (sb: Sandbox, runId: string): Promise<Array<CliEvent>> => {
  const listed = await sb.run(["events", runId, "--format", "jsonl"])
  if (listed.code !== 0) throw new Error(`events ${runId}: ${listed.stderr.join("\n")}`)
  return listed.stdout.map((line) => JSON.parse(line) as CliEvent)
}

const started = (events: ReadonlyArray<CliEvent>, node: string) => events.filter((e) => e.kind === "node_started" && e.node === node)

/** What bad input must leave as it was: the missions, their history, and every run's rows. */
const snapshot = (sb: Sandbox) =>
  sb.sql((db) => {
    const has = (table: string) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined
    const all = (table: string) => (has(table) ? db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() : [])
    return {
      missions: all("missions"),
      transitions: all("mission_transitions"),
      checkpoints: all("checkpoints"),
      steps: all("steps"),
      events: all("events")
    }
  })

describe.concurrent("autopilot missions run", () => {
  it("runs a scheduled mission's graph with live output: the mission's events and its nodes' events behind their names; show and events work on its run", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const ran = await sb.run(["missions", "run", id, "--mock-script", script(sb, 0)])
    expect(ran.code, ran.stderr.join("\n")).toBe(0)
    expect(ran.stderr).toEqual([`database: ${sb.db}`])
    const out = ran.stdout.join("\n")
    expect(out).toContain(`Starting run ${id}`)
    expect(out).toContain(`  node first started as ${id}.first`)
    expect(out).toMatch(/^ {2}first │ Starting run /m)
    expect(out).toMatch(/^ {2}second │ \[1\] criteria 1\/1 · left: /m)
    expect(out).toMatch(/^ {2}second │ {7}Second part done\.$/m)
    expect(out).toContain("  node second succeeded")
    expect(ran.stdout).toContain(`mission ${id} completed`)
    expect(await missionStatus(sb, id)).toBe("completed")

    // The mission's run is a run like any other.
    const shown = await sb.show(id)
    expect(shown).toMatchObject({ run_id: id, status: "completed" })
    const events = await eventsOf(sb, id)
    expect(events.map((e) => e.kind).filter((k) => k.startsWith("node_"))).toEqual(["node_started", "node_ended", "node_started", "node_ended"])
    expect(events.at(-1)).toMatchObject({ kind: "result", run_id: id, status: "completed" })

    // Run again: it has ended, and says so.
    const again = await sb.run(["missions", "run", id])
    expect(again.code).toBe(2)
    expect(again.stderr).toEqual([`autopilot: mission ${id} has ended (completed): there is nothing left to run`])
  })

  it("--format jsonl writes the mission's and its nodes' events, one per line, the mission's result last; --format json one object at the end", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const ran = sb.start(["missions", "run", id, "--format", "jsonl", "--max-parallel", "2"], { env: { AUTOPILOT_MOCK_SCRIPT: script(sb, 0) } })
    const exit = await ran.waitForExit()
    expect(exit.code, exit.stderr.join("\n")).toBe(0)
    const events = ran.events()
    expect(new Set(events.map((e) => e.run_id))).toEqual(new Set([id, `${id}.first`, `${id}.second`]))
    expect(events.at(-1)).toMatchObject({ kind: "result", run_id: id, status: "completed" })
    expect(events[0]).toMatchObject({ kind: "run_started", run_id: id, mission: { mission_id: id, max_parallel: 2 } })
    // The node's answer is the scripted one: $AUTOPILOT_MOCK_SCRIPT stood in for --mock-script.
    expect(events.find((e) => e.kind === "iteration" && e.run_id === `${id}.second`)?.summary).toContain("Second part done.")

    const other = await mission(sb)
    const json = await sb.run(["missions", "run", other, "--format", "json", "--mock-script", script(sb, 0)])
    expect(json.code).toBe(0)
    const body = JSON.parse(json.stdout.join("\n"))
    expect(body).toMatchObject({ mission_id: other, status: "completed", run: { run_id: other, status: "completed" } })
    expect(body.nodes.map((n: { node: string; status: string }) => [n.node, n.status])).toEqual([["first", "succeeded"], ["second", "succeeded"]])
  })
})

describe.concurrent("autopilot missions run: bad input is one line, exit 2, nothing written", () => {
  const refused = async (sb: Sandbox, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const before = snapshot(sb)
    const ran = await sb.run(args, { env })
    const after = snapshot(sb)
    return { ...ran, unchanged: JSON.stringify(before) === JSON.stringify(after) }
  }

  it("a draft, a cancelled and an unknown mission", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const draft = await mission(sb, { draft: true })
    const cancelled = await mission(sb, { cancelled: true })
    for (
      const [id, message] of [
        [draft, `mission ${draft} is a draft: approve it first (\`autopilot approve ${draft}\`)`],
        [cancelled, `mission ${cancelled} was cancelled: a cancelled mission does not run`],
        ["ms-nope", `autopilot: no mission "ms-nope" in project "default"`]
      ]
    ) {
      const ran = await refused(sb, ["missions", "run", id!])
      expect(ran.code).toBe(2)
      expect(ran.stderr).toHaveLength(1)
      expect(ran.stderr[0]).toContain(message)
      expect(ran.stdout).toEqual([])
      expect(ran.unchanged).toBe(true)
    }
    // No database at all: none is made.
    const missing = await sb.run(["missions", "run", "ms-x", "--db", `${sb.dir}/none.db`], { db: false })
    expect(missing.code).toBe(2)
    expect(sb.files()).not.toContain("none.db")
  })

  it.for([
    {
      what: "a cycle",
      graph: (g: any) => ({ ...g, edges: [...g.edges, { from: "second", to: "first" }] }),
      says: /cycle/
    },
    {
      what: "an unknown node in an edge",
      graph: (g: any) => ({ ...g, edges: [...g.edges, { from: "second", to: "ghost" }] }),
      says: /ghost/
    },
    {
      what: "a condition that does not parse",
      graph: (g: any) => ({ ...g, edges: [{ from: "first", to: "second", when: { field: "not a path!", op: "resembles" } }] }),
      says: /stored blueprint does not decode, so it cannot be used: graph\.edges\[0\]\.when\.field: must be a dotted path of field names/
    }
  ])("a stored blueprint graph with $what", async ({ graph, says }, context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    sb.sql((db) => {
      const row = db.prepare("SELECT blueprint_json FROM missions WHERE mission_id = ?").get(id) as { blueprint_json: string }
      const blueprint = JSON.parse(row.blueprint_json)
      db.prepare("UPDATE missions SET blueprint_json = ? WHERE mission_id = ?").run(JSON.stringify({ ...blueprint, graph: graph(blueprint.graph) }), id)
    })
    const ran = await refused(sb, ["missions", "run", id, "--mock-script", script(sb, 0)])
    expect(ran.code).toBe(2)
    expect(ran.stderr).toHaveLength(1)
    expect(ran.stderr[0]).toMatch(/^autopilot: mission ms-/)
    expect(ran.stderr[0]).toMatch(says)
    expect(ran.unchanged).toBe(true)
    expect(sb.sql((db) => db.prepare("SELECT status FROM missions WHERE mission_id = ?").get(id))).toEqual({ status: "scheduled" })
  })

  it("--max-parallel 0, a fallback flag without --fallback-llm, and --fallback-llm openai without its base URL", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["--max-parallel", "0"], `autopilot: --max-parallel must be a whole number from 1 to 1000, got "0"`],
      [["--max-parallel", "two"], `autopilot: --max-parallel must be a whole number from 1 to 1000, got "two"`],
      [["--fallback-model", "gpt-4o"], "autopilot: --fallback-model needs --fallback-llm naming the fallback provider"],
      [["--fallback-llm", "gemini"], `--fallback-llm must be mock or openai or harness, got "gemini"`],
      [["--fallback-llm", "openai"], "AUTOPILOT_FALLBACK_LLM_BASE_URL"],
      [["--llm", "openai"], "AUTOPILOT_LLM_BASE_URL"]
    ]
    for (const [flags, message] of cases) {
      const ran = await refused(sb, ["missions", "run", id, ...flags])
      expect(ran.code, flags.join(" ")).toBe(2)
      expect(ran.stderr, flags.join(" ")).toHaveLength(1)
      expect(ran.stderr[0]).toContain(message)
      expect(ran.unchanged, flags.join(" ")).toBe(true)
    }
    expect(await missionStatus(sb, id)).toBe("scheduled")
  })
})

describe.concurrent("a mission's run across processes: kill -9, signals, stop", () => {
  it.for([
    { how: "missions run", again: (id: string) => ["missions", "run", id] },
    { how: "resume", again: (id: string) => ["resume", id] }
  ])("after kill -9 mid-graph, `$how` finishes it without running the finished node again", async ({ again }, context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const first = sb.start(["missions", "run", id, "--format", "jsonl", "--mock-script", script(sb, 60_000)])
    await first.event((e) => e.kind === "node_started" && e.node === "second")
    await first.event((e) => e.kind === "run_started" && e.run_id === `${id}.second`)
    first.signal("SIGKILL")
    expect((await first.waitForExit()).signal).toBe("SIGKILL")
    const firstNode = { steps: sb.count("steps", `${id}.first`), checkpoint: sb.checkpoint(`${id}.first`) }
    expect(firstNode.steps).toBe(1)
    expect(await missionStatus(sb, id)).toBe("running")

    // The script is recorded with the run (by its path); the next process finds `second` quick.
    quick(sb)
    const resumed = sb.start([...again(id), "--format", "jsonl"])
    const exit = await resumed.waitForExit()
    expect(exit.code, resumed.transcript()).toBe(0)
    const events = resumed.events()
    expect(events[0]).toMatchObject({ kind: "run_started", run_id: id, resuming: true })
    expect(events.some((e) => e.run_id === `${id}.first`)).toBe(false)
    expect(started(events, "first")).toEqual([])

    expect(sb.count("steps", `${id}.first`)).toBe(firstNode.steps)
    expect(sb.checkpoint(`${id}.first`)).toEqual(firstNode.checkpoint)
    const all = await eventsOf(sb, id)
    expect(started(all, "first")).toHaveLength(1)
    expect(all.filter((e) => e.kind === "node_ended" && e.node === "first")).toHaveLength(1)
    expect(all.at(-1)).toMatchObject({ kind: "result", status: "completed" })
    expect(await missionStatus(sb, id)).toBe("completed")
  })

  it("SIGTERM halts the mission at the next boundary; `missions run` then resumes it to completed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const first = sb.start(["missions", "run", id, "--format", "jsonl", "--grace-seconds", "30", "--mock-script", endless(sb)])
    await first.event((e) => e.kind === "iteration" && e.run_id === `${id}.second`)
    first.signal("SIGTERM")
    const exit = await first.waitForExit()
    expect(exit.code, first.transcript()).toBe(4)
    expect(first.events().at(-1)).toMatchObject({ kind: "result", run_id: id, status: "halted", halt_reason: "halted by SIGTERM" })
    expect(await missionStatus(sb, id)).toBe("halted")
    expect(first.events().find((e) => e.kind === "result" && e.run_id === `${id}.second`)).toMatchObject({ status: "halted" })

    // A mission runs on its blueprint's budget: caps given to `resume` are refused, not ignored.
    const capped = await sb.run(["resume", id, "--max-iterations", "5"])
    expect(capped.code).toBe(2)
    expect(capped.stderr).toEqual([
      `autopilot: run "${id}" is the run of mission ${id}, which runs on its blueprint's budget and settings: budget caps do not apply to it`
    ])
    expect(await missionStatus(sb, id)).toBe("halted")

    quick(sb)
    const resumed = await sb.run(["missions", "run", id])
    expect(resumed.code, resumed.stderr.join("\n")).toBe(0)
    expect(await missionStatus(sb, id)).toBe("completed")
    expect(started(await eventsOf(sb, id), "first")).toHaveLength(1)
  })

  it("`autopilot stop <mission id>` from another process halts the mission", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb)
    const first = sb.start(["missions", "run", id, "--format", "jsonl", "--grace-seconds", "30", "--mock-script", endless(sb)])
    await first.event((e) => e.kind === "iteration" && e.run_id === `${id}.second`)
    const stop = await sb.run(["stop", id, "--reason", "enough for today"])
    expect(stop.code, stop.stderr.join("\n")).toBe(0)
    const exit = await first.waitForExit()
    expect(exit.code, first.transcript()).toBe(4)
    expect(first.events().at(-1)).toMatchObject({ kind: "result", run_id: id, status: "halted", halt_reason: "enough for today" })
    expect(await missionStatus(sb, id)).toBe("halted")
    const shown = await sb.show(id)
    expect(shown).toMatchObject({ status: "halted", halt_reason: "enough for today" })
  })
})
