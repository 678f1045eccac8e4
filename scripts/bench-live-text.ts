/**
 * What the live-text channel costs a process running runs: the same runs on the mock model, on a SQLite
 * file, with `LiveText` (each streaming run's text written every 100 ms, removed at its step's commit and
 * its end) and without (the act calls streamed all the same, to a consumer that drops the text).
 *
 *   node --import tsx scripts/bench-live-text.ts [--runs=10] [--iterations=3] [--words=100] [--delta-ms=10] [--rounds=3]
 *
 * Two workloads: `paced`, runs streaming at a model's pace at once (`delta_ms` per word), where the channel
 * writes one batch per 100 ms per run, measured as CPU time of the process; and `flat-out`, one run whose
 * answers stream instantly, iteration after iteration, measured per iteration (the worst case: every
 * iteration's text written and removed).
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Goal } from "../src/domain/Goal.js"
import { MockLlm, MockScript } from "../src/llm/MockLlm.js"
import * as LiveText from "../src/runtime/LiveText.js"
import * as Mission from "../src/runtime/Mission.js"
import * as Storage from "../src/store/Storage.js"
import { Toolkit } from "../src/tools/Tool.js"
import { machine, median, option, r2, Sqlite } from "./bench-common.js"

const runs = Number(option("runs", "10"))
const iterations = Number(option("iterations", "3"))
const words = Number(option("words", "100"))
const deltaMs = Number(option("delta-ms", "10"))
const rounds = Number(option("rounds", "3"))
const flatIterations = Number(option("flat-iterations", "2000"))

const goal = new Goal({ objective: "benchmark the live text", success_criteria: ["never met"] })
const answer = Array.from({ length: words }, (_, i) => `word${i}`).join(" ")

const scriptOf = (pause: number) =>
  new MockScript({ turns: [{ content: answer, usage: { input_tokens: 1000, output_tokens: 256 }, tool_calls: [], criteria_met: [false], delta_ms: pause }] })

/** `count` runs at once, each `iters` iterations; the process's CPU and wall time, and the rows the channel wrote. */
const measure = (live: boolean, count: number, iters: number, pause: number) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-live-text-"))
    const file = path.join(dir, "a.db")
    const environment = Layer.mergeAll(Storage.layerSqlite(file), Toolkit.layer([]), MockLlm.layer(scriptOf(pause)))
    const channel = live ? LiveText.layer() : Layer.empty
    const cpu = process.cpuUsage()
    const started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        Mission.run({ runId: `run-${i}`, goal, policy: { max_iterations: iters, max_seconds: 0, max_tokens: 0, max_dollars: 0 }, onDelta: () => Effect.void }).pipe(
          Effect.provide(channel)
        ),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.provide(environment))
    const wall = performance.now() - started
    const used = process.cpuUsage(cpu)
    const db = new Sqlite(file)
    const left = (db.prepare("SELECT COUNT(*) AS n FROM deltas").get() as { n: number }).n
    const written = (db.prepare("SELECT COALESCE(MAX(seq), 0) AS n FROM sqlite_sequence WHERE name = 'deltas'").get() as { n: number } | undefined)?.n ?? 0
    db.close()
    fs.rmSync(dir, { recursive: true, force: true })
    return { wall_ms: wall, cpu_ms: (used.user + used.system) / 1000, rows_written: written, rows_left: left }
  })

const compare = (name: string, count: number, iters: number, pause: number, per: number) =>
  Effect.gen(function*() {
    const off: Array<number> = []
    const on: Array<number> = []
    let rows = 0
    let left = 0
    for (let round = 0; round < rounds; round++) {
      off.push((yield* measure(false, count, iters, pause)).cpu_ms / per)
      const withChannel = yield* measure(true, count, iters, pause)
      on.push(withChannel.cpu_ms / per)
      rows = withChannel.rows_written
      left += withChannel.rows_left
    }
    return { workload: name, without_ms: r2(median(off)), with_ms: r2(median(on)), added_pct: r2((median(on) / median(off) - 1) * 100), rows_written_per_round: rows, rows_left: left }
  })

const main = Effect.gen(function*() {
  const streamSeconds = (words * deltaMs) / 1000
  const paced = yield* compare(`paced: ${runs} runs x ${iterations} iterations, ${words} words at ${deltaMs} ms (CPU ms per run-second of streaming)`, runs, iterations, deltaMs, runs * iterations * streamSeconds)
  const flat = yield* compare(`flat-out: 1 run x ${flatIterations} iterations, instant answers (CPU ms per iteration)`, 1, flatIterations, 0, flatIterations)
  const result = { machine: machine(), paced, flat }
  console.table([paced, flat])
  console.log(JSON.stringify(result, null, 2))
  fs.mkdirSync("bench-out", { recursive: true })
  fs.writeFileSync("bench-out/bench-live-text.json", JSON.stringify(result, null, 2))
})

Effect.runPromise(main)
