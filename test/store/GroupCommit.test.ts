import { assert, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Ref, TestClock } from "effect"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { PersistenceError } from "../../src/domain/Errors.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import { EventStore } from "../../src/store/EventStore.js"
import * as GroupCommit from "../../src/store/GroupCommit.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import * as Storage from "../../src/store/Storage.js"
import { Transaction } from "../../src/store/Transaction.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { echo, goal, ofKind, script } from "../runtime/fixtures.js"
import { eachDatabase, type TestDatabase } from "../support/Databases.js"

/** Mission `i` of a varied set: some call a tool, some meet every criterion, others run out of iterations. */
const missionOf = (i: number) => ({
  options: { runId: `m-${i}`, goal: goal(), policy: { max_iterations: 2 + (i % 3) } },
  mock: script([
    { tool_calls: i % 3 === 0 ? [{ name: "echo", arguments: { text: `hi ${i}` } }] : [], criteria_met: [false, false] },
    { criteria_met: [true, i % 2 === 0] },
    { criteria_met: [false, false] }
  ])
})

const missions = Array.from({ length: 24 }, (_, i) => missionOf(i))

/** Runs a mission on its own mock, collecting what its listener is shown. */
const runOne = ({ mock, options }: ReturnType<typeof missionOf>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const result = yield* Mission.run({ ...options, onEvent: (event) => Ref.update(seen, (es) => [...es, event]) }).pipe(
      Effect.provide(MockLlm.layer(mock))
    )
    return { result, seen: yield* Ref.get(seen) }
  })

/** Everything stored of a run: its steps, its event log and its checkpoint, as the database holds them. */
const rowsOf = (runId: string) =>
  Effect.gen(function*() {
    const steps = yield* Effect.flatMap(StepStore, (store) => store.recent(runId, -1))
    const events = yield* Effect.flatMap(EventStore, (store) => store.after(runId, 0))
    const loaded = yield* Effect.flatMap(RunStore, (store) => store.load(runId))
    return { steps, events: events.map((e) => e.event), checkpoint: loaded._tag === "Found" ? loaded.raw : loaded._tag }
  })

/** Each mission alone, one after another, each commit in a transaction of its own: what a batch must equal. */
const aloneOn = (database: TestDatabase) => Effect.gen(function*() {
  const rows: Array<Effect.Effect.Success<ReturnType<typeof rowsOf>>> = []
  for (const mission of missions) {
    yield* runOne(mission)
    rows.push(yield* rowsOf(mission.options.runId))
  }
  return rows
}).pipe(Effect.provide(Layer.mergeAll(Storage.layerWith({ maxBatch: 1 }).pipe(Layer.provideMerge(database.layer)), Toolkit.layer([echo]))))

/** A Transaction that counts how often it is used, for group commit only; claims keep the real one. */
const countingBatches = (count: Ref.Ref<number>) =>
  GroupCommit.layer().pipe(
    Layer.provide(Layer.effect(Transaction, Effect.map(Transaction, (real) => (effect) => Effect.zipRight(Ref.update(count, (n) => n + 1), real(effect)))))
  )

const diskError = new PersistenceError({ message: "disk I/O error", busy: false })

/** Steps of `runId` at `iteration` fail to write, recording how many steps each failed write held. */
const failingFor = (runId: string, iteration: number, failedSizes: Ref.Ref<ReadonlyArray<number>>) =>
  GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(
    StepStore,
    Effect.map(StepStore, (real) =>
      StepStore.of({
        ...real,
        append: (steps) =>
          steps.some((s) => s.runId === runId && s.step.iteration === iteration)
            ? Effect.zipRight(Ref.update(failedSizes, (sizes) => [...sizes, steps.length]), Effect.fail(diskError))
            : real.append(steps)
      }))
  )))

/** Runs `commit` for each item at once, as that many sessions sharing the store would. */
const together = <A, B, E, R>(items: ReadonlyArray<A>, commit: (item: A) => Effect.Effect<B, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const commits = yield* GroupCommit.GroupCommit
    for (const _ of items) yield* commits.join
    return yield* Effect.forEach(items, commit, { concurrency: "unbounded" })
  }))

const headroom = { seconds: null, tool_calls: null, tokens: null, dollars: null, iterations: null }
const halt = (runId: string, seq: number): AutopilotEvent => ({ kind: "halt_requested", run_id: runId, seq, at: "2030-01-01T00:00:00.000Z", remaining: headroom, reason: "test" })

eachDatabase("GroupCommit", (database) => {
  const environment = Layer.mergeAll(Storage.layer.pipe(Layer.provideMerge(database.layer)), Toolkit.layer([echo]))
  const alone = aloneOn(database)

  it.effect("many missions committing at once write exactly the rows and gap-free logs each writes alone, in shared transactions", () =>
    Effect.gen(function*() {
      const expected = yield* alone
      const batches = yield* Ref.make(0)
      const runs = yield* Effect.forEach(missions, runOne, { concurrency: "unbounded" }).pipe(Effect.provide(countingBatches(batches)))
      for (const [i, mission] of missions.entries()) {
        const rows = yield* rowsOf(mission.options.runId)
        assert.deepStrictEqual(rows, expected[i])
        assert.deepStrictEqual(rows.events.map((e) => e.seq), rows.events.map((_, k) => k))
        assert.deepStrictEqual(runs[i]!.seen, rows.events)
      }
      // A commit per heartbeat, tool call, iteration and end, against far fewer transactions.
      const commits = runs.reduce((n, { result, seen }) => n + 2 + result.iterations + ofKind(seen, "tool_call").length, 0)
      assert.isBelow(yield* Ref.get(batches), commits / 4)
    }).pipe(Effect.provide(environment)))

  it.effect("a member whose write fails fails alone: its listener never sees the events of that commit, the others commit in full", () =>
    Effect.gen(function*() {
      const expected = yield* alone
      const failedSizes = yield* Ref.make<ReadonlyArray<number>>([])
      const runs = yield* Effect.forEach(missions, runOne, { concurrency: "unbounded" }).pipe(Effect.provide(failingFor("m-4", 2, failedSizes)))
      // The failing commit was first written in a batch with others, then alone.
      const sizes = yield* Ref.get(failedSizes)
      assert.isAbove(Math.max(...sizes), 1)
      assert.include(sizes, 1)

      const bad = runs[4]!
      assert.strictEqual(bad.result.status, "failed")
      assert.include(bad.result.halt_reason, "disk I/O error")
      assert.strictEqual(bad.result.iterations, 1)
      assert.deepStrictEqual(ofKind(bad.seen, "iteration").map((e) => e.iteration), [1])
      const stored = yield* rowsOf("m-4")
      assert.deepStrictEqual(bad.seen, stored.events)
      assert.deepStrictEqual(stored.events.map((e) => e.seq), stored.events.map((_, k) => k))
      assert.deepStrictEqual(stored.steps.map((s) => s.iteration), [1])
      const checkpoint = yield* Effect.flatMap(RunStore, (store) => store.load("m-4"))
      assert(checkpoint._tag === "Found")
      assert.strictEqual(checkpoint.checkpoint.usage.iterations, 1)

      for (const [i, mission] of missions.entries()) {
        if (i === 4) continue
        assert.deepStrictEqual(yield* rowsOf(mission.options.runId), expected[i])
      }
    }).pipe(Effect.provide(environment)))

  it.effect("a failed batch writes nothing of any member, and each member that fails alone too is told so", () =>
    Effect.gen(function*() {
      const { step, checkpoint } = yield* Effect.gen(function*() {
        yield* runOne(missionOf(1))
        const rows = yield* rowsOf("m-1")
        const loaded = yield* Effect.flatMap(RunStore, (store) => store.load("m-1"))
        assert(loaded._tag === "Found")
        return { step: rows.steps[0]!, checkpoint: loaded.checkpoint }
      })
      // The checkpoints are written last, after the steps and events, and every write of them fails.
      const failedSizes = yield* Ref.make<ReadonlyArray<number>>([])
      const failingCheckpoints = GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(
        RunStore,
        Effect.map(RunStore, (real) =>
          RunStore.of({
            ...real,
            saveAll: (checkpoints) => Effect.zipRight(Ref.update(failedSizes, (sizes) => [...sizes, checkpoints.length]), Effect.fail(diskError))
          }))
      )))
      const errors = yield* Effect.gen(function*() {
        const commits = yield* GroupCommit.GroupCommit
        return yield* together(["a", "b", "c"], (runId) =>
          Effect.flip(commits.commit({
            steps: [{ runId, step }],
            events: [halt(runId, 0)],
            checkpoint: new Checkpoint({ ...checkpoint, run_id: runId })
          })))
      }).pipe(Effect.provide(failingCheckpoints))
      assert.deepStrictEqual(errors.map((e) => e.message), ["disk I/O error", "disk I/O error", "disk I/O error"])
      assert.deepStrictEqual(yield* Ref.get(failedSizes), [3, 1, 1, 1])
      for (const runId of ["a", "b", "c"]) {
        const rows = yield* rowsOf(runId)
        assert.deepStrictEqual(rows, { steps: [], events: [], checkpoint: "Missing" })
      }
    }).pipe(Effect.provide(environment)))

  // SQLite's driver is synchronous, so there a commit need not yield at all; Postgres answers over a socket.
  if (database.name === "sqlite") {
    it.effect("a lone session's commit is written at once, without even yielding to the event loop, and is durable when it returns", () =>
      Effect.gen(function*() {
        const commits = yield* GroupCommit.GroupCommit
        yield* Effect.scoped(Effect.gen(function*() {
          yield* commits.join
          // runSync throws on any asynchronous step: a timer, a hand-off to another fiber, a turn of the loop.
          yield* Effect.sync(() => Effect.runSync(commits.commit({ events: [halt("solo", 0)] })))
        }))
        assert.deepStrictEqual((yield* rowsOf("solo")).events, [halt("solo", 0)])
      }).pipe(Effect.provide(environment)))
  } else {
    it.effect("a lone session's commit is written in a transaction of its own, and is durable when it returns", () =>
      Effect.gen(function*() {
        const batches = yield* Ref.make(0)
        yield* Effect.gen(function*() {
          const commits = yield* GroupCommit.GroupCommit
          yield* Effect.scoped(Effect.zipRight(commits.join, commits.commit({ events: [halt("solo", 0)] })))
        }).pipe(Effect.provide(countingBatches(batches)))
        assert.strictEqual(yield* Ref.get(batches), 1)
        assert.deepStrictEqual((yield* rowsOf("solo")).events, [halt("solo", 0)])
      }).pipe(Effect.provide(environment)))
  }

  it.effect("with other sessions about, commits made in the same turn share one transaction", () =>
    Effect.gen(function*() {
      const batches = yield* Ref.make(0)
      yield* Effect.gen(function*() {
        const commits = yield* GroupCommit.GroupCommit
        yield* together(Array.from({ length: 10 }, (_, i) => `r${i}`), (runId) => commits.commit({ events: [halt(runId, 0)] }))
      }).pipe(Effect.provide(countingBatches(batches)))
      assert.strictEqual(yield* Ref.get(batches), 1)
      for (let i = 0; i < 10; i++) assert.strictEqual((yield* rowsOf(`r${i}`)).events.length, 1)
    }).pipe(Effect.provide(environment)))

  it.effect("a run created twice in one batch, or once before, is created once: the later creations are refused and write nothing", () =>
    Effect.gen(function*() {
      yield* runOne(missionOf(1))
      const loaded = yield* Effect.flatMap(RunStore, (store) => store.load("m-1"))
      assert(loaded._tag === "Found")
      const checkpointOf = (runId: string, output: string) => new Checkpoint({ ...loaded.checkpoint, run_id: runId, output })
      const batches = yield* Ref.make(0)
      const created = yield* together(
        [["twice", "first"], ["twice", "second"], ["m-1", "again"], ["fresh", "only"]] as const,
        ([runId, output]) => Effect.flatMap(GroupCommit.GroupCommit, (commits) =>
          commits.create({ events: [halt(runId, 100)], checkpoint: checkpointOf(runId, output) }))
      ).pipe(Effect.provide(countingBatches(batches)))
      assert.strictEqual(yield* Ref.get(batches), 1)
      assert.deepStrictEqual(created, [true, false, false, true])
      const outputOf = (runId: string) =>
        Effect.map(Effect.flatMap(RunStore, (store) => store.load(runId)), (l) => (l._tag === "Found" ? l.checkpoint.output : l._tag))
      assert.strictEqual(yield* outputOf("twice"), "first")
      assert.strictEqual(yield* outputOf("fresh"), "only")
      assert.strictEqual(yield* outputOf("m-1"), loaded.checkpoint.output)
      assert.strictEqual((yield* rowsOf("twice")).events.length, 1)
      assert.isFalse((yield* rowsOf("m-1")).events.some((e) => e.seq === 100))
    }).pipe(Effect.provide(environment)))

  it.effect("a commit whose rows cannot even be encoded dies alone; the others, and later commits, are written", () =>
    Effect.gen(function*() {
      yield* runOne(missionOf(1))
      const loaded = yield* Effect.flatMap(RunStore, (store) => store.load("m-1"))
      assert(loaded._tag === "Found")
      const commits = yield* GroupCommit.GroupCommit
      const good = (runId: string) => ({ events: [halt(runId, 0)], checkpoint: new Checkpoint({ ...loaded.checkpoint, run_id: runId }) })
      // Built without validation, as a bug might: its status is no status, so encoding it throws.
      const bad = { events: [halt("bad", 0)], checkpoint: new Checkpoint({ ...loaded.checkpoint, run_id: "bad", status: "bogus" as never }, true) }
      const exits = yield* together([good("g1"), bad, good("g2")], (writes) => Effect.exit(commits.commit(writes)))
      assert.isTrue(Exit.isSuccess(exits[0]!) && Exit.isSuccess(exits[2]!))
      assert.isTrue(Exit.isFailure(exits[1]!) && Cause.isDie(exits[1].cause))
      yield* commits.commit(good("g3"))
      for (const runId of ["g1", "g2", "g3"]) assert.strictEqual((yield* rowsOf(runId)).events.length, 1)
      assert.deepStrictEqual(yield* rowsOf("bad"), { steps: [], events: [], checkpoint: "Missing" })
    }).pipe(Effect.provide(environment)))

  it.effect("a batch that finds the database busy is waited out and written once", () =>
    Effect.gen(function*() {
      const left = yield* Ref.make(3)
      const busyThrice = GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(
        EventStore,
        Effect.map(EventStore, (real) =>
          EventStore.of({
            ...real,
            append: (events) =>
              Effect.flatMap(Ref.getAndUpdate(left, (n) => n - 1), (n) =>
                n > 0 ? Effect.fail(new PersistenceError({ message: "database is locked", busy: true })) : real.append(events))
          }))
      )))
      const fiber = yield* Effect.gen(function*() {
        const commits = yield* GroupCommit.GroupCommit
        yield* together(["x", "y"], (runId) => commits.commit({ events: [halt(runId, 0)] }))
      }).pipe(Effect.provide(busyThrice), Effect.fork)
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* rowsOf("x")).events.length, 1)
      assert.strictEqual((yield* rowsOf("y")).events.length, 1)
    }).pipe(Effect.provide(environment)))
})
