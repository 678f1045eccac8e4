import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Stream, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import { BudgetUsage, remainingOf } from "../../src/domain/Budget.js"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { Owner } from "../../src/domain/Owner.js"
import { LlmError, PersistenceError } from "../../src/domain/Errors.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { EventStore } from "../../src/store/EventStore.js"
import * as GroupCommit from "../../src/store/GroupCommit.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import { echo, environment, goal, ofKind, runMission, script } from "./fixtures.js"

const loadCheckpoint = (runId: string) =>
  Effect.flatMap(RunStore, (store) => store.load(runId)).pipe(
    Effect.map((loaded) => (loaded._tag === "Found" ? loaded.checkpoint : assert.fail(`checkpoint ${loaded._tag}`)))
  )

const never = [{ criteria_met: [false, false] }]

describe("Mission", () => {
  describe("termination", () => {
    it.effect("completes when the judge has verified every criterion", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission({ runId: "r", goal: goal(3) })
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.halt_reason, null)
        assert.strictEqual(result.iterations, 3)
        assert.deepStrictEqual(result.criteria_met, [true, true, true])
        assert.include(result.output, "```ts")
        assert.deepStrictEqual(events.map((e) => e.seq), events.map((_, i) => i))
        assert.strictEqual(events[0]?.kind, "run_started")
        assert.strictEqual(events[events.length - 1]?.kind, "result")
        assert.strictEqual(ofKind(events, "iteration").length, 3)
        assert.deepStrictEqual(ofKind(events, "criteria_satisfied").map((e) => e.newly_met.map((c) => c.index)), [[0], [1], [2]])
        const checkpoint = yield* loadCheckpoint("r")
        assert.strictEqual(checkpoint.status, "completed")
        assert.strictEqual(checkpoint.usage.iterations, 3)
      }).pipe(Effect.provide(environment)))

    it.effect("hands the thread back to the event loop between iterations, even when the model answers at once", () =>
      Effect.gen(function*() {
        // Turns of the event loop, counted by a callback that queues itself again on each one: it only
        // runs when the run lets go of the thread (a signal handler or a timer waits for the same).
        let turns = 0
        let ticking = true
        const tick = () => {
          turns++
          if (ticking) setImmediate(tick)
        }
        setImmediate(tick)
        const atIteration: Array<number> = []
        const result = yield* Mission.run({
          runId: "r",
          goal: goal(),
          policy: { max_iterations: 5 },
          onEvent: (event) => Effect.sync(() => void (event.kind === "iteration" && atIteration.push(turns)))
        }).pipe(Effect.provide(MockLlm.layer(script(never))), Effect.ensuring(Effect.sync(() => void (ticking = false))))
        assert.strictEqual(result.iterations, 5)
        // Every iteration after the first saw at least one turn more than the one before it.
        for (let i = 1; i < atIteration.length; i++) assert.isAbove(atIteration[i]!, atIteration[i - 1]!, `turns at each iteration: ${atIteration}`)
      }).pipe(Effect.provide(environment)))

    it.effect("max_iterations = N allows exactly N iterations", () =>
      Effect.gen(function*() {
        const { result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 4 } }, script(never))
        assert.strictEqual(result.iterations, 4)
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.halt_reason, "iteration limit reached: 4 of 4 iterations")
      }).pipe(Effect.provide(environment)))

    it.effect("is partial when some criteria were met before a budget tripped", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 3 } },
          script([{ criteria_met: [false, false] }, { criteria_met: [true, false] }, { criteria_met: [false, false] }])
        )
        assert.strictEqual(result.status, "partial")
        // A criterion once verified stays verified even if a later verdict forgets it.
        assert.deepStrictEqual(result.criteria_met, [true, false])
        const exceeded = ofKind(events, "budget_exceeded")
        assert.strictEqual(exceeded.length, 1)
        assert.strictEqual(exceeded[0]?.axis, "iterations")
      }).pipe(Effect.provide(environment)))

    it.effect("a proxy's spent budget halts the run as a dollar limit, partial if a criterion was met, never failed", () =>
      Effect.gen(function*() {
        // The mock's first iteration meets criterion 1; then the proxy refuses every call.
        const calls = yield* Ref.make(0)
        const refusing = Layer.effect(Llm, Effect.map(MockLlm.make(), (mock) => ({
          ...mock,
          complete: (request: LlmRequest) =>
            Effect.flatMap(Ref.getAndUpdate(calls, (n) => n + 1), (n) =>
              n < 2
                ? mock.complete(request)
                : Effect.fail(new LlmError({ message: "project docs daily budget $5.00 is spent", transient: false, budget_exhausted: true })))
        })))
        const events: Array<AutopilotEvent> = []
        const result = yield* Mission.run({ runId: "r", goal: goal(), onEvent: (e) => Effect.sync(() => events.push(e)) })
          .pipe(Effect.provide(refusing))
        assert.strictEqual(result.status, "partial")
        assert.strictEqual(result.iterations, 1)
        assert.strictEqual(result.halt_reason, "dollar limit reached: project docs daily budget $5.00 is spent")
        const [exceeded] = ofKind(events, "budget_exceeded")
        assert.strictEqual(exceeded?.axis, "dollars")
        assert.strictEqual(exceeded?.reason, result.halt_reason)
      }).pipe(Effect.provide(environment)))

    it.effect("a judge reply that is not a verdict is on record as judge_invalid, and the criteria stay as they were", () =>
      Effect.gen(function*() {
        const rambling = Layer.effect(Llm, Effect.map(MockLlm.make(), (mock) => ({
          ...mock,
          complete: (request: LlmRequest) =>
            request.purpose === "judge"
              ? Effect.succeed({ content: "Looks great to me!", tool_calls: [], usage: { input_tokens: 10, output_tokens: 5 }, model: "gpt-4o-mini" })
              : mock.complete(request)
        })))
        const events: Array<AutopilotEvent> = []
        const result = yield* Mission.run({
          runId: "r",
          goal: goal(),
          policy: { max_iterations: 2 },
          onEvent: (e) => Effect.sync(() => events.push(e))
        }).pipe(Effect.provide(rambling))
        assert.deepStrictEqual(result.criteria_met, [false, false])
        const invalid = ofKind(events, "judge_invalid")
        assert.deepStrictEqual(invalid.map((e) => e.iteration), [1, 2])
        assert.include(invalid[0]?.error, "Looks great to me!")
        // Announced with its iteration, before it.
        const kinds = events.map((e) => e.kind)
        assert.strictEqual(kinds.indexOf("judge_invalid"), kinds.indexOf("iteration") - 1)
      }).pipe(Effect.provide(environment)))

    it.effect("every event carries the headroom left on each axis, null where disabled", () =>
      Effect.gen(function*() {
        const { events } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2, max_seconds: 0 } },
          script(never)
        )
        for (const event of events) assert.strictEqual(event.remaining.seconds, null)
        assert.deepStrictEqual(ofKind(events, "iteration").map((e) => e.remaining.iterations), [1, 0])
        assert.deepStrictEqual(ofKind(events, "iteration").map((e) => e.remaining.tokens), [2_000_000 - 1200, 2_000_000 - 2400])
      }).pipe(Effect.provide(environment)))
  })

  describe("budget axes", () => {
    it.effect("tokens come from the provider's usage and trip at the cap", () =>
      Effect.gen(function*() {
        const { result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_tokens: 3000 } }, script(never))
        assert.strictEqual(result.usage.tokens, 3600)
        assert.strictEqual(result.iterations, 3)
        assert.strictEqual(result.halt_reason, "token limit reached: 3600 of 3000 tokens")
      }).pipe(Effect.provide(environment)))

    it.effect("dollars are priced from usage through the pricing table", () =>
      Effect.gen(function*() {
        // gpt-4o: $2.50 in, $10 out per million tokens → $0.35 per turn.
        const { result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_dollars: 1 } },
          script([{ usage: { input_tokens: 100_000, output_tokens: 10_000 }, criteria_met: [false, false] }], { model: "openrouter/openai/gpt-4o" })
        )
        assert.strictEqual(result.iterations, 3)
        assert.closeTo(result.usage.dollars, 1.05, 1e-9)
        assert.match(result.halt_reason ?? "", /^dollar limit reached: \$1\.0500 of \$1\.00$/)
      }).pipe(Effect.provide(environment)))

    it.effect("every step records each model call's telemetry, and their costs add up to the dollars charged", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([{ criteria_met: [false, false], latency_ms: 1500 }], { model: "gpt-4o" })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("3 seconds")
        const { result } = yield* Fiber.join(fiber)
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", 10))
        assert.deepStrictEqual(steps.map((s) => s.calls.map((c) => [c.purpose, c.model_used, c.input_tokens, c.output_tokens, c.latency_ms, c.attempts])), [
          [["act", "gpt-4o", 1000, 200, 1500, 1], ["judge", "gpt-4o", 0, 0, 0, 1]],
          [["act", "gpt-4o", 1000, 200, 1500, 1], ["judge", "gpt-4o", 0, 0, 0, 1]]
        ])
        const total = steps.flatMap((s) => s.calls).reduce((sum, c) => sum + c.cost_usd, 0)
        assert.closeTo(total, result.usage.dollars, 1e-12)
        assert.closeTo(steps[0]!.calls[0]!.cost_usd, 0.0045, 1e-12)
      }).pipe(Effect.provide(environment)))

    it.effect("a call's latency is that of the attempt that answered; retries are counted, not timed", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
          script([{ error: "503", latency_ms: 700 }, { criteria_met: [false, false], latency_ms: 1500 }])
        ).pipe(Effect.fork)
        yield* TestClock.adjust("10 seconds")
        yield* Fiber.join(fiber)
        const [step] = yield* Effect.flatMap(StepStore, (store) => store.recent("r", 1))
        assert.deepStrictEqual([step?.calls[0]?.latency_ms, step?.calls[0]?.attempts], [1500, 2])
      }).pipe(Effect.provide(environment)))

    it.effect("a cost the provider reports is charged as is, instead of the pricing table's", () =>
      Effect.gen(function*() {
        const { result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([{ criteria_met: [false, false], cost_usd: 0.5 }], { model: "gpt-4o" })
        )
        assert.closeTo(result.usage.dollars, 1.0, 1e-12)
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", 10))
        assert.deepStrictEqual(steps.map((s) => s.calls[0]?.cost_usd), [0.5, 0.5])
      }).pipe(Effect.provide(environment)))

    it.effect("an unknown model is reported once, not silently priced at $0", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 3 } },
          script(never, { model: "acme-brain-7" })
        )
        assert.deepStrictEqual(ofKind(events, "model_unpriced").map((e) => e.model), ["acme-brain-7"])
        assert.strictEqual(result.usage.dollars, 0)
      }).pipe(Effect.provide(environment)))

    it.effect("every requested tool call counts, failed or unknown, and none runs past the cap", () =>
      Effect.gen(function*() {
        const calls = [
          { name: "calculator", arguments: { expression: "6 * 7" } },
          { name: "no_such_tool", arguments: {} },
          { name: "calculator", arguments: { expression: "1 +" } }
        ]
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_tool_calls: 5 } },
          script([{ tool_calls: calls, criteria_met: [false, false] }])
        )
        const toolEvents = ofKind(events, "tool_call")
        assert.deepStrictEqual(toolEvents.map((e) => e.ok), [true, false, false, true, false, false])
        assert.strictEqual(toolEvents[0]?.output, "42")
        assert.include(toolEvents[5]?.output ?? "", "tool-call budget")
        assert.strictEqual(result.usage.tool_calls, 5)
        assert.strictEqual(result.iterations, 2)
        assert.strictEqual(result.halt_reason, "tool-call limit reached: 5 of 5 tool calls")
      }).pipe(Effect.provide(environment)))

    it.effect("the wall-clock axis bounds the model call in flight", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_seconds: 10 } },
          script(never, { latency_ms: 60_000 })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("10 seconds")
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.iterations, 0)
        assert.strictEqual(result.usage.seconds, 10)
        assert.strictEqual(result.halt_reason, "wall-clock limit reached: 10.0s of 10s")
      }).pipe(Effect.provide(environment)))
  })

  describe("resume", () => {
    it.effect("continues at the next iteration with cumulative usage, seconds included, and the new caps", () =>
      Effect.gen(function*() {
        const mock = script(never, { latency_ms: 1000 })
        const first = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2 } }, mock).pipe(
          Effect.fork,
          Effect.tap(() => TestClock.adjust("2 seconds")),
          Effect.flatMap(Fiber.join)
        )
        assert.strictEqual(first.result.iterations, 2)
        const second = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 5 } }, mock).pipe(
          Effect.fork,
          Effect.tap(() => TestClock.adjust("3 seconds")),
          Effect.flatMap(Fiber.join)
        )
        const started = ofKind(second.events, "run_started")[0]
        assert.strictEqual(started?.resuming, true)
        assert.strictEqual(started?.iterations, 2)
        assert.strictEqual(second.result.iterations, 5)
        assert.strictEqual(second.result.usage.tokens, 5 * 1200)
        assert.strictEqual(second.result.usage.seconds, 5)
        assert.strictEqual(second.result.halt_reason, "iteration limit reached: 5 of 5 iterations")
        // Sequence numbers continue across sessions: the log is one history.
        assert.strictEqual(second.events[0]?.seq, first.events[first.events.length - 1]!.seq + 1)
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", 100))
        assert.deepStrictEqual(steps.map((s) => s.iteration), [1, 2, 3, 4, 5])
      }).pipe(Effect.provide(environment)))

    it.effect("a run records the model it runs on; a resume keeps it unless given another, even when rebuilt from history", () =>
      Effect.gen(function*() {
        const openai = { provider: "openai", model: "gpt-4o" } as const
        yield* runMission({ runId: "r", goal: goal(), llm: openai, policy: { max_iterations: 1 } }, script(never))
        yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script(never))
        assert.deepStrictEqual((yield* loadCheckpoint("r")).llm, openai)
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE checkpoints SET state = 'garbage' WHERE run_id = 'r'`
        yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 3 } }, script(never))
        assert.deepStrictEqual((yield* loadCheckpoint("r")).llm, openai)
        yield* runMission({ runId: "r", resume: true, llm: { provider: "mock" }, policy: { max_iterations: 4 } }, script(never))
        assert.deepStrictEqual((yield* loadCheckpoint("r")).llm, { provider: "mock" })
      }).pipe(Effect.provide(environment)))

    it.effect("a resumed run keeps the caps it was given unless new ones are passed", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2, max_tool_calls: 7 } }, script(never))
        const { result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 3 } }, script(never))
        const checkpoint = yield* loadCheckpoint("r")
        assert.strictEqual(result.iterations, 3)
        assert.strictEqual(checkpoint.policy.max_tool_calls, 7)
        assert.strictEqual(checkpoint.policy.max_iterations, 3)
      }).pipe(Effect.provide(environment)))

    it.effect("resuming with a goal refuses one that differs from the run's own", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(2), policy: { max_iterations: 1 } }, script(never))
        const error = yield* Effect.flip(runMission({ runId: "r", resume: true, goal: goal(3) }, script(never)))
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, "different objective or criteria")
        const { result } = yield* runMission({ runId: "r", resume: true, goal: goal(2), policy: { max_iterations: 2 } }, script(never))
        assert.strictEqual(result.iterations, 2)
      }).pipe(Effect.provide(environment)))

    it.effect("a new run refuses an existing run id and leaves it untouched", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script(never))
        const before = yield* loadCheckpoint("r")
        const error = yield* Effect.flip(runMission({ runId: "r", goal: goal(3) }))
        assert.strictEqual(error._tag, "RunAlreadyExists")
        assert.deepStrictEqual(yield* loadCheckpoint("r"), before)
      }).pipe(Effect.provide(environment)))

    it.effect("a run still held by a live process cannot be resumed by another session", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal() }, script(never, { latency_ms: 10_000 })).pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(runMission({ runId: "r", resume: true }))
        assert.strictEqual(error._tag, "RunInProgress")
        yield* Fiber.interrupt(fiber)
        // The owner is gone now; and `takeOver` vouches for owners that cannot be checked.
        const { result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 1 } }, script(never))
        assert.strictEqual(result.iterations, 1)
      }).pipe(Effect.provide(environment)))

    it.effect("takeOver resumes a run whose owner cannot be checked, such as one on another host", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script(never))
        const store = yield* RunStore
        const loaded = yield* store.load("r")
        assert(loaded._tag === "Found")
        yield* store.save(new Checkpoint({ ...loaded.checkpoint, status: "running", owner: new Owner({ pid: 1, host: "replaced-container" }) }))
        assert.strictEqual((yield* Effect.flip(runMission({ runId: "r", resume: true }, script(never))))._tag, "RunInProgress")
        const { result } = yield* runMission({ runId: "r", resume: true, takeOver: true, policy: { max_iterations: 2 } }, script(never))
        assert.strictEqual(result.iterations, 2)
      }).pipe(Effect.provide(environment)))

    it.effect("a session killed mid-iteration is resumed with the usage its last heartbeat recorded", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script(never))
        const store = yield* RunStore
        const log = yield* EventStore
        const loaded = yield* store.load("r")
        assert(loaded._tag === "Found")
        // What a kill -9 leaves: a checkpoint still `running`, owned by a process that is gone, and a later heartbeat.
        const gone = spawnSync(process.execPath, ["-e", ""]).pid
        yield* store.save(new Checkpoint({ ...loaded.checkpoint, status: "running", owner: new Owner({ pid: gone, host: Owner.current.host }) }))
        yield* log.append([{
          kind: "heartbeat",
          run_id: "r",
          seq: yield* log.nextSeq("r"),
          at: "2026-01-01T00:00:00.000Z",
          iteration: 2,
          usage: new BudgetUsage({ ...loaded.checkpoint.usage, seconds: 42, tokens: 5000 }),
          criteria_met: [false, false],
          remaining: remainingOf(loaded.checkpoint.policy, loaded.checkpoint.usage)
        }])
        const { events } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script(never))
        const started = ofKind(events, "run_started")[0]
        assert.strictEqual(started?.usage.seconds, 42)
        assert.strictEqual(started?.usage.tokens, 5000)
        assert.strictEqual(started?.usage.iterations, 1)
      }).pipe(Effect.provide(environment)))

    it.effect("a bad cap from a library caller is BadInput naming the field, not a defect", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(runMission({ runId: "r", goal: goal(), policy: { max_iterations: -1 } }))
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, "max_iterations")
      }).pipe(Effect.provide(environment)))

    it.effect("resuming an unknown run fails with RunNotFound", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(runMission({ runId: "ghost", resume: true }))
        assert.strictEqual(error._tag, "RunNotFound")
      }).pipe(Effect.provide(environment)))
  })

  describe("corrupt checkpoints", () => {
    const corrupt = (runId: string, state: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE checkpoints SET state = ${state} WHERE run_id = ${runId}`)

    it.effect("are quarantined bytes intact, and the run continues from its last step", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 3 } }, script(never))
        yield* corrupt("r", "{\"version\": 1, \"run_id\": tru")
        const { events, result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 5 } }, script(never))
        const quarantined = ofKind(events, "checkpoint_quarantined")
        assert.strictEqual(quarantined.length, 1)
        assert.strictEqual(quarantined[0]?.recovered_from, "iteration 3")
        assert.strictEqual(result.iterations, 5)
        assert.strictEqual(result.usage.tokens, 5 * 1200)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ state: Uint8Array; error: string }>`SELECT state, error FROM quarantine WHERE run_id = 'r'`
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(Buffer.from(rows[0]!.state).toString("utf8"), "{\"version\": 1, \"run_id\": tru")
        assert.strictEqual((yield* loadCheckpoint("r")).status, "halted")
      }).pipe(Effect.provide(environment)))

    it.effect("with the newest steps corrupt too, those are quarantined and the run continues cleanly from the last good step", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 5 } }, script(never))
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE steps SET body = 'garbage' WHERE run_id = 'r' AND iteration >= 4`
        yield* corrupt("r", "garbage")
        const { events, result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 7 } }, script(never))
        const quarantined = ofKind(events, "checkpoint_quarantined")
        assert.strictEqual(quarantined[0]?.recovered_from, "iteration 3")
        assert.deepStrictEqual(quarantined[0]?.quarantined_steps, [4, 5])
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.iterations, 7)
        // Iterations 4 and 5 are written afresh; what they spent the first time still counts.
        assert.strictEqual(result.usage.tokens, 9 * 1200)
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", -1))
        assert.deepStrictEqual(steps.map((s) => s.iteration), [1, 2, 3, 4, 5, 6, 7])
        const rows = yield* sql<{ source: string; iteration: number | null; state: Uint8Array }>`
          SELECT source, iteration, state FROM quarantine WHERE run_id = 'r' ORDER BY id
        `
        assert.deepStrictEqual(rows.map((r) => [r.source, r.iteration, Buffer.from(r.state).toString("utf8")]), [
          ["checkpoint", null, "garbage"],
          ["step", 4, "garbage"],
          ["step", 5, "garbage"]
        ])
      }).pipe(Effect.provide(environment)))

    it.effect("however many of the newest steps are corrupt, recovery starts from the last one that decodes and forgets no spending", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 75 } }, script(never))
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE steps SET body = 'garbage' WHERE run_id = 'r' AND iteration >= 5`
        yield* corrupt("r", "garbage")
        const { events, result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 80 } }, script(never))
        const quarantined = ofKind(events, "checkpoint_quarantined")[0]
        assert.strictEqual(quarantined?.recovered_from, "iteration 4")
        assert.deepStrictEqual(quarantined?.quarantined_steps, Array.from({ length: 71 }, (_, i) => i + 5))
        assert.strictEqual(result.iterations, 80)
        assert.strictEqual(result.usage.tokens, (75 + 76) * 1200)
      }).pipe(Effect.provide(environment)))

    it.effect("with no history at all, resuming is bad input and the corrupt row stays where it is", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script(never))
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM events WHERE run_id = 'r'`
        yield* corrupt("r", "garbage")
        const error = yield* Effect.flip(runMission({ runId: "r", resume: true }, script(never)))
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, "no history")
        const rows = yield* sql<{ state: string }>`SELECT state FROM checkpoints WHERE run_id = 'r'`
        assert.deepStrictEqual(rows.map((r) => r.state), ["garbage"])
      }).pipe(Effect.provide(environment)))

    it.effect("with no step to recover from, the run starts over and says so", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2 } }, script(never))
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM steps WHERE run_id = 'r'`
        yield* corrupt("r", "garbage")
        const { events, result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 1 } }, script(never))
        assert.strictEqual(ofKind(events, "checkpoint_quarantined")[0]?.recovered_from, "start")
        assert.strictEqual(result.iterations, 1)
        // The two lost iterations' spending is still on record in the event log, and still counts.
        assert.strictEqual(result.usage.tokens, 2 * 1200 + 1200)
      }).pipe(Effect.provide(environment)))
  })

  describe("model failures", () => {
    it.effect("transient errors are retried with backoff on the Effect Clock", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(1) },
          script([{ error: "503 upstream" }, { error: "503 upstream" }, { criteria_met: [true] }])
        ).pipe(Effect.fork)
        yield* TestClock.adjust("249 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 second")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "completed")
        assert.deepStrictEqual(ofKind(events, "model_retry").map((e) => [e.attempt, e.error]), [[1, "503 upstream"], [2, "503 upstream"]])
      }).pipe(Effect.provide(environment)))

    it.effect("an error that will not succeed on retry fails the run at once", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission({ runId: "r", goal: goal() }, script(never, { repeat_last: false }))
        assert.strictEqual(result.status, "failed")
        assert.strictEqual(result.iterations, 1)
        assert.strictEqual(result.halt_reason, "model call failed: mock script exhausted after 1 turns")
        assert.strictEqual(ofKind(events, "model_retry").length, 0)
      }).pipe(Effect.provide(environment)))

    it.effect("a retry waits at least as long as the provider asked (Retry-After)", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(1) },
          script([{ error: "429 rate limited", retry_after_ms: 3000 }, { criteria_met: [true] }])
        ).pipe(Effect.fork)
        yield* TestClock.adjust("2999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "completed")
      }).pipe(Effect.provide(environment)))

    it.effect("a call that keeps failing ends the run as failed, with the error as its halt reason", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal() }, script([{ error: "connection reset" }])).pipe(Effect.fork)
        yield* TestClock.adjust("1 minute")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "failed")
        assert.strictEqual(result.halt_reason, "model call failed: connection reset")
        assert.deepStrictEqual(ofKind(events, "model_retry").map((e) => e.attempt), [1, 2, 3, 4])
        assert.strictEqual((yield* loadCheckpoint("r")).status, "failed")
      }).pipe(Effect.provide(environment)))
  })

  describe("halting", () => {
    it.effect("a halt request lets the iteration in flight finish within the grace period", () =>
      Effect.gen(function*() {
        const halt = yield* Deferred.make<string>()
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), halt: Deferred.await(halt), haltGrace: "5 seconds" },
          script(never, { latency_ms: 3000 })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        yield* Deferred.succeed(halt, "halted by SIGTERM")
        yield* TestClock.adjust("2 seconds")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.iterations, 1)
        assert.strictEqual(result.halt_reason, "halted by SIGTERM")
        assert.strictEqual(ofKind(events, "halt_requested").length, 1)
        assert.strictEqual((yield* loadCheckpoint("r")).halt_reason, "halted by SIGTERM")
      }).pipe(Effect.provide(environment)))

    it.effect("after the grace period the call in flight is interrupted", () =>
      Effect.gen(function*() {
        const halt = yield* Deferred.make<string>()
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), halt: Deferred.await(halt), haltGrace: "5 seconds" },
          script(never, { latency_ms: 60_000 })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        yield* Deferred.succeed(halt, "halted by SIGINT")
        yield* TestClock.adjust("4999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.iterations, 0)
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.halt_reason, "halted by SIGINT")
      }).pipe(Effect.provide(environment)))

    it.effect("a stop request stored by another process halts the run at its next boundary", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal() }, script(never, { latency_ms: 10_000 })).pipe(Effect.fork)
        yield* TestClock.adjust("5 seconds")
        yield* Effect.flatMap(RunStore, (store) => store.requestStop("r", "operator: enough", "now"))
        yield* TestClock.adjust("10 seconds")
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.iterations, 1)
        assert.strictEqual(result.halt_reason, "operator: enough")
        assert.isTrue(Option.isNone(yield* Effect.flatMap(RunStore, (store) => store.pendingStop("r"))))
      }).pipe(Effect.provide(environment)))

    it.effect("haltNow cuts the grace period short and keeps the first halt's reason", () =>
      Effect.gen(function*() {
        const halt = yield* Deferred.make<string>()
        const now = yield* Deferred.make<void>()
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), halt: Deferred.await(halt), haltNow: Deferred.await(now), haltGrace: "1 hour" },
          script(never, { latency_ms: 60_000 })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        yield* Deferred.succeed(halt, "halted by SIGTERM")
        yield* TestClock.adjust("1 second")
        yield* Deferred.succeed(now, undefined)
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.halt_reason, "halted by SIGTERM")
        assert.strictEqual(result.iterations, 0)
      }).pipe(Effect.provide(environment)))

    it.effect("interrupting the mission fiber still writes a true final checkpoint", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal() }, script(never, { latency_ms: 1000 })).pipe(Effect.fork)
        yield* TestClock.adjust("2500 millis")
        const exit = yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.isInterrupted(exit))
        const checkpoint = yield* loadCheckpoint("r")
        assert.strictEqual(checkpoint.status, "halted")
        assert.strictEqual(checkpoint.halt_reason, "interrupted")
        assert.strictEqual(checkpoint.usage.iterations, 2)
      }).pipe(Effect.provide(environment)))
  })

  describe("storage", () => {
    it.effect("holds no transaction while a model call is in flight: other writers go straight through", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal() }, script(never, { latency_ms: 60_000 })).pipe(Effect.fork)
        yield* TestClock.adjust("1 second")
        const sql = yield* SqlClient.SqlClient
        // One connection serves every fiber: a transaction held by the mission would block this one.
        const write = yield* sql.withTransaction(sql`INSERT INTO stop_requests VALUES ('other', 'x', 'now')`).pipe(Effect.fork)
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
        assert.isTrue(Option.isSome(yield* Fiber.poll(write)))
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(environment)))

    /** The step store, failing the first `times` writes of step `iteration` with `error`; commits go through it. */
    const failingStep = (iteration: number, times: number, error: PersistenceError) =>
      GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(
        StepStore,
        Effect.gen(function*() {
          const real = yield* StepStore
          const left = yield* Ref.make(times)
          return StepStore.of({
            ...real,
            append: (steps) =>
              steps.every(({ step }) => step.iteration !== iteration)
                ? real.append(steps)
                : Effect.flatMap(Ref.getAndUpdate(left, (n) => n - 1), (n) => (n > 0 ? Effect.fail(error) : real.append(steps)))
          })
        })
      )))

    const storedEvents = Effect.flatMap(EventStore, (store) => store.after("r", 0)).pipe(Effect.map((rows) => rows.map((r) => r.event)))

    it.effect("an iteration whose commit fails is not counted: nothing of it is published, and a resume repeats it", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 5 } }, script(never)).pipe(
          Effect.provide(failingStep(3, 1, new PersistenceError({ message: "disk I/O error", busy: false })))
        )
        assert.strictEqual(result.status, "failed")
        assert.include(result.halt_reason, "disk I/O error")
        assert.strictEqual(result.iterations, 2)
        assert.deepStrictEqual(ofKind(events, "iteration").map((e) => e.iteration), [1, 2])
        const stored = yield* storedEvents
        assert.deepStrictEqual(stored.map((e) => e.seq), stored.map((_, i) => i))
        assert.deepStrictEqual(ofKind(stored, "iteration").map((e) => e.iteration), [1, 2])
        assert.strictEqual((yield* loadCheckpoint("r")).usage.iterations, 2)

        const resumed = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 4 } }, script(never))
        assert.deepStrictEqual(ofKind(resumed.events, "iteration").map((e) => e.iteration), [3, 4])
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", -1))
        assert.deepStrictEqual(steps.map((s) => s.iteration), [1, 2, 3, 4])
        const all = yield* storedEvents
        assert.deepStrictEqual(all.map((e) => e.seq), all.map((_, i) => i))
      }).pipe(Effect.provide(environment)))

    it.effect("an event write that is slow to return cannot be cut in two by the wall clock: the run still ends once", () =>
      Effect.gen(function*() {
        // Stored at once, acknowledged late, as a remote database may: the wall clock runs out meanwhile.
        const slowToAcknowledge = GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(
          EventStore,
          Effect.map(EventStore, (real) =>
            EventStore.of({
              ...real,
              append: (events) =>
                events.some((e) => e.kind === "tool_call")
                  ? Effect.zipRight(real.append(events), Effect.sleep("30 seconds"))
                  : real.append(events)
            }))
        )))
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_seconds: 10 } },
          script([{ tool_calls: [{ name: "echo", arguments: { text: "hi" } }], criteria_met: [false, false] }])
        ).pipe(Effect.provide(slowToAcknowledge), Effect.provide(Toolkit.layer([echo])), Effect.fork)
        yield* TestClock.adjust("1 minute")
        const { result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "halted")
        assert.match(result.halt_reason ?? "", /^wall-clock limit reached/)
        const stored = yield* storedEvents
        assert.deepStrictEqual(stored.map((e) => e.seq), stored.map((_, i) => i))
        assert.strictEqual(stored.at(-1)?.kind, "result")
        assert.strictEqual((yield* loadCheckpoint("r")).status, "halted")
      }).pipe(Effect.provide(environment)))

    it.effect("a database busy past its timeout is waited out, and the iteration is committed once", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 3 } }, script(never)).pipe(
          Effect.provide(failingStep(2, 4, new PersistenceError({ message: "database is locked", busy: true }))),
          Effect.fork
        )
        yield* TestClock.adjust("1 minute")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.iterations, 3)
        assert.deepStrictEqual(ofKind(events, "iteration").map((e) => e.iteration), [1, 2, 3])
        const steps = yield* Effect.flatMap(StepStore, (store) => store.recent("r", -1))
        assert.deepStrictEqual(steps.map((s) => s.iteration), [1, 2, 3])
      }).pipe(Effect.provide(environment)))
  })

  describe("events", () => {
    it.effect("are published once durable: the live stream and the stored log are the same, in seq order", () =>
      Effect.gen(function*() {
        const halt = yield* Deferred.make<string>()
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), heartbeatInterval: "1 second", halt: Deferred.await(halt) },
          script([{ tool_calls: [{ name: "calculator", arguments: { expression: "2 + 2" } }], criteria_met: [true, false] }], {
            latency_ms: 2500
          })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("6 seconds")
        yield* Deferred.succeed(halt, "halted by SIGTERM")
        yield* TestClock.adjust("6 seconds")
        const { events } = yield* Fiber.join(fiber)
        const stored = yield* Effect.flatMap(EventStore, (store) => store.after("r", 0))
        assert.deepStrictEqual(stored.map((e) => e.event), events)
        assert.deepStrictEqual(events.map((e) => e.seq), events.map((_, i) => i))
        assert.includeMembers(events.map((e) => e.kind), ["heartbeat", "tool_call", "halt_requested", "iteration", "result"])
      }).pipe(Effect.provide(environment)))
  })

  describe("heartbeat", () => {
    it.effect("beats on iteration 1 and then every interval, even during a slow first step", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), heartbeatInterval: "10 seconds", policy: { max_iterations: 1 } },
          script(never, { latency_ms: 25_000 })
        ).pipe(Effect.fork)
        yield* TestClock.adjust("25 seconds")
        const { events } = yield* Fiber.join(fiber)
        const kinds = events.map((e) => e.kind).filter((k) => k === "heartbeat" || k === "iteration")
        assert.deepStrictEqual(kinds, ["heartbeat", "heartbeat", "heartbeat", "iteration"])
        assert.deepStrictEqual(ofKind(events, "heartbeat").map((e) => e.usage.seconds), [0, 10, 20])
        assert.deepStrictEqual(ofKind(events, "heartbeat").map((e) => e.iteration), [1, 1, 1])
      }).pipe(Effect.provide(environment)))

    it.effect("heartbeats are durable at once, not with the next iteration", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission({ runId: "r", goal: goal(), heartbeatInterval: "10 seconds" }, script(never, { latency_ms: 60_000 }))
          .pipe(Effect.fork)
        yield* TestClock.adjust("15 seconds")
        const stored = yield* Effect.flatMap(EventStore, (store) => store.after("r", 0))
        assert.deepStrictEqual(stored.map((e) => e.event.kind), ["run_started", "heartbeat", "heartbeat"])
        yield* Fiber.interrupt(fiber)
      }).pipe(Effect.provide(environment)))
  })

  describe("live text", () => {
    it.effect("the answer reaches onDelta as it is generated, before its iteration is counted, and is never stored", () =>
      Effect.gen(function*() {
        const seen: Array<string> = []
        yield* Mission.run({
          runId: "r",
          goal: goal(),
          policy: { max_iterations: 1 },
          onEvent: (e) => Effect.sync(() => seen.push(`event ${e.kind}`)),
          onDelta: (d) => Effect.sync(() => seen.push(`delta ${d.iteration} ${d.purpose} ${d.text}`))
        }).pipe(Effect.provide(MockLlm.layer(script([{ content: "First line\nsecond line", criteria_met: [false, false] }]))))
        const deltas = seen.filter((s) => s.startsWith("delta"))
        assert.deepStrictEqual(deltas.map((d) => d.slice("delta 1 act ".length)).join(""), "First line\nsecond line")
        assert.isAbove(deltas.length, 1)
        assert.isBelow(seen.indexOf(deltas.at(-1)!), seen.indexOf("event iteration"))
        const stored = yield* Effect.flatMap(EventStore, (store) => store.after("r", 0))
        assert.deepStrictEqual(stored.map((r) => `event ${r.event.kind}`), seen.filter((s) => s.startsWith("event")))
      }).pipe(Effect.provide(environment)))
  })

  describe("stream", () => {
    it.effect("emits the run's events live, ending with the result", () =>
      Effect.gen(function*() {
        const events = yield* Mission.stream({ runId: "s", goal: goal(2) }).pipe(Stream.runCollect)
        const kinds = [...events].map((e) => e.kind)
        assert.strictEqual(kinds[0], "run_started")
        assert.strictEqual(kinds[kinds.length - 1], "result")
        assert.strictEqual(kinds.filter((k) => k === "iteration").length, 2)
      }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))

    it.effect("fails the stream with the mission's error", () =>
      Effect.gen(function*() {
        const error = yield* Mission.stream({ runId: "ghost", resume: true }).pipe(Stream.runCollect, Effect.flip)
        assert.strictEqual(error._tag, "RunNotFound")
      }).pipe(Effect.provide(MockLlm.layer()), Effect.provide(environment)))
  })

  describe("work delivered again", () => {
    /** What a daemon counts as ended: anything but running, and a halt that is not a drain. */
    const ended = (c: Checkpoint) => c.status !== "running" && c.halt_reason !== "daemon draining"

    it.effect("a run that has ended is not run again: the start fails with its status and writes nothing", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2 } }, script([{ criteria_met: [true, true] }]))
        const before = yield* Effect.flatMap(EventStore, (events) => events.nextSeq("r"))
        const error = yield* runMission({ runId: "r", resume: true, unlessEnded: ended }, script(never)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "RunAlreadyExists")
        assert.strictEqual((error as { status: string }).status, "completed")
        assert.strictEqual(yield* Effect.flatMap(EventStore, (events) => events.nextSeq("r")), before)
      }).pipe(Effect.provide(environment)))

    it.effect("a run its check does not count as ended is resumed as any other", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script(never))
        const { result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 }, unlessEnded: () => false }, script(never))
        assert.strictEqual(result.iterations, 2)
      }).pipe(Effect.provide(environment)))
  })
})
