import * as DatabaseTarget from "../../src/store/DatabaseTarget.js"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, it } from "vitest"
import { runsLayer } from "../../src/cli/Store.js"
import * as GoalQueue from "../../src/queue/GoalQueue.js"
import { Runs } from "../../src/runtime/Runs.js"
import * as QueueStore from "../../src/store/QueueStore.js"
import { cleanup, Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

const RUN_ID = /^run-\d{8}-\d{6}-[0-9a-f]{6}$/

/**
 * What a daemon does with the queue, done here in this process on the sandbox's file (the daemon is not
 * this command's): take the first ready entry and run it as `Runs.start` would be asked to.
 */
const daemonTakesOne = (file: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      const [entry] = yield* queue.ready(1)
      if (entry === undefined || !(yield* queue.dispatch(entry.id))) return undefined
      return yield* Effect.flatMap(Runs, (runs) => runs.start(queue.startOptions(entry)))
    }).pipe(
      Effect.provide(GoalQueue.layer.pipe(Layer.provideMerge(QueueStore.layer), Layer.provideMerge(runsLayer(DatabaseTarget.DatabaseTarget.Sqlite({ file }))), Layer.provide(NodeContext.layer)))
    )
  )

/** A daemon that has taken an entry and not yet started its run. */
const daemonDispatches = (file: string, id: string) =>
  Effect.runPromise(
    Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.dispatch(id)).pipe(
      Effect.provide(GoalQueue.layer.pipe(Layer.provideMerge(QueueStore.layer), Layer.provideMerge(runsLayer(DatabaseTarget.DatabaseTarget.Sqlite({ file }))), Layer.provide(NodeContext.layer)))
    )
  )

/** `queue list --format json`, parsed. */
const listJson = async (sb: Sandbox) => {
  const listed = await sb.run(["queue", "list", "--format", "json"])
  if (listed.code !== 0) throw new Error(`queue list exited ${listed.code}: ${listed.stderr.join("\n")}`)
  return json(listed.stdout) as Array<Record<string, any>>
}

describe.concurrent("autopilot queue", () => {
  it("adds, lists in the daemons' order (priority, then the order queued), and removes", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const first = await sb.run(["queue", "add", "Summarize three Python dict gotchas"])
    expect(first.code).toBe(0)
    expect(first.stderr).toEqual([])
    expect(first.stdout).toHaveLength(1)
    expect(first.stdout[0]).toMatch(RUN_ID)
    const generated = first.stdout[0]!

    expect((await sb.run(["queue", "add", "Write release notes", "--run-id", "notes", "--priority", "80", "--not-before", "2 hours"])).stdout).toEqual(["notes"])
    expect((await sb.run(["queue", "add", "Triage the inbox", "--run-id", "triage", "--priority", "80"])).stdout).toEqual(["triage"])
    expect((await sb.run(["queue", "add", "Low", "--run-id", "low", "--priority", "0", "--not-before", "2020-01-01T00:00:00+01:00"])).stdout).toEqual(["low"])

    const text = await sb.run(["queue", "list"])
    expect(text.code).toBe(0)
    const [header, ...rows] = text.stdout
    expect(header).toMatch(/^ID +PRIORITY +STATUS +OBJECTIVE$/)
    expect(rows.slice(0, 4).map((row) => row.split(/ {2,}/))).toEqual([
      ["notes", "80", expect.stringMatching(/^not before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), "Write release notes"],
      ["triage", "80", "ready", "Triage the inbox"],
      [generated, "50", "ready", "Summarize three Python dict gotchas"],
      ["low", "0", "ready", "Low"]
    ])
    expect(rows.slice(4)).toEqual(["", "4 queued (3 ready now), 0 dispatched"])

    const listed = await listJson(sb)
    expect(listed.map((e) => e.id)).toEqual(["notes", "triage", generated, "low"])
    expect(listed.map((e) => e.ready)).toEqual([false, true, true, true])
    expect(listed[3]!.not_before).toBe("2019-12-31T23:00:00.000Z")
    const notBefore = Date.parse(listed[0]!.not_before)
    const queuedAt = Date.parse(listed[0]!.created_at)
    expect(notBefore - queuedAt).toBe(2 * 3600_000)

    const removed = await sb.run(["queue", "remove", "triage"])
    expect(removed.code).toBe(0)
    expect(removed.stdout).toEqual(["removed queued entry triage"])
    expect((await listJson(sb)).map((e) => e.id)).toEqual(["notes", generated, "low"])
  })

  it("add --format json prints the entry as queued: criteria, caps, the model with its script's full path, the specialist", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", { turns: [{ content: "done", criteria_met: [true] }] })
    const added = await sb.run([
      "queue", "add", "Review the diff",
      "--criterion", "every risk named",
      "--max-iterations", "3",
      "--max-dollars", "0.5",
      "--mock-script", "turns.json",
      "--model", "gpt-4o",
      "--specialist", "code-reviewer",
      "--priority", "100",
      "--run-id", "review-1",
      "--format", "json"
    ])
    expect(added.code).toBe(0)
    const entry = json(added.stdout)
    expect(entry).toEqual({
      id: "review-1",
      project: "default",
      status: "queued",
      ready: true,
      run_status: null,
      priority: 100,
      not_before: null,
      objective: "Review the diff",
      criteria: ["every risk named"],
      policy: { max_seconds: 1800, max_tool_calls: 100, max_tokens: 2_000_000, max_dollars: 0.5, max_iterations: 3 },
      llm: { provider: "mock", model: "gpt-4o", mock_script: path.join(fs.realpathSync(sb.dir), "turns.json") },
      specialist: "code-reviewer",
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      dispatched_at: null
    })
    expect(await listJson(sb)).toEqual([entry])
  })

  it("a dispatched entry is listed with its run's state, runs with what it was queued with, and cannot be removed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    expect((await sb.run(["queue", "add", "Explain dict gotchas", "--criterion", "a", "--criterion", "b", "--max-iterations", "1", "--run-id", "q1"])).code).toBe(0)
    expect((await sb.run(["queue", "add", "Later", "--run-id", "q2", "--priority", "10"])).code).toBe(0)

    const result = await daemonTakesOne(sb.db)
    // Its cap of one iteration came with it: the mock meets one criterion per iteration.
    expect(result).toMatchObject({ run_id: "q1", status: "partial", iterations: 1 })

    const listed = await listJson(sb)
    expect(listed.map((e) => [e.id, e.status, e.ready, e.run_status])).toEqual([["q2", "queued", true, null], ["q1", "dispatched", false, "partial"]])
    expect(listed[1]!.dispatched_at).toMatch(/Z$/)
    const text = await sb.run(["queue", "list"])
    expect(text.stdout[2]).toMatch(/^q1 +50 +dispatched \(run partial\) +Explain dict gotchas$/)
    expect(text.stdout.at(-1)).toBe("1 queued (1 ready now), 1 dispatched")
    expect((await sb.show("q1")).goal).toEqual({ objective: "Explain dict gotchas", success_criteria: ["a", "b"] })

    expect(await daemonDispatches(sb.db, "q2")).toBe(true)
    expect((await sb.run(["queue", "list"])).stdout.slice(1, 3).map((row) => row.split(/ {2,}/))).toEqual([
      ["q2", "10", "dispatched (no run)", "Later"],
      ["q1", "50", "dispatched (run partial)", "Explain dict gotchas"]
    ])

    const refused = await sb.run(["queue", "remove", "q1"])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toEqual(['autopilot: queue entry "q1" has already started as run q1; stop it with `autopilot stop q1`'])
    const again = await sb.run(["queue", "add", "again", "--run-id", "q1"])
    expect(again.code).toBe(2)
    expect(again.stderr).toEqual(['autopilot: run id "q1" was already queued and has been started as run q1 (see `autopilot show q1`); choose another --run-id'])
  })

  it("list and remove on a database that does not exist, or holds no queue, create nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const empty = await sb.run(["queue", "list"])
    expect(empty.code).toBe(0)
    expect(empty.stdout).toEqual(["the queue is empty (`autopilot queue add OBJECTIVE` queues a run)"])
    expect((await sb.run(["queue", "list", "--format", "json"])).stdout).toEqual(["[]"])
    const unknown = await sb.run(["queue", "remove", "nobody"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toEqual(['autopilot: no queued entry "nobody" (see `autopilot queue list`)'])
    expect(fs.existsSync(sb.db)).toBe(false)

    expect((await sb.run(["run", "a run", "--run-id", "r", "--max-iterations", "1"])).code).toBe(0)
    const before = fs.readFileSync(sb.db)
    expect((await sb.run(["queue", "list", "--format", "json"])).stdout).toEqual(["[]"])
    expect((await sb.run(["queue", "remove", "r"])).stderr).toEqual(['autopilot: no queued entry "r" (see `autopilot queue list`)'])
    expect(fs.readFileSync(sb.db).equals(before)).toBe(true)
    expect(sb.sql((db) => db.prepare("SELECT name FROM sqlite_master WHERE name = 'queue_entries'").all())).toEqual([])
  })

  it("queue alone shows its commands", async (context) => {
    const { expect } = context
    const help = await sandbox(context).run(["queue"], { db: false })
    expect(help.code).toBe(0)
    const page = help.stdout.join("\n")
    expect(page).toMatch(/^\$ autopilot queue <command>$/m)
    for (const command of ["add", "list", "remove"]) expect(page).toMatch(new RegExp(`^  ${command} +\\S`, "m"))
  })
})

/** A database holding one finished run, `base`, and one queued entry, `waiting`, copied into each case. */
let existing: Sandbox
beforeAll(async () => {
  existing = new Sandbox()
  const made = await existing.run(["run", "base", "--criterion", "a", "--run-id", "base", "--max-iterations", "1"])
  const queued = await existing.run(["queue", "add", "waiting", "--run-id", "waiting"])
  if (made.code !== 0 || queued.code !== 0) throw new Error(`could not make the base database: ${[...made.stderr, ...queued.stderr].join("\n")}`)
})
afterAll(() => existing.dispose())

const forms = /must be an ISO-8601 time with a zone \(2026-05-01T09:00:00Z, 2026-05-01T11:00\+02:00\) or a duration from now \(90s, 10m, 2 hours, 1\.5d; at most 10 years\)/

interface Case {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly mentions: RegExp
  /** Only on the base database, which holds what the case collides with; else on both it and none at all. */
  readonly existingOnly?: boolean
}

const cases: ReadonlyArray<Case> = [
  ...["101", "-1", "2.5", "high", "1e2"].map((value) => ({
    name: `--priority ${value}`,
    args: ["queue", "add", "x", "--priority", value],
    mentions: new RegExp(`^autopilot: --priority must be a whole number from 0 to 100 \\(higher is taken first\\), got "${value.replace(".", "\\.")}"$`)
  })),
  ...["tomorrow", "2026-05-01T09:00:00", "2026-02-30T09:00Z", "10 fortnights", "-10m"].map((value) => ({
    name: `--not-before ${value}`,
    args: ["queue", "add", "x", "--not-before", value],
    mentions: new RegExp(`^autopilot: --not-before ${forms.source}, got "${value}"$`)
  })),
  { name: "remove of an unknown entry", args: ["queue", "remove", "nobody"], mentions: /^autopilot: no queued entry "nobody" \(see `autopilot queue list`\)$/ },
  {
    name: "a run id already queued",
    args: ["queue", "add", "x", "--run-id", "waiting"],
    mentions: /^autopilot: run id "waiting" is already queued \(see `autopilot queue list`\); choose another --run-id$/,
    existingOnly: true
  },
  {
    name: "a run id that is already a run",
    args: ["queue", "add", "x", "--run-id", "base"],
    mentions: /^autopilot: run id "base" is already a run \(status completed; see `autopilot show base`\); choose another --run-id$/,
    existingOnly: true
  },
  { name: "a run id that reads as a path", args: ["queue", "add", "x", "--run-id", "../x"], mentions: /run id "\.\.\/x" is not allowed/ },
  { name: "an unknown specialist", args: ["queue", "add", "x", "--specialist", "nobody"], mentions: /unknown specialist "nobody"/ },
  { name: "a negative budget", args: ["queue", "add", "x", "--max-iterations", "-1"], mentions: /--max-iterations must be a whole number from 0 to 1000000000 \(0 disables the axis\), got "-1"/ },
  { name: "a missing mock script", args: ["queue", "add", "x", "--mock-script", "nope.json"], mentions: /mock script .*nope\.json cannot be read/ },
  { name: "--llm openai without its settings", args: ["queue", "add", "x", "--llm", "openai"], mentions: /--llm openai needs AUTOPILOT_LLM_BASE_URL/ },
  { name: "an empty objective", args: ["queue", "add", " "], mentions: /the objective must be non-empty text/ },
  { name: "an empty --criterion", args: ["queue", "add", "x", "--criterion", ""], mentions: /--criterion needs a non-empty value/ },
  { name: "bad --format for list", args: ["queue", "list", "--format", "jsonl"], mentions: /--format must be text or json, got "jsonl"/ }
]

describe.concurrent("autopilot queue: bad input exits 2 with one line on stderr, nothing on stdout, nothing written", () => {
  it.for(cases)("$name", async (testCase, context) => {
    const { expect } = context
    for (const db of testCase.existingOnly === true ? ["existing"] as const : ["fresh", "existing"] as const) {
      const sb = sandbox(context)
      if (db === "existing") fs.copyFileSync(existing.db, sb.db)
      const before = { files: sb.files(), db: db === "existing" ? fs.readFileSync(sb.db) : undefined }
      const finished = await sb.run(testCase.args)
      expect(finished.code, db).toBe(2)
      expect(finished.stdout, db).toEqual([])
      expect(finished.stderr, db).toHaveLength(1)
      expect(finished.stderr[0], db).toMatch(testCase.mentions)
      expect(sb.files(), db).toEqual(before.files)
      if (before.db === undefined) expect(fs.existsSync(sb.db), db).toBe(false)
      else expect(fs.readFileSync(sb.db).equals(before.db), db).toBe(true)
    }
  })
})
