import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import { instanceOf } from "../../src/llm/MockJson.js"
import { check, instruction, problemOf } from "../../src/missions/OutputSchema.js"
import * as BuiltIn from "../../src/routing/BuiltIn.js"
import supportTriage from "../../src/routing/catalog/support_triage.json" with { type: "json" }

type JsonSchema = Record<string, unknown>

/** Every output_schema of every built-in blueprint, named `<blueprint>.<node>`. */
const builtInSchemas: ReadonlyArray<readonly [string, JsonSchema]> = BuiltIn.files.flatMap(([file, content]) =>
  (content as { graph: { nodes: ReadonlyArray<{ id: string; output_schema?: JsonSchema }> } }).graph.nodes.flatMap((node) =>
    node.output_schema === undefined ? [] : [[`${file.replace(/\.json$/, "")}.${node.id}`, node.output_schema] as const]
  )
)

const classify = supportTriage.graph.nodes.find((node) => node.id === "classify")!.output_schema as JsonSchema

const ticket = {
  severity: "high",
  category: "outage",
  summary: "The dashboard is down for every user.",
  needs_engineering: true,
  reason: "Every user is blocked."
}

const right = (result: Either.Either<unknown, string>) => {
  if (Either.isLeft(result)) return assert.fail(`expected a match, got: ${result.left}`)
  return result.right
}
const left = (result: Either.Either<unknown, string>) => {
  if (Either.isRight(result)) return assert.fail(`expected a mismatch, got ${JSON.stringify(result.right)}`)
  return result.left
}

describe("OutputSchema", () => {
  it("the built-in catalog has output schemas to check against, and each compiles", () => {
    assert.isAbove(builtInSchemas.length, 10)
    for (const [name, schema] of builtInSchemas) assert.isUndefined(problemOf(schema), name)
  })

  describe("check, over support_triage's classify schema", () => {
    it("returns the decoded value of a valid answer", () => {
      assert.deepStrictEqual(right(check(classify, JSON.stringify(ticket))), ticket)
    })

    it("reads an answer in a ```json fence, with whitespace around it", () => {
      assert.deepStrictEqual(right(check(classify, `\n  \`\`\`json\n${JSON.stringify(ticket, null, 2)}\n\`\`\`\n`)), ticket)
    })

    it("reads the one JSON object out of a line of prose before and after it", () => {
      const answer = `Here is the triage:\n${JSON.stringify(ticket)}\nLet me know if you need more.`
      assert.deepStrictEqual(right(check(classify, answer)), ticket)
    })

    it("names an enum mismatch with its place and the allowed values", () => {
      assert.strictEqual(
        left(check(classify, JSON.stringify({ ...ticket, severity: "urgent" }))),
        "/severity must be equal to one of the allowed values (low, medium, high, critical)"
      )
    })

    it("names every problem at once: a missing required property and a wrong type", () => {
      const { summary: _, ...withoutSummary } = ticket
      assert.strictEqual(
        left(check(classify, JSON.stringify({ ...withoutSummary, needs_engineering: "yes" }))),
        "/summary is required; /needs_engineering must be boolean"
      )
    })

    it("says an answer that is not JSON is not, and an empty answer is empty", () => {
      assert.match(left(check(classify, "The ticket is high severity, an outage.")), /^the answer is not JSON \(.+\)$/)
      assert.strictEqual(left(check(classify, "  \n")), "the answer is empty, where one JSON value was asked for")
    })

    it("says a JSON value of the wrong kind is one", () => {
      assert.strictEqual(left(check(classify, "[1, 2]")), "the answer must be object")
    })
  })

  it("problemOf names what makes a schema unusable", () => {
    assert.isUndefined(problemOf(classify))
    assert.match(problemOf({ type: "cron" }) ?? "", /^is not a valid JSON Schema: .*type/)
    assert.match(left(check({ type: "cron" }, "{}")), /^the output schema is not a valid JSON Schema/)
  })

  it("schemas with the same $id do not clash", () => {
    const a = { $id: "https://example.com/out", type: "object", required: ["a"] }
    const b = { $id: "https://example.com/out", type: "object", required: ["b"] }
    assert.deepStrictEqual(right(check(a, `{"a": 1}`)), { a: 1 })
    assert.deepStrictEqual(right(check(b, `{"b": 1}`)), { b: 1 })
    assert.strictEqual(left(check(b, `{"a": 1}`)), "/b is required")
  })

  it("instruction quotes the schema and asks for nothing but the object", () => {
    const text = instruction(classify)
    assert.isTrue(text.startsWith("Answer with only one JSON object that matches this JSON Schema, with no prose and no code fence: "))
    assert.isTrue(text.endsWith(JSON.stringify(classify)))
  })

  /** How models wrap the one value they were asked for. */
  const wrapped = fc.constantFrom(
    (json: string) => json,
    (json: string) => `  ${json}\n`,
    (json: string) => `\`\`\`json\n${json}\n\`\`\``,
    (json: string) => `\`\`\`\n${json}\n\`\`\``,
    (json: string) => `Here is the result:\n${json}`,
    (json: string) => `${json}\nHope this helps.`
  )

  it.prop(
    "whatever built-in output_schema it is, the mock's instance of it passes check, however the model wraps it",
    [fc.constantFrom(...builtInSchemas), wrapped, fc.boolean()],
    ([[name, schema], wrap, pretty]) => {
      const instance = instanceOf(schema)
      const answer = wrap(pretty ? JSON.stringify(instance, null, 2) : JSON.stringify(instance))
      const result = check(schema, answer)
      assert.isTrue(Either.isRight(result), `${name}: ${Either.isLeft(result) ? result.left : ""}`)
      assert.deepStrictEqual(Either.getOrThrow(result), instance)
    }
  )
})
