/**
 * autopilot side by side with Restate, in one run: a fan-out of 500 children × 5 durable steps each,
 * throughput per durable step. Run with `npm run bench:restate`.
 *
 *   node --import tsx scripts/bench-restate.ts [--children=500] [--steps=5] [--repeats=3] [--sync=NORMAL,FULL]
 *                                              [--reinstall] [--keep]
 *
 * Restate is not a dependency of this project: on first use `@restatedev/restate-server` (whose
 * `@restatedev/restate-server-linux-x64` ships the server binary) and `@restatedev/restate-sdk` are
 * installed, exact versions below, into a folder under the system's temp directory (npm install --prefix,
 * --ignore-scripts: a dependency's install script would report the install to a tracking service) and run
 * from there. None of it is committed. The SDK is 1.12.0, the newest TypeScript SDK that runs on this
 * project's Node 20: later ones call `Promise.withResolvers` (Node 22) when a handler is invoked.
 *
 * Restate: a single-node restate-server (all roles, its defaults: a replicated loglet on this node, WAL
 * fsync on) with a temp data dir, ingress, admin and node ports on 127.0.0.1, telemetry off. It and the
 * SDK endpoint run inside a network namespace of their own with only loopback (`unshare --net`): the
 * server looks for a newer release on GitHub at start-up, and here nothing may leave the machine. The
 * endpoint (this script with `--child=endpoint`, a separate Node process, HTTP/2) serves two services:
 * `parent.fanout` calls `child.run` once per child and awaits all of them (RestatePromise.all);
 * `child.run` does `--steps` durable steps, each `ctx.run(name, () => value)`, journaled by the server
 * before the handler goes on. Measured: one POST to the ingress `/parent/fanout` until its answer, which
 * is checked (children count and the sum of every step's value); CPU of the server and the endpoint
 * from /proc.
 *
 * autopilot: the same fan-out as `--children` concurrent `Mission.run` sessions (this script with
 * `--child=autopilot`), one shared Storage on a new SQLite file, each child `--steps` iterations on the
 * mock model with no latency (the 1,024-character turn of scripts/bench-common.ts; 2 criteria never met;
 * only the iteration axis capped), tracing off as the CLI runs. A durable step is one committed iteration:
 * its step row, its events and its checkpoint in one transaction, shared with whatever other children
 * commit at the same time (src/store/GroupCommit.ts). Checked: every child's checkpoint says `halted`
 * after exactly `--steps` iterations. Measured at each `--sync` (SQLite `synchronous`: NORMAL, the
 * default, safe from a process crash; FULL, an fsync per commit, as Restate's log does).
 *
 * Both sides do one warm-up fan-out of the same size first (JIT, connections, the server's partitions),
 * then `--repeats` measured ones; the median is reported. Throughput per durable step = children × steps
 * / wall time. Target: autopilot ≥ 5× Restate's (the issue measured Restate at 1.55 s). A table goes to
 * stdout, then JSON, also written to bench-out/bench-restate.json.
 */
import { Effect, Layer, Schema } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Goal } from "../src/domain/Goal.js"
import { MockLlm, MockScript } from "../src/llm/MockLlm.js"
import * as Mission from "../src/runtime/Mission.js"
import * as Storage from "../src/store/Storage.js"
import { Toolkit } from "../src/tools/Tool.js"
import { criteria, machine, median, mockScript, objective, option, policyFor, r1, r2, root, Sqlite, timed } from "./bench-common.js"

const CHILDREN = Number(option("children", "500"))
const STEPS = Number(option("steps", "5"))
const REPEATS = Number(option("repeats", "3"))
const SYNC = option("sync", "NORMAL,FULL").split(",") as Array<"NORMAL" | "FULL">
const REINSTALL = process.argv.includes("--reinstall")
const KEEP = process.argv.includes("--keep")
const CHILD = option("child", "")

const TARGET_RATIO = 5
const ISSUE_RESTATE_S = 1.55
/** How long the server may take to start, an invocation to answer, the server to stop. */
const START_TIMEOUT_MS = 60_000
const INVOKE_TIMEOUT_MS = 300_000
const STOP_TIMEOUT_MS = 20_000

/** Exact versions: a re-run measures the same Restate. */
const restatePackages = {
  "@restatedev/restate-server": "1.7.12",
  "@restatedev/restate-sdk": "1.12.0"
}
const depsDir = path.join(os.tmpdir(), `autopilot-bench-restate-${Object.values(restatePackages).join("-")}`)
const depsRequire = () => createRequire(path.join(depsDir, "package.json"))

// ------------------------------------------------------------------------------------------- install

const install = () => {
  if (!REINSTALL && fs.existsSync(path.join(depsDir, "node_modules", "@restatedev", "restate-sdk"))) return false
  fs.rmSync(depsDir, { recursive: true, force: true })
  fs.mkdirSync(depsDir, { recursive: true })
  fs.writeFileSync(path.join(depsDir, "package.json"), JSON.stringify({ name: "autopilot-bench-restate", private: true }))
  execFileSync("npm", [
    "install", "--prefix", depsDir, "--no-audit", "--no-fund", "--ignore-scripts", "--no-save",
    ...Object.entries(restatePackages).map(([name, version]) => `${name}@${version}`)
  ], { stdio: ["ignore", "inherit", "inherit"] })
  return true
}

/** The server binary the npm package ships for this platform; throws, saying why, if there is none. */
const serverBinary = () => {
  const name = `@restatedev/restate-server-${os.platform()}-${os.arch()}/bin/restate-server`
  try {
    return depsRequire().resolve(name)
  } catch {
    throw new Error(`@restatedev/restate-server ${restatePackages["@restatedev/restate-server"]} ships no binary for ${os.platform()}-${os.arch()} (${name} is not in ${depsDir})`)
  }
}

const installedVersions = () =>
  Object.fromEntries(
    ["@restatedev/restate-server", `@restatedev/restate-server-${os.platform()}-${os.arch()}`, "@restatedev/restate-sdk", "@restatedev/restate-sdk-core"].map((name) => {
      const manifest = JSON.parse(fs.readFileSync(path.join(depsDir, "node_modules", name, "package.json"), "utf8")) as { version: string }
      return [name, manifest.version]
    })
  )

// ------------------------------------------------------------------------------------- restate child

/** What this script uses of the SDK, typed as far as it relies on it. */
interface RestateContext {
  run<A>(name: string, action: () => A): PromiseLike<A>
  serviceClient(service: unknown): { run(input: { index: number; steps: number }): PromiseLike<number> }
}
interface RestateSdk {
  service<I>(definition: { name: string; handlers: Record<string, (ctx: RestateContext, input: I) => Promise<unknown>> }): unknown
  serve(options: { services: ReadonlyArray<unknown>; port: number }): Promise<number>
  RestatePromise: { all<A>(promises: ReadonlyArray<PromiseLike<A>>): Promise<Array<A>> }
}

/** The SDK endpoint: `parent.fanout` calls `child.run` per child; each child does `steps` durable steps. */
const endpoint = async (port: number) => {
  const restate = depsRequire()("@restatedev/restate-sdk") as RestateSdk
  const child = restate.service({
    name: "child",
    handlers: {
      run: async (ctx, input: { index: number; steps: number }) => {
        let total = 0
        for (let s = 0; s < input.steps; s++) total += await ctx.run(`step-${s}`, () => input.index * input.steps + s)
        return total
      }
    }
  })
  const parent = restate.service({
    name: "parent",
    handlers: {
      fanout: async (ctx, input: { children: number; steps: number }) => {
        const calls = Array.from({ length: input.children }, (_, index) => ctx.serviceClient(child).run({ index, steps: input.steps }))
        const results = await restate.RestatePromise.all(calls)
        return { children: results.length, sum: results.reduce((a, b) => a + b, 0) }
      }
    }
  })
  const bound = await restate.serve({ services: [parent, child], port })
  process.stdout.write(`listening ${bound}\n`)
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it holds, failing after `ms` with `what` and the log so far. */
const waitFor = async (what: string, ms: number, check: () => Promise<boolean>, log: () => string) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`${what} not ready after ${ms / 1000} s:\n${log()}`)
}

/** User + system CPU of a live process, from /proc, in ms. */
const cpuOf = (pid: number) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

/** Stops a child: SIGTERM, then SIGKILL after `ms`. */
const stop = (child: ChildProcess, ms: number) =>
  new Promise<"exited" | "killed">((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve("exited")
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve("killed")
    }, ms)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve("exited")
    })
    child.kill("SIGTERM")
  })

interface Invocation {
  readonly wall_ms: number
  readonly server_cpu_ms: number
  readonly endpoint_cpu_ms: number
}

/** Runs inside its own network namespace: the server, the endpoint, the invocations; prints one JSON line. */
const restateChild = async () => {
  const binary = serverBinary()
  const [ingress, admin, node, service] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-restate-data-"))
  let serverLog = ""
  let endpointLog = ""
  const server = spawn(binary, ["--no-logo", "--base-dir", dataDir, "--node-name", "bench"], {
    env: {
      ...process.env,
      RESTATE_DISABLE_TELEMETRY: "true",
      RESTATE_BIND_IP: "127.0.0.1",
      RESTATE_BIND_PORT: String(node),
      RESTATE_INGRESS__BIND_PORT: String(ingress),
      RESTATE_ADMIN__BIND_PORT: String(admin),
      RESTATE_ADMIN__DISABLE_WEB_UI: "true",
      RESTATE_LOG_FILTER: "warn",
      RESTATE_LOG_DISABLE_ANSI_CODES: "true",
      RESTATE_SHUTDOWN_TIMEOUT: "10s"
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  server.stdout!.on("data", (c: Buffer) => void (serverLog += c.toString("utf8")))
  server.stderr!.on("data", (c: Buffer) => void (serverLog += c.toString("utf8")))
  const endpointProcess = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts", "bench-restate.ts"), "--child=endpoint", `--port=${service}`], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"]
  })
  endpointProcess.stdout!.on("data", (c: Buffer) => void (endpointLog += c.toString("utf8")))
  endpointProcess.stderr!.on("data", (c: Buffer) => void (endpointLog += c.toString("utf8")))
  // However this process ends, nothing it started outlives it.
  process.on("exit", () => {
    server.kill("SIGKILL")
    endpointProcess.kill("SIGKILL")
  })
  try {
    const base = (port: number) => `http://127.0.0.1:${port}`
    await waitFor("restate-server", START_TIMEOUT_MS, async () => (await fetch(`${base(admin)}/health`)).ok, () => serverLog)
    await waitFor("the SDK endpoint", START_TIMEOUT_MS, async () => endpointLog.includes("listening "), () => endpointLog)
    const registered = await fetch(`${base(admin)}/deployments`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ uri: base(service) })
    })
    if (!registered.ok) throw new Error(`registering the endpoint failed: ${registered.status} ${await registered.text()}`)
    const expectedSum = (CHILDREN * STEPS * (CHILDREN * STEPS - 1)) / 2
    const invoke = async (): Promise<Invocation> => {
      const cpu0 = [cpuOf(server.pid!), cpuOf(endpointProcess.pid!)]
      const started = performance.now()
      const response = await fetch(`${base(ingress)}/parent/fanout`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ children: CHILDREN, steps: STEPS }),
        signal: AbortSignal.timeout(INVOKE_TIMEOUT_MS)
      })
      const body = await response.text()
      const wall = performance.now() - started
      const answer = JSON.parse(body) as { children?: number; sum?: number }
      if (!response.ok || answer.children !== CHILDREN || answer.sum !== expectedSum) {
        throw new Error(`the fan-out answered ${response.status} ${body}; expected ${CHILDREN} children summing to ${expectedSum}`)
      }
      return { wall_ms: r1(wall), server_cpu_ms: r1(cpuOf(server.pid!) - cpu0[0]!), endpoint_cpu_ms: r1(cpuOf(endpointProcess.pid!) - cpu0[1]!) }
    }
    const warmup = await invoke()
    const measured: Array<Invocation> = []
    for (let r = 0; r < REPEATS; r++) measured.push(await invoke())
    process.stdout.write(`${JSON.stringify({ warmup, measured })}\n`)
  } finally {
    const stopped = { endpoint: await stop(endpointProcess, STOP_TIMEOUT_MS), server: await stop(server, STOP_TIMEOUT_MS) }
    if (stopped.server === "killed") process.stderr.write(`restate-server did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM and was killed\n`)
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

// ----------------------------------------------------------------------------------- autopilot child

interface Round {
  readonly wall_ms: number
  readonly cpu_ms: number
}

/** The fan-out as concurrent sessions on one Storage, warm-up first; prints one JSON line. */
const autopilotChild = (db: string) => {
  const script = Schema.decodeUnknownSync(MockScript)(mockScript)
  const round = (tag: string) =>
    Effect.gen(function*() {
      const cpu0 = process.cpuUsage()
      const started = performance.now()
      yield* Effect.forEach(
        Array.from({ length: CHILDREN }, (_, index) => index),
        (index) =>
          Mission.run({
            runId: `${tag}.${index}-item-${index}`,
            goal: new Goal({ objective: `${objective}: item ${index}`, success_criteria: criteria }),
            policy: policyFor(STEPS)
          }),
        { concurrency: "unbounded", discard: true }
      )
      const cpu = process.cpuUsage(cpu0)
      return { wall_ms: r1(performance.now() - started), cpu_ms: r1((cpu.user + cpu.system) / 1000) } satisfies Round
    })
  return Effect.gen(function*() {
    const warmup = yield* round("warmup")
    const measured: Array<Round> = []
    for (let r = 0; r < REPEATS; r++) measured.push(yield* round(`repeat-${r}`))
    return { warmup, measured }
  }).pipe(
    Effect.provide(Layer.mergeAll(Storage.layerSqlite(db), MockLlm.layer(script), Toolkit.layer([]))),
    Effect.withTracerEnabled(false)
  )
}

/** Children whose checkpoint says `halted` after exactly `--steps` iterations, per round. */
const auditAutopilot = (db: string) => {
  const file = new Sqlite(db)
  const rows = file.prepare(
    `SELECT substr(run_id, 1, instr(run_id, '.') - 1) AS round, COUNT(*) AS n FROM checkpoints
     WHERE json_valid(state) AND json_extract(state, '$.status') = 'halted' AND json_extract(state, '$.usage.iterations') = ?
     GROUP BY round`
  ).all(STEPS) as Array<{ round: string; n: number }>
  const steps = (file.prepare("SELECT COUNT(*) AS n FROM steps").get() as { n: number }).n
  file.close()
  return { complete_children_per_round: Object.fromEntries(rows.map((r) => [r.round, r.n])), steps }
}

// ------------------------------------------------------------------------------------------------- main

const lastJson = <A>(out: string): A => JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as A

const runRestate = async () => {
  let out = ""
  // A network namespace of its own with only loopback: nothing the server or the SDK attempts can leave.
  const run = await timed("unshare", [
    "--net", "--", "bash", "-c", 'ip link set lo up && exec "$0" "$@"',
    process.execPath, "--import", "tsx", path.join(root, "scripts", "bench-restate.ts"), "--child=restate",
    `--children=${CHILDREN}`, `--steps=${STEPS}`, `--repeats=${REPEATS}`
  ], { onStdout: (chunk) => void (out += chunk.toString("utf8")) })
  if (run.exitCode !== 0) throw new Error(`the Restate side failed (exit ${run.exitCode}): ${out}\n${run.stderr}`)
  return { ...lastJson<{ warmup: Invocation; measured: Array<Invocation> }>(out), process_wall_ms: run.wall_ms }
}

const runAutopilot = async (sync: string, dir: string) => {
  const db = path.join(dir, `autopilot-${sync}.db`)
  let out = ""
  const run = await timed(process.execPath, [
    "--import", "tsx", path.join(root, "scripts", "bench-restate.ts"), "--child=autopilot", `--db=${db}`,
    `--children=${CHILDREN}`, `--steps=${STEPS}`, `--repeats=${REPEATS}`
  ], { env: { ...process.env, AUTOPILOT_DB_SYNC: sync }, onStdout: (chunk) => void (out += chunk.toString("utf8")) })
  if (run.exitCode !== 0) throw new Error(`autopilot (${sync}) exited ${run.exitCode}: ${out}\n${run.stderr}`)
  const audit = auditAutopilot(db)
  const complete = Object.values(audit.complete_children_per_round)
  if (complete.length !== REPEATS + 1 || complete.some((n) => n !== CHILDREN)) {
    throw new Error(`autopilot (${sync}) left incomplete children: ${JSON.stringify(audit)}`)
  }
  return { ...lastJson<{ warmup: Round; measured: Array<Round> }>(out), process_wall_ms: run.wall_ms, audit }
}

const main = async () => {
  const env = machine()
  const log = (line: string) => process.stdout.write(`${line}\n`)
  log(`autopilot vs Restate: ${env.date}, node ${env.node}, SQLite ${env.sqlite}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, commit ${env.commit}`)
  const installed = install()
  const binary = serverBinary()
  const serverVersion = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim()
  log(`Restate ${installed ? "installed into" : "already in"} ${depsDir}: ${JSON.stringify(installedVersions())}; ${serverVersion}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-restate-"))

  const restate = await runRestate()
  log(`restate   : warm-up ${r2(restate.warmup.wall_ms / 1000)} s; measured ${restate.measured.map((m) => `${r2(m.wall_ms / 1000)} s`).join(", ")}`)
  const autopilot: Record<string, Awaited<ReturnType<typeof runAutopilot>>> = {}
  for (const sync of SYNC) {
    autopilot[sync] = await runAutopilot(sync, dir)
    log(`autopilot, synchronous=${sync}: warm-up ${r2(autopilot[sync].warmup.wall_ms / 1000)} s; measured ${autopilot[sync].measured.map((m) => `${r2(m.wall_ms / 1000)} s`).join(", ")}`)
  }
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })

  const durableSteps = CHILDREN * STEPS
  const restateWall = median(restate.measured.map((m) => m.wall_ms))
  const restateSide = {
    wall_s: r2(restateWall / 1000),
    steps_per_s: Math.round(durableSteps / (restateWall / 1000)),
    server_cpu_s: r2(median(restate.measured.map((m) => m.server_cpu_ms)) / 1000),
    endpoint_cpu_s: r2(median(restate.measured.map((m) => m.endpoint_cpu_ms)) / 1000),
    runs: restate
  }
  const autopilotSides = Object.fromEntries(SYNC.map((sync) => {
    const wall = median(autopilot[sync]!.measured.map((m) => m.wall_ms))
    const stepsPerS = durableSteps / (wall / 1000)
    return [sync, {
      wall_s: r2(wall / 1000),
      steps_per_s: Math.round(stepsPerS),
      cpu_s: r2(median(autopilot[sync]!.measured.map((m) => m.cpu_ms)) / 1000),
      ratio_to_restate: r2(stepsPerS / restateSide.steps_per_s),
      ratio_to_restate_as_issue_measured: r2(stepsPerS / (durableSteps / ISSUE_RESTATE_S)),
      met: stepsPerS / restateSide.steps_per_s >= TARGET_RATIO,
      runs: autopilot[sync]
    }]
  }))
  const summary = {
    machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
    command: ["node --import tsx scripts/bench-restate.ts", ...process.argv.slice(2)].join(" "),
    options: { children: CHILDREN, steps: STEPS, repeats: REPEATS, sync: SYNC },
    restate: { folder: depsDir, versions: installedVersions(), server: serverVersion },
    durable_steps_per_fanout: durableSteps,
    results: { restate: restateSide, autopilot: autopilotSides },
    target: `autopilot >= ${TARGET_RATIO}x Restate's throughput per durable step (the issue measured Restate at ${ISSUE_RESTATE_S} s)`
  }

  log("")
  log(`${CHILDREN} children × ${STEPS} durable steps (${durableSteps}), median of ${REPEATS} | wall s | steps/s | CPU s | × Restate`)
  log(`restate (server + endpoint CPU)                   | ${String(restateSide.wall_s).padStart(6)} | ${String(restateSide.steps_per_s).padStart(7)} | ${String(r2(restateSide.server_cpu_s + restateSide.endpoint_cpu_s)).padStart(5)} |`)
  for (const sync of SYNC) {
    const a = autopilotSides[sync]!
    log(`${`autopilot, synchronous=${sync}`.padEnd(50)}| ${String(a.wall_s).padStart(6)} | ${String(a.steps_per_s).padStart(7)} | ${String(a.cpu_s).padStart(5)} | ${a.ratio_to_restate}× (target ≥ ${TARGET_RATIO}×: ${a.met ? "MET" : "NOT MET"})`)
  }
  log(`load average at end ${summary.machine.loadavg_at_end.join(" ")}`)

  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-restate.json"), `${JSON.stringify(summary, null, 2)}\n`)
  log("")
  log("JSON (also in bench-out/bench-restate.json):")
  log(JSON.stringify(summary))
}

const fail = (error: unknown) => {
  console.error(error)
  process.exitCode = 1
}

if (CHILD === "endpoint") {
  endpoint(Number(option("port", "9080"))).catch(fail)
} else if (CHILD === "restate") {
  restateChild().catch(fail).finally(() => process.exit())
} else if (CHILD === "autopilot") {
  Effect.runPromise(autopilotChild(option("db", ""))).then((f) => process.stdout.write(`${JSON.stringify(f)}\n`)).catch(fail)
} else {
  main().catch(fail)
}
