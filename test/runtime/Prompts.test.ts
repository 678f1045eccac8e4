import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option, Schema } from "effect"
import { BudgetUsage } from "../../src/domain/Budget.js"
import { Goal } from "../../src/domain/Goal.js"
import { Step } from "../../src/domain/Step.js"
import * as Conversation from "../../src/llm/Conversation.js"
import { actMessages, judgeMessages, parseVerdict, turnOf } from "../../src/runtime/Prompts.js"
import { messagesOf } from "../../src/runtime/Transcript.js"

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

  it("keeps a quoted answer of exactly the limit whole", () => {
    const answer = "b".repeat(1500)
    const messages = actMessages({ goal, iteration: 3, criteriaMet: [], history: [step(1, { answer }), step(2)] })
    assert.include(messages[1]!.content, `${answer}\nJudge:`)
    assert.notInclude(messages[1]!.content, "more characters]")
  })
})

const call = (id: string | undefined, name: string, args: unknown, output: string, ok = true) => ({
  ...(id === undefined ? {} : { id }),
  name,
  arguments: args,
  ok,
  output
})

describe("actMessages, replaying the latest iteration as real tool turns", () => {
  it("quotes the older iterations, replays the latest as its answer with its tool calls and one tool message per call, then asks for the next", () => {
    const messages = actMessages({
      goal,
      iteration: 3,
      criteriaMet: [true, false, false],
      history: [
        step(1),
        step(2, {
          answer: "",
          tool_calls: [call("call_a", "calculator", { expression: "2+2" }, "4"), call("call_b", "read_file", { path: "x.csv" }, "no such file", false)]
        })
      ],
      suggestions: ["test CRLF"]
    })
    assert.deepStrictEqual(messages.map((m) => m.role), ["system", "user", "assistant", "tool", "tool", "user"])
    const [, context, turn, first, second, next] = messages
    assert.include(context!.content, "1. [x] parses quoted fields")
    assert.include(context!.content, "Earlier iterations:\n\n### Iteration 1\nanswer 1\n")
    assert.notInclude(context!.content, "### Iteration 2")
    assert.match(context!.content, /Your latest iteration \(iteration 2\) follows: your answer and the results of the tools you called\.$/)
    assert.deepStrictEqual(turn, {
      role: "assistant",
      content: "",
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "calculator", arguments: "{\"expression\":\"2+2\"}" } },
        { id: "call_b", type: "function", function: { name: "read_file", arguments: "{\"path\":\"x.csv\"}" } }
      ]
    })
    assert.deepStrictEqual(first, { role: "tool", tool_call_id: "call_a", content: "4" })
    assert.deepStrictEqual(second, { role: "tool", tool_call_id: "call_b", content: "no such file" })
    assert.strictEqual(
      next!.content,
      "Judge on iteration 2: {\"criteria_met\":[true,false,false]}\n\nA reviewer of the latest iteration suggests:\n- test CRLF\n\nThis is iteration 3. Continue."
    )
    assert.isTrue(Option.isNone(Conversation.problemOf(messages)))
  })

  it("replays a latest iteration without tool calls as its answer alone, with no earlier iterations to quote", () => {
    const messages = actMessages({ goal, iteration: 2, criteriaMet: [], history: [step(1)] })
    assert.deepStrictEqual(messages.slice(2), [
      { role: "assistant", content: "answer 1" },
      { role: "user", content: "Judge on iteration 1: {\"criteria_met\":[true,false,false]}\n\nThis is iteration 2. Continue." }
    ])
    assert.notInclude(messages[1]!.content, "Earlier iterations")
    assert.match(messages[1]!.content, /follows: your answer\.$/)
  })

  it("clips the replayed answer, each tool output and over-long arguments, saying how much was cut; arguments stay JSON text", () => {
    const expression = "1+".repeat(5000) + "1"
    const messages = actMessages({
      goal,
      iteration: 2,
      criteriaMet: [],
      history: [step(1, {
        answer: "a".repeat(7000),
        tool_calls: [call("c1", "calculator", { expression }, "o".repeat(2500)), call("c2", "calculator", { expression: "6*7" }, "42")]
      })]
    })
    assert.strictEqual(messages[2]!.content, `${"a".repeat(6000)}… [1000 more characters]`)
    const [long, short] = messages[2]!.tool_calls!
    const whole = JSON.stringify({ expression })
    // One JSON string: the start of the arguments and how much of them was cut.
    assert.strictEqual(JSON.parse(long!.function.arguments), `${whole.slice(0, 2000)}… [${whole.length - 2000} more characters]`)
    assert.isBelow(long!.function.arguments.length, 2100)
    assert.deepStrictEqual(JSON.parse(short!.function.arguments), { expression: "6*7" })
    assert.strictEqual(messages[3]!.content, `${"o".repeat(2000)}… [500 more characters]`)
    assert.deepStrictEqual(Conversation.problemOf(messages), Option.none())
  })

  it.prop("replayed arguments are always JSON text, and bounded however large the call was", [fc.jsonValue({ maxDepth: 3 }), fc.integer({ min: 0, max: 10_000 })], ([args, pad]) => {
    const value = { args, pad: "x".repeat(pad) }
    const [, , replayed] = actMessages({ goal, iteration: 2, criteriaMet: [], history: [step(1, { tool_calls: [call("c1", "echo", value, "ok")] })] })
    const text = replayed!.tool_calls![0]!.function.arguments
    assert.doesNotThrow(() => JSON.parse(text))
    const sent = JSON.stringify(value)
    if (sent.length <= 2000) assert.strictEqual(text, sent)
    // Quoting again at most doubles the 2,000 characters kept.
    else assert.isAtMost(text.length, 2 * 2000 + 60)
  })

  it("the transcript and the curator share the turn builder: a step recorded without ids gets ids from their place, and malformed arguments travel as a JSON string", () => {
    const old = step(1, { tool_calls: [call(undefined, "calculator", "{\"expression\": \"6*", "invalid arguments", false)] })
    assert.deepStrictEqual(turnOf(old), [{ role: "assistant", content: "answer 1" }])
    assert.deepStrictEqual(turnOf(old, { placeIds: true }), [
      {
        role: "assistant",
        content: "answer 1",
        tool_calls: [{ id: "call_1_1", type: "function", function: { name: "calculator", arguments: JSON.stringify("{\"expression\": \"6*") } }]
      },
      { role: "tool", tool_call_id: "call_1_1", content: "invalid arguments" }
    ])
  })

  it("quotes a latest iteration recorded before call ids were kept with the rest, as prompts did before", () => {
    const messages = actMessages({
      goal,
      iteration: 3,
      criteriaMet: [],
      history: [step(1, { tool_calls: [call("c1", "calculator", {}, "1")] }), step(2, { tool_calls: [call(undefined, "calculator", {}, "2")] })]
    })
    assert.deepStrictEqual(messages.map((m) => m.role), ["system", "user"])
    assert.include(messages[1]!.content, "### Iteration 1\nanswer 1\nTool calculator({}) returned: 1")
    assert.include(messages[1]!.content, "### Iteration 2\nanswer 2\nTool calculator({}) returned: 2")
  })

  it("a step stored before call ids were kept still decodes, and its conversation is its answer, as before", () => {
    const stored = {
      iteration: 1,
      at: "2025-01-01T00:00:00.000Z",
      model: "gpt-4o-mini",
      answer: "used the calculator",
      tool_calls: [{ name: "calculator", arguments: { expression: "6*7" }, ok: true, output: "42" }],
      verdict: "ok",
      usage: { seconds: 1, tool_calls: 1, tokens: 10, dollars: 0, iterations: 1 },
      criteria_met: [false, false, false]
    }
    const old = Schema.decodeUnknownSync(Step)(stored)
    assert.isUndefined(old.tool_calls[0]!.id)
    const [rebuilt] = messagesOf(goal, [old])
    assert.deepStrictEqual(rebuilt!.act.at(-1), { role: "assistant", content: "used the calculator" })
    assert.include(rebuilt!.judge[1]!.content, "Tool result: calculator: 42")
    const next = actMessages({ goal, iteration: 2, criteriaMet: [], history: [old] })
    assert.deepStrictEqual(next.map((m) => m.role), ["system", "user"])
    assert.include(next[1]!.content, "Tool calculator({\"expression\":\"6*7\"}) returned: 42")
  })

  const callArbitrary = fc.record({
    name: fc.constantFrom("calculator", "read_file", "echo"),
    arguments: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    ok: fc.boolean(),
    output: fc.string({ maxLength: 30 })
  })
  const historyArbitrary = fc.array(
    fc.record({ answer: fc.string({ maxLength: 40 }), calls: fc.array(callArbitrary, { maxLength: 4 }), withIds: fc.boolean() }),
    { maxLength: 5 }
  ).map((steps) =>
    steps.map(({ answer, calls, withIds }, i) =>
      step(i + 1, { answer, tool_calls: calls.map((c, j) => (withIds ? { id: `call_${i + 1}_${j}`, ...c } : c)) })
    )
  )

  it.prop("every act conversation is one OpenAI accepts: each tool message answers a call of the assistant turn before it, every call is answered, and it ends asking", [historyArbitrary], ([history]) => {
    const messages = actMessages({ goal, iteration: history.length + 1, criteriaMet: [], history })
    assert.deepStrictEqual(Conversation.problemOf(messages), Option.none())
    assert.strictEqual(messages.at(-1)!.role, "user")
    const latest = history.at(-1)
    const replayed = latest !== undefined && latest.tool_calls.every((c) => c.id !== undefined)
    assert.strictEqual(messages.filter((m) => m.role === "tool").length, replayed ? latest.tool_calls.length : 0)
    // And each step's own conversation, with its turn, is one too.
    for (const rebuilt of messagesOf(goal, history)) assert.deepStrictEqual(Conversation.problemOf(rebuilt.act), Option.none())
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
