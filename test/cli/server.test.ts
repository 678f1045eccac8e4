import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { chain, layerSqlite, madeMission } from "../missions/fixtures.js"
import { type CliProcess, cleanup, type Finished, freePort, type Sandbox, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)

/**
 * The CLI against `autopilot serve` (`--server`, `--token`): every command prints what it prints on the
 * database itself, the server being a real `serve` process on the sandbox's file, its runs made by real
 * `run` and `daemon` processes on the same file.
 */

const admin = "admin-token-of-the-cli-server-tests-0123"

interface Served {
  readonly url: string
  readonly port: number
  readonly process: CliProcess
}

const serve = async (sb: Sandbox, port?: number): Promise<Served> => {
  const on = port ?? (await freePort())
  const process = sb.start(["serve", "--port", String(on)], { env: { AUTOPILOT_API_TOKEN: admin } })
  await process.line((l) => l.startsWith("autopilot serving"))
  return { url: `http://127.0.0.1:${on}`, port: on, process }
}

/** `args` asked of the server; `--db` is not given: the server's database is the only one. */
const remote = (sb: Sandbox, served: Served, args: ReadonlyArray<string>, token = admin) =>
  sb.run([...args, "--server", served.url, "--token", token], { db: false, timeoutMs: 60_000 })

const outcome = (finished: Finished) => ({ code: finished.code, stdout: finished.stdout, stderr: finished.stderr })

/** The command on the file and through the server: the same lines, the same exit code. */
const same = async (sb: Sandbox, served: Served, args: ReadonlyArray<string>) => {
  const here = outcome(await sb.run(args))
  const there = outcome(await remote(sb, served, args))
  expect(there, `autopilot ${args.join(" ")}`).toEqual(here)
  return here
}

/** Ids and times differ between two missions made alike; everything else must not. */
const masked = (lines: ReadonlyArray<string>) =>
  lines.map((l) => l.replace(/ms-[0-9a-f]{12}/g, "<mission>").replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>"))

/** The only line of stderr of a command that failed with exit 2. */
const refusal = (finished: Finished) => {
  expect(finished.code, finished.stdout.join("\n")).toBe(2)
  expect(finished.stdout).toEqual([])
  expect(finished.stderr).toHaveLength(1)
  return finished.stderr[0]!
}

/** `count` missions of `chain` alike but for their ids, approved unless `draft`. */
const missions = (sb: Sandbox, count: number, options: { readonly draft?: boolean } = {}) =>
  Effect.runPromise(
    Effect.forEach(Array.from({ length: count }), () => madeMission(chain(), { goal: "finish the work in two steps", ...options })).pipe(
      Effect.provide(layerSqlite(sb.db))
    )
  )

const nodeScript = (sb: Sandbox) =>
  sb.writeFile("nodes.json", { nodes: { first: [{ content: "First part done." }], second: [{ content: "Second part done." }] } })

describe("the CLI against a server", () => {
  it("status, runs, show, events, missions and missions show print what they print on the database, text and json", async (context) => {
    const sb = sandbox(context)
    const [done, draft] = [...(await missions(sb, 1)), ...(await missions(sb, 1, { draft: true }))]
    const ran = await sb.run(["run", "write a haiku", "--criterion", "five syllables", "--criterion", "seven", "--run-id", "plain"])
    expect(ran.code).toBe(0)
    const daemon = await sb.run(["daemon", "--once", "--mock-script", nodeScript(sb), "--poll-seconds", "0.2"], { timeoutMs: 60_000 })
    expect(daemon.code, daemon.stderr.join("\n")).toBe(0)
    const served = await serve(sb)

    for (const format of [[], ["--format", "json"]]) {
      await same(sb, served, ["status", ...format])
      await same(sb, served, ["runs", ...format])
      await same(sb, served, ["runs", "--status", "completed", "--limit", "1", ...format])
      await same(sb, served, ["show", "plain", ...format])
      await same(sb, served, ["show", "plain", "--steps", "1", "--messages", ...format])
      await same(sb, served, ["show", done!, ...format])
      await same(sb, served, ["missions", ...format])
      await same(sb, served, ["missions", "--status", "draft", ...format])
      await same(sb, served, ["missions", "show", done!, ...format])
      await same(sb, served, ["missions", "show", done!, "--steps", "--messages", ...format])
      await same(sb, served, ["missions", "show", draft!, ...format])
    }
    const jsonl: Array<string> = []
    for (const format of [[], ["--format", "jsonl"]]) {
      const events = await same(sb, served, ["events", "plain", ...format])
      expect(events.stdout.length).toBeGreaterThan(4)
      if (format.length > 0) jsonl.push(...events.stdout)
      await same(sb, served, ["events", "plain", "--follow", ...format])
      await same(sb, served, ["events", done!, "--follow", ...format])
    }
    // The run's first event (seq 0) is there too: the stream replays from the start (what the server
    // printed is what `same` just found equal to the local lines).
    expect(JSON.parse(jsonl[0]!)).toMatchObject({ kind: "run_started", seq: 0 })
    // What is not there is refused as it is locally: the same line, exit 2.
    await same(sb, served, ["show", "nope"])
    await same(sb, served, ["events", "nope"])
    await same(sb, served, ["missions", "show", "nope"])
    await same(sb, served, ["missions", "--project", "elsewhere"])
  }, 240_000)

  it("enable, disable, goal, approve and cancel change the server's database and say what they say locally", async (context) => {
    const sb = sandbox(context)
    const [here, there] = await missions(sb, 2, { draft: true })
    const served = await serve(sb)

    for (const args of [["disable"], ["disable", "--format", "json"], ["enable", "--tier", "skip"], ["enable", "--format", "json"], ["enable"]]) {
      const asked = outcome(await remote(sb, served, args))
      expect(asked, args.join(" ")).toEqual(outcome(await sb.run(args)))
    }
    expect(JSON.parse((await sb.run(["status", "--format", "json"])).stdout.join(""))).toMatchObject({ enabled: true, tier: "skip" })
    await remote(sb, served, ["disable"])
    expect(JSON.parse((await sb.run(["status", "--format", "json"])).stdout.join(""))).toMatchObject({ enabled: false })
    expect(refusal(await remote(sb, served, ["goal", "write a blog post about rust"]))).toBe(refusal(await sb.run(["goal", "write a blog post about rust"])))
    await remote(sb, served, ["enable"])

    // Routing that makes nothing says the same; a mission made says the same of its own id.
    for (const format of [[], ["--format", "json"]]) {
      await same(sb, served, ["goal", "write a blog post about rust", ...format])
      const made = [await sb.run(["goal", "write a blog post about rust", "--pick", "1", ...format]), await remote(sb, served, ["goal", "write a blog post about rust", "--pick", "1", ...format])]
      expect(made.map((m) => m.code)).toEqual([0, 0])
      expect(masked(made[1]!.stdout)).toEqual(masked(made[0]!.stdout))
    }
    // A value the goal states wrongly is named through the server as it is here.
    const wrong = ["goal", "run daily competitive research on 3 vendors, vendor_count=999", "--pick", "1"]
    const told = [await sb.run(wrong), await remote(sb, served, wrong)]
    expect(told[1]!.stdout).toContainEqual(expect.stringMatching(/^Not taken from the goal: slot vendor_count must be a whole number/))
    expect(masked(told[1]!.stdout)).toEqual(masked(told[0]!.stdout))

    // Two drafts alike, one approved (then cancelled) here, the other through the server.
    const approve = (id: string) => ["approve", id, "--reason", "looks right", "--format", "json"]
    const approved = [await sb.run(approve(here!)), await remote(sb, served, approve(there!))]
    expect(masked(approved[1]!.stdout)).toEqual(masked(approved[0]!.stdout))
    expect(JSON.parse(approved[1]!.stdout.join("\n"))).toMatchObject({ mission_id: there, status: "scheduled" })

    const cancel = (id: string) => ["cancel", id, "--reason", "not needed after all"]
    const cancelled = [await sb.run(cancel(here!)), await remote(sb, served, cancel(there!))]
    expect(cancelled[1]!.stdout).toEqual(cancelled[0]!.stdout.map((l) => l.replace(here!, there!)))
    const shown = JSON.parse((await sb.run(["missions", "show", there!, "--format", "json"])).stdout.join("\n"))
    expect(shown).toMatchObject({ status: "cancelled" })
    // The history keeps each step: approved through the server by the admin token, then cancelled.
    expect(shown.transitions[1]).toMatchObject({ from: "draft", to: "approved", actor: "api:admin", reason: "looks right" })
    expect(shown.transitions.at(-1)).toMatchObject({ to: "cancelled", reason: "not needed after all" })
    // Cancelling again changes nothing, and says so in the same words.
    await same(sb, served, ["cancel", there!, "--format", "json"])
    await same(sb, served, ["cancel", there!])
    await same(sb, served, ["approve", there!])
  }, 240_000)

  it("a project token sees and makes only its project's missions; --project becomes X-Project-ID", async (context) => {
    const sb = sandbox(context)
    const [theirs] = await missions(sb, 1, { draft: true })
    const served = await serve(sb)
    const minted = await sb.run(["token", "create", "--project", "acme"])
    const token = minted.stdout[0]!
    expect(token).toMatch(/^\S{20,}$/)

    const made = await remote(sb, served, ["goal", "write a blog post about rust", "--pick", "1", "--format", "json"], token)
    const id = JSON.parse(made.stdout.join("\n")).mission_id as string
    const acme = [["missions"], ["missions", "--format", "json"], ["missions", "show", id], ["missions", "show", id, "--format", "json"]]
    for (const args of acme) {
      const local = outcome(await sb.run([...args, "--project", "acme"]))
      expect(outcome(await remote(sb, served, args, token)), args.join(" ")).toEqual(local)
      expect(outcome(await remote(sb, served, [...args, "--project", "acme"], token))).toEqual(local)
      expect(outcome(await remote(sb, served, [...args, "--project", "acme"]))).toEqual(local)
    }
    // The default project's missions are not acme's to see or touch: not found, as an unknown id is.
    expect(refusal(await remote(sb, served, ["missions", "show", theirs!], token))).toBe(
      `autopilot: no mission "${theirs}" in project "acme" (see \`autopilot missions --project acme\`)`
    )
    expect(refusal(await remote(sb, served, ["cancel", theirs!], token))).toContain(`no mission "${theirs}" in project "acme"`)
    expect(refusal(await remote(sb, served, ["missions", "--project", "default"], token))).toBe('autopilot: no project "default"')
    expect(JSON.parse((await sb.run(["missions", "show", theirs!, "--format", "json"])).stdout.join("\n")).status).toBe("draft")
    // The instance's settings are the admin's.
    expect(refusal(await remote(sb, served, ["disable"], token))).toBe(
      "autopilot: only the admin token (AUTOPILOT_API_TOKEN) may change the instance's settings"
    )
    expect(JSON.parse((await sb.run(["status", "--format", "json"])).stdout.join("")).enabled).toBe(true)
  }, 240_000)

  it("refuses in one line, exit 2, what cannot be asked, and never prints the token", async (context) => {
    const sb = sandbox(context)
    const served = await serve(sb)
    const quiet = await freePort()
    const secret = "wrong-token-never-printed-9f8e7d"
    const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => sb.run(args, { db: false, env })
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, RegExp]> = [
      [["runs", "--server", served.url], {}, /^autopilot: --server http:\/\/127\.0\.0\.1:\d+ needs a token: --token TOKEN or AUTOPILOT_TOKEN/],
      [["runs", "--server", "ftp://example.com", "--token", secret], {}, /^autopilot: --server must be the server's http:\/\/ or https:\/\/ URL .*got "ftp:\/\/example\.com"$/],
      [["runs", "--server", "not a url", "--token", secret], {}, /^autopilot: --server must be the server's http/],
      [["runs", "--server", `http://127.0.0.1:${quiet}`, "--token", secret], {}, new RegExp(`^autopilot: cannot use the server at http://127\\.0\\.0\\.1:${quiet}: nothing listens there \\(ECONNREFUSED\\)$`)],
      [["status", "--server", served.url, "--token", secret], {}, new RegExp(`^autopilot: the server at ${served.url.replaceAll(".", "\\.")} refused the token: `)],
      [["runs", "--server", served.url, "--token", secret, "--db", sb.db], {}, /^autopilot: --db does not go with --server: the server uses its own database and model/],
      [["missions", "--server", served.url, "--token", admin, "--database", "postgres://u@h/d"], {}, /^autopilot: --database does not go with --server/],
      [["goal", "write a blog post", "--server", served.url, "--token", admin, "--llm", "mock"], {}, /^autopilot: --llm does not go with --server/],
      [["runs", "--token", secret], {}, /^autopilot: --token is for --server/],
      [["runs"], { AUTOPILOT_SERVER: served.url, AUTOPILOT_TOKEN: secret }, /refused the token/],
      [["runs"], { AUTOPILOT_SERVER: "ftp://x" }, /^autopilot: AUTOPILOT_SERVER must be the server's http/],
      [["show", "nope", "--server", served.url, "--token", admin], {}, /^autopilot: no run with id "nope"/],
      [["missions", "show", "x", "--project", "not a project!", "--server", served.url, "--token", admin], {}, /^autopilot: X-Project-ID: project "not a project!" is not allowed/]
    ]
    for (const [args, env, expected] of cases) {
      const finished = await run(args, env)
      expect(refusal(finished), args.join(" ")).toMatch(expected)
      expect([...finished.stdout, ...finished.stderr].join("\n")).not.toContain(secret)
    }
    // AUTOPILOT_SERVER and AUTOPILOT_TOKEN stand for the flags.
    const byEnv = await run(["status", "--format", "json"], { AUTOPILOT_SERVER: served.url, AUTOPILOT_TOKEN: admin })
    expect(byEnv.code).toBe(0)
    expect(JSON.parse(byEnv.stdout.join(""))).toMatchObject({ enabled: true })
    // No command fell back to the local database: none was made in AUTOPILOT_HOME.
    expect(sb.files()).not.toContain("autopilot.db")
  }, 240_000)

  it("events --follow prints a running run's events live to its end, as the local follower does, across a restart of the server", async (context) => {
    const sb = sandbox(context)
    const script = sb.writeFile("slow.json", slowScript({ latency_ms: 300, criteria_met: [false] }))
    const served = await serve(sb)
    // No cap: it goes on until it is stopped, however slow the machine.
    const started = sb.start(["run", "keep going", "--criterion", "never met", "--run-id", "live", "--max-iterations", "0", "--mock-script", script, "--format", "jsonl"])
    await started.event((e) => e.kind === "run_started")
    const follow = (format: ReadonlyArray<string>) => sb.start(["events", "live", "--follow", ...format, "--server", served.url, "--token", admin], { db: false })
    const [text, jsonl] = [follow([]), follow(["--format", "jsonl"])]
    const iteration = (n: number) => text.line((l) => l.startsWith(`[${n}] `), 60_000)
    // Live: the follower prints iterations while the run goes on.
    await iteration(1)
    await jsonl.event((e) => e.kind === "iteration", 60_000)
    expect(started.running).toBe(true)
    // The server goes away and comes back on its port: the followers reconnect with Last-Event-ID and go on.
    served.process.signal("SIGTERM")
    expect((await served.process.waitForExit()).code).toBe(0)
    const seen = text.stdout.filter((l) => /^\[\d+\] /.test(l)).length
    const again = await serve(sb, served.port)
    await iteration(seen + 2)
    expect((await sb.run(["stop", "live"])).code).toBe(0)
    const [ended, followed, followedJsonl] = await Promise.all([started.waitForExit(60_000), text.waitForExit(60_000), jsonl.waitForExit(60_000)])
    expect(ended.code).toBe(4)
    expect(outcome(followed)).toEqual(outcome(await sb.run(["events", "live", "--follow"])))
    expect(outcome(followedJsonl)).toEqual(outcome(await sb.run(["events", "live", "--follow", "--format", "jsonl"])))
    const seqs = followedJsonl.stdout.map((l) => JSON.parse(l).seq as number)
    expect(seqs).toEqual(seqs.map((_, i) => i))
    expect(JSON.parse(followedJsonl.stdout.at(-1)!)).toMatchObject({ kind: "result", status: "halted" })
    again.process.signal("SIGTERM")
  }, 240_000)

  it("events --follow of a run whose process is gone says so as the local follower does, exit 5", async (context) => {
    const sb = sandbox(context)
    const script = sb.writeFile("slow.json", slowScript({ latency_ms: 300, criteria_met: [false] }))
    const served = await serve(sb)
    const started = sb.start(["run", "keep going", "--criterion", "never met", "--run-id", "cut", "--max-iterations", "50", "--mock-script", script, "--format", "jsonl"])
    await started.nth("iteration", 1, 60_000)
    const follower = sb.start(["events", "cut", "--follow", "--server", served.url, "--token", admin], { db: false })
    await follower.line((l) => /^\[1\] /.test(l), 60_000)
    started.signal("SIGKILL")
    await started.exited
    const followed = await follower.waitForExit(120_000)
    expect(followed.code).toBe(5)
    expect(outcome(followed)).toEqual(outcome(await sb.run(["events", "cut", "--follow"])))
    // Without --follow, the events so far, and no complaint.
    await same(sb, served, ["events", "cut"])
    await same(sb, served, ["runs"])
    await same(sb, served, ["show", "cut"])
  }, 240_000)

  it("a mission approved through the server is run by the daemon on the same file, and followed through the server to its end", async (context) => {
    const sb = sandbox(context)
    const [id] = await missions(sb, 1, { draft: true })
    const served = await serve(sb)
    const daemon = sb.start(["daemon", "--mock-script", nodeScript(sb), "--poll-seconds", "0.2", "--lease-seconds", "2"])
    await daemon.line((l) => l.includes(" up, working"), 60_000)
    expect((await remote(sb, served, ["approve", id!])).code).toBe(0)
    await daemon.line((l) => l.includes(`started mission ${id}`), 60_000)
    const followed = await remote(sb, served, ["events", id!, "--follow", "--format", "jsonl"])
    expect(followed.code).toBe(0)
    expect(JSON.parse(followed.stdout.at(-1)!)).toMatchObject({ kind: "result", status: "completed" })
    expect(outcome(followed)).toEqual(outcome(await sb.run(["events", id!, "--format", "jsonl"])))
    await same(sb, served, ["missions", "show", id!, "--steps"])
    await same(sb, served, ["missions", "show", id!, "--format", "json"])
    daemon.signal("SIGTERM")
    await daemon.waitForExit(60_000)
  }, 240_000)
})
