import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer } from "effect"
import { eachDatabase } from "../support/Databases.js"
import * as Store from "../../src/store/DaemonStore.js"
import { DaemonStore, RunnerRow } from "../../src/store/DaemonStore.js"

const runner = (fields: Partial<ConstructorParameters<typeof RunnerRow>[0]> = {}) =>
  new RunnerRow({
    address: "vm:100",
    host: "vm",
    pid: 100,
    concurrency: 4,
    lease_ms: 10_000,
    state: "running",
    started_at: "2026-12-01T09:00:00.000Z",
    heartbeat_at: "2026-12-01T09:00:00.000Z",
    ...fields
  })

const work = (runId: string, sentAt = "2026-12-01T09:00:01.000Z") => ({
  run_id: runId,
  kind: "mission" as const,
  project_id: "default",
  mission_id: runId,
  slot: null,
  priority: 50,
  sent_at: sentAt
})

eachDatabase("DaemonStore", (database) => {
    it.layer(Store.layer.pipe(Layer.provideMerge(database.layer), Layer.fresh))((it) => {
      it.effect("registers a runner, refreshes it on a restart, and keeps its heartbeat and state", () =>
        Effect.gen(function*() {
          const store = yield* DaemonStore
          yield* store.register(runner())
          yield* store.register(runner({ concurrency: 8, started_at: "2026-12-01T10:00:00.000Z", heartbeat_at: "2026-12-01T10:00:00.000Z" }))
          yield* store.heartbeat("vm:100", "draining", "2026-12-01T10:00:05.000Z")
          yield* store.register(runner({ address: "vm:200", pid: 200, started_at: "2026-12-01T11:00:00.000Z" }))
          assert.deepStrictEqual(yield* store.runners, [
            runner({ concurrency: 8, state: "draining", started_at: "2026-12-01T10:00:00.000Z", heartbeat_at: "2026-12-01T10:00:05.000Z" }),
            runner({ address: "vm:200", pid: 200, started_at: "2026-12-01T11:00:00.000Z" })
          ])
        }))

      it.effect("records work once by run id, counts its deliveries, and ends it once", () =>
        Effect.gen(function*() {
          const store = yield* DaemonStore
          assert.isTrue(yield* store.send(work("ms-a")))
          assert.isFalse(yield* store.send(work("ms-a", "2026-12-01T09:05:00.000Z")))
          assert.isTrue(yield* store.send(work("ms-b", "2026-12-01T09:00:02.000Z")))
          yield* store.begin("ms-a", "vm:100", "2026-12-01T09:00:03.000Z")
          yield* store.begin("ms-a", "vm:200", "2026-12-01T09:00:20.000Z")
          assert.deepStrictEqual((yield* store.open).map((w) => [w.run_id, w.runner, w.deliveries, w.sent_at]), [
            ["ms-a", "vm:200", 2, "2026-12-01T09:00:01.000Z"],
            ["ms-b", null, 0, "2026-12-01T09:00:02.000Z"]
          ])
          yield* store.end("ms-a", "completed", "2026-12-01T09:01:00.000Z")
          yield* store.end("ms-a", "failed", "2026-12-01T09:02:00.000Z")
          assert.deepStrictEqual((yield* store.open).map((w) => w.run_id), ["ms-b"])
          const ended = yield* store.ended(10)
          assert.deepStrictEqual(ended.map((w) => [w.run_id, w.outcome, w.ended_at]), [["ms-a", "completed", "2026-12-01T09:01:00.000Z"]])
          assert.strictEqual((yield* store.get("ms-b"))?.kind, "mission")
          assert.isUndefined(yield* store.get("ms-c"))
        }))

      it.effect("opens refused work again as a new generation, once it has waited", () =>
        Effect.gen(function*() {
          const store = yield* DaemonStore
          yield* store.send(work("ms-r"))
          yield* store.begin("ms-r", "vm:100", "2026-12-01T09:00:03.000Z")
          yield* store.end("ms-r", "refused: --llm openai needs AUTOPILOT_LLM_BASE_URL", "2026-12-01T09:00:04.000Z")
          assert.isUndefined(yield* store.retry("ms-r", "2026-12-01T09:00:04.000Z", "2026-12-01T09:00:05.000Z"))
          const again = yield* store.retry("ms-r", "2026-12-01T09:00:10.000Z", "2026-12-01T09:00:10.000Z")
          assert.deepStrictEqual([again?.generation, again?.ended_at, again?.outcome, again?.sent_at], [1, null, null, "2026-12-01T09:00:10.000Z"])
          yield* store.begin("ms-r", "vm:200", "2026-12-01T09:00:11.000Z")
          yield* store.end("ms-r", "completed", "2026-12-01T09:00:20.000Z")
          assert.isUndefined(yield* store.retry("ms-r", "2026-12-01T10:00:00.000Z", "2026-12-01T10:00:00.000Z"))
        }))
    })
})

describe("RunnerRow.aliveAt", () => {
  const at = (iso: string) => DateTime.unsafeMake(iso)
  it("is alive while its heartbeat is within its own lease, and never once stopped", () => {
    const row = runner({ heartbeat_at: "2026-12-01T09:00:00.000Z", lease_ms: 10_000 })
    assert.isTrue(row.aliveAt(at("2026-12-01T09:00:10.000Z")))
    assert.isFalse(row.aliveAt(at("2026-12-01T09:00:10.001Z")))
    assert.isFalse(runner({ state: "stopped" }).aliveAt(at("2026-12-01T09:00:00.000Z")))
    assert.isTrue(runner({ state: "draining" }).aliveAt(at("2026-12-01T09:00:01.000Z")))
  })
})
