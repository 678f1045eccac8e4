import { Effect } from "effect"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import * as Missions from "../../src/missions/Missions.js"
import { diamond, layerSqlite, runnerLayer } from "../missions/fixtures.js"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/**
 * `autopilot missions show ID` on a mission actually run by `Missions.run` on the mock, in the sandbox's
 * database: the healing policy, the run, what was healed, and with `--steps` every node attempt.
 */

/** split needs one healing attempt at most per node (max_attempts_per_node 2). */
const blueprint = diamond({ healing: { max_attempts_per_node: 2 } })

const layer = (sb: Sandbox) => runnerLayer(sb.db, path.dirname(sb.db))

const report = "The right branch, reported in full.\nA second line of it."

/** A scheduled mission of the diamond in the sandbox's database, run to its end when `run`. */
const mission = (sb: Sandbox, run: boolean) =>
  Effect.runPromise(Effect.gen(function*() {
    const missions = yield* Missions.Missions
    const made = yield* missions.create({ project: "default", goal: "decide and report", blueprint, slots: {}, missing: [], actor: "test", reason: "test" })
    yield* missions.approve("default", made.mission_id, { actor: "test" })
    if (!run) return made.mission_id
    const script = sb.writeFile("script.json", {
      nodes: { split: [{ content: "{\"go\": \"yes\"}" }, { content: "{\"go\": false}" }], right: [{ content: report }] }
    })
    const ran = yield* Missions.run("default", made.mission_id, { actor: "test", llm: { provider: "mock", mock_script: script } })
    if (ran.mission.status !== "completed") throw new Error(`the mission ended ${ran.mission.status}: ${ran.result.halt_reason}`)
    return made.mission_id
  }).pipe(Effect.provide(layer(sb))))

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

describe.concurrent("autopilot missions show, of a mission that ran", () => {
  it("prints the healing policy, the run and its cost, and what was healed and what it cost", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb, true)
    const text = await sb.run(["missions", "show", id])
    expect(text.code).toBe(0)
    const lines = text.stdout
    expect(lines).toContain(
      "healing policy: 2 attempts per node, 12 per mission; cost spike above 3× the estimate; provider broken after 3 failures; " +
        "transient: backoff → backoff → fallback model → fallback provider; rate_limit: backoff → fallback model → fallback provider; " +
        "timeout: trim to 50% → fallback model → fallback provider; schema_violation: stricter output → temperature 0 → fallback model; " +
        "empty_answer: stricter output → fallback model → fallback provider; cost_spike: trim to 50%; tool_error_loop: trim to 50% → fallback model"
    )
    const checkpoint = sb.checkpoint(id)
    expect(lines).toContain(`run: ${id} completed · cost $${checkpoint.usage.dollars.toFixed(6)}`)
    const healed = lines.indexOf(lines.find((l) => l.startsWith("healed: "))!)
    expect(lines[healed]).toMatch(/^healed: 1 node; the attempts healing re-ran cost \S+ \d+\+\d+ tokens \$\d+\.\d{6} \d+ ms$/)
    expect(lines[healed + 1]).toBe("  split: healed after 2 attempts")
    expect(lines[healed + 2]).toMatch(/^ {4}healing attempt 1: schema_violation → stricter output instruction quoting ".*boolean.*": healed$/)
    // Without --steps, no steps; history stays last.
    expect(lines.some((l) => l.startsWith("steps:"))).toBe(false)
    expect(lines.at(-1)).toMatch(/scheduled → running {2}test {2}run started$|running → completed/)
  })

  it("--steps prints every node's attempts with telemetry and the full output; --messages the conversation", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb, true)
    const text = await sb.run(["missions", "show", id, "--steps"])
    expect(text.code).toBe(0)
    const steps = text.stdout.slice(text.stdout.indexOf("steps:"))
    const telemetry = /\S+ \d+\+\d+ tokens \$\d+\.\d{6} \d+ ms$/
    expect(steps[1]).toBe("  split: succeeded")
    expect(steps[2]).toMatch(new RegExp(`^ {4}\\[1\\] ${id}\\.split failed · `))
    expect(steps[2]).toMatch(telemetry)
    expect(steps[3]).toMatch(/^ {6}reason: .*\(schema_violation\); healing attempt 1 follows$/)
    expect(steps).toContain("        {\"go\": \"yes\"}")
    const second = steps.findIndex((l) => l.startsWith(`    [2] ${id}.split.2 succeeded · `))
    expect(second).toBeGreaterThan(2)
    expect(steps[second + 1]).toMatch(/^ {6}healing: schema_violation → stricter output instruction quoting .*: healed$/)
    expect(steps).toContain("  left: skipped (no edge into it was taken)")
    // The output in full, every line of it.
    const right = steps.indexOf("  right: succeeded")
    expect(steps.slice(right, right + 5)).toEqual([
      "  right: succeeded",
      expect.stringMatching(new RegExp(`^ {4}\\[1\\] ${id}\\.right succeeded · `)),
      "      output:",
      "        The right branch, reported in full.",
      "        A second line of it."
    ])
    expect(steps.some((l) => l.startsWith("      messages:"))).toBe(false)

    const withMessages = (await sb.run(["missions", "show", id, "--steps", "--messages"])).stdout
    const at = withMessages.indexOf("  right: succeeded")
    const conversation = withMessages.slice(at + 5, withMessages.indexOf("  merge: succeeded"))
    expect(conversation[0]).toBe("      messages:")
    expect(conversation[1]).toMatch(/^ {8}system: /)
    expect(conversation.some((l) => /^ {8}user: .*Go right/.test(l) || l.includes("Go right"))).toBe(true)
    expect(conversation).toContain("        assistant: The right branch, reported in full.")
    expect(conversation).toContain("          A second line of it.")
  })

  it("--format json has policy, run, healed, and with --steps the StepResults (messages with --messages)", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb, true)
    const plain = json((await sb.run(["missions", "show", id, "--format", "json"])).stdout)
    expect(plain.policy).toMatchObject({ max_attempts_per_node: 2, max_attempts_per_mission: 12, ladders: { schema_violation: [{ kind: "stricter_output" }, { kind: "lower_temperature", temperature: 0 }, { kind: "fallback_model" }] } })
    expect(plain.run).toEqual({ run_id: id, status: "completed", interrupted: false, halt_reason: null, cost_usd: sb.checkpoint(id).usage.dollars })
    expect(plain.healed.nodes).toEqual([{
      node: "split",
      attempts: 2,
      healing: [{ attempt: 1, class: "schema_violation", adjustment: { kind: "stricter_output", validation_error: expect.stringContaining("boolean") }, outcome: "healed" }],
      outcome: "healed"
    }])
    expect(plain.steps).toBeUndefined()

    const full = json((await sb.run(["missions", "show", id, "--steps", "--messages", "--format", "json"])).stdout)
    expect(full.steps.map((n: any) => [n.node, n.status, n.attempts.map((a: any) => `${a.run_id}:${a.status}`)])).toEqual([
      ["split", "succeeded", [`${id}.split:failed`, `${id}.split.2:succeeded`]],
      ["left", "skipped", []],
      ["right", "succeeded", [`${id}.right:succeeded`]],
      ["merge", "succeeded", [`${id}.merge:succeeded`]]
    ])
    const [first, second] = full.steps[0].attempts
    expect(Object.keys(first)).toEqual(["node", "attempt", "run_id", "status", "reason", "output", "telemetry", "messages"])
    expect(second.healing).toMatchObject({ class: "schema_violation", adjustment: { kind: "stricter_output" }, outcome: "healed" })
    expect(Object.keys(first.telemetry)).toEqual(["model_used", "input_tokens", "output_tokens", "cost_usd", "latency_ms"])
    // What healing cost is the failed first attempt's telemetry.
    expect(full.healed.cost).toEqual(first.telemetry)
    const right = full.steps[2].attempts[0]
    expect(right.output).toBe(report)
    expect(right.messages.find((m: any) => m.role === "assistant").content).toBe(report)
    expect(full.steps[0].attempts[1].messages.map((m: any) => m.content).join("\n")).toMatch(/rejected: .*go.*boolean/)

    const noMessages = json((await sb.run(["missions", "show", id, "--steps", "--format", "json"])).stdout)
    expect(noMessages.steps[2].attempts[0].messages).toBeUndefined()
    expect(noMessages.steps[2].attempts[0].output).toBe(report)
  })

  it("a mission never run: no run, nothing healed, no steps; a database without runs is not given their tables", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // Made through the Missions service alone: the database has no run tables.
    const id = await Effect.runPromise(Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "default", goal: "decide and report", blueprint, slots: {}, missing: [], actor: "test", reason: "test" })
      return made.mission_id
    }).pipe(Effect.provide(layerSqlite(sb.db))))
    const tables = () => sb.sql((db) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all())
    const before = tables()
    const text = await sb.run(["missions", "show", id, "--steps"])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain("run: none yet")
    expect(text.stdout).toContain("healed: nothing (not run)")
    expect(text.stdout.at(-1)).toBe("steps: none (the mission has not run)")
    expect(tables()).toEqual(before)
    expect(before.some((t: any) => t.name === "checkpoints")).toBe(false)

    // In a database that holds runs, a mission not run yet has none either.
    const scheduled = await mission(sb, false)
    const shown = json((await sb.run(["missions", "show", scheduled, "--steps", "--format", "json"])).stdout)
    expect(shown).toMatchObject({ status: "scheduled", run: null, healed: { nodes: [] }, steps: [] })
    expect(shown.healed.cost.cost_usd).toBe(0)
  })

  it("--messages without --steps is refused: one line, exit 2", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb, false)
    const refused = await sb.run(["missions", "show", id, "--messages"])
    expect(refused.code).toBe(2)
    expect(refused.stdout).toEqual([])
    expect(refused.stderr).toEqual(["autopilot: --messages shows the conversations of --steps: give --steps too"])
  })
})
