/**
 * The harness and the Portkey gateway side by side, one run, same fake upstream, same client: what each adds
 * to a chat completion at 1 client (p50 / p99), what each serves at 50 clients (requests per second, and CPU
 * per request), a streamed answer's first and last byte at 1 client, and a burst of 50 new connections after
 * an idle spell. Run with `npm run bench:portkey` (builds first: the harness runs from dist/).
 *
 *   node --import tsx scripts/bench-portkey.ts [--repeats=3] [--requests=1000] [--workers=50] [--per-worker=40]
 *                                              [--stream-requests=300] [--warmup=300] [--block=100]
 *                                              [--bursts=3] [--burst-idle-ms=4500] [--deadline-s=480]
 *                                              [--harness-root=DIR] [--reinstall] [--keep]
 *
 * Portkey is not a dependency of this project: on first use @portkey-ai/gateway (exact version below) is
 * installed into a folder under the system's temp directory (npm install --prefix), and started from there
 * (`build/start-server.js --port=P --headless`). Nothing of it is committed. Its @hono/node-server is pinned
 * to 1.13.5, the version Portkey's own repository patches and runs: with the 1.19 npm resolves today, its
 * lightweight Response keeps the upstream fetch Response's immutable headers, Portkey appends to them, and
 * every streamed call fails ("TypeError: immutable").
 *
 * Processes: the upstream (scripts/bench-upstream.mjs: a bare node:http server answering at once), the
 * harness (`node bin/autopilot.js harness serve`, every tier routed to that upstream, a temp database, its
 * key check, rate limit, classification and ledger row on every request), Portkey (provider `openai`,
 * `x-portkey-custom-host` pointing at the same upstream), the bare proxy (scripts/lib/bare-proxy.mjs: node:http
 * forwarding over a kept-alive http.Agent and piping the answer back, no other work: the floor under any proxy
 * on this machine), the Effect echo (bench-upstream.mjs --effect, for the burst only), and this client: one
 * node:http keep-alive Agent, the same body for all.
 *
 * Drift on a shared machine must hit all paths alike: at 1 client the paths take turns in blocks of
 * `--block` requests, the order rotating every block; at 50 clients in half rounds ordered D H P B B P H D (B: the bare proxy). The
 * whole measurement is repeated `--repeats` times; per scenario the repeat with the median harness figure is
 * reported. "Added" is the path's percentile minus the direct one. CPU per request is the server process's
 * user + system time from /proc (10 ms ticks) over its rounds.
 *
 * The burst: after `--burst-idle-ms` with no traffic, 50 requests at once, timed to their response headers,
 * `--bursts` times per server, servers taking turns: from a client pool that heeds the server's keep-alive
 * (as node's Agent with a timeout and undici do), and from a new pool (new connections).
 *
 * Targets (issue 12): the harness adds under 0.5 ms at p50 at 1 client, and serves at least 2x Portkey's
 * requests per second at 50 clients. A table goes to stdout, then one JSON line, also written to
 * bench-out/bench-portkey.json. Any non-200, a wrong answer, a ledger without exactly one clean row per
 * harness request, or the deadline ends the run with a non-zero exit.
 */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { median, option, r1, root, Sqlite } from "./bench-common.js"
import { type Bench, log, runBench } from "./lib/bench-main.js"
import { cpuMs, start, stop, stopAll } from "./lib/processes.js"

const REPEATS = Number(option("repeats", "3"))
const REQUESTS = Number(option("requests", "1000"))
const WORKERS = Number(option("workers", "50"))
const PER_WORKER = Number(option("per-worker", "40"))
const STREAM_REQUESTS = Number(option("stream-requests", "300"))
const WARMUP = Number(option("warmup", "300"))
const BLOCK = Number(option("block", "100"))
const BURSTS = Number(option("bursts", "3"))
const BURST_IDLE_MS = Number(option("burst-idle-ms", "4500"))
const DEADLINE_S = Number(option("deadline-s", "480"))
const REINSTALL = process.argv.includes("--reinstall")
const KEEP = process.argv.includes("--keep")

const TARGET_ADDED_P50_MS = 0.5
const TARGET_THROUGHPUT_RATIO = 2

/** Exact versions: a re-run measures the same Portkey. */
const PORTKEY = "1.15.2"
const HONO_NODE_SERVER = "1.13.5"
const depsDir = path.join(os.tmpdir(), `autopilot-bench-portkey-${PORTKEY}-hono-${HONO_NODE_SERVER}`)
const portkeyServer = path.join(depsDir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")

/** Whose harness is measured: this checkout's, or another built checkout's (`--harness-root`, e.g. a commit before). */
const harnessRoot = path.resolve(option("harness-root", root))
const cli = path.join(harnessRoot, "bin", "autopilot.js")
const upstreamScript = path.join(root, "scripts", "bench-upstream.mjs")
const bareProxyScript = path.join(root, "scripts", "lib", "bare-proxy.mjs")

// -------------------------------------------------------------------------------------------- processes

const install = () => {
  if (!REINSTALL && fs.existsSync(portkeyServer)) return false
  fs.rmSync(depsDir, { recursive: true, force: true })
  fs.mkdirSync(depsDir, { recursive: true })
  fs.writeFileSync(
    path.join(depsDir, "package.json"),
    JSON.stringify({ name: "autopilot-bench-portkey", private: true, overrides: { "@hono/node-server": HONO_NODE_SERVER } })
  )
  execFileSync("npm", [
    "install", "--prefix", depsDir, "--no-audit", "--no-fund", "--ignore-scripts", "--no-save", `@portkey-ai/gateway@${PORTKEY}`
  ], { stdio: ["ignore", "inherit", "inherit"] })
  return true
}

const versionOf = (dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

// ----------------------------------------------------------------------------------------------- client

interface Target {
  readonly name: string
  readonly port: number
  readonly pid: number
  /** Headers of its own: its key, or Portkey's provider and custom host. */
  readonly headers: http.OutgoingHttpHeaders
  /** The request count through this server, for the harness's ledger check. */
  sent: number
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
let staleSocketRetries = 0
let check: ((target: Target, res: http.IncomingMessage, text: string) => void) | undefined

interface Timing {
  /** ms from the call to the response headers, the first body byte, and the last. */
  readonly headers: number
  readonly first: number
  readonly last: number
}

/**
 * One POST /v1/chat/completions. A kept-alive socket the server closed just as it was reused (ECONNRESET
 * before any answer) is retried once, the failed attempt's time included, and counted.
 */
const call = (target: Target, body: string, via: http.Agent = agent, t0 = performance.now(), retry = true): Promise<Timing> =>
  new Promise((resolve, reject) => {
    target.sent++
    const req = http.request({
      agent: via,
      host: "127.0.0.1",
      port: target.port,
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...target.headers }
    }, (res) => {
      const headers = performance.now() - t0
      let first = 0
      const parts: Array<Buffer> = []
      const checking = check
      res.on("data", (d: Buffer) => {
        if (first === 0) first = performance.now() - t0
        if (checking !== undefined || res.statusCode !== 200) parts.push(d)
      })
      res.on("end", () => {
        const last = performance.now() - t0
        const text = Buffer.concat(parts).toString()
        if (res.statusCode !== 200) return reject(new Error(`${target.name} answered ${res.statusCode}: ${text.slice(0, 500)}`))
        try {
          checking?.(target, res, text)
        } catch (e) {
          return reject(e)
        }
        resolve({ headers, first, last })
      })
      res.on("error", reject)
    })
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && error.code === "ECONNRESET") {
        staleSocketRetries++
        target.sent--
        return resolve(call(target, body, via, t0, false))
      }
      reject(new Error(`${target.name}: ${error.message} (${error.code ?? "?"})`))
    })
    req.end(body)
  })

interface Round {
  readonly last: Array<number>
  readonly first: Array<number>
  wall: number
  cpu: number
}
const round = (): Round => ({ last: [], first: [], wall: 0, cpu: 0 })

/** `workers` clients, each sending `each` requests one after another. */
const run = async (target: Target, body: string, workers: number, each: number, into: Round) => {
  const cpu = cpuMs(target.pid)
  const started = performance.now()
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let i = 0; i < each; i++) {
      const t = await call(target, body)
      into.last.push(t.last)
      into.first.push(t.first)
    }
  }))
  into.wall += performance.now() - started
  into.cpu += cpuMs(target.pid) - cpu
}

// ------------------------------------------------------------------------------------------- statistics

const r3 = (x: number) => Math.round(x * 1000) / 1000
const pct = (xs: ReadonlyArray<number>, q: number) => {
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}
const summary = (r: Round) => ({
  n: r.last.length,
  p50_ms: r3(pct(r.last, 0.5)),
  p99_ms: r3(pct(r.last, 0.99)),
  first_byte_p50_ms: r3(pct(r.first, 0.5)),
  first_byte_p99_ms: r3(pct(r.first, 0.99)),
  req_per_s: r1(r.last.length / (r.wall / 1000)),
  cpu_ms_per_request: r3(r.cpu / r.last.length)
})
type Summary = ReturnType<typeof summary>

const added = (path: Summary, direct: Summary) => ({
  ...path,
  added_p50_ms: r3(path.p50_ms - direct.p50_ms),
  added_p99_ms: r3(path.p99_ms - direct.p99_ms),
  added_first_byte_p50_ms: r3(path.first_byte_p50_ms - direct.first_byte_p50_ms)
})

// ------------------------------------------------------------------------------------------------- main

const main = async ({ began, machine, tmp }: Bench) => {
  const installed = install()
  const versions = {
    portkey: versionOf(path.join(depsDir, "node_modules", "@portkey-ai", "gateway")),
    "@hono/node-server": versionOf(path.join(depsDir, "node_modules", "@hono", "node-server"))
  }
  log(`Portkey ${versions.portkey} (@hono/node-server ${versions["@hono/node-server"]}) ${installed ? "installed" : "reused"} in ${depsDir}`)

  const ready = /listening on http:\/\/([\d.]+):(\d+)/
  const upstream = await start([upstreamScript], ready, "upstream")
  const upstreamPort = Number(upstream.match[2])
  const db = path.join(tmp, "harness.db")
  const configFile = path.join(tmp, "harness.json")
  fs.writeFileSync(configFile, JSON.stringify({
    org: "bench",
    upstreams: { local: { base_url: `http://127.0.0.1:${upstreamPort}/v1` } },
    models: [{ id: "gpt-4.1-nano", upstream: "local" }, { id: "gpt-4o-mini", upstream: "local" }, { id: "gpt-4.1", upstream: "local" }],
    tiers: { simple: "gpt-4.1-nano", medium: "gpt-4o-mini", complex: "gpt-4.1" },
    requests_per_minute: 10_000_000
  }))
  const created = await promisify(execFile)(process.execPath, [
    cli, "harness", "key", "create", "--user", "bench", "--project", "bench", "--requests-per-minute", "10000000", "--format", "json", "--db", db
  ], { cwd: root })
  const key = (JSON.parse(created.stdout) as { key: string }).key
  const served = await start([cli, "harness", "serve", "--port", "0", "--quiet", "--config", configFile, "--db", db], /harness listening on http:\/\/([\d.]+):(\d+)/, "harness")
  const portkeyPort = await freePort()
  const portkey = await start([portkeyServer, `--port=${portkeyPort}`, "--headless"], /Ready for connections/, "Portkey", depsDir)

  const direct: Target = { name: "direct", port: upstreamPort, pid: upstream.child.pid!, headers: { authorization: "Bearer none" }, sent: 0 }
  const harness: Target = { name: "harness", port: Number(served.match[2]), pid: served.child.pid!, headers: { authorization: `Bearer ${key}` }, sent: 0 }
  const pk: Target = {
    name: "Portkey",
    port: portkeyPort,
    pid: portkey.child.pid!,
    headers: { authorization: "Bearer none", "x-portkey-provider": "openai", "x-portkey-custom-host": `http://127.0.0.1:${upstreamPort}/v1` },
    sent: 0
  }
  const floor = await start([bareProxyScript, `--to=http://127.0.0.1:${upstreamPort}`], ready, "bare proxy")
  const bare: Target = { name: "bare proxy", port: Number(floor.match[2]), pid: floor.child.pid!, headers: {}, sent: 0 }
  const paths = [direct, harness, pk, bare]
  log(
    `upstream :${upstreamPort}, harness (${harnessRoot}) :${harness.port} (pid ${harness.pid}), Portkey :${pk.port} (pid ${pk.pid}), ` +
      `bare proxy :${bare.port} (pid ${bare.pid}); temp dir ${tmp}`
  )

  const plain = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "Say OK." }], max_tokens: 16 })
  const streamed = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "Say OK." }], max_tokens: 16, stream: true })

  // Answers are checked during the warm-up, then only their status (the check would cost the client time).
  check = (target, res, text) => {
    if (res.headers["content-type"]?.includes("text/event-stream")) {
      if (!text.includes(`"content":"K"`) || !text.trimEnd().endsWith("data: [DONE]")) throw new Error(`${target.name}: bad stream: ${text}`)
      return
    }
    const answer = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }>; usage?: { cost_usd?: number } }
    if (answer.choices?.[0]?.message?.content !== "OK") throw new Error(`${target.name}: bad answer: ${text}`)
    if (target === harness && typeof answer.usage?.cost_usd !== "number") throw new Error(`harness answer not priced: ${text}`)
  }
  for (const target of paths) {
    const scratch = round()
    await run(target, plain, 1, WARMUP, scratch)
    await run(target, plain, WORKERS, Math.max(2, Math.ceil(WARMUP / WORKERS)), scratch)
    await run(target, streamed, 1, Math.ceil(WARMUP / 3), scratch)
  }
  check = undefined
  log(`warm-up done (${r1((performance.now() - began) / 1000)} s)`)

  /** Concurrency 1: blocks of BLOCK requests, the paths taking turns, the order rotating every block. */
  const sequential = async (body: string, n: number) => {
    const rounds = paths.map(round)
    for (let done = 0, i = 0; done < n; done += BLOCK, i++) {
      for (let j = 0; j < paths.length; j++) {
        const k = (i + j) % paths.length
        await run(paths[k]!, body, 1, Math.min(BLOCK, n - done), rounds[k]!)
      }
    }
    return rounds.map(summary)
  }
  /** WORKERS clients at once, in half rounds D H P B B P H D, after (re)opening their connections untimed. */
  const concurrent = async () => {
    const rounds = paths.map(round)
    for (const target of paths) await run(target, plain, WORKERS, 2, round())
    const half = Math.ceil(PER_WORKER / 2)
    for (const k of [0, 1, 2, 3]) await run(paths[k]!, plain, WORKERS, half, rounds[k]!)
    for (const k of [3, 2, 1, 0]) await run(paths[k]!, plain, WORKERS, PER_WORKER - half, rounds[k]!)
    return rounds.map(summary)
  }

  const repeats: Array<{ c1: Array<Summary>; cN: Array<Summary>; stream: Array<Summary> }> = []
  for (let r = 0; r < REPEATS; r++) {
    const c1 = await sequential(plain, REQUESTS)
    const cN = await concurrent()
    const stream = await sequential(streamed, STREAM_REQUESTS)
    repeats.push({ c1, cN, stream })
    log(
      `repeat ${r + 1}/${REPEATS}: c1 added p50 harness ${r3(c1[1]!.p50_ms - c1[0]!.p50_ms)} ms, Portkey ${r3(c1[2]!.p50_ms - c1[0]!.p50_ms)} ms; ` +
        `c${WORKERS} req/s harness ${cN[1]!.req_per_s}, Portkey ${cN[2]!.req_per_s}; ` +
        `streamed first byte p50 harness ${stream[1]!.first_byte_p50_ms}, Portkey ${stream[2]!.first_byte_p50_ms} ms (${r1((performance.now() - began) / 1000)} s)`
    )
  }

  // Bursts: after an idle spell, WORKERS requests at once, timed to response headers. Each server has a pool of
  // its own that heeds the server's `Keep-Alive: timeout=N` (drops an idle connection a second before), as
  // node's Agent with a timeout and undici do: whether the burst finds its connections or opens new ones is
  // the server's keep-alive. The Effect echo keeps Node's default (5 s), the harness did before; the last
  // burst of each round is on a new pool: new connections to every server.
  const echo = await start([upstreamScript, "--effect"], ready, "Effect echo")
  const echoTarget: Target = { name: "Effect echo", port: Number(echo.match[2]), pid: echo.child.pid!, headers: {}, sent: 0 }
  const bursting = [harness, pk, echoTarget, direct]
  const pools = new Map(bursting.map((t) => [t.name, new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 60_000 })]))
  type Burst = { p50_ms: number; max_ms: number; new_connections: number }
  const bursts = new Map<string, { kept: Array<Burst>; fresh: Array<Burst> }>(bursting.map((t) => [t.name, { kept: [], fresh: [] }]))
  const timedBurst = async (target: Target, pool: http.Agent) => {
    const opened = { n: 0 }
    const times = await Promise.all(Array.from({ length: WORKERS }, () =>
      new Promise<number>((resolve, reject) => {
        const t0 = performance.now()
        const req = http.request({
          agent: pool,
          host: "127.0.0.1",
          port: target.port,
          method: "POST",
          path: "/v1/chat/completions",
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(plain), ...target.headers }
        }, (res) => {
          const ms = performance.now() - t0
          res.resume()
          res.on("end", () => (res.statusCode === 200 ? resolve(ms) : reject(new Error(`${target.name} answered ${res.statusCode}`))))
        })
        target.sent++
        req.on("socket", () => {
          if (!req.reusedSocket) opened.n++
        })
        req.on("error", reject)
        req.end(plain)
      })))
    return { p50_ms: r1(pct(times, 0.5)), max_ms: r1(pct(times, 1)), new_connections: opened.n }
  }
  for (const target of bursting) await timedBurst(target, pools.get(target.name)!)
  for (let b = 0; b < BURSTS; b++) {
    for (const target of bursting) {
      await new Promise((resolve) => setTimeout(resolve, BURST_IDLE_MS))
      bursts.get(target.name)!.kept.push(await timedBurst(target, pools.get(target.name)!))
    }
    for (const target of bursting) {
      await new Promise((resolve) => setTimeout(resolve, BURST_IDLE_MS))
      const fresh = new http.Agent({ keepAlive: true, maxSockets: 256 })
      bursts.get(target.name)!.fresh.push(await timedBurst(target, fresh))
      fresh.destroy()
    }
    log(
      `burst ${b + 1}/${BURSTS}, max ms (new connections) after ${BURST_IDLE_MS} ms idle, pooled: ` +
        bursting.map((t) => `${t.name} ${bursts.get(t.name)!.kept.at(-1)!.max_ms} (${bursts.get(t.name)!.kept.at(-1)!.new_connections})`).join(", ") +
        `; new pool: ${bursting.map((t) => `${t.name} ${bursts.get(t.name)!.fresh.at(-1)!.max_ms}`).join(", ")} (${r1((performance.now() - began) / 1000)} s)`
    )
  }
  for (const pool of pools.values()) pool.destroy()
  await stop(echo.child)

  const loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100)
  await stop(served.child) // SIGTERM: whatever rows are queued are written before it exits
  const ledger = new Sqlite(db)
  const rows = ledger.prepare("SELECT COUNT(*) AS n, SUM(status = 200 AND error IS NULL) AS ok FROM harness_ledger").get() as { n: number; ok: number }
  ledger.close()
  if (rows.n !== harness.sent || rows.ok !== harness.sent) {
    throw new Error(`the ledger holds ${rows.n} rows (${rows.ok} clean) for ${harness.sent} requests through the harness`)
  }

  const pick = <A>(xs: ReadonlyArray<A>, by: (a: A) => number) => [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!
  const c1 = pick(repeats.map((r) => r.c1), (s) => s[1]!.p50_ms - s[0]!.p50_ms)
  const cN = pick(repeats.map((r) => r.cN), (s) => s[1]!.req_per_s)
  const stream = pick(repeats.map((r) => r.stream), (s) => s[1]!.first_byte_p50_ms)
  const scenario = (s: Array<Summary>) => ({
    direct: s[0]!,
    harness: added(s[1]!, s[0]!),
    portkey: added(s[2]!, s[0]!),
    bare_proxy: added(s[3]!, s[0]!),
    harness_above_bare_p50_ms: r3(s[1]!.p50_ms - s[3]!.p50_ms)
  })
  const result = {
    machine: { ...machine, loadavg_at_end: loadavgAtEnd },
    versions,
    settings: { harness_root: harnessRoot, repeats: REPEATS, requests: REQUESTS, workers: WORKERS, per_worker: PER_WORKER, stream_requests: STREAM_REQUESTS, warmup: WARMUP, block: BLOCK, bursts: BURSTS, burst_idle_ms: BURST_IDLE_MS },
    c1: scenario(c1),
    [`c${WORKERS}`]: scenario(cN),
    stream_c1: scenario(stream),
    all_repeats: {
      c1_added_p50_ms: repeats.map((r) => ({
        harness: r3(r.c1[1]!.p50_ms - r.c1[0]!.p50_ms),
        portkey: r3(r.c1[2]!.p50_ms - r.c1[0]!.p50_ms),
        bare_proxy: r3(r.c1[3]!.p50_ms - r.c1[0]!.p50_ms)
      })),
      cN_req_per_s: repeats.map((r) => ({ harness: r.cN[1]!.req_per_s, portkey: r.cN[2]!.req_per_s })),
      stream_first_byte_p50_ms: repeats.map((r) => ({ harness: r.stream[1]!.first_byte_p50_ms, portkey: r.stream[2]!.first_byte_p50_ms }))
    },
    bursts: Object.fromEntries([...bursts].map(([name, { fresh, kept }]) => [name, {
      pooled: { median_p50_ms: r1(median(kept.map((b) => b.p50_ms))), median_max_ms: r1(median(kept.map((b) => b.max_ms))), all: kept },
      new_connections: { median_p50_ms: r1(median(fresh.map((b) => b.p50_ms))), median_max_ms: r1(median(fresh.map((b) => b.max_ms))), all: fresh }
    }])),
    targets: {
      added_p50_ms: { target: `< ${TARGET_ADDED_P50_MS}`, harness: r3(c1[1]!.p50_ms - c1[0]!.p50_ms), met: c1[1]!.p50_ms - c1[0]!.p50_ms < TARGET_ADDED_P50_MS },
      throughput_vs_portkey: {
        target: `>= ${TARGET_THROUGHPUT_RATIO}x`,
        ratio: r3(cN[1]!.req_per_s / cN[2]!.req_per_s),
        met: cN[1]!.req_per_s >= TARGET_THROUGHPUT_RATIO * cN[2]!.req_per_s
      }
    },
    ledger_rows: rows.n,
    stale_socket_retries: staleSocketRetries,
    wall_s: r1((performance.now() - began) / 1000)
  }

  const pad = (cells: ReadonlyArray<string | number>, widths: ReadonlyArray<number>) =>
    cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join("  ")
  const w = [22, 16, 16, 16, 16, 22, 22, 16]
  log("")
  log(`median repeat of ${REPEATS}; ms; added = path percentile - direct percentile; cpu = that server's process only`)
  log(pad(["scenario", "direct p50/p99", "harness p50/p99", "Portkey p50/p99", "bare p50/p99", "added H / P / bare p50", "req/s D / H / P / bare", "cpu H / P / bare"], w))
  const line = (label: string, s: Array<Summary>, first = false) => {
    const pair = (x: Summary) => (first ? `${x.first_byte_p50_ms.toFixed(2)} / ${x.first_byte_p99_ms.toFixed(2)}` : `${x.p50_ms.toFixed(3)} / ${x.p99_ms.toFixed(2)}`)
    const add = (x: Summary) => (first ? x.first_byte_p50_ms - s[0]!.first_byte_p50_ms : x.p50_ms - s[0]!.p50_ms).toFixed(3)
    log(pad([
      label,
      pair(s[0]!),
      pair(s[1]!),
      pair(s[2]!),
      pair(s[3]!),
      `${add(s[1]!)} / ${add(s[2]!)} / ${add(s[3]!)}`,
      s.map((x) => Math.round(x.req_per_s)).join(" / "),
      `${s[1]!.cpu_ms_per_request.toFixed(2)} / ${s[2]!.cpu_ms_per_request.toFixed(2)} / ${s[3]!.cpu_ms_per_request.toFixed(2)}`
    ], w))
  }
  line("1 client", c1)
  line(`${WORKERS} clients`, cN)
  line("streamed, last byte", stream)
  line("streamed, first byte", stream, true)
  log("")
  log(`a burst of ${WORKERS} requests after ${BURST_IDLE_MS} ms idle, time to response headers, p50 / max ms (median of ${BURSTS} bursts):`)
  for (const t of bursting) {
    const { new_connections: fresh, pooled } = result.bursts[t.name]!
    log(
      `  ${t.name.padEnd(12)} from a pool heeding its keep-alive ${pooled.median_p50_ms} / ${pooled.median_max_ms} ` +
        `(new connections opened: ${pooled.all.map((b) => b.new_connections).join(", ")}); on new connections ${fresh.median_p50_ms} / ${fresh.median_max_ms}`
    )
  }
  log("")
  const { added_p50_ms, throughput_vs_portkey } = result.targets
  log(`target: harness added p50 at 1 client ${added_p50_ms.target} ms: ${added_p50_ms.harness} ms, ${added_p50_ms.met ? "MET" : "NOT MET"}`)
  log(
    `floor: a bare node:http proxy (kept-alive http.Agent, no work) adds ${result.c1.bare_proxy.added_p50_ms} ms at p50; ` +
      `the harness is ${result.c1.harness_above_bare_p50_ms} ms above it`
  )
  log(`target: harness req/s at ${WORKERS} clients ${throughput_vs_portkey.target} Portkey's: ${throughput_vs_portkey.ratio}x, ${throughput_vs_portkey.met ? "MET" : "NOT MET"}`)
  log(`ledger: ${rows.n} rows for ${harness.sent} harness requests, all clean; stale sockets retried ${staleSocketRetries}; load at end ${loadavgAtEnd.join(" ")}; wall ${result.wall_s} s`)
  log(JSON.stringify(result))
  fs.mkdirSync(path.join(root, "bench-out"), { recursive: true })
  fs.writeFileSync(path.join(root, "bench-out", "bench-portkey.json"), `${JSON.stringify(result, null, 2)}\n`)
}

runBench({
  name: "bench-portkey",
  title: "harness vs Portkey",
  deadlineS: DEADLINE_S,
  keep: KEEP,
  cleanup: () => stopAll(agent),
  main
})
