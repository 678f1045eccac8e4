import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"
import { BudgetUsage } from "../../src/domain/Budget.js"
import { Goal } from "../../src/domain/Goal.js"
import { Step } from "../../src/domain/Step.js"
import { actMessages, judgeMessages, parseVerdict } from "../../src/runtime/Prompts.js"

const goal = new Goal({
  objective: "Write a CSV parser",
  success_criteria: ["parses quoted fields", "handles CRLF line endings", "has unit tests"]
})

const step = (iteration: number, fields: Partial<Pick<Step, "answer" | "verdict" | "tool_calls">> = {}) =>
  new Step({
    iteration,
    at: "2025-01-01T00:00:00.000Z",
    model: "gpt-4o-mini",
    answer: `answer ${iteration}`,
    tool_calls: [],
    verdict: `{"criteria_met":[true,false,false]}`,
    usage: BudgetUsage.zero,
    criteria_met: [true, false, false],
    calls: [],
    ...fields
  })

const rejection = <A>(result: Either.Either<A, string>): string | undefined => Option.getOrUndefined(Either.getLeft(result))

const userPrompt = (options: Parameters<typeof actMessages>[0]): string => {
  const messages = actMessages(options)
  assert.deepStrictEqual(messages.map((m) => m.role), ["system", "user"])
  return messages[1]!.content
}

describe("parseVerdict", () => {
  it("accepts plain JSON", () => {
    assert.deepStrictEqual(
      Either.getOrThrow(parseVerdict(`{"criteria_met": [true, false], "notes": "half there"}`, 2)),
      { criteria_met: [true, false], notes: "half there" }
    )
  })

  it("accepts JSON inside a ```json fence, with prose around it", () => {
    const reply = "Here is my verdict:\n\n```json\n{\"criteria_met\": [false, true, true]}\n```\nThanks."
    assert.deepStrictEqual(Either.getOrThrow(parseVerdict(reply, 3)), { criteria_met: [false, true, true], notes: "" })
  })

  it("accepts JSON inside a bare ``` fence and surrounding whitespace", () => {
    assert.deepStrictEqual(
      Either.getOrThrow(parseVerdict("```\n{\"criteria_met\": [true]}\n```", 1)).criteria_met,
      [true]
    )
    assert.deepStrictEqual(Either.getOrThrow(parseVerdict("\n  {\"criteria_met\": []}  \n", 0)).criteria_met, [])
  })

  it("rejects prose, saying it is not a JSON verdict", () => {
    for (const reply of ["All three criteria are met.", "criteria_met: true, true", "", "```json\nyes\n```"]) {
      assert.match(rejection(parseVerdict(reply, 3)) ?? "accepted", /^judge reply is not a JSON verdict/, reply)
    }
  })

  it("rejects JSON that is not a verdict", () => {
    for (const reply of [`{"criteria_met": "yes"}`, `{"criteria_met": [1, 0]}`, `{"notes": "fine"}`, `[true, false]`]) {
      assert.isTrue(Either.isLeft(parseVerdict(reply, 2)), reply)
    }
  })

  it("rejects a criteria_met array of the wrong length, saying how many were expected", () => {
    assert.strictEqual(rejection(parseVerdict(`{"criteria_met": [true, true, false]}`, 2)), "judge reported 3 criteria, expected 2")
    assert.strictEqual(rejection(parseVerdict("```json\n{\"criteria_met\": [true]}\n```", 4)), "judge reported 1 criteria, expected 4")
  })

  it.prop("reads back any verdict it is given as JSON, fenced or not", [
    fc.array(fc.boolean(), { maxLength: 12 }),
    fc.string(),
    fc.boolean()
  ], ([met, notes, fenced]) => {
    const json = JSON.stringify({ criteria_met: met, notes })
    fc.pre(!json.includes("```"))
    const reply = fenced ? `\`\`\`json\n${json}\n\`\`\`` : json
    assert.deepStrictEqual(Either.getOrThrow(parseVerdict(reply, met.length)), { criteria_met: met, notes })
  })
})

describe("actMessages", () => {
  it("states the objective, every criterion with its mark, and the iteration number", () => {
    const prompt = userPrompt({ goal, iteration: 7, criteriaMet: [true, false, true], history: [] })
    assert.include(prompt, "Objective: Write a CSV parser")
    assert.include(prompt, "1. [x] parses quoted fields\n2. [ ] handles CRLF line endings\n3. [x] has unit tests")
    assert.include(prompt, "This is iteration 7.")
    assert.include(prompt, "No earlier iterations.")
  })

  it("marks criteria it has no verdict for as not met", () => {
    const prompt = userPrompt({ goal, iteration: 1, criteriaMet: [], history: [] })
    assert.include(prompt, "1. [ ] parses quoted fields\n2. [ ] handles CRLF line endings\n3. [ ] has unit tests")
    assert.notMatch(prompt, /^\d+\. \[x\]/m)
  })

  it("quotes each earlier iteration with its answer, tool calls and verdict", () => {
    const prompt = userPrompt({
      goal,
      iteration: 3,
      criteriaMet: [true, false, false],
      history: [
        step(1),
        step(2, { tool_calls: [{ name: "calculator", arguments: { expression: "2+2" }, ok: true, output: "4" }] })
      ]
    })
    assert.include(prompt, "### Iteration 1\nanswer 1\n")
    assert.include(prompt, "### Iteration 2\nanswer 2\nTool calculator({\"expression\":\"2+2\"}) returned: 4\n")
    assert.include(prompt, "Judge: {\"criteria_met\":[true,false,false]}")
    assert.notInclude(prompt, "No earlier iterations.")
  })

  it("clips long answers, tool output and verdicts, saying how much was cut", () => {
    const answer = "a".repeat(2000)
    const output = "o".repeat(900)
    const verdict = "v".repeat(350)
    const prompt = userPrompt({
      goal,
      iteration: 2,
      criteriaMet: [],
      history: [step(1, { answer, verdict, tool_calls: [{ name: "read_file", arguments: {}, ok: false, output }] })]
    })
    assert.include(prompt, `${"a".repeat(1500)}… [500 more characters]`)
    assert.notInclude(prompt, "a".repeat(1501))
    assert.include(prompt, `failed: ${"o".repeat(500)}… [400 more characters]`)
    assert.notInclude(prompt, "o".repeat(501))
    assert.include(prompt, `Judge: ${"v".repeat(300)}… [50 more characters]`)
    assert.notInclude(prompt, "v".repeat(301))
  })

  it("keeps an answer of exactly the limit whole", () => {
    const answer = "b".repeat(1500)
    const prompt = userPrompt({ goal, iteration: 2, criteriaMet: [], history: [step(1, { answer })] })
    assert.include(prompt, `${answer}\nJudge:`)
    assert.notInclude(prompt, "more characters]")
  })
})

describe("judgeMessages", () => {
  it("asks for JSON and shows the criteria, the latest work and clipped tool results", () => {
    const messages = judgeMessages({
      goal,
      criteriaMet: [false, true, false],
      answer: "work",
      toolResults: ["ok", "r".repeat(1200)]
    })
    assert.include(messages[0]!.content, "Reply with JSON only")
    const prompt = messages[1]!.content
    assert.include(prompt, "1. [ ] parses quoted fields\n2. [x] handles CRLF line endings\n3. [ ] has unit tests")
    assert.include(prompt, "Latest work:\nwork\nTool result: ok\n")
    assert.include(prompt, `Tool result: ${"r".repeat(1000)}… [200 more characters]`)
  })
})
