import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import * as Conversation from "../../src/llm/Conversation.js"
import type { ChatMessage } from "../../src/llm/Llm.js"

const user: ChatMessage = { role: "user", content: "add them up" }
const calls = (...ids: ReadonlyArray<string>): ChatMessage => ({
  role: "assistant",
  content: "",
  tool_calls: ids.map((id) => ({ id, type: "function", function: { name: "calculator", arguments: "{\"expression\":\"1+1\"}" } }))
})
const result = (id: string): ChatMessage => ({ role: "tool", tool_call_id: id, content: "2" })

const problem = (messages: ReadonlyArray<ChatMessage>) => Option.getOrElse(Conversation.problemOf(messages), () => "accepted")

describe("Conversation.problemOf", () => {
  it("accepts plain turns, and tool turns whose calls are each answered once, in any order, before the next message", () => {
    assert.strictEqual(problem([{ role: "system", content: "s" }, user, { role: "assistant", content: "ok" }]), "accepted")
    assert.strictEqual(problem([user, calls("a", "b"), result("b"), result("a"), user, calls("a"), result("a")]), "accepted")
  })

  it("names a tool message that answers no call of the assistant turn before it", () => {
    assert.strictEqual(problem([user, result("a")]), "message 2 (tool) answers a, but follows no assistant turn with tool calls")
    assert.strictEqual(
      problem([user, calls("a"), result("b")]),
      "message 3 (tool) answers b, which is not an unanswered call of the assistant turn before it (message 2)"
    )
    assert.strictEqual(
      problem([user, calls("a"), result("a"), result("a")]),
      "message 4 (tool) answers a, which is not an unanswered call of the assistant turn before it (message 2)"
    )
    // A call of an earlier assistant turn cannot be answered after another message.
    assert.strictEqual(problem([user, calls("a"), result("a"), user, result("a")]), "message 5 (tool) answers a, but follows no assistant turn with tool calls")
  })

  it("names a call left unanswered, before the next message or at the end", () => {
    assert.strictEqual(problem([user, calls("a", "b"), result("a"), user]), "message 4 (user) comes before every tool call of message 2 was answered (unanswered: b)")
    assert.strictEqual(problem([user, calls("a")]), "the conversation ends before every tool call of message 2 was answered (unanswered: a)")
  })

  it("with openEnd (a fine-tuning line), the last message may be a turn whose calls are not answered yet; nothing else is let through", () => {
    const open = (messages: ReadonlyArray<ChatMessage>) => Option.getOrElse(Conversation.problemOf(messages, { openEnd: true }), () => "accepted")
    assert.strictEqual(open([user, calls("a", "b")]), "accepted")
    assert.strictEqual(open([user, calls("a", "b"), result("a")]), "the conversation ends before every tool call of message 2 was answered (unanswered: b)")
    assert.strictEqual(open([user, calls("a"), user]), "message 3 (user) comes before every tool call of message 2 was answered (unanswered: a)")
  })

  it("names a tool message without an id, ids on the wrong roles, and ids that cannot be told apart", () => {
    assert.strictEqual(problem([user, calls("a"), { role: "tool", content: "2" }]), "message 3 (tool) has no tool_call_id; a tool message answers one call by its id")
    assert.strictEqual(problem([{ ...user, tool_call_id: "a" }]), "message 1 (user) carries a tool_call_id; only a tool message may")
    assert.strictEqual(problem([{ ...user, tool_calls: calls("a").tool_calls! }]), "message 1 (user) carries tool_calls; only an assistant turn may")
    assert.strictEqual(problem([user, calls("a", "a")]), "message 2 (assistant) makes two tool calls with one id")
    assert.strictEqual(problem([user, calls("")]), "message 2 (assistant) makes a tool call with an empty id")
  })
})
