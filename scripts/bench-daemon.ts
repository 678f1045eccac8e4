/**
 * The daemon as users run it: `autopilot daemon` processes of the built CLI (`node bin/autopilot.js`),
 * on SQLite and on Postgres. Run with `npm run bench:daemon` (builds first: the CLI runs from dist/).
 *
 *   node --import tsx scripts/bench-daemon.ts [--runs=200] [--concurrency=8] [--latency-ms=20] [--poll-seconds=0.5,0.1]
 *        [--lease-seconds=5] [--failover-runs=6] [--failover-iterations=8] [--failover-repeats=3]
 *        [--iterations=1000] [--overhead-repeats=3] [--only=throughput,failover,overhead]
 *        [--cases=sqlite:1,postgres:1,postgres:3] [--keep]
 *
 * Postgres: `$AUTOPILOT_BENCH_DATABASE_URL` if set (its user must be allowed to CREATE DATABASE), else a
 * throwaway server started here as the tests start theirs (scripts/lib/postgres.ts), but durable: the
 * server's defaults (fsync, synchronous_commit and full_page_writes on; max_connections 300), not the
 * tests' unsynced settings. Every measurement gets a database of its own (a new SQLite file, a new
 * Postgres database, dropped after) and a temporary AUTOPILOT_HOME.
 *
 * 1. Throughput: `--runs` entries queued through the library (`GoalQueue.add`, what `queue add` calls),
 *    each on the mock script `{latency_ms: --latency-ms, repeat_last: true, turns: [{content: "done",
 *    criteria_met: [true]}]}` (one iteration, completed), then the daemons started (`--concurrency`
 *    each, the default lease, each `--poll-seconds` in turn; 0.5 is the daemon's default) and timed until
 *    every run has its `ended queued <id>: completed` line: one runner on SQLite, one on Postgres, three
 *    on Postgres. Runs/s over the window from the first `started` line to the last `ended` (and from the
 *    first spawn, boot included); p50/p95 of the time from an entry's dispatch (its `dispatched_at`) to
 *    its `started` line, and from its queueing (which, the whole backlog queued first, is mostly the wait
 *    for a free slot); CPU per run after boot, of the daemons and of the server. Checked: every run started
 *    once, ended completed, with one iteration and one step.
 * 2. Fail-over: three daemons on Postgres, two on SQLite, with `--lease-seconds`; once all are up (and
 *    3 s more, so that no runner joins later and takes shards from the others), `--failover-runs` long runs
 *    queued (mock latency 1,000 ms, criteria never met, `--failover-iterations` iterations); once each
 *    runs on one daemon, and 1.5 s more (inside an iteration), the daemon with the most runs is killed
 *    with -9. Measured from the kill to each of its runs' `started` line on another daemon: median and max;
 *    target: every one under the lease + 5 s. Then every run must end halted with exactly
 *    `--failover-iterations` iterations and as many steps (none lost or counted twice). Repeated
 *    `--failover-repeats` times, a new database each; each daemon's lines are saved in its folder (`--keep`).
 * 3. Per-iteration overhead: `autopilot run … --format jsonl` on the loop benchmarks' workload
 *    (scripts/bench-common.ts: a 1 KB mock turn, no latency, two criteria never met, so every iteration is
 *    checkpointed and the run halts on `--iterations`) on SQLite, on Postgres, and on Postgres with
 *    `synchronous_commit = off` for its database (closer to SQLite's `synchronous = NORMAL`, which does
 *    not sync at every commit). Per iteration: the time between `iteration` events over the second half of
 *    the run (warmed up) and over all of it; CPU of the CLI process (start-up included) and of the server
 *    (when started here: the postmaster and its backends, from /proc); on Postgres, the transactions and
 *    rows written, from pg_stat_database. Medians of `--overhead-repeats`, the kinds in alternating order.
 *
 * The machine's load is recorded before and after. Every process started here is killed at the end, on
 * failure and on Ctrl-C; watchdogs kill each daemon, stop the server and delete the temporary folder if
 * this process dies first (kill -9). A table goes to stdout, then the figures as JSON, also written to
 * bench-out/bench-daemon.json (not committed).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as GoalQueue from "../src/queue/GoalQueue.js"
import * as Database from "../src/store/Database.js"
import * as QueueStore from "../src/store/QueueStore.js"
import * as RunStore from "../src/store/RunStore.js"
import { type Bench, runBench } from "./lib/bench-main.js"
import { criteria, median, mockScript, objective, option, r1, r2, root, timed } from "./bench-common.js"
import * as Postgres from "./lib/postgres.js"

const RUNS = Number(option("runs", "200"))
const CONCURRENCY = Number(option("concurrency", "8"))
const LATENCY_MS = Number(option("latency-ms", "20"))
/** The throughput is measured at each; the fail-over at the first. 0.5 is the daemon's default. */
const POLLS = option("poll-seconds", "0.5,0.1").split(",").map(Number)
const POLL_SECONDS = POLLS[0]!
const LEASE_SECONDS = Number(option("lease-seconds", "5"))
const FAILOVER_RUNS = Number(option("failover-runs", "6"))
const FAILOVER_ITERATIONS = Number(option("failover-iterations", "8"))
const FAILOVER_REPEATS = Number(option("failover-repeats", "3"))
const ITERATIONS = Number(option("iterations", "1000"))
const OVERHEAD_REPEATS = Number(option("overhead-repeats", "3"))
const ONLY = option("only", "throughput,failover,overhead").split(",")
/** Database and runner count of each throughput measurement. */
const CASES = option("cases", "sqlite:1,postgres:1,postgres:3").split(",").map((c) => {
  const [kind, runners] = c.split(":")
  if ((kind !== "sqlite" && kind !== "postgres") || !(Number(runners) >= 1)) throw new Error(`--cases takes sqlite:N or postgres:N, comma-separated; got "${c}"`)
  return [kind, Number(runners)] as const
})
const KEEP = process.argv.includes("--keep")

/** The issue's target: a killed runner's runs running again elsewhere within the lease plus this. */
const TARGET_FAILOVER_SLACK_S = 5
/** How long a failed-over run's mock call takes, so that the kill lands inside an iteration. */
const FAILOVER_LATENCY_MS = 1000
/** What the bench's own Postgres runs with besides its defaults: room for many daemons' pools. */
const SERVER_SETTINGS = { max_connections: 300 } as const

const bin = path.join(root, "bin", "autopilot.js")
const log = (line: string) => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** A figure for the table: a dash where it does not apply (NaN). */
const show = (x: number) => (Number.isNaN(x) ? "—" : String(x))
const pct = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

// ------------------------------------------------------------------------------------------- processes

/** USER_HZ, the unit of /proc's CPU times: 100 on Linux whatever the kernel's own tick. */
const CLK_TCK = 100

/** User + system CPU of a live process (and, with `reaped`, of its children it has waited for), in ms. */
const cpuOf = (pid: number, reaped = false) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
    // Fields 14-17 of proc(5): utime, stime, cutime, cstime; here from field 3.
    const ticks = fields[11]! + fields[12]! + (reaped ? fields[13]! + fields[14]! : 0)
    return (ticks * 1000) / CLK_TCK
  } catch {
    return Number.NaN
  }
}

/** A server's CPU so far: the postmaster, the backends it has reaped, and the live ones. */
const serverCpu = (data: string | undefined) => {
  if (data === undefined) return Number.NaN
  const postmaster = Number(fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0])
  const children = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8")
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster
    } catch {
      return false
    }
  })
  return cpuOf(postmaster, true) + children.reduce((sum, pid) => sum + (cpuOf(Number(pid)) || 0), 0)
}

/** Every process started here, for the cleanup. */
const children = new Set<Daemon>()
/** Called on every line from any process, and on every exit: what waits re-checks. */
const waiters = new Set<() => void>()
const notify = () => {
  for (const w of [...waiters]) w()
}

interface Line {
  /** The time the daemon printed at the start of the line, in ms since the epoch. */
  readonly at: number
  readonly text: string
}

/** One `autopilot daemon` process, its stdout lines parsed as `<ISO time> <text>`. */
class Daemon {
  readonly lines: Array<Line> = []
  readonly stderr: Array<string> = []
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  readonly exited: Promise<void>
  /** Its CPU (ms) once it said it was up: what booting cost, left out of the per-run figures. */
  bootCpu = Number.NaN
  /** Set before a kill or SIGTERM we meant: its exit is then no failure. */
  stopping = false
  private readonly child: ChildProcess
  private readonly guard: ChildProcess

  constructor(readonly name: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [bin, "daemon", ...args], { cwd: env["AUTOPILOT_HOME"], env, stdio: ["ignore", "pipe", "pipe"] })
    // If this process dies before its cleanup (kill -9), the daemon must not outlive it.
    this.guard = spawn("/bin/sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${this.child.pid} 2>/dev/null`], {
      detached: true,
      stdio: "ignore"
    })
    this.guard.unref()
    children.add(this)
    const collect = (stream: NodeJS.ReadableStream, sink: (line: string) => void) => {
      let partial = ""
      stream.setEncoding("utf8")
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n")
        partial = parts.pop() ?? ""
        for (const p of parts) sink(p)
        if (parts.length > 0) notify()
      })
    }
    collect(this.child.stdout!, (text) => {
      const space = text.indexOf(" ")
      this.lines.push({ at: Date.parse(text.slice(0, space)), text: text.slice(space + 1) })
      if (text.includes(" up, working ")) this.bootCpu = this.cpu()
    })
    collect(this.child.stderr!, (text) => this.stderr.push(text))
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code, signal) => {
        this.exit = { code, signal }
        this.guard.kill()
        children.delete(this)
        notify()
        resolve()
      })
    )
  }

  get pid() {
    return this.child.pid!
  }

  /** CPU of the daemon so far (ms); NaN once it has exited. */
  cpu() {
    return cpuOf(this.pid)
  }

  /** Lines `started queued <id>` / `ended queued <id>: <outcome>`, by run id. */
  started(id: string) {
    return this.lines.filter((l) => l.text === `started queued ${id}`)
  }

  ended(id: string) {
    return this.lines.filter((l) => l.text.startsWith(`ended queued ${id}: `))
  }

  /** Runs whose latest line here is `started`: not ended, not handed over (drained or its shard moved). */
  running() {
    const last = new Map<string, string>()
    for (const l of this.lines) {
      const m = /^(started|ended|handed over) queued ([^ :]+)/.exec(l.text)
      if (m !== null) last.set(m[2]!, m[1]!)
    }
    return [...last].filter(([, verb]) => verb === "started").map(([id]) => id)
  }

  /** Every line, as printed, for the record. */
  save(file: string) {
    fs.writeFileSync(file, [...this.lines.map((l) => `${new Date(l.at).toISOString()} ${l.text}`), ...this.stderr.map((l) => `stderr: ${l}`)].join("\n") + "\n")
  }

  kill(signal: NodeJS.Signals) {
    this.stopping = true
    if (this.exit === undefined) process.kill(this.pid, signal)
  }

  transcript() {
    return [`${this.name} (pid ${this.pid}${this.exit === undefined ? "" : `, exited ${JSON.stringify(this.exit)}`})`,
      ...this.lines.slice(-10).map((l) => `  out| ${new Date(l.at).toISOString()} ${l.text}`),
      ...this.stderr.slice(-10).map((l) => `  err| ${l}`)].join("\n")
  }
}

/**
 * Resolves once `check` gives a value; rejects at the deadline, or when one of `alive` exits unasked.
 */
const until = <A>(what: string, timeoutMs: number, alive: ReadonlyArray<Daemon>, check: () => A | undefined) =>
  new Promise<A>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      waiters.delete(attempt)
    }
    const attempt = () => {
      const value = check()
      if (value !== undefined) {
        done()
        return resolve(value)
      }
      const dead = alive.find((d) => d.exit !== undefined && !d.stopping)
      if (dead !== undefined) {
        done()
        reject(new Error(`waiting for ${what}: ${dead.name} exited\n${dead.transcript()}`))
      }
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`waiting for ${what}: nothing within ${timeoutMs / 1000} s\n${alive.map((d) => d.transcript()).join("\n")}`))
    }, timeoutMs)
    waiters.add(attempt)
    attempt()
  })

/** SIGTERM (a drain), then SIGKILL after 30 s: every daemon gone. */
const stopAll = async (daemons: ReadonlyArray<Daemon>) => {
  for (const d of daemons) d.kill("SIGTERM")
  const all = Promise.all(daemons.map((d) => d.exited))
  if (await Promise.race([all.then(() => true), sleep(30_000).then(() => false)])) return
  for (const d of daemons) d.kill("SIGKILL")
  await all
}

const killEverything = () => {
  for (const d of children) d.kill("SIGKILL")
}

// ------------------------------------------------------------------------------------------- databases

interface Target {
  readonly kind: "sqlite" | "postgres"
  /** What the CLI is given to use it. */
  readonly args: ReadonlyArray<string>
  readonly layer: Layer.Layer<SqlClient.SqlClient>
  readonly drop: () => Promise<void>
}

const sqliteTarget = (dir: string): Target => {
  const file = path.join(dir, "a.db")
  return { kind: "sqlite", args: ["--db", file], layer: Database.layerSqlite(file), drop: async () => {} }
}

const postgresTarget = async (serverUrl: string, settings: Readonly<Record<string, string>> = {}): Promise<Target> => {
  const db = await Postgres.createDatabase(serverUrl, "autopilot_bench", settings)
  // With --keep, left on the server for a look (on a server started here, gone with it).
  return { kind: "postgres", args: ["--database", db.url], layer: Layer.orDie(Database.layerPg(db.url)), drop: KEEP ? async () => {} : db.drop }
}

const withStores = <A, E>(target: Target, effect: Effect.Effect<A, E, GoalQueue.GoalQueue | RunStore.RunStore | SqlClient.SqlClient>) =>
  Effect.runPromise(effect.pipe(
    Effect.provide(GoalQueue.layer.pipe(Layer.provideMerge(Layer.merge(QueueStore.layer, RunStore.layer)), Layer.provideMerge(target.layer)))
  ))

/** Queues `ids` through the library, each on `script` for at most `maxIterations`; the time it took (ms). */
const queue = (target: Target, ids: ReadonlyArray<string>, script: string, maxIterations: number) =>
  withStores(target, Effect.gen(function*() {
    const goals = yield* GoalQueue.GoalQueue
    const began = performance.now()
    for (const id of ids) {
      yield* goals.add({ objective: `benchmark run ${id}`, runId: id, policy: { max_iterations: maxIterations }, llm: { mock_script: script } })
    }
    return performance.now() - began
  }))

/** What the database says of each run once the daemons are gone: status, iterations, steps; and when queued and dispatched. */
const audit = (target: Target, ids: ReadonlyArray<string>) =>
  withStores(target, Effect.gen(function*() {
    const runs = yield* RunStore.RunStore
    const goals = yield* GoalQueue.GoalQueue
    const sql = yield* SqlClient.SqlClient
    return yield* Effect.forEach(ids, (id) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(id)
        const [row] = yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM steps WHERE run_id = ${id}`
        const entry = yield* goals.get(id)
        return {
          id,
          status: loaded._tag === "Found" ? loaded.checkpoint.status : loaded._tag,
          iterations: loaded._tag === "Found" ? loaded.checkpoint.usage.iterations : Number.NaN,
          steps: Number(row?.n ?? Number.NaN),
          created_at: entry._tag === "Some" ? Date.parse(entry.value.created_at) : Number.NaN,
          dispatched_at: entry._tag === "Some" && entry.value.dispatched_at !== null ? Date.parse(entry.value.dispatched_at) : Number.NaN
        }
      }))
  }))

// ---------------------------------------------------------------------------------------------- setup

interface Context {
  readonly dir: string
  readonly serverUrl: string
  /** The data folder of the server started here; undefined for `$AUTOPILOT_BENCH_DATABASE_URL`. */
  readonly serverData: string | undefined
}

let scenario = 0

/** A folder for one measurement (its AUTOPILOT_HOME) and its database. */
const prepare = async (ctx: Context, kind: Target["kind"], settings: Readonly<Record<string, string>> = {}) => {
  const home = path.join(ctx.dir, `s${++scenario}-${kind}`)
  fs.mkdirSync(home)
  const target = kind === "sqlite" ? sqliteTarget(home) : await postgresTarget(ctx.serverUrl, settings)
  return { home, target }
}

const envFor = (home: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, AUTOPILOT_HOME: home }
  for (const name of Object.keys(env)) if (name.startsWith("AUTOPILOT_") && name !== "AUTOPILOT_HOME") delete env[name]
  return env
}

const writeScript = (home: string, script: object) => {
  const file = path.join(home, "script.json")
  fs.writeFileSync(file, JSON.stringify(script))
  return file
}

const startDaemons = (home: string, target: Target, count: number, flags: ReadonlyArray<string>) =>
  Array.from({ length: count }, (_, i) => new Daemon(`daemon ${i + 1}`, [...flags, ...target.args], envFor(home)))

// ------------------------------------------------------------------------------------------ throughput

const throughput = async (ctx: Context, kind: Target["kind"], runners: number, poll: number) => {
  const { home, target } = await prepare(ctx, kind)
  try {
    const script = writeScript(home, { latency_ms: LATENCY_MS, repeat_last: true, turns: [{ content: "done", criteria_met: [true] }] })
    const ids = Array.from({ length: RUNS }, (_, i) => `tp-${String(i).padStart(4, "0")}`)
    const queueMs = await queue(target, ids, script, 10)
    const spawnedAt = Date.now()
    const daemons = startDaemons(home, target, runners, ["--concurrency", String(CONCURRENCY), "--poll-seconds", String(poll), "--heartbeat-seconds", "3600"])
    const ended = (id: string) => daemons.flatMap((d) => d.ended(id))
    // The server's CPU from the first run on: the daemons' boot (migrations, the cluster's tables) left out.
    const serverData = kind === "postgres" ? ctx.serverData : undefined
    const serverCpuStart = until("a first run", 120_000, daemons, () => (daemons.some((d) => d.running().length > 0) ? serverCpu(serverData) : undefined))
    // Its failure, if any, is the wait below's too: reported there, not as an unhandled rejection.
    serverCpuStart.catch(() => undefined)
    try {
      await until(`${RUNS} runs ended`, 120_000 + RUNS * 2_000, daemons, () => (ids.every((id) => ended(id).length > 0) ? true : undefined))
    } catch (error) {
      const missing = ids.filter((id) => ended(id).length === 0)
      const seen = missing.slice(0, 10).map((id) =>
        `${id}: ${daemons.flatMap((d) => d.lines.filter((l) => l.text.includes(` ${id}`)).map((l) => `${d.name} ${new Date(l.at).toISOString()} ${l.text}`)).join("; ") || "no line"}`)
      throw new Error(`${missing.length} runs never ended:\n${seen.join("\n")}\n${error instanceof Error ? error.message : String(error)}`)
    } finally {
      for (const d of daemons) d.save(path.join(home, `${d.name.replace(" ", "-")}.log`))
    }
    const daemonCpu = daemons.map((d) => d.cpu() - d.bootCpu)
    const serverCpuUsed = serverCpu(serverData) - (await serverCpuStart)
    await stopAll(daemons)
    const rows = await audit(target, ids)

    const starts = ids.map((id) => daemons.flatMap((d) => d.started(id)))
    const firstStart = Math.min(...starts.flat().map((l) => l.at))
    const lastEnd = Math.max(...ids.flatMap(ended).map((l) => l.at))
    const startOf = (i: number) => Math.min(...starts[i]!.map((l) => l.at))
    const completed = ids.filter((id) => ended(id).length === 1 && ended(id)[0]!.text.endsWith(": completed")).length
    const startedOnce = starts.filter((s) => s.length === 1).length
    const auditOk = rows.filter((r) => r.status === "completed" && r.iterations === 1 && r.steps === 1).length
    const windowS = (lastEnd - firstStart) / 1000
    return {
      database: kind,
      runners,
      poll_seconds: poll,
      concurrency_each: CONCURRENCY,
      runs: RUNS,
      queue_add_ms_per_entry: r2(queueMs / RUNS),
      boot_s: r2((firstStart - spawnedAt) / 1000),
      window_s: r2(windowS),
      runs_per_s: r1(RUNS / windowS),
      runs_per_s_from_spawn: r1(RUNS / ((lastEnd - spawnedAt) / 1000)),
      dispatch_to_start_ms: { p50: r1(pct(ids.map((_, i) => startOf(i) - rows[i]!.dispatched_at), 50)), p95: r1(pct(ids.map((_, i) => startOf(i) - rows[i]!.dispatched_at), 95)) },
      queued_to_start_s: { p50: r2(pct(ids.map((_, i) => startOf(i) - rows[i]!.created_at), 50) / 1000), p95: r2(pct(ids.map((_, i) => startOf(i) - rows[i]!.created_at), 95) / 1000) },
      run_ms: { p50: r1(pct(ids.map((id, i) => ended(id)[0]!.at - startOf(i)), 50)), p95: r1(pct(ids.map((id, i) => ended(id)[0]!.at - startOf(i)), 95)) },
      runs_per_runner: daemons.map((d) => d.lines.filter((l) => l.text.startsWith("started queued ")).length),
      /** CPU after boot (each daemon from its "up" line, the server from the first run's start) per run. */
      cpu_ms_per_run: { daemons: r2(daemonCpu.reduce((a, b) => a + b, 0) / RUNS), server: r2(serverCpuUsed / RUNS) },
      checks: { completed, started_once: startedOnce, audit_ok: auditOk, ok: completed === RUNS && startedOnce === RUNS && auditOk === RUNS }
    }
  } finally {
    await target.drop()
  }
}

// -------------------------------------------------------------------------------------------- failover

const failover = async (ctx: Context, kind: Target["kind"], count: number, repeat: number) => {
  const { home, target } = await prepare(ctx, kind)
  try {
    const script = writeScript(home, { latency_ms: FAILOVER_LATENCY_MS, repeat_last: true, turns: [{ content: "working", criteria_met: [false] }] })
    const ids = Array.from({ length: FAILOVER_RUNS }, (_, i) => `fo${repeat}-${i}`)
    const daemons = startDaemons(home, target, count, [
      "--concurrency", String(FAILOVER_RUNS), "--poll-seconds", String(POLL_SECONDS), "--lease-seconds", String(LEASE_SECONDS), "--heartbeat-seconds", "3600"
    ])
    try {
      // Every runner in the cluster, and its shards settled, before there is work: a runner that joins
      // later takes shards, and their runs, from the others.
      await until("every daemon up", 120_000, daemons, () => (daemons.every((d) => d.lines.some((l) => l.text.includes(" up, working "))) ? true : undefined))
      await sleep(3000)
      await queue(target, ids, script, FAILOVER_ITERATIONS)
      const runningOn = (id: string) => daemons.filter((d) => d.running().includes(id))
      await until("every run running on one daemon", 120_000, daemons, () => (ids.every((id) => runningOn(id).length === 1) ? true : undefined))
      // Inside an iteration (each takes a second), not on its boundary.
      await sleep(1500)
      const victim = [...daemons].sort((a, b) => b.running().length - a.running().length)[0]!
      const moved = victim.running()
      if (moved.length === 0) throw new Error(`no daemon is running anything 1.5 s after every run started\n${daemons.map((d) => d.transcript()).join("\n")}`)
      const killedAt = Date.now()
      victim.kill("SIGKILL")
      await victim.exited
      const others = daemons.filter((d) => d !== victim)
      const againAt = (id: string) => others.flatMap((d) => d.started(id)).find((l) => l.at >= killedAt)?.at
      await until("the killed daemon's runs started elsewhere", (LEASE_SECONDS + 120) * 1000, others, () => (moved.every((id) => againAt(id) !== undefined) ? true : undefined))
      const delays = moved.map((id) => (againAt(id)! - killedAt) / 1000)
      const endedAnywhere = (id: string) => others.some((d) => d.ended(id).length > 0) || victim.ended(id).length > 0
      await until("every run ended", (FAILOVER_ITERATIONS * FAILOVER_LATENCY_MS * FAILOVER_RUNS) + 120_000, others, () => (ids.every(endedAnywhere) ? true : undefined))
      await stopAll(others)
      const rows = await audit(target, ids)
      const exact = rows.filter((r) => r.iterations === FAILOVER_ITERATIONS && r.steps === FAILOVER_ITERATIONS && r.status === "halted").length
      return {
        database: kind,
        daemons: count,
        repeat,
        runs_on_victim: moved.length,
        /** Starts per daemon, the killed one starred: `daemon 2*:3` started three runs before it was killed. */
        starts: daemons.map((d) => (d === victim ? `${d.name}*` : d.name) + `:${d.lines.filter((l) => l.text.startsWith("started queued ")).length}`).join(" "),
        handed_over: daemons.reduce((n, d) => n + d.lines.filter((l) => l.text.startsWith("handed over queued ")).length, 0),
        delays_s: delays.map(r2),
        exact_iterations: exact,
        rows: rows.map(({ id, status, iterations, steps }) => ({ id, status, iterations, steps }))
      }
    } finally {
      killEverything()
      await Promise.all(daemons.map((d) => d.exited))
      for (const d of daemons) d.save(path.join(home, `${d.name.replace(" ", "-")}.log`))
    }
  } finally {
    await target.drop()
  }
}

// -------------------------------------------------------------------------------------------- overhead

/** The server's counts for the target's database (NaN on SQLite): transactions committed, rows written. */
const pgStats = (target: Target) =>
  target.kind === "sqlite"
    ? Promise.resolve({ commits: Number.NaN, rows: Number.NaN })
    : Effect.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ commits: string; rows: string }>`SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows
        FROM pg_stat_database WHERE datname = current_database()`
      return { commits: Number(row!.commits), rows: Number(row!.rows) }
    }).pipe(Effect.provide(target.layer)))

const overhead = async (ctx: Context, kind: "sqlite" | "postgres" | "postgres-async") => {
  const { home, target } = await prepare(ctx, kind === "sqlite" ? "sqlite" : "postgres", kind === "postgres-async" ? { synchronous_commit: "off" } : {})
  try {
    const script = writeScript(home, mockScript)
    const ats: Array<number> = []
    let result: { status?: string; iterations?: number } | undefined
    let tail = ""
    const serverStart = kind === "sqlite" ? Number.NaN : serverCpu(ctx.serverData)
    const statsStart = await pgStats(target)
    const run = await timed(process.execPath, [
      bin, "run", objective, ...criteria.flatMap((c) => ["--criterion", c]), "--mock-script", script, ...target.args, "--format", "jsonl",
      "--max-iterations", String(ITERATIONS), "--max-seconds", "0", "--max-tokens", "0", "--max-dollars", "0"
    ], {
      cwd: home,
      env: envFor(home),
      onStdout: (chunk) => {
        const parts = (tail + chunk.toString("utf8")).split("\n")
        tail = parts.pop() ?? ""
        for (const line of parts) {
          const event = JSON.parse(line) as { kind: string; at: string; status?: string; iterations?: number }
          if (event.kind === "iteration") ats.push(Date.parse(event.at))
          if (event.kind === "result") result = event
        }
      }
    })
    const serverUsed = kind === "sqlite" ? Number.NaN : serverCpu(ctx.serverData) - serverStart
    // A backend reports its counts as it exits; the CLI's have just gone.
    await sleep(500)
    const statsEnd = await pgStats(target)
    if (run.exitCode !== 4 || ats.length !== ITERATIONS || result?.status !== "halted" || result.iterations !== ITERATIONS) {
      throw new Error(`autopilot run on ${kind} exited ${run.exitCode} after ${ats.length} iterations (result ${JSON.stringify(result)}): ${run.stderr}`)
    }
    const half = Math.floor(ITERATIONS / 2)
    return {
      kind,
      ms_per_iteration: (ats.at(-1)! - ats[half]!) / (ITERATIONS - 1 - half),
      ms_per_iteration_all: (ats.at(-1)! - ats[0]!) / (ITERATIONS - 1),
      wall_ms: run.wall_ms,
      cli_cpu_ms_per_iteration: run.cpu_ms / ITERATIONS,
      server_cpu_ms_per_iteration: serverUsed / ITERATIONS,
      transactions_per_iteration: (statsEnd.commits - statsStart.commits) / ITERATIONS,
      rows_written_per_iteration: (statsEnd.rows - statsStart.rows) / ITERATIONS
    }
  } finally {
    await target.drop()
  }
}

// ------------------------------------------------------------------------------------------------ main

/** The Postgres server started here, if any: stopped by the cleanup, whatever ends the run. */
let server: Postgres.Server | undefined

const main = async ({ machine: env, tmp: dir }: Bench) => {
  if (!fs.existsSync(path.join(root, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` first")
  const external = process.env["AUTOPILOT_BENCH_DATABASE_URL"]
  try {
    const began = Date.now()
    if (external === undefined || external === "") server = await Postgres.start(SERVER_SETTINGS)
    const serverUrl = server?.url ?? external!
    const settings = await Effect.runPromise(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<Record<string, string>>`SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
        current_setting('synchronous_commit') AS synchronous_commit, current_setting('full_page_writes') AS full_page_writes,
        current_setting('shared_buffers') AS shared_buffers`
      return row!
    }).pipe(Effect.provide(Layer.orDie(Database.layerPg(serverUrl)))))
    log(`postgres ${settings["version"]} ${server !== undefined ? `started here in ${Date.now() - began} ms` : "from AUTOPILOT_BENCH_DATABASE_URL"}: ` +
      `fsync ${settings["fsync"]}, synchronous_commit ${settings["synchronous_commit"]}, full_page_writes ${settings["full_page_writes"]}, shared_buffers ${settings["shared_buffers"]}`)
    const ctx: Context = { dir, serverUrl, serverData: server?.data }

    const results: Record<string, unknown> = {}

    if (ONLY.includes("throughput")) {
      const rows: Array<Awaited<ReturnType<typeof throughput>>> = []
      for (const poll of POLLS) for (const [kind, runners] of CASES) {
        const row = await throughput(ctx, kind, runners, poll)
        log(`throughput ${kind} × ${runners}, poll ${poll} s: ${row.runs_per_s} runs/s (${row.window_s} s window), boot ${row.boot_s} s, checks ${JSON.stringify(row.checks)}`)
        rows.push(row)
      }
      results["throughput"] = rows
    }

    if (ONLY.includes("failover")) {
      const samples: Array<Awaited<ReturnType<typeof failover>>> = []
      for (let repeat = 1; repeat <= FAILOVER_REPEATS; repeat++) {
        for (const [kind, count] of [["postgres", 3], ["sqlite", 2]] as const) {
          const sample = await failover(ctx, kind, count, repeat)
          log(`fail-over ${kind} × ${count} #${repeat}: ${sample.runs_on_victim} runs moved after ${sample.delays_s.join(", ")} s; ${sample.exact_iterations}/${FAILOVER_RUNS} runs exact (starts ${sample.starts}, ${sample.handed_over} handed over)`)
          samples.push(sample)
        }
      }
      results["failover"] = (["postgres", "sqlite"] as const).map((kind) => {
        const mine = samples.filter((s) => s.database === kind)
        const delays = mine.flatMap((s) => s.delays_s)
        const limit = LEASE_SECONDS + TARGET_FAILOVER_SLACK_S
        return {
          database: kind,
          daemons: mine[0]?.daemons,
          lease_s: LEASE_SECONDS,
          runs_moved: delays.length,
          median_s: r2(median(delays)),
          max_s: r2(Math.max(...delays)),
          target_s: limit,
          met: delays.every((d) => d < limit),
          exact_runs: `${mine.reduce((n, s) => n + s.exact_iterations, 0)}/${mine.length * FAILOVER_RUNS}`,
          samples: mine
        }
      })
    }

    if (ONLY.includes("overhead")) {
      const kinds = ["sqlite", "postgres", "postgres-async"] as const
      const measured: Record<string, Array<Awaited<ReturnType<typeof overhead>>>> = { sqlite: [], postgres: [], "postgres-async": [] }
      for (let repeat = 0; repeat < OVERHEAD_REPEATS; repeat++) {
        for (const kind of repeat % 2 === 0 ? kinds : [...kinds].reverse()) {
          const m = await overhead(ctx, kind)
          log(`overhead ${kind} #${repeat + 1}: ${r2(m.ms_per_iteration)} ms/iteration (second half; ${r2(m.ms_per_iteration_all)} all), CLI CPU ${r2(m.cli_cpu_ms_per_iteration)} ms, server CPU ${r2(m.server_cpu_ms_per_iteration)} ms`)
          measured[kind]!.push(m)
        }
      }
      const base = median(measured["sqlite"]!.map((m) => m.ms_per_iteration))
      const baseAll = median(measured["sqlite"]!.map((m) => m.ms_per_iteration_all))
      results["overhead"] = kinds.map((kind) => {
        const ms = measured[kind]!
        const perIteration = median(ms.map((m) => m.ms_per_iteration))
        const all = median(ms.map((m) => m.ms_per_iteration_all))
        return {
          kind,
          iterations: ITERATIONS,
          /** The second half of the run: start-up and JIT warm-up left out. */
          ms_per_iteration: r2(perIteration),
          over_sqlite: r2(perIteration / base),
          /** Every iteration, first to last. */
          ms_per_iteration_all: r2(all),
          over_sqlite_all: r2(all / baseAll),
          cli_cpu_ms_per_iteration: r2(median(ms.map((m) => m.cli_cpu_ms_per_iteration))),
          server_cpu_ms_per_iteration: r2(median(ms.map((m) => m.server_cpu_ms_per_iteration))),
          transactions_per_iteration: r2(median(ms.map((m) => m.transactions_per_iteration))),
          rows_written_per_iteration: r2(median(ms.map((m) => m.rows_written_per_iteration))),
          wall_ms: median(ms.map((m) => m.wall_ms)),
          repeats: ms.map((m) => r2(m.ms_per_iteration))
        }
      })
    }

    const summary = {
      machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
      command: ["node --import tsx scripts/bench-daemon.ts", ...process.argv.slice(2)].join(" "),
      postgres: { ...settings, source: server !== undefined ? "started here (scripts/lib/postgres.ts), server defaults + max_connections=300" : "AUTOPILOT_BENCH_DATABASE_URL" },
      options: {
        runs: RUNS, concurrency: CONCURRENCY, latency_ms: LATENCY_MS, poll_seconds: POLLS, lease_seconds: LEASE_SECONDS,
        failover_runs: FAILOVER_RUNS, failover_iterations: FAILOVER_ITERATIONS, failover_latency_ms: FAILOVER_LATENCY_MS, failover_repeats: FAILOVER_REPEATS,
        iterations: ITERATIONS, overhead_repeats: OVERHEAD_REPEATS
      },
      targets: { failover: `every killed runner's run started elsewhere < lease + ${TARGET_FAILOVER_SLACK_S} s` },
      results
    }
    printTable(summary)
    const out = path.join(root, "bench-out")
    fs.mkdirSync(out, { recursive: true })
    fs.writeFileSync(path.join(out, "bench-daemon.json"), `${JSON.stringify(summary, null, 2)}\n`)
    log("")
    log("JSON (also in bench-out/bench-daemon.json):")
    log(JSON.stringify(summary))
  } finally {
    server?.stop()
    server = undefined
  }
}

const printTable = (summary: { machine: { loadavg_at_start: ReadonlyArray<number>; loadavg_at_end: ReadonlyArray<number> }; results: Record<string, any> }) => {
  const { throughput: tp, failover: fo, overhead: oh } = summary.results
  log("")
  if (tp !== undefined) {
    log(`1. Throughput: ${RUNS} queued runs, mock ${LATENCY_MS} ms, --concurrency ${CONCURRENCY} per runner, at --poll-seconds ${POLLS.join(" and ")}`)
    log("database  runners  poll s | runs/s | window s | from spawn runs/s | dispatch→start p50/p95 ms | queued→start p50/p95 s | run p50/p95 ms | runs per runner | CPU ms/run daemons+server | checks")
    for (const r of tp) {
      log(`${r.database.padEnd(9)} ${String(r.runners).padStart(7)} ${String(r.poll_seconds).padStart(7)} | ${String(r.runs_per_s).padStart(6)} | ${String(r.window_s).padStart(8)} | ${String(r.runs_per_s_from_spawn).padStart(17)} | ` +
        `${`${r.dispatch_to_start_ms.p50} / ${r.dispatch_to_start_ms.p95}`.padStart(25)} | ${`${r.queued_to_start_s.p50} / ${r.queued_to_start_s.p95}`.padStart(22)} | ` +
        `${`${r.run_ms.p50} / ${r.run_ms.p95}`.padStart(14)} | ${r.runs_per_runner.join("/").padStart(15)} | ${`${show(r.cpu_ms_per_run.daemons)} + ${show(r.cpu_ms_per_run.server)}`.padStart(25)} | ${r.checks.ok ? "ok" : JSON.stringify(r.checks)}`)
    }
    log("")
  }
  if (fo !== undefined) {
    log(`2. Kill -9 → the runs running again elsewhere: --lease-seconds ${LEASE_SECONDS}, ${FAILOVER_RUNS} runs × ${FAILOVER_ITERATIONS} iterations of ${FAILOVER_LATENCY_MS} ms, ${FAILOVER_REPEATS} kills each`)
    log("database  daemons | runs moved | median s | max s | target | met | runs with exact iterations and steps")
    for (const r of fo) {
      log(`${r.database.padEnd(9)} ${String(r.daemons).padStart(7)} | ${String(r.runs_moved).padStart(10)} | ${String(r.median_s).padStart(8)} | ${String(r.max_s).padStart(5)} | < ${r.target_s} s | ${r.met ? "MET" : "NOT MET"} | ${r.exact_runs}`)
    }
    log("")
  }
  if (oh !== undefined) {
    log(`3. Per-iteration overhead: autopilot run, ${ITERATIONS} iterations, mock without latency, every iteration checkpointed (median of ${OVERHEAD_REPEATS})`)
    log("   ms/iteration over the second half (after warm-up), and over all; CPU per iteration: the whole CLI process (start-up included) and the server")
    log("database                              | ms/it 2nd half | × SQLite | ms/it all | × SQLite | CLI CPU ms/it | server CPU ms/it | commits/it | rows/it | 2nd-half runs")
    for (const r of oh) {
      const name = r.kind === "postgres-async" ? "postgres, synchronous_commit = off" : r.kind === "postgres" ? "postgres, synchronous_commit = on" : "sqlite (WAL, synchronous = NORMAL)"
      log(`${name.padEnd(37)} | ${String(r.ms_per_iteration).padStart(14)} | ${String(r.over_sqlite).padStart(8)} | ${String(r.ms_per_iteration_all).padStart(9)} | ${String(r.over_sqlite_all).padStart(8)} | ${String(r.cli_cpu_ms_per_iteration).padStart(13)} | ${show(r.server_cpu_ms_per_iteration).padStart(16)} | ${show(r.transactions_per_iteration).padStart(10)} | ${show(r.rows_written_per_iteration).padStart(7)} | ${r.repeats.join(", ")}`)
    }
    log("")
  }
  log(`load average ${summary.machine.loadavg_at_start.join(" ")} at start, ${summary.machine.loadavg_at_end.join(" ")} at end`)
}

runBench({
  name: "bench-daemon",
  title: "autopilot daemon bench",
  keep: KEEP,
  cleanup: () => {
    killEverything()
    server?.stop()
    server = undefined
  },
  main
})
