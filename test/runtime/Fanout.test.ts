import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Ref, TestClock } from "effect"
import { type BudgetUsage } from "../../src/domain/Budget.js"
import { LlmError } from "../../src/domain/Errors.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { Goal } from "../../src/domain/Goal.js"
import { roundDollars } from "../../src/domain/Quantity.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm, type MockScript } from "../../src/llm/MockLlm.js"
import * as Critic from "../../src/runtime/Critic.js"
import * as Fanout from "../../src/runtime/Fanout.js"
import * as Mission from "../../src/runtime/Mission.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import { EventStore } from "../../src/store/EventStore.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import { environment, ofKind, script } from "./fixtures.js"

/** Runs a fan-out on the mock, collecting its own events and its children's. */
const fanOut = (options: Omit<Fanout.FanoutOptions, "onEvent" | "onChildEvent">, mock?: MockScript) =>
  Effect.gen(function*() {
    const events = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const children = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const result = yield* Fanout.run({
      ...options,
      onEvent: (event) => Ref.update(events, (es) => [...es, event]),
      onChildEvent: (event) => Ref.update(children, (es) => [...es, event])
    }).pipe(Effect.provide(MockLlm.layer(mock)))
    return { result, events: yield* Ref.get(events), childEvents: yield* Ref.get(children) }
  })

/** Every axis but seconds, summed: a fan-out's wall clock is its own, its children's overlap. */
const spentBy = (usages: ReadonlyArray<BudgetUsage>) => ({
  tool_calls: usages.reduce((n, u) => n + u.tool_calls, 0),
  tokens: usages.reduce((n, u) => n + u.tokens, 0),
  dollars: roundDollars(usages.reduce((n, u) => n + u.dollars, 0)),
  iterations: usages.reduce((n, u) => n + u.iterations, 0)
})

const spent = (u: BudgetUsage) => ({ tool_calls: u.tool_calls, tokens: u.tokens, dollars: roundDollars(u.dollars), iterations: u.iterations })

const checkpointOf = (runId: string) =>
  Effect.flatMap(RunStore, (store) => store.load(runId)).pipe(
    Effect.map((loaded) => (loaded._tag === "Found" ? loaded.checkpoint : assert.fail(`checkpoint of ${runId}: ${loaded._tag}`)))
  )

const stepsOf = (runId: string) => Effect.flatMap(StepStore, (steps) => steps.recent(runId, -1))

const sessionsOf = (runId: string) => Effect.flatMap(EventStore, (events) => events.sessions(runId))

/** The mock, except that a call for a run whose id contains "broken" fails for good. */
const breaking = Layer.effect(Llm, Effect.map(MockLlm.make(), (mock) => ({
  ...mock,
  complete: (request: LlmRequest) =>
    request.metadata.run_id.includes("broken")
      ? Effect.fail(new LlmError({ message: "the provider refused the request", transient: false }))
      : mock.complete(request)
})))

/** Two criteria, the first met at once, the second never: each child goes on until it is stopped. */
const unending = (latency_ms = 0) => script([{ criteria_met: [true, false] }], { latency_ms })

describe("Fanout", () => {
  it.effect("50 children at max parallel 10: all accounted for, in input order, never more than 10 at a time, usage exact", () =>
    Effect.gen(function*() {
      const items = Array.from({ length: 50 }, (_, i) => `topic ${i}`)
      const running = yield* Ref.make({ now: 0, most: 0 })
      const fiber = yield* Fanout.run({
        runId: "wide",
        template: "Research {item}",
        items,
        maxParallel: 10,
        onChildEvent: (event) =>
          event.kind === "run_started"
            ? Ref.update(running, ({ most, now }) => ({ now: now + 1, most: Math.max(most, now + 1) }))
            : event.kind === "result"
            ? Ref.update(running, (r) => ({ ...r, now: r.now - 1 }))
            : Effect.void
      }).pipe(Effect.provide(MockLlm.layer(script([{ criteria_met: [true] }], { latency_ms: 100 }))), Effect.fork)
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(fiber)

      assert.strictEqual((yield* Ref.get(running)).most, 10)
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.halt_reason, null)
      assert.deepStrictEqual(result.rollup, { completed: 50, partial: 0, halted: 0, failed: 0, not_started: 0 })
      assert.deepStrictEqual(result.children.map((c) => c.index), items.map((_, i) => i))
      assert.deepStrictEqual(result.children.map((c) => c.run_id), items.map((_, i) => `wide.${i}-topic-${i}`))
      assert.deepStrictEqual(result.children.map((c) => c.item), items)
      const checkpoints = yield* Effect.forEach(result.children, (c) => checkpointOf(c.run_id))
      assert.deepStrictEqual(checkpoints.map((c) => c.status), items.map(() => "completed"))
      assert.deepStrictEqual(checkpoints[7]!.goal, new Goal({ objective: "Research topic 7", success_criteria: ["The objective is achieved: Research topic 7"] }))
      // The fan-out's use is its children's, exactly; the default 200 iterations were shared 4 a child at first.
      assert.deepStrictEqual(spent(result.usage), spentBy(checkpoints.map((c) => c.usage)))
      assert.strictEqual(result.usage.iterations, 50)
      assert.strictEqual(checkpoints[0]!.policy.max_iterations, 4)
      const parent = yield* checkpointOf("wide")
      assert.deepStrictEqual(spent(parent.usage), spent(result.usage))
      assert.deepStrictEqual(parent.fanout, { template: "Research {item}", items, max_parallel: 10 })
    }).pipe(Effect.provide(environment)))

  it.effect("logs run_started, fanout_started with every child, a fanout_child as each ends, then result with the roll-up", () =>
    Effect.gen(function*() {
      const { events, result } = yield* fanOut({ runId: "log", template: "Summarize {item}", items: ["dicts", "sets"], criteria: ["{item} covered", "a snippet"] })

      assert.deepStrictEqual(events.map((e) => e.kind).filter((k) => k !== "heartbeat"), ["run_started", "fanout_started", "fanout_child", "fanout_child", "result"])
      assert.deepStrictEqual(events.map((e) => e.seq), events.map((_, i) => i))
      const [started] = ofKind(events, "fanout_started")
      assert.deepStrictEqual(started!.children, [{ index: 0, run_id: "log.0-dicts", item: "dicts" }, { index: 1, run_id: "log.1-sets", item: "sets" }])
      const ended = ofKind(events, "fanout_child")
      assert.deepStrictEqual(ended.map((e) => e.child_run_id).sort(), ["log.0-dicts", "log.1-sets"])
      for (const e of ended) assert.deepStrictEqual(e.usage, result.children[e.index]!.usage)
      const [last] = ofKind(events, "result")
      assert.strictEqual(last!.status, "completed")
      assert.strictEqual(last!.output, "2 children: 2 completed, 0 partial, 0 halted, 0 failed, 0 not started\n[0] log.0-dicts completed\n[1] log.1-sets completed")
      const child = yield* checkpointOf("log.1-sets")
      assert.deepStrictEqual(child.goal.success_criteria, ["sets covered", "a snippet"])
      assert.deepStrictEqual(result.criteria_met, [true, true])
    }).pipe(Effect.provide(environment)))

  it.effect("a failing child does not stop its siblings; the fan-out is partial, and failed only when every child failed", () =>
    Effect.gen(function*() {
      const some = yield* Fanout.run({ runId: "some", template: "Do {item}", items: ["one", "broken two", "three"], maxParallel: 1 })
      assert.deepStrictEqual(some.children.map((c) => c.status), ["completed", "failed", "completed"])
      assert.strictEqual(some.children[1]!.halt_reason, "model call failed: the provider refused the request")
      assert.strictEqual(some.status, "partial")
      assert.strictEqual(some.halt_reason, "1 of 3 children did not complete (2 completed, 0 partial, 0 halted, 1 failed, 0 not started)")
      assert.strictEqual((yield* checkpointOf("some.1-broken-two")).status, "failed")

      const all = yield* Fanout.run({ runId: "all", template: "Do {item}", items: ["broken a", "broken b"] })
      assert.strictEqual(all.status, "failed")
      assert.strictEqual(all.halt_reason, "every child failed; the first: model call failed: the provider refused the request")
    }).pipe(Effect.provide(breaking), Effect.provide(environment)))

  it.effect("each child's caps are a slice of what the parent has left; the parent's cap is never passed", () =>
    Effect.gen(function*() {
      const { result } = yield* fanOut(
        { runId: "sliced", template: "Do {item}", items: ["a", "b", "c"], criteria: ["first", "second"], maxParallel: 3, policy: { max_iterations: 7, max_tool_calls: 0 } },
        unending()
      )
      const checkpoints = yield* Effect.forEach(result.children, (c) => checkpointOf(c.run_id))
      // 7/3 → 2, then 5/2 → 2, then 3/1 → 3; the disabled tool-call axis stays disabled.
      assert.deepStrictEqual(checkpoints.map((c) => c.policy.max_iterations), [2, 2, 3])
      assert.deepStrictEqual(checkpoints.map((c) => c.policy.max_tool_calls), [0, 0, 0])
      assert.deepStrictEqual(result.children.map((c) => c.halt_reason), [
        "iteration limit reached: 2 of 2 iterations",
        "iteration limit reached: 2 of 2 iterations",
        "iteration limit reached: 3 of 3 iterations"
      ])
      assert.strictEqual(result.usage.iterations, 7)
      assert.strictEqual(result.status, "partial")
    }).pipe(Effect.provide(environment)))

  it.effect("children the parent's budget has nothing left for are not started, and the halt reason names the axis", () =>
    Effect.gen(function*() {
      const { events, result } = yield* fanOut(
        { runId: "short", template: "Do {item}", items: ["a", "b", "c"], criteria: ["first", "second"], maxParallel: 1, policy: { max_iterations: 2 } },
        unending()
      )
      assert.deepStrictEqual(result.children.map((c) => c.status), ["partial", "partial", "not_started"])
      assert.deepStrictEqual(result.rollup, { completed: 0, partial: 2, halted: 0, failed: 0, not_started: 1 })
      assert.strictEqual(result.halt_reason, "iteration limit reached: 2 of 2 iterations; 1 of 3 children not started")
      assert.deepStrictEqual(ofKind(events, "budget_exceeded").map((e) => e.axis), ["iterations"])
      assert.strictEqual((yield* Effect.flatMap(RunStore, (s) => s.load("short.2-c")))._tag, "Missing")
    }).pipe(Effect.provide(environment)))

  it.effect("a halt stops running children at their boundary and starts no more; resume runs only the unfinished, usage exact", () =>
    Effect.gen(function*() {
      const items = ["a", "b", "c", "d", "e", "f"]
      const halt = yield* Deferred.make<string>()
      const fiber = yield* fanOut(
        { runId: "halted", template: "Do {item}", items, criteria: ["first", "second"], maxParallel: 2, policy: { max_iterations: 12 }, halt: Deferred.await(halt) },
        unending(1000)
      ).pipe(Effect.fork)
      // Children a and b run their 2 iterations each (12/6) in 2 s; c and d are then one iteration in.
      yield* TestClock.adjust("3500 millis")
      yield* Deferred.succeed(halt, "halted by test")
      yield* TestClock.adjust("10 seconds")
      const first = yield* Fiber.join(fiber)

      assert.deepStrictEqual(first.result.children.map((c) => c.status), ["partial", "partial", "partial", "partial", "not_started", "not_started"])
      assert.deepStrictEqual(first.result.children.map((c) => c.halt_reason), [
        "iteration limit reached: 2 of 2 iterations",
        "iteration limit reached: 2 of 2 iterations",
        "halted by test",
        "halted by test",
        null,
        null
      ])
      assert.strictEqual(first.result.status, "partial")
      assert.strictEqual(first.result.halt_reason, "halted by test")
      assert.deepStrictEqual(ofKind(first.events, "halt_requested").map((e) => e.reason), ["halted by test"])
      const stepsBefore = yield* Effect.forEach(["halted.0-a", "halted.1-b"], (id) => Effect.map(stepsOf(id), (s) => s.length))

      const resumed = yield* fanOut({ runId: "halted", resume: true, policy: { max_iterations: 18 } }, unending())

      assert.deepStrictEqual(ofKind(resumed.events, "fanout_started")[0]!.finished, [0, 1])
      // The finished children were not run again: one session each, the same steps.
      for (const id of ["halted.0-a", "halted.1-b"]) assert.strictEqual((yield* sessionsOf(id)).length, 1)
      assert.deepStrictEqual(yield* Effect.forEach(["halted.0-a", "halted.1-b"], (id) => Effect.map(stepsOf(id), (s) => s.length)), stepsBefore)
      assert.deepStrictEqual(resumed.childEvents.filter((e) => e.kind === "run_started").map((e) => e.run_id).sort(), [
        "halted.2-c",
        "halted.3-d",
        "halted.4-e",
        "halted.5-f"
      ])
      assert.deepStrictEqual(resumed.result.children.map((c) => c.status), items.map(() => "partial"))
      const checkpoints = yield* Effect.forEach(resumed.result.children, (c) => checkpointOf(c.run_id))
      assert.deepStrictEqual(spent(resumed.result.usage), spentBy(checkpoints.map((c) => c.usage)))
      assert.strictEqual(resumed.result.usage.iterations, 18)
    }).pipe(Effect.provide(environment)))

  it.effect("a fan-out's critic and specialist go to every child it starts, on a resume too", () =>
    Effect.gen(function*() {
      const researcher: Specialist = {
        id: "researcher",
        name: "Researcher",
        category: "research",
        role: "Finds and weighs sources.",
        goal: "A sourced answer.",
        background: "Years of desk research.",
        instructions: ["Cite every claim."],
        allowed_tools: [],
        model_tier: "medium"
      }
      const items = ["a", "b", "c", "d"]
      const halt = yield* Deferred.make<string>()
      const first = yield* Fanout.run({
        runId: "guided",
        template: "Research {item}",
        items,
        maxParallel: 1,
        specialist: researcher,
        halt: Deferred.await(halt),
        onChildEvent: (event) => (event.kind === "run_started" ? Deferred.succeed(halt, "halted by test") : Effect.void)
      }).pipe(Effect.provide(Layer.merge(MockLlm.layer(), Critic.layer({ threshold: 0.6 }))))
      const started = first.children.filter((c) => c.status !== "not_started").map((c) => c.run_id)
      assert.deepStrictEqual(started, ["guided.0-a"])

      const resumed = yield* fanOut({ runId: "guided", resume: true })
      assert.strictEqual(resumed.result.status, "completed")
      for (const child of resumed.result.children) {
        const checkpoint = yield* checkpointOf(child.run_id)
        assert.strictEqual(checkpoint.critic?.threshold, 0.6, child.run_id)
        assert.strictEqual(checkpoint.specialist?.id, "researcher", child.run_id)
        assert.isTrue((yield* stepsOf(child.run_id)).every((step) => step.calls.some((call) => call.purpose === "critic")), child.run_id)
      }
    }).pipe(Effect.provide(environment)))

  it.effect("a child's critic is paid from its slice: its dollars trip the child's cap, and count in the parent's usage", () =>
    Effect.gen(function*() {
      // Act $0.00006 and critic $0.0006 (4,000 input tokens of gpt-4o-mini) an iteration; the judge is free.
      const costly = script([{ usage: { input_tokens: 100, output_tokens: 75 }, criteria_met: [false], critic: { criteria_met: [false], confidence: 0.5, usage: { input_tokens: 4000, output_tokens: 0 } } }])
      const { result } = yield* fanOut({ runId: "paid", template: "Do {item}", items: ["a", "b"], maxParallel: 1, policy: { max_dollars: 0.002 } }, costly)
        .pipe(Effect.provide(Critic.layer()))
      const [a, b] = result.children
      // a's slice is $0.001: two iterations at $0.00066 pass it, where the act alone would take 17; b gets the rest.
      assert.deepStrictEqual([a?.iterations, b?.iterations], [2, 2])
      assert.match(a!.halt_reason!, /^dollar limit reached: \$0\.0013 of \$0\.001$/)
      for (const child of result.children) {
        const critic = (yield* stepsOf(child.run_id)).flatMap((step) => step.calls.filter((call) => call.purpose === "critic"))
        assert.strictEqual(roundDollars(critic.reduce((n, call) => n + call.cost_usd, 0)), 0.0012)
      }
      assert.deepStrictEqual(spent(result.usage), spentBy(result.children.map((c) => c.usage)))
    }).pipe(Effect.provide(environment)))

  it.effect("on the mock, each child goes through the script from its first turn, its judge and critic answering after its own turn", () =>
    Effect.gen(function*() {
      // Turn 1 takes longest: a child's judge and critic come after its own slow turn, not after a sibling's quick one.
      const twoTurns = script([
        { content: "not yet", criteria_met: [false], latency_ms: 300, critic: { criteria_met: [false], confidence: 0.9 } },
        { content: "done", criteria_met: [true], latency_ms: 10, critic: { criteria_met: [true], confidence: 0.9 } }
      ])
      const fiber = yield* fanOut({ runId: "turns", template: "Do {item}", items: ["a", "b", "c"], maxParallel: 3 }, twoTurns).pipe(
        Effect.provide(Critic.layer()),
        Effect.fork
      )
      yield* TestClock.adjust("1 second")
      const { result } = yield* Fiber.join(fiber)
      for (const child of result.children) {
        assert.strictEqual(child.iterations, 2, child.run_id)
        const steps = yield* stepsOf(child.run_id)
        assert.deepStrictEqual(steps.map((step) => [step.answer, step.criteria_met[0], step.critic?.criteria_met[0]]), [["not yet", false, false], ["done", true, true]])
      }
    }).pipe(Effect.provide(environment)))

  it.effect("a child may fan out in turn, under the same slice rules; usage adds up at every level", () =>
    Effect.gen(function*() {
      const { result } = yield* fanOut({
        runId: "tree",
        template: "Research {item}",
        items: ["a", { item: "b", template: "Study part {item}", items: ["x", "y"], maxParallel: 2 }],
        policy: { max_iterations: 20 }
      })
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual(result.children.map((c) => c.run_id), ["tree.0-a", "tree.1-b"])
      const nested = yield* checkpointOf("tree.1-b")
      assert.strictEqual(nested.goal.objective, "Research b")
      assert.strictEqual(nested.policy.max_iterations, 10)
      assert.deepStrictEqual(nested.fanout?.items, ["x", "y"])
      const leaves = yield* Effect.forEach(["tree.1-b.0-x", "tree.1-b.1-y"], checkpointOf)
      assert.deepStrictEqual(leaves.map((c) => c.goal.objective), ["Study part x", "Study part y"])
      assert.deepStrictEqual(leaves.map((c) => c.policy.max_iterations), [5, 5])
      assert.deepStrictEqual(spent(nested.usage), spentBy(leaves.map((c) => c.usage)))
      assert.deepStrictEqual(spent(result.usage), spentBy([(yield* checkpointOf("tree.0-a")).usage, nested.usage]))
    }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))

  it.effect("nesting deeper than maxDepth is bad input, and nothing is written", () =>
    Effect.gen(function*() {
      const deep = yield* Effect.either(Fanout.run({
        runId: "deep",
        template: "L1 {item}",
        items: [{ item: "a", template: "L2 {item}", items: [{ item: "b", template: "L3 {item}", items: ["c"] }] }],
        maxDepth: 2
      }))
      assert(Either.isLeft(deep) && deep.left._tag === "BadInput")
      assert.strictEqual(deep.left.message, "the fan-out of item \"b\" is fan-out level 3; at most 2 levels of nested fan-out are allowed")
      assert.deepStrictEqual(yield* Effect.flatMap(RunStore, (s) => s.list()), [])
    }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))

  it.effect("a fan-out whose checkpoint is corrupt is rebuilt from its log, spec included, and its finished children are not re-run", () =>
    Effect.gen(function*() {
      yield* Fanout.run({ runId: "c", template: "Do {item}", items: ["a", "b"] })
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE checkpoints SET state = ${"{not json"} WHERE run_id = ${"c"}`
      const { events, result } = yield* fanOut({ runId: "c", resume: true })
      assert.strictEqual(ofKind(events, "checkpoint_quarantined").length, 1)
      assert.deepStrictEqual(ofKind(events, "fanout_started")[0]!.finished, [0, 1])
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual((yield* checkpointOf("c")).fanout, { template: "Do {item}", items: ["a", "b"], max_parallel: 4 })
      for (const id of ["c.0-a", "c.1-b"]) assert.strictEqual((yield* sessionsOf(id)).length, 1)
    }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))

  it.effect("a new fan-out whose children's ids are taken by other runs is bad input, and nothing is written", () =>
    Effect.gen(function*() {
      yield* Mission.run({ runId: "f.1-b.0-x", goal: new Goal({ objective: "unrelated", success_criteria: ["c"] }) })
      const before = yield* checkpointOf("f.1-b.0-x")
      const taken = yield* Effect.flip(Fanout.run({ runId: "f", template: "Do {item}", items: ["a", { item: "b", template: "Do {item}", items: ["x"] }] }))
      assert.strictEqual(taken._tag, "BadInput")
      assert.match(taken.message, /run "f\.1-b\.0-x" already exists, and fan-out "f" would make a child of that id/)
      for (const id of ["f", "f.0-a", "f.1-b"]) assert.strictEqual((yield* sessionsOf(id)).length, 0)
      assert.deepStrictEqual(yield* checkpointOf("f.1-b.0-x"), before)
      // The fan-out's own id taken is refused as for any run.
      const again = yield* Effect.flip(Fanout.run({ runId: "f.1-b.0-x", template: "Do {item}", items: ["a"] }))
      assert.strictEqual(again._tag, "RunAlreadyExists")
    }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))

  it.effect("a fan-out is never resumed as a mission, nor a mission as a fan-out", () =>
    Effect.gen(function*() {
      yield* Fanout.run({ runId: "f", template: "Do {item}", items: ["a"] })
      yield* Mission.run({ runId: "m", goal: new Goal({ objective: "o", success_criteria: ["c"] }) })
      const asMission = yield* Effect.either(Mission.run({ runId: "f", resume: true }))
      assert(Either.isLeft(asMission) && asMission.left._tag === "BadInput")
      assert.match(asMission.left.message, /run "f" is a fan-out/)
      const asFanout = yield* Effect.either(Fanout.run({ runId: "m", resume: true }))
      assert(Either.isLeft(asFanout) && asFanout.left._tag === "BadInput")
      assert.match(asFanout.left.message, /run "m" is not a fan-out/)
      const otherItems = yield* Effect.either(Fanout.run({ runId: "f", resume: true, template: "Do {item}", items: ["b"] }))
      assert(Either.isLeft(otherItems) && otherItems.left._tag === "BadInput")
    }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))
})
