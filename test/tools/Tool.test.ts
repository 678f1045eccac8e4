import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Tool from "../../src/tools/Tool.js"

const chatty = Tool.make({
  name: "chatty",
  description: "says a lot",
  parameters: Schema.Struct({ size: Schema.Number }),
  handler: ({ size }) => Effect.succeed("x".repeat(size))
})

const throwing = Tool.make({
  name: "throwing",
  description: "a bad tool",
  parameters: Schema.Struct({}),
  handler: () => Effect.sync(() => { throw new Error("boom") })
})

describe("Toolkit", () => {
  const toolkit = Tool.Toolkit.make([chatty, throwing])

  it.effect("caps what a tool returns, saying how much was cut", () =>
    Effect.gen(function*() {
      const small = yield* toolkit.call("chatty", { size: Tool.maxOutputChars })
      assert.strictEqual(small.output.length, Tool.maxOutputChars)
      const big = yield* toolkit.call("chatty", { size: Tool.maxOutputChars + 500 })
      assert.isTrue(big.ok)
      assert.isTrue(big.output.startsWith("x".repeat(Tool.maxOutputChars)))
      assert.isTrue(big.output.endsWith("[truncated: 500 more characters]"))
    }))

  it.effect("a handler that throws gives an error result, not a crash", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* toolkit.call("throwing", {}), { ok: false, output: "boom" })
    }))

  it.effect("describes each tool to the model with a JSON Schema of its arguments", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(toolkit.specs.map((s) => s.name), ["chatty", "throwing"])
      assert.deepStrictEqual((toolkit.specs[0]!.parameters as { required: Array<string> }).required, ["size"])
    }))
})
