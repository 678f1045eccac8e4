import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { Autopilot, calculator, CheckpointStore, Goal, MockLlm, Toolkit } from "../src/index.js"

/** The library example from README.md, against an in-memory database. */
describe("the public API", () => {
  const layers = Layer.mergeAll(MockLlm.layer(), Toolkit.layer([calculator]), CheckpointStore.layerSqlite(":memory:"))

  it.effect("runs a mission embedded in another Effect program, as README shows", () =>
    Effect.gen(function*() {
      const kinds: Array<string> = []
      const result = yield* Autopilot.run({
        runId: "py-dict-gotchas",
        goal: new Goal({
          objective: "Summarize three Python dict gotchas with runnable snippets.",
          success_criteria: ["At least 3 gotchas explained", "Each has a snippet", "Each has an avoidance tip"]
        }),
        policy: { max_iterations: 8, max_dollars: 2 },
        onEvent: (event) => Effect.sync(() => kinds.push(event.kind))
      })
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.iterations, 3)
      assert.strictEqual(kinds[0], "run_started")
      assert.strictEqual(kinds[kinds.length - 1], "result")
      const resumed = yield* Autopilot.stream({ runId: "py-dict-gotchas", resume: true }).pipe(Stream.runCollect)
      assert.strictEqual([...resumed].at(-1)?.kind, "result")
    }).pipe(Effect.provide(layers)))
})
