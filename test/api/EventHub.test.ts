import { assert, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Chunk, Context, Deferred, Effect, Fiber, Layer, Ref, Stream } from "effect"
import * as os from "node:os"
import * as EventHub from "../../src/api/EventHub.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Runs from "../../src/runtime/Runs.js"
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
