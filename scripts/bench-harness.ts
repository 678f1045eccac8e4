/**
 * The harness's overhead per request: latency through `autopilot harness serve` minus latency straight to
 * the upstream it forwards to, at 1 and at 50 concurrent clients, and for a streamed answer at 1.
 * Run with `npm run bench:harness` (builds first: the harness child runs from dist/).
 *
 *   node --import tsx scripts/bench-harness.ts [--repeats=3] [--requests=1500] [--workers=50] [--per-worker=40]
 *                                              [--stream-requests=400] [--warmup=300] [--block=100]
 *                                              [--no-diagnostics] [--deadline-s=165] [--cpu-prof=DIR] [--keep]
 *
 * Three processes: the upstream (scripts/bench-upstream.mjs, a bare node:http server answering at once
 * with a fixed chat.completion), the harness (`node bin/autopilot.js harness serve`, on a temp config that
 * sends every tier to that upstream, and a temp database), and this client. The client uses one node:http
 * keep-alive Agent and the same body, headers and code for both paths; each request is timed with
 * performance.now from the call to the last byte of the answer.
 *
 * Drift on a shared machine must hit both paths alike, so the paths alternate: at concurrency 1 in blocks
 * of `--block` requests (direct first in even blocks, harness first in odd ones); at concurrency 50 in
 * half rounds ordered D H H D. The whole measurement is repeated `--repeats` times; per scenario the repeat
 * with the median added p50 is reported, the others are listed. "Added" is the harness percentile minus the
 * direct percentile (a difference of percentiles, not a percentile of per-request differences).
 *
 * Also reported: the harness process's CPU time per request (from /proc, 10 ms ticks), and a check that the
 * ledger holds one row per request sent through the harness. Any non-200 answer, a wrong answer or the
 * deadline ends the run with a non-zero exit. A table goes to stdout, then the figures as one JSON line,
 * also written to bench-out/bench-harness.json.
 *
 * Diagnostics (skip with --no-diagnostics) say where the added time goes:
 * - two reference servers, timed like the harness (1 client and WORKERS clients, blocks alternating with
 *   direct and harness): a bare proxy (node:http server + global fetch to the upstream, nothing else) and
 *   an echo served by @effect/platform-node's HttpServer + HttpRouter (reads the body as JSON, answers the
 *   fixed completion itself; no forwarding);
 * - in this process, after the harness child has stopped, on a fresh database, the harness's own pieces
 *   one at a time, sequentially (wall mean and p50, and this process's CPU, µs per call): key lookup, rate
 *   limiter, body validation, classification, ledger write, the upstream call through the openai SDK
 *   (against fetch and node:http to the same upstream), and Gateway.chat whole (all of that but the key
 *   lookup, without HTTP). They are skipped if less than 70 s of the deadline is left.
 *
 * --cpu-prof=DIR runs the harness under `node --cpu-prof`, leaves the .cpuprofile in DIR, and splits the
 * harness's CPU time during the repeats by component (openai SDK, fetch, SQLite, Schema, HTTP server,
 * Effect runtime, GC, ...). The profiler slows the harness down: take latency figures from a run without it.
 */
import type * as Fx from "effect/Effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { option, root } from "./bench-common.js"
import { type Bench, runBench } from "./lib/bench-main.js"
import { cpuMs, start, stop, stopAll } from "./lib/processes.js"

const cli = path.join(root, "bin", "autopilot.js")
const upstreamScript = path.join(root, "scripts", "bench-upstream.mjs")

// ---------------------------------------------------------------------------------------------- options

const REPEATS = Number(option("repeats", "3"))
const REQUESTS = Number(option("requests", "1500"))
const WORKERS = Number(option("workers", "50"))
const PER_WORKER = Number(option("per-worker", "40"))
const STREAM_REQUESTS = Number(option("stream-requests", "400"))
const WARMUP = Number(option("warmup", "300"))
const BLOCK = Number(option("block", "100"))
const DEADLINE_S = Number(option("deadline-s", "165"))
const CPU_PROF = option("cpu-prof", "")
const KEEP = process.argv.includes("--keep")
const DIAGNOSTICS = !process.argv.includes("--no-diagnostics")

const TARGET_ADDED_P50_MS = 2

// -------------------------------------------------------------------------------------------- processes


// ----------------------------------------------------------------------------------------------- client

// `timeout` makes the Agent honour a server's `Keep-Alive: timeout=5` (the harness's node:http default) and
// drop an idle socket a second before the server does; Node 20 ignores the hint without one.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 60_000, timeout: 60_000 })
/** Requests sent again because a kept-alive socket was closed under them before any answer (see call). */
let staleSocketRetries = 0

interface Target {
  readonly name: string
  readonly host: string
  readonly port: number
  /** The server's process, whose CPU time each round adds up. */
  readonly pid: number
}

const headers = (body: string, key: string) => ({
  "content-type": "application/json",
  "content-length": Buffer.byteLength(body),
  authorization: `Bearer ${key}`
})

let checkAnswer: ((target: Target, res: http.IncomingMessage, text: string) => void) | undefined

/**
 * One POST /v1/chat/completions; resolves with ms from the call to the last byte; any non-200 rejects.
 * A kept-alive socket the server closed just as it was reused (ECONNRESET before any answer, the race
 * Node's documentation describes) is retried once, counted in staleSocketRetries, with the time of the
 * failed attempt included.
 */
const call = (target: Target, body: string, head: http.OutgoingHttpHeaders, t0 = performance.now(), retry = true) =>
  new Promise<number>((resolve, reject) => {
    const req = http.request(
      { agent, host: target.host, port: target.port, method: "POST", path: "/v1/chat/completions", headers: head },
      (res) => {
        const check = checkAnswer
        const parts: Array<Buffer> = []
        res.on("data", (d: Buffer) => {
          if (check !== undefined || res.statusCode !== 200) parts.push(d)
        })
        res.on("end", () => {
          const ms = performance.now() - t0
          if (res.statusCode !== 200) {
            return reject(new Error(`${target.name} answered ${res.statusCode}: ${Buffer.concat(parts).toString().slice(0, 500)}`))
          }
          try {
            check?.(target, res, Buffer.concat(parts).toString())
          } catch (e) {
            return reject(e)
          }
          resolve(ms)
        })
        res.on("error", reject)
      }
    )
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && error.code === "ECONNRESET") {
        staleSocketRetries++
        return resolve(call(target, body, head, t0, false))
      }
      reject(new Error(`${target.name}: ${error.message} (${error.code ?? "?"}, ${req.reusedSocket ? "reused" : "new"} socket)`))
    })
    req.end(body)
  })

interface Round {
  readonly ms: Array<number>
  /** Wall time of the round(s), ms. */
  wall: number
  /** CPU time of the server process during the round(s), ms. */
  cpu: number
}
const round = (): Round => ({ ms: [], wall: 0, cpu: 0 })

/** `workers` clients, each sending `each` requests one after another. */
const run = async (target: Target, body: string, head: http.OutgoingHttpHeaders, workers: number, each: number, into: Round) => {
  const cpu = cpuMs(target.pid)
  const started = performance.now()
  await Promise.all(Array.from({ length: workers }, async () => {
    for (let i = 0; i < each; i++) into.ms.push(await call(target, body, head))
  }))
  into.wall += performance.now() - started
  into.cpu += cpuMs(target.pid) - cpu
}

// ------------------------------------------------------------------------------------------- statistics

const r1 = (x: number) => Math.round(x * 10) / 10
const r3 = (x: number) => Math.round(x * 1000) / 1000

const percentile = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const summary = (r: Round) => {
  const sorted = Float64Array.from(r.ms).sort()
  let sum = 0
  for (const x of sorted) sum += x
  return {
    n: sorted.length,
    mean_ms: r3(sum / sorted.length),
    p50_ms: r3(percentile(sorted, 0.5)),
    p99_ms: r3(percentile(sorted, 0.99)),
    max_ms: r3(sorted[sorted.length - 1]!),
    req_per_s: r1(sorted.length / (r.wall / 1000)),
    server_cpu_ms_per_request: r3(r.cpu / sorted.length)
  }
}
type Summary = ReturnType<typeof summary>

const compare = (direct: Round, harness: Round) => {
  const d = summary(direct)
  const h = summary(harness)
  return {
    direct: d,
    harness: h,
    added_p50_ms: r3(h.p50_ms - d.p50_ms),
    added_p99_ms: r3(h.p99_ms - d.p99_ms),
    added_mean_ms: r3(h.mean_ms - d.mean_ms)
  }
}
type Comparison = ReturnType<typeof compare>

const median = <A>(xs: ReadonlyArray<A>, by: (a: A) => number): A => [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!

const referenceTable = (targets: ReadonlyArray<Target>, c1: ReadonlyArray<Round>, cN: ReadonlyArray<Round>) => {
  const base1 = summary(c1[0]!)
  const baseN = summary(cN[0]!)
  return targets.map((t, k) => {
    const one = summary(c1[k]!)
    const many = summary(cN[k]!)
    return {
      server: t.name,
      c1: one,
      c1_added_p50_ms: r3(one.p50_ms - base1.p50_ms),
      cN: many,
      cN_added_p50_ms: r3(many.p50_ms - baseN.p50_ms)
    }
  })
}

// ---------------------------------------------------------------------------------- profile breakdown

/** The monotonic clock V8's CPU profiles use, µs. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

/**
 * Where sampled stacks point, checked from the leaf up: the first frame that is either a known component's
 * or Effect's own (outside Schema) names the sample. So fetch called by the SDK counts as fetch, the SDK's
 * own code as the SDK, and the Effect run loop driving the harness's code (even when it runs inside the
 * node:http request callback) as "Effect runtime".
 */
const components: ReadonlyArray<readonly [string, RegExp]> = [
  ["fetch (undici) to the upstream", /undici/],
  ["openai SDK (request building, response handling)", /\/node_modules\/openai\//],
  ["SQLite via @effect/sql (key lookup, ledger insert)", /@effect\/sql|better-sqlite3|\/harness\/HarnessStore\.js/],
  ["Schema (body validation, row decoding/encoding)", /\/node_modules\/effect\/dist\/esm\/(Schema|ParseResult)\.js/],
  ["rate limiter (@effect/experimental)", /@effect\/experimental/],
  ["harness logic (Gateway, Classifier, Policy, budgets)", /\/dist\/harness\//],
  ["HTTP server (node:http, @effect/platform)", /^node:(_http|net$|internal\/(streams|stream_base_commons|http))|@effect\/platform/],
  ["crypto (key hash)", /^node:internal\/crypto/]
]

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string }
  readonly children?: ReadonlyArray<number>
}

/** CPU of the harness by component between two instants, from a --cpu-prof profile. */
const profileBreakdown = (file: string, fromUs: number, toUs: number, requests: number) => {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as {
    nodes: ReadonlyArray<ProfileNode>
    startTime: number
    samples: ReadonlyArray<number>
    timeDeltas: ReadonlyArray<number>
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const memo = new Map<number, string>()
  const categorise = (id: number) => {
    const leaf = byId.get(id)!.callFrame.functionName
    if (leaf === "(idle)" || leaf === "(garbage collector)" || leaf === "(program)") return leaf
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const url = byId.get(cur)!.callFrame.url.replace(/^file:\/\//, "")
      const hit = components.find(([, pattern]) => pattern.test(url))
      if (hit !== undefined) return hit[0]
      if (url.includes("/node_modules/effect/")) return "Effect runtime (fibers, scheduling, spans, Effect.gen)"
    }
    return "other (Node internals, native)"
  }
  const totals = new Map<string, number>()
  let t = profile.startTime
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0
    if (t < fromUs || t > toUs) return
    let category = memo.get(id)
    if (category === undefined) memo.set(id, category = categorise(id))
    totals.set(category, (totals.get(category) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const busy = [...totals].filter(([k]) => k !== "(idle)").reduce((sum, [, us]) => sum + us, 0)
  return {
    window_s: r1((toUs - fromUs) / 1e6),
    requests,
    busy_us_per_request: r1(busy / requests),
    idle_share: r3((totals.get("(idle)") ?? 0) / (toUs - fromUs)),
    components: [...totals].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).map(([component, us]) => ({
      component,
      share: r3(us / busy),
      us_per_request: r1(us / requests)
    }))
  }
}

// ------------------------------------------------------------------------------------- in-process stages

interface Timing {
  readonly mean_us: number
  readonly p50_us: number
  /** CPU time of this process (all its threads: GC, JIT) per call. */
  readonly cpu_us: number
}

const timingOf = (us: Float64Array, cpu: NodeJS.CpuUsage): Timing => {
  let sum = 0
  for (const x of us) sum += x
  return { mean_us: r1(sum / us.length), p50_us: r1(percentile(us.sort(), 0.5)), cpu_us: r1((cpu.user + cpu.system) / us.length) }
}

/** Each piece of the harness's request path on its own, in this process, on a fresh database. */
const stageTimings = async (configText: string, file: string, upstream: Target, body: string, head: http.OutgoingHttpHeaders) => {
  const { Effect, Layer, ManagedRuntime, Stream } = await import("effect")
  const RateLimit = await import("../src/harness/RateLimit.js")
  const { SqlClient } = await import("@effect/sql")
  const Database = await import("../src/store/Database.js")
  const HarnessConfig = await import("../src/harness/HarnessConfig.js")
  const { HarnessStore } = await import("../src/harness/HarnessStore.js")
  const Gateway = await import("../src/harness/Gateway.js")
  const Upstreams = await import("../src/harness/Upstreams.js")
  const { validate } = await import("../src/harness/ChatRequest.js")
  const { classify } = await import("../src/harness/Classifier.js")

  // tsx turns source maps on, which makes every stack Effect captures (spans) cost far more than in the
  // served harness (plain `node`): off, as there.
  process.setSourceMapsEnabled(false)
  const config = await Effect.runPromise(HarnessConfig.parse(configText, "bench"))
  const runtime = ManagedRuntime.make(Gateway.layerWithStore(config).pipe(Layer.provideMerge(Database.layerSqlite(file))))
  const N = 1000

  /** µs per run of `effect`: n sequential runs after max(300, n / 2) untimed ones, in one fiber. */
  const timeEffect = <A, E, R>(effect: Fx.Effect<A, E, R>, n = N) =>
    Effect.gen(function*() {
      for (let i = 0; i < Math.max(300, n / 2); i++) yield* effect
      const us = new Float64Array(n)
      const cpu = process.cpuUsage()
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        yield* effect
        us[i] = (performance.now() - t0) * 1000
      }
      return timingOf(us, process.cpuUsage(cpu))
    })
  const timeSync = (f: () => unknown, n = N) => timeEffect(Effect.sync(f), n)
  const timePromise = (f: () => Promise<unknown>, n = N) => timeEffect(Effect.promise(f), n)

  try {
    return await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
      const store = yield* HarnessStore
      const uncached = yield* HarnessStore.make
      const gateway = yield* Gateway.Gateway
      const limiter = RateLimit.make()
      const sql = yield* SqlClient.SqlClient
      const upstreams = yield* Upstreams.make(config)
      const { key, record: keyRecord } = yield* store.createKey({ user: "bench", project: "bench", requests_per_minute: 1e9 })
      const parsed = JSON.parse(body) as { model: string }
      const request = validate(parsed)
      if (request._tag === "Left") return yield* Effect.dieMessage(request.left.message)
      const model = config.models[0]
      const forwarded = { ...parsed, model: model.id }
      const entry = {
        at: new Date().toISOString(),
        key_id: keyRecord.id,
        user: "bench",
        team: null,
        project: "bench",
        model_requested: "auto",
        model_used: model.id,
        tier: "simple",
        confidence: 0.99,
        input_tokens: 12,
        output_tokens: 1,
        cost_usd: 0.0000016,
        latency_ms: 1,
        status: 200,
        stream: false,
        policy_action: "routed by tier",
        budget_action: null,
        error: null
      }
      const upstreamUrl = `http://${upstream.host}:${upstream.port}/v1/chat/completions`
      const plainHeaders = { "content-type": "application/json" }
      const answered = async (response: Response) => {
        const text = await response.text()
        if (response.status !== 200) throw new Error(`the in-process harness answered ${response.status}: ${text}`)
        return text
      }
      return {
        "key lookup: store.authenticate (sha256, SELECT by hash, Schema decode)": yield* timeEffect(uncached.authenticate(key)),
        "rate limit: RateLimit.consume (a Map, plain code)": yield* timeSync(() => limiter.consume("bench", 1e9, Date.now())),
        "gateway.authenticate (header regex, key lookup, rate limiter)": yield* timeEffect(gateway.authenticate(`Bearer ${key}`)),
        "body: JSON.parse + validate (Schema ChatRequest)": yield* timeSync(() => validate(JSON.parse(body))),
        "classify": yield* timeSync(() => classify(request.right, config.classification)),
        "ledger write: store.record (Schema encode, INSERT ... RETURNING)": yield* timeEffect(store.record(entry)),
        "for scale: sql`SELECT 1` through @effect/sql": yield* timeEffect(sql`SELECT 1`),
        "upstream call: Upstreams.stream to its end (openai SDK -> fetch)": yield* timeEffect(
          Effect.flatMap(upstreams.stream(model, { ...forwarded, stream: true }), Stream.runDrain),
          500
        ),
        "upstream call: global fetch + text() (what the SDK uses underneath)": yield* timePromise(
          () => fetch(upstreamUrl, { method: "POST", headers: plainHeaders, body }).then(answered),
          500
        ),
        "upstream call: node:http keep-alive (the bench client)": yield* timePromise(() => call(upstream, body, head), 500),
        "key lookup through the KeyCache (a hit)": yield* timeEffect(store.authenticate(key)),
        "ledger batch of 50 rows: store.recordAll (one INSERT), per batch": yield* timeEffect(store.recordAll(Array(50).fill(entry)), 20),
        "upstream call: Upstreams.complete (Forwarder: node:http keep-alive)": yield* timeEffect(upstreams.complete(model, forwarded), 500),
        "Gateway.chat whole (validate .. classify .. route .. upstream call .. ledger row queued)": yield* timeEffect(gateway.chat(keyRecord, parsed), 500)
      }
    })))
  } finally {
    await runtime.dispose()
  }
}

// ------------------------------------------------------------------------------------------------- main

const main = async ({ began, log, machine, tmp }: Bench) => {
  // The upstream, then a key and a config pointing at it, then the harness.
  const upstream = await start([upstreamScript], /listening on http:\/\/([\d.]+):(\d+)/, "upstream")
  const direct: Target = { name: "direct", host: upstream.match[1]!, port: Number(upstream.match[2]), pid: upstream.child.pid! }
  const db = path.join(tmp, "harness.db")
  const configFile = path.join(tmp, "harness.json")
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      org: "bench",
      upstreams: { local: { base_url: `http://${direct.host}:${direct.port}/v1` } },
      models: [
        { id: "gpt-4.1-nano", upstream: "local" },
        { id: "gpt-4o-mini", upstream: "local" },
        { id: "gpt-4.1", upstream: "local" }
      ],
      tiers: { simple: "gpt-4.1-nano", medium: "gpt-4o-mini", complex: "gpt-4.1" },
      requests_per_minute: 10_000_000
    })
  )
  const created = await promisify(execFile)(
    process.execPath,
    [cli, "harness", "key", "create", "--user", "bench", "--project", "bench", "--requests-per-minute", "10000000", "--format", "json", "--db", db],
    { cwd: root }
  )
  const key = (JSON.parse(created.stdout) as { key: string }).key
  const profile = CPU_PROF === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${path.resolve(CPU_PROF)}`]
  const served = await start(
    [...profile, cli, "harness", "serve", "--port", "0", "--config", configFile, "--db", db],
    /harness listening on http:\/\/([\d.]+):(\d+)/,
    "harness"
  )
  const harness: Target = { name: "harness", host: served.match[1]!, port: Number(served.match[2]), pid: served.child.pid! }
  log(`upstream pid ${upstream.child.pid} at :${direct.port}; harness pid ${harness.pid} at :${harness.port}; temp dir ${tmp}`)

  const plainBody = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "Say OK." }], max_tokens: 16 })
  const streamBody = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "Say OK." }], max_tokens: 16, stream: true })
  const plainHead = headers(plainBody, key)
  const streamHead = headers(streamBody, key)

  // The answers are checked during warm-up, then only their status (the check would cost time on both paths).
  checkAnswer = (target, res, text) => {
    if (res.headers["content-type"]?.includes("text/event-stream")) {
      if (!text.includes(`"content":"K"`) || !text.trimEnd().endsWith("data: [DONE]")) throw new Error(`${target.name}: bad stream: ${text}`)
      return
    }
    const answer = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }>; usage?: { cost_usd?: number } }
    if (answer.choices?.[0]?.message?.content !== "OK") throw new Error(`${target.name}: bad answer: ${text}`)
    if (target.name === "harness" && (typeof answer.usage?.cost_usd !== "number" || res.headers["x-autopilot-model"] !== "gpt-4.1-nano")) {
      throw new Error(`harness answer not priced or not routed to gpt-4.1-nano: ${JSON.stringify(res.headers)} ${text}`)
    }
  }
  let harnessRequests = 0
  for (const target of [direct, harness]) {
    const scratch = round()
    await run(target, plainBody, plainHead, 1, WARMUP, scratch)
    await run(target, plainBody, plainHead, WORKERS, Math.max(2, Math.ceil(WARMUP / WORKERS)), scratch)
    await run(target, streamBody, streamHead, 1, Math.ceil(WARMUP / 3), scratch)
    if (target === harness) harnessRequests += scratch.ms.length
  }
  checkAnswer = undefined
  log(`warm-up: ${WARMUP} sequential + ${WORKERS} x ${Math.max(2, Math.ceil(WARMUP / WORKERS))} concurrent + ${Math.ceil(WARMUP / 3)} streamed per path (not reported)`)

  /** Concurrency 1, alternating blocks of BLOCK requests, the order flipped every block. */
  const sequential = async (body: string, head: http.OutgoingHttpHeaders, n: number) => {
    const d = round()
    const h = round()
    for (let done = 0, i = 0; done < n; done += BLOCK, i++) {
      const size = Math.min(BLOCK, n - done)
      for (const [target, into] of i % 2 === 0 ? [[direct, d], [harness, h]] as const : [[harness, h], [direct, d]] as const) {
        await run(target, body, head, 1, size, into)
      }
    }
    harnessRequests += h.ms.length
    return compare(d, h)
  }

  /**
   * Opens (or reuses) WORKERS connections to each server, untimed: idle sockets are dropped after 4 s, and
   * connection set-up is not what is measured.
   */
  const prime = async (targets: ReadonlyArray<Target>) => {
    for (const target of targets) {
      const scratch = round()
      await run(target, plainBody, plainHead, WORKERS, 2, scratch)
      if (target === harness) harnessRequests += scratch.ms.length
    }
  }

  /** WORKERS clients at once, in half rounds ordered D H H D. */
  const concurrent = async () => {
    const d = round()
    const h = round()
    const half = Math.ceil(PER_WORKER / 2)
    await prime([direct, harness])
    await run(direct, plainBody, plainHead, WORKERS, half, d)
    await run(harness, plainBody, plainHead, WORKERS, half, h)
    await run(harness, plainBody, plainHead, WORKERS, PER_WORKER - half, h)
    await run(direct, plainBody, plainHead, WORKERS, PER_WORKER - half, d)
    harnessRequests += h.ms.length
    return compare(d, h)
  }

  const repeats: Array<{ c1: Comparison; c50: Comparison; stream_c1?: Comparison }> = []
  const window = { fromUs: monotonicUs(), toUs: 0, requestsBefore: harnessRequests, requests: 0 }
  for (let r = 0; r < REPEATS; r++) {
    const c1 = await sequential(plainBody, plainHead, REQUESTS)
    const c50 = await concurrent()
    const stream_c1 = STREAM_REQUESTS > 0 ? await sequential(streamBody, streamHead, STREAM_REQUESTS) : undefined
    repeats.push({ c1, c50, ...(stream_c1 ? { stream_c1 } : {}) })
    log(
      `repeat ${r + 1}/${REPEATS}: added p50 / p99 ms: c1 ${c1.added_p50_ms} / ${c1.added_p99_ms}, c${WORKERS} ${c50.added_p50_ms} / ${c50.added_p99_ms}` +
        (stream_c1 ? `, stream c1 ${stream_c1.added_p50_ms} / ${stream_c1.added_p99_ms}` : "") +
        ` (${r1((performance.now() - began) / 1000)} s)`
    )
  }

  window.toUs = monotonicUs()
  window.requests = harnessRequests - window.requestsBefore

  // Reference servers, timed against direct and the harness in rotating blocks.
  let references: ReturnType<typeof referenceTable> | undefined
  // The diagnostics take ≈ 35 s on a quiet machine: skipped when the deadline is nearer than twice that.
  const diagnose = DIAGNOSTICS && (performance.now() - began) / 1000 < DEADLINE_S - 70
  if (DIAGNOSTICS && !diagnose) log(`diagnostics skipped: ${r1((performance.now() - began) / 1000)} s gone of the ${DEADLINE_S} s deadline`)
  if (diagnose) {
    const ready = /listening on http:\/\/([\d.]+):(\d+)/
    const bare = await start([upstreamScript, `--proxy=http://${direct.host}:${direct.port}/v1`], ready, "bare proxy")
    const echo = await start([upstreamScript, "--effect"], ready, "Effect echo")
    const targets: Array<Target> = [
      direct,
      { name: "bare proxy", host: bare.match[1]!, port: Number(bare.match[2]), pid: bare.child.pid! },
      { name: "Effect echo", host: echo.match[1]!, port: Number(echo.match[2]), pid: echo.child.pid! },
      harness
    ]
    for (const target of targets.slice(1, 3)) {
      const scratch = round()
      await run(target, plainBody, plainHead, 1, WARMUP, scratch)
      await run(target, plainBody, plainHead, WORKERS, 4, scratch)
    }
    const c1 = targets.map(round)
    const cN = targets.map(round)
    const n = Math.min(1000, REQUESTS)
    for (let done = 0, i = 0; done < n; done += BLOCK, i++) {
      for (let j = 0; j < targets.length; j++) {
        const k = (i + j) % targets.length
        await run(targets[k]!, plainBody, plainHead, 1, Math.min(BLOCK, n - done), c1[k]!)
      }
    }
    const each = Math.max(2, Math.ceil(PER_WORKER / 6))
    await prime(targets)
    for (const order of [[0, 1, 2, 3], [3, 2, 1, 0]]) {
      for (const k of order) await run(targets[k]!, plainBody, plainHead, WORKERS, each, cN[k]!)
    }
    harnessRequests += c1[3]!.ms.length + cN[3]!.ms.length
    references = referenceTable(targets, c1, cN)
    await Promise.all([stop(bare.child), stop(echo.child)])
    log(`references: ${n} requests per server at 1 client, ${WORKERS} x ${each * 2} at ${WORKERS} (${r1((performance.now() - began) / 1000)} s)`)
  }

  const loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100)
  // The ledger: one row per request that went through the harness (SIGTERM first, so it is all written).
  await stop(served.child)
  const Sqlite = createRequire(import.meta.url)("better-sqlite3") as new(file: string, options: object) => {
    prepare(sql: string): { get(): unknown }
    close(): void
  }
  const ledger = new Sqlite(db, { readonly: true })
  const rows = ledger.prepare("SELECT COUNT(*) AS n, SUM(status = 200 AND error IS NULL) AS ok FROM harness_ledger").get() as { n: number; ok: number }
  ledger.close()
  if (rows.n !== harnessRequests || rows.ok !== harnessRequests) {
    throw new Error(`ledger holds ${rows.n} rows (${rows.ok} clean) for ${harnessRequests} requests sent through the harness`)
  }

  const scenarios = {
    c1: { label: "1 client", concurrency: 1, pick: repeats.map((r) => r.c1) },
    [`c${WORKERS}`]: { label: `${WORKERS} clients`, concurrency: WORKERS, pick: repeats.map((r) => r.c50) },
    ...(STREAM_REQUESTS > 0 ? { stream_c1: { label: "1 client, streamed", concurrency: 1, pick: repeats.map((r) => r.stream_c1!) } } : {})
  }
  const reported = Object.fromEntries(Object.entries(scenarios).map(([name, s]) => {
    const chosen = median(s.pick, (c) => c.added_p50_ms)
    return [name, {
      label: s.label,
      concurrency: s.concurrency,
      median_repeat: s.pick.indexOf(chosen) + 1,
      ...chosen,
      all_repeats_added_p50_ms: s.pick.map((c) => c.added_p50_ms),
      all_repeats_added_p99_ms: s.pick.map((c) => c.added_p99_ms),
      target_added_p50_ms: TARGET_ADDED_P50_MS,
      target_met: chosen.added_p50_ms < TARGET_ADDED_P50_MS
    }]
  }))

  const row = (cells: ReadonlyArray<string | number>, widths: ReadonlyArray<number>) =>
    cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join("  ")
  const widths = [20, 16, 16, 16, 14, 9, 9, 11]
  log("")
  log(`median repeat of ${REPEATS}; ms; added = harness percentile - direct percentile; req/s = requests / wall time`)
  log(row(["scenario", "direct p50/p99", "harness p50/p99", "added p50/p99", "req/s d / h", "cpu ms/r", "target", "verdict"], widths))
  for (const s of Object.values(reported)) {
    const pair = (a: Summary) => `${a.p50_ms.toFixed(3)} / ${a.p99_ms.toFixed(2)}`
    log(row([
      s.label,
      pair(s.direct),
      pair(s.harness),
      `${s.added_p50_ms.toFixed(3)} / ${s.added_p99_ms.toFixed(2)}`,
      `${Math.round(s.direct.req_per_s)} / ${Math.round(s.harness.req_per_s)}`,
      s.harness.server_cpu_ms_per_request.toFixed(2),
      `< ${TARGET_ADDED_P50_MS} p50`,
      s.target_met ? "MET" : "NOT MET"
    ], widths))
  }
  log(
    `ledger: ${rows.n} rows for ${harnessRequests} harness requests, all status 200; stale keep-alive sockets retried: ${staleSocketRetries}; ` +
      `load at end ${loadavgAtEnd.join(" ")}`
  )

  let profiled: ReturnType<typeof profileBreakdown> | undefined
  if (CPU_PROF !== "") {
    const dir = path.resolve(CPU_PROF)
    const file = fs.readdirSync(dir).find((f) => f.includes(`.${harness.pid}.`) && f.endsWith(".cpuprofile"))
    if (file === undefined) throw new Error(`no CPU profile of the harness (pid ${harness.pid}) in ${dir}`)
    profiled = profileBreakdown(path.join(dir, file), window.fromUs, window.toUs, window.requests)
    log("")
    log(
      `harness CPU by component during the ${REPEATS} repeats (${profiled.window_s} s, ${profiled.requests} requests; ` +
        `${profiled.busy_us_per_request} µs busy per request under the profiler, idle ${Math.round(profiled.idle_share * 100)} %), ${path.join(dir, file)}`
    )
    for (const c of profiled.components) {
      log(`${c.component.padEnd(56)} ${(c.share * 100).toFixed(1).padStart(5)} %  ${c.us_per_request.toFixed(0).padStart(6)} µs/request`)
    }
  }

  let stages: Awaited<ReturnType<typeof stageTimings>> | undefined
  if (references !== undefined) {
    log("")
    log(`reference servers at 1 and ${WORKERS} clients (one run, rotating blocks); ms; added = p50 - direct p50`)
    log("cpu ms/r = CPU time of that server's process per request (/proc, 10 ms ticks)")
    const w = [12, 16, 9, 9, 9, 18, 10, 7, 9]
    log(row(["server", "c1 p50 / p99", "c1 added", "c1 req/s", "cpu ms/r", `c${WORKERS} p50 / p99`, `c${WORKERS} added`, "req/s", "cpu ms/r"], w))
    for (const r of references) {
      log(row([
        r.server,
        `${r.c1.p50_ms.toFixed(3)} / ${r.c1.p99_ms.toFixed(2)}`,
        r.c1_added_p50_ms.toFixed(3),
        Math.round(r.c1.req_per_s),
        r.c1.server_cpu_ms_per_request.toFixed(2),
        `${r.cN.p50_ms.toFixed(2)} / ${r.cN.p99_ms.toFixed(2)}`,
        r.cN_added_p50_ms.toFixed(2),
        Math.round(r.cN.req_per_s),
        r.cN.server_cpu_ms_per_request.toFixed(2)
      ], w))
    }
    stages = await stageTimings(fs.readFileSync(configFile, "utf8"), path.join(tmp, "stages.db"), direct, plainBody, plainHead)
    log("")
    log("the harness's pieces in this process (sequential, after warm-up; µs per call: wall mean, wall p50, CPU of this process)")
    for (const [name, t] of Object.entries(stages)) {
      log(`${name.padEnd(80)} ${t.mean_us.toFixed(1).padStart(8)} ${t.p50_us.toFixed(1).padStart(8)} ${t.cpu_us.toFixed(1).padStart(8)}`)
    }
  }
  const wall_s = r1((performance.now() - began) / 1000)
  log(`wall ${wall_s} s`)

  const result = {
    machine: { ...machine, loadavg_at_end: loadavgAtEnd },
    settings: { repeats: REPEATS, requests: REQUESTS, workers: WORKERS, per_worker: PER_WORKER, stream_requests: STREAM_REQUESTS, warmup: WARMUP, block: BLOCK },
    scenarios: reported,
    ...(references ? { references } : {}),
    ...(stages ? { stages_us: stages } : {}),
    ...(profiled ? { profile: profiled } : {}),
    ledger_rows: rows.n,
    stale_socket_retries: staleSocketRetries,
    wall_s
  }
  const line = JSON.stringify(result)
  log(line)
  fs.mkdirSync(path.join(root, "bench-out"), { recursive: true })
  fs.writeFileSync(path.join(root, "bench-out", "bench-harness.json"), `${JSON.stringify(result, null, 2)}\n`)
}

runBench({
  name: "bench-harness",
  title: "harness bench",
  deadlineS: DEADLINE_S,
  keep: KEEP,
  cleanup: () => stopAll(agent),
  main
})
