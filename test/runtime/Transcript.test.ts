import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { type ChatMessage, Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import { messagesOf } from "../../src/runtime/Transcript.js"
import { StepStore } from "../../src/store/StepStore.js"
import { echo, environmentWith, goal, script } from "./fixtures.js"

/** The mock model, with every request it is sent written down. */
const recording = (sent: Array<LlmRequest>) =>
  Layer.effect(
    Llm,
    Effect.map(MockLlm.make(script([
      { content: "first answer", tool_calls: [{ name: "echo", arguments: { text: "hi" } }] },
      { content: "second answer" },
      { content: "third answer", criteria_met: [true, false, false] },
      { content: "fourth answer" }
    ])), (llm) => ({
      complete: (request: LlmRequest) => Effect.zipRight(Effect.sync(() => sent.push(request)), llm.complete(request)),
      stream: llm.stream
    }))
  )

describe("Transcript.messagesOf", () => {
  it.effect("rebuilds exactly the messages each step's model calls were sent, with each step's tool turns, across a resume", () =>
    Effect.gen(function*() {
      const sent: Array<LlmRequest> = []
      const llm = recording(sent)
      yield* Mission.run({ runId: "t", goal: goal(3), policy: { max_iterations: 3 }, historyWindow: 2 }).pipe(Effect.provide(llm))
      yield* Mission.run({ runId: "t", resume: true, policy: { max_iterations: 5 }, historyWindow: 2 }).pipe(Effect.provide(llm))

      const steps = yield* (yield* StepStore).recent("t", -1)
      assert.strictEqual(steps.length, 5)
      const rebuilt = messagesOf(goal(3), steps)
      const acts = sent.filter((r) => r.purpose === "act")
      const judges = sent.filter((r) => r.purpose === "judge")
      assert.strictEqual(acts.length, 5)
      rebuilt.forEach((step, i) => {
        assert.deepStrictEqual(step.act.slice(0, acts[i]!.messages.length), acts[i]!.messages)
        assert.deepStrictEqual(step.judge, judges[i]!.messages)
      })
      // Each step's act conversation ends with its own turn: the answer with its tool calls, one tool
      // message per call with the output, whole; a step that called no tool ends with its answer.
      const firstTurn: ReadonlyArray<ChatMessage> = [
        {
          role: "assistant",
          content: "first answer",
          tool_calls: [{ id: "call_0_0", type: "function", function: { name: "echo", arguments: "{\"text\":\"hi\"}" } }]
        },
        { role: "tool", tool_call_id: "call_0_0", content: "hi" }
      ]
      assert.deepStrictEqual(rebuilt[0]!.act.slice(acts[0]!.messages.length), firstTurn)
      assert.deepStrictEqual(rebuilt[1]!.act.slice(acts[1]!.messages.length), [{ role: "assistant", content: "second answer" }])
      // Iteration 2 was sent iteration 1's turn as real turns, between the context and the new prompt.
      assert.deepStrictEqual(acts[1]!.messages.map((m) => m.role), ["system", "user", "assistant", "tool", "user"])
      assert.deepStrictEqual(acts[1]!.messages.slice(2, 4), firstTurn)
      // The window is the run's own: iteration 4's prompt quotes iteration 2, replays 3, and leaves 1 out.
      const prompt = rebuilt[3]!.act.filter((m) => m.role === "user").map((m) => m.content).join("\n")
      assert.include(prompt, "### Iteration 2")
      assert.notInclude(prompt, "### Iteration 3")
      assert.include(prompt, "Your latest iteration (iteration 3) follows")
      assert.deepStrictEqual(rebuilt[3]!.act[2], { role: "assistant", content: "third answer" })
      assert.notInclude(prompt, "### Iteration 1")
    }).pipe(Effect.provide(environmentWith([echo]))))
})
