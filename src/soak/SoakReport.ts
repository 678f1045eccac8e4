import * as fs from "node:fs"
import * as path from "node:path"
import type { Fault } from "./FaultPlan.js"
import * as Ledger from "./Ledger.js"
import { type MemorySample, type Trend, trendOf } from "./MemoryTrend.js"
import * as Plot from "./Plot.js"
import type { SoakConfig } from "./SoakConfig.js"

/** A fault as it was injected: when (epoch ms) and what it did, or why it was skipped. */
export interface FaultRecord extends Fault {
  readonly t: number
  readonly what: string
}

/** The soak's books at an instant: iterations and dollars of its runs so far, runs in flight, database bytes. */
export interface ProgressSample {
  readonly t: number
  readonly iterations: number
  readonly dollars: number
  readonly running: number
  readonly bytes: number
}

export interface CheckResult {
  readonly name: string
  readonly pass: boolean
  /** The measured figure, as a person reads it. */
  readonly figure: string
  readonly target: string
  /** What went wrong, a line each (at most a few dozen). */
  readonly details: ReadonlyArray<string>
}

export interface ProcessMemory {
  readonly process: string
  /** Lived the whole soak, untouched by faults: only such a process's memory can be judged flat. */
  readonly lifelong: boolean
  readonly samples: ReadonlyArray<MemorySample>
}

/** What the soak observed, as the driver hands it over. */
export interface Observed {
  readonly config: SoakConfig
  readonly command: string
  readonly started: number
  readonly ended: number
  readonly plannedFaults: number
  readonly faults: ReadonlyArray<FaultRecord>
  /** Every run, mission and fan-out the soak submitted, by id. */
  readonly submitted: ReadonlyArray<string>
  /** The daemons' `ended` lines of each queued run and mission, drains left out: exactly one each. */
  readonly endings: Readonly<Record<string, ReadonlyArray<string>>>
  /** Fan-outs that ended on their own (not stopped by a fault). */
  readonly fanoutsDone: ReadonlyArray<string>
  readonly submissionFailures: ReadonlyArray<string>
  /** The audit of every run the soak made, after the last process stopped. */
  readonly audit: Ledger.LedgerAudit
  /** Findings of the audits taken while it ran, of runs as they ended. */
  readonly continuousFindings: ReadonlyArray<Ledger.Finding>
  readonly integrity: ReadonlyArray<string>
  readonly memory: ReadonlyArray<ProcessMemory>
  readonly samples: ReadonlyArray<ProgressSample>
  /** Event delivery lags of live events, ms: received by an SSE client minus the event's `at`. */
  readonly lags: ReadonlyArray<number>
}

export interface Figures extends Observed {
  readonly checks: ReadonlyArray<CheckResult>
  readonly trends: ReadonlyArray<{ readonly process: string; readonly trend: Trend | undefined }>
  readonly lag: { readonly count: number; readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number }
  readonly bytesPerIteration: { readonly first: number; readonly last: number; readonly growth: number } | undefined
}

/** The bounds the checks hold the soak to. */
export const targets = {
  /** Last quarter after warm-up at most this far above the first, RSS and heap (the 10 %). */
  memoryGrowth: 0.1,
  /** Database bytes per iteration, last quarter against the first: a WAL's checkpoints move it by a few percent. */
  bytesGrowth: 0.25,
  /** Live events reach a client within this, for 99 in 100. */
  lagP99Ms: 5000
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

/**
 * Database bytes per iteration, first quarter against last after the warm-up (a fifth of the span): the
 * growth of bytes over the growth of iterations in each. Undefined when a quarter saw no iteration.
 */
export const bytesPerIterationOf = (samples: ReadonlyArray<ProgressSample>) => {
  if (samples.length < 8) return undefined
  const t0 = samples[0]!.t
  const t1 = samples[samples.length - 1]!.t
  const warm = t0 + (t1 - t0) * 0.2
  const quarter = (t1 - warm) / 4
  const rate = (from: number, to: number) => {
    const inside = samples.filter((s) => s.t >= from && s.t <= to)
    const a = inside[0]
    const b = inside[inside.length - 1]
    return a === undefined || b === undefined || b.iterations <= a.iterations ? undefined : (b.bytes - a.bytes) / (b.iterations - a.iterations)
  }
  const first = rate(warm, warm + quarter)
  const last = rate(t1 - quarter, t1)
  return first === undefined || last === undefined ? undefined : { first, last, growth: last / Math.max(first, 1) - 1 }
}


/** The checks, each pass or fail with its figure; a soak passes when every one does. */
export const figuresOf = (observed: Observed): Figures => {
  // Memory and bytes are judged over the soak's own span: the wait for the last work to end is idle, and
  // idle samples in the last quarter would flatter both.
  const deadline = observed.started + observed.config.seconds * 1000
  const working = { memory: observed.memory.map((m) => ({ ...m, samples: m.samples.filter((x) => x.t <= deadline) })), samples: observed.samples.filter((x) => x.t <= deadline) }
  // A run found wrong while the soak ran is usually found wrong again at the end: each finding once.
  const findings = [...new Map([...observed.audit.findings, ...observed.continuousFindings].map((f) => [`${f.check} ${f.run_id} ${f.detail}`, f])).values()]
  const ledgerCheck = (check: Ledger.Check, name: string, target: string): CheckResult => {
    const found = findings.filter((f) => f.check === check)
    return {
      name,
      pass: found.length === 0,
      figure: found.length === 0 ? `${observed.audit.runs} runs, ${observed.audit.iterations} iterations, no finding` : `${found.length} findings`,
      target,
      details: found.slice(0, 30).map((f) => `${f.run_id}: ${f.detail}`)
    }
  }

  // Every submission ended exactly once: a daemon's one `ended` line (a drain is not an end), or the fan-out's own end.
  const lost: Array<string> = []
  const twice: Array<string> = []
  const refused: Array<string> = []
  for (const id of observed.submitted) {
    const ends = observed.endings[id] ?? []
    if (observed.fanoutsDone.includes(id)) continue
    if (ends.length === 0) lost.push(`${id}: never ended`)
    if (ends.length > 1) twice.push(`${id}: ended ${ends.length} times (${ends.join("; ")})`)
    if (ends.some((e) => e.startsWith("refused"))) refused.push(`${id}: ${ends.join("; ")}`)
  }
  const endedOnce: CheckResult = {
    name: "every run ends exactly once",
    pass: lost.length + twice.length + refused.length === 0,
    figure: `${observed.submitted.length} submitted, ${observed.submitted.length - lost.length} ended, ${twice.length} ended twice, ${refused.length} refused`,
    target: "each submitted run, mission and fan-out ends once",
    details: [...lost, ...twice, ...refused].slice(0, 30)
  }

  const trends = working.memory.filter((m) => m.lifelong).map((m) => ({ process: m.process, trend: trendOf(m.samples, { tolerance: targets.memoryGrowth }) }))
  const memory: CheckResult = {
    name: "memory flat after warm-up",
    pass: trends.length > 0 && trends.every((t) => t.trend?.flat === true),
    figure: trends.map((t) =>
      t.trend === undefined
        ? `${t.process}: too few samples`
        : `${t.process}: RSS ${mib(t.trend.rss.first)} → ${mib(t.trend.rss.last)} (${pct(t.trend.rss.growth)}), heap ${mib(t.trend.heap_used.first)} → ${mib(t.trend.heap_used.last)} (${pct(t.trend.heap_used.growth)})`
    ).join("; ") || "no process sampled",
    target: `last quarter within ${targets.memoryGrowth * 100} % of the first, RSS and heap`,
    details: []
  }

  const bytes = bytesPerIterationOf(working.samples)
  const bytesCheck: CheckResult = {
    name: "database bytes per iteration flat",
    pass: bytes !== undefined && bytes.growth <= targets.bytesGrowth,
    figure: bytes === undefined
      ? "too few iterations to tell"
      : `${Math.round(bytes.first)} → ${Math.round(bytes.last)} bytes per iteration (${pct(bytes.growth)})`,
    target: `last quarter within ${targets.bytesGrowth * 100} % of the first`,
    details: []
  }

  const sorted = [...observed.lags].sort((a, b) => a - b)
  const lag = {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? 0
  }
  const lagCheck: CheckResult = {
    name: "event delivery lag bounded",
    pass: lag.count > 0 && lag.p99 <= targets.lagP99Ms,
    figure: lag.count === 0 ? "no live event received" : `${lag.count} events: p50 ${lag.p50} ms, p95 ${lag.p95} ms, p99 ${lag.p99} ms, max ${lag.max} ms`,
    target: `p99 ≤ ${targets.lagP99Ms} ms`,
    details: []
  }

  const checks: Array<CheckResult> = [
    endedOnce,
    ledgerCheck("exact_usage", "no iteration lost or double-counted", "usage equals the sum of step telemetry, steps 1..N"),
    ledgerCheck("ended_once", "each run's log ends once", "every result but the last a halt, the checkpoint agreeing"),
    ledgerCheck("none_running", "no run left running", "none"),
    ledgerCheck("events_gap_free", "event log gap-free", "seq 0..M, iteration events 1..N once each"),
    ledgerCheck("fanout_sum", "fan-outs sum their children", "exact"),
    {
      name: "database integrity",
      pass: observed.integrity.length === 0,
      figure: observed.integrity.length === 0 ? "ok" : `${observed.integrity.length} problems`,
      target: "ok",
      details: observed.integrity.slice(0, 30)
    },
    memory,
    bytesCheck,
    lagCheck,
    {
      name: "work submitted as users submit it",
      pass: observed.submissionFailures.length === 0,
      figure: `${observed.submissionFailures.length} refused`,
      target: "none refused, whatever the faults",
      details: observed.submissionFailures.slice(0, 30)
    }
  ]
  return { ...observed, checks, trends, lag, bytesPerIteration: bytes }
}

const fmtTime = (t: number) => new Date(t).toISOString().replace("T", " ").slice(0, 19)

/** The plots: memory (RSS and heap) of every process, iterations per minute, cost, each with the faults marked. */
export const plotsOf = (figures: Figures): Record<string, string> => {
  const markers = figures.faults.filter((f) => !f.what.startsWith("skipped")).map((f) => ({ at: f.t, label: f.kind, kind: f.kind }))
  const start = figures.started
  // One series per runner slot: a runner killed and started again goes on in the same colour.
  const slots = new Map<string, Array<MemorySample>>()
  for (const m of figures.memory) {
    const slot = m.process.replace(/-\d+$/, "")
    slots.set(slot, [...(slots.get(slot) ?? []), ...m.samples].sort((a, b) => a.t - b.t))
  }
  const memorySeries = (pick: (s: MemorySample) => number) =>
    [...slots].map(([name, samples]) => ({ name, points: samples.map((s) => [s.t, pick(s) / 2 ** 20] as const) }))
  const perMinute = figures.samples.slice(1).map((s, i) => {
    const before = figures.samples[i]!
    return [s.t, ((s.iterations - before.iterations) * 60_000) / Math.max(1, s.t - before.t)] as const
  })
  return {
    "rss.svg": Plot.svgOf({ title: "Resident memory (RSS) per process", yLabel: "MiB", series: memorySeries((s) => s.rss), markers, start }),
    "heap.svg": Plot.svgOf({ title: "Used JS heap per process", yLabel: "MiB", series: memorySeries((s) => s.heap_used), markers, start }),
    "iterations.svg": Plot.svgOf({ title: "Iterations per minute, every run of the soak", yLabel: "iterations / min", series: [{ name: "iterations per minute", points: perMinute }], markers, start }),
    "cost.svg": Plot.svgOf({
      title: "Cumulative cost",
      yLabel: "dollars",
      series: [{ name: "dollars spent", points: figures.samples.map((s) => [s.t, s.dollars] as const) }],
      markers,
      start,
      yFormat: (v) => `$${v.toFixed(v < 1 ? 4 : 2)}`
    }),
    "database.svg": Plot.svgOf({ title: "Database size", yLabel: "MiB", series: [{ name: "bytes on disk", points: figures.samples.map((s) => [s.t, s.bytes / 2 ** 20] as const) }], markers, start })
  }
}

/** The markdown summary: the verdict, each check with its figure and target, the faults, the plots. */
export const markdownOf = (figures: Figures, plots: ReadonlyArray<string>): string => {
  const passed = figures.checks.every((c) => c.pass)
  const minutes = (figures.ended - figures.started) / 60_000
  const last = figures.samples[figures.samples.length - 1]
  const lines = [
    `# Soak report: ${passed ? "PASS" : "FAIL"}`,
    "",
    `- **Again:** \`${figures.command}\``,
    `- **Seed:** ${figures.config.seed}; **length:** ${figures.config.seconds} s of work and faults, ${minutes.toFixed(1)} min in all (with the wait for the last work to end)`,
    `- **Model:** ${figures.config.model._tag === "Mock" ? "the embedded mock (latency 300 ms–3 s, a scripted failure every seventh turn)" : figures.config.model.baseUrl}; **database:** ${figures.config.database._tag === "Postgres" ? "Postgres (three runners)" : "SQLite (a steady daemon and a runner faults hit)"}`,
    `- **From** ${fmtTime(figures.started)} **to** ${fmtTime(figures.ended)} UTC`,
    `- **Work:** ${figures.submitted.length} runs, missions and fan-outs submitted; ${figures.audit.runs} runs audited (children included), ${last?.iterations ?? 0} iterations, $${(last?.dollars ?? 0).toFixed(4)}`,
    `- **Faults:** ${figures.faults.filter((f) => !f.what.startsWith("skipped")).length} injected of ${figures.plannedFaults} planned`,
    "",
    "## Checks",
    "",
    "| check | result | figure | target |",
    "|---|---|---|---|",
    ...figures.checks.map((c) => `| ${c.name} | ${c.pass ? "PASS" : "**FAIL**"} | ${c.figure.replace(/\|/g, "\\|")} | ${c.target} |`),
    "",
    ...figures.checks.filter((c) => c.details.length > 0).flatMap((c) => [`### ${c.name}`, "", ...c.details.map((d) => `- ${d}`), ""]),
    "## Plots",
    "",
    ...plots.map((p) => `![${p}](${p})`),
    "",
    "## Faults",
    "",
    "| at | fault | what happened |",
    "|---|---|---|",
    ...figures.faults.map((f) => `| ${((f.t - figures.started) / 1000).toFixed(0)} s | ${f.kind} | ${f.what.replace(/\|/g, "\\|")} |`),
    ""
  ]
  return lines.join("\n")
}

/** Writes report.md, soak.json and the plots into `folder`; the report's path. */
export const write = (folder: string, figures: Figures): { readonly markdown: string } => {
  const plots = plotsOf(figures)
  for (const [name, svg] of Object.entries(plots)) fs.writeFileSync(path.join(folder, name), svg)
  const markdown = path.join(folder, "report.md")
  fs.writeFileSync(markdown, markdownOf(figures, Object.keys(plots)))
  // The settings as the command that runs the soak again names them: never the key or the database's URL.
  const { config, lags, memory, ...rest } = figures
  const settings = { seconds: config.seconds, seed: config.seed, runs_per_minute: config.runsPerMinute, model: config.model._tag, database: config.database._tag }
  fs.writeFileSync(
    path.join(folder, "soak.json"),
    JSON.stringify({ settings, ...rest, memory_processes: memory.map((m) => m.process), lag_samples: lags.length }, null, 1)
  )
  return { markdown }
}
