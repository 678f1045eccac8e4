import { afterEach, describe, it } from "vitest"
import { Axes, cleanup, ISO_TIME, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)


describe.concurrent("events", () => {
  it("--format jsonl: every line is an event with the full envelope; the default mock completes 2 criteria in 2 iterations", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cli = sb.start(["run", "obj", "--criterion", "a", "--criterion", "b", "--format", "jsonl"])
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(0)
    expect(exit.stderr).toEqual([`database: ${sb.db}`])
    const events = cli.events()
    const runId = events[0]!.run_id
    expect(runId).toMatch(/^run-/)
    events.forEach((event, i) => {
      expect(typeof event.kind).toBe("string")
      expect(event.run_id).toBe(runId)
      expect(event.at).toMatch(ISO_TIME)
      expect(new Date(event.at).toISOString()).toBe(event.at)
      expect(event.seq).toBe(i)
      expect(Object.keys(event.remaining).sort()).toEqual([...Axes].sort())
      for (const axis of Axes) expect(typeof event.remaining[axis]).toBe("number")
    })
    expect(events[0]).toMatchObject({ kind: "run_started", resuming: false, iterations: 0 })
    expect(events.filter((e) => e.kind === "iteration").map((e) => e.iteration)).toEqual([1, 2])
    expect(events.filter((e) => e.kind === "result")).toHaveLength(1)
    expect(events.at(-1)).toMatchObject({
      kind: "result",
      status: "completed",
      halt_reason: null,
      iterations: 2,
      criteria_met: [true, true],
      usage: { iterations: 2 },
      remaining: { iterations: 198 }
    })
    expect(await sb.show(runId)).toMatchObject({ status: "completed", iterations: 2, halt_reason: null })
  })

  it("--format jsonl: a disabled axis has remaining null in every event", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cli = sb.start(["run", "obj", "--criterion", "a", "--max-dollars", "0", "--max-tool-calls", "0", "--format", "jsonl"])
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(0)
    for (const event of cli.events()) {
      expect(event.remaining).toMatchObject({ dollars: null, tool_calls: null })
      expect(typeof event.remaining.tokens).toBe("number")
    }
  })

  it("events replays exactly the events the run printed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cli = sb.start(["run", "obj", "--criterion", "a", "--criterion", "b", "--criterion", "c", "--run-id", "r", "--format", "jsonl"])
    expect((await cli.waitForExit()).code).toBe(0)

    const replay = sb.start(["events", "r", "--format", "jsonl"])
    expect((await replay.waitForExit()).code).toBe(0)

    // Events are published only once durable, so the replay is the live stream, in the same order.
    expect(replay.events()).toEqual(cli.events())
  })

  it("events --follow started mid-run exits by itself once the run ends, having printed every event up to the result", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [true, false] }))
    const cli = sb.start(["run", "obj", "--criterion", "a", "--criterion", "b", "--run-id", "f", "--mock-script", script, "--format", "jsonl"])
    await cli.nth("iteration", 1)
    const follow = sb.start(["events", "f", "--follow", "--format", "jsonl"])
    await follow.nth("iteration", 1)
    expect(cli.running).toBe(true)

    cli.signal("SIGTERM")
    expect((await cli.waitForExit()).code).toBe(3)
    const followed = await follow.waitForExit(10_000)

    expect(followed.code).toBe(0)
    const events = follow.events()
    expect(events.at(-1)).toMatchObject({ kind: "result", status: "partial", halt_reason: "halted by SIGTERM" })
    expect(events.map((e) => e.seq)).toEqual(cli.events().map((e) => e.seq))
  })

  it("heartbeats arrive on iteration 1 before its iteration event, then every interval", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 700, criteria_met: [false] }))
    const cli = sb.start([
      "run", "obj", "--criterion", "a", "--heartbeat-seconds", "0.2", "--max-iterations", "2",
      "--mock-script", script, "--format", "jsonl"
    ])
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(4)
    const events = cli.events()
    const firstIteration = events.findIndex((e) => e.kind === "iteration")
    const heartbeats = events.filter((e) => e.kind === "heartbeat")
    expect(firstIteration).toBeGreaterThan(0)
    expect(heartbeats[0]).toMatchObject({ iteration: 1, usage: { iterations: 0 }, criteria_met: [false] })
    expect(events.slice(0, firstIteration).filter((e) => e.kind === "heartbeat").length).toBeGreaterThanOrEqual(2)
    expect(events.slice(firstIteration).filter((e) => e.kind === "heartbeat" && e.iteration === 2).length).toBeGreaterThanOrEqual(1)
    for (const beat of heartbeats) {
      expect(beat.usage.iterations).toBe(beat.iteration - 1)
      expect(Object.keys(beat.usage).sort()).toEqual([...Axes].sort())
    }
    const gaps = heartbeats.slice(1).map((beat, i) => Date.parse(beat.at) - Date.parse(heartbeats[i]!.at))
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(150)
  })

  it("text format: progress per iteration with criteria m/n and headroom per axis, a heartbeat, the result and the output", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const exit = await sb.run(["run", "obj", "--criterion", "a", "--criterion", "b", "--run-id", "t", "--max-tool-calls", "0"])
    expect(exit.code).toBe(0)
    const out = exit.stdout.join("\n")
    expect(out).toMatch(/^Starting run t at iteration 1: obj$/m)
    expect(out).toMatch(/heartbeat: iteration 1 in progress · criteria 0\/2/)
    expect(out).toMatch(/^\[1\] criteria 1\/2 · left: 1800s · \d[\d.]*[kM]? tokens · \$\d+\.\d{4} · 199 iterations$/m)
    expect(out).toMatch(/^\[2\] criteria 2\/2 · left: /m)
    expect(out).toMatch(/^Run t completed$/m)
    expect(out).toContain("```ts")
  })

  it("runs lists every run with its status, and --format json gives the same as data", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    expect((await sb.run(["run", "first", "--criterion", "a", "--run-id", "one"])).code).toBe(0)
    expect((await sb.run(["run", "second", "--criterion", "a", "--criterion", "b", "--run-id", "two", "--max-iterations", "1"])).code).toBe(3)
    const text = await sb.run(["runs"])
    expect(text.code).toBe(0)
    expect(text.stdout.find((l) => l.startsWith("one "))).toMatch(/completed +1 iteration {3}criteria 1\/1  \$0\.0000\d\d  \S+  first$/)
    expect(text.stdout.find((l) => l.startsWith("two "))).toMatch(/partial +1 iteration {3}criteria 1\/2  \$0\.0000\d\d  \S+  second$/)
    const json = await sb.run(["runs", "--format", "json"])
    const runs = JSON.parse(json.stdout.join("\n")) as Array<Record<string, any>>
    expect(runs.map((r) => [r["run_id"], r["status"], r["iterations"]]).sort()).toEqual([["one", "completed", 1], ["two", "partial", 1]])
    // Everything the text shows, as data.
    const two = runs.find((r) => r["run_id"] === "two")!
    expect(two).toMatchObject({
      objective: "second",
      criteria_met: [true, false],
      halt_reason: "iteration limit reached: 1 of 1 iteration",
      interrupted: false,
      resume: null
    })
    expect(two["cost_usd"]).toBe((await sb.show("two"))["cost_usd"])
    expect(two["cost_usd"]).toBeGreaterThan(0)
    expect(Object.keys(two)).toEqual(expect.arrayContaining(["created_at", "updated_at"]))
  })

  it("runs --status keeps the runs in those states, --limit the newest N", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    for (const [runId, iterations] of [["a", "1"], ["b", "2"], ["c", "1"]] as const) {
      const made = await sb.run(["run", "obj", "--criterion", "x", "--criterion", "y", "--run-id", runId, "--max-iterations", iterations])
      expect(made.code).toBe(runId === "b" ? 0 : 3)
    }
    const ids = async (...args: ReadonlyArray<string>) => {
      const listed = await sb.run(["runs", ...args, "--format", "json"])
      expect(listed.code).toBe(0)
      return (JSON.parse(listed.stdout.join("\n")) as Array<{ run_id: string }>).map((r) => r.run_id)
    }

    expect(await ids()).toEqual(["c", "b", "a"])
    expect(await ids("--status", "partial")).toEqual(["c", "a"])
    expect(await ids("--status", "completed,halted")).toEqual(["b"])
    expect(await ids("--limit", "2")).toEqual(["c", "b"])
    expect(await ids("--status", "partial", "--limit", "1")).toEqual(["c"])
    expect(await ids("--limit", "0")).toEqual(["c", "b", "a"])
    expect((await sb.run(["runs", "--status", "failed"])).stdout).toEqual(["no failed runs"])
    expect((await sb.run(["runs", "--limit", "1"])).stdout).toHaveLength(1)
  })
})
