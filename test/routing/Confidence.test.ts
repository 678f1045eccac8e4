import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, FastCheck as fc, Layer } from "effect"
import * as Confidence from "../../src/routing/Confidence.js"

const unit = fc.double({ min: 0, max: 1, noNaN: true })
/** Valid thresholds: both in 0–1, auto-routing at or above the picker. */
const thresholds = fc.tuple(unit, unit).map(([a, b]) => ({ auto_route_threshold: Math.max(a, b), picker_threshold: Math.min(a, b) }))

/** The next number below `x`: a score that just misses a threshold. */
const below = (x: number) => {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  view.setBigUint64(0, view.getBigUint64(0) + (x > 0 ? -1n : 0n))
  return x > 0 ? view.getFloat64(0) : -Number.MIN_VALUE
}

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("gate", () => {
  it.prop("a score exactly on the auto-route threshold is auto-routed", [thresholds], ([config]) => {
    assert.strictEqual(Confidence.gate(config, config.auto_route_threshold), "auto_routed")
  })

  it.prop("a score exactly on the picker threshold needs the picker, unless both thresholds are the same", [thresholds], ([config]) => {
    const expected = config.picker_threshold === config.auto_route_threshold ? "auto_routed" : "picker_needed"
    assert.strictEqual(Confidence.gate(config, config.picker_threshold), expected)
  })

  it.prop("the largest score below a threshold falls short of it", [thresholds], ([config]) => {
    assert.notStrictEqual(Confidence.gate(config, below(config.auto_route_threshold)), "auto_routed")
    assert.strictEqual(Confidence.gate(config, below(config.picker_threshold)), "synthesis_needed")
  })

  it.prop("the outcome is the band the score falls in", [thresholds, unit], ([config, score]) => {
    const expected = score >= config.auto_route_threshold
      ? "auto_routed"
      : score >= config.picker_threshold
      ? "picker_needed"
      : "synthesis_needed"
    assert.strictEqual(Confidence.gate(config, score), expected)
  })

  it.prop("a higher score never leads to a less confident outcome", [thresholds, unit, unit], ([config, a, b]) => {
    const rank = { synthesis_needed: 0, picker_needed: 1, auto_routed: 2 }
    const [low, high] = a <= b ? [a, b] : [b, a]
    assert.isAtMost(rank[Confidence.gate(config, low)], rank[Confidence.gate(config, high)])
  })

  it("the defaults: 0.85 routes, 0.8499 asks, 0.65 asks, 0.6499 synthesizes", () => {
    const config = Confidence.defaults
    assert.deepStrictEqual([0.85, 0.8499, 0.65, 0.6499, 1, 0].map((s) => Confidence.gate(config, s)), [
      "auto_routed",
      "picker_needed",
      "picker_needed",
      "synthesis_needed",
      "auto_routed",
      "synthesis_needed"
    ])
  })
})

describe("ConfidenceConfig", () => {
  it.effect.prop("make accepts every pair in range with auto at or above picker", [thresholds], ([config]) =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Confidence.make(config), config)
    }))

  it.effect.prop("make refuses an inverted pair, naming both values", [unit, unit], ([a, b]) =>
    Effect.gen(function*() {
      if (a === b) return
      const [auto, picker] = a < b ? [a, b] : [b, a]
      const error = yield* Effect.flip(Confidence.make({ auto_route_threshold: auto, picker_threshold: picker }))
      assert.strictEqual(error._tag, "BadInput")
      assert.include(error.message, `AUTOPILOT_AUTO_ROUTE_THRESHOLD (${auto})`)
      assert.include(error.message, `AUTOPILOT_PICKER_THRESHOLD (${picker})`)
      assert.notInclude(error.message, "\n")
    }))

  it.effect.prop(
    "make refuses a threshold outside 0–1",
    [fc.oneof(fc.double({ min: 1, minExcluded: true, noNaN: true }), fc.double({ max: -Number.MIN_VALUE, noNaN: true }), fc.constant(Number.NaN))],
    ([value]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Confidence.make({ picker_threshold: value }))
        assert.strictEqual(error.message, `AUTOPILOT_PICKER_THRESHOLD must be a number from 0 to 1, got ${value}`)
      })
  )

  it.effect("layerConfig: the defaults when nothing is set", () =>
    Effect.gen(function*() {
      const config = yield* Confidence.ConfidenceConfig
      assert.deepStrictEqual(config, { auto_route_threshold: 0.85, picker_threshold: 0.65 })
    }).pipe(Effect.provide(Confidence.layerConfig), withEnv({})))

  it.effect("layerConfig reads both variables; equal thresholds are allowed", () =>
    Effect.gen(function*() {
      const config = yield* Confidence.fromConfig.pipe(withEnv({ AUTOPILOT_AUTO_ROUTE_THRESHOLD: "0.7", AUTOPILOT_PICKER_THRESHOLD: "0.7" }))
      assert.deepStrictEqual(config, { auto_route_threshold: 0.7, picker_threshold: 0.7 })
      const edges = yield* Confidence.fromConfig.pipe(withEnv({ AUTOPILOT_AUTO_ROUTE_THRESHOLD: "1", AUTOPILOT_PICKER_THRESHOLD: "0" }))
      assert.deepStrictEqual(edges, { auto_route_threshold: 1, picker_threshold: 0 })
    }))

  it.effect("layerConfig: an inverted pair, a value out of range or not a number is one line of bad input", () =>
    Effect.gen(function*() {
      const messageOf = (env: Record<string, string>) =>
        Layer.build(Confidence.layerConfig).pipe(Effect.scoped, withEnv(env), Effect.exit, Effect.map((exit) => {
          assert.isTrue(Exit.isFailure(exit))
          return Exit.isFailure(exit) && exit.cause._tag === "Fail" ? `${exit.cause.error._tag}: ${exit.cause.error.message}` : "no failure"
        }))
      assert.strictEqual(
        yield* messageOf({ AUTOPILOT_AUTO_ROUTE_THRESHOLD: "0.5", AUTOPILOT_PICKER_THRESHOLD: "0.6" }),
        "BadInput: AUTOPILOT_AUTO_ROUTE_THRESHOLD (0.5) must not be below AUTOPILOT_PICKER_THRESHOLD (0.6): a goal sure enough to route by itself is always sure enough to offer"
      )
      assert.strictEqual(
        yield* messageOf({ AUTOPILOT_PICKER_THRESHOLD: "0.9" }),
        "BadInput: AUTOPILOT_AUTO_ROUTE_THRESHOLD (0.85) must not be below AUTOPILOT_PICKER_THRESHOLD (0.9): a goal sure enough to route by itself is always sure enough to offer"
      )
      assert.strictEqual(
        yield* messageOf({ AUTOPILOT_AUTO_ROUTE_THRESHOLD: "1.5" }),
        `BadInput: AUTOPILOT_AUTO_ROUTE_THRESHOLD must be a number from 0 to 1, got "1.5"`
      )
      assert.strictEqual(
        yield* messageOf({ AUTOPILOT_PICKER_THRESHOLD: "high" }),
        `BadInput: AUTOPILOT_PICKER_THRESHOLD must be a number from 0 to 1, got "high"`
      )
      assert.strictEqual(
        yield* messageOf({ AUTOPILOT_PICKER_THRESHOLD: " " }),
        `BadInput: AUTOPILOT_PICKER_THRESHOLD must be a number from 0 to 1, got " "`
      )
    }))
})
