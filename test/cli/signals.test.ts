import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)

const runArgs = (runId: string, script: string, ...more: ReadonlyArray<string>) => [
  "run",
  "keep working until stopped",
  "--criterion",
  "first",
  "--criterion",
  "second",
  "--run-id",
  runId,
  "--mock-script",
  script,
  "--format",
  "jsonl",
  ...more
]

describe.concurrent("signals", () => {
  it.for([
    { signal: "SIGTERM", criteria_met: [false, false], status: "halted", code: 4 },
    { signal: "SIGINT", criteria_met: [true, false], status: "partial", code: 3 },
    { signal: "SIGHUP", criteria_met: [false, false], status: "halted", code: 4 }
  ] as const)(
    "$signal halts the run at the next iteration boundary: exit $code, status $status, checkpointed",
    async ({ code, criteria_met, signal, status }, context) => {
      const { expect } = context
      const sb = sandbox(context)
      const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met }))
      const cli = sb.start(runArgs("sig", script))
      await cli.nth("iteration", 1)

      cli.signal(signal)
      const exit = await cli.waitForExit()

      expect(exit.signal).toBeNull()
      expect(exit.code).toBe(code)
      const events = cli.events()
      const result = events.at(-1)!
      expect(result.kind).toBe("result")
      expect(result.status).toBe(status)
      expect(result.halt_reason).toBe(`halted by ${signal}`)
      expect(result.criteria_met).toEqual(criteria_met)
      expect(result.iterations).toBeGreaterThanOrEqual(1)
      expect(result.usage.iterations).toBe(result.iterations)
      expect(events.filter((e) => e.kind === "iteration").map((e) => e.iteration))
        .toEqual(Array.from({ length: result.iterations }, (_, i) => i + 1))

      const shown = await sb.show("sig")
      expect({ status: shown["status"], halt_reason: shown["halt_reason"], iterations: shown["iterations"] })
        .toEqual({ status, halt_reason: `halted by ${signal}`, iterations: result.iterations })
      expect(sb.checkpoint("sig")).toMatchObject({
        status,
        halt_reason: `halted by ${signal}`,
        usage: { iterations: result.iterations }
      })
    }
  )

  it("a signal during a model call far slower than --grace-seconds ends the run after the grace, not counting the call", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 20_000, criteria_met: [false, false] }))
    const cli = sb.start(runArgs("grace", script, "--grace-seconds", "0.2", "--heartbeat-seconds", "0.1"))
    // A second heartbeat means the first model call has been in flight for a while.
    await cli.nth("heartbeat", 2)

    const sentAt = Date.now()
    cli.signal("SIGTERM")
    const exit = await cli.waitForExit(10_000)
    const elapsed = Date.now() - sentAt

    expect(elapsed).toBeGreaterThanOrEqual(150)
    expect(elapsed).toBeLessThan(8_000)
    expect(exit.code).toBe(4)
    const events = cli.events()
    expect(events.filter((e) => e.kind === "iteration")).toEqual([])
    expect(events.at(-1)).toMatchObject({
      kind: "result",
      status: "halted",
      halt_reason: "halted by SIGTERM",
      iterations: 0,
      usage: { iterations: 0, tokens: 0 }
    })
    expect(sb.checkpoint("grace")).toMatchObject({ status: "halted", halt_reason: "halted by SIGTERM", usage: { iterations: 0 } })
  })

  it("after kill -9 the run shows as interrupted with how to resume it; resume continues from the last durable checkpoint with cumulative usage", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [true, false] }))
    const cli = sb.start(runArgs("killed", script))
    await cli.nth("iteration", 2)

    cli.signal("SIGKILL")
    const killed = await cli.waitForExit(5_000)
    expect(killed.signal).toBe("SIGKILL")

    const before = sb.checkpoint("killed")
    expect(before).toMatchObject({ status: "running", halt_reason: null })
    const k: number = before["usage"].iterations
    expect(k).toBeGreaterThanOrEqual(1)
    // JSON keeps the stored status, as it always did, and says what it means now.
    const shown = await sb.show("killed")
    expect({ status: shown["status"], halt_reason: shown["halt_reason"], iterations: shown["iterations"] })
      .toEqual({ status: "running", halt_reason: null, iterations: k })
    expect({ interrupted: shown["interrupted"], resume: shown["resume"] }).toEqual({ interrupted: true, resume: "autopilot resume killed" })
    const gone = new RegExp(`process ${cli.pid} on .* is gone; \`autopilot resume killed\` continues it`)
    // A follower of a run whose process is gone ends by itself instead of waiting forever, and says why: exit 5.
    const followed = await sb.run(["events", "killed", "--follow", "--format", "jsonl"], { timeoutMs: 10_000 })
    expect(followed.code).toBe(5)
    expect(followed.stdout.map((l) => JSON.parse(l).seq)).toEqual(Array.from({ length: sb.count("events", "killed") }, (_, i) => i))
    expect(followed.stderr).toHaveLength(1)
    expect(followed.stderr[0]).toMatch(/^autopilot: run "killed" is interrupted: /)
    expect(followed.stderr[0]).toMatch(gone)
    const stopped = await sb.run(["stop", "killed"])
    expect(stopped.code).toBe(2)
    expect(stopped.stderr).toHaveLength(1)
    expect(stopped.stderr[0]).toMatch(/not running in any process/)
    expect(stopped.stderr[0]).toMatch(gone)
    const durableSeq = sb.sql((db) => db.prepare("SELECT MAX(seq) AS seq FROM events WHERE run_id = ?").get("killed")) as { seq: number }

    const n = k + 3
    const resumed = sb.start(["resume", "killed", "--max-iterations", String(n), "--mock-script", script, "--format", "jsonl"])
    const exit = await resumed.waitForExit()

    expect(exit.code).toBe(3)
    const events = resumed.events()
    expect(events[0]).toMatchObject({ kind: "run_started", resuming: true, iterations: k, usage: before["usage"] })
    expect(events[0]!.seq).toBe(durableSeq.seq + 1)
    expect(events.filter((e) => e.kind === "iteration").map((e) => e.iteration)).toEqual([k + 1, k + 2, k + 3])
    const result = events.at(-1)!
    expect(result).toMatchObject({ kind: "result", status: "partial", iterations: n })
    expect(result.halt_reason).toBe(`iteration limit reached: ${n} of ${n} iterations`)
    expect(result.usage.iterations).toBe(n)
    // Each scripted turn costs 150 tokens; the resumed session adds its own on top of the checkpoint's.
    expect(result.usage.tokens).toBe(before["usage"].tokens + 150 * (n - k))
    expect(result.usage.dollars).toBeGreaterThan(before["usage"].dollars)
    expect(result.usage.seconds).toBeGreaterThanOrEqual(before["usage"].seconds)
    expect(sb.checkpoint("killed")).toMatchObject({ status: "partial", usage: { iterations: n } })
  })

  it("after kill -9, runs and show say the run is interrupted and how to resume it", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [true, false] }))
    const cli = sb.start(runArgs("killed", script))
    await cli.nth("iteration", 1)
    cli.signal("SIGKILL")
    expect((await cli.waitForExit()).signal).toBe("SIGKILL")
    const gone = new RegExp(`process ${cli.pid} on .* is gone; \`autopilot resume killed\` continues it`)

    const shown = await sb.run(["show", "killed"])
    expect(shown.stdout[0]).toMatch(/^run killed: interrupted \(process \d+ on .* is gone; `autopilot resume killed` continues it\)$/)
    expect(shown.stdout[0]).toMatch(gone)
    const listed = await sb.run(["runs"])
    expect(listed.stdout[0]).toMatch(/^killed {2}interrupted /)
    expect(listed.stdout[1]).toMatch(gone)
    const listedJson = JSON.parse((await sb.run(["runs", "--format", "json"])).stdout.join("\n")) as Array<Record<string, unknown>>
    expect(listedJson).toEqual([expect.objectContaining({ run_id: "killed", status: "running", interrupted: true, resume: "autopilot resume killed" })])
    expect((await sb.run(["runs", "--status", "interrupted"])).stdout[0]).toMatch(/^killed {2}interrupted /)
    expect((await sb.run(["runs", "--status", "running"])).stdout).toEqual(["no running runs"])
  })

  it("a run that is still going cannot be resumed by a second process", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [false, false] }))
    const cli = sb.start(runArgs("busy", script))
    await cli.nth("iteration", 1)
    const events = sb.count("events", "busy")

    const second = await sb.run(["resume", "busy", "--mock-script", script])
    expect(second.code).toBe(2)
    expect(second.stderr).toHaveLength(1)
    expect(second.stderr[0]).toMatch(/run "busy" is still running in process \d+/)
    expect(sb.count("events", "busy")).toBeGreaterThanOrEqual(events)

    cli.signal("SIGTERM")
    const exit = await cli.waitForExit()
    expect(exit.code).toBe(4)
    expect(cli.events().at(-1)).toMatchObject({ kind: "result", halt_reason: "halted by SIGTERM" })
  })

  it("a second signal ends the grace period at once; the run still halts with the first signal's reason", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 30_000, criteria_met: [false, false] }))
    const cli = sb.start(runArgs("twice", script, "--grace-seconds", "600"))
    await cli.event((e) => e.kind === "heartbeat")

    cli.signal("SIGTERM")
    await cli.event((e) => e.kind === "halt_requested")
    const sent = Date.now()
    cli.signal("SIGINT")
    const exit = await cli.waitForExit(10_000)

    expect(Date.now() - sent).toBeLessThan(8_000)
    expect(exit.code).toBe(4)
    expect(cli.events().at(-1)).toMatchObject({ kind: "result", status: "halted", halt_reason: "halted by SIGTERM", iterations: 0 })
    expect(sb.checkpoint("twice")).toMatchObject({ status: "halted", halt_reason: "halted by SIGTERM" })
  })
})
