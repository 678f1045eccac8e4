import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, TestClock } from "effect"
import { Llm } from "../../src/llm/Llm.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Slots from "../../src/routing/Slots.js"
import { blueprint, recordingLlm, research, script } from "./fixtures.js"

/** Slot filling over the (recorded) mock model, optionally scripted. */
const slotsWith = (mock?: Parameters<typeof recordingLlm>[0]) =>
  Effect.gen(function*() {
    const { llm, requests } = yield* recordingLlm(mock)
    const slots = yield* Slots.make.pipe(Effect.provideService(Llm, llm))
    return { slots, requests }
  })

const goal = "Every Monday at 8am, a thorough comparison of 4 vendors, starting from https://a.example/pricing and https://b.example/plans"

describe("Slots.fill", () => {
  it.effect("fills by rules what the goal states, by default what it does not, and reports the rest missing", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith()
      const filled = yield* slots.fill(research, goal)
      assert.deepStrictEqual(filled.values, {
        schedule: "0 8 * * 1",
        vendor_count: 4,
        depth: "thorough",
        sources: ["https://a.example/pricing", "https://b.example/plans"]
      })
      assert.deepStrictEqual(filled.sources, { schedule: "rule", vendor_count: "rule", depth: "rule", sources: "rule" })
      // The unscripted mock finds nothing: the two required slots no rule reads stay missing.
      assert.deepStrictEqual(filled.missing, ["vendors", "audience"])
      assert.deepStrictEqual(filled.invalid, [])
      assert.strictEqual(requests.length, 1)
    }))

  it.effect("asks the model, in one call, only for the slots the rules left, and takes its valid values", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith(script({
        slots: [{ values: { vendors: ["Acme", "Globex"], audience: "the pricing team", schedule: "0 0 1 1 *" } }]
      }))
      const filled = yield* slots.fill(research, goal)
      assert.strictEqual(requests.length, 1)
      const [request] = requests
      assert.strictEqual(request!.purpose, "slots")
      const system = request!.messages[0]!.content
      for (const asked of ["vendors", "audience"]) assert.include(system, `- ${asked} (`)
      for (const ruled of ["schedule", "vendor_count", "depth", "sources"]) assert.notInclude(system, `- ${ruled} (`)
      assert.include(system, "- vendors (string_list, required): takes a list of non-empty strings. The vendors to research")
      assert.deepStrictEqual(request!.messages[1], { role: "user", content: goal })
      // What the model says of a slot it was not asked about is ignored.
      assert.strictEqual(filled.values.schedule, "0 8 * * 1")
      assert.deepStrictEqual(filled.values.vendors, ["Acme", "Globex"])
      assert.strictEqual(filled.values.audience, "the pricing team")
      assert.strictEqual(filled.sources.vendors, "model")
      assert.strictEqual(filled.sources.audience, "model")
      assert.deepStrictEqual(filled.missing, [])
    }))

  it.effect("reports an invalid model value and treats its slot as unfilled", () =>
    Effect.gen(function*() {
      const { slots } = yield* slotsWith(script({
        slots: [{ values: { vendors: [], audience: "engineers", vendor_count: 99, depth: "bottomless" } }]
      }))
      const filled = yield* slots.fill(research, "compare vendors")
      assert.deepStrictEqual(filled.invalid.map((i) => i.slot), ["vendors", "vendor_count", "depth"])
      assert.include(filled.invalid[1]!.message, "slot vendor_count must be a whole number from 1 to 20, got 99")
      assert.include(filled.invalid[2]!.message, `one of "quick", "thorough"`)
      // Unfilled by the model: defaults where there are some, missing where the slot is required.
      assert.strictEqual(filled.values.vendor_count, 3)
      assert.strictEqual(filled.sources.vendor_count, "default")
      assert.strictEqual(filled.values.depth, "quick")
      assert.deepStrictEqual(filled.missing, ["schedule", "vendors"])
      assert.strictEqual(filled.values.audience, "engineers")
    }))

  it.effect("makes no model call when given values and rules fill every slot", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith()
      const filled = yield* slots.fill(
        research,
        `${goal} vendors: Acme, Globex, Initech, Umbrella.`,
        { audience: "the board" }
      )
      assert.strictEqual(requests.length, 0)
      assert.deepStrictEqual(filled.values.vendors, ["Acme", "Globex", "Initech", "Umbrella"])
      assert.strictEqual(filled.sources.audience, "given")
      assert.deepStrictEqual(filled.missing, [])
    }))

  it.effect("makes no model call for a blueprint without slots", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith()
      const bare = blueprint({
        slots: [],
        mode: "once",
        graph: { entry: "work", nodes: [{ id: "work", role: "A worker", prompt: "Do it", model_tier: "simple" }], edges: [] }
      })
      const filled = yield* slots.fill(bare, goal)
      assert.deepStrictEqual(filled, { values: {}, missing: [], invalid: [], sources: {} })
      assert.strictEqual(requests.length, 0)
    }))

  it.effect("lets given values override the rules and the model, validated as the slot says", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith(script({ slots: [{ values: { vendors: "Initech", audience: "sales" } }] }))
      const filled = yield* slots.fill(research, goal, { schedule: "30 6 * * 1-5", vendor_count: "7", vendors: "Acme, Globex" })
      assert.strictEqual(filled.values.schedule, "30 6 * * 1-5")
      assert.strictEqual(filled.values.vendor_count, 7)
      assert.deepStrictEqual(filled.values.vendors, ["Acme", "Globex"])
      assert.deepStrictEqual([filled.sources.schedule, filled.sources.vendor_count, filled.sources.vendors], ["given", "given", "given"])
      assert.notInclude(requests[0]!.messages[0]!.content, "- vendors (")
      assert.strictEqual(filled.values.audience, "sales")
    }))

  it.effect("refuses a given value the slot does not take, naming the slot and what it takes", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith()
      const error = yield* Effect.flip(slots.fill(research, goal, { vendor_count: "lots" }))
      assert.strictEqual(error._tag, "BadInput")
      assert.strictEqual(error.message, `slot vendor_count must be a whole number from 1 to 20, got "lots"`)
      const cron = yield* Effect.flip(slots.fill(research, goal, { schedule: "mondays" }))
      assert.include(cron.message, `slot schedule must be a cron expression of 5 fields`)
      assert.strictEqual(requests.length, 0)
    }))

  it.effect("refuses a given slot the blueprint does not have, listing those it has", () =>
    Effect.gen(function*() {
      const { slots } = yield* slotsWith()
      const error = yield* Effect.flip(slots.fill(research, goal, { cadence: "daily" }))
      assert.strictEqual(
        error.message,
        `blueprint scheduled_research has no slot "cadence"; its slots: schedule, vendors, vendor_count, depth, sources, audience`
      )
    }))

  it.effect("reports a key=value in the goal that its slot does not take, and keeps that slot missing: no model, no default stands in", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith(script({ slots: [{ values: { vendor_count: 5 } }] }))
      const filled = yield* slots.fill(research, "vendor_count=500 weekly")
      assert.deepStrictEqual(filled.invalid, [{ slot: "vendor_count", message: `slot vendor_count must be a whole number from 1 to 20, got "500"` }])
      assert.notInclude(requests[0]?.messages[0]?.content ?? "", "- vendor_count (")
      assert.notProperty(filled.values, "vendor_count")
      assert.include(filled.missing, "vendor_count")
    }))

  it.effect("never fails for the model: a garbage answer or a failed call leaves the slots unfilled", () =>
    Effect.gen(function*() {
      const { slots } = yield* slotsWith(script({ slots: [{ content: "I think the vendors are Acme" }, { error: "model offline", transient: false }] }))
      for (let i = 0; i < 2; i++) {
        const filled = yield* slots.fill(research, goal)
        assert.deepStrictEqual(filled.missing, ["vendors", "audience"])
        assert.deepStrictEqual(filled.invalid, [])
      }
    }))

  it.effect("retries a transient failure on the runtime's schedule before giving up on the model", () =>
    Effect.gen(function*() {
      const { slots, requests } = yield* slotsWith(script({ slots: [{ error: "429 slow down" }, { values: { audience: "ops" } }] }))
      const fiber = yield* Effect.fork(slots.fill(research, goal))
      yield* TestClock.adjust("1 minute")
      const filled = yield* Fiber.join(fiber)
      assert.strictEqual(requests.length, 2)
      assert.strictEqual(filled.values.audience, "ops")
    }))

  it.effect("reads the model's answer inside a markdown fence, and null as nothing found", () =>
    Effect.gen(function*() {
      const { slots } = yield* slotsWith(script({ slots: [{ content: "```json\n{\"vendors\": \"Acme, Globex\", \"audience\": null}\n```" }] }))
      const filled = yield* slots.fill(research, goal)
      assert.deepStrictEqual(filled.values.vendors, ["Acme", "Globex"])
      assert.deepStrictEqual(filled.missing, ["audience"])
      assert.deepStrictEqual(filled.invalid, [])
    }))

  it.effect("is provided as a layer over any Llm", () =>
    Effect.gen(function*() {
      const slots = yield* Slots.Slots
      const exit = yield* Effect.exit(slots.fill(research, "daily"))
      assert.isTrue(Exit.isSuccess(exit))
    }).pipe(Effect.provide(Slots.layer.pipe(Layer.provide(MockLlm.layer())))))
})
