import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import * as RunStoreModule from "../../src/store/RunStore.js"
import { RunStore, type RunSummary } from "../../src/store/RunStore.js"
import { calculator } from "../../src/tools/Calculator.js"
import { earlierCheckpoint, environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { sameOption } from "../assertOption.js"
import { eachDatabase } from "../support/Databases.js"

eachDatabase("RunStore", (database) => {
  const environment = environmentWith([calculator], database.layer)

  describe("claiming a run", () => {
    it.effect("lets only one session start from a given row: a stale replace is a conflict and writes nothing", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{ criteria_met: [false, false] }]))
        const store = yield* RunStore
        const loaded = yield* store.load("r")
        assert(loaded._tag === "Found")
        // Every session writes its own owner and time, so a claimed row never equals the row it replaced.
        const mine = new Checkpoint({ ...loaded.checkpoint, updated_at: "2030-01-01T00:00:00.000Z" })
        assert.isTrue(yield* store.replace(mine, loaded.raw))
        const stale = yield* store.replace(new Checkpoint({ ...loaded.checkpoint, output: "second writer" }), loaded.raw)
        assert.isFalse(stale)
        const after = yield* store.load("r")
        assert(after._tag === "Found")
        assert.notStrictEqual(after.checkpoint.output, "second writer")
      }).pipe(Effect.provide(environment)))

    it.effect("a new run's first checkpoint is refused if the id was taken meanwhile", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{ criteria_met: [false, false] }]))
        const store = yield* RunStore
        const loaded = yield* store.load("r")
        assert(loaded._tag === "Found")
        assert.isFalse(yield* store.create(loaded.checkpoint))
      }).pipe(Effect.provide(environment)))
  })

  describe("stop requests", () => {
    it.effect("one read of every run's requests serves every session for 250 ms; a read begun before a session's mark is not trusted by it", () =>
      Effect.gen(function*() {
        const store = yield* RunStore
        yield* store.requestStop("a", "stop a", "now")
        const first = yield* store.stopReads
        sameOption(yield* store.recentStop("a", first), Option.some("stop a"))
        // Read by another process meanwhile, and cleared by a claim: the shared read still says what it read...
        yield* store.requestStop("b", "stop b", "now")
        yield* store.clearStop("a")
        sameOption(yield* store.recentStop("a", first), Option.some("stop a"))
        assert.isTrue(Option.isNone(yield* store.recentStop("b", first)))
        // ...but a session that claimed its run after that read reads again, and so does everyone after 250 ms.
        const claimed = yield* store.stopReads
        assert.isTrue(Option.isNone(yield* store.recentStop("a", claimed)))
        sameOption(yield* store.recentStop("b", first), Option.some("stop b"))
        yield* store.requestStop("c", "stop c", "now")
        assert.isTrue(Option.isNone(yield* store.recentStop("c", first)))
        yield* TestClock.adjust("250 millis")
        sameOption(yield* store.recentStop("c", first), Option.some("stop c"))
      }).pipe(Effect.provide(environment)))
  })

  describe("projects", () => {
    const listed = (runs: ReadonlyArray<RunSummary>) =>
      runs.map((run) => (run._tag === "Found" ? `${run.checkpoint.run_id}@${run.checkpoint.project}` : `${run.run_id}@${run.project} corrupt`))

    it.effect("a run's project is kept beside its checkpoint: one project's runs are listed apart, a corrupt one's too", () =>
      Effect.gen(function*() {
        const once = script([{ criteria_met: [false, false] }])
        yield* runMission({ runId: "a", goal: goal(), policy: { max_iterations: 1 }, project: "p1" }, once)
        yield* TestClock.adjust("1 second")
        yield* runMission({ runId: "b", goal: goal(), policy: { max_iterations: 1 }, project: "p2" }, once)
        yield* TestClock.adjust("1 second")
        yield* runMission({ runId: "c", goal: goal(), policy: { max_iterations: 1 } }, once)
        yield* TestClock.adjust("1 second")
        yield* runMission({ runId: "d", goal: goal(), policy: { max_iterations: 1 }, project: "p1" }, once)
        const store = yield* RunStore
        assert.deepStrictEqual(listed(yield* store.list({ project: "p1" })), ["d@p1", "a@p1"])
        assert.deepStrictEqual(listed(yield* store.list({ project: "p2" })), ["b@p2"])
        assert.deepStrictEqual(listed(yield* store.list({ project: "default" })), ["c@default"])
        assert.deepStrictEqual(listed(yield* store.list({ project: "p3" })), [])
        assert.deepStrictEqual(listed(yield* store.list()), ["d@p1", "c@default", "b@p2", "a@p1"])
        sameOption(yield* store.projectOf("b"), Option.some("p2"))
        sameOption(yield* store.projectOf("nope"), Option.none())
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE checkpoints SET state = 'not json' WHERE run_id = 'a'`
        assert.deepStrictEqual(listed(yield* store.list({ project: "p1" })), ["d@p1", "a@p1 corrupt"])
        sameOption(yield* store.projectOf("a"), Option.some("p1"))
      }).pipe(Effect.provide(environment)))

    it.effect("a database from before projects: its runs are the default project's, in the column and as their checkpoints read", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE checkpoints (run_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL)`
        yield* sql`INSERT INTO checkpoints ${sql.insert({ run_id: "old", state: JSON.stringify(earlierCheckpoint), updated_at: earlierCheckpoint.updated_at })}`
        const [store, before] = yield* Effect.provide(
          Effect.flatMap(RunStore, (store) => Effect.map(store.list({ project: "default" }), (runs) => [store, runs] as const)),
          RunStoreModule.layer
        )
        assert.deepStrictEqual(listed(before), ["old@default"])
        const loaded = yield* store.load("old")
        assert(loaded._tag === "Found")
        assert.strictEqual(loaded.checkpoint.project, "default")
        // Saved again, the checkpoint now says so itself.
        yield* store.save(loaded.checkpoint)
        const rows = yield* sql<{ state: string }>`SELECT state FROM checkpoints WHERE run_id = 'old'`
        assert.strictEqual(JSON.parse(rows[0]!.state).project, "default")
      }).pipe(Effect.provide(database.layer)))
  })
})
