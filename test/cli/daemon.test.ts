import { Effect } from "effect"
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { chain as fixtureChain, layerSqlite, madeMission } from "../missions/fixtures.js"
import { type CliProcess, cleanup, freePort, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const chain = fixtureChain()

/** `count` approved missions of `chain` (and `drafts` left as drafts), made through the service. */
const missions = (sb: Sandbox, count: number, drafts = 0) =>
  Effect.runPromise(
    Effect.forEach(Array.from({ length: count + drafts }, (_, i) => i), (i) =>
      madeMission(chain, { goal: `finish the work in two steps, number ${i}`, draft: i >= count })).pipe(
        Effect.map((ids) => ids.slice(0, count)),
        Effect.provide(layerSqlite(sb.db))
      )
  )

/** `second` answers after `latencyMs`, so a kill or a signal lands while missions run. */
const script = (sb: Sandbox, latencyMs: number) =>
  sb.writeFile("script.json", {
    nodes: { first: [{ content: "First part done." }], second: [{ content: "Second part done.", latency_ms: latencyMs }] }
  })

/** `second` needs three slow iterations: a signal lands while it runs, and never just as it finishes. */
const slowSecond = (sb: Sandbox) =>
  sb.writeFile("script.json", {
    nodes: {
      first: [{ content: "First part done." }],
      second: [
        { content: "Half of the second part.", criteria_met: [false], latency_ms: 1000 },
        { content: "Most of the second part.", criteria_met: [false], latency_ms: 1000 },
        { content: "Second part done.", criteria_met: [true], latency_ms: 1000 }
      ]
    }
  })

const daemon = (sb: Sandbox, args: ReadonlyArray<string>) =>
  sb.start(["daemon", "--mock-script", script(sb, 0), "--poll-seconds", "0.2", "--lease-seconds", "2", ...args])

const linesOf = (daemons: ReadonlyArray<CliProcess>, verb: string, id: string) =>
  daemons.flatMap((d) => d.stdout.filter((l) => l.includes(` ${verb} mission ${id}`)))

/** Waits until every mission in `ids` has an `ended` line in one of the daemons' output. */
const allEnded = async (daemons: ReadonlyArray<CliProcess>, ids: ReadonlyArray<string>) => {
  for (const id of ids) {
    await Promise.any(daemons.map((d) => d.line((l) => l.includes(` ended mission ${id}:`), 60_000)))
  }
}

const missionJson = async (sb: Sandbox, id: string) => {
  const shown = await sb.run(["missions", "show", id, "--format", "json"])
  return JSON.parse(shown.stdout.join("\n")) as Record<string, any>
}

/**
 * Each mission's status as `missions --format json` lists it: one process for all of them, where a
 * `missions show` per mission would start one each (a CLI start is most of what such a check costs).
 */
const statuses = async (sb: Sandbox): Promise<Map<string, string>> => {
  const listed = await sb.run(["missions", "--format", "json"])
  expect(listed.code, listed.stderr.join("\n")).toBe(0)
  return new Map((JSON.parse(listed.stdout.join("\n")) as Array<{ mission_id: string; status: string }>).map((m) => [m.mission_id, m.status]))
}

/** The runs' statuses as `runs --format json` lists them, in one process. */
const runStatuses = async (sb: Sandbox): Promise<Map<string, string>> => {
  const listed = await sb.run(["runs", "--format", "json"])
  expect(listed.code, listed.stderr.join("\n")).toBe(0)
  return new Map((JSON.parse(listed.stdout.join("\n")) as Array<{ run_id: string; status: string }>).map((r) => [r.run_id, r.status]))
}

/** Every iteration a mission's nodes committed, and what its run's usage says it spent: always equal. */
const accounting = (sb: Sandbox, id: string) => {
  const steps = sb.sql((db) => (db.prepare("SELECT COUNT(*) AS n FROM steps WHERE run_id LIKE ?").get(`${id}.%`) as { n: number }).n)
  return { steps, iterations: sb.checkpoint(id).usage.iterations as number }
}

describe("autopilot daemon", () => {
  it("works every approved mission once with --once, leaves drafts alone, and exits", async (context) => {
    const sb = sandbox(context)
    const ids = await missions(sb, 3, 1)
    const run = await daemon(sb, ["--once", "--concurrency", "2"]).waitForExit(60_000)
    expect(run.code, run.stderr.join("\n")).toBe(0)
    const listed = await statuses(sb)
    for (const id of ids) {
      expect(run.stdout.filter((l) => l.includes(`started mission ${id}`))).toHaveLength(1)
      expect(run.stdout.some((l) => l.endsWith(`ended mission ${id}: completed`))).toBe(true)
      expect(listed.get(id)).toBe("completed")
    }
    // The fourth, the draft, is listed still a draft.
    expect([...listed.values()].filter((status) => status === "draft")).toHaveLength(1)
    expect(listed.size).toBe(4)

    const status = JSON.parse((await sb.run(["daemon", "status", "--format", "json"])).stdout.join("\n"))
    expect(status.runners).toHaveLength(1)
    expect(status.runners[0]).toMatchObject({ state: "stopped", concurrency: 2, running: [] })
    expect(status.waiting).toEqual([])
  })

  it("works queued runs and approved missions in priority order, oldest first among equals, and leaves what is not ready yet", async (context) => {
    const sb = sandbox(context)
    const queue = async (id: string, priority: number, ...more: Array<string>) => {
      const added = await sb.run(["queue", "add", `objective of ${id}`, "--run-id", id, "--priority", String(priority), "--max-iterations", "3", ...more])
      expect(added.code, added.stderr.join("\n")).toBe(0)
    }
    await queue("low", 10)
    const [mission] = await missions(sb, 1)
    await queue("high", 90)
    await queue("later", 100, "--not-before", "1h")
    await queue("mid", 50)
    const run = await daemon(sb, ["--once", "--concurrency", "1"]).waitForExit(60_000)
    expect(run.code, run.stderr.join("\n")).toBe(0)
    const started = run.stdout.filter((l) => l.includes(" started ")).map((l) => l.split(" ").slice(-2).join(" "))
    expect(started).toEqual(["queued high", `mission ${mission}`, "queued mid", "queued low"])
    const ran = await runStatuses(sb)
    for (const id of ["high", "mid", "low"]) expect(ran.get(id), id).toBe("completed")
    const listed = JSON.parse((await sb.run(["queue", "list", "--format", "json"])).stdout.join("\n")) as Array<Record<string, any>>
    expect(listed.filter((e) => e.status === "queued").map((e) => e.id)).toEqual(["later"])
  })

  it("fires a scheduled mission's missed slot once (catch-up once), as a run of its own, and leaves the mission armed", async (context) => {
    const sb = sandbox(context)
    const minutely = fixtureChain({
      id: "minutely_chain",
      mode: "scheduled",
      slots: [{ name: "schedule", type: "cron", required: true, default: "* * * * *", description: "When it runs" }]
    })
    const id = await Effect.runPromise(madeMission(minutely, { goal: "check the feed every minute" }).pipe(Effect.provide(layerSqlite(sb.db))))
    // Armed ten minutes ago: ten slots were missed while no daemon ran.
    sb.sql((db) => {
      const row = db.prepare("SELECT schedule FROM missions WHERE mission_id = ?").get(id) as { schedule: string }
      const schedule = { ...JSON.parse(row.schedule), armed_at: new Date(Date.now() - 10 * 60_000).toISOString() }
      db.prepare("UPDATE missions SET schedule = ? WHERE mission_id = ?").run(JSON.stringify(schedule), id)
    })
    const run = await daemon(sb, ["--once"]).waitForExit(60_000)
    expect(run.code, run.stderr.join("\n")).toBe(0)
    const started = run.stdout.filter((l) => l.includes(` started firing ${id}.at-`))
    expect(started.length, run.stdout.join("\n")).toBeGreaterThanOrEqual(1)
    // One firing for the ten missed slots; a second only if a new minute came while the first ran.
    expect(started.length).toBeLessThanOrEqual(2)
    for (const line of started) {
      const runId = line.split(" ").pop()!
      expect(run.stdout.filter((l) => l.includes(`ended firing ${runId}: completed`))).toHaveLength(1)
    }
    const shown = await missionJson(sb, id)
    expect(shown.status).toBe("scheduled")
    expect(shown.firings.length).toBe(started.length)
    for (const firing of shown.firings) expect(firing).toMatchObject({ status: "completed", kind: "scheduled" })
  })

  it("sends a mission it could not run again, once a lease has passed, to a daemon that can run it", async (context) => {
    const sb = sandbox(context)
    const [id] = await missions(sb, 1)
    const refused = await sb.run(["daemon", "--once", "--llm", "openai", "--poll-seconds", "0.2", "--lease-seconds", "1"], { timeoutMs: 60_000 })
    expect(refused.code, refused.stderr.join("\n")).toBe(0)
    expect(refused.stdout.some((l) => l.includes(`ended mission ${id}: refused: `) && l.includes("AUTOPILOT_LLM_BASE_URL")), refused.stdout.join("\n")).toBe(true)
    expect((await missionJson(sb, id!)).status).toBe("scheduled")
    const next = await daemon(sb, ["--once"]).waitForExit(60_000)
    expect(next.stdout.some((l) => l.endsWith(`ended mission ${id}: completed`)), [...next.stdout, ...next.stderr].join("\n")).toBe(true)
    expect((await missionJson(sb, id!)).status).toBe("completed")
  })

  it("with --once, a daemon that does not hold the dispatcher stops too once nothing is left", async (context) => {
    const sb = sandbox(context)
    const ids = await missions(sb, 2)
    const a = daemon(sb, [])
    await a.line((l) => l.includes(" up, working "))
    const b = await daemon(sb, ["--once"]).waitForExit(60_000)
    expect(b.code, b.stderr.join("\n")).toBe(0)
    await allEnded([a], ids.filter((id) => !b.stdout.some((l) => l.includes(`ended mission ${id}:`))))
    const listed = await statuses(sb)
    for (const id of ids) expect(listed.get(id), id).toBe("completed")
    a.signal("SIGTERM")
    await a.waitForExit()
  })

  it("says when no daemon has run on a database, and creates none", async (context) => {
    const sb = sandbox(context)
    const status = await sb.run(["daemon", "status"])
    expect(status.stdout).toEqual(["no daemon has run on this database"])
    expect(sb.files()).not.toContain("a.db")
  })

  it("two daemons on one SQLite file never run the same mission", async (context) => {
    const sb = sandbox(context)
    const ids = await missions(sb, 8)
    script(sb, 300)
    const a = sb.start(["daemon", "--mock-script", `${sb.dir}/script.json`, "--poll-seconds", "0.2", "--concurrency", "2"])
    const b = sb.start(["daemon", "--mock-script", `${sb.dir}/script.json`, "--poll-seconds", "0.2", "--concurrency", "2"])
    await allEnded([a, b], ids)
    const listed = await statuses(sb)
    for (const id of ids) {
      expect(linesOf([a, b], "started", id), id).toHaveLength(1)
      expect(listed.get(id), id).toBe("completed")
    }
    a.signal("SIGTERM")
    b.signal("SIGTERM")
    expect((await a.waitForExit()).code).toBe(0)
    expect((await b.waitForExit()).code).toBe(0)
  })

  it.for(["storage", "--listen"] as const)("resumes the missions of a daemon killed with -9 on another, each from its checkpoint, none counted twice (%s)", async (transport, context) => {
    const sb = sandbox(context)
    const ids = await missions(sb, 4)
    script(sb, 1500)
    const flags = ["--mock-script", `${sb.dir}/script.json`, "--poll-seconds", "0.2", "--lease-seconds", "2", "--concurrency", "2"]
    const listen = async () => (transport === "storage" ? [] : ["--listen", `127.0.0.1:${await freePort()}`])
    const a = sb.start(["daemon", ...flags, ...(await listen())])
    await a.line((l) => l.includes(" started mission "))
    const b = sb.start(["daemon", ...flags, ...(await listen())])
    await b.line((l) => l.includes(" up, working "))
    // Killed while its runs are inside an iteration of `second` (1.5 s each).
    const started = a.stdout.filter((l) => l.includes(" started mission ")).map((l) => l.split(" ").pop()!)
    a.signal("SIGKILL")
    await a.waitForExit()
    await allEnded([b], ids.filter((id) => !linesOf([a], "ended", id).length))
    const listed = await statuses(sb)
    for (const id of ids) {
      expect(listed.get(id), id).toBe("completed")
      const { iterations, steps } = accounting(sb, id)
      expect(iterations, id).toBe(steps)
      expect(iterations, id).toBe(2)
    }
    for (const id of started.filter((id) => linesOf([a], "ended", id).length === 0)) {
      expect(linesOf([b], "started", id), id).toHaveLength(1)
    }
    const status = JSON.parse((await sb.run(["daemon", "status", "--format", "json"])).stdout.join("\n"))
    expect(status.runners.find((r: any) => r.pid === a.pid)).toMatchObject({ alive: false, state: "running" })
    b.signal("SIGTERM")
    await b.waitForExit()
  })

  it("drains on SIGTERM: its missions halt at their next boundary and another daemon finishes them", async (context) => {
    const sb = sandbox(context)
    const ids = await missions(sb, 2)
    slowSecond(sb)
    const flags = ["--mock-script", `${sb.dir}/script.json`, "--poll-seconds", "0.2", "--concurrency", "2"]
    const a = sb.start(["daemon", ...flags])
    for (const id of ids) await a.line((l) => l.endsWith(`started mission ${id}`))
    const b = sb.start(["daemon", ...flags])
    await b.line((l) => l.includes(" up, working "))
    a.signal("SIGTERM")
    const drained = await a.waitForExit(30_000)
    expect(drained.code).toBe(0)
    for (const id of ids) expect(drained.stdout.some((l) => l.endsWith(`handed over mission ${id}`)), a.transcript()).toBe(true)
    await allEnded([b], ids)
    for (const id of ids) {
      const shown = await missionJson(sb, id)
      expect(shown.status).toBe("completed")
      const reasons = (shown.transitions as Array<{ to: string; reason: string }>).filter((t) => t.to === "halted").map((t) => t.reason)
      expect(reasons.some((r) => r.includes("daemon draining (halted by SIGTERM)"))).toBe(true)
      const { iterations, steps } = accounting(sb, id)
      expect(iterations).toBe(steps)
    }
    b.signal("SIGTERM")
    await b.waitForExit()
  })

  it("leaves the runs of the last daemon drained for the next one to start", async (context) => {
    const sb = sandbox(context)
    const [id] = await missions(sb, 1)
    slowSecond(sb)
    const a = sb.start(["daemon", "--mock-script", `${sb.dir}/script.json`, "--poll-seconds", "0.2"])
    await a.line((l) => l.endsWith(`started mission ${id}`))
    a.signal("SIGTERM")
    expect((await a.waitForExit(30_000)).code).toBe(0)
    expect((await missionJson(sb, id!)).status).toBe("halted")
    const status = JSON.parse((await sb.run(["daemon", "status", "--format", "json"])).stdout.join("\n"))
    expect(status.runners[0]).toMatchObject({ state: "stopped", running: [] })
    expect(status.waiting).toEqual([{ run_id: id, kind: "mission" }])
    const next = await sb.run(["daemon", "--once", "--mock-script", script(sb, 0), "--poll-seconds", "0.2"], { timeoutMs: 60_000 })
    expect(next.stdout.some((l) => l.endsWith(`ended mission ${id}: completed`)), [...next.stdout, ...next.stderr].join("\n")).toBe(true)
    expect((await missionJson(sb, id!)).status).toBe("completed")
  })

  it("refuses a --listen address it cannot listen on, in one line, exit 2", async (context) => {
    const sb = sandbox(context)
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as net.AddressInfo).port
    try {
      const run = await sb.run(["daemon", "--listen", `127.0.0.1:${port}`])
      expect(run.code).toBe(2)
      expect(run.stderr).toEqual([`autopilot: --listen 127.0.0.1:${port}: cannot listen there (EADDRINUSE)`])
    } finally {
      taken.close()
    }
  })

  it.for([
    [["--concurrency", "0"], "--concurrency must be a whole number from 1 to 1000, got \"0\""],
    [["--lease-seconds", "soon"], "--lease-seconds must be a number of seconds from 1 to 3600, got \"soon\""],
    [["--poll-seconds", "0"], "--poll-seconds must be a number of seconds from 0.05 to 60, got \"0\""],
    [["--listen", "localhost"], "--listen must be HOST:PORT with a port from 1 to 65535, like 127.0.0.1:34431; got \"localhost\""],
    [["--listen", "127.0.0.1:70000"], "--listen must be HOST:PORT with a port from 1 to 65535, like 127.0.0.1:34431; got \"127.0.0.1:70000\""]
  ] as const)("refuses %j in one line, exit 2, writing nothing", async ([args, message], context) => {
    const sb = sandbox(context)
    const run = await sb.run(["daemon", ...args])
    expect(run.code).toBe(2)
    expect(run.stderr).toEqual([`autopilot: ${message}`])
    expect(sb.files()).not.toContain("a.db")
  })
})
