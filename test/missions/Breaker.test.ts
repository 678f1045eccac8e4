import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Schema } from "effect"
import { Breaker as Settings, FailureClasses } from "../../src/domain/Healing.js"
import * as Breaker from "../../src/missions/Breaker.js"

const settings = (fields: typeof Settings.Encoded = {}) => Schema.decodeSync(Settings)(fields)

describe("Breaker", () => {
  it.effect("a provider opens at its nth counted failure, not before", () =>
    Effect.gen(function*() {
      const breaker = yield* Breaker.make(settings({ failures: 3 }))
      assert.isFalse(yield* breaker.failure("openai", "transient"))
      assert.isFalse(yield* breaker.failure("openai", "rate_limit"))
      assert.isFalse(yield* breaker.isOpen("openai"))
      assert.isTrue(yield* breaker.failure("openai", "timeout"))
      assert.isTrue(yield* breaker.isOpen("openai"))
      assert.deepStrictEqual(yield* breaker.opened, ["openai"])
    }))

  it.effect("an open provider stays open for the rest of the mission, whatever follows", () =>
    Effect.gen(function*() {
      const breaker = yield* Breaker.make(settings({ failures: 1 }))
      assert.isTrue(yield* breaker.failure("openai", "transient"))
      assert.isTrue(yield* breaker.failure("openai", "schema_violation"))
      assert.isTrue(yield* breaker.failure("openai", "transient"))
      assert.isTrue(yield* breaker.isOpen("openai"))
      assert.deepStrictEqual(yield* breaker.opened, ["openai"], "opened once, listed once")
    }))

  it.effect("failures that are the answer's doing are not the provider's and never open it", () =>
    Effect.gen(function*() {
      const breaker = yield* Breaker.make(settings({ failures: 1 }))
      for (const failureClass of ["schema_violation", "empty_answer", "cost_spike", "tool_error_loop"] as const) {
        assert.isFalse(yield* breaker.failure("openai", failureClass), failureClass)
      }
      assert.deepStrictEqual(yield* breaker.opened, [])
    }))

  it.effect("each provider has its own count, and they open in the order listed", () =>
    Effect.gen(function*() {
      const breaker = yield* Breaker.make(settings({ failures: 2 }))
      yield* breaker.failure("openai", "transient")
      yield* breaker.failure("harness", "transient")
      assert.isTrue(yield* breaker.failure("harness", "transient"))
      assert.isFalse(yield* breaker.isOpen("openai"))
      assert.isTrue(yield* breaker.failure("openai", "transient"))
      assert.deepStrictEqual(yield* breaker.opened, ["harness", "openai"])
    }))

  it.effect("concurrent failures are all counted: n at once open a breaker of n", () =>
    Effect.gen(function*() {
      const breaker = yield* Breaker.make(settings({ failures: 20 }))
      const open = yield* Effect.forEach(Array.from({ length: 20 }), () => breaker.failure("openai", "transient"), { concurrency: "unbounded" })
      assert.strictEqual(open.filter((o) => o).length, 1, "exactly one failure opened it")
      assert.isTrue(yield* breaker.isOpen("openai"))
    }))

  it.effect.prop(
    "open exactly when the counted failures reach the setting, in any mix of classes",
    [fc.integer({ min: 1, max: 8 }), fc.array(fc.constantFrom(...FailureClasses), { maxLength: 30 }), fc.subarray([...FailureClasses])] as const,
    ([failures, history, classes]) =>
      Effect.gen(function*() {
        const breaker = yield* Breaker.make(settings({ failures, classes }))
        let counted = 0
        for (const failureClass of history) {
          if (classes.includes(failureClass)) counted++
          assert.strictEqual(yield* breaker.failure("p", failureClass), counted >= failures)
        }
        assert.strictEqual(yield* breaker.isOpen("p"), counted >= failures)
      })
  )
})
