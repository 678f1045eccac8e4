import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

/** Significant digits of a number as JSON prints it: `0.00004935` has 4, `0.00004934999999999999` has 16. */
const significantDigits = (n: number) =>
  String(Math.abs(n)).replace(/e.*$/, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "").length

/** Every money field in a JSON value (`dollars`, `cost_usd`), with where it was found. */
const moneyIn = (value: unknown, at = "$"): Array<[string, number]> =>
  Array.isArray(value)
    ? value.flatMap((v, i) => moneyIn(v, `${at}[${i}]`))
    : typeof value === "object" && value !== null
    ? Object.entries(value).flatMap(([key, v]) =>
      (key === "dollars" || key === "cost_usd") && typeof v === "number" ? [[`${at}.${key}`, v] as [string, number]] : moneyIn(v, `${at}.${key}`))
    : []

describe.concurrent("what commands print", () => {
  it("run and resume say which database they write, on stderr, so stdout keeps only the run", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // No --db: the database is $AUTOPILOT_HOME/autopilot.db, which nothing else on screen would name.
    const run = await sb.run(["run", "obj", "--criterion", "a", "--criterion", "b", "--run-id", "r", "--max-iterations", "1"], { db: false })
    expect(run.code).toBe(3)
    expect(run.stderr).toEqual([`database: ${path.join(sb.dir, "autopilot.db")}`])
    expect(run.stdout[0]).toBe("Starting run r at iteration 1: obj")

    const resumed = await sb.run(["resume", "r", "--max-iterations", "5", "--format", "jsonl"], { db: false })
    expect(resumed.code).toBe(0)
    expect(resumed.stderr).toEqual([`database: ${path.join(sb.dir, "autopilot.db")}`])
    for (const line of resumed.stdout) expect(() => JSON.parse(line)).not.toThrow()
  })

  it("counts of one are singular: 1 iteration, 1 tool call, never 1 iterations", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const run = await sb.run(["run", "obj", "--criterion", "a", "--criterion", "b", "--run-id", "one", "--max-iterations", "1", "--max-tool-calls", "1"])
    expect(run.code).toBe(3)
    const out = run.stdout.join("\n")
    expect(out).toMatch(/budget left: .*1 tool call · .* · 1 iteration$/m)
    expect(out).toMatch(/^Run one partial: iteration limit reached: 1 of 1 iteration$/m)
    expect(out).toMatch(/^ {2}criteria 1\/2 · 1 iteration · 0 tool calls · /m)
    expect(out).not.toMatch(/\b1 (iterations|tool calls|tokens)\b/)
    const runs = await sb.run(["runs"])
    expect(runs.stdout[0]).toMatch(/ 1 iteration {3}criteria/)
    const shown = await sb.run(["show", "one"])
    expect(shown.stdout.join("\n")).toMatch(/^usage: 1 iteration · 0 tool calls · /m)
  })

  it("a cap of a fraction of a cent is shown as given, and what is left with the digits that tell it apart", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // The default mock spends about $0.00004 an iteration.
    const run = await sb.run(["run", "obj", ...["a", "b", "c", "d", "e"].flatMap((c) => ["--criterion", c]), "--run-id", "cheap", "--max-dollars", "0.0001"])
    expect(run.code).toBe(3)
    const out = run.stdout.join("\n")
    expect(out).toMatch(/^Run cheap partial: dollar limit reached: \$0\.000\d\d of \$0\.0001$/m)
    // $0.0001 less about $0.00004 is about $0.00006, which four decimals would round to $0.0001.
    expect(out).toMatch(/^\[1\] criteria 1\/5 · left: .* · \$0\.0000\d\d · 199 iterations$/m)
  })

  it("money in JSON carries no float noise: run, events, show and runs", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // 77 input and 11 output tokens of gpt-4o-mini: 0.000018149999999999997 in plain floating point.
    const script = sb.writeFile("script.json", {
      model: "gpt-4o-mini",
      latency_ms: 0,
      repeat_last: true,
      turns: [{ content: "Working.", usage: { input_tokens: 77, output_tokens: 11 }, criteria_met: [false] }]
    })
    const run = sb.start(["run", "obj", "--criterion", "a", "--run-id", "m", "--max-iterations", "3", "--mock-script", script, "--format", "jsonl"])
    expect((await run.waitForExit()).code).toBe(4)
    const replay = await sb.run(["events", "m", "--format", "jsonl"])
    const shown = await sb.run(["show", "m", "--format", "json"])
    const listed = await sb.run(["runs", "--format", "json"])

    const money = [
      ...run.events().flatMap((e) => moneyIn(e, `run ${e.kind}`)),
      ...replay.stdout.flatMap((line) => moneyIn(JSON.parse(line), "events")),
      ...moneyIn(JSON.parse(shown.stdout.join("\n")), "show"),
      ...moneyIn(JSON.parse(listed.stdout.join("\n")), "runs")
    ]
    expect(money.length).toBeGreaterThan(20)
    expect(money.filter(([, n]) => significantDigits(n) > 12)).toEqual([])
    const show = JSON.parse(shown.stdout.join("\n")) as Record<string, any>
    expect(show["cost_usd"]).toBe(0.00005445)
    expect(show["steps"].map((s: { cost_usd: number }) => s.cost_usd)).toEqual([0.00001815, 0.00001815, 0.00001815])
  })
})
