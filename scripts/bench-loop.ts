/**
 * The mission loop on the mock model, against a real SQLite file, compared with the raw cost of the
 * writes it makes. Run with `npm run bench` (builds first; the start-up figure needs dist/).
 *
 *   node --import tsx scripts/bench-loop.ts [--runs=1000,10000] [--warmup=2000] [--floor-commits=10000]
 *                                           [--startup-runs=10] [--no-diagnostics] [--keep]
 *
 * Figures:
 * - per-iteration time (gap between consecutive `iteration` events) in the first and last quarter of each
 *   run; target: last/first <= 1.5;
 * - database bytes per iteration after `PRAGMA wal_checkpoint(TRUNCATE)`; target: < 3 KB;
 * - the floor: one better-sqlite3 transaction making the same writes as an iteration (step row, the same
 *   number of event rows, checkpoint upsert; rows copied from the run's own database) on the migrated
 *   schema with the same pragmas; target: runtime per iteration <= 3x floor;
 * - `autopilot --help` start-up time, median of N runs.
 * Mission.run gets no halt source here; the CLI as users run it, signals and output included, is
 * measured by scripts/bench-cli.ts.
 * Diagnostics (skip with --no-diagnostics) split the gap: store.commit alone, the loop with a store that
 * writes nothing, and the micro-costs of what an iteration does.
 *
 * A table goes to stdout, then the figures as JSON, which are also written to bench-out/bench-loop.json.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { CheckpointJson } from "../src/domain/Checkpoint.js"
import { type AutopilotEvent, AutopilotEventJson } from "../src/domain/Event.js"
import { Goal } from "../src/domain/Goal.js"
import { Step } from "../src/domain/Step.js"
import { MockLlm, MockScript } from "../src/llm/MockLlm.js"
import * as Mission from "../src/runtime/Mission.js"
import { EventStore } from "../src/store/EventStore.js"
import { GroupCommit } from "../src/store/GroupCommit.js"
import { RunStore } from "../src/store/RunStore.js"
import { StepStore } from "../src/store/StepStore.js"
import * as Storage from "../src/store/Storage.js"
import * as Database from "../src/store/Database.js"
import { Toolkit } from "../src/tools/Tool.js"
import { measureStartup } from "./bench-startup.js"
import { answer, checkpointedBytes, criteria, machine, mockScript, objective, option, policyFor, r1, r2, root, Sqlite } from "./bench-common.js"

// ---------------------------------------------------------------------------------------------- options

const RUNS = option("runs", "1000,10000").split(",").map(Number)
const WARMUP = Number(option("warmup", "2000"))
const FLOOR_COMMITS = Number(option("floor-commits", "10000"))
const STARTUP_RUNS = Number(option("startup-runs", "10"))
const DIAGNOSTICS = !process.argv.includes("--no-diagnostics")
const KEEP = process.argv.includes("--keep")

const TARGET_RATIO = 1.5
const TARGET_BYTES = 3 * 1024
const TARGET_FLOOR_MULTIPLE = 3

// -------------------------------------------------------------------------------------------- statistics

interface Stats {
  readonly n: number
  readonly mean_us: number
  readonly p50_us: number
  readonly p95_us: number
  readonly max_us: number
}

const stats = (us: ArrayLike<number>): Stats => {
  const sorted = Float64Array.from(us).sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  let sum = 0
  for (const x of sorted) sum += x
  return { n: sorted.length, mean_us: r1(sum / sorted.length), p50_us: r1(at(0.5)), p95_us: r1(at(0.95)), max_us: r1(at(1)) }
}

/** The whole series, its first and last quarter, and last / first. */
const quarters = (us: Float64Array) => {
  const q = Math.floor(us.length / 4)
  const first = stats(us.subarray(0, q))
  const last = stats(us.subarray(us.length - q))
  return {
    all: stats(us),
    first_quarter: first,
    last_quarter: last,
    ratio_mean: r2(last.mean_us / first.mean_us),
    ratio_p50: r2(last.p50_us / first.p50_us)
  }
}

// ------------------------------------------------------------------------------------------- the mission

const script = Schema.decodeUnknownSync(MockScript)(mockScript)

const goal = new Goal({ objective, success_criteria: criteria })

const sqlStore = (file: string) => Storage.layerSqlite(file)

/**
 * Stands in for the database to measure the loop alone: the real stores over an in-memory database, with
 * the per-iteration calls (the commit's writes and its transaction, pendingStop) answered without
 * touching SQLite.
 */
const nullStore = Layer.mergeAll(
  Layer.effect(RunStore, Effect.map(RunStore, (real) =>
    RunStore.of({ ...real, save: () => Effect.void, pendingStop: () => Effect.succeed(Option.none()) }))),
  Layer.effect(StepStore, Effect.map(StepStore, (real) => StepStore.of({ ...real, append: () => Effect.void }))),
  Layer.effect(EventStore, Effect.map(EventStore, (real) => EventStore.of({ ...real, append: () => Effect.void }))),
  Layer.succeed(Storage.Transaction, (effect) => effect),
  Layer.succeed(GroupCommit, GroupCommit.of({ commit: () => Effect.void, create: () => Effect.succeed(true), join: Effect.void }))
).pipe(Layer.provideMerge(sqlStore(":memory:")))

/** Runs a mission capped at `iterations`; returns the gap before each `iteration` event, in µs. */
const mission = (runId: string, iterations: number) =>
  Effect.gen(function*() {
    // stamps[0] is `run_started`; stamps[k] is the `iteration` event of iteration k.
    const stamps: Array<number> = []
    const cpuStart = process.cpuUsage()
    const started = performance.now()
    const result = yield* Mission.run({
      runId,
      goal,
      policy: policyFor(iterations),
      onEvent: (event) =>
        Effect.sync(() => {
          if (event.kind === "run_started" || event.kind === "iteration") stamps.push(performance.now())
        })
    })
    const wallMs = performance.now() - started
    const cpu = process.cpuUsage(cpuStart)
    if (result.iterations !== stamps.length - 1) {
      return yield* Effect.dieMessage(`${stamps.length - 1} iteration events for ${result.iterations} iterations`)
    }
    if (result.iterations !== iterations) {
      process.stdout.write(`NOTE: ${runId} was capped at ${iterations} iterations and ran ${result.iterations} (${result.halt_reason})\n`)
    }
    const gaps = new Float64Array(result.iterations)
    for (let k = 0; k < gaps.length; k++) gaps[k] = (stamps[k + 1]! - stamps[k]!) * 1000
    return { result, wallMs, gaps, cpuPerIteration: r1((cpu.user + cpu.system) / result.iterations) }
  })

/** The loop against a real database file, and how big the file is afterwards. */
const measuredRun = (dir: string, iterations: number, index: number) =>
  Effect.gen(function*() {
    const runId = `bench-${index}-${iterations}`
    const file = path.join(dir, `${runId}.db`)
    const { cpuPerIteration, gaps, result, wallMs } = yield* mission(runId, iterations).pipe(
      Effect.provide(Layer.mergeAll(sqlStore(file), MockLlm.layer(script), Toolkit.layer([])))
    )
    const bytes = checkpointedBytes(file)
    return {
      file,
      runId,
      iterations,
      iterations_run: result.iterations,
      status: result.status,
      halt_reason: result.halt_reason,
      wall_s: r2(wallMs / 1000),
      cpu_us_per_iteration: cpuPerIteration,
      per_iteration: quarters(gaps),
      bytes: { after_wal_checkpoint_truncate: bytes, per_iteration: Math.round(bytes / result.iterations) }
    }
  })

// -------------------------------------------------------------------------------------------- the floor

interface Payload {
  readonly runId: string
  readonly step: string
  readonly event: string
  readonly eventKind: string
  readonly eventsPerIteration: number
  readonly checkpoint: string
  readonly updatedAt: string
}

/** The rows an iteration of that run wrote, to replay at the same sizes. */
const payloadOf = (file: string, runId: string): Payload => {
  const db = new Sqlite(file)
  const step = db.prepare("SELECT body FROM steps WHERE run_id = ? ORDER BY iteration DESC LIMIT 1").get(runId) as { body: string }
  const event = db.prepare("SELECT kind, body FROM events WHERE run_id = ? AND kind = 'iteration' ORDER BY id DESC LIMIT 1").get(runId) as {
    kind: string
    body: string
  }
  const checkpoint = db.prepare("SELECT state, updated_at FROM checkpoints WHERE run_id = ?").get(runId) as { state: string; updated_at: string }
  // Events an iteration writes: all but the run's own (started, result, heartbeats), per step.
  const { perIteration } = db.prepare(`SELECT
      (SELECT COUNT(*) FROM events WHERE run_id = ? AND kind NOT IN ('run_started', 'result', 'heartbeat')) * 1.0 /
      (SELECT COUNT(*) FROM steps WHERE run_id = ?) AS perIteration`).get(runId, runId) as { perIteration: number }
  db.close()
  return {
    runId,
    step: step.body,
    event: event.body,
    eventKind: event.kind,
    eventsPerIteration: Math.max(1, Math.round(perIteration)),
    checkpoint: checkpoint.state,
    updatedAt: checkpoint.updated_at
  }
}

/**
 * `commits` transactions on a database migrated by the stores (src/store/Storage.ts), each doing an iteration's writes
 * through prepared better-sqlite3 statements, with the pragmas Database.ts sets.
 */
const floor = (file: string, payload: Payload, commits: number, warmup: number) =>
  Effect.gen(function*() {
    yield* Effect.scoped(Layer.build(Storage.layerSqlite(file)))
    const db = new Sqlite(file)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = NORMAL")
    db.pragma("busy_timeout = 5000")
    const insertStep = db.prepare("INSERT INTO steps (run_id, iteration, body) VALUES (?, ?, ?)")
    const insertEvent = db.prepare("INSERT INTO events (run_id, seq, kind, body) VALUES (?, ?, ?, ?)")
    const upsertCheckpoint = db.prepare(`INSERT INTO checkpoints (run_id, state, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`)
    const perIteration = payload.eventsPerIteration
    const commit = db.transaction((iteration: number) => {
      insertStep.run(payload.runId, iteration, payload.step)
      for (let e = 0; e < perIteration; e++) insertEvent.run(payload.runId, iteration * perIteration + e, payload.eventKind, payload.event)
      upsertCheckpoint.run(payload.runId, payload.checkpoint, payload.updatedAt)
    })
    for (let i = 1; i <= warmup; i++) commit(i)
    const us = new Float64Array(commits)
    const cpuStart = process.cpuUsage()
    for (let i = 0; i < commits; i++) {
      const start = process.hrtime.bigint()
      commit(warmup + 1 + i)
      us[i] = Number(process.hrtime.bigint() - start) / 1000
    }
    const cpu = process.cpuUsage(cpuStart)
    db.close()
    const bytes = checkpointedBytes(file)
    return {
      commits,
      warmup_commits: warmup,
      cpu_us_per_commit: r1((cpu.user + cpu.system) / commits),
      per_commit: quarters(us),
      bytes: { after_wal_checkpoint_truncate: bytes, per_commit: Math.round(bytes / (commits + warmup)) }
    }
  })

// ------------------------------------------------------------------------------------------ diagnostics

/** An iteration's commit alone (group commit, Schema encoding, @effect/sql, SQLite), on decoded copies of the run's rows. */
const storeCommit = (file: string, payload: Payload, commits: number, warmup: number) =>
  Effect.gen(function*() {
    const store = yield* GroupCommit
    const sample = Schema.decodeUnknownSync(Schema.parseJson(Step))(payload.step)
    const checkpoint = Schema.decodeUnknownSync(CheckpointJson)(payload.checkpoint)
    const event = Schema.decodeUnknownSync(AutopilotEventJson)(payload.event)
    const total = warmup + commits
    const steps = Array.from({ length: total }, (_, i) => new Step({ ...sample, iteration: i + 1 }, true))
    const events = Array.from({ length: total }, (_, i): AutopilotEvent => ({ ...event, seq: i + 1 }))
    const us = new Float64Array(commits)
    let cpuStart = process.cpuUsage()
    for (let i = 0; i < total; i++) {
      if (i === warmup) cpuStart = process.cpuUsage()
      const start = process.hrtime.bigint()
      yield* store.commit({ steps: [{ runId: checkpoint.run_id, step: steps[i]! }], events: [events[i]!], checkpoint })
      if (i >= warmup) us[i - warmup] = Number(process.hrtime.bigint() - start) / 1000
    }
    const cpu = process.cpuUsage(cpuStart)
    return { commits, cpu_us_per_commit: r1((cpu.user + cpu.system) / commits), per_commit: quarters(us) }
  }).pipe(Effect.provide(sqlStore(file)))

/** Mean µs of `f` over `n` calls after `n / 10` untimed ones. */
const timeSync = (n: number, f: () => unknown) => {
  for (let i = 0; i < n / 10; i++) f()
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) f()
  return r2(Number(process.hrtime.bigint() - start) / 1000 / n)
}

/** Mean µs of `effect` run `n` times in sequence inside one fiber, after `n / 10` untimed runs. */
const timeEffect = <E, R>(n: number, effect: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < n / 10; i++) yield* effect
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) yield* effect
    return r2(Number(process.hrtime.bigint() - start) / 1000 / n)
  })

/** Costs of single operations an iteration makes (its commit is 3 statements in one transaction). */
const microCosts = (file: string, payload: Payload) =>
  Effect.gen(function*() {
    const n = 10_000
    const step = Schema.decodeUnknownSync(Schema.parseJson(Step))(payload.step)
    const checkpoint = Schema.decodeUnknownSync(CheckpointJson)(payload.checkpoint)
    const event = Schema.decodeUnknownSync(AutopilotEventJson)(payload.event)
    const encodeStep = Schema.encodeSync(Schema.parseJson(Step))
    const encodeCheckpoint = Schema.encodeSync(CheckpointJson)
    const encodeEvent = Schema.encodeSync(AutopilotEventJson)
    const sql = yield* SqlClient.SqlClient
    const retrySchedule = Schedule.exponential("250 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
    return {
      "encode Step to JSON (Schema)": timeSync(n, () => encodeStep(step)),
      "encode Checkpoint to JSON (Schema)": timeSync(n, () => encodeCheckpoint(checkpoint)),
      "encode iteration event to JSON (Schema)": timeSync(n, () => encodeEvent(event)),
      "JSON.stringify(step)": timeSync(n, () => JSON.stringify(step)),
      "sql`SELECT 1` via @effect/sql": yield* timeEffect(n, sql`SELECT 1`),
      "sql.withTransaction(Effect.void) (BEGIN+COMMIT)": yield* timeEffect(n, sql.withTransaction(Effect.void)),
      "Effect.withSpan(Effect.void) (@effect/sql opens one per statement)": yield* timeEffect(n, Effect.withSpan(Effect.void, "bench")),
      "Effect.retry(succeed, schedule) (callModel's retry, 2 per iteration)": yield* timeEffect(
        n,
        Effect.retry(Effect.succeed(1), { schedule: retrySchedule, while: () => true })
      )
    }
  }).pipe(Effect.provide(Database.layerSqlite(file)))

// ------------------------------------------------------------------------------------------------- main

const verdict = (ok: boolean) => (ok ? "MET" : "NOT MET")
const pad = (s: string | number, n: number) => String(s).padStart(n)

const main = Effect.gen(function*() {
  const env = machine()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-"))
  const log = (line: string) => process.stdout.write(`${line}\n`)
  log(`autopilot bench: ${env.date}, node ${env.node}, SQLite ${env.sqlite}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}`)
  log(`temp dir ${dir}`)
  const withMock = Layer.merge(MockLlm.layer(script), Toolkit.layer([]))

  if (WARMUP > 0) {
    const started = performance.now()
    yield* mission("warmup", WARMUP).pipe(Effect.provide(Layer.merge(sqlStore(path.join(dir, "warmup.db")), withMock)))
    log(`warm-up: ${WARMUP} iterations in ${r2((performance.now() - started) / 1000)} s (JIT; not reported)`)
  }

  const runs = []
  for (const [index, iterations] of RUNS.entries()) {
    const run = yield* measuredRun(dir, iterations, index + 1)
    runs.push(run)
    log(`run ${iterations}: ${run.wall_s} s, ${run.status} (${run.halt_reason})`)
  }
  const longest = runs.reduce((a, b) => (b.iterations > a.iterations ? b : a))
  const payload = payloadOf(longest.file, longest.runId)

  const raw = yield* floor(path.join(dir, "floor.db"), payload, FLOOR_COMMITS, 500)
  log(`floor: ${FLOOR_COMMITS} commits, ${raw.per_commit.all.mean_us} µs mean`)

  const diagnostics = DIAGNOSTICS
    ? yield* Effect.gen(function*() {
      const commit = yield* storeCommit(path.join(dir, "store-commit.db"), payload, FLOOR_COMMITS, 500)
      const iterations = Math.max(...RUNS)
      const noStore = yield* mission("no-store", iterations).pipe(Effect.provide(Layer.merge(nullStore, withMock)))
      return {
        store_commit_alone: commit,
        loop_without_storage: {
          iterations,
          wall_s: r2(noStore.wallMs / 1000),
          cpu_us_per_iteration: noStore.cpuPerIteration,
          per_iteration: quarters(noStore.gaps)
        },
        micro_costs_us: yield* microCosts(path.join(dir, "micro.db"), payload)
      }
    })
    : undefined

  const startup = STARTUP_RUNS > 0 ? measureStartup(STARTUP_RUNS) : undefined

  // ------------------------------------------------------------------------------------------ report
  const floorMean = raw.per_commit.all.mean_us
  const summary = {
    machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
    command: ["node --import tsx scripts/bench-loop.ts", ...process.argv.slice(2)].join(" "),
    options: { runs: RUNS, warmup_iterations: WARMUP, floor_commits: FLOOR_COMMITS, startup_runs: STARTUP_RUNS },
    workload: {
      answer_chars: answer.length,
      model: script.model,
      usage_per_call: script.turns?.[0]?.usage,
      criteria: goal.success_criteria.length,
      policy: "max_iterations = run length, max_seconds/max_tokens/max_dollars = 0",
      toolkit: "empty",
      db: "real file in a temp dir, WAL, synchronous=NORMAL (src/store/Database.ts)"
    },
    runs: runs.map(({ file: _file, runId: _runId, ...run }) => run),
    floor: { ...raw, payload_bytes: { step: payload.step.length, event: payload.event.length, events_per_commit: payload.eventsPerIteration, checkpoint: payload.checkpoint.length } },
    startup_help: startup,
    targets: runs.map((run) => ({
      iterations: run.iterations,
      last_over_first_quarter: { target: `<= ${TARGET_RATIO}`, mean: run.per_iteration.ratio_mean, p50: run.per_iteration.ratio_p50, met: run.per_iteration.ratio_mean <= TARGET_RATIO && run.per_iteration.ratio_p50 <= TARGET_RATIO },
      bytes_per_iteration: { target: `< ${TARGET_BYTES}`, value: run.bytes.per_iteration, met: run.bytes.per_iteration < TARGET_BYTES },
      runtime_over_floor: { target: `<= ${TARGET_FLOOR_MULTIPLE}`, mean: r2(run.per_iteration.all.mean_us / floorMean), p50: r2(run.per_iteration.all.p50_us / raw.per_commit.all.p50_us), cpu: r2(run.cpu_us_per_iteration / raw.cpu_us_per_commit), met: run.per_iteration.all.mean_us / floorMean <= TARGET_FLOOR_MULTIPLE }
    })),
    diagnostics
  }

  log("")
  log("per-iteration time, µs (gap between consecutive `iteration` events)")
  log(`${"run".padStart(6)} ${"wall s".padStart(7)} | ${"Q1 mean".padStart(8)} ${"Q1 p50".padStart(7)} | ${"Q4 mean".padStart(8)} ${"Q4 p50".padStart(7)} | ${"Q4/Q1 mean".padStart(10)} ${"p50".padStart(5)} | ${"all mean".padStart(8)} ${"p50".padStart(6)} | ${"cpu".padStart(6)} | ${"x floor".padStart(7)} | ${"B/iter".padStart(6)}`)
  for (const run of runs) {
    const p = run.per_iteration
    log(`${pad(run.iterations, 6)} ${pad(run.wall_s, 7)} | ${pad(p.first_quarter.mean_us, 8)} ${pad(p.first_quarter.p50_us, 7)} | ${pad(p.last_quarter.mean_us, 8)} ${pad(p.last_quarter.p50_us, 7)} | ${pad(p.ratio_mean, 10)} ${pad(p.ratio_p50, 5)} | ${pad(p.all.mean_us, 8)} ${pad(p.all.p50_us, 6)} | ${pad(run.cpu_us_per_iteration, 6)} | ${pad(r1(p.all.mean_us / floorMean), 7)} | ${pad(run.bytes.per_iteration, 6)}`)
  }
  log(`floor (raw better-sqlite3, same writes, ${FLOOR_COMMITS} commits): mean ${floorMean} µs, p50 ${raw.per_commit.all.p50_us} µs, p95 ${raw.per_commit.all.p95_us} µs, cpu ${raw.cpu_us_per_commit} µs; ${raw.bytes.per_commit} B/commit`)
  if (startup !== undefined) log(`autopilot --help: median ${startup.median_ms} ms over ${startup.runs} runs (min ${startup.min_ms}, max ${startup.max_ms})`)
  if (diagnostics !== undefined) {
    const { loop_without_storage: loop, store_commit_alone: commit } = diagnostics
    log(`diagnostics (mean / p50 / cpu µs):`)
    log(`  store.commit alone        ${commit.per_commit.all.mean_us} / ${commit.per_commit.all.p50_us} / ${commit.cpu_us_per_commit}`)
    log(`  loop with a no-op store   ${loop.per_iteration.all.mean_us} / ${loop.per_iteration.all.p50_us} / ${loop.cpu_us_per_iteration}`)
    log(`  micro-costs, mean µs per call:`)
    for (const [name, us] of Object.entries(diagnostics.micro_costs_us)) log(`  ${pad(us, 9)}  ${name}`)
  }
  log("")
  for (const t of summary.targets) {
    log(`targets @${t.iterations}: Q4/Q1 ${t.last_over_first_quarter.mean}/${t.last_over_first_quarter.p50} ${verdict(t.last_over_first_quarter.met)}; ` +
      `${t.bytes_per_iteration.value} B/iter ${verdict(t.bytes_per_iteration.met)}; ` +
      `${t.runtime_over_floor.mean}x floor (p50 ${t.runtime_over_floor.p50}x, cpu ${t.runtime_over_floor.cpu}x) ${verdict(t.runtime_over_floor.met)}`)
  }

  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-loop.json"), `${JSON.stringify(summary, null, 2)}\n`)
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })
  log("")
  log("JSON (also in bench-out/bench-loop.json):")
  log(JSON.stringify(summary))
})

Effect.runPromise(main).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
