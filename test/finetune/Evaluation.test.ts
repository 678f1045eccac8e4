import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Option, Ref, TestClock } from "effect"
import { LlmError } from "../../src/domain/Errors.js"
import * as Evaluation from "../../src/finetune/Evaluation.js"
import { verdictOf } from "../../src/finetune/EvaluationReport.js"
import type { Llm, LlmRequest } from "../../src/llm/Llm.js"

const line = JSON.stringify({
  messages: [
    { role: "system", content: "You are careful." },
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "calculator", arguments: "{\"expression\":\"2+2\"}" } }], weight: 0 },
    { role: "tool", tool_call_id: "c1", content: "4" },
    { role: "assistant", content: "It is 4." }
  ],
  tools: [{ type: "function", function: { name: "calculator", description: "Adds", parameters: { type: "object" } } }]
})

/** A model whose answers the test scripts per call: an error, or text. */
const scripted = (answers: ReadonlyArray<LlmError | string>, model = "gpt-4o") =>
  Effect.map(Ref.make(0), (calls): Llm["Type"] & { readonly calls: Ref.Ref<number> } => ({
    calls,
    complete: (request: LlmRequest) =>
      Effect.flatMap(Ref.getAndUpdate(calls, (n) => n + 1), (n) => {
        const answer = answers[Math.min(n, answers.length - 1)]!
        return typeof answer === "string"
          ? Effect.succeed({ content: answer, tool_calls: [], usage: { input_tokens: 1000, output_tokens: 100 }, model: request.model ?? model })
          : Effect.fail(answer)
      }),
    stream: () => {
      throw new Error("not used")
    }
  }))

const judgeSaying = (pass: boolean) => scripted([`Sure.\n\`\`\`json\n{"pass": ${pass}, "reason": "ok"}\n\`\`\``])

describe("Evaluation", () => {
  it("a line is a case: everything before its last assistant turn is asked, that turn is the accepted answer", () => {
    const c = Either.getOrThrow(Evaluation.caseOf(line))
    assert.deepStrictEqual(c.prompt.map((m) => m.role), ["system", "user", "assistant", "tool"])
    assert.deepStrictEqual(c.prompt[2]!.tool_calls?.[0]?.function.name, "calculator")
    assert.strictEqual(c.prompt[2]!.content, "")
    assert.deepStrictEqual(c.reference, { role: "assistant", content: "It is 4." })
    assert.deepStrictEqual(c.tools, [{ name: "calculator", description: "Adds", parameters: { type: "object" } }])
    assert.isTrue(Either.isLeft(Evaluation.caseOf("{not json")))
    assert.isTrue(Either.isLeft(Evaluation.caseOf(JSON.stringify({ messages: [{ role: "assistant", content: "alone" }] }))))
  })

  it("the judge's verdict is the first JSON object of its reply; anything else is not a pass", () => {
    assert.deepStrictEqual(Evaluation.gradeOf("{\"pass\": true}"), Option.some(true))
    assert.deepStrictEqual(Evaluation.gradeOf("Verdict: {\"pass\": false, \"reason\": \"wrong\"} done"), Option.some(false))
    for (const reply of ["yes", "{\"pass\": \"yes\"}", "{}", "} {"]) assert.isTrue(Option.isNone(Evaluation.gradeOf(reply)), reply)
  })

  it.effect("a transient failure is waited out on the Clock; one that stays is a failed replay, not a failed evaluation", () =>
    Effect.gen(function*() {
      const c = Either.getOrThrow(Evaluation.caseOf(line))
      const flaky = yield* scripted([new LlmError({ message: "429", transient: true }), "It is 4."])
      const fiber = yield* Effect.fork(Evaluation.replay({ cases: [c], model: "ft:gpt-4o-mini:x", replayWith: flaky, judge: yield* judgeSaying(true), id: "eval-1" }))
      yield* TestClock.adjust("1 minute")
      const [passed] = yield* Fiber.join(fiber)
      assert.deepInclude(passed, { model: "ft:gpt-4o-mini:x", passed: true })
      assert.isUndefined(passed!.error)
      assert.strictEqual(yield* Ref.get(flaky.calls), 2)

      const broken = yield* scripted([new LlmError({ message: "model not found", transient: false })])
      const [failed] = yield* Evaluation.replay({ cases: [c], model: "ft:gone", replayWith: broken, judge: yield* judgeSaying(true), id: "eval-2" })
      assert.deepInclude(failed, { passed: false, error: "model not found", cost_usd: null })
      const score = Evaluation.scoreOf("ft:gone", [failed!])
      assert.deepInclude(score, { model: "ft:gone", samples: 1, passed: 0, errors: 1, cost_per_step_usd: null })
    }))

  it.effect("costs are the provider's price for the usage; a model without one has no cost per step", () =>
    Effect.gen(function*() {
      const c = Either.getOrThrow(Evaluation.caseOf(line))
      const judge = yield* judgeSaying(false)
      const priced = yield* Evaluation.replay({ cases: [c, c], model: "gpt-4o", replayWith: yield* scripted(["It is 4."]), judge, id: "e" })
      const score = Evaluation.scoreOf("gpt-4o", priced)
      // 1,000 tokens in at $2.50 a million, 100 out at $10.
      assert.deepInclude(score, { samples: 2, passed: 0, pass_rate: 0, cost_per_step_usd: 0.0035, errors: 0 })
      const unpriced = yield* Evaluation.replay({ cases: [c], model: "my-lora", replayWith: yield* scripted(["It is 4."]), judge, id: "e" })
      assert.isNull(Evaluation.scoreOf("my-lora", unpriced).cost_per_step_usd)
    }))

  it("the rule: within the tolerance and cheaper is promotable; exactly at the floor passes, a hair under does not", () => {
    const score = (pass_rate: number, cost: number | null, model = "m") => ({
      model,
      samples: 50,
      passed: Math.round(pass_rate * 50),
      pass_rate,
      cost_per_step_usd: cost,
      latency_per_step_ms: 0,
      errors: 0,
      first_error: null
    })
    const scope = "specialist:coder"
    assert.strictEqual(verdictOf({ candidate: score(0.88, 0.001), baseline: score(0.9, 0.01), scope }, 2).verdict, "promotable")
    assert.strictEqual(verdictOf({ candidate: score(0.8799, 0.001), baseline: score(0.9, 0.01), scope }, 2).verdict, "candidate")
    assert.strictEqual(verdictOf({ candidate: score(0.95, 0.01), baseline: score(0.9, 0.01), scope }, 2).reason, "it costs $0.0100 a step, not less than the baseline's $0.0100")
    assert.strictEqual(verdictOf({ candidate: score(0.95, null, "lora"), baseline: score(0.9, 0.01), scope }, 2).reason, "lora has no price, so it cannot be shown to cost less")
    assert.strictEqual(verdictOf({ candidate: score(0.88, 0.001), baseline: score(0.9, 0.01), scope }, 0).verdict, "candidate")
    assert.strictEqual(verdictOf({ candidate: { ...score(0, 0), samples: 0 }, baseline: score(0, 0), scope }, 2).reason, "the dataset's evaluation split is empty: nothing to compare on")
    // A failed replay on either side proves nothing, however the rest went: a baseline down would flatter the candidate.
    const down = { ...score(0.5, 0.01, "gpt-4o"), errors: 3, first_error: "connection refused" }
    assert.strictEqual(
      verdictOf({ candidate: score(0.95, 0.001), baseline: down, scope }, 2).reason,
      "3 of 50 replays on gpt-4o failed (connection refused): evaluate it again once it answers"
    )
    assert.strictEqual(verdictOf({ candidate: { ...score(0.95, 0.001), errors: 1 }, baseline: score(0.9, 0.01), scope }, 2).verdict, "candidate")
  })
})
