import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import * as FineTuneFormat from "../../src/curator/FineTuneFormat.js"
import type { ChatMessage } from "../../src/llm/Llm.js"

const weatherTool = {
  type: "function" as const,
  function: { name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }
}

const problem = (line: unknown) => Either.match(FineTuneFormat.checkLine(JSON.stringify(line)), { onLeft: (e) => e, onRight: () => "" })

describe("FineTuneFormat", () => {
  it("accepts OpenAI's own examples: plain chat, and a tool call with its result", () => {
    assert.strictEqual(problem({ messages: [{ role: "system", content: "s" }, { role: "user", content: "u" }, { role: "assistant", content: "a" }] }), "")
    assert.strictEqual(
      problem({
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
          { role: "tool", tool_call_id: "call_1", content: "sunny" },
          { role: "assistant", content: "Sunny." }
        ],
        tools: [weatherTool]
      }),
      ""
    )
  })

  it("refuses what an upload would refuse, naming the problem", () => {
    assert.include(problem({ messages: [{ role: "user", content: "u" }] }), "at least one assistant message")
    assert.include(problem({ messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }], metadata: {} }), "metadata")
    assert.include(problem({ messages: [{ role: "assistant", content: "a" }, { role: "tool", tool_call_id: "nope", content: "x" }] }), "follows no assistant turn with tool calls")
    assert.include(
      problem({ messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{not json" } }] }] }),
      "must be JSON text"
    )
    assert.include(problem({ messages: [{ role: "assistant", content: "" }] }), "content or tool_calls")
    assert.include(problem({ messages: [{ role: "robot", content: "x" }, { role: "assistant", content: "a" }] }), "messages")
    assert.isTrue(Either.isLeft(FineTuneFormat.checkLine("not json")))
  })

  it("holds tool turns to the rule a chat request is held to (Conversation.problemOf), yet a line may end on the calls it teaches", () => {
    const ask = (id: string) => ({ role: "assistant", tool_calls: [{ id, type: "function", function: { name: "get_weather", arguments: "{}" } }] })
    const answer = (id: string) => ({ role: "tool", tool_call_id: id, content: "sunny" })
    const user = { role: "user", content: "Weather?" }
    // OpenAI's own example ends on the call: the call is what the line teaches.
    assert.strictEqual(problem({ messages: [user, ask("c1")], tools: [weatherTool] }), "")
    // Each refused by OpenAI, each accepted by the copy of the rule this format kept before.
    assert.include(problem({ messages: [user, ask("c1"), user, answer("c1"), { role: "assistant", content: "a" }] }), "before every tool call of message 2 was answered")
    assert.include(problem({ messages: [user, ask("c1"), user, { role: "assistant", content: "a" }] }), "unanswered: c1")
    assert.include(problem({ messages: [user, ask("c1"), answer("c1"), user, answer("c1"), { role: "assistant", content: "a" }] }), "message 5 (tool) answers c1")
    assert.include(
      problem({ messages: [user, { ...ask("c1"), tool_calls: [...ask("c1").tool_calls, ...ask("c1").tool_calls] }, answer("c1"), answer("c1")] }),
      "two tool calls with one id"
    )
    // Only the last turn may stay open, and only when it is the last message.
    assert.include(problem({ messages: [user, ask("c1"), ask("c2")] }), "unanswered: c1")
  })

  it("writes a sample's tool turn in the format: JSON-text arguments, tool messages by id, tools at the top", () => {
    const messages: ReadonlyArray<ChatMessage> = [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
      { role: "tool", tool_call_id: "call_1", content: "sunny" }
    ]
    const line = Either.getOrThrow(FineTuneFormat.lineOf({ messages, tools: [weatherTool] }))
    assert.deepStrictEqual(JSON.parse(line), {
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
        { role: "tool", tool_call_id: "call_1", content: "sunny" }
      ],
      tools: [weatherTool]
    })
    assert.isTrue(Either.isRight(FineTuneFormat.checkLine(line)))
    assert.notProperty(JSON.parse(Either.getOrThrow(FineTuneFormat.lineOf({ messages: messages.slice(0, 1).concat({ role: "assistant", content: "x" }), tools: [] }))), "tools")
  })

  it.prop("every line it writes reads back as a valid line", [
    FastCheck.array(FastCheck.record({ user: FastCheck.string(), answer: FastCheck.string({ minLength: 1 }), calls: FastCheck.array(FastCheck.jsonValue(), { maxLength: 3 }) }), { minLength: 1, maxLength: 4 })
  ], ([turns]) => {
    const messages: Array<ChatMessage> = []
    turns.forEach((turn, t) => {
      const ids = turn.calls.map((_, i) => `call_${t}_${i}`)
      messages.push({ role: "user", content: turn.user })
      messages.push({
        role: "assistant",
        content: turn.answer,
        ...(turn.calls.length === 0 ? {} : { tool_calls: turn.calls.map((args, i) => ({ id: ids[i]!, type: "function" as const, function: { name: "f", arguments: JSON.stringify(args) } })) })
      })
      turn.calls.forEach((_, i) => messages.push({ role: "tool", tool_call_id: ids[i]!, content: "ok" }))
    })
    const line = FineTuneFormat.lineOf({ messages, tools: [] })
    assert.isTrue(Either.isRight(line))
    assert.isTrue(Either.isRight(FineTuneFormat.checkLine(Either.getOrThrow(line))))
  })
})
