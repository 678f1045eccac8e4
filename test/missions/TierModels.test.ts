import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, FastCheck as fc, Option } from "effect"
import * as Pricing from "../../src/budget/Pricing.js"
import { Tiers } from "../../src/domain/Tier.js"
import * as TierModels from "../../src/missions/TierModels.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("TierModels.fallbackModel", () => {
  it("the next model of the tier after the current one, wrapping around", () => {
    assert.deepStrictEqual(TierModels.fallbackModel("simple", "gpt-4o-mini"), Option.some("gpt-4.1-mini"))
    assert.deepStrictEqual(TierModels.fallbackModel("simple", "gpt-4.1-nano"), Option.some("gpt-4o-mini"))
    assert.deepStrictEqual(TierModels.fallbackModel("complex", "o3"), Option.some("o4-mini"))
  })

  it("a dated id the provider answered with is the model it dates", () => {
    assert.deepStrictEqual(TierModels.fallbackModel("medium", "gpt-4.1-2025-04-14"), Option.some("gpt-4o"))
    assert.deepStrictEqual(TierModels.fallbackModel("medium", "gpt-4o-2024-08-06"), Option.some("gpt-4.1"))
  })

  it("the tier's first model when the current one is unknown or not in the tier", () => {
    assert.deepStrictEqual(TierModels.fallbackModel("medium", undefined), Option.some("gpt-4.1"))
    assert.deepStrictEqual(TierModels.fallbackModel("complex", "llama-4-scout"), Option.some("o3"))
  })

  it("none when the tier has no other model", () => {
    const models = { ...TierModels.defaults, complex: ["o3"] }
    assert.deepStrictEqual(TierModels.fallbackModel("complex", "o3", models), Option.none())
    assert.deepStrictEqual(TierModels.fallbackModel("complex", "gpt-4.1", models), Option.some("o3"))
  })

  it.prop("never the current model, always one of its tier, and some whenever the tier has another", [
    fc.constantFrom(...Tiers),
    fc.option(fc.constantFrom(...Pricing.knownModels), { nil: undefined })
  ], ([tier, current]) => {
    const next = TierModels.fallbackModel(tier, current)
    const others = TierModels.defaults[tier].filter((m) => m !== current)
    assert.strictEqual(Option.isSome(next), others.length > 0)
    if (Option.isSome(next)) {
      assert.notStrictEqual(next.value, current)
      assert.include(TierModels.defaults[tier], next.value)
    }
  })

  it("every default model is priced, so a fallback never runs unpriced", () => {
    for (const tier of Tiers) for (const model of TierModels.defaults[tier]) assert.isTrue(Option.isSome(Pricing.priceOf(model)), model)
  })
})

describe("TierModels.load", () => {
  it.effect("the defaults when AUTOPILOT_TIER_MODELS is not set", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* TierModels.load.pipe(withEnv({})), TierModels.defaults)
    }))

  it.effect("the tiers it names replace their defaults, the others keep theirs", () =>
    Effect.gen(function*() {
      const models = yield* TierModels.load.pipe(withEnv({ AUTOPILOT_TIER_MODELS: " simple = gpt-4.1-nano , gpt-4o-mini ; complex=o3-pro,o3;" }))
      assert.deepStrictEqual(models, { simple: ["gpt-4.1-nano", "gpt-4o-mini"], medium: TierModels.defaults.medium, complex: ["o3-pro", "o3"] })
      assert.deepStrictEqual(TierModels.fallbackModel("complex", "o3-pro", models), Option.some("o3"))
    }))

  it.effect("a malformed variable is bad input in one line, saying what is wrong and what is allowed", () =>
    Effect.gen(function*() {
      for (
        const [text, problem] of [
          ["simple:gpt-4o-mini", "not tier=models"],
          ["huge=gpt-4o", `names tier "huge"`],
          ["simple=gpt-4o-mini;simple=gpt-4.1-mini", "names tier simple twice"],
          ["simple=gpt-4o-mini,,gpt-4.1-mini", "blank or spaced model name"],
          ["medium=gpt 4o", "blank or spaced model name"],
          [" ; ", "names no tier"]
        ] as const
      ) {
        const error = yield* Effect.flip(TierModels.load.pipe(withEnv({ AUTOPILOT_TIER_MODELS: text })))
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, "AUTOPILOT_TIER_MODELS")
        assert.include(error.message, problem)
        assert.include(error.message, "with tiers simple, medium, complex")
        assert.notInclude(error.message, "\n")
      }
    }))

  it("parse and the defaults agree: every tier named keeps its order", () => {
    const text = Tiers.map((t) => `${t}=${TierModels.defaults[t].join(",")}`).join(";")
    assert.deepStrictEqual(TierModels.parse(text), Either.right(TierModels.defaults))
  })
})
