import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { TrainingSample } from "../../src/curator/Sample.js"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import { eachDatabase } from "../support/Databases.js"

const sample = (runId: string, fields: Partial<TrainingSample["metadata"]>): TrainingSample => ({
  messages: [{ role: "user", content: `task ${runId}` }, { role: "assistant", content: "answer" }],
  tools: [],
  metadata: {
    source: "node",
    run_id: runId,
    iteration: 1,
    run_status: "completed",
    model: "gpt-4o",
    cost_usd: 0.01,
    latency_ms: 12,
    tokens: 40,
    hash: runId.padEnd(32, "0"),
    captured_at: "2025-03-10T10:00:00.000Z",
    ...fields
  }
})

eachDatabase("CuratorStore.costs", (database) => {
  const layer = CuratorStore.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("sums one scope's act-call costs per capture time and model, oldest first, whatever the runs' status", () =>
    Effect.gen(function*() {
      const store = yield* CuratorStore.CuratorStore
      const early = "2025-03-10T10:00:00.000Z"
      const late = "2025-03-10T12:00:00.000Z"
      yield* store.record({
        run_id: "m1",
        updated_at: "t",
        size: 1,
        run_status: "completed",
        samples: [
          sample("m1.a", { blueprint: "triage", node: "classify", cost_usd: 0.01 }),
          sample("m1.b", { blueprint: "triage", node: "2.classify", cost_usd: 0.03 }),
          sample("m1.c", { blueprint: "triage", node: "reply", cost_usd: 0.5 }),
          sample("m1.d", { blueprint: "other", node: "classify", cost_usd: 0.7 })
        ]
      })
      yield* store.record({
        run_id: "m2",
        updated_at: "t",
        size: 1,
        run_status: "halted",
        samples: [
          sample("m2.a", { blueprint: "triage", node: "classify", model: "ft:cheap", cost_usd: 0.002, captured_at: late }),
          sample("m2.b", { blueprint: "triage", node: "classify", model: "gpt-4o", cost_usd: 0.02, captured_at: late }),
          sample("m2.c", { source: "run", specialist: "sorter", cost_usd: 0.004, captured_at: late })
        ]
      })
      const node = yield* store.costs({ blueprint: "triage", node: "classify" })
      assert.deepStrictEqual(node.map((p) => [p.at, p.model, p.steps]), [[early, "gpt-4o", 2], [late, "ft:cheap", 1], [late, "gpt-4o", 1]])
      assert.closeTo(node[0]!.cost_usd, 0.04, 1e-12)
      assert.closeTo(node[1]!.cost_usd, 0.002, 1e-12)
      const blueprint = yield* store.costs({ blueprint: "triage" })
      assert.deepStrictEqual(blueprint.map((p) => p.steps), [3, 1, 1])
      assert.closeTo(blueprint[0]!.cost_usd, 0.54, 1e-12)
      const specialist = yield* store.costs({ specialist: "sorter" })
      assert.deepStrictEqual(specialist.map((p) => [p.at, p.steps, p.cost_usd]), [[late, 1, 0.004]])
      assert.deepStrictEqual(yield* store.costs({ specialist: "nobody" }), [])
    }).pipe(Effect.provide(layer)))
})
