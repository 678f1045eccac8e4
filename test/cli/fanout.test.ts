import { afterEach, describe, it } from "vitest"
import { type CliEvent, cleanup, type Sandbox, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)

const items = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

/** Six children, two at a time, 12 iterations shared: 2 each; every child meets its first criterion only. */
const fanoutArgs = (script: string, ...more: ReadonlyArray<string>) => [
  "fanout",
  "--template",
  "Research {item}",
  ...items.flatMap((item) => ["--item", item]),
  "--criterion",
  "first about {item}",
  "--criterion",
  "second",
  "--max-parallel",
  "2",
  "--max-iterations",
  "12",
  "--run-id",
  "fan",
  "--mock-script",
  script,
  "--format",
  "jsonl",
  ...more
]

const childId = (i: number) => `fan.${i}-${items[i]}`

const sessions = (sb: Sandbox, runId: string) =>
  (sb.sql((db) => db.prepare("SELECT COUNT(*) AS n FROM events WHERE run_id = ? AND kind = 'run_started'").get(runId)) as { n: number }).n

const axes = ["tool_calls", "tokens", "dollars", "iterations"] as const

/** The fan-out's usage, but for its own wall clock, is its children's summed, exactly (dollars to 12 digits). */
const expectUsageOfChildren = (sb: Sandbox, expect: (v: unknown) => any) => {
  const parent = sb.checkpoint("fan")["usage"]
  const children = items.map((_, i) => sb.checkpoint(childId(i))["usage"])
  for (const axis of axes) {
    const sum = children.reduce((n: number, u: Record<string, number>) => n + u[axis]!, 0)
    expect(axis === "dollars" ? Number(parent[axis].toPrecision(12)) : parent[axis]).toBe(axis === "dollars" ? Number(sum.toPrecision(12)) : sum)
  }
  expect(parent["iterations"]).toBe(12)
}

/** What a child's first session left: its steps and events, to show a resume did not run it again. */
const traceOf = (sb: Sandbox, runId: string) => ({ steps: sb.count("steps", runId), events: sb.count("events", runId), sessions: sessions(sb, runId) })

const reported = (events: ReadonlyArray<CliEvent>) => new Map(events.filter((e) => e.kind === "fanout_child").map((e) => [e.index as number, e]))

describe.concurrent("autopilot fanout", () => {
  it("runs one child per item and reports each, then the roll-up; runs and show list the fan-out with its children", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 0, criteria_met: [true, true] }))
    const file = sb.writeFile("items.txt", "# languages\nRust\n\nGo\n")
    const done = await sb.run(["fanout", "--template", "Summarize {item}", "--items-file", file, "--run-id", "langs", "--mock-script", script, "--format", "jsonl"])

    expect(done.code).toBe(0)
    expect(done.stderr).toEqual([`database: ${sb.db}`])
    const events = done.stdout.map((l) => JSON.parse(l) as CliEvent)
    expect(events.map((e) => e.kind).filter((k) => k !== "heartbeat")).toEqual(["run_started", "fanout_started", "fanout_child", "fanout_child", "result"])
    expect(events.find((e) => e.kind === "fanout_started")!.children).toEqual([{ index: 0, run_id: "langs.0-rust", item: "Rust" }, { index: 1, run_id: "langs.1-go", item: "Go" }])
    expect(events.at(-1)).toMatchObject({ status: "completed", halt_reason: null, output: expect.stringContaining("2 children: 2 completed") })

    const shown = await sb.run(["show", "langs"])
    expect(shown.stdout).toContain("fan-out of 2, at most 4 at a time: Summarize {item}")
    expect(shown.stdout).toContain("children: 2 completed, 0 partial, 0 halted, 0 failed")
    expect(shown.stdout).toContain("  [0] langs.0-rust  completed  Rust")
    const json = await sb.show("langs")
    expect(json["fanout"]).toMatchObject({ template: "Summarize {item}", max_parallel: 4, rollup: { completed: 2, not_started: 0 } })
    expect(json["fanout"].children.map((c: Record<string, unknown>) => [c["run_id"], c["status"]])).toEqual([["langs.0-rust", "completed"], ["langs.1-go", "completed"]])
    const listed = await sb.run(["runs"])
    expect(listed.stdout.find((l) => l.startsWith("langs "))).toMatch(/fan-out of 2: Summarize \{item\}/)
    expect(listed.stdout.some((l) => l.startsWith("langs.1-go "))).toBe(true)
  })

  it("SIGTERM halts the running children at their boundary and starts no more; resume runs only the unfinished, usage exact", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [true, false] }))
    const cli = sb.start(fanoutArgs(script))
    await cli.nth("fanout_child", 1)

    cli.signal("SIGTERM")
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(3)
    const first = cli.events()
    expect(first.at(-1)).toMatchObject({ kind: "result", status: "partial", halt_reason: "halted by SIGTERM" })
    const ended = reported(first)
    const final = [...ended.values()].filter((e) => e.halt_reason === "iteration limit reached: 2 of 2 iterations").map((e) => e.index as number)
    const halted = [...ended.values()].filter((e) => e.halt_reason === "halted by SIGTERM").map((e) => e.index as number)
    expect(final.length).toBeGreaterThanOrEqual(1)
    expect(halted.length).toBeGreaterThanOrEqual(1)
    expect(final.length + halted.length).toBe(ended.size)
    for (const i of halted) {
      const checkpoint = sb.checkpoint(childId(i))
      // A child the halt reached before its first iteration (it was starting as SIGTERM came) met nothing yet.
      expect(checkpoint).toMatchObject({ status: checkpoint["usage"].iterations === 0 ? "halted" : "partial", halt_reason: "halted by SIGTERM" })
    }
    const notStarted = items.map((_, i) => i).filter((i) => !ended.has(i))
    for (const i of notStarted) expect(sb.count("checkpoints", childId(i))).toBe(0)
    const before = new Map(final.map((i) => [i, traceOf(sb, childId(i))]))

    const resumed = await sb.run(["resume", "fan", "--mock-script", script, "--format", "jsonl"])

    expect(resumed.code).toBe(3)
    const second = resumed.stdout.map((l) => JSON.parse(l) as CliEvent)
    expect(second[0]).toMatchObject({ kind: "run_started", resuming: true })
    expect(second.find((e) => e.kind === "fanout_started")!.finished).toEqual(final.sort())
    // Finished children were not run again; the halted ones were resumed, the others started.
    for (const i of final) expect(traceOf(sb, childId(i))).toEqual(before.get(i))
    expect([...reported(second).keys()].sort()).toEqual([...halted, ...notStarted].sort())
    for (const i of halted) expect(sessions(sb, childId(i))).toBe(2)
    for (const i of notStarted) expect(sessions(sb, childId(i))).toBe(1)
    expect(second.at(-1)).toMatchObject({ kind: "result", status: "partial" })
    for (const i of items.keys()) expect(sb.checkpoint(childId(i))).toMatchObject({ status: "partial", halt_reason: expect.stringMatching(/^iteration limit reached/) })
    expectUsageOfChildren(sb, expect)
  })

  it("after kill -9 of the fan-out, resume continues the children it left running, and never re-runs a finished one", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 600, criteria_met: [true, false] }))
    const cli = sb.start(fanoutArgs(script, "--heartbeat-seconds", "0.1"))
    await cli.nth("fanout_child", 1)
    // The next child claims its run once that report is durable; a heartbeat later it is under way, its
    // two 600 ms iterations far from done, even on a busy machine.
    const beatsSoFar = cli.events().filter((e) => e.kind === "heartbeat").length
    await cli.nth("heartbeat", beatsSoFar + 1)
    cli.signal("SIGKILL")
    expect((await cli.waitForExit()).signal).toBe("SIGKILL")

    const json = await sb.show("fan")
    expect(json).toMatchObject({ status: "running", interrupted: true, resume: "autopilot resume fan" })
    const interrupted = json["fanout"].children.filter((c: Record<string, unknown>) => c["status"] === "interrupted").map((c: Record<string, unknown>) => c["index"])
    const finished = json["fanout"].children.filter((c: Record<string, unknown>) => c["status"] === "partial").map((c: Record<string, unknown>) => c["index"])
    expect(finished.length).toBeGreaterThanOrEqual(1)
    expect(interrupted.length).toBeGreaterThanOrEqual(1)
    const before = new Map(finished.map((i: number) => [i, traceOf(sb, childId(i))]))
    const beats = sb.sql((db) => db.prepare("SELECT body FROM events WHERE run_id = 'fan' AND kind = 'heartbeat'").all()) as Array<{ body: string }>
    const beaten = Math.max(...beats.map((b) => JSON.parse(b.body).usage.seconds as number))
    expect(beaten).toBeGreaterThan(0)

    const resumed = await sb.run(["resume", "fan", "--mock-script", script, "--format", "jsonl"])

    expect(resumed.code).toBe(3)
    // The killed session's own wall clock is not lost: the resume starts from its last heartbeat.
    expect(resumed.stdout.map((l) => JSON.parse(l) as CliEvent)[0]!.usage.seconds).toBeGreaterThanOrEqual(beaten)
    for (const i of finished) expect(traceOf(sb, childId(i))).toEqual(before.get(i))
    for (const i of interrupted) expect(sessions(sb, childId(i))).toBe(2)
    expect(resumed.stdout.map((l) => JSON.parse(l) as CliEvent).at(-1)).toMatchObject({ kind: "result", status: "partial" })
    for (const i of items.keys()) expect(sb.checkpoint(childId(i))).toMatchObject({ status: "partial" })
    expectUsageOfChildren(sb, expect)
  })

  it("stop from another process halts every running child with its reason, and resume finishes the rest", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // Slow enough that the stop arrives, even on a busy machine, before the first children end by themselves.
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 2000, criteria_met: [false, false] }))
    const cli = sb.start(fanoutArgs(script))
    await cli.nth("fanout_started", 1)

    const stop = await sb.run(["stop", "fan", "--reason", "pausing for the night"])
    expect({ code: stop.code, stderr: stop.stderr }).toEqual({ code: 0, stderr: [] })
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(4)
    const events = cli.events()
    expect(events.find((e) => e.kind === "halt_requested")).toMatchObject({ reason: "pausing for the night" })
    expect(events.at(-1)).toMatchObject({ kind: "result", status: "halted", halt_reason: "pausing for the night" })
    const stopped = [...reported(events).values()]
    expect(stopped.length).toBeGreaterThanOrEqual(1)
    for (const e of stopped) expect(e).toMatchObject({ status: "halted", halt_reason: "pausing for the night" })

    const resumed = await sb.run(["resume", "fan", "--mock-script", script, "--format", "jsonl"])
    expect(resumed.code).toBe(4)
    for (const i of items.keys()) expect(sb.checkpoint(childId(i))).toMatchObject({ status: "halted", halt_reason: expect.stringMatching(/^iteration limit reached/) })
    expectUsageOfChildren(sb, expect)
  })
})
