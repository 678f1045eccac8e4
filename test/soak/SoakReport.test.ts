import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MemorySample } from "../../src/soak/MemoryTrend.js"
import * as SoakReport from "../../src/soak/SoakReport.js"

const t0 = Date.parse("2026-12-02T10:00:00.000Z")
const minute = 60_000
const MiB = 2 ** 20

/** A process sampled every 10 s for an hour; memory in MiB as a function of the minute. */
const memoryOf = (process: string, rss: (m: number) => number, heap: (m: number) => number, lifelong = true) => ({
  process,
  lifelong,
  samples: Array.from({ length: 360 }, (_, i) => {
    const m = i / 6
    return new MemorySample({ t: t0 + i * 10_000, rss: rss(m) * MiB, heap_used: heap(m) * MiB, heap_total: 2 * heap(m) * MiB, external: 0, array_buffers: 0 })
  })
})

/** Progress every 15 s for an hour: 100 iterations a minute, `bytes(m)` bytes per iteration at minute m. */
const samplesOf = (bytesPerIteration: (m: number) => number) => {
  let bytes = 1_000_000
  return Array.from({ length: 240 }, (_, i) => {
    const m = i / 4
    if (i > 0) bytes += 25 * bytesPerIteration(m)
    return { t: t0 + i * 15_000, iterations: i * 25, dollars: i * 0.01, running: 4, bytes }
  })
}

/** An hour's soak where every promise held. */
const sound: SoakReport.Observed = {
  config: { seconds: 3600, seed: 11, out: "x", model: { _tag: "Mock" }, database: { _tag: "Sqlite" }, runsPerMinute: 12 },
  command: "AUTOPILOT_SOAK=3600 AUTOPILOT_SOAK_SEED=11 npm run soak",
  started: t0,
  ended: t0 + 62 * minute,
  plannedFaults: 2,
  faults: [
    { kind: "kill_runner", at: 600, hold_seconds: 3, pick: 1, t: t0 + 10 * minute, what: "killed daemon-runner-1-1 (pid 9) with -9, up again in 3 s" },
    { kind: "kill_fanout", at: 900, hold_seconds: 0, pick: 1, t: t0 + 15 * minute, what: "skipped: no fan-out was running" }
  ],
  submitted: ["soak-r1", "ms-1", "soak-f2"],
  endings: { "soak-r1": ["completed"], "ms-1": ["completed"] },
  fanoutsDone: ["soak-f2"],
  submissionFailures: [],
  audit: { runs: 20, iterations: 6000, findings: [] },
  continuousFindings: [],
  integrity: [],
  memory: [memoryOf("daemon-steady", () => 140, (m) => 50 + (m % 5)), memoryOf("serve", () => 110, () => 40), memoryOf("daemon-runner-1-1", (m) => 100 + m, () => 40, false)],
  samples: samplesOf(() => 4000),
  lags: Array.from({ length: 1000 }, (_, i) => 20 + (i % 100))
}

const verdict = (observed: SoakReport.Observed) =>
  Object.fromEntries(SoakReport.figuresOf(observed).checks.map((c) => [c.name, c.pass]))

const failing = (observed: SoakReport.Observed) =>
  SoakReport.figuresOf(observed).checks.filter((c) => !c.pass).map((c) => c.name)

describe("SoakReport", () => {
  it("a soak where every promise held passes every check (a runner that faults restart is not judged on memory)", () => {
    assert.deepStrictEqual(failing(sound), [])
    assert.isTrue(Object.values(verdict(sound)).every((pass) => pass))
  })

  it("each check fails on the evidence it exists to catch, and only that one", () => {
    const finding = (check: "exact_usage" | "ended_once" | "none_running" | "events_gap_free" | "fanout_sum") => ({
      ...sound,
      audit: { ...sound.audit, findings: [{ check, run_id: "soak-r1", detail: "…" }] }
    })
    const cases: ReadonlyArray<readonly [string, SoakReport.Observed]> = [
      ["every run ends exactly once", { ...sound, endings: { ...sound.endings, "soak-r1": ["completed", "completed"] } }],
      ["every run ends exactly once", { ...sound, endings: { "ms-1": ["completed"] } }],
      ["every run ends exactly once", { ...sound, endings: { ...sound.endings, "ms-1": ["refused: no key"] } }],
      ["no iteration lost or double-counted", finding("exact_usage")],
      ["each run's log ends once", finding("ended_once")],
      ["no run left running", finding("none_running")],
      ["event log gap-free", finding("events_gap_free")],
      ["fan-outs sum their children", finding("fanout_sum")],
      ["no iteration lost or double-counted", { ...sound, continuousFindings: [{ check: "exact_usage", run_id: "soak-r1", detail: "…" }] }],
      ["database integrity", { ...sound, integrity: ["row 12 missing from index steps_pk"] }],
      // A heap that gains 0.2 MiB a minute: 12 MiB over the hour, on a base of 50.
      ["memory flat after warm-up", { ...sound, memory: [memoryOf("daemon-steady", () => 140, (m) => 50 + m * 0.2), sound.memory[1]!] }],
      ["memory flat after warm-up", { ...sound, memory: [] }],
      // Each iteration writes more than the last: an index or a table that keeps what it should not.
      ["database bytes per iteration flat", { ...sound, samples: samplesOf((m) => 4000 + m * 60) }],
      ["event delivery lag bounded", { ...sound, lags: Array.from({ length: 100 }, (_, i) => (i < 95 ? 50 : 9000)) }],
      ["event delivery lag bounded", { ...sound, lags: [] }],
      ["work submitted as users submit it", { ...sound, submissionFailures: ["queue add soak-r9: exit 1: database is locked"] }]
    ]
    for (const [check, observed] of cases) assert.deepStrictEqual(failing(observed), [check], check)
  })

  it("never writes the model's key or the database's URL, which the command that runs it again leaves out too", () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-soak-report-"))
    const secret: SoakReport.Observed = {
      ...sound,
      config: {
        ...sound.config,
        model: { _tag: "OpenAi", baseUrl: "https://api.example.com/v1", apiKey: "sk-SECRET-123", model: undefined },
        database: { _tag: "Postgres", url: "postgres://soak:PASSWORD@db:5432/soak" }
      }
    }
    SoakReport.write(folder, SoakReport.figuresOf(secret))
    for (const file of fs.readdirSync(folder)) {
      const text = fs.readFileSync(path.join(folder, file), "utf8")
      assert.notInclude(text, "sk-SECRET-123", file)
      assert.notInclude(text, "PASSWORD", file)
    }
  })

  it("memory and bytes are judged over the soak's own span, not the idle wait for the last work after it", () => {
    // A 40-minute soak whose heap leaks, then 20 idle minutes at a low heap while its last work ends: judged
    // over all 60, the idle last quarter would hide the leak.
    const leaking = memoryOf("daemon-steady", () => 140, (m) => (m <= 40 ? 50 + m * 0.5 : 30))
    const idleTail = { ...sound, config: { ...sound.config, seconds: 2400 }, memory: [leaking, sound.memory[1]!] }
    assert.include(failing(idleTail), "memory flat after warm-up")
  })

  it("a finding seen while running and again at the end is reported once", () => {
    const f = { check: "exact_usage" as const, run_id: "soak-r1", detail: "iteration 3 added 9 tokens" }
    const figures = SoakReport.figuresOf({ ...sound, audit: { ...sound.audit, findings: [f] }, continuousFindings: [f] })
    assert.deepStrictEqual(figures.checks.find((c) => c.name === "no iteration lost or double-counted")!.details, ["soak-r1: iteration 3 added 9 tokens"])
  })

  it("writes a report a person can read: the verdict, the command again, every check, the faults, and the plots it links", () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-soak-report-"))
    const figures = SoakReport.figuresOf({ ...sound, integrity: ["page 7: btree corrupt"] })
    const { markdown } = SoakReport.write(folder, figures)
    const text = fs.readFileSync(markdown, "utf8")
    assert.match(text, /^# Soak report: FAIL/)
    assert.include(text, "`AUTOPILOT_SOAK=3600 AUTOPILOT_SOAK_SEED=11 npm run soak`")
    assert.include(text, "| database integrity | **FAIL** | 1 problems | ok |")
    assert.include(text, "- page 7: btree corrupt")
    assert.include(text, "| 600 s | kill_runner | killed daemon-runner-1-1 (pid 9) with -9, up again in 3 s |")
    for (const plot of ["rss.svg", "heap.svg", "iterations.svg", "cost.svg", "database.svg"]) {
      assert.include(text, `![${plot}](${plot})`)
      const svg = fs.readFileSync(path.join(folder, plot), "utf8")
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
      assert.notInclude(svg, "NaN")
    }
    const json = JSON.parse(fs.readFileSync(path.join(folder, "soak.json"), "utf8"))
    assert.deepStrictEqual(json.settings, { seconds: 3600, seed: 11, runs_per_minute: 12, model: "Mock", database: "Sqlite" })
    assert.strictEqual(json.checks.length, figures.checks.length)
    assert.strictEqual(json.lag.p99, figures.lag.p99)
  })
})
