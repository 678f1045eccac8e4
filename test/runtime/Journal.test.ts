import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Ref, Stream } from "effect"
import { PersistenceError } from "../../src/domain/Errors.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import * as Journal from "../../src/runtime/Journal.js"
import { EventStore } from "../../src/store/EventStore.js"
import { GroupCommit } from "../../src/store/GroupCommit.js"
import { environment } from "./fixtures.js"

const headroom = { seconds: null, tool_calls: null, tokens: null, dollars: null, iterations: null }

/** GroupCommit as the environment's, counting its commits, failing those that hold a `halt_requested` "fail". */
const counting = (commits: Ref.Ref<number>) =>
  Layer.effect(
    GroupCommit,
    Effect.map(GroupCommit, (real) =>
      GroupCommit.of({
        ...real,
        commit: (writes) =>
          Effect.zipRight(
            Ref.update(commits, (n) => n + 1),
            writes.events?.some((e) => e.kind === "halt_requested" && e.reason === "fail")
              ? Effect.fail(new PersistenceError({ message: "disk I/O error", busy: false }))
              : real.commit(writes)
          )
      }))
  )

const journalOf = (published: Ref.Ref<ReadonlyArray<AutopilotEvent>>) =>
  Journal.make({
    runId: "r",
    firstSeq: 0,
    remaining: Effect.succeed(headroom),
    onEvent: (event) => Ref.update(published, (es) => [...es, event])
  })

/** With other sessions committing through the store, as a fan-out's children are, a commit is not written at once. */
const withOthers = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const commits = yield* GroupCommit
    yield* commits.join
    yield* commits.join
    return yield* effect
  }))

describe("Journal", () => {
  it.effect("events emitted now by many callers at once are written in few commits, each caller answered once its event is durable", () =>
    Effect.gen(function*() {
      const commits = yield* Ref.make(0)
      const published = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
      const journal = yield* journalOf(published).pipe(Effect.provide(counting(commits)))
      yield* withOthers(Effect.forEach(Array.from({ length: 50 }, (_, i) => `child ${i}`), (reason) => journal.emitNow({ kind: "halt_requested", reason }), {
        concurrency: "unbounded"
      }))
      assert.isAtMost(yield* Ref.get(commits), 2)
      const stored = (yield* Effect.flatMap(EventStore, (store) => store.after("r", 0))).map((s) => s.event)
      assert.deepStrictEqual(stored.map((e) => e.seq), Array.from({ length: 50 }, (_, i) => i))
      assert.deepStrictEqual(yield* Ref.get(published), stored)
      assert.sameMembers(stored.map((e) => (e.kind === "halt_requested" ? e.reason : "")), Array.from({ length: 50 }, (_, i) => `child ${i}`))
    }).pipe(Effect.provide(environment)))

  it.effect("when a commit of events emitted together fails, each of its callers fails and none of its events is published; their seqs are used again", () =>
    Effect.gen(function*() {
      const commits = yield* Ref.make(0)
      const published = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
      const journal = yield* journalOf(published).pipe(Effect.provide(counting(commits)))
      // The first is written alone (its commit starts before the others are emitted); the other two together.
      const outcomes = yield* withOthers(Effect.forEach(["first", "fail", "with it"], (reason) => Effect.either(journal.emitNow({ kind: "halt_requested", reason })), {
        concurrency: "unbounded"
      }))
      assert.strictEqual(yield* Ref.get(commits), 2)
      assert.deepStrictEqual(outcomes.map((o) => o._tag), ["Right", "Left", "Left"])
      yield* journal.emitNow({ kind: "halt_requested", reason: "after" })
      const stored = (yield* Effect.flatMap(EventStore, (store) => store.after("r", 0))).map((s) => s.event)
      assert.deepStrictEqual(stored.map((e) => [e.seq, e.kind === "halt_requested" ? e.reason : ""]), [[0, "first"], [1, "after"]])
      assert.deepStrictEqual(yield* Ref.get(published), stored)
    }).pipe(Effect.provide(environment)))

  it.effect("a replay reads the log a page at a time: a log of more than two pages comes back whole, in order, in three reads", () =>
    Effect.gen(function*() {
      const reads = yield* Ref.make<ReadonlyArray<number | undefined>>([])
      const published = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
      const journal = yield* journalOf(published)
      const count = 2 * Journal.REPLAY_PAGE + 1
      yield* journal.emitAll(Array.from({ length: count }, (_, i) => ({ kind: "halt_requested" as const, reason: `event ${i}` })))
      yield* journal.commit((events) => Effect.flatMap(EventStore, (store) => store.append(events)))
      const replayed = yield* Stream.runCollect(Journal.replay("r", { follow: false })).pipe(
        Effect.provide(Layer.effect(
          EventStore,
          Effect.map(EventStore, (store) =>
            EventStore.of({ ...store, page: (runId, afterId, limit) => Effect.zipRight(Ref.update(reads, (rs) => [...rs, limit]), store.page(runId, afterId, limit)) }))
        ))
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(replayed).map((e) => e.seq), Array.from({ length: count }, (_, i) => i))
      assert.deepStrictEqual(yield* Ref.get(reads), [Journal.REPLAY_PAGE, Journal.REPLAY_PAGE, Journal.REPLAY_PAGE], "no read of the whole log at once")
    }).pipe(Effect.provide(environment)))

  it.effect("a replay after a seq reads the log from the row after it: no page before it, every later event once", () =>
    Effect.gen(function*() {
      const from = yield* Ref.make<ReadonlyArray<number>>([])
      const published = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
      const journal = yield* journalOf(published)
      const count = 2 * Journal.REPLAY_PAGE + 1
      yield* journal.emitAll(Array.from({ length: count }, (_, i) => ({ kind: "halt_requested" as const, reason: `event ${i}` })))
      yield* journal.commit((events) => Effect.flatMap(EventStore, (store) => store.append(events)))
      const after = Journal.REPLAY_PAGE + 200
      const store = yield* EventStore
      const replayed = yield* Stream.runCollect(Journal.replay("r", { follow: false, after })).pipe(
        Effect.provideService(
          EventStore,
          EventStore.of({ ...store, page: (runId, afterId, limit) => Effect.zipRight(Ref.update(from, (fs) => [...fs, afterId]), store.page(runId, afterId, limit)) })
        )
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(replayed).map((e) => e.seq), Array.from({ length: count - after - 1 }, (_, i) => after + 1 + i))
      const firstId = yield* store.idAtSeq("r", after)
      const reads = yield* Ref.get(from)
      assert.strictEqual(reads[0], firstId, "the first page starts at the seq's row")
      assert.strictEqual(reads.length, 1, "one page holds the rest")
    }).pipe(Effect.provide(environment)))

  it.effect("a row this version cannot read (a newer version's event kind) is skipped, and the replay goes on past its page", () =>
    Effect.gen(function*() {
      const published = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
      const journal = yield* journalOf(published)
      const count = 2 * Journal.REPLAY_PAGE + 1
      yield* journal.emitAll(Array.from({ length: count }, (_, i) => ({ kind: "halt_requested" as const, reason: `event ${i}` })))
      yield* journal.commit((events) => Effect.flatMap(EventStore, (store) => store.append(events)))
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE events SET body = ${JSON.stringify({ kind: "from_a_newer_version", seq: 10 })} WHERE run_id = 'r' AND seq = 10`
      const replayed = yield* Stream.runCollect(Journal.replay("r", { follow: false }))
      assert.deepStrictEqual(Chunk.toReadonlyArray(replayed).map((e) => e.seq), Array.from({ length: count }, (_, i) => i).filter((i) => i !== 10))
    }).pipe(Effect.provide(environment)))
})
