import { assert, describe, it } from "@effect/vitest"
import { Either, Option, Schema } from "effect"
import * as Capture from "../../src/curator/Capture.js"
import * as FineTuneFormat from "../../src/curator/FineTuneFormat.js"
import { BudgetUsage } from "../../src/domain/Budget.js"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { Step } from "../../src/domain/Step.js"
import * as Conversation from "../../src/llm/Conversation.js"
import { actMessages, turnOf } from "../../src/runtime/Prompts.js"
import { earlierCheckpoint } from "../runtime/fixtures.js"

const checkpoint = Schema.decodeUnknownSync(Checkpoint)({
  ...earlierCheckpoint,
  run_id: "r",
  status: "completed",
  goal: { objective: "Compute things", success_criteria: ["first", "second"] },
  criteria_met: [true, true]
})

const step = (iteration: number, criteria: ReadonlyArray<boolean>, toolCalls: Step["tool_calls"]) =>
  new Step({
    iteration,
    at: "2025-01-01T00:00:00.000Z",
    model: "gpt-4o-mini",
    answer: `answer ${iteration}`,
    tool_calls: toolCalls,
    verdict: "ok",
    usage: BudgetUsage.zero,
    criteria_met: criteria,
    calls: []
  })

const origin = { source: "run", run_status: "completed", captured_at: "2025-01-01T00:00:00.000Z" } as const

describe("Capture.samplesOf", () => {
  it("a sample is the conversation the prompts built: the replayed turn clipped as it was sent, its own turn from the same builder", () => {
    const huge = { text: "x".repeat(10_000) }
    const steps = [
      step(1, [true, false], [{ id: "c1", name: "echo", arguments: huge, ok: true, output: "done" }]),
      step(2, [true, true], [{ id: "c2", name: "echo", arguments: { text: "hi" }, ok: true, output: "hi" }])
    ]
    const [first, second] = Capture.samplesOf(checkpoint, steps, [], origin)
    const sent = actMessages({ goal: checkpoint.goal, iteration: 2, criteriaMet: steps[0]!.criteria_met, history: [steps[0]!] })
    assert.deepStrictEqual(second!.messages, [...sent, ...turnOf(steps[1]!)])
    // The replayed arguments are clipped in the sample as in the prompt; the sample's own turn is whole.
    assert.isBelow(second!.messages[2]!.tool_calls![0]!.function.arguments.length, 2_100)
    assert.deepStrictEqual(JSON.parse(first!.messages.at(-2)!.tool_calls![0]!.function.arguments), huge)
    for (const sample of [first!, second!]) assert.isTrue(Either.isRight(FineTuneFormat.lineOf(sample)))
  })

  it("a step recorded before call ids were kept is learned with ids from their place, and malformed arguments as the JSON string they were sent as", () => {
    const malformed = "{\"text\": \"unterminated"
    const old = step(1, [true, false], [{ name: "echo", arguments: malformed, ok: false, output: "invalid arguments" }])
    const [sample] = Capture.samplesOf(checkpoint, [old], [], origin)
    assert.deepStrictEqual(sample!.messages.slice(-2), turnOf(old, { placeIds: true }))
    assert.deepStrictEqual(sample!.messages.at(-2)!.tool_calls, [
      { id: "call_1_1", type: "function", function: { name: "echo", arguments: JSON.stringify(malformed) } }
    ])
    assert.deepStrictEqual(Conversation.problemOf(sample!.messages), Option.none())
    assert.isTrue(Either.isRight(FineTuneFormat.lineOf(sample!)))
  })
})
