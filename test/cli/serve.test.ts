import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { createPostgres, postgresServer } from "../support/Databases.js"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const admin = "serve-test-admin-token-0123456789"

/** `autopilot serve` on a free port; resolves with the process and its base URL once it says where it listens. */
const serve = async (sb: Sandbox, args: ReadonlyArray<string> = [], env: Record<string, string> = {}) => {
  const server = sb.start(["serve", "--port", "0", ...args], { env: { AUTOPILOT_API_TOKEN: admin, ...env }, db: !args.includes("--database") })
  const line = await server.line((l) => l.startsWith("autopilot serving "))
  return { server, base: /(http:\/\/[0-9.]+:\d+)/.exec(line)![1]! }
}

const call = async (base: string, method: string, path: string, body?: object) => {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, json: (await response.json()) as any }
}

/** Reads an event stream's text until it ends. */
const streamText = async (url: string) => {
  const response = await fetch(url, { headers: { authorization: `Bearer ${admin}` } })
  return await response.text()
}

const waitFor = async <A>(what: string, probe: () => Promise<A | undefined>, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = await probe()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const slowScript = (sb: Sandbox) =>
  sb.writeFile("slow.json", { latency_ms: 300, repeat_last: true, turns: [{ content: "working on it", criteria_met: [false] }] })

describe("autopilot serve", () => {
  it("serves the API beside a daemon: a run queued through it is worked by the daemon and streamed to its end", async (context) => {
    const sb = sandbox(context)
    const { base } = await serve(sb)
    const daemon = sb.start(["daemon", "--poll-seconds", "0.2"])
    await daemon.line((l) => l.includes(" up, working "), 30_000)
    const queued = await call(base, "POST", "/api/v1/autopilot/queue", { objective: "count to three", max_iterations: 2 })
    expect(queued.status).toBe(201)
    const id = queued.json.id as string
    await waitFor("the run to start", async () => ((await call(base, "GET", `/api/v1/autopilot/runs/${id}`)).status === 200 ? true : undefined))
    const text = await streamText(`${base}/api/v1/autopilot/runs/${id}/events`)
    expect(text).toMatch(/event: run_started\n/)
    expect(text.trimEnd()).toMatch(/event: result\ndata: .*$/)
    const shown = await call(base, "GET", `/api/v1/autopilot/runs/${id}`)
    expect(shown.json.status).toBe("completed")
    expect(daemon.stdout.some((l) => l.includes(`ended queued ${id}: completed`))).toBe(true)
  }, 90_000)

  it("on SIGTERM ends open event streams with server_shutdown, then exits 0, a kept-alive request meanwhile holding nothing up", async (context) => {
    const sb = sandbox(context)
    const run = sb.start(["run", "slowly", "--run-id", "slow", "--mock-script", slowScript(sb), "--max-iterations", "200"])
    await run.line((l) => l.includes("iteration"), 30_000)
    const { base, server } = await serve(sb)
    const stream = streamText(`${base}/api/v1/autopilot/runs/slow/events`)
    await waitFor("the stream to be open", async () => ((await call(base, "GET", "/api/v1/autopilot/runs/slow")).status === 200 ? true : undefined))
    server.signal("SIGTERM")
    // A request on a kept-alive connection (fetch keeps the one above) while the server drains is answered or
    // refused, and does not hold the exit up.
    const during = call(base, "GET", "/api/v1/autopilot/runs").catch(() => undefined)
    const text = await stream
    expect(text.trimEnd().endsWith("event: server_shutdown\ndata: {}")).toBe(true)
    const exit = await server.waitForExit(15_000)
    await during
    expect(exit.code).toBe(0)
    expect(exit.stdout.at(-1)).toBe("stopping: halted by SIGTERM")
    run.signal("SIGTERM")
  }, 90_000)

  it("refuses a bad --port or a busy one in one line, exit 2", async (context) => {
    const sb = sandbox(context)
    const bad = await sb.run(["serve", "--port", "70000"])
    expect(bad.code).toBe(2)
    expect(bad.stderr.join("\n")).toMatch(/--port must be a whole number from 0 to 65535, got "70000"/)
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as net.AddressInfo).port
    const busy = await sb.run(["serve", "--port", String(port)])
    blocker.close()
    expect(busy.code).toBe(2)
    expect(busy.stderr.join("\n")).toMatch(new RegExp(`serve cannot listen on 127.0.0.1:${port}`))
    expect(busy.stderr.join("\n")).not.toMatch(/\n\s+at /)
    const shortToken = await sb.run(["serve", "--port", "0"], { env: { AUTOPILOT_API_TOKEN: "short" } })
    expect(shortToken.code).toBe(2)
    expect(shortToken.stderr.join("\n")).toMatch(/AUTOPILOT_API_TOKEN/)
  }, 60_000)

  it("--secure-cookie and --trust-proxy make the sign-in cookie Secure; a host beyond this machine without either is warned of; a bad proxy is refused", async (context) => {
    const sb = sandbox(context)
    const signIn = async (base: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}/api/v1/session`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ token: admin }) })
      expect(response.status).toBe(200)
      return /;\s*Secure/i.test(response.headers.get("set-cookie") ?? "")
    }
    const bad = await sb.run(["serve", "--port", "0", "--trust-proxy", "10.0.0.1,proxy.example"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toEqual(['autopilot: --trust-proxy takes IP addresses separated by commas (e.g. 127.0.0.1,::1), got "proxy.example"'])

    const open = await serve(sb, ["--host", "0.0.0.0"])
    await open.server.errorLine((l) => l.includes("warning: listening on 0.0.0.0 without --secure-cookie or --trust-proxy"), 5_000)
    expect(await signIn(open.base, { "x-forwarded-proto": "https" })).toBe(false)
    open.server.signal("SIGTERM")
    await open.server.waitForExit(15_000)

    const proxied = await serve(sb, ["--host", "0.0.0.0", "--trust-proxy", "127.0.0.1,::1"])
    expect(await signIn(proxied.base, { "x-forwarded-proto": "https" })).toBe(true)
    expect(await signIn(proxied.base)).toBe(false)
    proxied.server.signal("SIGTERM")
    await proxied.server.waitForExit(15_000)

    const secure = await serve(sb, ["--secure-cookie"])
    expect(await signIn(secure.base)).toBe(true)
    secure.server.signal("SIGTERM")
    const exit = await secure.server.waitForExit(15_000)
    expect(exit.stderr.filter((l) => l.includes("warning"))).toEqual([])
    expect(proxied.server.stderr.filter((l) => l.includes("warning"))).toEqual([])
  }, 60_000)

  const onPostgres = "url" in postgresServer ? it : it.skip
  onPostgres(`serves a Postgres database${"url" in postgresServer ? "" : ` [SKIPPED: ${postgresServer.unavailable}]`}`, async (context) => {
    if (!("url" in postgresServer)) return
    const sb = sandbox(context)
    const database = await createPostgres(postgresServer.url)
    try {
      const { base, server } = await serve(sb, ["--database", database.url])
      const made = await call(base, "POST", "/api/v1/autopilot/goal", { goal: "write release notes for v2.1 from the changelog" })
      expect(made.json.kind).toBe("auto_routed")
      const listed = await call(base, "GET", "/api/v1/autopilot/missions")
      expect(listed.json.map((m: { mission_id: string }) => m.mission_id)).toEqual([made.json.mission_id])
      server.signal("SIGTERM")
      expect((await server.waitForExit(15_000)).code).toBe(0)
    } finally {
      await database.drop()
    }
  }, 60_000)
})


