import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { BudgetPolicy, BudgetUsage } from "../../src/domain/Budget.js"
import { Checkpoint, CheckpointJson } from "../../src/domain/Checkpoint.js"
import { Goal } from "../../src/domain/Goal.js"

/** JSON has no negative zero; `+ 0` turns -0 into 0 so equality below is about values JSON can carry. */
const positiveZero = (n: number) => n + 0

/** Non-negative finite amounts, small and huge alike, with the edges fast-check might rarely reach. */
const amount = fc.oneof(
  fc.double({ min: 0, max: Number.MAX_VALUE, noNaN: true }),
  fc.nat(),
  fc.constantFrom(0, 0.1, 1e-300, 2 ** 53, 2 ** 53 + 2, 1e15, 1e300, Number.MAX_VALUE)
)

const usage = fc.record({ seconds: amount, tool_calls: amount, tokens: amount, dollars: amount, iterations: amount })
  .map((fields) => new BudgetUsage(fields))

const checkpoint = fc.tuple(Arbitrary.make(Checkpoint), usage).map(([c, usage]) =>
  new Checkpoint({
    ...c,
    policy: new BudgetPolicy({
      max_seconds: positiveZero(c.policy.max_seconds),
      max_tool_calls: positiveZero(c.policy.max_tool_calls),
      max_tokens: positiveZero(c.policy.max_tokens),
      max_dollars: positiveZero(c.policy.max_dollars),
      max_iterations: positiveZero(c.policy.max_iterations)
    }),
    usage
  })
)

const encode = Schema.encodeSync(CheckpointJson)
const decode = Schema.decodeUnknownEither(CheckpointJson)

const sample = new Checkpoint({
  version: 1,
  run_id: "run-1",
  goal: new Goal({ objective: "ship it", success_criteria: ["tests pass", "docs written"] }),
  policy: new BudgetPolicy({}),
  status: "partial",
  halt_reason: "token limit reached: 2000000 of 2000000 tokens",
  usage: new BudgetUsage({ seconds: 12.5, tool_calls: 3, tokens: 2_000_000, dollars: 0.75, iterations: 4 }),
  criteria_met: [true, false],
  output: "half done",
  created_at: "2025-01-01T00:00:00.000Z",
  updated_at: "2025-01-01T00:10:00.000Z"
})

/** The sample as plain JSON, with one field changed. */
const sampleWith = (change: (json: Record<string, any>) => void): string => {
  const json = JSON.parse(encode(sample))
  change(json)
  return JSON.stringify(json)
}

describe("Checkpoint", () => {
  it.prop("decoding its encoded JSON gives back the same checkpoint", [checkpoint], ([c]) => {
    const json = encode(c)
    const decoded = decode(json)
    assert.isTrue(Either.isRight(decoded), json)
    assert.deepStrictEqual(Either.getOrThrow(decoded), c)
  }, { fastCheck: { numRuns: 300 } })

  it("round-trips a known checkpoint to the same fields", () => {
    const decoded = Either.getOrThrow(decode(encode(sample)))
    assert.deepStrictEqual(decoded, sample)
    assert.instanceOf(decoded.usage, BudgetUsage)
    assert.strictEqual(decoded.usage.tokens, 2_000_000)
  })

  it("fills policy defaults for caps missing from the JSON", () => {
    const decoded = decode(sampleWith((json) => {
      json.policy = {}
    }))
    assert.deepStrictEqual(Either.getOrThrow(decoded).policy, new BudgetPolicy({}))
  })

  it("rejects a negative usage", () => {
    assert.isTrue(Either.isLeft(decode(sampleWith((json) => {
      json.usage.tokens = -1
    }))))
  })

  it("rejects JSON missing a field", () => {
    for (const field of ["version", "run_id", "goal", "status", "usage", "criteria_met", "output", "updated_at"]) {
      assert.isTrue(Either.isLeft(decode(sampleWith((json) => {
        delete json[field]
      }))), field)
    }
  })

  it("rejects any version but 1", () => {
    for (const version of [0, 2, "1", null]) {
      assert.isTrue(Either.isLeft(decode(sampleWith((json) => {
        json.version = version
      }))), String(version))
    }
  })

  it("rejects an unknown status and text that is not JSON", () => {
    assert.isTrue(Either.isLeft(decode(sampleWith((json) => {
      json.status = "done"
    }))))
    assert.isTrue(Either.isLeft(decode(encode(sample).slice(0, -1))))
  })

  it("never writes a checkpoint it cannot read back, even with an infinite usage", () => {
    const written = Either.try(() =>
      encode(new Checkpoint({ ...sample, usage: new BudgetUsage({ ...BudgetUsage.zero, dollars: Infinity }) }))
    )
    if (Either.isRight(written)) assert.isTrue(Either.isRight(decode(written.right)), written.right)
  })
})
