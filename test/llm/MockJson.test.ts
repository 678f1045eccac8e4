import { assert, describe, it } from "@effect/vitest"
import { instanceOf } from "../../src/llm/MockJson.js"

describe("MockJson.instanceOf", () => {
  it("fills every listed property and every required one, naming strings after their property", () => {
    assert.deepStrictEqual(
      instanceOf({
        type: "object",
        properties: { summary: { type: "string", description: "one line" }, urgent: { type: "boolean" }, note: {} },
        required: ["summary", "owner"]
      }),
      { summary: "mock summary", urgent: true, note: "mock note", owner: "mock owner" }
    )
  })

  it("takes the first enum value and the const", () => {
    assert.strictEqual(instanceOf({ type: "string", enum: ["low", "high"] }), "low")
    assert.strictEqual(instanceOf({ const: 42 }), 42)
  })

  it("keeps numbers within their bounds: the minimum, else 1 when allowed, else the maximum", () => {
    assert.strictEqual(instanceOf({ type: "integer", minimum: 0, maximum: 100 }), 0)
    assert.strictEqual(instanceOf({ type: "integer", exclusiveMinimum: 5 }), 6)
    assert.strictEqual(instanceOf({ type: "integer" }), 1)
    assert.strictEqual(instanceOf({ type: "integer", maximum: -3 }), -3)
    assert.strictEqual(instanceOf({ type: "number", minimum: 0.5 }), 0.5)
  })

  it("gives an array one item, or its minItems of distinct ones, and nests objects", () => {
    assert.deepStrictEqual(
      instanceOf({ type: "object", properties: { findings: { type: "array", items: { type: "object", properties: { line: { type: "integer" } } } } } }),
      { findings: [{ line: 1 }] }
    )
    assert.deepStrictEqual(instanceOf({ type: "array", items: { type: "string" }, minItems: 2, uniqueItems: true }, "tags"), ["mock tags", "mock tags 2"])
    assert.deepStrictEqual(instanceOf({ type: "array", maxItems: 0 }), [])
  })

  it("honours string lengths, nullable types, and the first of anyOf; merges allOf", () => {
    assert.strictEqual(instanceOf({ type: "string", maxLength: 4 }, "summary"), "mock")
    assert.strictEqual((instanceOf({ type: "string", minLength: 20 }, "x") as string).length, 20)
    assert.strictEqual(instanceOf({ type: ["null", "integer"] }), 1)
    assert.strictEqual(instanceOf({ anyOf: [{ type: "boolean" }, { type: "string" }] }), true)
    assert.deepStrictEqual(
      instanceOf({ allOf: [{ type: "object", properties: { a: { type: "integer" } } }, { required: ["b"], properties: { b: { type: "boolean" } } }] }),
      { a: 1, b: true }
    )
  })
})
