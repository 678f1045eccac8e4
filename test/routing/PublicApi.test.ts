import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { MockLlm, SlotRules, Slots, Specialists, Synthesis } from "../../src/index.js"
import { Blueprints, fromEntries } from "../../src/routing/Blueprints.js"

describe("slots and synthesis in the public API", () => {
  it.effect("synthesize a blueprint for a goal, then fill its slots, over the embedded mock", () =>
    Effect.gen(function*() {
      const kept: Array<string> = []
      const catalog = fromEntries([], {
        add: (blueprint) => Effect.sync(() => (kept.push(blueprint.id), { blueprint, file: `${blueprint.id}.json` }))
      })
      const layers = Layer.mergeAll(Slots.layer, Synthesis.layer).pipe(
        Layer.provide(Layer.mergeAll(MockLlm.layer(), Specialists.layerBuiltIn, Layer.succeed(Blueprints, catalog)))
      )
      const { blueprint, filled } = yield* Effect.gen(function*() {
        const { blueprint } = yield* (yield* Synthesis.Synthesis).synthesize("Plan our team offsite in Lisbon")
        return { blueprint, filled: yield* (yield* Slots.Slots).fill(blueprint, "Plan our team offsite in Lisbon") }
      }).pipe(Effect.provide(layers))
      assert.strictEqual(blueprint.id, "synthetic_plan_our_team_offsite_in_lisbon")
      assert.deepStrictEqual(kept, [blueprint.id])
      assert.deepStrictEqual(filled, { values: {}, missing: [], invalid: [], sources: {} })
      assert.strictEqual(SlotRules.cadence("every weekday at 9")._tag, "Some")
    }))
})
