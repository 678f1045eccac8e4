import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { LlmError } from "../../src/domain/Errors.js"
import { type Attempt, defaultPolicy, type FailureClass, HealingPolicy } from "../../src/domain/Healing.js"
import type { ToolCallRecord } from "../../src/domain/Step.js"
import { backoffDelay, classify, type Decision, decide, NodeFailure } from "../../src/missions/Healing.js"

const modelFailed = (node: string, fields: ConstructorParameters<typeof LlmError>[0]) => NodeFailure.ModelFailed({ node, error: new LlmError(fields) })
const toolCall = (name: string, ok: boolean, output: string): ToolCallRecord => ({ name, arguments: {}, ok, output })
const badOutput = (node: string) => NodeFailure.InvalidOutput({ node, error: `severity: is missing; the output must be {severity, category}` })

/** Decides, and when the decision is a retry, appends its attempt to the history, as the driver will. */
const run = (policy: HealingPolicy, failures: ReadonlyArray<NodeFailure>) => {
  const history: Array<Attempt> = []
  const decisions: Array<Decision> = []
  for (const failure of failures) {
    const decision = decide(policy, history, failure)
    decisions.push(decision)
    if (decision._tag === "Retry") history.push({ node: failure.node, attempt: decision.attempt, class: decision.class, adjustment: decision.adjustment })
  }
  return { history, decisions }
}

const retry = (decision: Decision | undefined) => {
  if (decision?._tag !== "Retry") return assert.fail(`expected a retry, got ${JSON.stringify(decision)}`)
  return decision
}
const giveUp = (decision: Decision | undefined) => {
  if (decision?._tag !== "GiveUp") return assert.fail(`expected a give-up, got ${JSON.stringify(decision)}`)
  return decision.reason
}

describe("Healing.classify", () => {
  it("a provider's 5xx after the runtime's retries is transient", () => {
    assert.strictEqual(classify(modelFailed("plan", { message: "model gpt-4o at openai: 503 upstream connect error", transient: true })), "transient")
    assert.strictEqual(classify(modelFailed("plan", { message: "model gpt-4o at openai: the stream ended before the answer did", transient: true })), "transient")
  })

  it("a rate limit by its Retry-After, its 429 or its words", () => {
    assert.strictEqual(classify(modelFailed("plan", { message: "model gpt-4o at openai: slow down", transient: true, retry_after_ms: 2000 })), "rate_limit")
    assert.strictEqual(classify(modelFailed("plan", { message: "model gpt-4o at openai: 429 Too Many Requests", transient: true })), "rate_limit")
    assert.strictEqual(classify(modelFailed("plan", { message: "Rate limit reached for gpt-4o in organization org-x", transient: true })), "rate_limit")
  })

  it("a timeout, from the model call's message or the node's own clock", () => {
    assert.strictEqual(classify(modelFailed("plan", { message: "model gpt-4o at openai: request timed out", transient: true })), "timeout")
    assert.strictEqual(classify(NodeFailure.TimedOut({ node: "plan", after_ms: 120_000 })), "timeout")
  })

  it("a permanent model error or a proxy's spent budget is not healed", () => {
    assert.isUndefined(classify(modelFailed("plan", { message: "model gpt-4o at openai: 401 Incorrect API key provided", transient: false })))
    assert.isUndefined(classify(modelFailed("plan", { message: "429 budget exceeded", transient: false, budget_exhausted: true })))
  })

  it("an answer that fails its output Schema is a schema violation", () => {
    assert.strictEqual(classify(badOutput("classify")), "schema_violation")
  })

  it("an empty answer or a short refusal is an empty answer; a long answer that mentions not being able to is an answer", () => {
    for (const answer of ["", "  \n ", "I'm sorry, but I can't help with that.", "I cannot assist with this request.", "Sorry, I can't do that."]) {
      assert.strictEqual(classify(NodeFailure.Answered({ node: "write", answer })), "empty_answer", JSON.stringify(answer))
    }
    assert.isUndefined(classify(NodeFailure.Answered({ node: "write", answer: "The report: revenue grew 4%." })))
    assert.isUndefined(classify(NodeFailure.Answered({ node: "write", answer: `I can't help noticing the trend. ${"Details follow. ".repeat(30)}` })))
  })

  it("a spend above k times the estimate is a cost spike; at k times it is not", () => {
    assert.strictEqual(classify(NodeFailure.Spent({ node: "write", cost_usd: 0.31, estimate_usd: 0.1 })), "cost_spike")
    assert.isUndefined(classify(NodeFailure.Spent({ node: "write", cost_usd: 0.3, estimate_usd: 0.1 })))
    const lenient = Schema.decodeSync(HealingPolicy)({ cost_spike_factor: 5 })
    assert.isUndefined(classify(NodeFailure.Spent({ node: "write", cost_usd: 0.31, estimate_usd: 0.1 }), lenient))
    assert.isUndefined(classify(NodeFailure.Spent({ node: "write", cost_usd: 0.31, estimate_usd: 0 })), "no estimate, no spike")
  })

  it("tool calls that end in a run of failures are a tool error loop; a failure between successes is not", () => {
    const failing = toolCall("read_file", false, "ENOENT: no such file notes/q3.md")
    const loop = [toolCall("list_files", true, "notes/"), failing, failing, failing]
    assert.strictEqual(classify(NodeFailure.ToolCalls({ node: "collect", calls: loop })), "tool_error_loop")
    assert.isUndefined(classify(NodeFailure.ToolCalls({ node: "collect", calls: [failing, failing, toolCall("read_file", true, "ok")] })))
    assert.isUndefined(classify(NodeFailure.ToolCalls({ node: "collect", calls: [failing, failing] })))
  })
})

describe("Healing.decide", () => {
  it("walks the class's ladder in order, then gives up naming the node, the class and the spent ladder", () => {
    const failures = Array.from({ length: 4 }, () => badOutput("classify"))
    const { decisions } = run(defaultPolicy, failures)
    assert.deepStrictEqual(decisions.slice(0, 3).map((d) => retry(d).adjustment.kind), ["stricter_output", "lower_temperature", "fallback_model"])
    assert.deepStrictEqual(decisions.slice(0, 3).map((d) => retry(d).attempt), [1, 2, 3])
    assert.strictEqual(
      giveUp(decisions[3]),
      "node classify failed (schema_violation: severity: is missing; the output must be {severity, category}), and every rung of the schema_violation ladder (stricter_output, lower_temperature, fallback_model) has been tried"
    )
  })

  it("a schema violation's stricter instruction quotes the validation error word for word", () => {
    const error = `category: Expected "billing" | "bug" | "question", actual "refund"`
    const decision = retry(decide(defaultPolicy, [], NodeFailure.InvalidOutput({ node: "classify", error })))
    assert.deepStrictEqual(decision.adjustment, { kind: "stricter_output", validation_error: error })
    assert.strictEqual(decision.class, "schema_violation")
  })

  it("an empty answer's stricter instruction says what was wrong with it", () => {
    const decision = retry(decide(defaultPolicy, [], NodeFailure.Answered({ node: "write", answer: "I'm sorry, but I can't help with that." })))
    assert.deepStrictEqual(decision.adjustment, { kind: "stricter_output", validation_error: `the answer was a refusal: "I'm sorry, but I can't help with that."` })
  })

  it("backoff continues the runtime's schedule and waits at least the Retry-After", () => {
    const transient = () => modelFailed("plan", { message: "503", transient: true })
    const { decisions } = run(defaultPolicy, [transient(), transient()])
    assert.deepStrictEqual(decisions.map((d) => retry(d).adjustment), [{ kind: "backoff", delay_ms: 4000 }, { kind: "backoff", delay_ms: 8000 }])
    assert.deepStrictEqual(retry(decide(defaultPolicy, [], modelFailed("plan", { message: "slow down", transient: true, retry_after_ms: 30_000 }))).adjustment, {
      kind: "backoff",
      delay_ms: 30_000
    })
    assert.strictEqual(backoffDelay(1, 1000), 4000, "a short Retry-After does not shorten the schedule's wait")
  })

  it("each class walks its own ladder; the per-node limit bounds them together and names the limit", () => {
    const policy = Schema.decodeSync(HealingPolicy)({ max_attempts_per_node: 3 })
    const { decisions } = run(policy, [
      NodeFailure.TimedOut({ node: "write", after_ms: 60_000 }),
      badOutput("write"),
      NodeFailure.TimedOut({ node: "write", after_ms: 60_000 }),
      badOutput("write")
    ])
    assert.deepStrictEqual(decisions.slice(0, 3).map((d) => [retry(d).class, retry(d).adjustment.kind]), [
      ["timeout", "trim_context"],
      ["schema_violation", "stricter_output"],
      ["timeout", "fallback_model"]
    ])
    const reason = giveUp(decisions[3])
    assert.match(reason, /^node write failed \(schema_violation: .*\) after 3 healing attempts, the limit per node \(max_attempts_per_node 3\)$/)
  })

  it("the per-mission limit stops every node once reached, naming the node, the class and the limit", () => {
    const policy = Schema.decodeSync(HealingPolicy)({ max_attempts_per_mission: 2 })
    const { decisions } = run(policy, [badOutput("a"), badOutput("b"), badOutput("c")])
    retry(decisions[0])
    retry(decisions[1])
    assert.match(giveUp(decisions[2]), /^node c failed \(schema_violation: .*\), and the mission has made 2 healing attempts, its limit \(max_attempts_per_mission 2\)$/)
  })

  it("gives up at once on what it cannot heal, and on a class whose ladder is empty", () => {
    assert.strictEqual(
      giveUp(decide(defaultPolicy, [], modelFailed("plan", { message: "401 Incorrect API key provided", transient: false }))),
      "node plan failed and healing cannot recover it: the model call failed for good: 401 Incorrect API key provided"
    )
    const policy = Schema.decodeSync(HealingPolicy)({ ladders: { cost_spike: [] } })
    assert.match(
      giveUp(decide(policy, [], NodeFailure.Spent({ node: "write", cost_usd: 1, estimate_usd: 0.1 }))),
      /^node write failed \(cost_spike: it spent \$1\.0000 against an estimate of \$0\.1000\), and the cost_spike ladder is empty: that class is never retried$/
    )
  })

  it("other nodes' attempts count for the mission, not for the node", () => {
    const policy = Schema.decodeSync(HealingPolicy)({ max_attempts_per_node: 1 })
    const { decisions } = run(policy, [badOutput("a"), badOutput("b"), badOutput("a")])
    assert.deepStrictEqual(decisions.map((d) => d._tag), ["Retry", "Retry", "GiveUp"])
    assert.strictEqual(retry(decisions[1]).attempt, 1)
  })
})

describe("Healing.decide laws", () => {
  const nodes = ["plan", "left", "right", "join"]
  const failure: fc.Arbitrary<NodeFailure> = fc.constantFrom(...nodes).chain((node) =>
    fc.oneof(
      fc.record({ message: fc.constantFrom("503 upstream", "429 Too Many Requests", "request timed out", "401 bad key"), transient: fc.boolean() })
        .map((fields) => modelFailed(node, fields)),
      fc.nat(300_000).map((after_ms) => NodeFailure.TimedOut({ node, after_ms })),
      fc.string().map((error) => NodeFailure.InvalidOutput({ node, error })),
      fc.constantFrom("", "I cannot help with that.", "fine").map((answer) => NodeFailure.Answered({ node, answer })),
      fc.tuple(fc.double({ min: 0, max: 10, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }))
        .map(([cost_usd, estimate_usd]) => NodeFailure.Spent({ node, cost_usd, estimate_usd })),
      fc.array(fc.boolean(), { maxLength: 6 }).map((oks) => NodeFailure.ToolCalls({ node, calls: oks.map((ok) => toolCall("read_file", ok, ok ? "text" : "ENOENT")) }))
    )
  )
  // Small limits and short ladders, so that sequences reach them.
  const policy = Arbitrary.make(HealingPolicy).map((p) => ({
    ...p,
    max_attempts_per_node: p.max_attempts_per_node % 6,
    max_attempts_per_mission: p.max_attempts_per_mission % 15
  }))

  it.prop("never exceeds the per-node, per-mission or ladder limits, and every retry is the next rung of its class's ladder", [
    policy,
    fc.array(failure, { maxLength: 60 })
  ], ([policy, failures]) => {
    const { decisions, history } = run(policy, failures)
    assert.isAtMost(history.length, policy.max_attempts_per_mission)
    for (const node of nodes) {
      const ofNode = history.filter((a) => a.node === node)
      assert.isAtMost(ofNode.length, policy.max_attempts_per_node)
      assert.deepStrictEqual(ofNode.map((a) => a.attempt), ofNode.map((_, i) => i + 1), "attempts count 1, 2, 3… per node")
      const seen = new Map<FailureClass, number>()
      for (const attempt of ofNode) {
        const n = seen.get(attempt.class) ?? 0
        seen.set(attempt.class, n + 1)
        const rung = policy.ladders[attempt.class][n]
        assert.isDefined(rung, `${node}'s ${attempt.class} attempt ${n + 1} has a rung`)
        assert.strictEqual(attempt.adjustment.kind, rung!.kind)
      }
    }
    decisions.forEach((decision, i) => {
      if (decision._tag === "Retry") assert.strictEqual(decision.class, classify(failures[i]!, policy))
      else assert.include(decision.reason, `node ${failures[i]!.node} `)
    })
  })
})
