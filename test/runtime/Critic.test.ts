import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { CriticVerdict } from "../../src/domain/Critic.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { Step } from "../../src/domain/Step.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm, type MockScript } from "../../src/llm/MockLlm.js"
import * as Critic from "../../src/runtime/Critic.js"
import * as Mission from "../../src/runtime/Mission.js"
import { messagesOf } from "../../src/runtime/Transcript.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import { earlierCheckpoint, environment, goal, ofKind, runMission, script } from "./fixtures.js"

const critic = Critic.layer()

/** The mock model, with every request it is sent written down. */
const recording = (sent: Array<LlmRequest>, mock?: MockScript) =>
  Layer.effect(
    Llm,
    Effect.map(MockLlm.make(mock), (llm) => ({
      complete: (request: LlmRequest) => Effect.zipRight(Effect.sync(() => sent.push(request)), llm.complete(request)),
      stream: llm.stream
    }))
  )

/** Like `runMission`, with every request the mock is sent written down in `sent`. */
const runRecorded = (options: Omit<Mission.MissionOptions, "onEvent">, sent: Array<LlmRequest>, mock?: MockScript) =>
  Effect.gen(function*() {
    const events: Array<AutopilotEvent> = []
    const result = yield* Mission.run({ ...options, onEvent: (e) => Effect.sync(() => events.push(e)) }).pipe(Effect.provide(recording(sent, mock)))
    return { result, events }
  })

const actPrompts = (sent: ReadonlyArray<LlmRequest>) => sent.filter((r) => r.purpose === "act").map((r) => r.messages.at(-1)!.content)

const steps = (runId: string) => Effect.flatMap(StepStore, (store) => store.recent(runId, -1))

const checkpoint = (runId: string) =>
  Effect.flatMap(RunStore, (store) => store.load(runId)).pipe(
    Effect.map((loaded) => (loaded._tag === "Found" ? loaded.checkpoint : assert.fail(`checkpoint ${loaded._tag}`)))
  )

describe("Critic", () => {
  describe("its verdict against the judge's", () => {
    it.effect("a confident verdict overrules the judge for its iteration", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
          script([{ criteria_met: [true, false], critic: { criteria_met: [false, true], confidence: 0.9 } }])
        ).pipe(Effect.provide(critic))
        assert.deepStrictEqual(result.criteria_met, [false, true])
        const [reviewed] = ofKind(events, "critic")
        assert.isTrue(reviewed?.ok)
        if (reviewed?.ok !== true) return
        assert.deepStrictEqual(reviewed.criteria_met, [false, true])
        assert.strictEqual(reviewed.confidence, 0.9)
        assert.isTrue(reviewed.confident)
        assert.isFalse(reviewed.ended_run)
        assert.strictEqual(reviewed.iteration, 1)
      }).pipe(Effect.provide(environment)))

    it.effect("a verdict below the threshold is on record, and the judge's verdict stands", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
          script([{ criteria_met: [true, false], critic: { criteria_met: [false, true], confidence: 0.74 } }])
        ).pipe(Effect.provide(critic))
        assert.deepStrictEqual(result.criteria_met, [true, false])
        const [reviewed] = ofKind(events, "critic")
        assert.isTrue(reviewed?.ok === true && !reviewed.confident && !reviewed.ended_run)
        const [step] = yield* steps("r")
        assert.deepStrictEqual(step?.critic, { criteria_met: [false, true], confidence: 0.74, suggestions: [], reasoning: "mock critic", confident: false })
      }).pipe(Effect.provide(environment)))

    it.effect("the threshold is the layer's: at 0.5 the same verdict overrules", () =>
      Effect.gen(function*() {
        const { result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
          script([{ criteria_met: [true, false], critic: { criteria_met: [false, true], confidence: 0.5 } }])
        ).pipe(Effect.provide(Critic.layer({ threshold: 0.5 })))
        assert.deepStrictEqual(result.criteria_met, [false, true])
      }).pipe(Effect.provide(environment)))

    it.effect("a confident all-false verdict keeps the judge's ticks of that iteration from counting, never earlier ones", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([
            { criteria_met: [true, false], critic: { criteria_met: [true, false], confidence: 1 } },
            { criteria_met: [true, true], critic: { criteria_met: [false, false], confidence: 0.95 } }
          ])
        ).pipe(Effect.provide(critic))
        // The judge says both are met in iteration 2; the confident critic says neither. Criterion 1 was
        // verified in iteration 1 and stays so.
        assert.deepStrictEqual(result.criteria_met, [true, false])
        assert.strictEqual(result.status, "partial")
        assert.strictEqual(result.halt_reason, "iteration limit reached: 2 of 2 iterations")
        assert.deepStrictEqual(ofKind(events, "criteria_satisfied").map((e) => e.iteration), [1])
      }).pipe(Effect.provide(environment)))
  })

  describe("ending the run", () => {
    it.effect("the moment the confident critic says every criterion is met, the run ends, and says why", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal() },
          script([{ criteria_met: [true, false], critic: { criteria_met: [true, true], confidence: 0.92 } }, { criteria_met: [false, false] }])
        ).pipe(Effect.provide(critic))
        const reason = "critic confident every criterion is met (confidence 0.92 ≥ 0.75)"
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.iterations, 1)
        assert.strictEqual(result.halt_reason, reason)
        assert.deepStrictEqual(result.criteria_met, [true, true])
        const [reviewed] = ofKind(events, "critic")
        assert.isTrue(reviewed?.ok === true && reviewed.ended_run)
        assert.strictEqual(ofKind(events, "result")[0]?.halt_reason, reason)
        const saved = yield* checkpoint("r")
        assert.strictEqual(saved.status, "completed")
        assert.strictEqual(saved.halt_reason, reason)
      }).pipe(Effect.provide(environment)))

    it.effect("a critic not confident enough cannot end it, even agreeing every criterion is met", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([{ criteria_met: [false, false], critic: { criteria_met: [true, true], confidence: 0.7 } }])
        ).pipe(Effect.provide(critic))
        assert.strictEqual(result.status, "halted")
        assert.strictEqual(result.iterations, 2)
        assert.isTrue(ofKind(events, "critic").every((e) => e.ok && !e.ended_run))
      }).pipe(Effect.provide(environment)))

    it.effect("when the judge completes the run with a critic that merely agrees, the halt reason is the critic's", () =>
      Effect.gen(function*() {
        // The mock's own critic agrees with its judge at confidence 1: the critic ends the run.
        const { result } = yield* runMission({ runId: "r", goal: goal(3) }).pipe(Effect.provide(critic))
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.iterations, 3)
        assert.strictEqual(result.halt_reason, "critic confident every criterion is met (confidence 1 ≥ 0.75)")
      }).pipe(Effect.provide(environment)))
  })

  describe("failures never end the run", () => {
    it.effect("a garbage answer is recorded as a critic event and skipped; the judge decides, and the call is still charged", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([
            { criteria_met: [true, false], critic: { content: "Looks great to me!", usage: { input_tokens: 300, output_tokens: 5 } } },
            { criteria_met: [true, true], critic: { content: "{\"criteria_met\": [true], \"confidence\": 0.9}" } }
          ])
        ).pipe(Effect.provide(critic))
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.halt_reason, null)
        const reviews = ofKind(events, "critic")
        assert.deepStrictEqual(reviews.map((e) => e.ok), [false, false])
        assert.include(reviews[0]?.ok === false ? reviews[0].error : "", "Looks great to me!")
        assert.include(reviews[1]?.ok === false ? reviews[1].error : "", "critic reported 1 criteria, expected 2")
        const [first] = yield* steps("r")
        assert.strictEqual(first?.critic, undefined)
        assert.deepStrictEqual(first?.calls.map((c) => c.purpose), ["act", "judge", "critic"])
        assert.strictEqual(first?.calls[2]?.input_tokens, 300)
        // What the run was charged is what its steps' calls record, the critic's included.
        const calls = (yield* steps("r")).flatMap((step) => step.calls)
        assert.deepStrictEqual(calls.map((c) => c.purpose), ["act", "judge", "critic", "act", "judge", "critic"])
        assert.isAbove(calls[5]!.input_tokens, 0)
        assert.strictEqual(result.usage.tokens, calls.reduce((n, c) => n + c.input_tokens + c.output_tokens, 0))
      }).pipe(Effect.provide(environment)))

    it.effect("a confidence outside 0–1 is garbage, not a verdict", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
          script([{ criteria_met: [true, false], critic: { criteria_met: [false, false], confidence: 7 } }])
        ).pipe(Effect.provide(critic))
        assert.deepStrictEqual(result.criteria_met, [true, false])
        assert.deepStrictEqual(ofKind(events, "critic").map((e) => e.ok), [false])
      }).pipe(Effect.provide(environment)))

    it.effect("a call that keeps failing is retried on the Effect Clock, then recorded and skipped, charging nothing", () =>
      Effect.gen(function*() {
        const fiber = yield* runMission(
          { runId: "r", goal: goal(), policy: { max_iterations: 2 } },
          script([
            { criteria_met: [true, false], critic: { error: "503 upstream" } },
            { criteria_met: [true, true], critic: { criteria_met: [true, false], confidence: 0.4 } }
          ])
        ).pipe(Effect.fork)
        // Four waits of backoff: 250 ms, 500 ms, 1 s, 2 s.
        yield* TestClock.adjust("3749 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.iterations, 2)
        assert.deepStrictEqual(ofKind(events, "model_retry").map((e) => [e.iteration, e.attempt]), [[1, 1], [1, 2], [1, 3], [1, 4]])
        const [failed, reviewed] = ofKind(events, "critic")
        assert.deepStrictEqual(failed?.ok === false && [failed.iteration, failed.error], [1, "critic call failed: 503 upstream"])
        assert.isTrue(reviewed?.ok === true && reviewed.iteration === 2)
        const [first] = yield* steps("r")
        assert.deepStrictEqual(first?.calls.map((c) => c.purpose), ["act", "judge"])
        assert.strictEqual(first?.usage.tokens, 1200)
      }).pipe(Effect.provide(Layer.provideMerge(critic, environment))))

    it.effect("an error that retrying cannot cure (nor a proxy's spent budget) does not end the run either", () =>
      Effect.gen(function*() {
        const { events, result } = yield* runMission(
          { runId: "r", goal: goal(1) },
          script([{ criteria_met: [false], critic: { error: "401 invalid key", transient: false } }, { criteria_met: [true] }])
        ).pipe(Effect.provide(critic))
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.iterations, 2)
        assert.strictEqual(ofKind(events, "model_retry").length, 0)
        assert.deepStrictEqual(ofKind(events, "critic").map((e) => e.ok), [false, true])
      }).pipe(Effect.provide(environment)))
  })

  describe("cost", () => {
    it.effect("its tokens and dollars are charged to the run and in step telemetry as purpose critic", () =>
      Effect.gen(function*() {
        const turns = script([{ criteria_met: [false, false], critic: { criteria_met: [false, false], confidence: 0.2, usage: { input_tokens: 500, output_tokens: 100 } } }])
        const { result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2 } }, turns).pipe(Effect.provide(critic))
        const { result: alone } = yield* runMission({ runId: "without", goal: goal(), policy: { max_iterations: 2 } }, turns)
        // gpt-4o-mini at $0.15 in and $0.60 out per million: $0.000135 per review.
        assert.strictEqual(result.usage.tokens - alone.usage.tokens, 2 * 600)
        assert.closeTo(result.usage.dollars - alone.usage.dollars, 2 * 0.000135, 1e-12)
        for (const step of yield* steps("r")) {
          const review = step.calls.find((c) => c.purpose === "critic")
          assert.deepStrictEqual(
            review && [review.model_used, review.input_tokens, review.output_tokens, review.attempts],
            ["gpt-4o-mini", 500, 100, 1]
          )
          assert.closeTo(review!.cost_usd, 0.000135, 1e-12)
        }
        for (const step of yield* steps("without")) assert.deepStrictEqual(step.calls.map((c) => c.purpose), ["act", "judge"])
      }).pipe(Effect.provide(environment)))

    it.effect("without a script, its replies still cost tokens", () =>
      Effect.gen(function*() {
        const { result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }).pipe(Effect.provide(critic))
        const { result: alone } = yield* runMission({ runId: "without", goal: goal(), policy: { max_iterations: 1 } })
        assert.isAbove(result.usage.tokens, alone.usage.tokens)
        assert.isAbove(result.usage.dollars, alone.usage.dollars)
      }).pipe(Effect.provide(environment)))
  })

  describe("suggestions", () => {
    it.effect("only the latest verdict's suggestions feed the next iteration, at most max_suggestions of them", () =>
      Effect.gen(function*() {
        const sent: Array<LlmRequest> = []
        const turns = script([
          { critic: { criteria_met: [false, false], confidence: 0.3, suggestions: ["add tests", "  ", "name the edge cases", "cite a source"] } },
          { critic: { criteria_met: [false, false], confidence: 0.9, suggestions: ["shorten the intro"] } },
          { critic: { content: "no opinion" } },
          { critic: { criteria_met: [false, false], confidence: 0.9 } }
        ])
        yield* runRecorded({ runId: "r", goal: goal(), policy: { max_iterations: 5 } }, sent, turns).pipe(Effect.provide(Critic.layer({ maxSuggestions: 2 })))
        const prompts = actPrompts(sent)
        assert.strictEqual(prompts.length, 5)
        assert.notInclude(prompts[0], "reviewer")
        // Not confident, yet its advice is passed on: blank ones dropped, then cut to two.
        assert.include(prompts[1], "A reviewer of the latest iteration suggests:\n- add tests\n- name the edge cases\n\nThis is iteration 2.")
        assert.notInclude(prompts[1], "cite a source")
        assert.include(prompts[2], "- shorten the intro")
        assert.notInclude(prompts[2], "add tests")
        // A garbage review leaves nothing to pass on, and older advice is not revived.
        assert.notInclude(prompts[3], "reviewer")
        assert.notInclude(prompts[4], "reviewer")
        const critics = sent.filter((r) => r.purpose === "critic")
        assert.include(critics[0]?.messages[0]?.content, "at most 2 short, concrete improvements")
      }).pipe(Effect.provide(environment)))

    it.effect("the transcript rebuilds the act prompts with the suggestions they were sent", () =>
      Effect.gen(function*() {
        const sent: Array<LlmRequest> = []
        const turns = script([
          { critic: { criteria_met: [false, false], confidence: 0.3, suggestions: ["one"] } },
          { critic: { criteria_met: [false, false], confidence: 0.3, suggestions: ["two"] } },
          { critic: { criteria_met: [false, false], confidence: 0.3 } }
        ])
        yield* runRecorded({ runId: "r", goal: goal(), policy: { max_iterations: 4 } }, sent, turns).pipe(Effect.provide(critic))
        const all = yield* steps("r")
        const acts = sent.filter((r) => r.purpose === "act")
        messagesOf(goal(), all).forEach((step, i) => assert.deepStrictEqual(step.act.slice(0, -1), acts[i]!.messages))
      }).pipe(Effect.provide(environment)))
  })

  describe("resume", () => {
    it.effect("a resumed run keeps its critic and settings without the layer, and its last suggestions, whatever the window", () =>
      Effect.gen(function*() {
        const turns = script([
          { critic: { criteria_met: [false, false], confidence: 0.65, suggestions: ["check the units", "b", "c"] } }
        ])
        const first = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, turns).pipe(
          Effect.provide(Critic.layer({ threshold: 0.6, maxSuggestions: 1 }))
        )
        assert.deepStrictEqual(ofKind(first.events, "run_started")[0]?.critic, { threshold: 0.6, max_suggestions: 1 })
        assert.deepStrictEqual((yield* checkpoint("r")).critic, { threshold: 0.6, max_suggestions: 1 })

        const sent: Array<LlmRequest> = []
        const { events, result } = yield* runRecorded({ runId: "r", resume: true, policy: { max_iterations: 2 }, historyWindow: 0 }, sent, turns)
        assert.strictEqual(result.iterations, 2)
        assert.deepStrictEqual(ofKind(events, "run_started")[0]?.critic, { threshold: 0.6, max_suggestions: 1 })
        // Confidence 0.65 is confident at the run's own 0.6, and only one suggestion is kept.
        const reviews = ofKind(events, "critic")
        assert.strictEqual(reviews.length, 1)
        assert.isTrue(reviews[0]?.ok === true && reviews[0].confident)
        assert.deepStrictEqual(reviews[0]?.ok === true && reviews[0].suggestions, ["check the units"])
        assert.include(actPrompts(sent)[0], "- check the units")
        assert.deepStrictEqual((yield* checkpoint("r")).critic, { threshold: 0.6, max_suggestions: 1 })
      }).pipe(Effect.provide(environment)))

    it.effect("a critic provided on resume replaces the run's own", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{}])).pipe(Effect.provide(critic))
        const { events } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script([{}])).pipe(
          Effect.provide(Critic.layer({ threshold: 0.9 }))
        )
        assert.deepStrictEqual(ofKind(events, "run_started")[0]?.critic, { threshold: 0.9, max_suggestions: 3 })
        assert.deepStrictEqual((yield* checkpoint("r")).critic, { threshold: 0.9, max_suggestions: 3 })
      }).pipe(Effect.provide(environment)))

    it.effect("a run rebuilt from its history after a corrupt checkpoint keeps its critic", () =>
      Effect.gen(function*() {
        yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{}])).pipe(
          Effect.provide(Critic.layer({ threshold: 0.8 }))
        )
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE checkpoints SET state = 'garbage' WHERE run_id = 'r'`)
        const { events } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script([{}]))
        assert.strictEqual(ofKind(events, "checkpoint_quarantined").length, 1)
        assert.strictEqual(ofKind(events, "critic").length, 1)
        assert.deepStrictEqual((yield* checkpoint("r")).critic, { threshold: 0.8, max_suggestions: 3 })
      }).pipe(Effect.provide(environment)))

    it.effect("a run without a critic has none: no critic call, no event, nothing recorded", () =>
      Effect.gen(function*() {
        const sent: Array<LlmRequest> = []
        const { events } = yield* runRecorded({ runId: "r", goal: goal() }, sent)
        assert.deepStrictEqual(sent.map((r) => r.purpose), ["act", "judge", "act", "judge"])
        assert.isFalse(events.some((e) => e.kind === "critic"))
        const saved = yield* checkpoint("r")
        assert.strictEqual(saved.halt_reason, null)
        assert.isFalse("critic" in saved)
        assert.isTrue((yield* steps("r")).every((s) => s.critic === undefined))
      }).pipe(Effect.provide(environment)))
  })

  describe("settings", () => {
    it.effect("a threshold outside 0–1 is bad input, and nothing is written", () =>
      Effect.gen(function*() {
        for (const threshold of [1.5, -0.1, Number.NaN]) {
          const error = yield* Effect.flip(runMission({ runId: "r", goal: goal() }).pipe(Effect.provide(Critic.layer({ threshold }))))
          assert.strictEqual(error._tag, "BadInput")
          assert.include(error.message, "threshold")
        }
        assert.strictEqual((yield* Effect.flatMap(RunStore, (store) => store.load("r")))._tag, "Missing")
      }).pipe(Effect.provide(environment)))

    it("checkpoints and steps from before the critic still decode", () => {
      const saved = Schema.decodeUnknownSync(Checkpoint)(earlierCheckpoint)
      assert.strictEqual(saved.critic, undefined)
      const step = Schema.decodeUnknownSync(Step)({
        iteration: 1,
        at: "2025-01-01T00:00:00.000Z",
        model: "m",
        answer: "a",
        tool_calls: [],
        verdict: "v",
        usage: { seconds: 1, tool_calls: 0, tokens: 10, dollars: 0, iterations: 1 },
        criteria_met: [false]
      })
      assert.strictEqual(step.critic, undefined)
    })
  })

  describe("weigh", () => {
    it("a verdict from a critic of one's own that misses criteria is no verdict, however confident", () => {
      const weighed = Critic.weigh(3, 2, { threshold: 0.5, verdict: Either.right({ criteria_met: [], confidence: 1, suggestions: ["x"], reasoning: "" }) })
      assert.deepStrictEqual(weighed, { event: { kind: "critic", iteration: 3, ok: false, error: "critic reported 0 criteria, expected 2" } })
    })
  })

  describe("parse", () => {
    it("tolerates a json fence, and drops suggestions past the maximum", () => {
      const reply = "Here you go:\n```json\n{\"criteria_met\": [true, false], \"confidence\": 0.8, \"suggestions\": [\"a\", \"b\", \"c\", \"d\"], \"reasoning\": \"r\"}\n```"
      assert.deepStrictEqual(Critic.parse(reply, 2, 3), Either.right({ criteria_met: [true, false], confidence: 0.8, suggestions: ["a", "b", "c"], reasoning: "r" }))
    })

    it("names what is wrong with a reply that is not a verdict on every criterion", () => {
      assert.include(Either.getLeft(Critic.parse("LGTM", 2, 3)).pipe(Option.getOrThrow), "critic reply is not a JSON verdict")
      assert.include(
        Either.getLeft(Critic.parse("{\"criteria_met\": [true], \"confidence\": 1}", 2, 3)).pipe(Option.getOrThrow),
        "critic reported 1 criteria, expected 2"
      )
      assert.isTrue(Either.isLeft(Critic.parse("{\"criteria_met\": [true, true], \"confidence\": 1.01}", 2, 3)))
      assert.isTrue(Either.isLeft(Critic.parse("{\"criteria_met\": [true, true]}", 2, 3)))
    })

    const verdicts = FastCheck.integer({ min: 1, max: 6 }).chain((criteria) =>
      FastCheck.tuple(
        FastCheck.constant(criteria),
        FastCheck.record({
          criteria_met: FastCheck.array(FastCheck.boolean(), { minLength: criteria, maxLength: criteria }),
          confidence: FastCheck.double({ min: 0, max: 1, noNaN: true }),
          suggestions: FastCheck.array(FastCheck.string({ minLength: 1 }).filter((s) => s.trim() !== "" && s.trim() === s), { maxLength: 8 }),
          reasoning: FastCheck.string()
        }),
        FastCheck.integer({ min: 0, max: 5 }),
        FastCheck.double({ min: 0, max: 1, noNaN: true })
      ))

    it.prop("any verdict on every criterion reads back with at most max suggestions, and overrules exactly when confident", [verdicts], ([[criteria, verdict, max, threshold]]) => {
      const parsed = Critic.parse(JSON.stringify(verdict), criteria, max)
      assert.deepStrictEqual(parsed, Either.right({ ...verdict, suggestions: verdict.suggestions.slice(0, max) }))
      const weighed = Critic.weigh(1, criteria, { threshold, verdict: parsed })
      const confident = verdict.confidence >= threshold
      assert.strictEqual(weighed.overrules !== undefined, confident)
      assert.strictEqual(weighed.ends !== undefined, confident && verdict.criteria_met.every(Boolean))
      assert.deepStrictEqual(Schema.decodeUnknownSync(CriticVerdict)(verdict).criteria_met, verdict.criteria_met)
    })
  })
})
