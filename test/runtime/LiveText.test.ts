import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Option, Scope, TestClock } from "effect"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import * as LiveText from "../../src/runtime/LiveText.js"
import * as Database from "../../src/store/Database.js"
import * as DeltaStoreModule from "../../src/store/DeltaStore.js"
import { DeltaStore } from "../../src/store/DeltaStore.js"
import { environment, goal, runMission, script } from "./fixtures.js"

/** The store read until `ok` says it holds what the flush just wrote: the write is real I/O after the clock moved. */
const eventually = <A, E, R>(read: Effect.Effect<A, E, R>, ok: (a: A) => boolean) =>
  Effect.zipRight(Effect.yieldNow(), read).pipe(
    Effect.filterOrFail(ok, () => "not yet"),
    Effect.retry({ times: 500 }),
    Effect.orElse(() => read)
  )

const texts = (rows: ReadonlyArray<{ readonly iteration: number; readonly text: string }>) => rows.map((r) => `${r.iteration}:${r.text}`)

/** Only the fields the writer looks at: the rest of an event does not matter to it. */
const event = (kind: string, fields: Record<string, unknown> = {}) => ({ kind, ...fields }) as unknown as AutopilotEvent

const act = (iteration: number, text: string) => ({ iteration, purpose: "act", text })

describe("LiveText", () => {
  const store = DeltaStoreModule.layer.pipe(Layer.provideMerge(Database.layerSqlite(":memory:")))

  it.scoped("writes a session's text in one batch per interval, and removes it once committed, retried or the session is over", () =>
    Effect.gen(function*() {
      const live = yield* LiveText.make()
      const deltas = yield* DeltaStore
      const read = deltas.after("r", 0)
      yield* deltas.append([
        { run_id: "r", iteration: 1, purpose: "act", text: "a crashed session's", at: "1970-01-01T00:00:00.000Z" },
        { run_id: "gone", iteration: 1, purpose: "act", text: "an hour and more old", at: "1969-12-31T22:59:59.999Z" },
        { run_id: "other", iteration: 1, purpose: "act", text: "recent", at: "1970-01-01T00:00:00.000Z" }
      ])
      const scope = yield* Scope.make()
      const hooks = yield* Scope.extend(live.writer("r"), scope)

      yield* hooks.onEvent(event("run_started"))
      yield* Effect.forEach(["Hello", ", ", "", "world"], (text) => hooks.onDelta(act(1, text)))
      yield* TestClock.adjust("99 millis")
      assert.deepStrictEqual(texts(yield* read), ["1:a crashed session's"], "nothing is written before the interval is up")
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(texts(yield* eventually(read, (rows) => rows.length === 1 && rows[0]!.text !== "a crashed session's")), ["1:Hello, world"])
      assert.deepStrictEqual(yield* deltas.after("gone", 0), [], "a row past the maximum age is expired")
      assert.deepStrictEqual(texts(yield* deltas.after("other", 0)), ["1:recent"])

      // Idle: the clock moving by hours wakes nothing and writes nothing.
      yield* TestClock.adjust("3 hours")
      yield* hooks.onDelta(act(1, "!"))
      yield* hooks.onDelta({ iteration: 1, purpose: "judge", text: "{}" })
      yield* hooks.onDelta(act(2, "next"))
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(texts(yield* eventually(read, (rows) => rows.length === 4)), ["1:Hello, world", "1:!", "1:{}", "2:next"])

      // Iteration 1's step committed: its text goes; text of iteration 2 buffered before a retry is never written.
      yield* hooks.onEvent(event("iteration", { iteration: 1 }))
      yield* hooks.onDelta(act(2, " lost"))
      yield* hooks.onEvent(event("model_retry", { iteration: 2, attempt: 1 }))
      yield* hooks.onDelta(act(2, "again"))
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(texts(yield* eventually(read, (rows) => rows.length === 1)), ["2:again"])

      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* read, [], "nothing of the session is left once it is over")
      assert.deepStrictEqual(texts(yield* deltas.after("other", 0)), ["1:recent"])
    }).pipe(Effect.provide(store)))

  it.scoped("a run on the mock model leaves its answer readable while it streams, and nothing once it ends; accounting as without", () =>
    Effect.gen(function*() {
      const answer = "one two three four five six"
      const mock = script([{ content: answer, criteria_met: [true], delta_ms: 100 }])
      const deltas = yield* DeltaStore
      const running = yield* runMission({ runId: "streamed", goal: goal(1) }, mock).pipe(
        Effect.provide(LiveText.layer()),
        Effect.fork
      )
      let seen: ReadonlyArray<string> = []
      for (let step = 0; step < 100 && seen.length === 0; step++) {
        yield* TestClock.adjust("10 millis")
        yield* Effect.repeatN(Effect.yieldNow(), 20)
        seen = (yield* deltas.after("streamed", 0)).map((r) => r.text)
      }
      const written = seen.join("")
      assert.isTrue(written.length > 0 && answer.startsWith(written) && written !== answer, `a part of the answer while it streams: ${JSON.stringify(written)}`)
      assert.isTrue(Option.isNone(yield* Fiber.poll(running)), "the run is still going")
      yield* TestClock.adjust("10 seconds")
      const { result } = yield* Fiber.join(running)
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.output, answer)
      assert.deepStrictEqual(yield* deltas.after("streamed", 0), [], "pruned once the run ended")

      const plain = yield* runMission({ runId: "plain", goal: goal(1) }, mock)
      assert.deepStrictEqual([result.usage.tokens, result.usage.dollars], [plain.result.usage.tokens, plain.result.usage.dollars])
    }).pipe(Effect.provide(environment)))

  it.effect("AUTOPILOT_LIVE_TEXT: on unless it says off; anything else is bad input naming the variable and its values", () =>
    Effect.gen(function*() {
      const under = (env: Record<string, string>) =>
        Effect.either(Effect.withConfigProvider(LiveText.enabled, ConfigProvider.fromMap(new Map(Object.entries(env)))))
      assert.deepStrictEqual(yield* Effect.map(under({}), (e) => e._tag === "Right" && e.right), true)
      assert.deepStrictEqual(yield* Effect.map(under({ AUTOPILOT_LIVE_TEXT: "On" }), (e) => e._tag === "Right" && e.right), true)
      assert.deepStrictEqual(yield* Effect.map(under({ AUTOPILOT_LIVE_TEXT: "off" }), (e) => e._tag === "Right" && !e.right), true)
      const bad = yield* under({ AUTOPILOT_LIVE_TEXT: "sometimes" })
      assert.isTrue(bad._tag === "Left" && bad.left.message === `AUTOPILOT_LIVE_TEXT must be on or off, got "sometimes"`)
    }))
})
