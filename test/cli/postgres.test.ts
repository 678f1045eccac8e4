import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it, type TestContext } from "vitest"
import * as Database from "../../src/store/Database.js"
import { chain, layerOn, madeMission } from "../missions/fixtures.js"
import { createPostgres, onPostgres } from "../support/Databases.js"
import { type CliEvent, cleanup, freePort, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

/** A statement on the test's own database, as the CLI's processes left it. */
const query = <A extends object>(url: string, statement: string) =>
  Effect.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<A>(statement)).pipe(Effect.provide(Database.layerPg(url))))

const tablesOf = async (url: string) =>
  (await query<{ table_name: string }>(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"))
    .map((row) => row.table_name)

/** A fresh database for one test, dropped (whoever is still connected) when the test is over. */
const database = async (context: TestContext, serverUrl: string) => {
  const created = await createPostgres(serverUrl)
  context.onTestFinished(created.drop)
  return created.url
}

/** `autopilot …` on the Postgres database, with no SQLite file given. */
const on = (sb: Sandbox, url: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  sb.run([...args, "--database", url], { db: false, env })

const eventsOf = async (sb: Sandbox, url: string, runId: string): Promise<Array<CliEvent>> => {
  const listed = await on(sb, url, ["events", runId, "--format", "jsonl"])
  if (listed.code !== 0) throw new Error(`events ${runId}: ${listed.stderr.join("\n")}`)
  return listed.stdout.map((line) => JSON.parse(line) as CliEvent)
}

const seedGoal = "run daily competitive research on 3 vendors"

onPostgres("autopilot --database, AUTOPILOT_DATABASE_URL", (serverUrl) => {
  it("runs a mission on the mock there; runs, show and events read it back; its workspace is under AUTOPILOT_HOME and no SQLite file is made", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    const script = sb.writeFile("script.json", {
      turns: [
        { content: "Wrote the notes.", tool_calls: [{ name: "write_file", arguments: { path: "notes.txt", content: "dicts keep insertion order" } }], criteria_met: [true, false] },
        { content: "All done.", criteria_met: [true, true] }
      ]
    })
    const ran = await on(sb, url, ["run", "Explain dicts", "--criterion", "notes", "--criterion", "answer", "--run-id", "pg-1", "--mock-script", script, "--format", "jsonl"])
    expect(ran.code, ran.stderr.join("\n")).toBe(0)
    expect(ran.stderr).toEqual([`database: ${url}`])
    const result = JSON.parse(ran.stdout.at(-1)!) as CliEvent
    expect(result).toMatchObject({ kind: "result", run_id: "pg-1", status: "completed", iterations: 2, criteria_met: [true, true] })

    const listed = json((await on(sb, url, ["runs", "--format", "json"])).stdout)
    expect(listed.map((r: { run_id: string; status: string }) => [r.run_id, r.status])).toEqual([["pg-1", "completed"]])
    const shown = json((await on(sb, url, ["show", "pg-1", "--format", "json"])).stdout)
    expect(shown).toMatchObject({ run_id: "pg-1", status: "completed", iterations: 2, criteria_met: [true, true] })
    expect(shown.usage).toEqual(result.usage)
    const events = await eventsOf(sb, url, "pg-1")
    expect(events[0]).toMatchObject({ kind: "run_started", run_id: "pg-1" })
    expect(events.at(-1)).toMatchObject({ kind: "result", status: "completed" })
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i))
    expect(events.some((e) => e.kind === "tool_call")).toBe(true)

    // Where it all is: the rows in Postgres, the file the tool wrote under AUTOPILOT_HOME, no SQLite file.
    const rows = await query<{ run_id: string }>(url, "SELECT run_id FROM checkpoints")
    expect(rows.map((r) => r.run_id)).toEqual(["pg-1"])
    expect(fs.readFileSync(path.join(sb.dir, "workspaces", "pg-1", "notes.txt"), "utf8")).toBe("dicts keep insertion order")
    expect(sb.files().filter((f) => f.endsWith(".db"))).toEqual([])
  })

  it("resumes a halted run from its checkpoint there, usage cumulative; AUTOPILOT_DATABASE_URL names it when no flag does, and --database wins over it", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    const script = sb.writeFile("script.json", { repeat_last: true, turns: [{ content: "Not yet.", criteria_met: [false] }, { content: "Done.", criteria_met: [true] }] })
    const halted = await on(sb, url, ["run", "Finish it", "--run-id", "pg-2", "--max-iterations", "1", "--mock-script", script])
    expect(halted.code, halted.stderr.join("\n")).toBe(4)
    expect(json((await on(sb, url, ["show", "pg-2", "--format", "json"])).stdout)).toMatchObject({ status: "halted", iterations: 1 })

    // The variable alone, then a flag that overrides a variable naming a server that is not there.
    const elsewhere = `postgresql://postgres@127.0.0.1:${await freePort()}/nowhere`
    const resumed = await sb.run(["resume", "pg-2", "--max-iterations", "3"], { db: false, env: { AUTOPILOT_DATABASE_URL: url } })
    expect(resumed.code, resumed.stderr.join("\n")).toBe(0)
    const shown = json((await on(sb, url, ["show", "pg-2", "--format", "json"], { AUTOPILOT_DATABASE_URL: elsewhere })).stdout)
    expect(shown.status).toBe("completed")
    expect(shown.iterations).toBeGreaterThanOrEqual(2)
    expect(shown.iterations).toBeLessThanOrEqual(3)
    const events = await eventsOf(sb, url, "pg-2")
    expect(events.filter((e) => e.kind === "run_started").map((e) => e.resuming)).toEqual([false, true])
    expect(events.at(-1)).toMatchObject({ kind: "result", status: "completed", iterations: shown.iterations })
    expect(events.filter((e) => e.kind === "iteration").map((e) => e.iteration)).toEqual(Array.from({ length: shown.iterations }, (_, i) => i + 1))
  })

  it("routes a goal to a mission there, approves it, lists and shows it; a mission's graph runs there, each node a run", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    const routed = await on(sb, url, ["goal", seedGoal, "--project", "acme", "--format", "json"])
    expect(routed.code, routed.stderr.join("\n")).toBe(0)
    const outcome = json(routed.stdout)
    expect(outcome).toMatchObject({ kind: "auto_routed", blueprint_id: "scheduled_research" })
    const listed = json((await on(sb, url, ["missions", "--project", "acme", "--format", "json"])).stdout)
    expect(listed.map((m: { mission_id: string; status: string }) => [m.mission_id, m.status])).toEqual([[outcome.mission_id, "draft"]])
    const slots = outcome.missing_slots.flatMap((slot: string) => ["--slot", `${slot}=${slot === "market" ? "observability tools" : "x"}`])
    expect((await on(sb, url, ["approve", outcome.mission_id, "--project", "acme", ...slots])).code).toBe(0)
    const shown = json((await on(sb, url, ["missions", "show", outcome.mission_id, "--project", "acme", "--format", "json"])).stdout)
    expect(shown.transitions.map((t: { to: string }) => t.to)).toEqual(["draft", "approved", "scheduled"])

    // A two-node graph, approved through the service on the same database, run by the CLI.
    const id = await Effect.runPromise(madeMission(chain()).pipe(Effect.provide(layerOn(Layer.orDie(Database.layerPg(url))))))
    const script = sb.writeFile("nodes.json", { nodes: { first: [{ content: "First part done." }], second: [{ content: "Second part done." }] } })
    const ran = await on(sb, url, ["missions", "run", id, "--format", "json", "--mock-script", script])
    expect(ran.code, ran.stderr.join("\n")).toBe(0)
    const body = json(ran.stdout)
    expect(body).toMatchObject({ mission_id: id, status: "completed", run: { run_id: id, status: "completed" } })
    expect(body.nodes.map((n: { node: string; status: string }) => [n.node, n.status])).toEqual([["first", "succeeded"], ["second", "succeeded"]])
    const runs = json((await on(sb, url, ["runs", "--format", "json"])).stdout).map((r: { run_id: string }) => r.run_id).sort()
    expect(runs).toEqual([id, `${id}.first`, `${id}.second`].sort())
  })

  it("asking about a run or mission that is not there creates nothing there: no table", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    for (const args of [["show", "nope"], ["events", "nope"], ["resume", "nope"], ["stop", "nope"], ["missions", "show", "ms-nope"], ["approve", "ms-nope"]]) {
      const asked = await on(sb, url, args)
      expect(asked.code, `${args.join(" ")}: ${asked.stderr.join("\n")}`).toBe(2)
      expect(asked.stderr).toHaveLength(1)
    }
    for (const args of [["runs"], ["missions"], ["prune", "--older-than", "0"]]) {
      expect((await on(sb, url, args)).code, args.join(" ")).toBe(0)
    }
    expect(await tablesOf(url)).toEqual([])
  })
}, { concurrent: true })

describe.concurrent("autopilot on a Postgres database it cannot use: one line naming host and port, exit 2", () => {
  it("a closed port on 127.0.0.1 refuses every kind of command at once, never showing the password", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const port = await freePort()
    const url = `postgres://ada:sekret-pw@127.0.0.1:${port}/autopilot`
    const commands = [["run", "Explain dicts"], ["runs"], ["show", "r"], ["resume", "r"], ["missions"], ["goal", seedGoal], ["status"], ["harness", "key", "list"]]
    for (const args of commands) {
      const began = Date.now()
      const refused = await on(sb, url, args)
      const took = Date.now() - began
      expect(refused.code, `${args.join(" ")}: ${refused.stderr.join("\n")}`).toBe(2)
      expect(refused.stdout).toEqual([])
      expect(refused.stderr).toEqual([
        `autopilot: cannot use Postgres database "autopilot" at 127.0.0.1:${port}: connection refused (no server listening there)`
      ])
      // Refused at once, not after the 10 s connect timeout (the bound is the process's start on a busy machine).
      expect(took).toBeLessThan(30_000)
    }
    expect(sb.files()).toEqual([])
  })

  it("a --database that is no Postgres URL, or given with --db, is bad input naming what is allowed; nothing is written", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const allowed = "a postgres:// or postgresql:// URL, e.g. postgres://user:password@host:5432/autopilot"
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, string]> = [
      [["runs", "--database", "autopilot.db"], {}, `--database must be ${allowed} (a SQLite file goes in --db), got "autopilot.db"`],
      [["run", "x", "--database", "mysql://ada:sekret-pw@127.0.0.1/a"], {}, `--database must be ${allowed} (a SQLite file goes in --db), got "mysql://ada@127.0.0.1/a"`],
      [["runs", "--db", "a.db", "--database", "postgres://127.0.0.1/a"], {}, "--db and --database name two databases: give one (--db for a SQLite file, --database for a Postgres URL)"],
      [["runs"], { AUTOPILOT_DATABASE_URL: "sqlite:a.db" }, `AUTOPILOT_DATABASE_URL must be ${allowed} (a SQLite file goes in AUTOPILOT_DB), got "sqlite:a.db"`]
    ]
    for (const [args, env, message] of cases) {
      const refused = await sb.run(args, { db: false, env })
      expect(refused.code, args.join(" ")).toBe(2)
      expect(refused.stdout).toEqual([])
      expect(refused.stderr).toEqual([`autopilot: ${message}`])
    }
    expect(sb.files()).toEqual([])
  })
})
