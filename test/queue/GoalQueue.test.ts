import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, FastCheck, Fiber, Layer, Option, Schedule, Schema, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { BudgetPolicy } from "../../src/domain/Budget.js"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import type { QueueEntry } from "../../src/domain/QueueEntry.js"
import * as Api from "../../src/index.js"
import * as GoalQueue from "../../src/queue/GoalQueue.js"
import * as Runs from "../../src/runtime/Runs.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import * as QueueStore from "../../src/store/QueueStore.js"
import { RunStore } from "../../src/store/RunStore.js"
import { earlierCheckpoint, environment } from "../runtime/fixtures.js"

const workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-queue-"))
afterAll(() => fs.rmSync(workspaceRoot, { recursive: true, force: true }))

/** A fresh in-memory database per test, with the queue, the runs and the mock beside it. */
const layer = GoalQueue.layer.pipe(
  Layer.provideMerge(Layer.merge(QueueStore.layer, Runs.layer({ workspaceRoot }))),
  Layer.provideMerge(Layer.merge(environment, NodeContext.layer))
)

const writer: Specialist = {
  id: "tech-writer",
  name: "Technical Writer",
  category: "content",
  role: "Writes clear technical prose.",
  goal: "Make the reader understand.",
  background: "Years of documentation.",
  instructions: ["Lead with the point."],
  allowed_tools: [],
  model_tier: "medium"
}

const add = (objective: string, fields: Partial<Parameters<GoalQueue.GoalQueue["Type"]["add"]>[0]> = {}) =>
  Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.add({ objective, ...fields }))

const ids = (entries: ReadonlyArray<QueueEntry>) => entries.map((e) => e.id)

const ready = (limit = 100) => Effect.map(Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.ready(limit)), ids)

const listed = Effect.map(
  Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.list()),
  (entries) => entries.map(({ entry, ready, run }) => `${entry.id} ${entry.status} ${ready ? "ready" : "waiting"} ${run ?? "-"}`)
)

const badInput = <A, E extends { readonly _tag: string; readonly message: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}: ${error.message}`)

/** A finished run with this id, as `autopilot run` would have left it. */
const existingRun = (runId: string) =>
  Effect.flatMap(RunStore, (runs) => runs.create(Schema.decodeUnknownSync(Checkpoint)({ ...earlierCheckpoint, run_id: runId })))

describe("GoalQueue", () => {
  it.effect("queues a run as `autopilot run` would start it: a fresh run id, the objective as its criterion, default caps, priority 50, the mock", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("90 minutes")
      const entry = yield* add("Summarize three Python dict gotchas")
      assert.match(entry.id, /^run-19700101-013000-[0-9a-f]{6}$/)
      assert.strictEqual(entry.objective, "Summarize three Python dict gotchas")
      assert.deepStrictEqual(entry.criteria, ["The objective is achieved: Summarize three Python dict gotchas"])
      assert.deepStrictEqual(entry.policy, new BudgetPolicy({}))
      assert.deepStrictEqual(entry.llm, { provider: "mock" })
      assert.strictEqual(entry.specialist, null)
      assert.strictEqual(entry.priority, 50)
      assert.strictEqual(entry.not_before, null)
      assert.strictEqual(entry.status, "queued")
      assert.strictEqual(entry.created_at, "1970-01-01T01:30:00.000Z")
      assert.strictEqual(entry.dispatched_at, null)
      assert.strictEqual(entry.project, "default")
      const again = yield* add("Summarize three Python dict gotchas")
      assert.notStrictEqual(again.id, entry.id)
      assert.deepStrictEqual(yield* listed, [`${entry.id} queued ready -`, `${again.id} queued ready -`])
    }).pipe(Effect.provide(layer)))

  it.effect("keeps what it was given: the run id, criteria, caps over the defaults, the specialist, the model with its script's full path", () =>
    Effect.gen(function*() {
      const entry = yield* add("Write the release notes", {
        runId: "notes-1",
        criteria: ["every change listed", "one line each"],
        policy: { max_iterations: 3, max_dollars: 0.5 },
        specialist: writer,
        llm: { provider: "mock", model: "gpt-4o", mock_script: "turns.json" },
        priority: 80,
        project: "ops.team-2"
      })
      assert.strictEqual(entry.id, "notes-1")
      assert.deepStrictEqual(entry.criteria, ["every change listed", "one line each"])
      assert.deepStrictEqual(entry.policy, new BudgetPolicy({ max_iterations: 3, max_dollars: 0.5 }))
      assert.deepStrictEqual(entry.specialist, writer)
      assert.deepStrictEqual(entry.llm, { provider: "mock", model: "gpt-4o", mock_script: path.resolve("turns.json") })
      const queue = yield* GoalQueue.GoalQueue
      const [stored] = yield* queue.list()
      assert.deepStrictEqual(stored?.entry, entry)
      assert.deepStrictEqual(queue.startOptions(entry), {
        runId: "notes-1",
        goal: entry.goal,
        policy: entry.policy,
        llm: entry.llm,
        specialist: writer,
        project: "ops.team-2"
      })
    }).pipe(Effect.provide(layer)))

  it.effect.prop(
    "the daemons' order: priority, highest first, then the order the entries were queued",
    [FastCheck.array(FastCheck.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 12 })],
    ([priorities]) =>
      Effect.gen(function*() {
        const queue = yield* GoalQueue.GoalQueue
        for (const [i, priority] of priorities.entries()) yield* add(`objective ${i}`, { runId: `e${i}`, priority })
        const expected = priorities
          .map((priority, i) => ({ id: `e${i}`, priority, i }))
          .sort((a, b) => b.priority - a.priority || a.i - b.i)
          .map((e) => e.id)
        assert.deepStrictEqual(yield* ready(), expected)
        assert.deepStrictEqual((yield* queue.list()).map(({ entry }) => entry.id), expected)
        assert.deepStrictEqual(yield* ready(3), expected.slice(0, 3))
      }).pipe(Effect.provide(layer)),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("an entry with a not-before is not ready until the Clock reaches it, whatever its priority", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(DateTime.toEpochMillis(DateTime.unsafeMake("2026-04-15T09:00:00.000Z")))
      const soon = yield* add("in ten minutes", { runId: "soon", priority: 100, notBefore: "10m" })
      const later = yield* add("in two hours", { runId: "later", priority: 90, notBefore: "2 hours" })
      const past = yield* add("already due, in another zone", { runId: "past", priority: 80, notBefore: "2026-04-15T10:30:00+02:00" })
      yield* add("now", { runId: "now", priority: 10 })
      assert.strictEqual(soon.not_before, "2026-04-15T09:10:00.000Z")
      assert.strictEqual(later.not_before, "2026-04-15T11:00:00.000Z")
      assert.strictEqual(past.not_before, "2026-04-15T08:30:00.000Z")
      assert.deepStrictEqual(yield* ready(), ["past", "now"])
      assert.deepStrictEqual(yield* listed, ["soon queued waiting -", "later queued waiting -", "past queued ready -", "now queued ready -"])

      // A daemon that looks once a minute takes `soon` in the minute its time comes, not before.
      const queue = yield* GoalQueue.GoalQueue
      const poller = yield* queue.ready(1).pipe(
        Effect.repeat({ schedule: Schedule.spaced("1 minute"), until: (entries) => entries[0]?.id === "soon" }),
        Effect.zipRight(DateTime.now),
        Effect.fork
      )
      yield* TestClock.adjust("9 minutes")
      assert.isNull(poller.unsafePoll())
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(DateTime.formatIso(yield* Fiber.join(poller)), "2026-04-15T09:10:00.000Z")
      assert.deepStrictEqual(yield* ready(), ["soon", "past", "now"])

      yield* TestClock.adjust("109 minutes")
      assert.deepStrictEqual(yield* ready(), ["soon", "past", "now"])
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* ready(), ["soon", "later", "past", "now"])
    }).pipe(Effect.provide(layer)))

  it.effect("two daemons racing to dispatch the same entry: exactly one takes it", () =>
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      yield* add("contested", { runId: "contested" })
      const [first, second] = yield* Effect.all([queue.dispatch("contested"), queue.dispatch("contested")], { concurrency: "unbounded" })
      assert.deepStrictEqual([first, second].filter(Boolean), [true])
      assert.deepStrictEqual(yield* ready(), [])

      // Two daemons each taking what is ready until nothing is left: every entry once, none twice.
      for (let i = 0; i < 20; i++) yield* add(`objective ${i}`, { runId: `e${i}`, priority: i % 3 })
      const daemon = Effect.gen(function*() {
        const taken: Array<string> = []
        for (;;) {
          const next = yield* queue.ready(2)
          if (next.length === 0) return taken
          for (const entry of next) if (yield* queue.dispatch(entry.id)) taken.push(entry.id)
          yield* Effect.yieldNow()
        }
      })
      const [a, b] = yield* Effect.all([daemon, daemon], { concurrency: "unbounded" })
      assert.strictEqual(a.length + b.length, 20)
      assert.strictEqual(new Set([...a, ...b]).size, 20)
    }).pipe(Effect.provide(layer)))

  it.effect("remove: a queued entry is removed; an unknown one is not found; a dispatched one is refused, naming the run to stop", () =>
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      yield* add("a", { runId: "a" })
      yield* add("b", { runId: "b" })
      yield* queue.remove("a")
      assert.deepStrictEqual(yield* listed, ["b queued ready -"])
      assert.isFalse(yield* queue.dispatch("a"))
      assert.strictEqual(yield* badInput(queue.remove("a")), 'QueueEntryNotFound: no queued entry "a" (see `autopilot queue list`)')
      assert.strictEqual(yield* badInput(queue.remove("nobody")), 'QueueEntryNotFound: no queued entry "nobody" (see `autopilot queue list`)')
      assert.isTrue(yield* queue.dispatch("b"))
      assert.strictEqual(
        yield* badInput(queue.remove("b")),
        'BadInput: queue entry "b" has already started as run b; stop it with `autopilot stop b`'
      )
      assert.deepStrictEqual(yield* listed, ["b dispatched waiting -"])
    }).pipe(Effect.provide(layer)))

  it.effect("an id already queued, dispatched or a run is refused, and nothing is written", () =>
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      yield* add("first", { runId: "dup" })
      yield* add("second", { runId: "taken" })
      yield* queue.dispatch("taken")
      yield* existingRun("old-run")
      const before = yield* listed
      assert.strictEqual(
        yield* badInput(add("again", { runId: "dup" })),
        'RunIdTaken: run id "dup" is already queued (see `autopilot queue list`); choose another --run-id'
      )
      assert.strictEqual(
        yield* badInput(add("again", { runId: "taken" })),
        'RunIdTaken: run id "taken" was already queued and has been started as run taken (see `autopilot show taken`); choose another --run-id'
      )
      assert.strictEqual(
        yield* badInput(add("again", { runId: "old-run" })),
        'RunIdTaken: run id "old-run" is already a run (status halted; see `autopilot show old-run`); choose another --run-id'
      )
      assert.deepStrictEqual(yield* listed, before)
      assert.strictEqual(Option.getOrThrow(Option.fromNullable((yield* queue.list()).find((l) => l.entry.id === "dup"))).entry.objective, "first")
    }).pipe(Effect.provide(layer)))

  it.effect("bad input is refused in one line naming what is allowed, and nothing is queued", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.forEach([
        add("x", { priority: 101 }),
        add("x", { priority: -1 }),
        add("x", { priority: 2.5 }),
        add("x", { notBefore: "tomorrow" }),
        add("x", { notBefore: "2026-02-30T10:00:00Z" }),
        add("x", { notBefore: "2026-04-15T10:00:00" }),
        add("x", { runId: "../escape" }),
        add(" "),
        add("x", { criteria: ["ok", ""] }),
        add("x", { policy: { max_iterations: 1.5 } }),
        add("x", { llm: { provider: "openai", mock_script: "turns.json" } }),
        add("x", { project: "two words" })
      ], badInput)
      assert.deepStrictEqual(refused, [
        "BadInput: the priority must be a whole number from 0 to 100 (higher is taken first), got 101",
        "BadInput: the priority must be a whole number from 0 to 100 (higher is taken first), got -1",
        "BadInput: the priority must be a whole number from 0 to 100 (higher is taken first), got 2.5",
        `BadInput: not before must be an ISO-8601 time with a zone (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00) or a duration from now (90s, 10m, 2 hours, 1.5d; at most 10 years), got "tomorrow"`,
        `BadInput: not before must be an ISO-8601 time with a zone (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00) or a duration from now (90s, 10m, 2 hours, 1.5d; at most 10 years), got "2026-02-30T10:00:00Z"`,
        `BadInput: not before must be an ISO-8601 time with a zone (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00) or a duration from now (90s, 10m, 2 hours, 1.5d; at most 10 years), got "2026-04-15T10:00:00"`,
        `BadInput: run id "../escape" is not allowed: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
        "BadInput: the objective must be non-empty text",
        "BadInput: every --criterion must be non-empty text",
        "BadInput: the budget's max_iterations must be a whole number from 0 to 1000000000 (0 disables the axis)",
        "BadInput: --mock-script is for the mock model, but this run uses --llm openai",
        `BadInput: project "two words" is not allowed: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`
      ])
      assert.deepStrictEqual(yield* listed, [])
    }).pipe(Effect.provide(layer)))

  it.effect("entries belong to a project: listed and removed within it only, and their runs belong to it", () =>
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      yield* add("a", { runId: "a", project: "p1" })
      yield* add("b", { runId: "b", project: "p2" })
      yield* add("c", { runId: "c", project: "p1", priority: 90 })
      yield* add("d", { runId: "d" })
      const idsIn = (project?: string) => Effect.map(queue.list({ project }), (listed) => listed.map((l) => l.entry.id))
      assert.deepStrictEqual(yield* idsIn("p1"), ["c", "a"])
      assert.deepStrictEqual(yield* idsIn("p2"), ["b"])
      assert.deepStrictEqual(yield* idsIn("default"), ["d"])
      assert.deepStrictEqual(yield* idsIn(), ["c", "a", "b", "d"])
      assert.isTrue(yield* queue.dispatch("a"))
      assert.deepStrictEqual(yield* Effect.map(queue.list({ project: "p1", status: "dispatched" }), (l) => l.map((x) => x.entry.id)), ["a"])
      assert.deepStrictEqual(yield* Effect.map(queue.list({ project: "p2", status: "dispatched" }), (l) => l.map((x) => x.entry.id)), [])
      // Another project's entry is not found, as if absent, whether queued or dispatched; its own are removed.
      assert.strictEqual(yield* badInput(queue.remove("b", { project: "p1" })), 'QueueEntryNotFound: no queued entry "b" (see `autopilot queue list`)')
      assert.strictEqual(yield* badInput(queue.remove("a", { project: "p2" })), 'QueueEntryNotFound: no queued entry "a" (see `autopilot queue list`)')
      assert.deepStrictEqual(yield* idsIn("p2"), ["b"])
      yield* queue.remove("b", { project: "p2" })
      assert.deepStrictEqual(yield* idsIn("p2"), [])
      const runs = yield* Runs.Runs
      const entry = Option.getOrThrow(yield* queue.get("a"))
      yield* runs.start(queue.startOptions(entry))
      assert.deepStrictEqual((yield* runs.list({ project: "p1" })).map((r) => r._tag === "Found" && [r.checkpoint.run_id, r.checkpoint.project]), [["a", "p1"]])
      assert.deepStrictEqual(yield* runs.list({ project: "p2" }), [])
    }).pipe(Effect.provide(layer)))

  it.effect("a dispatched entry runs through Runs.start as queued, and the list follows its run", () =>
    Effect.gen(function*() {
      const queue = yield* GoalQueue.GoalQueue
      const runs = yield* Runs.Runs
      const entry = yield* add("Explain three gotchas", {
        runId: "queued-run",
        criteria: ["first", "second"],
        policy: { max_iterations: 5 },
        specialist: writer
      })
      assert.isTrue(yield* queue.dispatch(entry.id))
      assert.deepStrictEqual(yield* listed, ["queued-run dispatched waiting -"])
      const result = yield* runs.start(queue.startOptions(entry))
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.iterations, 2)
      const loaded = yield* Effect.flatMap(RunStore, (store) => store.load("queued-run"))
      assert(loaded._tag === "Found")
      assert.deepStrictEqual(loaded.checkpoint.goal, entry.goal)
      assert.strictEqual(loaded.checkpoint.policy.max_iterations, 5)
      assert.deepStrictEqual(loaded.checkpoint.specialist, writer)
      assert.deepStrictEqual(loaded.checkpoint.llm, { provider: "mock" })
      assert.deepStrictEqual(yield* listed, ["queued-run dispatched waiting completed"])
    }).pipe(Effect.provide(layer)))
})

describe("GoalQueue through the public API", () => {
  it.effect("works as README shows: what is ready is taken in order, once; the not-before entry in its time", () =>
    Effect.gen(function*() {
      const goals = yield* Api.GoalQueue.GoalQueue
      yield* goals.add({ objective: "Write the release notes", priority: 80, policy: { max_iterations: 20 } })
      yield* goals.add({ objective: "Triage the inbox", criteria: ["every mail labelled"], notBefore: "10m" })
      const take = Effect.flatMap(goals.ready(4), (entries) =>
        Effect.filter(entries, (entry) => goals.dispatch(entry.id)).pipe(Effect.map((taken) => taken.map((e) => goals.startOptions(e).goal?.objective))))
      assert.deepStrictEqual(yield* take, ["Write the release notes"])
      assert.deepStrictEqual(yield* take, [])
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(yield* take, ["Triage the inbox"])
    }).pipe(Effect.provide(Api.GoalQueue.layer.pipe(
      Layer.provideMerge(Layer.merge(Api.QueueStore.layer, Api.RunStore.layer)),
      Layer.provideMerge(Api.Database.layerSqlite(":memory:"))
    ))))
})
