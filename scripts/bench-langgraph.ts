/**
 * autopilot and LangGraph.js side by side, one run: N steps, each handed the whole history so far (which
 * grows by one 1 KB answer per step), a durable checkpoint after every step on a real SQLite file. Time
 * and database size for both, and their ratios. Run with `npm run bench:langgraph`.
 *
 *   node --import tsx scripts/bench-langgraph.ts [--iterations=1000] [--repeats=3] [--sync=FULL,NORMAL]
 *                                                [--reinstall] [--keep]
 *
 * LangGraph is not a dependency of this project: on first use it is installed into a folder under the
 * system's temp directory (npm install --prefix, exact versions below; better-sqlite3 linked from this
 * project's node_modules, so nothing is compiled) and imported from there. None of its code is committed.
 *
 * Both sides run as libraries, each in a fresh process per measurement (the CLI has no flag for the
 * history window, and LangGraph has no CLI): autopilot's library, because that is what LangGraph is and
 * only the library can hand the model every earlier step.
 * - autopilot: `Mission.run` (src/, through tsx) on `Storage.layerSqlite(file)`, the mock model answering
 *   the same 1,024-character turn (scripts/bench-common.ts), `historyWindow: N` so every act prompt holds
 *   every earlier answer, 2 criteria never met, only the iteration axis capped, empty toolkit. Each
 *   iteration is an act call, a judge call, budget charges, events, and one transaction (step row,
 *   events, checkpoint row upserted) before the next starts.
 * - LangGraph: a StateGraph with one node, `step`, looping on itself N times; the state is
 *   `history: string[]` with the concat reducer (LangGraph's pattern for message history). The node
 *   builds a prompt from the whole history as autopilot does (string `+`, no copy), and returns the same
 *   1,024-character answer. Compiled with SqliteSaver over a better-sqlite3 Database on a new file (WAL, as its setup sets),
 *   invoked with `durability: "sync"`, so each step's checkpoint is written before the next step runs.
 * Durability is the same on both sides: `--sync` lists the SQLite `synchronous` levels to measure. FULL
 * (LangGraph's default here: an fsync per commit) sets AUTOPILOT_DB_SYNC=FULL for autopilot; NORMAL
 * (autopilot's default: safe from a process crash, not from power loss) sets `PRAGMA synchronous = NORMAL`
 * on LangGraph's connection.
 *
 * Reported per side (median of the repeats, the two sides alternating in order): the run's wall and CPU
 * time (from the call to its result: module loading and the database's creation left out), the whole
 * process's CPU, and the database's bytes after `PRAGMA wal_checkpoint(TRUNCATE)`. Targets: autopilot at
 * least 20× faster (run wall time), and its database smaller. Output: a table, then JSON, also written
 * to bench-out/bench-langgraph.json.
 */
import { Effect, Layer, Schema } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { Goal } from "../src/domain/Goal.js"
import { MockLlm, MockScript } from "../src/llm/MockLlm.js"
import * as Mission from "../src/runtime/Mission.js"
import * as Storage from "../src/store/Storage.js"
import { Toolkit } from "../src/tools/Tool.js"
import { answer, checkpointedBytes, criteria, machine, median, mockScript, objective, option, policyFor, r1, r2, root, Sqlite, timed } from "./bench-common.js"

const ITERATIONS = Number(option("iterations", "1000"))
const REPEATS = Number(option("repeats", "3"))
const SYNC = option("sync", "FULL,NORMAL").split(",") as Array<"FULL" | "NORMAL">
const REINSTALL = process.argv.includes("--reinstall")
const KEEP = process.argv.includes("--keep")
const CHILD = option("child", "")

const TARGET_SPEEDUP = 20

/** Exact versions: a re-run measures the same LangGraph. */
const langgraphPackages = {
  "@langchain/langgraph": "1.7.3",
  "@langchain/langgraph-checkpoint": "1.2.2",
  "@langchain/langgraph-checkpoint-sqlite": "1.0.4",
  "@langchain/core": "1.4.0"
}
const depsDir = path.join(
  os.tmpdir(),
  `autopilot-bench-langgraph-${Object.values(langgraphPackages).join("-")}`
)

// ---------------------------------------------------------------------------------------------- children

interface RunFigures {
  readonly steps: number
  readonly run_wall_ms: number
  readonly run_cpu_ms: number
}

const measure = async (run: () => Promise<number>): Promise<RunFigures> => {
  const cpuStart = process.cpuUsage()
  const started = performance.now()
  const steps = await run()
  const wall = performance.now() - started
  const cpu = process.cpuUsage(cpuStart)
  return { steps, run_wall_ms: r1(wall), run_cpu_ms: r1((cpu.user + cpu.system) / 1000) }
}

const autopilotChild = (iterations: number, db: string) =>
  measure(() =>
    Mission.run({
      runId: "bench",
      goal: new Goal({ objective, success_criteria: criteria }),
      policy: policyFor(iterations),
      historyWindow: iterations
    }).pipe(
      Effect.provide(Layer.mergeAll(Storage.layerSqlite(db), MockLlm.layer(Schema.decodeUnknownSync(MockScript)(mockScript)), Toolkit.layer([]))),
      Effect.map((result) => result.iterations),
      Effect.runPromise
    )
  )

/** What the LangGraph child uses of the installed packages, typed as far as this script relies on them. */
type HistoryState = { readonly history: Array<string> }
interface GraphBuilder {
  addNode(name: string, fn: (state: HistoryState) => HistoryState): GraphBuilder
  addEdge(from: string, to: string): GraphBuilder
  addConditionalEdges(from: string, route: (state: HistoryState) => string): GraphBuilder
  compile(options: { readonly checkpointer: unknown }): { invoke(input: HistoryState, config: Record<string, unknown>): Promise<HistoryState> }
}
interface LangGraph {
  readonly StateGraph: new(state: unknown) => GraphBuilder
  readonly Annotation: {
    <A>(spec: { readonly reducer: (a: A, b: A) => A; readonly default: () => A }): unknown
    Root(fields: Record<string, unknown>): unknown
  }
  readonly START: string
  readonly END: string
}

const langgraphChild = (iterations: number, db: string, sync: string) => {
  const require = createRequire(path.join(depsDir, "package.json"))
  const { Annotation, END, START, StateGraph } = require("@langchain/langgraph") as LangGraph
  const { SqliteSaver } = require("@langchain/langgraph-checkpoint-sqlite") as {
    SqliteSaver: new(db: unknown) => { setup(): void }
  }
  const BetterSqlite = require("better-sqlite3") as new(file: string) => { pragma(source: string): unknown }
  const connection = new BetterSqlite(db)
  const checkpointer = new SqliteSaver(connection)
  checkpointer.setup()
  connection.pragma(`synchronous = ${sync}`)
  const State = Annotation.Root({
    history: Annotation<Array<string>>({ reducer: (a, b) => a.concat(b), default: () => [] })
  })
  let promptChars = 0
  const graph = new StateGraph(State)
    .addNode("step", (state) => {
      // Stands in for the model call: the whole history becomes its prompt, built as autopilot builds
      // its own (src/runtime/Prompts.ts), with `+`.
      let prompt = objective
      for (const entry of state.history) prompt += `\n\n${entry}`
      promptChars += prompt.length
      return { history: [answer] }
    })
    .addEdge(START, "step")
    .addConditionalEdges("step", (state) => (state.history.length >= iterations ? END : "step"))
    .compile({ checkpointer })
  return measure(async () => {
    const final = await graph.invoke({ history: [] }, {
      configurable: { thread_id: "bench" },
      recursionLimit: iterations + 10,
      durability: "sync"
    })
    if (promptChars === 0) throw new Error("the node never ran")
    return final.history.length
  })
}

// ------------------------------------------------------------------------------------------------- main

const install = () => {
  if (!REINSTALL && fs.existsSync(path.join(depsDir, "node_modules", "@langchain", "langgraph-checkpoint-sqlite"))) return false
  fs.rmSync(depsDir, { recursive: true, force: true })
  fs.mkdirSync(depsDir, { recursive: true })
  fs.writeFileSync(path.join(depsDir, "package.json"), JSON.stringify({ name: "autopilot-bench-langgraph", private: true }))
  execFileSync("npm", [
    "install", "--prefix", depsDir, "--no-audit", "--no-fund", "--ignore-scripts", "--no-save",
    ...Object.entries(langgraphPackages).map(([name, version]) => `${name}@${version}`),
    // This project's build of the native module: nothing to compile.
    `better-sqlite3@file:${path.join(root, "node_modules", "better-sqlite3")}`
  ], { stdio: ["ignore", "inherit", "inherit"] })
  return true
}

const installedVersions = () => {
  const require = createRequire(path.join(depsDir, "package.json"))
  return Object.fromEntries(
    [...Object.keys(langgraphPackages), "better-sqlite3"].map((name) => {
      const manifest = JSON.parse(fs.readFileSync(path.join(depsDir, "node_modules", name, "package.json"), "utf8")) as { version: string }
      return [name, manifest.version]
    }).concat([["better-sqlite3 resolved from", path.dirname(require.resolve("better-sqlite3/package.json"))]])
  )
}

type Side = "autopilot" | "langgraph"

interface Measured extends RunFigures {
  readonly process_cpu_ms: number
  readonly process_wall_ms: number
  readonly db_bytes: number
}

const runSide = async (side: Side, sync: string, dir: string, tag: string): Promise<Measured> => {
  const db = path.join(dir, `${side}-${tag}.db`)
  const env: NodeJS.ProcessEnv = { ...process.env, AUTOPILOT_DB_SYNC: sync }
  for (const name of ["LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"]) delete env[name]
  let out = ""
  const run = await timed(process.execPath, [
    "--import", "tsx", path.join(root, "scripts", "bench-langgraph.ts"),
    `--child=${side}`, `--iterations=${ITERATIONS}`, `--db=${db}`, `--sync=${sync}`
  ], { env, onStdout: (chunk) => void (out += chunk.toString("utf8")) })
  const figures = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Partial<RunFigures>
  if (run.exitCode !== 0 || figures.steps !== ITERATIONS) throw new Error(`${side} (${sync}) exited ${run.exitCode}: ${out} ${run.stderr}`)
  return { ...(figures as RunFigures), process_cpu_ms: run.cpu_ms, process_wall_ms: run.wall_ms, db_bytes: checkpointedBytes(db) }
}

/** Rows and the largest row of each table: what each side keeps. */
const tablesOf = (file: string) => {
  const db = new Sqlite(file)
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map((t) => t.name)
  const counts = Object.fromEntries(tables.map((name) => [name, (db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n]))
  db.close()
  return counts
}

const main = async () => {
  const env = machine()
  const log = (line: string) => process.stdout.write(`${line}\n`)
  log(`autopilot vs LangGraph.js: ${env.date}, node ${env.node}, SQLite ${env.sqlite}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, commit ${env.commit}`)
  const installed = install()
  const versions = installedVersions()
  log(`LangGraph ${installed ? "installed into" : "already in"} ${depsDir}: ${JSON.stringify(versions)}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-langgraph-"))

  const results: Record<string, Record<Side, Array<Measured>>> = {}
  const tables: Record<string, Record<Side, Record<string, number>>> = {}
  for (const sync of SYNC) {
    results[sync] = { autopilot: [], langgraph: [] }
    for (let r = 0; r < REPEATS; r++) {
      const order: Array<Side> = r % 2 === 0 ? ["autopilot", "langgraph"] : ["langgraph", "autopilot"]
      for (const side of order) {
        const run = await runSide(side, sync, dir, `${sync}-${r}`)
        results[sync]![side].push(run)
        log(`synchronous=${sync} repeat ${r + 1}/${REPEATS} ${side.padEnd(9)}: run ${r2(run.run_wall_ms / 1000)} s wall, ${r2(run.run_cpu_ms / 1000)} s CPU; database ${(run.db_bytes / 2 ** 20).toFixed(1)} MiB`)
      }
    }
    tables[sync] = { autopilot: tablesOf(path.join(dir, `autopilot-${sync}-0.db`)), langgraph: tablesOf(path.join(dir, `langgraph-${sync}-0.db`)) }
  }
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })

  const summarize = (runs: Array<Measured>) => ({
    run_wall_s: r2(median(runs.map((x) => x.run_wall_ms)) / 1000),
    run_cpu_s: r2(median(runs.map((x) => x.run_cpu_ms)) / 1000),
    process_cpu_s: r2(median(runs.map((x) => x.process_cpu_ms)) / 1000),
    db_bytes: median(runs.map((x) => x.db_bytes)),
    repeats_run_wall_s: runs.map((x) => r2(x.run_wall_ms / 1000))
  })
  const bySync = Object.fromEntries(SYNC.map((sync) => {
    const a = summarize(results[sync]!.autopilot)
    const l = summarize(results[sync]!.langgraph)
    return [sync, {
      autopilot: a,
      langgraph: l,
      tables: tables[sync],
      speedup_run_wall: r1(l.run_wall_s / a.run_wall_s),
      speedup_run_cpu: r1(l.run_cpu_s / a.run_cpu_s),
      db_ratio: r1(l.db_bytes / a.db_bytes)
    }]
  }))
  const summary = {
    machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
    command: ["node --import tsx scripts/bench-langgraph.ts", ...process.argv.slice(2)].join(" "),
    options: { iterations: ITERATIONS, repeats: REPEATS, sync: SYNC },
    langgraph: { folder: depsDir, versions },
    results: bySync,
    target: { speedup: `>= ${TARGET_SPEEDUP}x (run wall time)`, met: Object.fromEntries(SYNC.map((sync) => [sync, bySync[sync]!.speedup_run_wall >= TARGET_SPEEDUP])) }
  }

  log("")
  log(`${ITERATIONS} steps, median of ${REPEATS}   | run wall s | run CPU s | process CPU s | database MiB`)
  for (const sync of SYNC) {
    const s = bySync[sync]!
    for (const side of ["autopilot", "langgraph"] as const) {
      const x = s[side]
      log(`${`${side}, synchronous=${sync}`.padEnd(30)}| ${String(x.run_wall_s).padStart(10)} | ${String(x.run_cpu_s).padStart(9)} | ${String(x.process_cpu_s).padStart(13)} | ${(x.db_bytes / 2 ** 20).toFixed(2).padStart(12)}`)
    }
    log(`  autopilot is ${s.speedup_run_wall}× faster (wall; CPU ${s.speedup_run_cpu}×), its database ${s.db_ratio}× smaller; ` +
      `target >= ${TARGET_SPEEDUP}×: ${summary.target.met[sync] ? "MET" : "NOT MET"}`)
  }
  log(`load average at end ${summary.machine.loadavg_at_end.join(" ")}`)

  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-langgraph.json"), `${JSON.stringify(summary, null, 2)}\n`)
  log("")
  log("JSON (also in bench-out/bench-langgraph.json):")
  log(JSON.stringify(summary))
}

const fail = (error: unknown) => {
  console.error(error)
  process.exitCode = 1
}

if (CHILD !== "") {
  const db = option("db", "")
  const figures = CHILD === "autopilot" ? autopilotChild(ITERATIONS, db) : langgraphChild(ITERATIONS, db, option("sync", "FULL"))
  figures.then((f) => process.stdout.write(`${JSON.stringify(f)}\n`)).catch(fail)
} else {
  main().catch(fail)
}
