import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterEach } from "vitest"
import * as Pricing from "../../src/budget/Pricing.js"
import { configInput } from "../harness/fixtures.js"
import * as TestServer from "../llm/openai-test-server.js"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const verdict = (met: ReadonlyArray<boolean>) => JSON.stringify({ criteria_met: met, notes: "checked" })

/** Two iterations: an answer and a verdict each, the second verdict meeting both criteria. */
const twoIterations: ReadonlyArray<TestServer.Reply> = [
  { content: "## Gotcha 1\n\nMutable default arguments.", usage: { prompt_tokens: 1200, completion_tokens: 300 } },
  { content: verdict([true, false]), usage: { prompt_tokens: 400, completion_tokens: 20 } },
  { content: "## Gotcha 2\n\nIterating while mutating.", usage: { prompt_tokens: 1500, completion_tokens: 280 } },
  { content: verdict([true, true]), usage: { prompt_tokens: 420, completion_tokens: 22 } }
]

const createKey = (sb: Sandbox, ...extra: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const created = await sb.run(["harness", "key", "create", "--user", "ana", "--project", "docs", "--format", "json", ...extra])
    assert.strictEqual(created.code, 0, created.stderr.join("\n"))
    return JSON.parse(created.stdout.join("\n")) as { key: string; id: string }
  })

const auditOf = (sb: Sandbox) =>
  Effect.promise(async () => {
    const audit = await sb.run(["harness", "audit", "--format", "json"])
    assert.strictEqual(audit.code, 0, audit.stderr.join("\n"))
    return JSON.parse(audit.stdout.join("\n")) as ReadonlyArray<Record<string, any>>
  })

/** What the shared pricing table charges for a ledger row's tokens on the model it was routed to. */
const priced = (row: Record<string, any>) => {
  const price = Pricing.priceOf(row["model_used"])
  assert(price._tag === "Some", `no price for ${row["model_used"]}`)
  return Pricing.costOf(price.value, { input_tokens: row["input_tokens"], output_tokens: row["output_tokens"] })
}

const mission = ["run", "dict gotchas", "--criterion", "one", "--criterion", "two", "--llm", "harness", "--format", "jsonl"]

describe("--llm harness", () => {
  it.scopedLive("in process: the run completes, every call is in the ledger, and the run's dollars are the ledger's", (context) =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make(twoIterations)
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", configInput(upstream.baseURL))
      const { key } = yield* createKey(sb)
      const exit = yield* Effect.promise(() =>
        sb.run([...mission, "--run-id", "h"], { env: { AUTOPILOT_HARNESS_KEY: key, AUTOPILOT_HARNESS_CONFIG: config } })
      )
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const result = JSON.parse(exit.stdout.at(-1)!)
      assert.strictEqual(result.status, "completed")

      const rows = yield* auditOf(sb)
      assert.strictEqual(rows.length, 4)
      for (const row of rows) {
        assert.strictEqual(row["status"], 200)
        assert.strictEqual(row["user"], "ana")
        assert.closeTo(row["cost_usd"], priced(row), 1e-12)
      }
      const ledger = rows.reduce((sum, row) => sum + row["cost_usd"], 0)
      assert.closeTo(result.usage.dollars, ledger, 1e-12)
      // Every request the upstream saw named a routed model, never "auto".
      for (const request of yield* upstream.requests) assert.include(["gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1"], request.body.model)
      // Per-step telemetry names the routed models.
      const shown = yield* Effect.promise(() => sb.show("h"))
      assert.deepStrictEqual(
        shown["steps"].flatMap((s: any) => s.calls.map((c: any) => c.model_used)),
        [...rows].reverse().map((row) => row["model_used"])
      )
      assert.notInclude(exit.stdout.join("\n") + exit.stderr.join("\n"), key)

      // The full message list of each step, rebuilt from history, is what the model was actually sent.
      const full = yield* Effect.promise(async () => JSON.parse((await sb.run(["show", "h", "--messages", "--format", "json"])).stdout.join("\n")))
      const sent = (yield* upstream.requests).map((request) => request.body.messages)
      full.steps.forEach((step: any, i: number) => {
        assert.deepStrictEqual(step.messages.act.slice(0, -1), sent[2 * i])
        assert.deepStrictEqual(step.messages.act.at(-1), { role: "assistant", content: twoIterations[2 * i]!.content })
        assert.deepStrictEqual(step.messages.judge, sent[2 * i + 1])
      })
    }))

  it.scopedLive("over HTTP: `harness serve` routes a mission's calls and stops cleanly on SIGTERM", (context) =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make(twoIterations)
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", configInput(upstream.baseURL))
      const { key } = yield* createKey(sb)
      const server = sb.start(["harness", "serve", "--port", "0", "--config", config])
      const listening = yield* Effect.promise(() => server.line((line) => line.startsWith("harness listening on ")))
      const url = listening.match(/on (http:\/\/\S+)/)![1]!
      const exit = yield* Effect.promise(() =>
        sb.run([...mission, "--run-id", "served"], { env: { AUTOPILOT_HARNESS_KEY: key, AUTOPILOT_HARNESS_URL: url } })
      )
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const result = JSON.parse(exit.stdout.at(-1)!)
      server.signal("SIGTERM")
      const stopped = yield* Effect.promise(() => server.waitForExit(10_000))
      assert.strictEqual(stopped.code, 0, server.transcript())

      const rows = yield* auditOf(sb)
      assert.strictEqual(rows.length, 4)
      assert.closeTo(result.usage.dollars, rows.reduce((sum, row) => sum + priced(row), 0), 1e-12)
    }))

  it.scopedLive("`harness serve` writes one line per request on stderr, naming the key by its id; --quiet writes none", (context) =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make([{ content: "4", usage: { prompt_tokens: 1000, completion_tokens: 500 } }, { content: "4" }])
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", configInput(upstream.baseURL))
      const { id, key } = yield* createKey(sb)
      const serve = (...flags: ReadonlyArray<string>) =>
        Effect.promise(async () => {
          const server = sb.start(["harness", "serve", "--port", "0", "--config", config, ...flags])
          const listening = await server.line((line) => line.startsWith("harness listening on "))
          return { server, url: listening.match(/on (http:\/\/\S+)/)![1]! }
        })
      const ask = (url: string) =>
        Effect.promise(() =>
          fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ model: "auto", messages: [{ role: "user", content: "what is 2+2?" }] })
          }).then((response) => response.status)
        )

      const logged = yield* serve()
      assert.strictEqual(yield* ask(logged.url), 200)
      const line = yield* Effect.promise(() => logged.server.errorLine((line) => line.includes(" path=/v1/chat/completions ")))
      assert.match(
        line,
        new RegExp(
          `^at=\\S+Z method=POST path=/v1/chat/completions status=200 key_id=${id} model=auto model_used=gpt-4.1-nano input_tokens=1000 output_tokens=500 cost_usd=[\\d.e-]+ latency_ms=\\d+$`
        )
      )
      logged.server.signal("SIGTERM")
      const stopped = yield* Effect.promise(() => logged.server.waitForExit(10_000))
      assert.strictEqual(stopped.code, 0, logged.server.transcript())
      assert.deepStrictEqual(stopped.stderr, [line])
      assert.notInclude(stopped.stdout.join("\n") + stopped.stderr.join("\n"), key)

      const quiet = yield* serve("--quiet")
      assert.strictEqual(yield* ask(quiet.url), 200)
      // The line would have been written before the answer was sent, and the process's end flushes its output.
      quiet.server.signal("SIGTERM")
      const stoppedQuiet = yield* Effect.promise(() => quiet.server.waitForExit(10_000))
      assert.strictEqual(stoppedQuiet.code, 0, quiet.server.transcript())
      assert.deepStrictEqual(stoppedQuiet.stderr, [])
    }))

  it.scopedLive("`harness serve` stopped by SIGTERM the moment its answers are out still writes a ledger row for each, exactly", (context) =>
    Effect.gen(function*() {
      const requests = 40
      const upstream = yield* TestServer.make(
        Array.from({ length: requests }, (_, i) => ({ content: `answer ${i}`, usage: { prompt_tokens: 100 + i, completion_tokens: 10 + i } }))
      )
      const sb = sandbox(context)
      // A minute's batch window: every row is still queued when the signal lands.
      const config = sb.writeFile("harness.json", { ...configInput(upstream.baseURL), ledger_batch_ms: 60_000 })
      const { key } = yield* createKey(sb)
      const server = sb.start(["harness", "serve", "--port", "0", "--quiet", "--config", config])
      const listening = yield* Effect.promise(() => server.line((line) => line.startsWith("harness listening on ")))
      const url = listening.match(/on (http:\/\/\S+)/)![1]!
      const answers = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: requests }, () =>
          fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ model: "auto", messages: [{ role: "user", content: "what is 2+2?" }] })
          }).then(async (response) => ({ status: response.status, cost: Number(response.headers.get("x-autopilot-cost-usd")) }))))
      )
      server.signal("SIGTERM")
      const stopped = yield* Effect.promise(() => server.waitForExit(10_000))
      assert.strictEqual(stopped.code, 0, server.transcript())
      assert.deepStrictEqual(answers.map((a) => a.status), Array(requests).fill(200))

      const rows = yield* auditOf(sb)
      assert.strictEqual(rows.length, requests)
      assert.deepStrictEqual(
        rows.map((row) => [row["input_tokens"], row["output_tokens"]]).sort((a, b) => a[0] - b[0]),
        Array.from({ length: requests }, (_, i) => [100 + i, 10 + i])
      )
      for (const row of rows) assert.strictEqual(row["cost_usd"], priced(row))
      assert.closeTo(rows.reduce((sum, row) => sum + row["cost_usd"], 0), answers.reduce((sum, a) => sum + a.cost, 0), 1e-12)
    }))

  it.scopedLive("a harness budget whose action is stop halts the run as a dollar limit, without calling the upstream", (context) =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make(twoIterations)
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", configInput(upstream.baseURL, {
        budgets: [{ scope: "project", id: "docs", period: "daily", limit_usd: 0, action: "stop" }]
      }))
      const { key } = yield* createKey(sb)
      const exit = yield* Effect.promise(() =>
        sb.run([...mission, "--run-id", "broke"], { env: { AUTOPILOT_HARNESS_KEY: key, AUTOPILOT_HARNESS_CONFIG: config } })
      )
      assert.strictEqual(exit.code, 4, exit.stderr.join("\n"))
      const events = exit.stdout.map((line) => JSON.parse(line))
      const exceeded = events.find((e) => e.kind === "budget_exceeded")
      assert.strictEqual(exceeded?.axis, "dollars")
      assert.match(exceeded?.reason, /^dollar limit reached: .*project docs daily budget/)
      assert.strictEqual(events.at(-1).status, "halted")
      assert.strictEqual((yield* upstream.requests).length, 0)
      const [row] = yield* auditOf(sb)
      assert.strictEqual(row?.["status"], 429)
    }))
})

describe("autopilot harness: keys, spend and bad input", () => {
  it.scopedLive("a key is printed once, listed without its secret, and revoked", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const created = yield* Effect.promise(() => sb.run(["harness", "key", "create", "--user", "ana", "--project", "docs", "--team", "core"]))
      assert.strictEqual(created.code, 0, created.stderr.join("\n"))
      const key = created.stdout[0]!
      assert.match(key, /^ahk_/)
      const id = created.stdout.join("\n").match(/key_[0-9a-f]+/)![0]
      const listed = yield* Effect.promise(() => sb.run(["harness", "key", "list", "--format", "json"]))
      assert.notInclude(listed.stdout.join("\n"), key)
      assert.deepStrictEqual(JSON.parse(listed.stdout.join("\n")).map((k: any) => [k.id, k.user, k.team, k.project]), [[id, "ana", "core", "docs"]])
      assert.notInclude(JSON.stringify(sb.sql((db) => db.prepare("SELECT * FROM harness_keys").all())), key)
      const revoked = yield* Effect.promise(() => sb.run(["harness", "key", "revoke", id]))
      assert.strictEqual(revoked.code, 0, revoked.stderr.join("\n"))
      const again = yield* Effect.promise(() => sb.run(["harness", "key", "revoke", id]))
      assert.strictEqual(again.code, 2)
      assert.match(again.stderr.join("\n"), /no active key/)
    }))

  const refusals: ReadonlyArray<readonly [string, ReadonlyArray<string>, RegExp]> = [
    ["serve without a config", ["harness", "serve"], /needs --config FILE or \$AUTOPILOT_HARNESS_CONFIG/],
    ["serve on a port out of range", ["harness", "serve", "--port", "70000", "--config", "x.json"], /--port must be from 0 to 65535/],
    ["a key without a project", ["harness", "key", "create", "--user", "ana"], /project/],
    ["a key for a user name with a space", ["harness", "key", "create", "--user", "ana b", "--project", "p"], /--user must be non-empty with no spaces/],
    ["a key with a bad expiry", ["harness", "key", "create", "--user", "ana", "--project", "p", "--expires-in-days", "soon"], /--expires-in-days/],
    ["spend grouped by nonsense", ["harness", "spend", "--group-by", "planet"], /--group-by/],
    ["spend from a bad day", ["harness", "spend", "--from", "yesterday"], /--from must be a day as YYYY-MM-DD/],
    ["spend from a day that does not exist", ["harness", "spend", "--from", "2026-02-30"], /--from must be a day as YYYY-MM-DD/],
    ["spend to a thirteenth month", ["harness", "spend", "--to", "2026-13-45"], /--to must be a day as YYYY-MM-DD/],
    ["a key expiring beyond a century", ["harness", "key", "create", "--user", "ana", "--project", "p", "--expires-in-days", "1e9"], /--expires-in-days must be a number of days above 0 and at most 36500/],
    ["a key with no requests per minute", ["harness", "key", "create", "--user", "ana", "--project", "p", "--requests-per-minute", "0"], /--requests-per-minute must be a positive whole number/],
    ["audit with limit 0", ["harness", "audit", "--limit", "0"], /--limit must be a whole number from 1 to 1000/]
  ]
  for (const [what, args, message] of refusals) {
    it.scopedLive(`refuses ${what} in one line with exit 2`, (context) =>
      Effect.gen(function*() {
        const sb = sandbox(context)
        const exit = yield* Effect.promise(() => sb.run(args))
        assert.strictEqual(exit.code, 2, exit.stderr.join("\n"))
        assert.strictEqual(exit.stderr.length, 1, exit.stderr.join("\n"))
        assert.match(exit.stderr[0]!, message)
      }))
  }

  it.scopedLive("refuses a malformed config and a missing harness key before anything is written", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", { upstreams: {}, models: [], tiers: {} })
      const serve = yield* Effect.promise(() => sb.run(["harness", "serve", "--config", config]))
      assert.strictEqual(serve.code, 2)
      assert.match(serve.stderr.join("\n"), /^autopilot: harness config .* is malformed: /)
      const run = yield* Effect.promise(() => sb.run([...mission], { env: { AUTOPILOT_HARNESS_CONFIG: config } }))
      assert.strictEqual(run.code, 2)
      assert.match(run.stderr.join("\n"), /--llm harness needs AUTOPILOT_HARNESS_KEY/)
      assert.deepStrictEqual(sb.files(), ["harness.json"])
    }))

  it.scopedLive("refuses to serve on a port already taken, in one line with exit 2", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", configInput("http://127.0.0.1:9/v1"))
      const first = sb.start(["harness", "serve", "--port", "0", "--config", config])
      const port = (yield* Effect.promise(() => first.line((line) => line.startsWith("harness listening on ")))).match(/:(\d+) /)![1]!
      const second = yield* Effect.promise(() => sb.run(["harness", "serve", "--port", port, "--config", config]))
      assert.strictEqual(second.code, 2, second.stderr.join("\n"))
      assert.strictEqual(second.stderr.length, 1)
      assert.match(second.stderr[0]!, new RegExp(`^autopilot: harness serve cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
    }))

  it.scopedLive("refuses to serve when an upstream's key variable is not set, naming it", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", {
        ...configInput("http://127.0.0.1:9/v1"),
        upstreams: { test: { base_url: "http://127.0.0.1:9/v1", api_key_env: "NO_SUCH_UPSTREAM_KEY" } }
      })
      const serve = yield* Effect.promise(() => sb.run(["harness", "serve", "--port", "0", "--config", config]))
      assert.strictEqual(serve.code, 2, serve.stderr.join("\n"))
      assert.deepStrictEqual(serve.stderr, ['autopilot: harness upstream "test": environment variable NO_SUCH_UPSTREAM_KEY is not set'])
    }))

  it.scopedLive("refuses an upstream whose responses setting is neither native nor translate, naming where", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const config = sb.writeFile("harness.json", {
        ...configInput("http://127.0.0.1:9/v1"),
        upstreams: { test: { base_url: "http://127.0.0.1:9/v1", responses: "proxy" } }
      })
      const serve = yield* Effect.promise(() => sb.run(["harness", "serve", "--port", "0", "--config", config]))
      assert.strictEqual(serve.code, 2, serve.stderr.join("\n"))
      assert.strictEqual(serve.stderr.length, 1, serve.stderr.join("\n"))
      assert.match(serve.stderr[0]!, /is malformed: upstreams\.test\.responses: Expected "native", actual "proxy"/)
      assert.deepStrictEqual(sb.files(), ["harness.json"])
    }))
})
