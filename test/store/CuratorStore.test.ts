import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import type { TrainingSample } from "../../src/curator/Sample.js"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import { CuratorStore as Store } from "../../src/store/CuratorStore.js"
import * as RunStore from "../../src/store/RunStore.js"
import { earlierCheckpoint } from "../runtime/fixtures.js"
import { eachDatabase } from "../support/Databases.js"

const sample = (runId: string, iteration: number, fields: Partial<TrainingSample["metadata"]> = {}): TrainingSample => ({
  messages: [{ role: "user", content: `task ${runId}` }, { role: "assistant", content: `answer ${iteration}` }],
  tools: [],
  metadata: {
    source: "run",
    run_id: runId,
    iteration,
    run_status: "completed",
    model: "gpt-4o-mini",
    cost_usd: 0.001,
    latency_ms: 12,
    tokens: 40,
    hash: `${runId}-${iteration}`.padEnd(32, "0"),
    captured_at: "2025-01-01T00:00:00.000Z",
    ...fields
  }
})

const all = { completed_only: false, max_tokens: 1_000_000 } as const

const checkpoint = (runId: string, updatedAt: string) =>
  Schema.decodeUnknownSync(Checkpoint)({ ...earlierCheckpoint, run_id: runId, updated_at: updatedAt })

const suite = (database: Layer.Layer<SqlClient.SqlClient>) => {
  const layer = Layer.mergeAll(CuratorStore.layer, RunStore.layer).pipe(Layer.provideMerge(database))

  it.effect("records each unit once however often it is recorded, and restates the status of a run's samples", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const first = { run_id: "m", updated_at: "t1", size: 10, run_status: "partial" as const, samples: [sample("m.a", 1), sample("m.b", 1)] }
      assert.strictEqual(yield* store.record(first), 2)
      assert.strictEqual(yield* store.record(first), 0)
      assert.strictEqual(yield* store.record({ ...first, updated_at: "t2", run_status: "completed", samples: [sample("m.a", 1), sample("m.c", 2)] }), 1)
      const rows = yield* store.page(all, 0, 10)
      assert.deepStrictEqual(rows.map((r) => [r.sample.metadata.run_id, r.sample.metadata.run_status]), [["m.a", "completed"], ["m.b", "completed"], ["m.c", "completed"]])
      assert.strictEqual(yield* store.count({ ...all, completed_only: true }), 3)
    }).pipe(Effect.provide(layer)))

  it.effect("lists runs never curated or changed since, a page at a time after a run id", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const runs = yield* RunStore.RunStore
      yield* runs.saveAll([checkpoint("a", "t1"), checkpoint("b", "t1"), checkpoint("c", "t1")])
      assert.deepStrictEqual((yield* store.pending("", 10)).map((p) => p.run_id), ["a", "b", "c"])
      assert.deepStrictEqual((yield* store.pending("a", 1)).map((p) => p.run_id), ["b"])
      const [b] = yield* store.pending("a", 1)
      yield* store.record({ run_id: "b", updated_at: b!.updated_at, size: b!.size, run_status: "halted", samples: [] })
      assert.deepStrictEqual((yield* store.pending("", 10)).map((p) => p.run_id), ["a", "c"])
      yield* runs.save(checkpoint("b", "t2"))
      assert.deepStrictEqual((yield* store.pending("", 10)).map((p) => p.run_id), ["a", "b", "c"])
    }).pipe(Effect.provide(layer)))

  it.effect("filters in the database: source, blueprint, node (any instance), specialist, status, confidence, tokens; keyset pages", () =>
    Effect.gen(function*() {
      const store = yield* Store
      yield* store.record({
        run_id: "m",
        updated_at: "t",
        size: 1,
        run_status: "completed",
        samples: [
          sample("m.classify", 1, { source: "node", blueprint: "triage", node: "classify", specialist: "sorter", critic_confidence: 0.9 }),
          sample("m.2.classify", 1, { source: "node", blueprint: "triage", node: "2.classify", specialist: "sorter", critic_confidence: 0.5 }),
          sample("m.reply", 1, { source: "node", blueprint: "triage", node: "reply", specialist: "writer", tokens: 5000 })
        ]
      })
      yield* store.record({ run_id: "r", updated_at: "t", size: 1, run_status: "halted", samples: [sample("r", 1)] })
      const ids = (filter: Partial<CuratorStore.Filter>) =>
        Effect.map(store.page({ ...all, ...filter }, 0, 10), (rows) => rows.map((r) => r.sample.metadata.run_id))
      assert.deepStrictEqual(yield* ids({ source: "run" }), ["r"])
      assert.deepStrictEqual(yield* ids({ node: "classify" }), ["m.classify", "m.2.classify"])
      assert.deepStrictEqual(yield* ids({ specialist: "writer" }), ["m.reply"])
      assert.deepStrictEqual(yield* ids({ blueprint: "triage", min_critic_confidence: 0.8 }), ["m.classify"])
      assert.deepStrictEqual(yield* ids({ max_tokens: 100 }), ["m.classify", "m.2.classify", "r"])
      assert.deepStrictEqual(yield* ids({ completed_only: true, max_tokens: 100 }), ["m.classify", "m.2.classify"])
      const [firstPage] = yield* store.page(all, 0, 1)
      assert.deepStrictEqual((yield* store.hashes(all, firstPage!.id, 10)).length, 3)
      assert.deepStrictEqual(yield* store.facets, { blueprints: ["triage"], specialists: ["sorter", "writer"] })
    }).pipe(Effect.provide(layer)))

  it.effect("removes what a deleted run gave: its own samples, its nodes' and its scan mark; its id then captures afresh", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const runs = yield* RunStore.RunStore
      yield* runs.saveAll([checkpoint("m", "t1"), checkpoint("r", "t1")])
      yield* store.record({ run_id: "m", updated_at: "t1", size: 1, run_status: "completed", samples: [sample("m.a", 1, { source: "node" }), sample("m.b", 1, { source: "node" })] })
      yield* store.record({ run_id: "r", updated_at: "t1", size: 1, run_status: "completed", samples: [sample("r", 1), sample("r", 2)] })
      yield* store.remove("m")
      const ids = Effect.map(store.page(all, 0, 10), (rows) => rows.map((r) => `${r.sample.metadata.run_id}/${r.sample.metadata.iteration}`))
      assert.deepStrictEqual(yield* ids, ["r/1", "r/2"])
      // Its mark is gone too: the run is looked at again, though its checkpoint did not change.
      const [m] = yield* store.pending("", 1)
      assert.strictEqual(m?.run_id, "m")
      // A run rolled back to iteration 1 keeps that one; the next capture of iteration 2 stores the new work.
      yield* store.removeAfter("r", 1)
      assert.deepStrictEqual(yield* ids, ["r/1"])
      const again = sample("r", 2, { hash: "new".padEnd(32, "0") })
      assert.strictEqual(yield* store.record({ run_id: "r", updated_at: "t2", size: 1, run_status: "completed", samples: [sample("r", 1), again] }), 1)
      yield* store.remove("r")
      assert.strictEqual(yield* store.record({ run_id: "r", updated_at: "t3", size: 1, run_status: "completed", samples: [again] }), 1)
      assert.deepStrictEqual((yield* store.page(all, 0, 10)).map((r) => r.hash), [again.metadata.hash])
    }).pipe(Effect.provide(layer)))

  it.effect("forgets the samples and marks of runs whose checkpoint is gone, and only those", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const runs = yield* RunStore.RunStore
      yield* runs.saveAll([checkpoint("kept", "t1"), checkpoint("deleted", "t1")])
      yield* store.record({ run_id: "kept", updated_at: "t1", size: 1, run_status: "completed", samples: [sample("kept", 1)] })
      yield* store.record({ run_id: "deleted", updated_at: "t1", size: 1, run_status: "completed", samples: [sample("deleted.a", 1), sample("deleted.b", 2)] })
      // Deleted by a process that left the curator's rows behind.
      const loaded = yield* runs.load("deleted")
      assert(loaded._tag === "Found")
      assert.isTrue(yield* runs.remove("deleted", Option.some(loaded.raw)))
      assert.strictEqual(yield* store.forgetOrphans, 2)
      assert.strictEqual(yield* store.forgetOrphans, 0)
      assert.deepStrictEqual((yield* store.page(all, 0, 10)).map((r) => r.sample.metadata.run_id), ["kept"])
      const sql = yield* SqlClient.SqlClient
      const marks = yield* sql<{ run_id: string }>`SELECT run_id FROM curator_runs ORDER BY run_id`
      assert.deepStrictEqual(marks.map((r) => r.run_id), ["kept"])
    }).pipe(Effect.provide(layer)))
}

describe("CuratorStore", () => {
  eachDatabase("samples", (database) => suite(database.layer))
})
