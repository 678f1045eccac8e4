/**
 * The soak: `AUTOPILOT_SOAK=<seconds> npm run soak` drives the real system for that long and proves that
 * every promise holds under faults (README "The soak").
 *
 * What runs: daemons of the built CLI (`node bin/autopilot.js daemon`, with the launcher's node flags) on one
 * database: a steady one that faults never touch, whose memory is judged, and one runner (two on Postgres)
 * that faults kill and start again; `autopilot serve` for live event streams; a stream of work submitted as
 * a user submits it (`queue add`, `goal` + `approve`, `fanout` processes). The model is the one the usual
 * variables configure (AUTOPILOT_LLM_BASE_URL, _API_KEY, _MODEL), behind a fault proxy of this process's,
 * or else the embedded mock with a script drawn from the seed: realistic latency and scripted failures.
 *
 * Faults come on the seed's schedule (src/soak/FaultPlan.ts). The books are audited while it runs and at the
 * end (src/soak/Ledger.ts); memory, database bytes per iteration and event lag are judged at the end; the
 * report (report.md, soak.json and SVG plots) goes to the output folder. Exit 0: every check passed;
 * 1: some failed (the report says which); 2: bad input (one line).
 */
import { SqlClient } from "@effect/sql"
import * as Sse from "@effect/experimental/Sse"
import { Cause, Effect, Either, Layer, ManagedRuntime, Schema, Stream } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { AutopilotEventJson } from "../src/domain/Event.js"
import * as FaultPlan from "../src/soak/FaultPlan.js"
import * as Ledger from "../src/soak/Ledger.js"
import * as MemoryTrend from "../src/soak/MemoryTrend.js"
import * as SoakConfig from "../src/soak/SoakConfig.js"
import * as SoakReport from "../src/soak/SoakReport.js"
import { RunStore } from "../src/store/RunStore.js"
import * as Database from "../src/store/Database.js"
import * as Storage from "../src/store/Storage.js"
import { root } from "./bench-common.js"

const say = (line: string) => void process.stdout.write(`soak: ${line}\n`)
const refuse = (line: string): never => {
  process.stderr.write(`soak: ${line}\n`)
  process.exit(2)
}

const configured = SoakConfig.fromEnv(process.env, new Date(), crypto.randomInt(0, 1_000_000_000))
if (Either.isLeft(configured)) refuse(configured.left)
const config = (configured as Either.Right<string, SoakConfig.SoakConfig>).right

/** The build under test: this checkout's by default; another (`AUTOPILOT_SOAK_CLI`) to soak that one. */
const cli = process.env.AUTOPILOT_SOAK_CLI ?? path.join(root, "bin", "autopilot.js")
if (!fs.existsSync(cli)) refuse(`AUTOPILOT_SOAK_CLI must name a build's bin/autopilot.js; "${cli}" does not exist (run \`npm run build\` for this checkout's)`)
const nodeFlags = (fs.readFileSync(cli, "utf8").split("\n")[0]!.match(/ (--[a-z-]+=\S+)/g) ?? []).map((f) => f.trim())
const probe = path.join(root, "scripts", "lib", "memory-probe.mjs")

const out = path.resolve(config.out)
const home = path.join(out, "home")
const started = Date.now()
const elapsed = () => (Date.now() - started) / 1000
const deadline = started + config.seconds * 1000

// --- Reachability: a model or database the soak cannot reach is bad input, before anything starts ------

const reachModel = async () => {
  if (config.model._tag !== "OpenAi") return
  const url = `${config.model.baseUrl.replace(/\/$/, "")}/models`
  try {
    const answer = await fetch(url, { headers: { authorization: `Bearer ${config.model.apiKey}` }, signal: AbortSignal.timeout(10_000) })
    if (answer.status === 401 || answer.status === 403) refuse(`the model endpoint ${shown(config.model.baseUrl)} refused AUTOPILOT_LLM_API_KEY (HTTP ${answer.status})`)
  } catch (error) {
    refuse(`the model endpoint ${shown(config.model.baseUrl)} is unreachable: ${error instanceof Error ? (error.cause as Error | undefined)?.message ?? error.message : String(error)}`)
  }
}

const databaseLayer = config.database._tag === "Postgres" ? Storage.layerPg(config.database.url) : Storage.layerSqlite(path.join(out, "soak.db"))
const reachDatabase = async () => {
  if (config.database._tag !== "Postgres") return
  const exit = await Effect.runPromiseExit(Effect.scoped(Layer.build(Storage.layerPg(config.database.url)).pipe(Effect.timeout("15 seconds"))))
  if (exit._tag === "Failure") {
    const error = Cause.squash(exit.cause)
    refuse(`the database AUTOPILOT_DATABASE_URL names is unreachable: ${oneLine(error instanceof Error ? error.message : String(error))}`)
  }
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim().slice(0, 300)

/** A URL as printed: its origin and path, never credentials it may carry. */
const shown = (url: string) => {
  const u = new URL(url)
  return `${u.origin}${u.pathname}`
}

// --- Processes -----------------------------------------------------------------------------------------

interface Proc {
  readonly name: string
  readonly child: ChildProcess
  /** Its latest lines (all of them are in its log file): a soak of days keeps no process's whole output. */
  readonly lines: Array<string>
  readonly exited: Promise<number | string>
}

/** How many of a long-lived process's latest lines are kept in memory, to wait for one or to quote on failure (a fan-out's: 20). */
const keptLines = 200

const all: Array<Proc> = []
const dbFlags = config.database._tag === "Postgres" ? ["--database", config.database.url] : ["--db", path.join(out, "soak.db")]
const baseEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  AUTOPILOT_HOME: home,
  ...(config.model._tag === "OpenAi"
    ? { AUTOPILOT_LLM_BASE_URL: "", AUTOPILOT_LLM_API_KEY: config.model.apiKey, ...(config.model.model === undefined ? {} : { AUTOPILOT_LLM_MODEL: config.model.model }) }
    : {})
}

/** Starts `autopilot ...args` as a long-lived process; its lines go to `<name>.log` and to `onLine`. */
const startCli = (
  name: string,
  args: ReadonlyArray<string>,
  memory: boolean,
  env: NodeJS.ProcessEnv = {},
  onLine: (line: string) => void = () => {}
): Proc => {
  const log = fs.createWriteStream(path.join(out, "logs", `${name}.log`), { flags: "a" })
  const child = spawn(process.execPath, [...nodeFlags, ...(memory ? ["--import", probe] : []), cli, ...args], {
    cwd: out,
    env: { ...baseEnv, ...modelEnv(), ...env, ...(memory ? { AUTOPILOT_MEMORY_PROBE: path.join(out, "memory", `${name}.jsonl`), AUTOPILOT_MEMORY_PROBE_MS: "2000" } : {}) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line === "") continue
      lines.push(line)
      if (lines.length > (memory ? keptLines : 20)) lines.shift()
      log.write(`${line}\n`)
      onLine(line)
    }
  }
  child.stdout!.on("data", take)
  child.stderr!.on("data", take)
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => {
    log.end()
    resolve(code ?? signal ?? "gone")
  }))
  const proc = { name, child, lines, exited }
  all.push(proc)
  return proc
}

/** Runs `autopilot ...args` to its end: its stdout, or the failure with stderr's last line. */
const runCli = (args: ReadonlyArray<string>) =>
  new Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resolve) =>
    execFile(process.execPath, [...nodeFlags, cli, ...args], { cwd: out, env: { ...baseEnv, ...modelEnv() }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))

const waitLine = (proc: Proc, pattern: RegExp, seconds: number) =>
  new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setInterval(() => {
      for (const line of proc.lines) {
        const m = line.match(pattern)
        if (m !== null) {
          clearInterval(timer)
          return resolve(m)
        }
      }
      if (proc.child.exitCode !== null || Date.now() > limit) {
        clearInterval(timer)
        reject(new Error(`${proc.name} did not print ${pattern} within ${seconds} s: ${proc.lines.slice(-3).join(" | ")}`))
      }
    }, 100)
    const limit = Date.now() + seconds * 1000
  })

// --- The model: the mock's script, or a fault proxy in front of the real endpoint -------------------------

const outageFile = path.join(out, "outage")
let proxyMode: { readonly status: 429 | 503; readonly until: number } | undefined
let proxyUrl = ""

const modelEnv = (): NodeJS.ProcessEnv => (config.model._tag === "OpenAi" ? { AUTOPILOT_LLM_BASE_URL: proxyUrl } : {})
const modelFlags = () => (config.model._tag === "OpenAi" ? ["--llm", "openai"] : ["--mock-script", path.join(out, "mock-script.json")])

/**
 * The mock's script, from the seed: latency like a hosted model's (a long-tailed 300 ms to 3 s), an answer
 * of a few hundred tokens, criterion k met on turn k (so a run with c criteria needs c iterations), and a
 * transient failure scripted every seventh turn, which a retry gets past.
 */
const mockScript = (seed: number) => {
  let x = seed || 1
  const next = () => ((x = (x * 48271) % 2147483647) / 2147483647)
  const latency = () => Math.round(Math.min(3000, 300 * Math.exp(Math.abs(next() + next() + next() - 1.5) * 1.3)))
  const turns = Array.from({ length: 24 }, (_, i) =>
    i % 7 === 6
      ? { error: "mock upstream: 502 Bad Gateway (scripted)", transient: true, latency_ms: latency() }
      : {
        content: `## Part ${i + 1}\n\n${"The work goes on with care; every part is checked against its criterion. ".repeat(6)}`,
        criteria_met: Array.from({ length: i + 1 }, () => true),
        latency_ms: latency()
      })
  // A mission's nodes answer what their output schema asks (the mock's instance of it), at the same latency.
  const nodes = Object.fromEntries(missionNodes.map((node) => [node, Array.from({ length: 6 }, () => ({ latency_ms: latency() }))]))
  return { latency_ms: 400, repeat_last: true, outage_file: outageFile, turns, nodes }
}

/** The nodes of the blueprints the soak's goals route to (incident_postmortem, contract_review). */
const missionNodes = ["timeline", "analysis", "actions", "security_review", "write_up", "review", "memo", "privacy_review"]

/**
 * The fault proxy: the real endpoint as it is, except during an outage the plan schedules. It forwards to
 * the configured endpoint's origin only, under its path, and passes a real 429's Retry-After on.
 */
const startProxy = () =>
  new Promise<void>((resolve) => {
    const upstream = new URL((config.model as { baseUrl: string }).baseUrl)
    const base = upstream.pathname.replace(/\/$/, "")
    const server = http.createServer((req, res) => {
      if (proxyMode !== undefined && Date.now() < proxyMode.until) {
        const status = proxyMode.status
        req.resume()
        res.writeHead(status, { "content-type": "application/json", ...(status === 429 ? { "retry-after": "2" } : {}) })
        res.end(JSON.stringify({ error: { message: status === 429 ? "Rate limit reached (soak outage)" : "Service unavailable (soak outage)", type: "soak_outage" } }))
        return
      }
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", async () => {
        try {
          // The client asks for /v1/<route>: the same route under the endpoint's own path, on its origin.
          const route = new URL(req.url ?? "/", "http://proxy").pathname.replace(/^\/v1/, "")
          const target = new URL(`${base}${route}`, upstream.origin)
          if (target.origin !== upstream.origin) throw new Error(`refused to forward to ${target.origin}`)
          const headers: Record<string, string> = {}
          for (const name of ["authorization", "content-type", "accept"]) if (typeof req.headers[name] === "string") headers[name] = req.headers[name]
          const method = req.method ?? "GET"
          const answer = await fetch(target, { method, headers, ...(method === "GET" ? {} : { body: Buffer.concat(chunks) }) })
          const passed: Record<string, string> = { "content-type": answer.headers.get("content-type") ?? "application/json" }
          for (const name of ["retry-after", "x-should-retry"]) {
            const value = answer.headers.get(name)
            if (value !== null) passed[name] = value
          }
          res.writeHead(answer.status, passed)
          if (answer.body !== null) for await (const chunk of answer.body) res.write(chunk)
          res.end()
        } catch (error) {
          // The upstream reset mid-answer, or the daemon that asked was killed: that exchange is over.
          if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: String(error) } }))
          else res.destroy()
        }
      })
    })
    server.listen(0, "127.0.0.1", () => {
      proxyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
      server.unref()
      resolve()
    })
  })

// --- The database, through the library: what the soak reads and the faults it injects there -------------

const runtime = ManagedRuntime.make(databaseLayer)
const db = <A, E>(effect: Effect.Effect<A, E, Storage.Storage | SqlClient.SqlClient>) => runtime.runPromise(effect)

// --- What the soak made, and what became of it ----------------------------------------------------------

/** Run ids the soak made itself; mission node runs and fan-out children are theirs by prefix. */
const made = new Set<string>()
const faultLog: Array<SoakReport.FaultRecord> = []
const submissionFailures: Array<string> = []
const samples: Array<SoakReport.ProgressSample> = []
const lags: Array<number> = []
const continuousFindings: Array<Ledger.Finding> = []
const audited = new Set<string>()

/** Whether a run is the soak's: one it made, or a child of one (`<id>.<node>`, `<id>.<i>-<item>`). */
const ours = (runId: string) => made.has(runId.split(".")[0]!)

const progress = async () => {
  const runs = await db(Effect.flatMap(RunStore, (store) => store.list()))
  let iterations = 0
  let dollars = 0
  let running = 0
  for (const r of runs) {
    if (r._tag !== "Found" || !ours(r.checkpoint.run_id)) continue
    // A mission's and a fan-out's usage is their children's: counted once, at the children.
    if (r.checkpoint.fanout !== undefined || r.checkpoint.mission !== undefined) continue
    iterations += r.checkpoint.usage.iterations
    dollars += r.checkpoint.usage.dollars
    if (r.checkpoint.status === "running") running++
  }
  samples.push({ t: Date.now(), iterations, dollars, running, bytes: await db(Database.size) })
}

// --- Runners ---------------------------------------------------------------------------------------------

interface Runner {
  readonly name: string
  proc: Proc | undefined
  /** Between a fault that took it down and its start again: no other fault touches it meanwhile. */
  down: boolean
  incarnation: number
  readonly steady: boolean
}

const daemonArgs = ["daemon", "--concurrency", "4", "--lease-seconds", "5", "--poll-seconds", "0.5", "--heartbeat-seconds", "30"]

const startRunner = async (runner: Runner) => {
  runner.down = false
  runner.incarnation++
  const name = runner.steady ? runner.name : `${runner.name}-${runner.incarnation}`
  runner.proc = startCli(name, [...daemonArgs, ...modelFlags(), ...dbFlags], true, {}, daemonLine)
  await waitLine(runner.proc, /runner \S+ up/, 120)
}

const steady: Runner = { name: "daemon-steady", proc: undefined, down: false, incarnation: 0, steady: true }
const victims: Array<Runner> = Array.from({ length: config.database._tag === "Postgres" ? 2 : 1 }, (_, i) => ({
  name: `daemon-runner-${i + 1}`,
  proc: undefined,
  down: false,
  incarnation: 0,
  steady: false
}))
const runners = [steady, ...victims]

/**
 * The `ended queued X: …` and `ended mission X: …` lines of every daemon, drains apart, by id: each must
 * appear once. Kept as the lines arrive; every third queued run to start is followed live (event lag).
 */
const ends = new Map<string, Array<string>>()
const followed = new Set<string>()
const foundEnded = new Map<string, string>()
const daemonLine = (line: string) => {
  const ended = line.match(/ ended (?:queued|mission) (\S+): (.*)$/)
  if (ended !== null && !/daemon draining/.test(ended[2]!)) ends.set(ended[1]!, [...(ends.get(ended[1]!) ?? []), ended[2]!])
  // A runner killed after a run's end was committed but before it said so: the next delivery finds it ended.
  const found = line.match(/ found (?:queued|mission) (\S+) already ended: (.*)$/)
  if (found !== null) foundEnded.set(found[1]!, found[2]!)
  const started = line.match(/ started queued (soak-r(\d+))$/)
  if (started !== null && Number(started[2]) % 3 === 0 && !followed.has(started[1]!)) {
    followed.add(started[1]!)
    follow(started[1]!)
  }
}

// --- Work ------------------------------------------------------------------------------------------------

let counter = 0
const rand = (() => {
  let x = (config.seed ^ 0x5bd1e995) >>> 0 || 1
  return () => ((x = (x * 48271) % 2147483647) / 2147483647)
})()

const criteriaFlags = (n: number) => Array.from({ length: n }, (_, i) => ["--criterion", `part ${i + 1} is written and checked`]).flat()

const queueRun = async () => {
  const id = `soak-r${++counter}`
  // c criteria take c iterations on the mock; a cap below that ends the run on its budget, partial.
  const criteria = 2 + Math.floor(rand() * 9)
  const cap = criteria - 1 + Math.floor(rand() * 5)
  made.add(id)
  const answer = await runCli(["queue", "add", `Write part ${counter} of the soak's notes`, ...criteriaFlags(criteria), "--max-iterations", String(cap), "--run-id", id, ...modelFlags(), ...dbFlags])
  if (answer.code !== 0) submissionFailures.push(`queue add ${id}: exit ${answer.code}: ${oneLine(answer.stderr)}`)
}

const goals = [
  ["write a blameless postmortem of yesterday's database outage", ["incident=the primary database ran out of disk at 02:10 UTC", "evidence=alerts, the on-call log and the disk graph"]],
  ["review the contract in contracts/msa.pdf against our standard playbook", ["contract=MSA between Acme and Globex, 12 pages"]]
] as const

const missionOf = async () => {
  const [goal, slots] = goals[counter % goals.length]!
  counter++
  const routed = await runCli(["goal", goal, "--format", "json", ...dbFlags])
  if (routed.code !== 0) return void submissionFailures.push(`goal: exit ${routed.code}: ${oneLine(routed.stderr)}`)
  const mission = JSON.parse(routed.stdout) as { kind: string; mission_id?: string }
  if (mission.mission_id === undefined) return void submissionFailures.push(`goal "${goal}" was not auto-routed: ${mission.kind}`)
  made.add(mission.mission_id)
  const approved = await runCli(["approve", mission.mission_id, ...slots.flatMap((s) => ["--slot", s]), ...dbFlags])
  if (approved.code !== 0) submissionFailures.push(`approve ${mission.mission_id}: exit ${approved.code}: ${oneLine(approved.stderr)}`)
}

/** The fan-out running now, if any: a runner process of its own that faults kill or stop and resume. */
let fanout: { id: string; args: ReadonlyArray<string>; proc: Proc; restarts: number } | undefined
const fanoutsDone: Array<string> = []

const startFanout = () => {
  const id = `soak-f${++counter}`
  made.add(id)
  // Sixteen children of eight iterations each, two at a time: a minute or more of work, for faults to land in.
  const items = ["queues", "retries", "leases", "budgets", "events", "checkpoints", "drains", "quarantine", "slices", "routes", "critics", "artifacts", "specialists", "blueprints", "schedules", "tokens"]
    .flatMap((i) => ["--item", i])
  const criteria = ["is explained", "has an example", "has a caveat", "has a test", "has a figure", "has a summary", "has a diagram", "has references"]
    .flatMap((c) => ["--criterion", `{item} ${c}`])
  const args = ["fanout", "--template", "Write the notes on {item}", ...items, ...criteria, "--max-parallel", "2", "--max-iterations", "100", "--run-id", id, ...modelFlags(), ...dbFlags]
  fanout = { id, args, proc: startCli(id, args, false), restarts: 0 }
}

/** The runs a process holds now: running, and its pid their owner's. */
const heldBy = async (pid: number) =>
  (await db(Effect.flatMap(RunStore, (store) => store.list()))).flatMap((r) =>
    r._tag === "Found" && r.checkpoint.status === "running" && r.checkpoint.owner?.pid === pid && r.checkpoint.fanout === undefined && r.checkpoint.mission === undefined
      ? [r.checkpoint.run_id]
      : []
  )

/**
 * A fan-out in the middle of its work, for a fault to hit: the one running, or a new one, once it holds
 * children (30 s at most); undefined if none got that far.
 */
const busyFanout = async () => {
  const limit = Date.now() + 30_000
  while (Date.now() < limit) {
    await tendFanout()
    const f = fanout
    if (f !== undefined && f.proc.child.exitCode === null && f.proc.child.signalCode === null && (await heldBy(f.proc.child.pid!)).length > 0) return f
    await new Promise((r) => setTimeout(r, 500))
  }
  return undefined
}

/**
 * Follows a fan-out to its end, as a supervisor would: started again when a fault stopped it (killed with
 * -9, or halted by a signal), from scratch if it died before its first checkpoint, else resumed.
 */
const tendFanout = async () => {
  if (fanout === undefined) {
    if (Date.now() < deadline - 60_000) startFanout()
    return
  }
  if (fanout.proc.child.exitCode === null && fanout.proc.child.signalCode === null) return
  const loaded = await db(Effect.flatMap(RunStore, (store) => store.load(fanout!.id)))
  const stopped = loaded._tag !== "Found" || loaded.checkpoint.status === "running" || /halted by SIG/.test(loaded.checkpoint.halt_reason ?? "")
  if (!stopped) {
    fanoutsDone.push(fanout.id)
    fanout = undefined
    return
  }
  fanout.restarts++
  const args = loaded._tag === "Missing" ? fanout.args : ["resume", fanout.id, ...dbFlags]
  fanout.proc = startCli(`${fanout.id}-${args[0]}-${fanout.restarts}`, args, false)
}

// --- Faults ----------------------------------------------------------------------------------------------

const downFor = (runner: Runner, seconds: number) => {
  setTimeout(() => void startRunner(runner).catch((e) => submissionFailures.push(`restart ${runner.name}: ${String(e)}`)), seconds * 1000)
}

const inject = async (fault: FaultPlan.Fault): Promise<string> => {
  const victim = victims[fault.pick % victims.length]!
  switch (fault.kind) {
    case "kill_runner": {
      const proc = victim.proc
      if (proc === undefined || victim.down || proc.child.exitCode !== null || proc.child.signalCode !== null) return "skipped: the runner was down"
      victim.down = true
      proc.child.kill("SIGKILL")
      await proc.exited
      downFor(victim, fault.hold_seconds)
      return `killed ${proc.name} (pid ${proc.child.pid}) with -9, up again in ${fault.hold_seconds} s`
    }
    case "torn_checkpoint": {
      // The crash of a process that held runs, and one of their checkpoints left torn: a fan-out's child,
      // since a busy fan-out always holds some, resumed from that afterwards.
      const busy = await busyFanout()
      if (busy === undefined) return "skipped: no fan-out got to its children within 30 s"
      const pid = busy.proc.child.pid!
      busy.proc.child.kill("SIGKILL")
      await busy.proc.exited
      const held = await heldBy(pid)
      const torn = held[fault.pick % Math.max(1, held.length)]
      if (torn === undefined) return `killed ${busy.proc.name} (pid ${pid}) with -9; it held no run to tear`
      // The first bytes of the row as a torn write leaves them: valid UTF-8, not a checkpoint.
      await db(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE checkpoints SET state = ${`{"version":1,"run_id":"${torn}","go`} WHERE run_id = ${torn}`))
      return `killed ${busy.proc.name} (pid ${pid}) with -9 and tore the checkpoint of ${torn}`
    }
    case "term_runner": {
      const proc = victim.proc
      if (proc === undefined || victim.down || proc.child.exitCode !== null || proc.child.signalCode !== null) return "skipped: the runner was down"
      victim.down = true
      proc.child.kill("SIGTERM")
      const code = await proc.exited
      void startRunner(victim).catch((e) => submissionFailures.push(`restart ${victim.name}: ${String(e)}`))
      return `SIGTERM to ${proc.name}: drained and exited ${code}, started again`
    }
    case "kill_fanout":
    case "term_fanout": {
      const busy = await busyFanout()
      if (busy === undefined) return "skipped: no fan-out got to its children within 30 s"
      busy.proc.child.kill(fault.kind === "kill_fanout" ? "SIGKILL" : "SIGTERM")
      const code = await busy.proc.exited
      return `${fault.kind === "kill_fanout" ? "killed" : "SIGTERM to"} ${busy.proc.name}: exited ${code}; started again`
    }
    case "write_lock":
      return holdWriteLock(fault.hold_seconds)
    case "upstream_429":
    case "upstream_5xx": {
      const status = fault.kind === "upstream_429" ? 429 : 503
      if (config.model._tag === "OpenAi") proxyMode = { status, until: Date.now() + fault.hold_seconds * 1000 }
      else fs.writeFileSync(outageFile, status === 429 ? "429 2000" : "503")
      setTimeout(() => {
        proxyMode = undefined
        fs.rmSync(outageFile, { force: true })
      }, fault.hold_seconds * 1000)
      return `the model answers ${status} for ${fault.hold_seconds} s`
    }
  }
}

/** Another process takes the write lock and sits on it: every writer waits, past SQLite's 5 s busy timeout. */
const holdWriteLock = async (seconds: number): Promise<string> => {
  if (config.database._tag === "Postgres") {
    await db(Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.withTransaction(Effect.zipRight(sql`LOCK TABLE checkpoints IN EXCLUSIVE MODE`, Effect.sleep(`${seconds} seconds`)))))
    return `held an exclusive lock on checkpoints for ${seconds} s`
  }
  const holder = spawn(process.execPath, ["-e", `
    const db = new (require("better-sqlite3"))(${JSON.stringify(path.join(out, "soak.db"))}, { timeout: 60000 })
    db.exec("BEGIN IMMEDIATE"); process.stdout.write("held\\n")
    setTimeout(() => { db.exec("COMMIT"); db.close() }, ${seconds * 1000})
  `], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
  const exited = new Promise<number | null>((resolve) => holder.on("exit", (code) => resolve(code)))
  const held = await Promise.race([new Promise<boolean>((resolve) => holder.stdout!.once("data", () => resolve(true))), exited.then(() => false)])
  await exited
  return held ? `held SQLite's write lock for ${seconds} s` : "failed to inject: the lock holder exited before it held the lock"
}

// --- Event lag: live streams of a sample of runs, through `autopilot serve` -----------------------------

let serveUrl = ""
const token = crypto.randomBytes(24).toString("hex")
const decodeEvent = Schema.decodeUnknownOption(AutopilotEventJson)

/** Follows one run's events over SSE, as a client would, keeping the lag of each live one (received − `at`). */
const follow = (runId: string) => {
  const since = Date.now()
  const stream = Effect.tryPromise(() =>
    fetch(`${serveUrl}/api/v1/autopilot/runs/${runId}/events`, {
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      signal: AbortSignal.timeout(Math.max(10_000, deadline + 600_000 - Date.now()))
    })
  ).pipe(
    Effect.flatMap((answer) =>
      answer.ok && answer.body !== null
        ? Stream.fromReadableStream(() => answer.body!, (e) => e).pipe(
          Stream.decodeText(),
          Stream.pipeThroughChannel(Sse.makeChannel()),
          Stream.runForEach((frame) =>
            Effect.sync(() => {
              const event = decodeEvent(frame.data)
              if (event._tag === "None") return
              const at = Date.parse(event.value.at)
              if (at >= since) lags.push(Date.now() - at)
            })
          )
        )
        : Effect.void
    ),
    Effect.ignore
  )
  void Effect.runPromise(stream)
}

// --- The run -----------------------------------------------------------------------------------------------

const main = async () => {
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) {
    refuse(`AUTOPILOT_SOAK_OUT "${config.out}" is not empty: a soak writes its database, logs and report in a folder of its own`)
  }
  await reachModel()
  await reachDatabase()
  // The audit and the soak's run ids assume it made every run in the database.
  if (config.database._tag === "Postgres" && (await db(Effect.flatMap(RunStore, (store) => store.list()))).length > 0) {
    refuse("the database AUTOPILOT_DATABASE_URL names already holds runs: give the soak an empty database of its own")
  }
  for (const dir of [out, home, path.join(out, "logs"), path.join(out, "memory")]) fs.mkdirSync(dir, { recursive: true })
  if (config.model._tag === "OpenAi") await startProxy()
  else fs.writeFileSync(path.join(out, "mock-script.json"), JSON.stringify(mockScript(config.seed), null, 1))
  const faults = FaultPlan.plan({ seed: config.seed, seconds: config.seconds })
  const command = SoakConfig.commandOf(config)
  fs.writeFileSync(path.join(out, "command.txt"), `${command}\n`)
  say(`${config.seconds} s, seed ${config.seed}, ${faults.length} faults planned, ${config.model._tag === "Mock" ? "the mock model" : shown(config.model.baseUrl)}, ${config.database._tag === "Postgres" ? "Postgres" : "SQLite"}; report in ${out}`)
  say(`again: ${command}`)

  // The database made first, so that the runners booting together do not race to make it.
  await db(Effect.void)
  for (const runner of runners) await startRunner(runner)
  const serve = startCli("serve", ["serve", "--port", "0", ...dbFlags], true, { AUTOPILOT_API_TOKEN: token })
  serveUrl = (await waitLine(serve, /serving (http:\/\/\S+)/, 120))[1]!

  const interval = 60_000 / config.runsPerMinute
  // Both read every run in the database: about 240 samples and 120 audits a soak, however long it is.
  const sampleEvery = Math.max(15_000, (config.seconds * 1000) / 240)
  const auditEvery = Math.max(60_000, (config.seconds * 1000) / 120)
  let tick = 0
  const pending = faults.slice()
  let lastSample = 0
  let lastAudit = Date.now()
  while (Date.now() < deadline) {
    const now = Date.now()
    tick++
    const work = tick % 6 === 0 ? missionOf() : queueRun()
    await Promise.race([work, new Promise((r) => setTimeout(r, interval))])
    await tendFanout()
    while (pending.length > 0 && pending[0]!.at <= elapsed()) {
      const fault = pending.shift()!
      const at = Date.now()
      say(`fault at ${Math.round(elapsed())} s: ${fault.kind}`)
      const what = await inject(fault).catch((e) => `failed to inject: ${String(e)}`)
      faultLog.push({ ...fault, t: at, what })
      say(`  ${what}`)
    }
    if (now - lastSample >= sampleEvery) {
      lastSample = now
      await progress()
    }
    if (now - lastAudit >= auditEvery) {
      lastAudit = now
      await auditEnded()
    }
    const spare = interval - (Date.now() - now)
    if (spare > 0) await new Promise((r) => setTimeout(r, spare))
  }

  say(`${config.seconds} s are up: no more work or faults; waiting for what was submitted to end`)
  proxyMode = undefined
  fs.rmSync(outageFile, { force: true })
  const grace = Date.now() + Math.max(300, config.seconds / 10) * 1000
  while (Date.now() < grace && !allEnded()) {
    await tendFanout()
    await progress()
    await new Promise((r) => setTimeout(r, 5000))
  }
  await progress()
  for (const proc of all) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGTERM")
  await Promise.all(all.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 30_000))])))
  for (const proc of all) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL")

  const figures = await finalFigures(faults.length, command)
  const report = SoakReport.write(out, figures)
  await runtime.dispose()
  say(`report: ${report.markdown}`)
  for (const check of figures.checks) say(`${check.pass ? "PASS" : "FAIL"}  ${check.name}: ${check.figure}`)
  process.exitCode = figures.checks.every((c) => c.pass) ? 0 : 1
}

/** Each submission's ends: its daemons' `ended` lines, or, with none, the `found … already ended` of a later delivery. */
const endingsOf = (id: string): ReadonlyArray<string> => ends.get(id) ?? (foundEnded.has(id) ? [foundEnded.get(id)!] : [])

/** Whether every piece of work the soak submitted has ended: its daemon's line, or the fan-out's own end. */
const allEnded = () => {
  if (fanout !== undefined) return false
  return [...made].every((id) => fanoutsDone.includes(id) || endingsOf(id).length > 0)
}

/** The books of runs that ended for good since the last look (a drain's halt is not an end). */
const auditEnded = async () => {
  const ended = [...ends.keys(), ...foundEnded.keys(), ...fanoutsDone].filter((id) => !audited.has(id))
  const ids = (await db(Effect.flatMap(RunStore, (store) => store.list())))
    .flatMap((r) => (r._tag === "Found" ? [r.checkpoint.run_id] : []))
    .filter((id) => ended.some((e) => id === e || id.startsWith(`${e}.`)))
  if (ids.length === 0) return
  const audit = await db(Ledger.audit({ runIds: ids }))
  for (const id of ended) audited.add(id)
  continuousFindings.push(...audit.findings)
  if (audit.findings.length > 0) say(`audit: ${audit.findings.length} findings: ${audit.findings.slice(0, 3).map((f) => `${f.check} ${f.run_id}: ${f.detail}`).join("; ")}`)
}

const finalFigures = async (planned: number, command: string): Promise<SoakReport.Figures> => {
  const runs = await db(Effect.flatMap(RunStore, (store) => store.list()))
  const ids = runs.map((r) => (r._tag === "Found" ? r.checkpoint.run_id : r.run_id)).filter(ours)
  const audit = await db(Ledger.audit({ runIds: ids }))
  const integrity = await db(Database.integrity)
  const memory = fs.readdirSync(path.join(out, "memory")).map((file) => ({
    process: file.replace(/\.jsonl$/, ""),
    // The steady daemon and the server: the runners faults restart live a few minutes each.
    lifelong: file === `${steady.name}.jsonl` || file === "serve.jsonl",
    samples: MemoryTrend.parseSamples(fs.readFileSync(path.join(out, "memory", file), "utf8"))
  }))
  const submitted = [...made]
  return SoakReport.figuresOf({
    config,
    command,
    started,
    ended: Date.now(),
    plannedFaults: planned,
    faults: faultLog,
    submitted,
    endings: Object.fromEntries([...made].map((id) => [id, endingsOf(id)])),
    fanoutsDone,
    submissionFailures,
    audit,
    continuousFindings,
    integrity,
    memory,
    samples,
    lags
  })
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const proc of all) proc.child.kill("SIGKILL")
    process.exit(130)
  })
}
process.on("exit", () => {
  for (const proc of all) if (proc.child.exitCode === null) proc.child.kill("SIGKILL")
})

main().catch((error) => {
  process.stderr.write(`soak: failed: ${oneLine(error instanceof Error ? error.message : String(error))}\n`)
  for (const proc of all) proc.child.kill("SIGKILL")
  process.exit(1)
})
