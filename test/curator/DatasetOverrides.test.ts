import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../../src/curator/Dataset.js"

const parse = (definitions: unknown) => Dataset.parseDefinitions(JSON.stringify(definitions), "datasets.json")

it.effect("a definition may set its own fine-tune threshold (a whole number from 1) and base model; both are optional", () =>
  Effect.gen(function*() {
    const [own, plain] = yield* parse([{ id: "triage", threshold: 50, base_model: "qwen2.5-7b" }, { id: "plain" }])
    assert.deepStrictEqual([own!.threshold, own!.base_model], [50, "qwen2.5-7b"])
    assert.deepStrictEqual([plain!.threshold, plain!.base_model], [undefined, undefined])
  }))

it.effect("a threshold below 1, not whole, or not a number, or an empty base model, is one line naming the field", () =>
  Effect.gen(function*() {
    for (const [definition, field] of [
      [{ id: "t", threshold: 0 }, "0.threshold: must be a whole number of samples from 1 to 1000000000"],
      [{ id: "t", threshold: 1.5 }, "0.threshold: "],
      [{ id: "t", threshold: "ten" }, "0.threshold: "],
      [{ id: "t", base_model: " " }, "0.base_model: "]
    ] as const) {
      const error = yield* Effect.flip(parse([definition]))
      assert.include(error.message, `datasets.json is not a JSON array of dataset definitions: ${field}`)
      assert.notInclude(error.message, "\n")
      assert.include(error.message, "threshold 1-1000000000, base_model)")
    }
  }))
