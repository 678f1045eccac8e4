/**
 * Curating stored steps into fine-tuning JSONL: throughput and peak memory of `capture` (every accepted
 * step becomes a sample: its prompt rebuilt, scrubbed, hashed, stored) and of `export` (the dataset
 * streamed out a page at a time, deduplicated, split, every line checked), and what dedup costs a sample.
 *
 *   node --import tsx scripts/bench-curator.ts [--steps=100000] [--per-run=10] [--duplicates=0.05] [--heap=MiB]
 *     [--db=FILE] [--node-flags="--trace-gc ..."]
 *
 * The steps are written straight into a SQLite file (completed runs, step k meeting criterion k, so every
 * step is accepted); the curation then runs in a child process of its own, so its peak RSS is its own.
 */
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Checkpoint } from "../src/domain/Checkpoint.js"
import { BudgetPolicy, BudgetUsage } from "../src/domain/Budget.js"
import { Goal } from "../src/domain/Goal.js"
import { Step } from "../src/domain/Step.js"
import { RunStore } from "../src/store/RunStore.js"
import { StepStore } from "../src/store/StepStore.js"
import * as Storage from "../src/store/Storage.js"
import { option, r1, r2, root } from "./bench-common.js"
import { log, runBench } from "./lib/bench-main.js"

const steps = Number(option("steps", "100000"))
const perRun = Number(option("per-run", "10"))
const duplicates = Number(option("duplicates", "0.05"))
/** V8's old-space cap for the curating process, in MiB (none: V8's own, which lets garbage pile up first). */
const heap = option("heap", "")
/** A generated database to reuse: generated there when absent, copied for each run (which writes to it). */
const db = option("db", "")
/** Extra flags for the curating process's node, space-separated (`--node-flags=--trace-gc`). */
const nodeFlags = option("node-flags", "").split(" ").filter((f) => f !== "")
/**
 * The node flags `autopilot` runs with (its launcher's shebang): the library process is given them too, as
 * the daemon's training loop, which curates, runs under them. `--heap` replaces them.
 */
const cliFlags = (fs.readFileSync(path.join(root, "bin", "autopilot.js"), "utf8").split("\n")[0]!.match(/ (--[a-z-]+=\S+)/g) ?? []).map((f) => f.trim())

const at = "2026-01-01T00:00:00.000Z"

/** Run `i`'s goal and answers; a duplicate run repeats an earlier one's words (its numbers differ). */
const runOf = (i: number) => {
  const source = i > 0 && (i * 7919) % 1000 < duplicates * 1000 ? Math.floor(i / 2) : i
  const topic = `topic-${source.toString(36)}-${"abcdefghijklmnopqrstuvwxyz"[source % 26]}${"zyxwvutsrqponmlkjihgfedcba"[(source >> 5) % 26]}`
  const goal = new Goal({
    objective: `Write the design notes for ${topic}, with its trade-offs and a plan (contact: owner-${source}@example.com)`,
    success_criteria: Array.from({ length: perRun }, (_, k) => `part ${k + 1} of ${topic} is written`) as unknown as readonly [string, ...Array<string>]
  })
  const answer = (k: number) =>
    `## Part ${k} of ${topic}\n\n` +
    `The ${topic} service keeps its state in one table; part ${k} covers ${["reads", "writes", "retries", "limits", "costs"][k % 5]}. `.repeat(4) +
    `\n\n\`\`\`ts\nexport const part${k} = (input: string) => input.trim() + " ${topic}"\n\`\`\``
  return { goal, answer }
}

const usage = (k: number) => new BudgetUsage({ seconds: k, tool_calls: 0, tokens: 1200 * k, dollars: 0.0004 * k, iterations: k })

const generate = (file: string) =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const stepStore = yield* StepStore
    const count = Math.ceil(steps / perRun)
    for (let from = 0; from < count; from += 200) {
      const batch = Array.from({ length: Math.min(200, count - from) }, (_, j) => from + j)
      yield* runs.saveAll(batch.map((i) => {
        const { goal } = runOf(i)
        return new Checkpoint({
          version: 1,
          run_id: `run-${String(i).padStart(6, "0")}`,
          goal,
          policy: new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 }),
          status: "completed",
          halt_reason: null,
          usage: usage(perRun),
          criteria_met: goal.success_criteria.map(() => true),
          output: runOf(i).answer(perRun),
          created_at: at,
          updated_at: at
        })
      }))
      yield* stepStore.append(batch.flatMap((i) => {
        const { answer } = runOf(i)
        return Array.from({ length: perRun }, (_, k) => ({
          runId: `run-${String(i).padStart(6, "0")}`,
          step: new Step({
            iteration: k + 1,
            at,
            model: "gpt-4o-mini",
            answer: answer(k + 1),
            tool_calls: [],
            verdict: "met",
            usage: usage(k + 1),
            criteria_met: Array.from({ length: perRun }, (_, c) => c <= k),
            calls: [
              { purpose: "act", model_used: "gpt-4o-mini", input_tokens: 1000, output_tokens: 200, cost_usd: 0.00027, latency_ms: 900, attempts: 1 },
              { purpose: "judge", model_used: "gpt-4o-mini", input_tokens: 600, output_tokens: 30, cost_usd: 0.0001, latency_ms: 300, attempts: 1 }
            ]
          })
        }))
      }))
    }
  }).pipe(Effect.provide(Storage.layerSqlite(file)))

/**
 * The child: capture and export as the CLI runs them, from the build (`dist/`, not this file's tsx
 * transpilation, which alone costs ~150 MiB), timed, with its own peak RSS.
 */
const childSource = (file: string, out: string) => `
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as Curator from "${root}/dist/curator/Curator.js"
import { hashOf } from "${root}/dist/curator/Fingerprint.js"
import * as CuratorStore from "${root}/dist/store/CuratorStore.js"
import * as MissionStore from "${root}/dist/store/MissionStore.js"
import * as Storage from "${root}/dist/store/Storage.js"
import { calculator } from "${root}/dist/tools/Calculator.js"
import { Toolkit } from "${root}/dist/tools/Tool.js"
// Memory sampled every 50 ms (when the loop turns): the peak of each part, and where it was at each phase's end.
const MiB = 1048576
const memory = { peak: { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 }, at: {} }
const measure = () => {
  const u = process.memoryUsage()
  for (const k of Object.keys(memory.peak)) memory.peak[k] = Math.max(memory.peak[k], u[k] / MiB)
  return Object.fromEntries(Object.keys(memory.peak).map((k) => [k, u[k] / MiB]))
}
const sampler = setInterval(measure, 50)
sampler.unref()
const program = Effect.gen(function*() {
  const curator = yield* Curator.Curator
  const baseline = process.memoryUsage().rss / MiB
  memory.at.built = measure()
  const t0 = performance.now()
  const captured = yield* curator.capture
  const t1 = performance.now()
  const capturePeak = process.resourceUsage().maxRSS / 1024
  memory.at.captured = measure()
  const exported = yield* curator.export("all", { out: ${JSON.stringify(out)}, split: "train" })
  const t2 = performance.now()
  const peak = process.resourceUsage().maxRSS / 1024
  memory.at.exported = measure()
  clearInterval(sampler)
  // Dedup's cost per sample: the normalized hash (paid once, at capture) and the set lookup (at export).
  const store = yield* CuratorStore.CuratorStore
  const sample = yield* store.page({ completed_only: true, max_tokens: 1000000 }, 0, 1000)
  const h0 = performance.now()
  for (const s of sample) hashOf(s.sample.messages)
  const h1 = performance.now()
  const seen = new Set()
  for (let round = 0; round < 100; round++) for (const s of sample) seen.add(round + s.hash)
  const h2 = performance.now()
  return {
    capture_ms: t1 - t0, export_ms: t2 - t1, captured, exported,
    hash_us: ((h1 - h0) * 1000) / sample.length, set_us: ((h2 - h1) * 1000) / (sample.length * 100),
    baseline_rss_mib: baseline, capture_peak_mib: capturePeak, max_rss_mib: peak, memory
  }
}).pipe(Effect.provide(Curator.layer().pipe(
  Layer.provideMerge(Layer.mergeAll(CuratorStore.layer, MissionStore.layer)),
  Layer.provideMerge(Layer.mergeAll(Storage.layerSqlite(${JSON.stringify(file)}), Toolkit.layer([calculator]), NodeContext.layer))
)))
Effect.runPromise(program).then((r) => process.stdout.write(JSON.stringify(r) + "\\n"), (e) => { process.stderr.write(String(e) + "\\n"); process.exit(1) })
`

runBench({
  name: "bench-curator",
  title: `curator: ${steps} steps in runs of ${perRun}, ${duplicates * 100}% duplicate runs, node ${heap === "" ? cliFlags.join(" ") || "defaults" : `--max-old-space-size=${heap}`}`,
  keep: false,
  main: async ({ tmp }) => {
    const file = path.join(tmp, "a.db")
    const out = path.join(tmp, "train.jsonl")
    if (db === "" || !fs.existsSync(db)) {
      const g0 = performance.now()
      await Effect.runPromise(generate(db === "" ? file : db))
      log(`generated ${steps} steps in ${r1((performance.now() - g0) / 1000)} s${db === "" ? "" : ` into ${db}`}`)
    }
    if (db !== "") {
      fs.copyFileSync(db, file)
      log(`curating a copy of ${db} (generated earlier: --steps, --per-run and --duplicates are its own)`)
    }
    const child = execFileSync(
      process.execPath,
      [...(heap === "" ? cliFlags : [`--max-old-space-size=${heap}`]), ...nodeFlags, "--input-type=module", "-e", childSource(file, out)],
      { cwd: root, encoding: "utf8", maxBuffer: 1 << 20 }
    )
    const r = JSON.parse(child.trim().split("\n").at(-1)!)
    const total = r.captured.samples
    log(`capture: ${r.captured.runs} runs, ${total} samples in ${r1(r.capture_ms / 1000)} s = ${Math.round(total / (r.capture_ms / 1000))} samples/s`)
    log(
      `export (all, train): ${r.exported.written} lines, ${r2(r.exported.bytes / 1048576)} MiB in ${r1(r.export_ms / 1000)} s = ` +
        `${Math.round(total / (r.export_ms / 1000))} samples/s read; ${r.exported.duplicates} duplicates, ${r.exported.other_split} eval, ${r.exported.invalid} invalid`
    )
    log(`end to end: ${Math.round(total / ((r.capture_ms + r.export_ms) / 1000))} steps/s; peak RSS of the curating process ${r1(r.max_rss_mib)} MiB (target < 256)`)
    log(`  RSS with the curator built, before any work: ${r1(r.baseline_rss_mib)} MiB; peak after capture ${r1(r.capture_peak_mib)} MiB`)
    const m = r.memory
    const parts = (u: { readonly rss: number; readonly heapUsed: number; readonly heapTotal: number; readonly external: number; readonly arrayBuffers: number }) => `rss ${r1(u.rss)}, heap ${r1(u.heapUsed)} used of ${r1(u.heapTotal)}, external ${r1(u.external)} (array buffers ${r1(u.arrayBuffers)})`
    log(`  memory (MiB, sampled every 50 ms): peaks ${parts(m.peak)}`)
    for (const phase of ["built", "captured", "exported"]) log(`    ${phase}: ${parts(m.at[phase])}`)
    log(`dedup per sample: normalized hash ${r2(r.hash_us)} µs (at capture), set lookup ${r2(r.set_us)} µs (at export)`)

    // The command as users run it: bin/autopilot.js executed (its shebang's node flags apply), on a fresh copy.
    const again = path.join(tmp, "cli.db")
    fs.copyFileSync(db === "" ? file : db, again)
    const cli = await peakOf(path.join(root, "bin", "autopilot.js"), ["curator", "export", "all", "--out", path.join(tmp, "cli.jsonl"), "--db", again])
    log(`autopilot curator export all (capture and export, the installed command): ${r1(cli.seconds)} s, peak RSS ${r1(cli.peak_mib)} MiB (target < 256)`)
    log(`  ${cli.stdout.trim()}`)
  }
})

/** Runs an executable to its end, sampling its peak RSS (VmHWM, Linux's high-water mark) every 20 ms. */
function peakOf(command: string, args: ReadonlyArray<string>) {
  return new Promise<{ readonly seconds: number; readonly peak_mib: number; readonly stdout: string }>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    let peak = 0
    child.stdout.on("data", (chunk) => (stdout += chunk))
    const sample = () => {
      try {
        const kib = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0)
        peak = Math.max(peak, kib / 1024)
      } catch {
        // Gone between two samples: the last one read stands.
      }
    }
    const timer = setInterval(sample, 20)
    child.on("exit", (code) => {
      clearInterval(timer)
      if (code === 0) resolve({ seconds: (performance.now() - t0) / 1000, peak_mib: peak, stdout })
      else reject(new Error(`${command} ${args.join(" ")} exited ${code}`))
    })
  })
}
