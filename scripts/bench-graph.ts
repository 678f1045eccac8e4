/**
 * A mission's agent graph at width: 100 nodes in 5 layers of 20 on the mock model with 50 ms latency,
 * driven by `Missions.run` as a library caller runs it, at most 20 nodes at a time, every node attempt a
 * child run checkpointed to one real SQLite file. Run with `npm run bench:graph`.
 *
 *   node --import tsx scripts/bench-graph.ts [--layers=5] [--width=20] [--latency-ms=50] [--max-parallel=20]
 *                                            [--repeats=3] [--singles=2] [--profile=FILE.cpuprofile] [--keep]
 *
 * The graph: a blueprint needs a single entry node from which every node is reachable, so an entry node
 * `start` comes in front of the 5 × 20 nodes (101 nodes, no sink: the mission's output is its sinks' answers).
 * Every node of layer 1 depends on `start`; node i of layer l > 1 on 1 + ((7i + 3l) mod 3) nodes of layer
 * l − 1, namely (i + 7j) mod 20 for j = 0, 1, 2: deterministic, 1–3 inputs each, every input's full answer
 * given to the node. The blueprint is built in code, checked by `Blueprint.problems`, made and approved
 * with the Missions service and run with `Missions.run`. No halt source; default heartbeat.
 *
 * Workload: the 1,024-character mock turn of scripts/bench-common.ts (1,000 in / 256 out tokens) with
 * `latency_ms` on every act call (the mock's judge answers at once and, for a node, meets its criterion,
 * so each node is one iteration: one act call, one judge call). Budget: 3,600 s and 1,000 iterations,
 * other axes off. A new database file through `Storage.layerSqlite` (WAL, synchronous = NORMAL, group
 * commit), in a temporary folder.
 *
 * Figures:
 * - per-node time: a 1-node mission (`start` alone) on the same mock, run `--singles` times per repeat: the
 *   time from its `node_started` to its `node_ended` as the driver announces them (median). Its wall time
 *   in `Missions.run` is given too.
 * - wall time of `Missions.run` on the graph (median of `--repeats`, each a new mission in the same file,
 *   after one warm-up of each kind), against the critical-path bound = longest path's node count (6) ×
 *   per-node time. Target: within 1.5×.
 * - driver overhead per node, two ways: (wall − bound) ÷ nodes; and the time no node run was going (the
 *   wall time minus the union of the intervals from each child run's `run_started` to its `result`) ÷ nodes.
 *   Also the mean time inside one node run on the graph (from its `run_started` to its `result`), against
 *   the same time on an empty graph, and the CPU time of the whole run per node.
 * A table goes to stdout, then the figures as JSON, also written to bench-out/bench-graph.json. With
 * `--profile=FILE`, one more run of the graph is CPU-profiled (node:inspector) and the profile written there.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as inspector from "node:inspector"
import * as os from "node:os"
import * as path from "node:path"
import { Blueprint, type BlueprintEncoded, describeProblems, problems } from "../src/domain/Blueprint.js"
import type { AutopilotEvent } from "../src/domain/Event.js"
import * as MissionRunner from "../src/missions/MissionRunner.js"
import * as Firings from "../src/missions/Firings.js"
import * as Missions from "../src/missions/Missions.js"
import * as Runs from "../src/runtime/Runs.js"
import * as Specialists from "../src/specialists/Specialists.js"
import * as Storage from "../src/store/Storage.js"
import { answer, machine, median, option, r1, r2, root } from "./bench-common.js"

const LAYERS = Number(option("layers", "5"))
const WIDTH = Number(option("width", "20"))
const LATENCY_MS = Number(option("latency-ms", "50"))
const MAX_PARALLEL = Number(option("max-parallel", "20"))
const REPEATS = Number(option("repeats", "3"))
const SINGLES = Number(option("singles", "2"))
const PROFILE = option("profile", "")
const KEEP = process.argv.includes("--keep")

const TARGET_BOUND_MULTIPLE = 1.5

// ------------------------------------------------------------------------------------------------ graph

const id = (layer: number, i: number) => `n${layer}_${String(i).padStart(2, "0")}`

/** Node i of layer l (from 1) depends on these nodes of layer l − 1 (`start` for layer 1). */
const parentsOf = (layer: number, i: number): ReadonlyArray<string> => {
  if (layer === 1) return ["start"]
  const count = 1 + ((7 * i + 3 * layer) % 3)
  return Array.from({ length: count }, (_, j) => id(layer - 1, (i + 7 * j) % WIDTH))
}

const node = (nodeId: string) => ({ id: nodeId, role: `Works on ${nodeId}`, prompt: `Do step ${nodeId} of the plan`, model_tier: "simple" as const })

const blueprintOf = (layers: number): Blueprint => {
  const ids = Array.from({ length: layers }, (_, l) => Array.from({ length: WIDTH }, (_, i) => id(l + 1, i))).flat()
  const encoded: BlueprintEncoded = {
    id: layers === 0 ? "bench_single" : "bench_graph",
    version: 1,
    title: layers === 0 ? "One node" : `${layers} layers of ${WIDTH}`,
    description: "The mission driver's benchmark graph.",
    category: "benchmark",
    example_goals: ["benchmark the mission driver"],
    mode: "once",
    slots: [],
    graph: {
      entry: "start",
      nodes: [node("start"), ...ids.map(node)],
      edges: Array.from({ length: layers }, (_, l) =>
        Array.from({ length: WIDTH }, (_, i) => parentsOf(l + 1, i).map((from) => ({ from, to: id(l + 1, i) })))).flat(2)
    },
    success_criteria: ["every step is done"],
    budget: { max_seconds: 3600, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 1000 },
    curation: { capture: false }
  }
  const blueprint = Schema.decodeUnknownSync(Blueprint)(encoded)
  const found = problems(blueprint, { specialists: [] })
  if (found.length > 0) throw new Error(`the benchmark's blueprint is not valid: ${describeProblems(found)}`)
  return blueprint
}

/** The number of nodes on the longest path from the entry. */
const longestPath = (blueprint: Blueprint) => {
  const depth = new Map<string, number>([[blueprint.graph.entry, 1]])
  // Nodes are listed layer by layer, so every node's parents come before it.
  for (const n of blueprint.graph.nodes) {
    for (const e of blueprint.graph.edges.filter((e) => e.to === n.id)) depth.set(n.id, Math.max(depth.get(n.id) ?? 0, depth.get(e.from)! + 1))
  }
  return Math.max(...depth.values())
}

// ------------------------------------------------------------------------------------------------- runs

interface Interval {
  start: number
  end: number
}

interface Measured {
  readonly nodes: number
  readonly wall_ms: number
  readonly cpu_ms: number
  /** node_started → node_ended per node, as the mission's run announces them. */
  readonly node_ms: ReadonlyArray<number>
  /** run_started → result per child run. */
  readonly child_ms: ReadonlyArray<number>
  /** The part of the wall time during which no child run was going. */
  readonly idle_ms: number
  readonly status: string
}

const unionLength = (intervals: ReadonlyArray<Interval>) => {
  const sorted = [...intervals].sort((a, b) => a.start - b.start)
  let total = 0
  let current: Interval | undefined
  for (const i of sorted) {
    if (current === undefined || i.start > current.end) {
      if (current !== undefined) total += current.end - current.start
      current = { ...i }
    } else current.end = Math.max(current.end, i.end)
  }
  return total + (current === undefined ? 0 : current.end - current.start)
}

const runOnce = (blueprint: Blueprint, script: string) =>
  Effect.gen(function*() {
    const missions = yield* Missions.Missions
    const made = yield* missions.create({ project: "default", goal: "benchmark the mission driver", blueprint, slots: {}, missing: [], actor: "bench", reason: "bench" })
    yield* missions.approve("default", made.mission_id, { actor: "bench" })
    const nodes = new Map<string, Interval>()
    const children = new Map<string, Interval>()
    const now = () => performance.now()
    const onEvent = (e: AutopilotEvent) =>
      Effect.sync(() => {
        if (e.kind === "node_started") nodes.set(e.node, { start: now(), end: Number.NaN })
        if (e.kind === "node_ended" && nodes.has(e.node)) nodes.get(e.node)!.end = now()
      })
    const onChildEvent = (e: AutopilotEvent) =>
      Effect.sync(() => {
        if (e.kind === "run_started") children.set(e.run_id, { start: now(), end: Number.NaN })
        if (e.kind === "result" && children.has(e.run_id)) children.get(e.run_id)!.end = now()
      })
    const cpu = process.cpuUsage()
    const started = now()
    const ran = yield* Missions.run("default", made.mission_id, {
      actor: "bench",
      llm: { provider: "mock", mock_script: script },
      maxParallel: MAX_PARALLEL,
      onEvent,
      onChildEvent
    })
    const wall = now() - started
    const used = process.cpuUsage(cpu)
    const within = [...children.values()].map((i) => ({ start: Math.max(i.start, started), end: Math.min(i.end, started + wall) }))
    return {
      nodes: blueprint.graph.nodes.length,
      wall_ms: wall,
      cpu_ms: (used.user + used.system) / 1000,
      node_ms: [...nodes.values()].map((i) => i.end - i.start),
      child_ms: [...children.values()].map((i) => i.end - i.start),
      idle_ms: wall - unionLength(within),
      status: `${ran.mission.status}${ran.result.halt_reason === null ? "" : ` (${ran.result.halt_reason})`}`
    } satisfies Measured
  })

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length

const main = async () => {
  const env = machine()
  const log = (line: string) => process.stdout.write(`${line}\n`)
  log(`agent graph: ${env.date}, node ${env.node}, SQLite ${env.sqlite}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, commit ${env.commit}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-graph-"))
  const db = path.join(dir, "graph.db")
  const script = path.join(dir, "mock.json")
  fs.writeFileSync(script, JSON.stringify({
    model: "gpt-4o-mini",
    latency_ms: LATENCY_MS,
    repeat_last: true,
    // A node meets its one criterion at once, and so does the mission its own.
    turns: [{ content: answer, usage: { input_tokens: 1000, output_tokens: 256 }, criteria_met: [true] }],
    mission_criteria_met: [true]
  }))
  const graph = blueprintOf(LAYERS)
  const single = blueprintOf(0)
  const pathNodes = longestPath(graph)

  const layer = MissionRunner.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Missions.layer, Firings.layer, Runs.layer({ workspaceRoot: dir }), Specialists.layerBuiltIn)),
    Layer.provideMerge(Storage.layerSqlite(db)),
    Layer.provideMerge(NodeContext.layer)
  )
  const checked = (m: Measured, what: string) => {
    if (!m.status.startsWith("completed")) throw new Error(`the ${what} mission ended ${m.status}`)
    return m
  }

  const results = await Effect.runPromise(Effect.gen(function*() {
    // Warm-up: JIT, the file's tables and WAL.
    checked(yield* runOnce(single, script), "warm-up")
    checked(yield* runOnce(graph, script), "warm-up")
    const singles: Array<Measured> = []
    const graphs: Array<Measured> = []
    for (let r = 0; r < REPEATS; r++) {
      for (let s = 0; s < SINGLES; s++) singles.push(checked(yield* runOnce(single, script), "1-node"))
      graphs.push(checked(yield* runOnce(graph, script), "graph"))
      log(`repeat ${r + 1}/${REPEATS}: graph ${r1(graphs.at(-1)!.wall_ms)} ms wall, ${r1(graphs.at(-1)!.cpu_ms)} ms CPU; 1-node ${r1(singles.at(-1)!.node_ms[0]!)} ms per node`)
    }
    if (PROFILE !== "") {
      const session = new inspector.Session()
      session.connect()
      const post = (method: string, params?: object) =>
        new Promise<any>((resolve, reject) => session.post(method, params ?? {}, (err, out) => (err === null ? resolve(out) : reject(err))))
      yield* Effect.promise(() => post("Profiler.enable").then(() => post("Profiler.setSamplingInterval", { interval: 200 })).then(() => post("Profiler.start")))
      checked(yield* runOnce(graph, script), "profiled")
      const { profile } = yield* Effect.promise(() => post("Profiler.stop"))
      fs.writeFileSync(PROFILE, JSON.stringify(profile))
      session.disconnect()
      log(`profile of one more graph run written to ${PROFILE}`)
    }
    return { singles, graphs }
  }).pipe(Effect.provide(layer), Effect.withTracerEnabled(false)))

  const perNode = median(results.singles.map((m) => m.node_ms[0]!))
  const singleWall = median(results.singles.map((m) => m.wall_ms))
  const singleChild = median(results.singles.map((m) => m.child_ms[0]!))
  const boundMs = pathNodes * perNode
  const wall = median(results.graphs.map((m) => m.wall_ms))
  const nodes = graph.graph.nodes.length
  const mid = [...results.graphs].sort((a, b) => a.wall_ms - b.wall_ms)[Math.floor(results.graphs.length / 2)]!
  const figures = {
    machine: env,
    workload: { layers: LAYERS, width: WIDTH, nodes, edges: graph.graph.edges.length, longest_path_nodes: pathNodes, latency_ms: LATENCY_MS, max_parallel: MAX_PARALLEL, repeats: REPEATS, singles: results.singles.length },
    single: {
      node_ms_median: r1(perNode),
      node_ms_all: results.singles.map((m) => r1(m.node_ms[0]!)),
      child_run_ms_median: r1(singleChild),
      mission_wall_ms_median: r1(singleWall),
      mission_cpu_ms_median: r1(median(results.singles.map((m) => m.cpu_ms)))
    },
    graph: {
      wall_ms_median: r1(wall),
      wall_ms_all: results.graphs.map((m) => r1(m.wall_ms)),
      cpu_ms_median: r1(median(results.graphs.map((m) => m.cpu_ms))),
      cpu_ms_per_node: r2(median(results.graphs.map((m) => m.cpu_ms)) / nodes),
      critical_path_bound_ms: r1(boundMs),
      over_bound: r2(wall / boundMs),
      overhead_per_node_ms: r2((wall - boundMs) / nodes),
      idle_ms: r1(mid.idle_ms),
      idle_per_node_ms: r2(mid.idle_ms / nodes),
      node_ms_mean: r1(mean(mid.node_ms)),
      child_run_ms_mean: r1(mean(mid.child_ms)),
      child_run_ms_max: r1(Math.max(...mid.child_ms))
    },
    target: { over_bound: TARGET_BOUND_MULTIPLE, met: wall <= TARGET_BOUND_MULTIPLE * boundMs }
  }
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })
  else log(`database kept: ${db}`)

  const rows: Array<[string, string]> = [
    ["graph", `${nodes} nodes (start + ${LAYERS} × ${WIDTH}), ${figures.workload.edges} edges, longest path ${pathNodes} nodes; ${LATENCY_MS} ms per act call; ${MAX_PARALLEL} at a time`],
    ["per-node time (1-node mission, median)", `${figures.single.node_ms_median} ms node_started → node_ended (child run ${figures.single.child_run_ms_median} ms; mission ${figures.single.mission_wall_ms_median} ms wall, ${figures.single.mission_cpu_ms_median} ms CPU)`],
    ["critical-path bound", `${pathNodes} × ${figures.single.node_ms_median} = ${figures.graph.critical_path_bound_ms} ms`],
    ["graph wall time (median)", `${figures.graph.wall_ms_median} ms (${figures.graph.wall_ms_all.join(", ")})`],
    ["over the bound (target ≤ 1.5×)", `${figures.graph.over_bound}× — ${figures.target.met ? "met" : "NOT met"}`],
    ["overhead per node: (wall − bound) / nodes", `${figures.graph.overhead_per_node_ms} ms`],
    ["time no node run was going / nodes", `${figures.graph.idle_ms} ms / ${nodes} = ${figures.graph.idle_per_node_ms} ms`],
    ["node time on the graph (mean)", `${figures.graph.node_ms_mean} ms node_started → node_ended; child run ${figures.graph.child_run_ms_mean} ms (max ${figures.graph.child_run_ms_max})`],
    ["CPU of the graph run", `${figures.graph.cpu_ms_median} ms, ${figures.graph.cpu_ms_per_node} ms per node`]
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  for (const [k, v] of rows) log(`${k.padEnd(width)}  ${v}`)
  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-graph.json"), JSON.stringify(figures, null, 2))
  log(JSON.stringify(figures))
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
