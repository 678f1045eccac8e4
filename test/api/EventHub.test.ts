import { assert, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Chunk, Context, Deferred, Effect, Fiber, Layer, Option, Queue, Ref, Stream, Take } from "effect"
import * as os from "node:os"
import * as EventHub from "../../src/api/EventHub.js"
import * as EventStream from "../../src/api/EventStream.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Runs from "../../src/runtime/Runs.js"
import { EventStore } from "../../src/store/EventStore.js"
import * as Storage from "../../src/store/Storage.js"
import { sqlite } from "../support/Databases.js"
import { environmentWith, goal, script } from "../runtime/fixtures.js"

/** The hub over the real Runs service, counting how often the database is followed. */
const hubCounting = (follows: Ref.Ref<number>) =>
  EventHub.layer.pipe(
    Layer.provide(Layer.effect(
      Runs.Runs,
      Effect.map(Runs.Runs, (runs) =>
        Runs.Runs.of({
          ...runs,
          events: (runId, options) =>
            options.follow ? Stream.unwrap(Effect.as(Ref.update(follows, (n) => n + 1), runs.events(runId, options))) : runs.events(runId, options)
        }))
    )),
    Layer.provide(Runs.layer({ workspaceRoot: os.tmpdir() }))
  )

it.scopedLive("many clients of one running run are served by one follower, each with every event once, in order, whenever it joins", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const follows = yield* Ref.make(0)
    const built = yield* Layer.build(hubCounting(follows).pipe(Layer.provide(Storage.layer), Layer.provide(db), Layer.provide(NodeContext.layer)))
    const hub = Context.get(built, EventHub.EventHub)
    const begun = yield* Deferred.make<void>()
    const iterations = yield* Deferred.make<void>()
    let seen = 0
    const running = yield* Mission.run({
      runId: "shared",
      goal: goal(1),
      policy: { max_iterations: 6 },
      onEvent: (event) =>
        Effect.zipRight(Deferred.succeed(begun, undefined), event.kind === "iteration" && ++seen === 2 ? Deferred.succeed(iterations, undefined) : Effect.void)
    }).pipe(Effect.provide(MockLlm.layer(script([{}], { latency_ms: 60 }))), Effect.provide(environmentWith([], db)), Effect.fork)
    yield* Deferred.await(begun)
    const early = yield* Effect.forEach([1, 2, 3], () => Effect.fork(Stream.runCollect(hub.follow("shared"))), { concurrency: "unbounded" })
    yield* Deferred.await(iterations)
    const late = yield* Effect.forEach([1, 2], () => Effect.fork(Stream.runCollect(hub.follow("shared"))), { concurrency: "unbounded" })
    yield* Fiber.join(running)
    const after = yield* Stream.runCollect(hub.follow("shared"))
    const lists = [...(yield* Effect.forEach([...early, ...late], Fiber.join)), after].map((c) => Chunk.toReadonlyArray(c).map((e) => e.seq))
    for (const seqs of lists) {
      assert.deepStrictEqual(seqs, seqs.map((_, i) => i))
      assert.deepStrictEqual(seqs, lists[0])
    }
    assert.strictEqual(Chunk.toReadonlyArray(after).at(-1)?.kind, "result")
    assert.strictEqual(yield* Ref.get(follows), 1, "one follower for every client")
  }), 30_000)

it.scopedLive("a follower that failed is not handed to the next client: a run that exists now is followed", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const follows = yield* Ref.make(0)
    const built = yield* Layer.build(hubCounting(follows).pipe(Layer.provide(Storage.layer), Layer.provide(db), Layer.provide(NodeContext.layer)))
    const hub = Context.get(built, EventHub.EventHub)
    const early = yield* Effect.flip(Stream.runCollect(hub.follow("later")))
    assert.strictEqual(early._tag, "RunNotFound")
    yield* Mission.run({ runId: "later", goal: goal(1), policy: { max_iterations: 2 } }).pipe(
      Effect.provide(MockLlm.layer(script([{}]))),
      Effect.provide(environmentWith([], db))
    )
    const seqs = Chunk.toReadonlyArray(yield* Stream.runCollect(hub.follow("later"))).map((e) => e.seq)
    assert.deepStrictEqual(seqs, seqs.map((_, i) => i))
    assert.isAbove(seqs.length, 2)
  }), 30_000)

/** An event of run "s" with its seq, as the log holds it. */
const numbered = (seq: number): AutopilotEvent => ({
  kind: "halt_requested",
  reason: `event ${seq}`,
  run_id: "s",
  seq,
  at: "2026-12-02T00:00:00.000Z",
  remaining: { seconds: null, tool_calls: null, tokens: null, dollars: null, iterations: null }
}) as AutopilotEvent

/**
 * The hub over a scripted run "s": its log is `log` (read a page at a time, as from the store), or `past`'s
 * pages (the first at `afterId` 0, none after it); its live events are what the test offers to `live`
 * (Take.end ends the run). Nothing waits on a clock.
 */
const scripted = (options: {
  readonly capacity: number
  readonly log: Ref.Ref<ReadonlyArray<AutopilotEvent>>
  readonly live: Queue.Queue<Take.Take<AutopilotEvent>>
  readonly past?: (afterId: number, limit: number) => Effect.Effect<ReadonlyArray<AutopilotEvent>>
  /** Counts the log's reads. */
  readonly reads?: Ref.Ref<number>
  /** The id each page of the log was read after. */
  readonly pagesAfter?: Ref.Ref<ReadonlyArray<number>>
}) => {
  const runs = Layer.effect(
    Runs.Runs,
    Effect.map(Runs.Runs, (real) =>
      Runs.Runs.of({ ...real, events: (runId, o) => (o.follow ? Stream.flattenTake(Stream.fromQueue(options.live)) : real.events(runId, o)) }))
  )
  // A stored event's id is its seq + 1 here: one run, written in order.
  const pages = (afterId: number, limit: number) =>
    Effect.zipRight(
      options.reads === undefined ? Effect.void : Ref.update(options.reads, (n) => n + 1),
      options.past?.(afterId, limit) ?? Effect.map(Ref.get(options.log), (es) => es.filter((e) => e.seq + 1 > afterId).slice(0, limit))
    )
  const store = Layer.effect(
    EventStore,
    Effect.map(EventStore, (real) =>
      EventStore.of({
        ...real,
        after: (_runId, afterId) => Effect.map(pages(afterId, Number.MAX_SAFE_INTEGER), (es) => es.map((event) => ({ id: event.seq + 1, event }))),
        idAtSeq: (_runId, seq) => Effect.map(Ref.get(options.log), (es) => Math.max(0, Math.min(seq + 1, es.length))),
        page: (_runId, afterId, limit) =>
          Effect.map(Effect.zipRight(options.pagesAfter === undefined ? Effect.void : Ref.update(options.pagesAfter, (as) => [...as, afterId]), pages(afterId, limit)), (es) => ({
            events: es.map((event) => ({ id: event.seq + 1, event })),
            lastId: es.length === 0 ? undefined : es[es.length - 1]!.seq + 1,
            end: es.length < limit
          }))
      }))
  )
  return Layer.effect(EventHub.EventHub, EventHub.make({ capacity: options.capacity })).pipe(
    Layer.provide(Layer.mergeAll(runs, store)),
    Layer.provideMerge(Runs.layer({ workspaceRoot: os.tmpdir() })),
    Layer.provideMerge(Storage.layerSqlite(":memory:")),
    Layer.provide(NodeContext.layer)
  )
}

/** Appends the next event to the log and offers it live, as a run's session writes it. */
const write = (log: Ref.Ref<ReadonlyArray<AutopilotEvent>>, live: Queue.Queue<Take.Take<AutopilotEvent>>) =>
  Effect.flatMap(Ref.modify(log, (es) => [numbered(es.length), [...es, numbered(es.length)]]), (event) => Queue.offer(live, Take.of(event)))

/** The seqs of the next chunk that has any (a chunk of live events already read from the log is empty). */
const pullSeqs = (pull: Effect.Effect<Chunk.Chunk<AutopilotEvent>, Option.Option<unknown>>) =>
  Effect.map(Effect.repeat(pull, { until: Chunk.isNonEmpty }), (chunk) => Chunk.toReadonlyArray(chunk).map((e) => e.seq))

it.scoped("a client that falls more than the capacity behind ends with Lagged; the others lose nothing; reconnecting after its last event reads the rest once, in order", () =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const live = yield* Queue.unbounded<Take.Take<AutopilotEvent>>()
    yield* write(log, live)
    const hub = Context.get(yield* Layer.build(scripted({ capacity: 2, log, live })), EventHub.EventHub)
    const slow = yield* Stream.toPull(hub.follow("s"))
    const keeping = yield* Stream.toPull(hub.follow("s"))
    assert.deepStrictEqual(yield* pullSeqs(slow), [0])
    assert.deepStrictEqual(yield* pullSeqs(keeping), [0])
    // The slow client takes nothing more while six events go by; the other takes each as it comes.
    for (let seq = 1; seq <= 6; seq++) {
      yield* write(log, live)
      assert.deepStrictEqual(yield* pullSeqs(keeping), [seq])
    }
    yield* Queue.offer(live, Take.end)
    assert.deepStrictEqual(yield* Effect.flip(keeping), Option.none(), "the keeping client's stream ends after the run's end")
    const lagged = yield* Effect.flip(slow)
    assert.isTrue(Option.isSome(lagged) && lagged.value instanceof EventHub.Lagged, "the slow client is told it lagged, given nothing past its gap")
    // As an EventSource reconnects: after the last event it got (Last-Event-ID 0), the rest from the log, once.
    const rest = yield* Stream.runCollect(EventStream.frames(hub.follow("s"), 0).pipe(
      Effect.provideService(EventStream.ServerShutdown, yield* Deferred.make<void>()),
      Stream.unwrap
    ))
    const ids = Chunk.toReadonlyArray(rest).map((frame) => /^id: (\d+)/.exec(frame)?.[1])
    assert.deepStrictEqual(ids, ["1", "2", "3", "4", "5", "6"])
  }))

it.scoped("the lagged frame has no id and names Lagged, so an EventSource reconnects after the last event it got", () =>
  Effect.gen(function*() {
    const frames = yield* EventStream.frames(
      Stream.concat(Stream.make(numbered(0)), Stream.fail(new EventHub.Lagged({ run_id: "s", capacity: 2 }))),
      undefined
    ).pipe(Effect.provideService(EventStream.ServerShutdown, yield* Deferred.make<void>()))
    const out = Chunk.toReadonlyArray(yield* Stream.runCollect(frames))
    assert.strictEqual(out.length, 2)
    assert.match(out[0]!, /^id: 0\nevent: halt_requested\n/)
    assert.match(out[1]!, /^event: lagged\ndata: \{"error":\{"code":"Lagged","message":"this client fell more than 2 events behind run s/)
  }))

it.scoped("the log is streamed to a joining client: its first event arrives before the log has been read to its end", () =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const live = yield* Queue.unbounded<Take.Take<AutopilotEvent>>()
    // A log whose first page is there and whose next never comes: a client that waited for all of it would get nothing.
    const past = (afterId: number, limit: number) =>
      afterId === 0 ? Effect.succeed(Array.from({ length: limit }, (_, seq) => numbered(seq))) : Effect.never
    const hub = Context.get(yield* Layer.build(scripted({ capacity: 8, log, live, past })), EventHub.EventHub)
    const first = yield* Stream.runCollect(Stream.take(hub.follow("s"), 2))
    assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((e) => e.seq), [0, 1])
  }))

/** A hub of capacity 4 whose first client has taken each of the run's first `count` events as it was written. */
const followedThrough = (count: number) =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const live = yield* Queue.unbounded<Take.Take<AutopilotEvent>>()
    const reads = yield* Ref.make(0)
    const hub = Context.get(yield* Layer.build(scripted({ capacity: 4, log, live, reads })), EventHub.EventHub)
    const first = yield* Stream.toPull(hub.follow("s"))
    for (let seq = 0; seq < count; seq++) {
      yield* write(log, live)
      assert.deepStrictEqual(yield* pullSeqs(first), [seq])
    }
    return { first, hub, live, log, reads }
  })

it.scoped("a client joining while the follower still holds the run from its first event takes it from there, not from the log; past the capacity it reads the log", () =>
  Effect.gen(function*() {
    const { first, hub, live, log, reads } = yield* followedThrough(4)
    const readsBefore = yield* Ref.get(reads)
    const joining = yield* Stream.toPull(hub.follow("s"))
    assert.deepStrictEqual(yield* pullSeqs(joining), [0, 1, 2, 3])
    assert.strictEqual(yield* Ref.get(reads), readsBefore, "no read of the log")
    yield* write(log, live)
    assert.deepStrictEqual(yield* pullSeqs(first), [4])
    assert.deepStrictEqual(yield* pullSeqs(joining), [4])
    // The follower now holds 1..4: a client joining reads the log, and gets every event once.
    yield* Queue.offer(live, Take.end)
    const late = Chunk.toReadonlyArray(yield* Stream.runCollect(hub.follow("s"))).map((e) => e.seq)
    assert.deepStrictEqual(late, [0, 1, 2, 3, 4])
    assert.isAbove(yield* Ref.get(reads), readsBefore)
  }))

it.scoped("a client reconnecting after seq N of a long log reads it from the row after N, no page before, and gets N+1.. once", () =>
  Effect.gen(function*() {
    const length = 5_000
    const log = yield* Ref.make<ReadonlyArray<AutopilotEvent>>(Array.from({ length }, (_, seq) => numbered(seq)))
    const live = yield* Queue.unbounded<Take.Take<AutopilotEvent>>()
    const pagesAfter = yield* Ref.make<ReadonlyArray<number>>([])
    const hub = Context.get(yield* Layer.build(scripted({ capacity: 4, log, live, pagesAfter })), EventHub.EventHub)
    const n = 4_800
    const client = yield* Stream.toPull(hub.follow("s", n))
    const got: Array<number> = [...yield* pullSeqs(client)]
    // A stored event's id is its seq + 1 here: the first page is read after N's row, and is the only one.
    assert.deepStrictEqual(yield* Ref.get(pagesAfter), [n + 1], "no page before N")
    // Then live, each once: the run goes on, then ends.
    yield* write(log, live)
    yield* write(log, live)
    got.push(...yield* pullSeqs(client))
    got.push(...yield* pullSeqs(client))
    yield* Queue.offer(live, Take.end)
    assert.deepStrictEqual(yield* Effect.flip(client), Option.none())
    assert.deepStrictEqual(got, Array.from({ length: length + 2 - n - 1 }, (_, i) => n + 1 + i))
    assert.deepStrictEqual(yield* Ref.get(pagesAfter), [n + 1], "nothing more read from the log")
  }))

it.scoped("a client reconnecting after seq N while the follower still holds N+1.. takes them from there: no read of the log", () =>
  Effect.gen(function*() {
    const { first, hub, live, log, reads } = yield* followedThrough(6)
    // The follower holds 2..5, no longer the run's first event.
    const readsBefore = yield* Ref.get(reads)
    const back = yield* Stream.toPull(hub.follow("s", 2))
    assert.deepStrictEqual(yield* pullSeqs(back), [3, 4, 5])
    assert.strictEqual(yield* Ref.get(reads), readsBefore, "no read of the log")
    yield* write(log, live)
    assert.deepStrictEqual(yield* pullSeqs(first), [6])
    assert.deepStrictEqual(yield* pullSeqs(back), [6])
    // After seq 0, the follower no longer holds seq 1: from the log, each once.
    yield* Queue.offer(live, Take.end)
    const late = Chunk.toReadonlyArray(yield* Stream.runCollect(hub.follow("s", 0))).map((e) => e.seq)
    assert.deepStrictEqual(late, [1, 2, 3, 4, 5, 6])
    assert.isAbove(yield* Ref.get(reads), readsBefore)
  }))
