import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
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
  it.effect("rebuilds exactly the messages each step's model calls were sent, across a resume", () =>
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
        assert.deepStrictEqual(step.act, [...acts[i]!.messages, { role: "assistant", content: steps[i]!.answer }])
        assert.deepStrictEqual(step.judge, judges[i]!.messages)
      })
      // The window is the run's own: iteration 4's prompt quotes iterations 2 and 3, not 1.
      const prompt = rebuilt[3]!.act[1]!.content
      assert.include(prompt, "### Iteration 3")
      assert.notInclude(prompt, "### Iteration 1")
    }).pipe(Effect.provide(environmentWith([echo]))))
})
