import { SqlClient } from "@effect/sql"
import { eachDatabase } from "../support/Databases.js"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { BudgetPolicy } from "../../src/domain/Budget.js"
import { QueueEntry } from "../../src/domain/QueueEntry.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import { QueueStore } from "../../src/store/QueueStore.js"
import * as Store from "../../src/store/QueueStore.js"
import { sameOption } from "../assertOption.js"

const auditor: Specialist = {
  id: "auditor",
  name: "Security Auditor",
  category: "security",
  role: "Reviews code for vulnerabilities.",
  goal: "Find what an attacker would use.",
  background: "Years of code audits.",
  instructions: ["Map the attack surface first.", "Never modify files."],
  allowed_tools: ["read_file"],
  model_tier: "complex"
}

const entry = (id: string, fields: Partial<ConstructorParameters<typeof QueueEntry>[0]> = {}) =>
  new QueueEntry({
    id,
    objective: "Summarize three Python dict gotchas — ✓ “quoted”",
    criteria: ["three gotchas explained", "a snippet for each"],
    policy: new BudgetPolicy({ max_iterations: 7, max_dollars: 0.25 }),
    specialist: null,
    llm: { provider: "mock" },
    priority: 50,
    not_before: null,
    status: "queued",
    created_at: "2026-04-15T09:00:00.000Z",
    dispatched_at: null,
    ...fields
  })

const ids = (entries: ReadonlyArray<QueueEntry>) => entries.map((e) => e.id)

/**
 * The store's laws, over whatever database `database` is. Each test starts from an empty table, so the
 * suite also holds on a database the tests share.
 */
export const queueStoreSuite = (database: Layer.Layer<SqlClient.SqlClient>) => {
  const store = Store.layer.pipe(Layer.provideMerge(database))
  const empty = Effect.flatMap(QueueStore, () => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM queue_entries`))
  const test = <A, E>(name: string, body: Effect.Effect<A, E, QueueStore | SqlClient.SqlClient>) =>
    it.effect(name, () => Effect.zipRight(empty, body).pipe(Effect.provide(store)))

  test("reads back what it wrote: criteria, caps, the specialist's snapshot, the model, the times", Effect.gen(function*() {
    const queue = yield* QueueStore
    const written = entry("q-1", {
      specialist: auditor,
      llm: { provider: "mock", model: "gpt-4o-mini", mock_script: "/tmp/turns.json" },
      priority: 90,
      not_before: "2026-04-15T10:00:00.000Z"
    })
    assert.isTrue(yield* queue.insert(written))
    sameOption(yield* queue.get("q-1"), Option.some(written))
    sameOption(yield* queue.get("q-2"), Option.none())
    sameOption(yield* queue.statusOf("q-1"), Option.some("queued"))
    sameOption(yield* queue.statusOf("q-2"), Option.none())
  }))

  test("an id already in the queue is not inserted again, and the first entry is left as it was", Effect.gen(function*() {
    const queue = yield* QueueStore
    assert.isTrue(yield* queue.insert(entry("q-1")))
    assert.isFalse(yield* queue.insert(entry("q-1", { objective: "another", priority: 99 })))
    sameOption(yield* queue.get("q-1"), Option.some(entry("q-1")))
  }))

  test("lists queued entries by priority, highest first, then in the order they were queued; dispatched ones apart, latest first", Effect.gen(function*() {
    const queue = yield* QueueStore
    for (const [id, priority] of [["a", 50], ["b", 10], ["c", 90], ["d", 50], ["e", 90], ["f", 0], ["g", 100]] as const) {
      yield* queue.insert(entry(id, { priority }))
    }
    assert.deepStrictEqual(ids(yield* queue.list("queued")), ["g", "c", "e", "a", "d", "b", "f"])
    assert.isTrue(yield* queue.dispatch("a", "2026-04-15T09:01:00.000Z"))
    assert.isTrue(yield* queue.dispatch("f", "2026-04-15T09:03:00.000Z"))
    assert.isTrue(yield* queue.dispatch("c", "2026-04-15T09:02:00.000Z"))
    assert.deepStrictEqual(ids(yield* queue.list("queued")), ["g", "e", "d", "b"])
    assert.deepStrictEqual(ids(yield* queue.list("dispatched")), ["f", "c", "a"])
    const taken = Option.getOrThrow(yield* queue.get("f"))
    assert.strictEqual(taken.status, "dispatched")
    assert.strictEqual(taken.dispatched_at, "2026-04-15T09:03:00.000Z")
  }))

  test("ready: queued entries whose not-before is at or before now, in turn, at most `limit`", Effect.gen(function*() {
    const queue = yield* QueueStore
    yield* queue.insert(entry("later", { priority: 100, not_before: "2026-04-15T10:00:00.000Z" }))
    yield* queue.insert(entry("now", { priority: 10 }))
    yield* queue.insert(entry("due", { priority: 20, not_before: "2026-04-15T09:30:00.000Z" }))
    yield* queue.insert(entry("taken", { priority: 100 }))
    yield* queue.dispatch("taken", "2026-04-15T09:00:00.000Z")
    assert.deepStrictEqual(ids(yield* queue.ready("2026-04-15T09:29:59.999Z", 10)), ["now"])
    assert.deepStrictEqual(ids(yield* queue.ready("2026-04-15T09:30:00.000Z", 10)), ["due", "now"])
    assert.deepStrictEqual(ids(yield* queue.ready("2026-04-15T10:00:00.000Z", 10)), ["later", "due", "now"])
    assert.deepStrictEqual(ids(yield* queue.ready("2026-04-15T10:00:00.000Z", 2)), ["later", "due"])
  }))

  test("dispatch takes a queued entry once: a second taker, or one after a remove, gets false", Effect.gen(function*() {
    const queue = yield* QueueStore
    yield* queue.insert(entry("a"))
    yield* queue.insert(entry("b"))
    assert.isTrue(yield* queue.dispatch("a", "2026-04-15T09:01:00.000Z"))
    assert.isFalse(yield* queue.dispatch("a", "2026-04-15T09:02:00.000Z"))
    assert.strictEqual(Option.getOrThrow(yield* queue.get("a")).dispatched_at, "2026-04-15T09:01:00.000Z")
    assert.isTrue(yield* queue.remove("b"))
    assert.isFalse(yield* queue.dispatch("b", "2026-04-15T09:02:00.000Z"))
    assert.isFalse(yield* queue.dispatch("nobody", "2026-04-15T09:02:00.000Z"))
  }))

  test("many takers racing for the same entries: each entry is taken exactly once", Effect.gen(function*() {
    const queue = yield* QueueStore
    const all = Array.from({ length: 12 }, (_, i) => `e${i}`)
    yield* Effect.forEach(all, (id) => queue.insert(entry(id)))
    const takers = Array.from({ length: 4 }, (_, taker) =>
      Effect.filter(all, (id) => queue.dispatch(id, `2026-04-15T09:0${taker}:00.000Z`), { concurrency: "unbounded" }))
    const won = yield* Effect.all(takers, { concurrency: "unbounded" })
    assert.deepStrictEqual(won.flat().sort(), [...all].sort())
    assert.deepStrictEqual(yield* queue.list("queued"), [])
  }))

  test("removes only a queued entry", Effect.gen(function*() {
    const queue = yield* QueueStore
    yield* queue.insert(entry("a"))
    yield* queue.insert(entry("b"))
    yield* queue.dispatch("b", "2026-04-15T09:01:00.000Z")
    assert.isTrue(yield* queue.remove("a"))
    assert.isFalse(yield* queue.remove("a"))
    assert.isFalse(yield* queue.remove("b"))
    sameOption(yield* queue.statusOf("b"), Option.some("dispatched"))
    sameOption(yield* queue.get("a"), Option.none())
  }))

  test("each entry keeps its project: listed, counted and removed within it only", Effect.gen(function*() {
    const queue = yield* QueueStore
    yield* queue.insert(entry("a", { project: "p1" }))
    yield* queue.insert(entry("b", { project: "p2", priority: 90 }))
    yield* queue.insert(entry("c", { project: "p1", priority: 70 }))
    yield* queue.insert(entry("d"))
    assert.strictEqual(Option.getOrThrow(yield* queue.get("a")).project, "p1")
    assert.strictEqual(Option.getOrThrow(yield* queue.get("d")).project, "default")
    assert.deepStrictEqual(ids(yield* queue.list("queued", "p1")), ["c", "a"])
    assert.deepStrictEqual(ids(yield* queue.list("queued", "default")), ["d"])
    assert.deepStrictEqual(ids(yield* queue.list("queued")), ["b", "c", "a", "d"])
    yield* queue.dispatch("c", "2026-04-15T09:01:00.000Z")
    assert.deepStrictEqual(ids(yield* queue.list("dispatched", "p1")), ["c"])
    assert.deepStrictEqual(ids(yield* queue.list("dispatched", "p2")), [])
    sameOption(yield* queue.statusOf("b", "p1"), Option.none())
    sameOption(yield* queue.statusOf("b", "p2"), Option.some("queued"))
    assert.isFalse(yield* queue.remove("b", "p1"))
    assert.isTrue(yield* queue.remove("b", "p2"))
  }))

  test("a row that no longer decodes is reported by its id, and can still be removed", Effect.gen(function*() {
    const queue = yield* QueueStore
    const sql = yield* SqlClient.SqlClient
    yield* queue.insert(entry("good"))
    yield* queue.insert(entry("bad"))
    yield* queue.insert(entry("late"))
    yield* sql`UPDATE queue_entries SET priority = 500 WHERE id = 'bad'`
    yield* sql`UPDATE queue_entries SET not_before = 'soon' WHERE id = 'late'`
    const error = yield* Effect.flip(queue.list("queued"))
    assert.strictEqual(error._tag, "PersistenceError")
    assert.include(error.message, "queue entry bad in the database does not decode (`autopilot queue remove bad` removes it)")
    assert.include(error.message, "must be a whole number from 0 to 100")
    const late = yield* Effect.flip(queue.get("late"))
    assert.include(late.message, "queue entry late in the database does not decode")
    assert.include(late.message, "must be an ISO-8601 time")
    assert.isTrue(yield* queue.remove("late"))
    assert.isTrue(yield* queue.remove("bad"))
    assert.deepStrictEqual(ids(yield* queue.list("queued")), ["good"])
  }))
}

eachDatabase("QueueStore", (database) => queueStoreSuite(database.layer))

eachDatabase("QueueStore on a database from before projects", (database) => {
  it.effect("its entries are the default project's", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE queue_entries (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, objective TEXT NOT NULL, criteria TEXT NOT NULL, policy TEXT NOT NULL,
        specialist TEXT NULL, llm TEXT NOT NULL, priority INTEGER NOT NULL, not_before TEXT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, dispatched_at TEXT NULL
      )`
      yield* sql`INSERT INTO queue_entries ${sql.insert({
        seq: 1,
        id: "old",
        objective: "o",
        criteria: JSON.stringify(["c"]),
        policy: JSON.stringify({}),
        specialist: null,
        llm: JSON.stringify({ provider: "mock" }),
        priority: 50,
        not_before: null,
        status: "queued",
        created_at: "2026-04-15T09:00:00.000Z",
        dispatched_at: null
      })}`
      const [old, listed] = yield* Effect.provide(
        Effect.flatMap(QueueStore, (queue) => Effect.all([queue.get("old"), queue.list("queued", "default")])),
        Store.layer
      )
      assert.strictEqual(Option.getOrThrow(old).project, "default")
      assert.deepStrictEqual(ids(listed), ["old"])
    }).pipe(Effect.provide(database.layer)))
})
