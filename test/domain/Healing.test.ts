import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Blueprint, type BlueprintEncoded } from "../../src/domain/Blueprint.js"
import { AutopilotEvent } from "../../src/domain/Event.js"
import {
  Adjustment,
  defaultPolicy,
  describeAdjustment,
  describePolicy,
  FailureClasses,
  HealingPolicy,
  policyOf
} from "../../src/domain/Healing.js"
import * as Render from "../../src/cli/Render.js"
import { decoder } from "../../src/catalog/CatalogFiles.js"

const decodePolicy = decoder(HealingPolicy, { noun: "healing policy" })
const rejected = (input: unknown) => Either.match(decodePolicy(input), { onLeft: (e) => e, onRight: () => assert.fail(`accepted ${JSON.stringify(input)}`) })

const blueprint: BlueprintEncoded = {
  id: "two_step",
  version: 1,
  title: "Two steps",
  description: "Plans, then writes.",
  category: "writing",
  example_goals: ["write it"],
  mode: "once",
  slots: [],
  graph: {
    entry: "plan",
    nodes: [
      { id: "plan", role: "A planner.", prompt: "Plan.", model_tier: "simple" },
      { id: "write", role: "A writer.", prompt: "Write from {plan.output}.", model_tier: "medium" }
    ],
    edges: [{ from: "plan", to: "write" }]
  },
  success_criteria: ["it is written"],
  budget: {},
  curation: { capture: false }
}

describe("HealingPolicy", () => {
  it("the default policy is what {} decodes to, with a ladder for every failure class", () => {
    assert.deepStrictEqual(Schema.decodeSync(HealingPolicy)({}), defaultPolicy)
    assert.deepStrictEqual(Object.keys(defaultPolicy.ladders).sort(), [...FailureClasses].sort())
    assert.strictEqual(defaultPolicy.max_attempts_per_node, 4)
    assert.strictEqual(defaultPolicy.max_attempts_per_mission, 12)
    assert.strictEqual(defaultPolicy.cost_spike_factor, 3)
    assert.deepStrictEqual(defaultPolicy.breaker, { failures: 3, classes: ["transient", "rate_limit", "timeout"] })
  })

  it("the default ladders: wait before switching for provider failures, quote the error first for a bad answer", () => {
    const kinds = (c: (typeof FailureClasses)[number]) => defaultPolicy.ladders[c].map((r) => r.kind)
    assert.deepStrictEqual(kinds("transient"), ["backoff", "backoff", "fallback_model", "fallback_provider"])
    assert.deepStrictEqual(kinds("rate_limit"), ["backoff", "fallback_model", "fallback_provider"])
    assert.deepStrictEqual(kinds("timeout"), ["trim_context", "fallback_model", "fallback_provider"])
    assert.deepStrictEqual(kinds("schema_violation"), ["stricter_output", "lower_temperature", "fallback_model"])
    assert.deepStrictEqual(kinds("empty_answer"), ["stricter_output", "fallback_model", "fallback_provider"])
    assert.deepStrictEqual(kinds("cost_spike"), ["trim_context"], "one cheaper try: every retry of a spike spends again")
    assert.deepStrictEqual(kinds("tool_error_loop"), ["trim_context", "fallback_model"])
    for (const c of FailureClasses) {
      for (const kind of kinds(c)) assert.isTrue(kind !== "backoff" || ["transient", "rate_limit"].includes(c), `${c} never waits: time does not fix it`)
    }
  })

  it("a partial policy keeps the default for everything it does not set, and a rung's parameters default", () => {
    const policy = Schema.decodeSync(HealingPolicy)({
      max_attempts_per_node: 2,
      ladders: { schema_violation: [{ kind: "lower_temperature" }, { kind: "trim_context" }] }
    })
    assert.strictEqual(policy.max_attempts_per_node, 2)
    assert.strictEqual(policy.max_attempts_per_mission, defaultPolicy.max_attempts_per_mission)
    assert.deepStrictEqual(policy.ladders.schema_violation, [{ kind: "lower_temperature", temperature: 0 }, { kind: "trim_context", keep: 0.5 }])
    assert.deepStrictEqual(policy.ladders.transient, defaultPolicy.ladders.transient)
    assert.deepStrictEqual(policy.breaker, defaultPolicy.breaker)
  })

  it("a wrong value is named with what is allowed", () => {
    assert.match(rejected({ cost_spike_factor: 1 }), /^cost_spike_factor: must be a number above 1 and at most 1000/)
    assert.match(rejected({ max_attempts_per_node: -1 }), /^max_attempts_per_node: must be a whole number from 0 to 100/)
    assert.match(rejected({ ladders: { timeout: [{ kind: "pray" }] } }), /^ladders\.timeout\[0\]/)
    assert.match(rejected({ ladders: { timeout: [{ kind: "trim_context", keep: 1 }] } }), /keep: must be a fraction above 0 and below 1/)
    assert.match(rejected({ ladders: { hiccup: [] } }), /^ladders\.hiccup: is not a field here \(misspelt\?\); the fields here: transient, rate_limit, timeout/)
    assert.match(rejected({ breaker: { failures: 0 } }), /^breaker\.failures: must be a whole number from 1 to 1000/)
  })

  it("describes itself in one line: limits, then each class's ladder", () => {
    const line = describePolicy(defaultPolicy)
    assert.notInclude(line, "\n")
    assert.match(line, /^4 attempts per node, 12 per mission; cost spike above 3× the estimate; provider broken after 3 failures; /)
    assert.include(line, "transient: backoff → backoff → fallback model → fallback provider")
    assert.include(line, "timeout: trim to 50% → fallback model → fallback provider")
    assert.include(describePolicy(Schema.decodeSync(HealingPolicy)({ ladders: { cost_spike: [] } })), "cost_spike: no retry")
  })
})

describe("Blueprint.healing", () => {
  it("is optional: a blueprint without it decodes without it, and heals by the default policy", () => {
    const decoded = Schema.decodeUnknownSync(Blueprint)(blueprint)
    assert.isFalse("healing" in decoded)
    assert.strictEqual(policyOf(decoded), defaultPolicy)
    assert.isFalse("healing" in Schema.encodeSync(Blueprint)(decoded), "a file written back does not gain the field")
  })

  it("a blueprint with a healing policy decodes it, filling in the defaults it leaves out", () => {
    const decoded = Schema.decodeUnknownSync(Blueprint)({ ...blueprint, healing: { max_attempts_per_mission: 5 } })
    assert.strictEqual(policyOf(decoded).max_attempts_per_mission, 5)
    assert.deepStrictEqual(policyOf(decoded).ladders, defaultPolicy.ladders)
    const again = Schema.decodeUnknownSync(Blueprint)(Schema.encodeSync(Blueprint)(decoded))
    assert.deepStrictEqual(again.healing, decoded.healing, "encodes and decodes back to the same policy")
  })
})

describe("the healing event", () => {
  const envelope = { run_id: "ms-1", at: "2026-04-15T09:00:00.000Z", seq: 7, remaining: { seconds: null, tool_calls: null, tokens: null, dollars: 1, iterations: null } }

  it("decodes as an AutopilotEvent and renders as one line", () => {
    const event = Schema.decodeUnknownSync(AutopilotEvent)({
      ...envelope,
      kind: "healing",
      node: "write",
      attempt: 1,
      class: "schema_violation",
      adjustment: { kind: "stricter_output", validation_error: "is missing \"title\"" },
      outcome: "healed"
    })
    assert.strictEqual(Render.text(event), `    healing write (attempt 1, schema_violation): stricter output instruction quoting "is missing \\"title\\"" → healed`)
  })

  it("refuses an adjustment without what it needs, and an unknown outcome", () => {
    const decode = Schema.decodeUnknownEither(AutopilotEvent)
    const base = { ...envelope, kind: "healing", node: "write", attempt: 2, class: "rate_limit", outcome: "failed" }
    assert.isTrue(Either.isRight(decode({ ...base, adjustment: { kind: "backoff", delay_ms: 4000 } })))
    assert.isTrue(Either.isLeft(decode({ ...base, adjustment: { kind: "backoff" } })))
    assert.isTrue(Either.isLeft(decode({ ...base, adjustment: { kind: "stricter_output" } })))
    assert.isTrue(Either.isLeft(decode({ ...base, adjustment: { kind: "fallback_model" }, outcome: "maybe" })))
  })

  it("every adjustment reads as a few words", () => {
    const all: ReadonlyArray<Adjustment> = [
      { kind: "backoff", delay_ms: 4000 },
      { kind: "lower_temperature", temperature: 0 },
      { kind: "stricter_output", validation_error: "x".repeat(200) },
      { kind: "trim_context", keep: 0.25 },
      { kind: "fallback_model" },
      { kind: "fallback_provider" }
    ]
    assert.deepStrictEqual(all.map(describeAdjustment), [
      "backoff 4000 ms",
      "temperature 0",
      `stricter output instruction quoting "${"x".repeat(79)}…"`,
      "context trimmed to 25%",
      "fallback model of the same tier",
      "fallback provider"
    ])
  })
})
