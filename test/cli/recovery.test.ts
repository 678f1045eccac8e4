import * as fs from "node:fs"
import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)

describe.concurrent("recovery and control from other processes", () => {
  it.for([
    { damage: "text that is not JSON", bytes: Buffer.from("{not json", "utf8"), blob: false },
    { damage: "a BLOB of invalid UTF-8", bytes: Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0xc3, 0x28, 0x00, 0x80, 0x7d]), blob: true }
  ])("a corrupt checkpoint ($damage) is quarantined byte for byte and the run continues from its history", async ({ blob, bytes }, context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 0, criteria_met: [true, false] }))
    const first = await sb.run(["run", "survive corruption", "--criterion", "a", "--criterion", "b", "--run-id", "c", "--max-iterations", "3", "--mock-script", script])
    expect(first.code).toBe(3)
    const original = sb.checkpoint("c")
    expect(original["usage"].iterations).toBe(3)

    sb.sql((db) => db.prepare("UPDATE checkpoints SET state = ? WHERE run_id = ?").run(blob ? bytes : bytes.toString("utf8"), "c"))
    expect(sb.sql((db) => db.prepare("SELECT typeof(state) AS type FROM checkpoints WHERE run_id = ?").get("c")))
      .toEqual({ type: blob ? "blob" : "text" })

    const resumed = sb.start(["resume", "c", "--max-iterations", "5", "--mock-script", script, "--format", "jsonl"])
    const exit = await resumed.waitForExit()

    expect(exit.code).toBe(3)
    const events = resumed.events()
    const quarantined = events.find((e) => e.kind === "checkpoint_quarantined")
    expect(quarantined).toMatchObject({ recovered_from: "iteration 3" })
    expect(quarantined!.error).not.toBe("")
    const rows = sb.sql((db) => db.prepare("SELECT id, state, typeof(state) AS type FROM quarantine WHERE run_id = ?").all("c")) as Array<
      { id: number; state: Buffer; type: string }
    >
    expect(rows).toHaveLength(1)
    expect(rows[0]!.id).toBe(quarantined!.quarantine_id)
    expect(rows[0]!.type).toBe("blob")
    expect(Buffer.compare(rows[0]!.state, bytes)).toBe(0)

    expect(events[0]).toMatchObject({ kind: "run_started", resuming: true, iterations: 3 })
    expect(events.filter((e) => e.kind === "iteration").map((e) => e.iteration)).toEqual([4, 5])
    expect(events.at(-1)).toMatchObject({
      kind: "result",
      status: "partial",
      iterations: 5,
      halt_reason: "iteration limit reached: 5 of 5 iterations",
      usage: { iterations: 5, tokens: original["usage"].tokens + 2 * 150 }
    })
    const shown = await sb.show("c")
    expect(shown).toMatchObject({ status: "partial", iterations: 5, halt_reason: "iteration limit reached: 5 of 5 iterations" })
  })

  it("stop from a second process halts the run with the given reason; stopping it again or an unknown run is bad input", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [false, false] }))
    const cli = sb.start(["run", "wait for stop", "--criterion", "a", "--run-id", "s", "--mock-script", script, "--format", "jsonl"])
    await cli.nth("iteration", 1)

    const stop = await sb.run(["stop", "s", "--reason", "enough"])
    expect(stop.code).toBe(0)
    expect(stop.stderr).toEqual([])
    const exit = await cli.waitForExit()

    expect(exit.code).toBe(4)
    expect(cli.events().at(-1)).toMatchObject({ kind: "result", status: "halted", halt_reason: "enough" })
    expect(await sb.show("s")).toMatchObject({ status: "halted", halt_reason: "enough" })
    expect(sb.count("stop_requests", "s")).toBe(0)

    const [finished, unknown] = await Promise.all([
      sb.run(["stop", "s", "--reason", "enough"]),
      sb.run(["stop", "no-such-run", "--reason", "enough"])
    ])
    for (const [refused, mentions] of [[finished, /run "s" is not running/], [unknown, /no run with id "no-such-run"/]] as const) {
      expect(refused.code).toBe(2)
      expect(refused.stdout).toEqual([])
      expect(refused.stderr).toHaveLength(1)
      expect(refused.stderr[0]).toMatch(mentions)
    }
  })

  it("run with an existing --run-id and no --resume is bad input and leaves the database as it was", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const first = await sb.run(["run", "once", "--criterion", "a", "--criterion", "b", "--run-id", "dup", "--max-iterations", "1"])
    expect(first.code).toBe(3)
    const snapshot = () => ({
      checkpoint: sb.sql((db) => db.prepare("SELECT state, updated_at FROM checkpoints WHERE run_id = ?").get("dup")),
      events: sb.count("events", "dup"),
      steps: sb.count("steps", "dup"),
      file: fs.readFileSync(sb.db)
    })
    const before = snapshot()

    const again = await sb.run(["run", "twice", "--criterion", "a", "--run-id", "dup", "--format", "jsonl"])

    expect(again.code).toBe(2)
    expect(again.stdout).toEqual([])
    expect(again.stderr).toHaveLength(1)
    expect(again.stderr[0]).toContain("`autopilot resume dup` continues it")
    expect(again.stderr[0]).toContain("dup")
    const after = snapshot()
    expect(after.checkpoint).toEqual(before.checkpoint)
    expect(after.events).toBe(before.events)
    expect(after.steps).toBe(before.steps)
    expect(after.file.equals(before.file)).toBe(true)
  })
})
