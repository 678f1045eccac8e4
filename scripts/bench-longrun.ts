/**
 * Long-run memory: whether the process running work keeps a flat footprint over a long run, as users run
 * it (the built CLI, `node bin/autopilot.js`, with its launcher's node flags). Run with
 * `npm run bench:longrun` (builds first: the CLI runs from dist/).
 *
 *   node --import tsx scripts/bench-longrun.ts [--iterations=100000] [--missions=1000] [--approved=100]
 *        [--latency-ms=1000] [--seconds=300] [--sample-ms=1000] [--only=run,daemon] [--keep]
 *
 * 1. One run of `--iterations` iterations: `autopilot run … --max-iterations N` on the loop benchmarks'
 *    workload (scripts/bench-common.ts: a 1 KB mock turn, no latency, two criteria never met, so it halts
 *    on the iteration cap), on a SQLite file in a temporary AUTOPILOT_HOME.
 * 2. `--missions` pieces of work in flight at once in ONE `autopilot daemon --concurrency <missions>` on
 *    SQLite: `--missions - --approved` queued runs (through the library's `GoalQueue.add`, what `queue add`
 *    calls), each on the same 1 KB turn at `--latency-ms` per model call, criteria never met, and
 *    `--approved` approved missions of a one-node blueprint whose node never meets its criterion at the
 *    same latency; every one stopped by a wall-clock budget of `--seconds` (an iteration cap would make the
 *    length depend on how fast the machine is: two cores iterate 1,000 runs far slower than the latency
 *    allows). All are queued before the daemon starts; the window judged is from the moment every one has
 *    started to the first that ends.
 *
 * Memory is sampled from inside each process by the shared probe (scripts/lib/memory-probe.mjs, preloaded
 * with `--import`) every `--sample-ms`: RSS and the used heap; the peak RSS (VmHWM) is read from /proc.
 * Judged by src/soak/MemoryTrend.ts: after the first 20 % of the span (warm-up), the mean of the last
 * quarter may be at most 10 % above the mean of the first, for RSS and for the heap. A table goes to
 * stdout, then the figures as JSON, also written to bench-out/bench-longrun.json (not committed).
 */
import { Effect, Layer, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Blueprint } from "../src/domain/Blueprint.js"
import * as Missions from "../src/missions/Missions.js"
import * as GoalQueue from "../src/queue/GoalQueue.js"
import { parseSamples, trendOf, type Trend } from "../src/soak/MemoryTrend.js"
import * as Database from "../src/store/Database.js"
import * as QueueStore from "../src/store/QueueStore.js"
import * as RunStore from "../src/store/RunStore.js"
import { answer, criteria, mockScript, objective, option, r1, r2, root, Sqlite } from "./bench-common.js"
import { type Bench, log, runBench } from "./lib/bench-main.js"

const positive = (name: string, fallback: string, min = 1) => {
  const value = Number(option(name, fallback))
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} takes a whole number of at least ${min}; got "${option(name, fallback)}"`)
  return value
}
const ITERATIONS = positive("iterations", "100000")
const MISSIONS = positive("missions", "1000")
const APPROVED = positive("approved", "100", 0)
const LATENCY_MS = positive("latency-ms", "1000")
const SECONDS = positive("seconds", "300")
const SAMPLE_MS = positive("sample-ms", "1000", 50)
const ONLY = option("only", "run,daemon").split(",")
const KEEP = process.argv.includes("--keep")
if (APPROVED > MISSIONS) throw new Error(`--approved (${APPROVED}) cannot exceed --missions (${MISSIONS})`)
if (MISSIONS > 1000) throw new Error(`--missions takes at most 1000, the daemon's largest --concurrency; got ${MISSIONS}`)
for (const part of ONLY) if (part !== "run" && part !== "daemon") throw new Error(`--only takes run and daemon, comma-separated; got "${part}"`)

const bin = path.join(root, "bin", "autopilot.js")
const probe = path.join(root, "scripts", "lib", "memory-probe.mjs")
/** The node flags `autopilot` runs with (its launcher's shebang), as bench-curator reads them. */
const cliFlags = (fs.readFileSync(bin, "utf8").split("\n")[0]!.match(/ (--[a-z-]+=\S+)/g) ?? []).map((f) => f.trim())
const MiB = 2 ** 20
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every process started here, killed by the cleanup whatever ends the run. */
const children = new Set<ChildProcess>()

/** The environment of a child: a home of its own, none of the caller's AUTOPILOT_ settings, the probe on. */
const envFor = (home: string, samples: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, AUTOPILOT_HOME: home }
  for (const name of Object.keys(env)) if (name.startsWith("AUTOPILOT_") && name !== "AUTOPILOT_HOME") delete env[name]
  return { ...env, AUTOPILOT_MEMORY_PROBE: samples, AUTOPILOT_MEMORY_PROBE_MS: String(SAMPLE_MS) }
}

/** A kibibyte figure of /proc/PID/status (VmHWM, VmRSS), in MiB; undefined once the process is gone. */
const statusMib = (pid: number, field: string) => {
  try {
    const kib = new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
    return kib === undefined ? undefined : Number(kib) / 1024
  } catch {
    return undefined
  }
}

interface Child {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  /** The highest VmHWM read, MiB: the peak RSS, read every 200 ms and once more as it exits. */
  peak: () => number
  stderr: () => string
}

/** `node <cli flags> --import <probe> bin/autopilot.js ...args`, its stdout handed over a line at a time. */
const startCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, onLine: (line: string) => void): Child => {
  const child = spawn(process.execPath, [...cliFlags, "--import", probe, bin, ...args], { cwd: env["AUTOPILOT_HOME"], env, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  // If this process dies before its cleanup (kill -9), the child must not outlive it.
  const guard = spawn("/bin/sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`], { detached: true, stdio: "ignore" })
  guard.unref()
  let peak = 0
  const read = () => {
    const hwm = statusMib(child.pid!, "VmHWM")
    if (hwm !== undefined) peak = Math.max(peak, hwm)
  }
  const timer = setInterval(read, 200)
  let tail = ""
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    const parts = (tail + chunk).split("\n")
    tail = parts.pop() ?? ""
    for (const line of parts) onLine(line)
  })
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      clearInterval(timer)
      guard.kill()
      children.delete(child)
      resolve(code)
    })
  )
  return { child, exited, peak: () => peak, stderr: () => stderr }
}

const samplesOf = (file: string) => parseSamples(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "")

/** The trend as figures for the table and the JSON: MiB, growth in %. */
const figures = (trend: Trend | undefined) =>
  trend === undefined
    ? undefined
    : {
      samples: trend.samples,
      rss_first_mib: r1(trend.rss.first / MiB),
      rss_last_mib: r1(trend.rss.last / MiB),
      rss_growth_pct: r1(trend.rss.growth * 100),
      heap_first_mib: r1(trend.heap_used.first / MiB),
      heap_last_mib: r1(trend.heap_used.last / MiB),
      heap_growth_pct: r1(trend.heap_used.growth * 100),
      flat: trend.flat
    }

// ------------------------------------------------------------------------------------ 1. one long run

const singleRun = async (dir: string) => {
  const home = path.join(dir, "run")
  fs.mkdirSync(home)
  const script = path.join(home, "script.json")
  fs.writeFileSync(script, JSON.stringify(mockScript))
  const samples = path.join(home, "memory.jsonl")
  let iterations = 0
  let firstAt = Number.NaN
  let lastAt = Number.NaN
  let result: { status?: string; iterations?: number } | undefined
  const began = Date.now()
  const run = startCli([
    "run", objective, ...criteria.flatMap((c) => ["--criterion", c]), "--mock-script", script, "--db", path.join(home, "a.db"), "--format", "jsonl",
    "--max-iterations", String(ITERATIONS), "--max-seconds", "0", "--max-tokens", "0", "--max-dollars", "0"
  ], envFor(home, samples), (line) => {
    // Only the kind and time are needed: a 1 KB answer per line is not parsed 100,000 times.
    if (line.startsWith(`{"kind":"iteration"`)) {
      iterations++
      const at = Date.parse(/"at":"([^"]+)"/.exec(line)![1]!)
      if (iterations === 1) firstAt = at
      lastAt = at
      if (iterations % Math.max(1, Math.floor(ITERATIONS / 10)) === 0) {
        const rss = statusMib(run.child.pid!, "VmRSS")
        log(`  run: ${iterations} iterations, ${r1((Date.now() - began) / 1000)} s, RSS ${rss === undefined ? "?" : r1(rss)} MiB`)
      }
    } else if (line.startsWith(`{"kind":"result"`)) result = JSON.parse(line)
  })
  const code = await run.exited
  const wall = (Date.now() - began) / 1000
  if (code !== 4 || result?.status !== "halted" || result.iterations !== ITERATIONS || iterations !== ITERATIONS) {
    throw new Error(`autopilot run exited ${code} after ${iterations} iterations (result ${JSON.stringify(result)}): ${run.stderr().slice(-2000)}`)
  }
  const all = samplesOf(samples)
  return {
    iterations: ITERATIONS,
    wall_s: r1(wall),
    iterations_per_s: r1((ITERATIONS - 1) / ((lastAt - firstAt) / 1000)),
    peak_rss_mib: r1(run.peak()),
    database_mib: r2((fs.statSync(path.join(home, "a.db")).size + (fs.existsSync(path.join(home, "a.db-wal")) ? fs.statSync(path.join(home, "a.db-wal")).size : 0)) / MiB),
    memory: figures(trendOf(all)),
    series: series(all)
  }
}

/** The samples thinned to about 60 points, for the JSON: seconds from the first, RSS and heap in MiB. */
const series = (all: ReturnType<typeof samplesOf>) => {
  const every = Math.max(1, Math.ceil(all.length / 60))
  return all.filter((_, i) => i % every === 0 || i === all.length - 1)
    .map((s) => [r1((s.t - all[0]!.t) / 1000), r1(s.rss / MiB), r1(s.heap_used / MiB)])
}

// ---------------------------------------------------------------------- 2. many missions in one daemon

/** A one-node mission whose node never meets its criterion: it works until the mission's wall budget ends. */
const blueprint = (seconds: number) =>
  Schema.decodeUnknownSync(Blueprint)({
    id: "longrun_work",
    version: 1,
    title: "Long-run work",
    description: "One node that keeps working until the mission's time is up (benchmark).",
    category: "research",
    example_goals: ["keep refining the plan"],
    mode: "once",
    slots: [],
    graph: { entry: "work", nodes: [{ id: "work", role: "Works", prompt: "Keep refining the plan", model_tier: "simple" }], edges: [] },
    success_criteria: ["the plan is final (never met: benchmark)"],
    budget: { max_seconds: seconds, max_dollars: 1000 },
    curation: { capture: false }
  })

const daemon = async (dir: string) => {
  const home = path.join(dir, "daemon")
  fs.mkdirSync(home)
  const db = path.join(home, "a.db")
  const runs = MISSIONS - APPROVED
  const runScript = path.join(home, "runs.json")
  fs.writeFileSync(runScript, JSON.stringify({ ...mockScript, latency_ms: LATENCY_MS }))
  // The daemon's own model, which missions use: the node's turn, at the same latency, never met.
  const missionScript = path.join(home, "missions.json")
  fs.writeFileSync(missionScript, JSON.stringify({
    model: mockScript.model,
    latency_ms: LATENCY_MS,
    repeat_last: true,
    nodes: { work: [{ content: answer, usage: { input_tokens: 1000, output_tokens: 256 }, cost_usd: 0, criteria_met: [false] }] }
  }))
  const ids = Array.from({ length: runs }, (_, i) => `lr-${String(i).padStart(4, "0")}`)
  const q0 = Date.now()
  const missionIds = await Effect.runPromise(Effect.gen(function*() {
    const goals = yield* GoalQueue.GoalQueue
    for (const id of ids) {
      yield* goals.add({ objective, criteria, runId: id, policy: { max_iterations: 0, max_seconds: SECONDS, max_tokens: 0, max_dollars: 0 }, llm: { mock_script: runScript } })
    }
    const missions = yield* Missions.Missions
    const made: Array<string> = []
    for (let i = 0; i < APPROVED; i++) {
      const mission = yield* missions.create({
        project: "default",
        goal: `keep refining plan ${i}`,
        blueprint: blueprint(SECONDS),
        slots: {},
        missing: [],
        actor: "bench",
        reason: "bench-longrun"
      })
      yield* missions.approve("default", mission.mission_id, { actor: "bench" })
      made.push(mission.mission_id)
    }
    return made
  }).pipe(Effect.provide(Layer.mergeAll(GoalQueue.layer.pipe(Layer.provideMerge(Layer.merge(QueueStore.layer, RunStore.layer))), Missions.layer).pipe(
    Layer.provideMerge(Database.layerSqlite(db))
  ))))
  log(`  daemon: ${runs} runs and ${missionIds.length} approved missions queued in ${r1((Date.now() - q0) / 1000)} s`)

  const samples = path.join(home, "memory.jsonl")
  const started = new Map<string, number>()
  const ended = new Map<string, { at: number; outcome: string }>()
  let allStartedAt = Number.NaN
  let up = Number.NaN
  const lines: Array<string> = []
  const began = Date.now()
  let lastLog = began
  const d = startCli(["daemon", "--concurrency", String(MISSIONS), "--db", db, "--mock-script", missionScript, "--heartbeat-seconds", "3600"], envFor(home, samples), (line) => {
    lines.push(line)
    const space = line.indexOf(" ")
    const at = Date.parse(line.slice(0, space))
    const text = line.slice(space + 1)
    const m = /^(started|ended) (queued|mission) ([^ :]+)(?:: (.*))?$/.exec(text)
    if (text.includes(" up, working ")) up = at
    if (m === null) return
    if (m[1] === "started") {
      started.set(m[3]!, at)
      if (started.size === MISSIONS && Number.isNaN(allStartedAt)) {
        allStartedAt = at
        log(`  daemon: all ${MISSIONS} in flight ${r1((at - began) / 1000)} s after spawn, RSS ${r1(statusMib(d.child.pid!, "VmRSS") ?? Number.NaN)} MiB`)
      }
    } else ended.set(m[3]!, { at, outcome: m[4]! })
  })
  // Every 30 s a line of progress; done when every piece of work has ended.
  while (ended.size < MISSIONS) {
    const code = await Promise.race([d.exited, sleep(1000).then(() => "running" as const)])
    if (code !== "running") throw new Error(`the daemon exited (${code}) with ${ended.size} of ${MISSIONS} ended: ${d.stderr().slice(-2000)}\n${lines.slice(-20).join("\n")}`)
    if (Date.now() - lastLog >= 30_000) {
      lastLog = Date.now()
      log(`  daemon: ${r1((Date.now() - began) / 1000)} s, ${started.size} started, ${ended.size} ended, RSS ${r1(statusMib(d.child.pid!, "VmRSS") ?? Number.NaN)} MiB, peak ${r1(d.peak())} MiB`)
    }
  }
  d.child.kill("SIGTERM")
  await d.exited
  const endedAts = [...ended.values()].map((e) => e.at)
  const firstEnded = Math.min(...endedAts)
  const lastEnded = Math.max(...endedAts)
  const outcomes: Record<string, number> = {}
  for (const [id, e] of ended) {
    const key = `${missionIds.includes(id) ? "mission" : "queued"} ${e.outcome}`
    outcomes[key] = (outcomes[key] ?? 0) + 1
  }
  // The iterations done: steps stored (a mission's node iterations are its child runs' steps).
  const raw = new Sqlite(db)
  const steps = (raw.prepare("SELECT COUNT(*) AS n FROM steps").get() as { n: number }).n
  const stepsInWindow = Number.isNaN(allStartedAt)
    ? Number.NaN
    : (raw.prepare("SELECT COUNT(*) AS n FROM steps WHERE json_extract(body, '$.at') BETWEEN ? AND ?").get(
      new Date(allStartedAt).toISOString(),
      new Date(firstEnded).toISOString()
    ) as { n: number } | undefined)?.n ?? Number.NaN
  raw.close()
  const all = samplesOf(samples)
  const window = all.filter((s) => s.t >= allStartedAt && s.t <= firstEnded)
  if (lines.length > 0) fs.writeFileSync(path.join(home, "daemon.log"), `${lines.join("\n")}\n`)
  return {
    runs,
    approved_missions: missionIds.length,
    latency_ms: LATENCY_MS,
    seconds: SECONDS,
    boot_s: r1((up - began) / 1000),
    all_in_flight_after_s: r1((allStartedAt - began) / 1000),
    in_flight_together_s: r1((firstEnded - allStartedAt) / 1000),
    wall_s: r1((lastEnded - began) / 1000),
    outcomes,
    steps,
    iterations_per_s: r1(steps / ((lastEnded - Math.min(...started.values())) / 1000)),
    iterations_per_s_all_in_flight: r1(stepsInWindow / ((firstEnded - allStartedAt) / 1000)),
    peak_rss_mib: r1(d.peak()),
    /** Judged while every piece of work was in flight: from the last start to the first end. */
    memory: figures(trendOf(window)),
    /** From the daemon's first sample to its last, start-up and the runs ending included. */
    memory_whole: figures(trendOf(all)),
    series: series(all)
  }
}

// ------------------------------------------------------------------------------------------------ main

const main = async ({ machine: env, tmp }: Bench) => {
  if (!fs.existsSync(path.join(root, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` first")
  log(`node flags of the CLI processes: ${[...cliFlags, "--import", "scripts/lib/memory-probe.mjs"].join(" ")}; samples every ${SAMPLE_MS} ms`)
  const results: Record<string, unknown> = {}
  if (ONLY.includes("run")) {
    log(`1. autopilot run, ${ITERATIONS} iterations, mock without latency, SQLite`)
    results["run"] = await singleRun(tmp)
  }
  if (ONLY.includes("daemon")) {
    log(`2. autopilot daemon --concurrency ${MISSIONS}: ${MISSIONS - APPROVED} queued runs + ${APPROVED} approved missions, mock ${LATENCY_MS} ms per call, ${SECONDS} s each, SQLite`)
    results["daemon"] = await daemon(tmp)
  }
  const summary = {
    machine: { ...env, loadavg_at_end: os.loadavg().map(r2), memory_free_gb: r1(os.freemem() / 2 ** 30) },
    command: ["node --import tsx scripts/bench-longrun.ts", ...process.argv.slice(2)].join(" "),
    node_flags: cliFlags,
    options: { iterations: ITERATIONS, missions: MISSIONS, approved: APPROVED, latency_ms: LATENCY_MS, seconds: SECONDS, sample_ms: SAMPLE_MS },
    target: "after a 20 % warm-up, the mean of the last quarter within 10 % of the first, for RSS and the used heap (src/soak/MemoryTrend.ts)",
    results
  }
  printTable(summary.results as { run?: Awaited<ReturnType<typeof singleRun>>; daemon?: Awaited<ReturnType<typeof daemon>> }, summary.machine)
  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-longrun.json"), `${JSON.stringify(summary, null, 2)}\n`)
  log("")
  log("JSON (also in bench-out/bench-longrun.json, with the memory series):")
  log(JSON.stringify({ ...summary, results: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { ...(v as object), series: undefined }])) }))
}

const printTable = (
  r: { run?: Awaited<ReturnType<typeof singleRun>>; daemon?: Awaited<ReturnType<typeof daemon>> },
  m: { loadavg_at_start: ReadonlyArray<number>; loadavg_at_end: ReadonlyArray<number> }
) => {
  const row = (name: string, wall: number, rate: number, peak: number, f: ReturnType<typeof figures>) =>
    log(`${name.padEnd(34)} | ${String(wall).padStart(7)} | ${String(rate).padStart(6)} | ` +
      (f === undefined
        ? "too few samples"
        : `${`${f.rss_first_mib} → ${f.rss_last_mib}`.padStart(15)} | ${`${f.rss_growth_pct} %`.padStart(8)} | ${`${f.heap_first_mib} → ${f.heap_last_mib}`.padStart(15)} | ${`${f.heap_growth_pct} %`.padStart(8)} | ${String(peak).padStart(8)} | ${f.flat ? "MET" : "NOT MET"}`))
  log("")
  log("measurement                        |  wall s |  it/s  | RSS MiB 1st→last q | RSS grew | heap MiB 1st→last q | heap grew | peak MiB | flat (≤ 10 %)")
  if (r.run !== undefined) row(`run, ${r.run.iterations} iterations`, r.run.wall_s, r.run.iterations_per_s, r.run.peak_rss_mib, r.run.memory)
  if (r.daemon !== undefined) {
    const d = r.daemon
    row(`daemon, ${d.runs}+${d.approved_missions} in flight`, d.in_flight_together_s, d.iterations_per_s_all_in_flight, d.peak_rss_mib, d.memory)
    row("daemon, whole life", d.wall_s, d.iterations_per_s, d.peak_rss_mib, d.memory_whole)
    log(`daemon: boot ${d.boot_s} s, all in flight after ${d.all_in_flight_after_s} s, together for ${d.in_flight_together_s} s; outcomes ${JSON.stringify(d.outcomes)}; ${d.steps} steps`)
  }
  log(`load average ${m.loadavg_at_start.join(" ")} at start, ${m.loadavg_at_end.join(" ")} at end`)
}

runBench({
  name: "bench-longrun",
  title: "long-run memory",
  keep: KEEP,
  cleanup: () => {
    for (const child of children) child.kill("SIGKILL")
  },
  main
})
