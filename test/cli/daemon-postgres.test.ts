import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { afterEach, it, type TestContext } from "vitest"
import * as GoalQueue from "../../src/queue/GoalQueue.js"
import * as Database from "../../src/store/Database.js"
import * as QueueStore from "../../src/store/QueueStore.js"
import * as RunStore from "../../src/store/RunStore.js"
import { createPostgres, onPostgres } from "../support/Databases.js"
import { type CliProcess, cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A statement on the test's own database, as the daemons left it. */
const query = <A extends object>(url: string, statement: string) =>
  Effect.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<A>(statement)).pipe(Effect.provide(Database.layerPg(url))))

/**
 * The runs `ids` queued through the queue service, as `autopilot queue add` queues each (its own test in
 * queue.test.ts): one process here instead of one CLI start per run.
 */
const queued = (url: string, ids: ReadonlyArray<string>, script: string) =>
  Effect.runPromise(
    Effect.forEach(ids, (id) =>
      Effect.flatMap(GoalQueue.GoalQueue, (queue) =>
        queue.add({ objective: `objective ${id}`, runId: id, llm: { mock_script: script }, policy: { max_iterations: 10 } }))).pipe(
        Effect.provide(GoalQueue.layer.pipe(Layer.provideMerge(Layer.merge(QueueStore.layer, RunStore.layer)), Layer.provide(Database.layerPg(url))))
      )
  )

const database = async (context: TestContext, serverUrl: string) => {
  const created = await createPostgres(serverUrl)
  context.onTestFinished(created.drop)
  return created.url
}

/** `count` slow iterations a run: the judge meets the criterion on the last. */
const slowRuns = (sb: Sandbox, count = 3, latencyMs = 300) =>
  sb.writeFile("script.json", {
    repeat_last: true,
    turns: Array.from({ length: count }, (_, i) => ({ content: `Part ${i + 1}.`, criteria_met: [i === count - 1], latency_ms: latencyMs }))
  })

const endedLines = (daemons: ReadonlyArray<CliProcess>, id: string) =>
  daemons.flatMap((d) => d.stdout.filter((l) => l.includes(` ended queued ${id}: `)))

/**
 * Whether a daemon said the run is over: it ended it, or, delivered a run another daemon had ended (one
 * killed before it could print so), found it ended.
 */
const settled = (daemons: ReadonlyArray<CliProcess>, id: string) =>
  daemons.some((d) => d.stdout.some((l) => l.includes(` ended queued ${id}: `) || l.includes(` found queued ${id} already ended: `)))

const startedIds = (daemon: CliProcess) => daemon.stdout.filter((l) => l.includes(" started queued ")).map((l) => l.split(" ").pop()!)

/**
 * Waits until every run in `ids` has printed its end; past the deadline, fails naming the runs still open,
 * with their rows and every daemon's lines about them, so a stuck run is diagnosed, not just timed out.
 */
const allEnded = async (url: string, daemons: ReadonlyArray<CliProcess>, ids: ReadonlyArray<string>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  const open = () => ids.filter((id) => !settled(daemons, id))
  while (open().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
  const left = open()
  if (left.length === 0) return
  const quoted = left.map((id) => `'${id}'`).join(", ")
  const work = await query(url, `SELECT * FROM daemon_work WHERE run_id IN (${quoted})`)
  const checkpoints = await query<{ run_id: string; state: string }>(url, `SELECT run_id, state FROM checkpoints WHERE run_id IN (${quoted})`)
  const runners = await query(url, "SELECT * FROM daemon_runners")
  const about = daemons.map((d, i) =>
    [`daemon ${i} (pid ${d.pid}):`, ...[...d.stdout, ...d.stderr].filter((l) => left.some((id) => l.includes(id)) || !l.includes(" queued ")).slice(-60)]
      .join("\n  ")
  )
  throw new Error([
    `runs not ended within ${timeoutMs} ms: ${left.join(", ")}`,
    `daemon_work: ${JSON.stringify(work, null, 1)}`,
    `checkpoints: ${JSON.stringify(checkpoints.map((c) => ({ run_id: c.run_id, ...JSON.parse(c.state), history: undefined })), null, 1).slice(0, 4000)}`,
    `daemon_runners: ${JSON.stringify(runners, null, 1)}`,
    ...about
  ].join("\n"))
}

onPostgres("autopilot daemon on Postgres", (serverUrl) => {
  it("three daemons work 30 queued runs; one killed with -9 mid-way: each run ends exactly once, none left running, usage exact", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    const env = { AUTOPILOT_DATABASE_URL: url }
    const script = slowRuns(sb)
    const ids = Array.from({ length: 30 }, (_, i) => `q-${String(i).padStart(2, "0")}`)
    expect((await queued(url, ids, script)).map((entry) => entry.id)).toEqual(ids)
    const flags = ["daemon", "--concurrency", "3", "--poll-seconds", "0.2", "--lease-seconds", "3"]
    const daemons = [0, 1, 2].map(() => sb.start(flags, { db: false, env }))
    // Mid-way: some runs ended, the victim is inside others. Its lines reach us late on a busy machine, so
    // the runs it is inside are read from the database, not from what it printed.
    const victim = daemons[0]!
    const inside = async () => {
      const started = startedIds(victim).filter((id) => !settled(daemons, id))
      if (started.length === 0) return []
      const rows = await query<{ run_id: string; state: string }>(url, `SELECT run_id, state FROM checkpoints WHERE run_id IN (${started.map((id) => `'${id}'`).join(", ")})`)
      return rows.map((r) => ({ id: r.run_id, checkpoint: JSON.parse(r.state) }))
        .filter(({ checkpoint }) => checkpoint.status === "running" && checkpoint.owner?.pid === victim.pid)
    }
    await victim.line((l) => l.includes(" ended queued "), 60_000)
    // At most one of its three iterations done: the run has a good 300 ms to go when the victim dies.
    let seen = startedIds(victim).length
    while ((await inside()).every(({ checkpoint }) => checkpoint.usage.iterations >= 2)) {
      await victim.line(() => startedIds(victim).length > seen, 60_000)
      seen = startedIds(victim).length
    }
    victim.signal("SIGKILL")
    await victim.waitForExit()
    const cut = (await inside()).map(({ id }) => id)
    expect(cut.length, victim.transcript()).toBeGreaterThan(0)
    expect(ids.filter((id) => settled(daemons, id)).length).toBeLessThan(30)

    await allEnded(url, daemons, ids, 150_000)
    // Ended once: never by two daemons (one that found it ended ran nothing, and the steps below agree).
    for (const id of ids) expect(endedLines(daemons, id).length, id).toBeLessThanOrEqual(1)
    for (const id of cut) expect(endedLines(daemons.slice(1), id), `${id} resumed elsewhere`).toEqual([expect.stringMatching(/: completed$/)])

    const runs = await query<{ run_id: string; state: string }>(url, "SELECT run_id, state FROM checkpoints ORDER BY run_id")
    expect(runs.map((r) => r.run_id)).toEqual(ids)
    const steps = await query<{ run_id: string; n: string }>(url, "SELECT run_id, COUNT(*) AS n FROM steps GROUP BY run_id")
    const stepCount = new Map(steps.map((s) => [s.run_id, Number(s.n)]))
    for (const run of runs) {
      const checkpoint = JSON.parse(run.state)
      expect(checkpoint.status, run.run_id).toBe("completed")
      // Every iteration counted is a step on record, and every step is counted: none lost, none twice.
      expect(checkpoint.usage.iterations, run.run_id).toBe(stepCount.get(run.run_id))
    }
    const work = await query<{ run_id: string; ended_at: string | null; deliveries: number }>(url, "SELECT run_id, ended_at, deliveries FROM daemon_work")
    expect(work.filter((w) => w.ended_at === null)).toEqual([])
    // A run cut off was delivered again; any run may also have been, when its shard moved as a runner joined.
    for (const w of work) expect(w.deliveries, w.run_id).toBeGreaterThanOrEqual(cut.includes(w.run_id) ? 2 : 1)

    const status = JSON.parse((await sb.run(["daemon", "status", "--format", "json"], { db: false, env })).stdout.join("\n"))
    expect(status.runners.find((r: any) => r.pid === victim.pid)).toMatchObject({ alive: false })
    for (const d of daemons.slice(1)) d.signal("SIGTERM")
    for (const d of daemons.slice(1)) expect((await d.waitForExit(30_000)).code).toBe(0)
  })

  it("drains on SIGTERM: a run halts at its next boundary and another daemon finishes it from its checkpoint", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const url = await database(context, serverUrl)
    const env = { AUTOPILOT_DATABASE_URL: url }
    // Eight iterations of half a second: the signal lands well before the last.
    const script = slowRuns(sb, 8, 500)
    const added = await sb.run(["queue", "add", "drain me", "--run-id", "drained", "--mock-script", script], { db: false, env })
    expect(added.code, added.stderr.join("\n")).toBe(0)
    const flags = ["daemon", "--poll-seconds", "0.2"]
    const a = sb.start(flags, { db: false, env })
    await a.line((l) => l.endsWith("started queued drained"))
    const b = sb.start(flags, { db: false, env })
    await b.line((l) => l.includes(" up, working "))
    a.signal("SIGTERM")
    const drained = await a.waitForExit(30_000)
    expect(drained.code).toBe(0)
    expect(drained.stdout.some((l) => l.endsWith("handed over queued drained")), a.transcript()).toBe(true)
    expect(await b.line((l) => l.includes("ended queued drained: "), 60_000)).toMatch(/: completed$/)
    const [run] = await query<{ state: string }>(url, "SELECT state FROM checkpoints WHERE run_id = 'drained'")
    const checkpoint = JSON.parse(run!.state)
    const [steps] = await query<{ n: string }>(url, "SELECT COUNT(*) AS n FROM steps WHERE run_id = 'drained'")
    expect(checkpoint.usage.iterations).toBe(Number(steps!.n))
    b.signal("SIGTERM")
    await b.waitForExit(30_000)
  })
})
