/**
 * The HTTP API as users run it: `node bin/autopilot.js serve` on a temp SQLite file and on Postgres,
 * driven from this process (a separate process from the server) with node:http. Run with
 * `npm run bench:api` (builds first: the server runs from dist/).
 *
 *   node --import tsx scripts/bench-api.ts [--databases=sqlite,postgres] [--missions=100] [--requests=300]
 *        [--concurrency=1,32] [--warmup=100] [--repeats=3] [--sse-clients=200] [--sse-iterations=60]
 *        [--sse-latency-ms=200] [--sse-repeats=3] [--settle-s=3] [--idle-s=5] [--only=requests,sse] [--deadline-s=1500] [--keep]
 *
 * Postgres: `$AUTOPILOT_BENCH_DATABASE_URL` if set (its user must be allowed to CREATE DATABASE), else a
 * throwaway server started here (scripts/lib/postgres.ts) with the tests' unsynced settings; a database of
 * its own per server started, dropped after. Postgres is skipped, with a line saying why, where it cannot
 * be started. Every `serve` gets a temporary AUTOPILOT_HOME and the admin token as AUTOPILOT_API_TOKEN.
 *
 * 1. Requests: a fresh server and database; `--missions` missions made through `POST /goal` (each auto-
 *    routed to a draft mission), then, per repeat, `GET /api/v1/autopilot/missions` (every answer checked:
 *    200, the same bytes as the first, which lists exactly `--missions`), then `POST /api/v1/autopilot/goal`
 *    (`{goal: "write release notes for v2.1 from the changelog"}`, each a new mission, checked `auto_routed`), each at every
 *    `--concurrency`: that many clients, each with its own kept-alive socket (one http.Agent with
 *    `maxSockets` = clients, its sockets opened by a first round), sending `--requests` requests in all, the
 *    next as soon as its previous answer has fully arrived. `--warmup` requests of each route go first,
 *    untimed. Latency: from the call to the last byte of the answer (performance.now); requests/s:
 *    requests / the measurement's wall time; the server's CPU per request from /proc/<pid>/stat. The GETs
 *    of every repeat come before the POSTs, so the list holds `--missions` throughout. The repeat with the
 *    median requests/s is reported, the others listed.
 * 2. Event streams: a fresh server and database; per repeat, `autopilot run` (a separate process, the same
 *    database) on a mock script answering after `--sse-latency-ms` each iteration, criteria never met, for
 *    `--sse-iterations` iterations; once its run is visible through the API, `--sse-clients` clients open
 *    `GET /api/v1/autopilot/runs/<id>/events` at once, each on its own connection, and read to the end.
 *    Checked: every client's list of seqs is 0, 1, 2, … without a gap, ends with `result`, and equals the
 *    run's log as `autopilot events <id> --format jsonl` prints it from the database afterwards (seq, kind
 *    and `at` of each). Delivery lag: for each event stamped after the client's response headers arrived
 *    (live, not replayed), receipt time (Date.now(), at the chunk) minus the event's `at`; p50/p99/max
 *    over all clients. The server's RSS (VmRSS of /proc/<pid>/status, sampled every 50 ms): before the
 *    clients connect, the peak while they are connected, and `--settle-s` after the last one left; repeats
 *    on the same server, so RSS after each is the figure for memory left behind by 200 clients. The
 *    server's CPU over the streaming window (clients' first connect to last end), as a share of one core and
 *    per event delivered to a client (µs), and the 1-minute load average after the round (the machine is shared).
 *    Then what idle streams cost (skip with --idle-s=0): a run waiting on a 10-minute mock call, the
 *    server's CPU over `--idle-s` with no client and then with `--sse-clients` clients following it (no
 *    event in the window), as cores; the run is then sent SIGTERM and the clients cut, nothing checked.
 *
 * Targets (chosen here, the issue gives none for the figures): every event to every client; live delivery
 * lag p99 < 250 ms; RSS growth (peak − before) < 64 MiB for 200 clients; RSS after ≤ before + 16 MiB.
 * Requests/s and latency of the two routes are measurements, without a target. A non-2xx answer, a wrong
 * answer or the deadline ends the run with a non-zero exit; every process started here is killed at the end,
 * on failure and on Ctrl-C (and, by watchdogs, if this process is killed). A table goes to stdout, then the
 * figures as one JSON line, also written to bench-out/bench-api.json (not committed).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { machine, median, option, r1, r2, root } from "./bench-common.js"
import * as Postgres from "./lib/postgres.js"

const DATABASES = option("databases", "sqlite,postgres").split(",")
const MISSIONS = Number(option("missions", "100"))
const REQUESTS = Number(option("requests", "300"))
const CONCURRENCY = option("concurrency", "1,32").split(",").map(Number)
const WARMUP = Number(option("warmup", "100"))
const REPEATS = Number(option("repeats", "3"))
const SSE_CLIENTS = Number(option("sse-clients", "200"))
const SSE_ITERATIONS = Number(option("sse-iterations", "60"))
const SSE_LATENCY_MS = Number(option("sse-latency-ms", "200"))
const SSE_REPEATS = Number(option("sse-repeats", "3"))
const SETTLE_S = Number(option("settle-s", "3"))
const IDLE_S = Number(option("idle-s", "5"))
const ONLY = option("only", "requests,sse").split(",")
const DEADLINE_S = Number(option("deadline-s", "1500"))
const KEEP = process.argv.includes("--keep")
/** Node flags for the server alone, space-separated: `--cpu-prof --cpu-prof-dir=DIR`, say, for where its time goes. */
const SERVER_NODE_ARGS = option("server-node-args", "").split(" ").filter((a) => a !== "")

for (const d of DATABASES) if (d !== "sqlite" && d !== "postgres") throw new Error(`--databases takes sqlite and postgres, comma-separated; got "${d}"`)
for (const [name, value] of Object.entries({ MISSIONS, REQUESTS, WARMUP, REPEATS, SSE_CLIENTS, SSE_ITERATIONS, SSE_LATENCY_MS, SSE_REPEATS, SETTLE_S, IDLE_S, DEADLINE_S })) {
  if (!(Number.isFinite(value) && value >= 0)) throw new Error(`--${name.toLowerCase().replaceAll("_", "-")} takes a number >= 0`)
}

const TARGET_LAG_P99_MS = 250
const TARGET_RSS_GROWTH_MIB = 64
const TARGET_RSS_LEFT_MIB = 16

const TOKEN = "bench-api-admin-token-0123456789abcdef"
const API = "/api/v1/autopilot"
const bin = path.join(root, "bin", "autopilot.js")
const log = (line: string) => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/**
 * Wall-clock time in ms, comparable with the events' `at`: Date, as the run's process reads it, so that a step
 * of the system clock (this VM's clock was stepped by ~15 s during a run) moves both alike; performance.now()
 * from the process's start would not follow it.
 */
const nowMs = () => Date.now()
const pct = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

// ------------------------------------------------------------------------------------------- processes

/** USER_HZ, the unit of /proc's CPU times. */
const CLK_TCK = 100

/** User + system CPU of a live process so far, ms. */
const cpuOf = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
  return ((fields[11]! + fields[12]!) * 1000) / CLK_TCK
}

/** Resident memory of a live process, MiB (VmRSS of /proc/<pid>/status). */
const rssOf = (pid: number) => {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))
  return Number(/(\d+)/.exec(line ?? "")?.[1] ?? Number.NaN) / 1024
}

const children = new Set<ChildProcess>()

/** `node bin/autopilot.js ...args` in `home`, killed with this process if it dies first (kill -9). */
const autopilot = (home: string, args: ReadonlyArray<string>) => {
  const env: NodeJS.ProcessEnv = { ...process.env, AUTOPILOT_HOME: home }
  for (const name of Object.keys(env)) if (name.startsWith("AUTOPILOT_") && name !== "AUTOPILOT_HOME") delete env[name]
  env["AUTOPILOT_API_TOKEN"] = TOKEN
  const child = spawn(process.execPath, [...(args[0] === "serve" ? SERVER_NODE_ARGS : []), bin, ...args], { cwd: home, env, stdio: ["ignore", "pipe", "pipe"] })
  const guard = spawn("/bin/sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`], {
    detached: true,
    stdio: "ignore"
  })
  guard.unref()
  children.add(child)
  const out: Array<string> = []
  const err: Array<string> = []
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => out.push(chunk))
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => err.push(chunk))
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      guard.kill()
      children.delete(child)
      resolve(code)
    })
  )
  return { child, exited, stdout: () => out.join(""), stderr: () => err.join("") }
}

const stop = async (child: ChildProcess, exited: Promise<unknown>) => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
  await exited
  clearTimeout(timer)
}

const killEverything = () => {
  for (const child of children) child.kill("SIGKILL")
}

/** `autopilot serve --port 0` on the database `dbArgs`; resolves once it says where it listens. */
const startServer = async (home: string, dbArgs: ReadonlyArray<string>) => {
  const proc = autopilot(home, ["serve", "--port", "0", ...dbArgs])
  const deadline = Date.now() + 60_000
  for (;;) {
    const m = /autopilot serving http:\/\/([0-9.]+):(\d+)/.exec(proc.stdout())
    if (m !== null) return { ...proc, host: m[1]!, port: Number(m[2]), pid: proc.child.pid! }
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      killEverything()
      throw new Error(`autopilot serve did not start: ${proc.stdout()}${proc.stderr()}`)
    }
    await sleep(50)
  }
}
type Server = Awaited<ReturnType<typeof startServer>>

// ----------------------------------------------------------------------------------------------- client

interface Answer {
  readonly status: number
  readonly body: string
  readonly ms: number
}

const call = (server: Server, agent: http.Agent, method: string, route: string, body?: object) =>
  new Promise<Answer>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const began = performance.now()
    const req = http.request({
      host: server.host,
      port: server.port,
      method,
      path: API + route,
      agent,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
      }
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - began }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(payload)
  })

/** The seed's example goal: auto-routed (score ≈ 0.97) to a draft mission, a new one at every call. */
const goalBody = () => ({ goal: "write release notes for v2.1 from the changelog" })

const checkGoal = (a: Answer) => {
  if (a.status !== 200) throw new Error(`POST /goal answered ${a.status}: ${a.body.slice(0, 300)}`)
  const kind = (JSON.parse(a.body) as { kind?: string }).kind
  if (kind !== "auto_routed") throw new Error(`POST /goal answered kind ${kind}, not auto_routed: ${a.body.slice(0, 300)}`)
}

interface Route {
  readonly name: string
  readonly send: (server: Server, agent: http.Agent) => Promise<Answer>
  readonly check: (a: Answer) => void
}

const getMissions = (expectedBytes: { n: number }): Route => ({
  name: "GET /missions",
  send: (server, agent) => call(server, agent, "GET", "/missions"),
  check: (a) => {
    if (a.status !== 200) throw new Error(`GET /missions answered ${a.status}: ${a.body.slice(0, 300)}`)
    if (expectedBytes.n < 0) {
      const listed = (JSON.parse(a.body) as ReadonlyArray<unknown>).length
      if (listed !== MISSIONS) throw new Error(`GET /missions listed ${listed} missions, not ${MISSIONS}`)
      expectedBytes.n = a.body.length
    } else if (a.body.length !== expectedBytes.n) {
      throw new Error(`GET /missions answered ${a.body.length} characters, the first answer ${expectedBytes.n}`)
    }
  }
})

const postGoal: Route = {
  name: "POST /goal",
  send: (server, agent) => call(server, agent, "POST", "/goal", goalBody()),
  check: checkGoal
}

/** `count` requests from `clients` kept-alive clients, each sending its next once its previous has arrived. */
const load = async (server: Server, route: Route, clients: number, count: number) => {
  // `timeout` makes the Agent honour the server's `Keep-Alive: timeout=5` and drop a socket idle for 4 s
  // before the server does (a slow first round leaves some idle that long); Node 20 ignores it without one.
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients, keepAliveMsecs: 60_000, timeout: 60_000 })
  try {
    // Every client's socket open before the clock starts.
    for (const a of await Promise.all(Array.from({ length: clients }, () => route.send(server, agent)))) route.check(a)
    const ms: Array<number> = []
    let next = 0
    const cpuBefore = cpuOf(server.pid)
    const began = performance.now()
    await Promise.all(Array.from({ length: clients }, async () => {
      while (next < count) {
        next++
        const a = await route.send(server, agent)
        route.check(a)
        ms.push(a.ms)
      }
    }))
    const wall = performance.now() - began
    const cpu = cpuOf(server.pid) - cpuBefore
    return {
      route: route.name,
      clients,
      requests: ms.length,
      req_per_s: r1(ms.length / (wall / 1000)),
      p50_ms: r2(pct(ms, 50)),
      p99_ms: r2(pct(ms, 99)),
      max_ms: r2(Math.max(...ms)),
      server_cpu_ms_per_request: r2(cpu / ms.length)
    }
  } finally {
    agent.destroy()
  }
}

// ------------------------------------------------------------------------------------------- databases

interface Target {
  readonly kind: "sqlite" | "postgres"
  readonly args: ReadonlyArray<string>
  readonly drop: () => Promise<void>
}

let scenario = 0
const home = (dir: string, what: string) => {
  const h = path.join(dir, `s${++scenario}-${what}`)
  fs.mkdirSync(h)
  return h
}

const targetFor = async (kind: Target["kind"], h: string, pgUrl: string | undefined): Promise<Target> => {
  if (kind === "sqlite") return { kind, args: ["--db", path.join(h, "a.db")], drop: async () => {} }
  const db = await Postgres.createDatabase(pgUrl!, "autopilot_bench_api")
  return { kind, args: ["--database", db.url], drop: KEEP ? async () => {} : db.drop }
}

// ---------------------------------------------------------------------------------------------- requests

const requests = async (dir: string, kind: Target["kind"], pgUrl: string | undefined) => {
  const h = home(dir, `requests-${kind}`)
  const target = await targetFor(kind, h, pgUrl)
  const server = await startServer(h, target.args)
  try {
    const seedAgent = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 60_000 })
    const seedBegan = performance.now()
    for (let i = 0; i < MISSIONS; i++) checkGoal(await call(server, seedAgent, "POST", "/goal", goalBody()))
    const seedMs = performance.now() - seedBegan
    seedAgent.destroy()
    const bytes = { n: -1 }
    const get = getMissions(bytes)
    const warm = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 60_000 })
    for (let i = 0; i < WARMUP; i++) get.check(await get.send(server, warm))
    warm.destroy()
    const rows: Array<Awaited<ReturnType<typeof load>>> = []
    for (let r = 0; r < REPEATS; r++) {
      for (const c of r % 2 === 0 ? CONCURRENCY : [...CONCURRENCY].reverse()) {
        const row = await load(server, get, c, REQUESTS)
        log(`${kind} ${row.route} × ${c} #${r + 1}: ${row.req_per_s} req/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, server CPU ${row.server_cpu_ms_per_request} ms/request`)
        rows.push(row)
      }
    }
    // POST /goal's warm-up adds missions: after every GET, so the list held MISSIONS throughout.
    const warmPost = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 60_000 })
    for (let i = 0; i < Math.min(WARMUP, 50); i++) checkGoal(await call(server, warmPost, "POST", "/goal", goalBody()))
    warmPost.destroy()
    for (let r = 0; r < REPEATS; r++) {
      for (const c of r % 2 === 0 ? CONCURRENCY : [...CONCURRENCY].reverse()) {
        const row = await load(server, postGoal, c, REQUESTS)
        log(`${kind} ${row.route} × ${c} #${r + 1}: ${row.req_per_s} req/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, server CPU ${row.server_cpu_ms_per_request} ms/request`)
        rows.push(row)
      }
    }
    const reported = [get.name, postGoal.name].flatMap((route) =>
      CONCURRENCY.map((clients) => {
        const mine = rows.filter((row) => row.route === route && row.clients === clients)
        const chosen = mine.find((row) => row.req_per_s === median(mine.map((m) => m.req_per_s))) ??
          [...mine].sort((a, b) => a.req_per_s - b.req_per_s)[Math.floor(mine.length / 2)]!
        return { database: kind, ...chosen, all_req_per_s: mine.map((m) => m.req_per_s), all_p99_ms: mine.map((m) => m.p99_ms) }
      }))
    return { database: kind, seed_ms_per_goal: r2(seedMs / MISSIONS), list_bytes: bytes.n, rows: reported }
  } finally {
    await stop(server.child, server.exited)
    await target.drop()
  }
}

// ------------------------------------------------------------------------------------------ event streams

interface Received {
  readonly seq: number
  readonly kind: string
  readonly at: string
  readonly received: number
}

interface Client {
  opened: number
  ended: number
  readonly events: Array<Received>
  /** Frames that are not run events (`interrupted`, `error`, `server_shutdown`). */
  readonly others: Array<string>
  status: number
}

/**
 * One EventSource-like reader of a run's events, on its own connection, to the end of the stream; `open`
 * is told of the client and its request at once (to watch it open, or to cut it).
 */
const follow = (server: Server, runId: string, open: (client: Client, req: http.ClientRequest) => void = () => {}) =>
  new Promise<Client>((resolve, reject) => {
    const client: Client = { opened: Number.NaN, ended: Number.NaN, events: [], others: [], status: 0 }
    const req = http.get({
      host: server.host,
      port: server.port,
      path: `${API}/runs/${runId}/events`,
      agent: false,
      headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" }
    }, (res) => {
      client.opened = nowMs()
      client.status = res.statusCode ?? 0
      res.setEncoding("utf8")
      let buffer = ""
      res.on("data", (chunk: string) => {
        const received = nowMs()
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          let kind = "message"
          let data = ""
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7)
            else if (line.startsWith("data: ")) data += line.slice(6)
          }
          if (data === "") continue // a keep-alive comment
          const event = JSON.parse(data) as { seq?: number; kind?: string; at?: string }
          if (typeof event.seq === "number" && event.kind === kind) {
            client.events.push({ seq: event.seq, kind, at: event.at ?? "", received })
          } else {
            client.others.push(`${kind} ${data}`)
          }
        }
      })
      res.on("end", () => {
        client.ended = nowMs()
        resolve(client)
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    open(client, req)
  })

/**
 * What idle streams cost the server: a run waiting on a mock call of 10 minutes (no event for the whole
 * window), the server's CPU over `IDLE_S` with no client, then with `SSE_CLIENTS` clients following it,
 * every one open; then the run is sent SIGTERM and the clients cut. Nothing is checked here.
 */
const idleStreams = async (server: Server, h: string, target: Target, agent: http.Agent) => {
  const script = path.join(h, "idle.json")
  fs.writeFileSync(script, JSON.stringify({ latency_ms: 600_000, repeat_last: true, turns: [{ content: "waiting", criteria_met: [false] }] }))
  const run = autopilot(h, ["run", "wait (benchmark)", "--criterion", "never met", "--run-id", "idle", "--mock-script", script, "--max-iterations", "1", ...target.args])
  const visibleBy = Date.now() + 60_000
  while ((await call(server, agent, "GET", "/runs/idle")).status !== 200) {
    if (run.child.exitCode !== null || Date.now() > visibleBy) throw new Error(`run idle never became visible: ${run.stderr()}`)
    await sleep(50)
  }
  const cores = async () => {
    const cpu = cpuOf(server.pid)
    const began = performance.now()
    await sleep(IDLE_S * 1000)
    return (cpuOf(server.pid) - cpu) / (performance.now() - began)
  }
  const alone = await cores()
  const opened: Array<{ client: Client; req: http.ClientRequest }> = []
  const all = Promise.allSettled(Array.from({ length: SSE_CLIENTS }, () => follow(server, "idle", (client, req) => opened.push({ client, req }))))
  const openBy = Date.now() + 120_000
  while (!opened.every(({ client }) => client.status !== 0)) {
    if (Date.now() > openBy) throw new Error("idle streams: not every client opened within 120 s")
    await sleep(100)
  }
  await sleep(1000)
  const following = await cores()
  run.child.kill("SIGTERM")
  await Promise.race([all, sleep(30_000)])
  for (const { req } of opened) req.destroy()
  await stop(run.child, run.exited)
  return {
    clients: SSE_CLIENTS,
    window_s: IDLE_S,
    server_cores_without_clients: r2(alone),
    server_cores_with_clients: r2(following),
    /** CPU per idle stream: ms of server CPU per second per client. */
    server_cpu_ms_per_s_per_client: r2(((following - alone) * 1000) / SSE_CLIENTS)
  }
}

const sse = async (dir: string, kind: Target["kind"], pgUrl: string | undefined) => {
  const h = home(dir, `sse-${kind}`)
  const target = await targetFor(kind, h, pgUrl)
  const script = path.join(h, "slow.json")
  fs.writeFileSync(script, JSON.stringify({ latency_ms: SSE_LATENCY_MS, repeat_last: true, turns: [{ content: "working on it", criteria_met: [false] }] }))
  const server = await startServer(h, target.args)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 60_000 })
  const samples: Array<{ at: number; mib: number }> = []
  const sampler = setInterval(() => samples.push({ at: nowMs(), mib: rssOf(server.pid) }), 50)
  try {
    const rounds = []
    for (let r = 1; r <= SSE_REPEATS; r++) {
      const runId = `sse-${r}`
      const run = autopilot(h, [
        "run", "work slowly (benchmark: never met)", "--criterion", "never met", "--run-id", runId, "--mock-script", script,
        "--max-iterations", String(SSE_ITERATIONS), "--max-seconds", "0", "--max-tokens", "0", "--max-dollars", "0", "--format", "jsonl", ...target.args
      ])
      const visibleBy = Date.now() + 60_000
      while ((await call(server, agent, "GET", `/runs/${runId}`)).status !== 200) {
        if (run.child.exitCode !== null || Date.now() > visibleBy) throw new Error(`run ${runId} never became visible: ${run.stderr()}`)
        await sleep(50)
      }
      const before = rssOf(server.pid)
      const cpuBefore = cpuOf(server.pid)
      const began = nowMs()
      const clients = await Promise.all(Array.from({ length: SSE_CLIENTS }, () => follow(server, runId)))
      const lastEnd = Math.max(...clients.map((c) => c.ended))
      const cpu = cpuOf(server.pid) - cpuBefore
      const runExit = await run.exited
      await sleep(SETTLE_S * 1000)
      const after = rssOf(server.pid)
      const peak = Math.max(before, ...samples.filter((s) => s.at >= began && s.at <= lastEnd).map((s) => s.mib))

      // The run's log, as the CLI reads it from the database, not through the server.
      const printed = autopilot(h, ["events", runId, "--format", "jsonl", ...target.args])
      if ((await printed.exited) !== 0) throw new Error(`autopilot events ${runId} failed: ${printed.stderr()}`)
      const logged = printed.stdout().trim().split("\n").map((l) => JSON.parse(l) as { seq: number; kind: string; at: string })
      const key = (e: { seq: number; kind: string; at: string }) => `${e.seq} ${e.kind} ${e.at}`
      const expected = logged.map(key).join("\n")
      const gapFree = (c: Client) => c.events.every((e, i) => e.seq === i)
      const complete = clients.filter((c) =>
        c.status === 200 && c.others.length === 0 && gapFree(c) && c.events.at(-1)?.kind === "result" && c.events.map(key).join("\n") === expected
      ).length
      const lags = clients.flatMap((c) => c.events.filter((e) => Date.parse(e.at) > c.opened).map((e) => e.received - Date.parse(e.at)))
      const opened = clients.map((c) => c.opened - began)
      // Which events the tail is made of: a lag every client shares is the event's (written late, read late),
      // one a few clients have is theirs (joining, slow to read).
      const bySeq = new Map<number, { kind: string; lags: Array<number> }>()
      for (const c of clients) {
        for (const e of c.events) {
          if (Date.parse(e.at) <= c.opened) continue
          const entry = bySeq.get(e.seq) ?? { kind: e.kind, lags: [] }
          entry.lags.push(e.received - Date.parse(e.at))
          bySeq.set(e.seq, entry)
        }
      }
      const slowest = [...bySeq.entries()].map(([seq, { kind, lags }]) => ({ seq, kind, clients: lags.length, p50: r1(pct(lags, 50)), max: r1(Math.max(...lags)) }))
        .sort((x, y) => y.p50 - x.p50).slice(0, 3)
      const round = {
        run_id: runId,
        run_exit: runExit,
        events_in_log: logged.length,
        clients: SSE_CLIENTS,
        clients_complete: complete,
        problems: clients.filter((c) => c.others.length > 0 || c.status !== 200).slice(0, 3).map((c) => `${c.status} ${c.others.join(" | ").slice(0, 200)}`),
        all_opened_ms: r1(Math.max(...opened)),
        live_deliveries: lags.length,
        lag_ms: { p50: r1(pct(lags, 50)), p99: r1(pct(lags, 99)), max: r1(Math.max(...lags)) },
        slowest_events: slowest,
        rss_mib: { before: r1(before), peak: r1(peak), after: r1(after) },
        server_cpu_share: r2(cpu / (lastEnd - began)),
        /** The server's CPU over the window per event delivered to a client (replayed or live), µs. */
        server_cpu_us_per_delivery: r1((cpu * 1000) / Math.max(1, clients.reduce((n, c) => n + c.events.length, 0))),
        loadavg_1m: r2(os.loadavg()[0]!),
        stream_s: r2((lastEnd - began) / 1000)
      }
      log(`${kind} SSE #${r}: ${complete}/${SSE_CLIENTS} clients got all ${logged.length} events; lag p50 ${round.lag_ms.p50} / p99 ${round.lag_ms.p99} / max ${round.lag_ms.max} ms over ` +
        `${lags.length} live deliveries; RSS ${round.rss_mib.before} → ${round.rss_mib.peak} → ${round.rss_mib.after} MiB; server CPU ${round.server_cpu_share} of a core over ${round.stream_s} s ` +
        `(${round.server_cpu_us_per_delivery} µs per event delivered); load ${round.loadavg_1m}; slowest events (seq kind: p50 / max ms over clients) ` +
        slowest.map((e) => `${e.seq} ${e.kind}: ${e.p50} / ${e.max}`).join(", "))
      rounds.push(round)
    }
    const idle = IDLE_S > 0 ? await idleStreams(server, h, target, agent) : undefined
    if (idle !== undefined) {
      log(`${kind} idle streams: server ${idle.server_cores_without_clients} cores without clients, ${idle.server_cores_with_clients} with ${idle.clients} ` +
        `following a run that emits nothing (${idle.server_cpu_ms_per_s_per_client} ms of CPU per second per stream)`)
    }
    const lagP99s = rounds.map((r) => r.lag_ms.p99)
    const growth = rounds.map((r) => r.rss_mib.peak - r.rss_mib.before)
    const first = rounds[0]!.rss_mib.before
    const left = rounds.map((r) => r.rss_mib.after - first)
    return {
      database: kind,
      rounds,
      idle,
      verdicts: {
        every_event_to_every_client: rounds.every((r) => r.clients_complete === SSE_CLIENTS),
        lag_p99_ms: { worst: Math.max(...lagP99s), met: lagP99s.every((p) => p < TARGET_LAG_P99_MS) },
        rss_growth_mib: { worst: r1(Math.max(...growth)), met: growth.every((g) => g < TARGET_RSS_GROWTH_MIB) },
        rss_left_mib: { worst: r1(Math.max(...left)), met: left.every((l) => l <= TARGET_RSS_LEFT_MIB) }
      }
    }
  } finally {
    clearInterval(sampler)
    agent.destroy()
    await stop(server.child, server.exited)
    await target.drop()
  }
}

// ------------------------------------------------------------------------------------------------ main

const main = async () => {
  if (!fs.existsSync(path.join(root, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` first")
  const env = machine()
  log(`autopilot API bench: ${env.date}, node ${env.node}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, commit ${env.commit}`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-bench-api-"))
  const guard = KEEP ? undefined : spawn("/bin/sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; rm -rf '${dir}'`], { detached: true, stdio: "ignore" })
  guard?.unref()
  let pg: Postgres.Server | undefined
  const cleanup = () => {
    killEverything()
    pg?.stop()
    pg = undefined
    guard?.kill()
    if (!KEEP) fs.rmSync(dir, { recursive: true, force: true })
  }
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      cleanup()
      process.exit(130)
    })
  }
  const deadline = setTimeout(() => {
    process.stderr.write(`bench-api: over the ${DEADLINE_S} s deadline, giving up\n`)
    cleanup()
    process.exit(2)
  }, DEADLINE_S * 1000)
  try {
    const began = performance.now()
    let pgUrl: string | undefined
    let pgSource = "not measured"
    const databases = [...DATABASES] as Array<Target["kind"]>
    if (databases.includes("postgres")) {
      const external = process.env["AUTOPILOT_BENCH_DATABASE_URL"]
      try {
        if (external !== undefined && external !== "") {
          pgUrl = external
          pgSource = "AUTOPILOT_BENCH_DATABASE_URL"
        } else {
          pg = await Postgres.start()
          pgUrl = pg.url
          pgSource = "started here (scripts/lib/postgres.ts, unsynced throwaway settings)"
        }
        pgSource = `${pgSource}, version ${await Postgres.version(pgUrl)}`
        log(`postgres: ${pgSource}`)
      } catch (error) {
        log(`postgres skipped: ${error instanceof Error ? error.message : String(error)}`)
        databases.splice(databases.indexOf("postgres"), 1)
      }
    }
    const results: { requests: Array<Awaited<ReturnType<typeof requests>>>; sse: Array<Awaited<ReturnType<typeof sse>>> } = { requests: [], sse: [] }
    for (const kind of databases) {
      if (ONLY.includes("requests")) results.requests.push(await requests(dir, kind, pgUrl))
      if (ONLY.includes("sse")) results.sse.push(await sse(dir, kind, pgUrl))
    }
    const summary = {
      machine: { ...env, loadavg_at_end: os.loadavg().map(r2) },
      command: ["node --import tsx scripts/bench-api.ts", ...process.argv.slice(2)].join(" "),
      postgres: pgSource,
      options: {
        missions: MISSIONS, requests: REQUESTS, concurrency: CONCURRENCY, warmup: WARMUP, repeats: REPEATS,
        sse_clients: SSE_CLIENTS, sse_iterations: SSE_ITERATIONS, sse_latency_ms: SSE_LATENCY_MS, sse_repeats: SSE_REPEATS, settle_s: SETTLE_S, idle_s: IDLE_S
      },
      targets: {
        sse: `every event to every client; live lag p99 < ${TARGET_LAG_P99_MS} ms; RSS peak − before < ${TARGET_RSS_GROWTH_MIB} MiB; ` +
          `RSS after each round ≤ the first round's before + ${TARGET_RSS_LEFT_MIB} MiB`,
        requests: "none: measurements"
      },
      results,
      wall_s: r1((performance.now() - began) / 1000)
    }
    printTable(summary)
    const out = path.join(root, "bench-out")
    fs.mkdirSync(out, { recursive: true })
    fs.writeFileSync(path.join(out, "bench-api.json"), `${JSON.stringify(summary, null, 2)}\n`)
    log("")
    log("JSON (also in bench-out/bench-api.json):")
    log(JSON.stringify(summary))
  } finally {
    clearTimeout(deadline)
    cleanup()
  }
}

const printTable = (summary: { machine: { loadavg_at_start: ReadonlyArray<number>; loadavg_at_end: ReadonlyArray<number> }; results: any; wall_s: number }) => {
  const { requests: rq, sse: ss } = summary.results
  log("")
  if (rq.length > 0) {
    log(`1. Requests: ${REQUESTS} per measurement, ${MISSIONS} missions listed, kept-alive clients; the median of ${REPEATS} repeats by req/s`)
    log("database  route           clients | req/s   | p50 ms | p99 ms | max ms | server CPU ms/req | req/s of every repeat")
    for (const d of rq) {
      for (const r of d.rows) {
        log(`${r.database.padEnd(9)} ${r.route.padEnd(15)} ${String(r.clients).padStart(7)} | ${String(r.req_per_s).padStart(7)} | ${String(r.p50_ms).padStart(6)} | ` +
          `${String(r.p99_ms).padStart(6)} | ${String(r.max_ms).padStart(6)} | ${String(r.server_cpu_ms_per_request).padStart(17)} | ${r.all_req_per_s.join(", ")}`)
      }
    }
    log("")
  }
  if (ss.length > 0) {
    log(`2. ${SSE_CLIENTS} SSE clients on one run (${SSE_ITERATIONS} iterations of ${SSE_LATENCY_MS} ms), ${SSE_REPEATS} rounds on one server`)
    log("database  round | clients with every event | lag p50 / p99 / max ms | RSS before → peak → after MiB | server CPU (cores) | µs/delivery | load | stream s")
    for (const d of ss) {
      for (const [i, r] of d.rounds.entries()) {
        log(`${d.database.padEnd(9)} ${String(i + 1).padStart(5)} | ${`${r.clients_complete}/${r.clients} of ${r.events_in_log}`.padStart(24)} | ` +
          `${`${r.lag_ms.p50} / ${r.lag_ms.p99} / ${r.lag_ms.max}`.padStart(22)} | ${`${r.rss_mib.before} → ${r.rss_mib.peak} → ${r.rss_mib.after}`.padStart(29)} | ` +
          `${String(r.server_cpu_share).padStart(18)} | ${String(r.server_cpu_us_per_delivery).padStart(11)} | ${String(r.loadavg_1m).padStart(4)} | ${r.stream_s}`)
      }
      const v = d.verdicts
      log(`${d.database}: every event to every client ${v.every_event_to_every_client ? "MET" : "NOT MET"}; lag p99 < ${TARGET_LAG_P99_MS} ms ${v.lag_p99_ms.met ? "MET" : "NOT MET"} ` +
        `(worst ${v.lag_p99_ms.worst}); RSS growth < ${TARGET_RSS_GROWTH_MIB} MiB ${v.rss_growth_mib.met ? "MET" : "NOT MET"} (worst ${v.rss_growth_mib.worst}); ` +
        `RSS left ≤ ${TARGET_RSS_LEFT_MIB} MiB ${v.rss_left_mib.met ? "MET" : "NOT MET"} (worst ${v.rss_left_mib.worst})`)
    }
    log("")
  }
  log(`load average ${summary.machine.loadavg_at_start.join(" ")} at start, ${summary.machine.loadavg_at_end.join(" ")} at end; wall ${summary.wall_s} s`)
}

main().catch((error) => {
  killEverything()
  process.stderr.write(`bench-api failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
