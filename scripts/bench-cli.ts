/**
 * The mission loop as users run it: `autopilot run … --format jsonl` through the built CLI
 * (`node bin/autopilot.js`), its output read from a pipe, compared with the same loop in-process (what
 * scripts/bench-loop.ts measures), and `autopilot --help` start-up. Run with `npm run bench:cli` (builds
 * first: the CLI runs from dist/).
 *
 *   node --import tsx scripts/bench-cli.ts [--runs=1000,10000] [--repeats=3] [--help-runs=20] [--keep]
 *
 * Workload (scripts/bench-common.ts, the same as bench-loop's): the mock model answering a 1,024-character
 * turn, repeated; 2 criteria, never met; only the iteration axis capped (`--max-iterations N
 * --max-seconds 0 --max-tokens 0 --max-dollars 0`); a new database file per run; default tools, heartbeat
 * and signal handling as the CLI sets them up.
 *
 * Each repeat runs, in alternating order, the CLI and the in-process loop at both run lengths, each in a
 * fresh process timed by bash's `time` (wall, and user + system CPU of the whole process: start-up, JIT
 * and GC included). The in-process child (this script with `--child=N`) runs `Mission.run` on src/ as
 * bench-loop does (no halt source, empty toolkit, events dropped) and reports the loop's own CPU time
 * too. From the two lengths:
 * - CPU per iteration, marginal: (CPU at the long run - CPU at the short run) / (difference in iterations),
 *   start-up excluded; and overall: CPU of the whole process / iterations;
 * - start-up: CPU at the short run - its iterations × the marginal cost (what a run costs before and
 *   around its iterations: loading modules, opening the database, JIT warm-up);
 * - the CLI's cost over the in-process loop's, two ways; target for each: <= 1.5.
 *   marginal: the CLI's marginal CPU per iteration over the in-process process's;
 *   overall: the CLI's whole-process CPU per iteration at the long run (start-up included: what a user
 *   pays) over the in-process loop's own CPU per iteration at the same length (what bench-loop reports).
 * `--help`: wall and CPU, median of `--help-runs` runs after one untimed run. Target: < 300 ms (wall).
 * Medians over the repeats are reported. A table goes to stdout, then the figures as JSON, also written to
 * bench-out/bench-cli.json (not committed).
 */
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Goal } from "../src/domain/Goal.js"
import { MockLlm, MockScript } from "../src/llm/MockLlm.js"
import * as Mission from "../src/runtime/Mission.js"
import * as Storage from "../src/store/Storage.js"
import { Toolkit } from "../src/tools/Tool.js"
import {
  checkpointedBytes,
  criteria,
  machine,
  median,
  mockScript,
  objective,
  option,
  policyFor,
  r1,
  r2,
  root,
  timed
} from "./bench-common.js"

const RUNS = option("runs", "1000,10000").split(",").map(Number)
const REPEATS = Number(option("repeats", "3"))
const HELP_RUNS = Number(option("help-runs", "20"))
const KEEP = process.argv.includes("--keep")
const CHILD = option("child", "")

const TARGET_RATIO = 1.5
const TARGET_HELP_MS = 300

const bin = path.join(root, "bin", "autopilot.js")

// ------------------------------------------------------------------------------------ in-process child

/** The loop in this process, as bench-loop runs it; prints its own figures as one JSON line. */
const child = (iterations: number, db: string) =>
  Effect.gen(function*() {
    const script = Schema.decodeUnknownSync(MockScript)(mockScript)
    const cpuStart = process.cpuUsage()
    const started = performance.now()
    const result = yield* Mission.run({ runId: "bench", goal: new Goal({ objective, success_criteria: criteria }), policy: policyFor(iterations) }).pipe(
      Effect.provide(Layer.mergeAll(Storage.layerSqlite(db), MockLlm.layer(script), Toolkit.layer([])))
    )
    const cpu = process.cpuUsage(cpuStart)
    process.stdout.write(`${JSON.stringify({ iterations: result.iterations, loop_wall_ms: r1(performance.now() - started), loop_cpu_ms: r1((cpu.user + cpu.system) / 1000) })}\n`)
  })

// ------------------------------------------------------------------------------------------------- runs

interface Measured {
  readonly wall_ms: number
  readonly cpu_ms: number
  /** The loop alone (in-process only): from Mission.run's call to its result. */
  readonly loop_cpu_ms?: number
  readonly stdout_bytes: number
  readonly db_bytes: number
}

const cliRun = async (dir: string, iterations: number, scriptFile: string, tag: string): Promise<Measured> => {
  const db = path.join(dir, `cli-${tag}.db`)
  let bytes = 0
  let tail = ""
  const args = [
    bin, "run", objective, ...criteria.flatMap((c) => ["--criterion", c]),
    "--mock-script", scriptFile, "--db", db, "--format", "jsonl",
    "--max-iterations", String(iterations), "--max-seconds", "0", "--max-tokens", "0", "--max-dollars", "0"
  ]
  const run = await timed(process.execPath, args, {
    onStdout: (chunk) => {
      bytes += chunk.length
      tail = (tail + chunk.toString("utf8")).slice(-8192)
    }
  })
  const last = JSON.parse(tail.trimEnd().split("\n").at(-1) ?? "{}") as { kind?: string; iterations?: number; status?: string }
  if (run.exitCode !== 4 || last.kind !== "result" || last.iterations !== iterations || last.status !== "halted") {
    throw new Error(`autopilot run (${iterations}) exited ${run.exitCode}, last line ${JSON.stringify(last)}: ${run.stderr}`)
  }
  return { wall_ms: run.wall_ms, cpu_ms: run.cpu_ms, stdout_bytes: bytes, db_bytes: checkpointedBytes(db) }
}

const inProcessRun = async (dir: string, iterations: number, tag: string): Promise<Measured> => {
  const db = path.join(dir, `in-process-${tag}.db`)
  let out = ""
  const run = await timed(process.execPath, ["--import", "tsx", path.join(root, "scripts", "bench-cli.ts"), `--child=${iterations}`, `--db=${db}`], {
    onStdout: (chunk) => {
      out += chunk.toString("utf8")
    }
  })
  const figures = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { iterations?: number; loop_cpu_ms?: number }
  if (run.exitCode !== 0 || figures.iterations !== iterations || figures.loop_cpu_ms === undefined) {
    throw new Error(`in-process run (${iterations}) exited ${run.exitCode}: ${out} ${run.stderr}`)
  }
  return { wall_ms: run.wall_ms, cpu_ms: run.cpu_ms, loop_cpu_ms: figures.loop_cpu_ms, stdout_bytes: 0, db_bytes: checkpointedBytes(db) }
}

/** Per-iteration figures from a short and a long run of one kind. */
const derive = (short: Measured, long: Measured, [n1, n2]: readonly [number, number]) => {
  const marginal = (long.cpu_ms - short.cpu_ms) / (n2 - n1)
  return {
    marginal_cpu_us_per_iteration: r1(marginal * 1000),
    overall_cpu_us_per_iteration: { [n1]: r1((short.cpu_ms / n1) * 1000), [n2]: r1((long.cpu_ms / n2) * 1000) },
    startup_cpu_ms: r1(short.cpu_ms - n1 * marginal)
  }
}

// ------------------------------------------------------------------------------------------------- main

const main = async () => {
  const env = machine()
  const log = (line: string) => process.stdout.write(`${line}\n`)
  if (!fs.existsSync(path.join(root, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` first")
  if (RUNS.length !== 2 || !(RUNS[0]! < RUNS[1]!)) throw new Error("--runs takes two run lengths, shorter first")
  const lengths = [RUNS[0]!, RUNS[1]!] as const
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-cli-"))
  const scriptFile = path.join(dir, "script.json")
  fs.writeFileSync(scriptFile, JSON.stringify(mockScript))
  log(`autopilot CLI bench: ${env.date}, node ${env.node}, SQLite ${env.sqlite}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, commit ${env.commit}`)
  log(`temp dir ${dir}`)

  // --help: one untimed run (file cache), then the timed ones.
  const help = async () => {
    const run = await timed(process.execPath, [bin, "--help"])
    if (run.exitCode !== 0) throw new Error(`autopilot --help exited ${run.exitCode}: ${run.stderr}`)
    return run
  }
  await help()
  const helpRuns = []
  for (let i = 0; i < HELP_RUNS; i++) helpRuns.push(await help())
  const helpWall = helpRuns.map((r) => r.wall_ms)
  const helpCpu = helpRuns.map((r) => r.cpu_ms)
  log(`--help: median ${r1(median(helpWall))} ms wall, ${r1(median(helpCpu))} ms CPU over ${HELP_RUNS} runs`)

  const repeats: Array<{ cli: Array<Measured>; inProcess: Array<Measured> }> = []
  for (let r = 0; r < REPEATS; r++) {
    const cli: Array<Measured> = []
    const inProcess: Array<Measured> = []
    // Drift on a shared machine should hit both kinds alike: the order alternates between repeats.
    const order = r % 2 === 0 ? ["cli", "in-process"] : ["in-process", "cli"]
    for (const [i, n] of lengths.entries()) {
      for (const kind of order) {
        const run = kind === "cli" ? await cliRun(dir, n, scriptFile, `${r}-${n}`) : await inProcessRun(dir, n, `${r}-${n}`)
        ;(kind === "cli" ? cli : inProcess)[i] = run
        log(`repeat ${r + 1}/${REPEATS}, ${kind.padEnd(10)} ${String(n).padStart(6)} iterations: ${r2(run.wall_ms / 1000)} s wall, ${r2(run.cpu_ms / 1000)} s CPU`)
      }
    }
    repeats.push({ cli, inProcess })
  }
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })

  // ------------------------------------------------------------------------------------------ report
  const per = repeats.map(({ cli, inProcess }) => {
    const c = derive(cli[0]!, cli[1]!, lengths)
    const p = derive(inProcess[0]!, inProcess[1]!, lengths)
    return {
      cli: c,
      in_process: { ...p, loop_cpu_us_per_iteration: { [lengths[0]]: r1((inProcess[0]!.loop_cpu_ms! / lengths[0]) * 1000), [lengths[1]]: r1((inProcess[1]!.loop_cpu_ms! / lengths[1]) * 1000) } },
      ratio_marginal: r2(c.marginal_cpu_us_per_iteration / p.marginal_cpu_us_per_iteration),
      ratio_overall: r2(cli[1]!.cpu_ms / inProcess[1]!.loop_cpu_ms!)
    }
  })
  const med = (f: (x: typeof per[number]) => number) => r1(median(per.map(f)))
  const medRun = (f: (x: typeof repeats[number]) => number) => r1(median(repeats.map(f)))
  const [n1, n2] = lengths
  const summary = {
    machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
    command: ["node --import tsx scripts/bench-cli.ts", ...process.argv.slice(2)].join(" "),
    options: { runs: lengths, repeats: REPEATS, help_runs: HELP_RUNS },
    workload: {
      cli: `node bin/autopilot.js run <objective> --criterion … --criterion … --mock-script <1 KB turn> --db <new file> --format jsonl --max-iterations N --max-seconds 0 --max-tokens 0 --max-dollars 0, stdout read from a pipe`,
      in_process: "Mission.run on src/ (tsx), Storage.layerSqlite(new file), MockLlm with the same script, empty toolkit, no halt source, events dropped",
      answer_chars: mockScript.turns[0]!.content.length,
      criteria: criteria.length
    },
    help: { runs: HELP_RUNS, wall_ms: { median: r1(median(helpWall)), min: Math.min(...helpWall), max: Math.max(...helpWall) }, cpu_ms: { median: r1(median(helpCpu)) } },
    cli: {
      wall_s: { [n1]: r2(medRun((x) => x.cli[0]!.wall_ms) / 1000), [n2]: r2(medRun((x) => x.cli[1]!.wall_ms) / 1000) },
      cpu_s: { [n1]: r2(medRun((x) => x.cli[0]!.cpu_ms) / 1000), [n2]: r2(medRun((x) => x.cli[1]!.cpu_ms) / 1000) },
      marginal_cpu_us_per_iteration: med((x) => x.cli.marginal_cpu_us_per_iteration),
      overall_cpu_us_per_iteration: { [n1]: med((x) => x.cli.overall_cpu_us_per_iteration[n1]!), [n2]: med((x) => x.cli.overall_cpu_us_per_iteration[n2]!) },
      startup_cpu_ms: med((x) => x.cli.startup_cpu_ms),
      stdout_bytes_per_iteration: Math.round(medRun((x) => x.cli[1]!.stdout_bytes) / n2),
      db_bytes: { [n1]: medRun((x) => x.cli[0]!.db_bytes), [n2]: medRun((x) => x.cli[1]!.db_bytes) }
    },
    in_process: {
      wall_s: { [n1]: r2(medRun((x) => x.inProcess[0]!.wall_ms) / 1000), [n2]: r2(medRun((x) => x.inProcess[1]!.wall_ms) / 1000) },
      cpu_s: { [n1]: r2(medRun((x) => x.inProcess[0]!.cpu_ms) / 1000), [n2]: r2(medRun((x) => x.inProcess[1]!.cpu_ms) / 1000) },
      marginal_cpu_us_per_iteration: med((x) => x.in_process.marginal_cpu_us_per_iteration),
      overall_cpu_us_per_iteration: { [n1]: med((x) => x.in_process.overall_cpu_us_per_iteration[n1]!), [n2]: med((x) => x.in_process.overall_cpu_us_per_iteration[n2]!) },
      loop_cpu_us_per_iteration: { [n1]: med((x) => x.in_process.loop_cpu_us_per_iteration[n1]!), [n2]: med((x) => x.in_process.loop_cpu_us_per_iteration[n2]!) },
      startup_cpu_ms: med((x) => x.in_process.startup_cpu_ms),
      db_bytes: { [n1]: medRun((x) => x.inProcess[0]!.db_bytes), [n2]: medRun((x) => x.inProcess[1]!.db_bytes) }
    },
    repeats: per,
    targets: {
      cli_over_in_process_marginal: { target: `<= ${TARGET_RATIO}`, value: r2(median(per.map((x) => x.ratio_marginal))), repeats: per.map((x) => x.ratio_marginal) },
      cli_over_in_process_overall: { target: `<= ${TARGET_RATIO}`, value: r2(median(per.map((x) => x.ratio_overall))), repeats: per.map((x) => x.ratio_overall) },
      help_wall_ms: { target: `< ${TARGET_HELP_MS}`, value: r1(median(helpWall)) }
    }
  }
  const ratioMet = summary.targets.cli_over_in_process_marginal.value <= TARGET_RATIO
  const overallMet = summary.targets.cli_over_in_process_overall.value <= TARGET_RATIO
  const helpMet = summary.targets.help_wall_ms.value < TARGET_HELP_MS

  const { cli, in_process: ip } = summary
  const pad = (s: string | number, n: number) => String(s).padStart(n)
  log("")
  log(`CPU per iteration, µs (median of ${REPEATS} repeats)  | ${pad("marginal", 8)} | ${pad(`overall ${n1}`, 12)} | ${pad(`overall ${n2}`, 13)} | ${pad("start-up ms", 11)} | ${pad(`wall ${n1} s`, 11)} | ${pad(`wall ${n2} s`, 12)}`)
  log(`CLI (--format jsonl to a pipe)                     | ${pad(cli.marginal_cpu_us_per_iteration, 8)} | ${pad(cli.overall_cpu_us_per_iteration[n1]!, 12)} | ${pad(cli.overall_cpu_us_per_iteration[n2]!, 13)} | ${pad(cli.startup_cpu_ms, 11)} | ${pad(cli.wall_s[n1]!, 11)} | ${pad(cli.wall_s[n2]!, 12)}`)
  log(`in-process (whole process)                         | ${pad(ip.marginal_cpu_us_per_iteration, 8)} | ${pad(ip.overall_cpu_us_per_iteration[n1]!, 12)} | ${pad(ip.overall_cpu_us_per_iteration[n2]!, 13)} | ${pad(ip.startup_cpu_ms, 11)} | ${pad(ip.wall_s[n1]!, 11)} | ${pad(ip.wall_s[n2]!, 12)}`)
  log(`in-process, the loop alone (as bench-loop reports) |          | ${pad(ip.loop_cpu_us_per_iteration[n1]!, 12)} | ${pad(ip.loop_cpu_us_per_iteration[n2]!, 13)} |`)
  log(`CLI stdout: ${cli.stdout_bytes_per_iteration} B per iteration; database after ${n2} iterations: ${cli.db_bytes[n2]} B (CLI), ${ip.db_bytes[n2]} B (in-process)`)
  log("")
  log(`target: CLI ÷ in-process, marginal CPU per iteration: ${summary.targets.cli_over_in_process_marginal.value} (repeats ${per.map((x) => x.ratio_marginal).join(", ")}) ${ratioMet ? "MET" : "NOT MET"} (<= ${TARGET_RATIO})`)
  log(`target: CLI whole process ÷ in-process loop, CPU per iteration at ${n2}: ${summary.targets.cli_over_in_process_overall.value} (repeats ${per.map((x) => x.ratio_overall).join(", ")}) ${overallMet ? "MET" : "NOT MET"} (<= ${TARGET_RATIO})`)
  log(`target: --help ${summary.help.wall_ms.median} ms wall (CPU ${summary.help.cpu_ms.median} ms) ${helpMet ? "MET" : "NOT MET"} (< ${TARGET_HELP_MS} ms)`)
  log(`load average at end ${summary.machine.loadavg_at_end.join(" ")}`)

  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-cli.json"), `${JSON.stringify(summary, null, 2)}\n`)
  log("")
  log("JSON (also in bench-out/bench-cli.json):")
  log(JSON.stringify(summary))
}

if (CHILD !== "") {
  Effect.runPromise(child(Number(CHILD), option("db", ""))).catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
} else {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
