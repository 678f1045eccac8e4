import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Either, Exit, Fiber, Layer, Option, Schema, Stream, TestClock } from "effect"
import type { LlmChunk, LlmRequest, LlmResponse } from "../../src/llm/Llm.js"
import { MockLlm, MockScript } from "../../src/llm/MockLlm.js"
import { StepStore } from "../../src/store/StepStore.js"
import * as Fixtures from "../runtime/fixtures.js"

const request = (
  purpose: LlmRequest["purpose"],
  iteration: number,
  criteria: number,
  model?: string
): LlmRequest => ({
  messages: [{ role: "system", content: "be brief" }, { role: "user", content: "build the thing" }],
  tools: [],
  purpose,
  ...(model === undefined ? {} : { model }),
  metadata: { run_id: "run-1", iteration, criteria }
})

const act = (iteration: number, criteria = 2, model?: string) => request("act", iteration, criteria, model)
const judge = (iteration: number, criteria = 2, model?: string) => request("judge", iteration, criteria, model)

const script = (json: unknown) => Schema.decodeUnknownSync(MockScript)(json)

const verdictOf = (response: LlmResponse) => JSON.parse(response.content) as { criteria_met: Array<boolean>; notes: string }

describe("MockLlm", () => {
  describe("without a script", () => {
    it.effect("answers iteration k in markdown with a ts code block naming the step", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        for (const k of [1, 2, 7]) {
          const answer = yield* llm.complete(act(k, 3))
          assert.match(answer.content, /```ts\n[^`]+\n```/)
          assert.include(answer.content, `## Iteration ${k}`)
          assert.include(answer.content, `export const step${k} =`)
          assert.deepStrictEqual(answer.tool_calls, [])
          assert.strictEqual(answer.model, MockLlm.defaultModel)
        }
      }))

    it.effect("has the judge report criteria 1..k met after iteration k, as a JSON verdict", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const expected = [
          [true, false, false, false],
          [true, true, false, false],
          [true, true, true, false],
          [true, true, true, true],
          [true, true, true, true]
        ]
        for (const [i, met] of expected.entries()) {
          yield* llm.complete(act(i + 1, 4))
          const verdict = yield* llm.complete(judge(i + 1, 4))
          assert.deepStrictEqual(verdictOf(verdict), { criteria_met: met, notes: "mock judge" })
          assert.deepStrictEqual(verdict.usage, { input_tokens: 0, output_tokens: 0 })
        }
      }))

    it.effect("has the judge of a run that made no act call (a mission's own check) report every criterion met", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1, 3))).criteria_met, [true, true, true])
        // Another run's act calls change nothing for it.
        yield* llm.complete({ ...act(1, 3), metadata: { run_id: "run-2", iteration: 1, criteria: 3 } })
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1, 3))).criteria_met, [true, true, true])
      }))

    it.effect("estimates usage at four characters a token, rounded up", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const answer = yield* llm.complete(act(1))
        assert.deepStrictEqual(answer.usage, {
          input_tokens: Math.ceil(("be brief".length + "build the thing".length) / 4),
          output_tokens: Math.ceil(answer.content.length / 4)
        })
      }))

    it.effect("answers as the requested model", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        assert.strictEqual((yield* llm.complete(act(1, 2, "claude-haiku-4-5"))).model, "claude-haiku-4-5")
      }))
  })

  describe("with a script", () => {
    it.effect("consumes one turn per act call; judge calls consume none", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          repeat_last: false,
          turns: [
            { content: "one", criteria_met: [true, false] },
            { content: "two", criteria_met: [true, true] },
            { content: "three" }
          ]
        }))
        assert.strictEqual((yield* llm.complete(act(1))).content, "one")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1))).criteria_met, [true, false])
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1))).criteria_met, [true, false])
        assert.strictEqual((yield* llm.complete(act(2))).content, "two")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(2))).criteria_met, [true, true])
        assert.strictEqual((yield* llm.complete(act(3))).content, "three")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(3))).criteria_met, [false, false])
      }))

    it.effect("pads criteria_met with false, or cuts it, to the request's number of criteria", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          turns: [{ criteria_met: [true] }, { criteria_met: [true, false, true, true] }]
        }))
        yield* llm.complete(act(1, 3))
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1, 3))).criteria_met, [true, false, false])
        yield* llm.complete(act(2, 2))
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(2, 2))).criteria_met, [true, false])
      }))

    it.effect("fails an error turn with a transient LlmError, and that turn is used up", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ error: "rate limited (429)" }, { content: "recovered" }] }))
        const error = yield* Effect.flip(llm.complete(act(1)))
        assert.strictEqual(error._tag, "LlmError")
        assert.strictEqual(error.message, "rate limited (429)")
        assert.isTrue(error.transient)
        assert.strictEqual((yield* llm.complete(act(1))).content, "recovered")
      }))

    it.effect("repeats the last turn when repeat_last is true, which is the default", () =>
      Effect.gen(function*() {
        for (const repeat of [{ repeat_last: true }, {}]) {
          const llm = yield* MockLlm.make(script({ ...repeat, turns: [{ content: "a" }, { content: "b" }] }))
          const answers = yield* Effect.forEach([1, 2, 3, 4], (k) => llm.complete(act(k)))
          assert.deepStrictEqual(answers.map((a) => a.content), ["a", "b", "b", "b"])
        }
      }))

    it.effect("fails with a non-transient LlmError once exhausted when repeat_last is false", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ repeat_last: false, turns: [{ content: "a" }, { content: "b" }] }))
        yield* llm.complete(act(1))
        yield* llm.complete(act(2))
        const error = yield* Effect.flip(llm.complete(act(3)))
        assert.strictEqual(error._tag, "LlmError")
        assert.isFalse(error.transient)
        assert.strictEqual(error.message, "mock script exhausted after 2 turns")
      }))

    it.effect("reports the script's usage exactly, and estimates it only where a turn has none", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          turns: [{ content: "x", usage: { input_tokens: 1000, output_tokens: 200 } }, { content: "12345" }]
        }))
        assert.deepStrictEqual((yield* llm.complete(act(1))).usage, { input_tokens: 1000, output_tokens: 200 })
        assert.deepStrictEqual((yield* llm.complete(act(2))).usage, { input_tokens: 6, output_tokens: 2 })
      }))

    it.effect("answers as the script's model unless the request names one", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ model: "gpt-4.1", turns: [{ content: "a" }] }))
        assert.strictEqual((yield* llm.complete(act(1))).model, "gpt-4.1")
        assert.strictEqual((yield* llm.complete(judge(1))).model, "gpt-4.1")
        assert.strictEqual((yield* llm.complete(act(2, 2, "o3"))).model, "o3")
        assert.strictEqual((yield* llm.complete(judge(2, 2, "o3"))).model, "o3")
        const unnamed = yield* MockLlm.make(script({ turns: [{ content: "a" }] }))
        assert.strictEqual((yield* unnamed.complete(act(1))).model, MockLlm.defaultModel)
      }))

    it.effect("returns scripted tool calls with ids and empty arguments by default", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          turns: [{ tool_calls: [{ name: "calculator", arguments: { expression: "1+1" } }, { name: "list_files" }] }]
        }))
        yield* llm.complete(act(1))
        assert.deepStrictEqual((yield* llm.complete(act(2))).tool_calls, [
          { id: "call_1_0", name: "calculator", arguments: { expression: "1+1" } },
          { id: "call_1_1", name: "list_files", arguments: {} }
        ])
      }))

    it.effect("waits a turn's latency on the Effect Clock before answering", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ content: "slow", latency_ms: 5000 }] }))
        const fiber = yield* Effect.fork(llm.complete(act(1)))
        yield* TestClock.adjust("4999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* Fiber.join(fiber)).content, "slow")
      }))

    it.effect("waits the script's latency for turns that set none, and also before an error", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ latency_ms: 2000, turns: [{ error: "timeout" }] }))
        const fiber = yield* Effect.fork(Effect.either(llm.complete(act(1))))
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const result = yield* Fiber.join(fiber)
        assert.isTrue(Either.isLeft(result))
      }))
  })

  describe("stream", () => {
    const collect = (chunks: Chunk.Chunk<LlmChunk>) => {
      const all = Chunk.toReadonlyArray(chunks)
      const deltas = all.flatMap((c) => (c._tag === "Delta" ? [c.text] : []))
      const dones = all.flatMap((c) => (c._tag === "Done" ? [c.response] : []))
      return { all, deltas, dones }
    }

    it.effect("yields deltas that join to the content, then exactly one Done with the full response", () =>
      Effect.gen(function*() {
        const turns = [{ content: "  Hello,\n\nworld  of\tmocks ", usage: { input_tokens: 3, output_tokens: 4 } }]
        const streamed = yield* MockLlm.make(script({ turns }))
        const completed = yield* MockLlm.make(script({ turns }))
        const { all, deltas, dones } = collect(yield* Stream.runCollect(streamed.stream(act(1))))
        const expected = yield* completed.complete(act(1))
        assert.isAbove(deltas.length, 1)
        assert.strictEqual(deltas.join(""), turns[0]!.content)
        assert.strictEqual(dones.length, 1)
        assert.strictEqual(all[all.length - 1]?._tag, "Done")
        assert.deepStrictEqual(dones[0], expected)
      }))

    it.effect("streams the unscripted markdown answer the same way", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const { deltas, dones } = collect(yield* Stream.runCollect(llm.stream(act(2, 3))))
        assert.strictEqual(dones.length, 1)
        assert.strictEqual(deltas.join(""), dones[0]!.content)
        assert.include(dones[0]!.content, "```ts")
      }))

    it.effect("yields only Done for an empty answer", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ content: "" }] }))
        const { all } = collect(yield* Stream.runCollect(llm.stream(act(1))))
        assert.deepStrictEqual(all.map((c) => c._tag), ["Done"])
      }))

    it.effect("fails with the turn's LlmError", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ error: "boom" }] }))
        const error = yield* Effect.flip(Stream.runCollect(llm.stream(act(1))))
        assert.strictEqual(error.message, "boom")
        assert.isTrue(error.transient)
      }))
  })

  describe("routing calls (slots, synthesis)", () => {
    const routing = (purpose: "slots" | "synthesis", goal = "Watch vendor pricing weekly"): LlmRequest => ({
      messages: [{ role: "system", content: "fill the slots" }, { role: "user", content: goal }],
      tools: [],
      purpose,
      metadata: { run_id: "routing", iteration: 0, criteria: 0 }
    })

    it.effect("without a script: slots finds nothing, synthesis writes a generic blueprint for the goal", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const slots = yield* llm.complete(routing("slots"))
        assert.strictEqual(slots.content, "{}")
        assert.deepStrictEqual(slots.usage, { input_tokens: Math.ceil(("fill the slots".length + "Watch vendor pricing weekly".length) / 4), output_tokens: 1 })
        const synthesis = JSON.parse((yield* llm.complete(routing("synthesis"))).content)
        assert.strictEqual(synthesis.id, "synthetic_watch_vendor_pricing_weekly")
        assert.deepStrictEqual(synthesis.example_goals, ["Watch vendor pricing weekly"])
        assert.deepStrictEqual(synthesis.graph.edges, [{ from: "work", to: "review" }])
      }))

    it.effect("answers scripted slots and synthesis in order, repeating the last, apart from the turns", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          turns: [{ content: "turn one" }, { content: "turn two" }],
          slots: [{ values: { vendors: ["Acme"] } }, { content: "garbage" }],
          synthesis: [{ blueprint: { id: "x" }, usage: { input_tokens: 7, output_tokens: 3 } }]
        }))
        assert.strictEqual((yield* llm.complete(routing("slots"))).content, JSON.stringify({ vendors: ["Acme"] }))
        assert.strictEqual((yield* llm.complete(act(1))).content, "turn one")
        assert.strictEqual((yield* llm.complete(routing("slots"))).content, "garbage")
        assert.strictEqual((yield* llm.complete(routing("slots"))).content, "garbage")
        const synthesis = yield* llm.complete(routing("synthesis"))
        assert.strictEqual(synthesis.content, JSON.stringify({ id: "x" }))
        assert.deepStrictEqual(synthesis.usage, { input_tokens: 7, output_tokens: 3 })
        assert.strictEqual((yield* llm.complete(act(2))).content, "turn two")
      }))

    it.effect("fails a call scripted with an error, transient unless said otherwise", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ slots: [{ error: "busy" }], synthesis: [{ error: "no key", transient: false }] }))
        const busy = yield* Effect.flip(llm.complete(routing("slots")))
        assert.deepStrictEqual([busy.message, busy.transient], ["busy", true])
        const refused = yield* Effect.flip(llm.complete(routing("synthesis")))
        assert.deepStrictEqual([refused.message, refused.transient], ["no key", false])
      }))

    it.effect("answers act calls as unscripted ones when a script has routing answers but no turns", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ slots: [{ values: {} }] }))
        assert.include((yield* llm.complete(act(1, 2))).content, "## Iteration 1")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(judge(1, 2))).criteria_met, [true, false])
      }))

    it("refuses an empty list of answers, and a script with nothing to answer", () => {
      const decode = Schema.decodeUnknownEither(MockScript)
      assert.include(String(Either.getLeft(decode({ slots: [] })).pipe(Option.getOrThrow)), "slots must hold at least one answer")
      assert.include(String(Either.getLeft(decode({ synthesis: [] })).pipe(Option.getOrThrow)), "synthesis must hold at least one answer")
      assert.include(String(Either.getLeft(decode({ slots: [{ values: 3 }] })).pipe(Option.getOrThrow)), "slots")
      assert.include(String(Either.getLeft(decode({})).pipe(Option.getOrThrow)), "a script needs turns")
    })
  })

  describe("loadScript", () => {
    /** Writes `text` to a file in a fresh temporary folder and loads it. */
    const load = (name: string, text: string | undefined) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const file = path.join(yield* fs.makeTempDirectoryScoped(), name)
        if (text !== undefined) yield* fs.writeFileString(file, text)
        return { file, result: yield* Effect.either(MockLlm.loadScript(file)) }
      }).pipe(Effect.provide(NodeContext.layer))

    const badInput = (name: string, text: string | undefined) =>
      Effect.gen(function*() {
        const { file, result } = yield* load(name, text)
        assert.isTrue(Either.isLeft(result), `${name} should not load`)
        const error = Either.getLeft(result).pipe(Option.getOrThrow)
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, file)
        assert.notInclude(error.message, "\n")
        return error.message
      })

    it.scoped("reads a valid script and fills the defaults", () =>
      Effect.gen(function*() {
        const { result } = yield* load("ok.json", JSON.stringify({ turns: [{ content: "hi" }] }))
        const loaded = Either.getOrThrow(result)
        assert.strictEqual(loaded.model, MockLlm.defaultModel)
        assert.strictEqual(loaded.latency_ms, 0)
        assert.isTrue(loaded.repeat_last)
        assert.deepStrictEqual(loaded.turns, [{ content: "hi", tool_calls: [] }])
      }))

    it.scoped("fails on a missing file with a one-line BadInput naming it", () =>
      Effect.gen(function*() {
        const message = yield* badInput("missing.json", undefined)
        assert.include(message, "cannot be read")
      }))

    it.scoped("fails on malformed JSON with a one-line BadInput naming the file", () =>
      Effect.gen(function*() {
        assert.include(yield* badInput("broken.json", "not json at all"), "is malformed")
        assert.include(yield* badInput("trailing.json", '{\n  "turns": [\n    {"content": "a",}\n  ]\n}\n'), "is malformed")
      }))

    it.scoped("fails on a script with zero turns", () =>
      Effect.gen(function*() {
        assert.include(yield* badInput("empty.json", JSON.stringify({ turns: [] })), "turns must hold at least one turn")
        assert.include(yield* badInput("none.json", JSON.stringify({ model: "gpt-4o" })), "turns")
      }))

    it.scoped("fails on wrong types, naming the field", () =>
      Effect.gen(function*() {
        assert.include(yield* badInput("content.json", JSON.stringify({ turns: [{ content: 5 }] })), "turns.0.content")
        assert.include(yield* badInput("repeat.json", JSON.stringify({ repeat_last: "yes", turns: [{}] })), "repeat_last")
        assert.include(
          yield* badInput("usage.json", JSON.stringify({ turns: [{ usage: { input_tokens: -1, output_tokens: 2 } }] })),
          "turns.0.usage.input_tokens"
        )
        assert.include(yield* badInput("latency.json", JSON.stringify({ latency_ms: 1.5, turns: [{}] })), "latency_ms")
        assert.include(yield* badInput("array.json", "[1, 2]"), "(root)")
      }))

    it.scoped("keeps the message on one line when the malformed JSON itself spans lines", () =>
      badInput("multiline.json", '{\n  "turns": x\n}\n'))
  })

  describe("missions: output schemas, per-node turns, the mission's judge", () => {
    const ticketSchema = {
      type: "object",
      properties: {
        severity: { type: "string", enum: ["low", "medium", "high", "critical"] },
        summary: { type: "string" },
        count: { type: "integer", minimum: 3, maximum: 9 },
        tags: { type: "array", items: { type: "string" } }
      },
      required: ["severity", "summary"]
    }

    /** An act call of a mission node's attempt: run `<mission>.<node>[.<n>]`, with the node in its metadata. */
    const nodeAct = (node: string, attempt = 1, extra: Partial<LlmRequest> = {}): LlmRequest => ({
      ...act(1),
      metadata: { run_id: attempt === 1 ? `ms-1.${node}` : `ms-1.${node}.${attempt}`, iteration: 1, criteria: 2, node },
      ...extra
    })
    const nodeJudge = (node: string, attempt = 1): LlmRequest => ({ ...judge(1), metadata: { ...nodeAct(node, attempt).metadata } })
    const missionJudge = (criteria: number): LlmRequest => ({ ...judge(1, criteria), metadata: { run_id: "ms-1", iteration: 1, criteria } })
    const withSchema = { output_schema: { name: "ticket", schema: ticketSchema } }

    it.effect("answers an unscripted act call that asks for an output_schema with an instance of it", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const answer = yield* llm.complete({ ...act(1), ...withSchema, temperature: 0 })
        assert.deepStrictEqual(JSON.parse(answer.content), { severity: "low", summary: "mock summary", count: 3, tags: ["mock tags"] })
        assert.deepStrictEqual(answer.usage.output_tokens, Math.ceil(answer.content.length / 4))
      }))

    it.effect("answers a scripted turn without content with the schema's instance, and one with content as written", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ criteria_met: [true] }, { content: "not JSON" }, {}] }))
        assert.strictEqual(JSON.parse((yield* llm.complete({ ...act(1), ...withSchema })).content).severity, "low")
        assert.strictEqual((yield* llm.complete({ ...act(2), ...withSchema })).content, "not JSON")
        assert.strictEqual((yield* llm.complete(act(3))).content, "")
      }))

    it.effect("gives each node its own turns, counted across the node's runs (its healing attempts), apart from `turns`", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          turns: [{ content: "a run's turn" }],
          nodes: {
            classify: [
              { error: "upstream 503" },
              { content: "{\"severity\": \"urgent\"}", criteria_met: [true, false] },
              { usage: { input_tokens: 5, output_tokens: 6 }, cost_usd: 0.25 }
            ],
            reply: [{ content: "I'm sorry, I can't help with that." }]
          }
        }))
        const failed = yield* Effect.flip(llm.complete(nodeAct("classify")))
        assert.strictEqual(failed.message, "upstream 503")
        assert.isTrue(failed.transient)
        // The second attempt is a new run, and gets the node's second turn; its judge answers that turn.
        assert.strictEqual((yield* llm.complete(nodeAct("classify", 2))).content, "{\"severity\": \"urgent\"}")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(nodeJudge("classify", 2))).criteria_met, [true, false])
        assert.strictEqual((yield* llm.complete(nodeAct("reply"))).content, "I'm sorry, I can't help with that.")
        // A turn without content or criteria_met: the schema's instance, and every criterion met.
        const third = yield* llm.complete(nodeAct("classify", 3, withSchema))
        assert.strictEqual(JSON.parse(third.content).summary, "mock summary")
        assert.deepStrictEqual(third.usage, { input_tokens: 5, output_tokens: 6 })
        assert.strictEqual(third.cost_usd, 0.25)
        assert.deepStrictEqual(verdictOf(yield* llm.complete(nodeJudge("classify", 3))).criteria_met, [true, true])
        // The last turn repeats; a node the script does not name, and a call with no node, use `turns`.
        assert.strictEqual((yield* llm.complete(nodeAct("reply", 2))).content, "I'm sorry, I can't help with that.")
        assert.strictEqual((yield* llm.complete(nodeAct("other"))).content, "a run's turn")
        assert.strictEqual((yield* llm.complete(act(1))).content, "a run's turn")
      }))

    it.effect("fails a node turn's error finally when it says transient: false, after its retry_after_ms and latency", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({
          repeat_last: false,
          nodes: {
            n: [{ error: "rate limited", retry_after_ms: 1500, latency_ms: 40 }, { error: "no such model", transient: false }]
          }
        }))
        const fiber = yield* Effect.fork(Effect.flip(llm.complete(nodeAct("n"))))
        yield* TestClock.adjust("39 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        const limited = yield* Fiber.join(fiber)
        assert.strictEqual(limited.retry_after_ms, 1500)
        assert.isTrue(limited.transient)
        const final = yield* Effect.flip(llm.complete(nodeAct("n", 2)))
        assert.strictEqual(final.message, "no such model")
        assert.isFalse(final.transient)
        const exhausted = yield* Effect.flip(llm.complete(nodeAct("n", 3)))
        assert.strictEqual(exhausted.message, "mock script exhausted after 2 turns of node n")
        assert.isFalse(exhausted.transient)
      }))

    it.effect("answers a node turn without content, for a node with no output_schema, as an unscripted call", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ nodes: { draft: [{ criteria_met: [false, true] }] } }))
        assert.include((yield* llm.complete(nodeAct("draft"))).content, "## Iteration 1")
        assert.deepStrictEqual(verdictOf(yield* llm.complete(nodeJudge("draft"))).criteria_met, [false, true])
      }))

    it.effect("has the mission's own judge (a run with no act call) answer mission_criteria_met, else every criterion met", () =>
      Effect.gen(function*() {
        const scripted = yield* MockLlm.make(script({ mission_criteria_met: [true, false], nodes: { a: [{ content: "done" }] } }))
        yield* scripted.complete(nodeAct("a"))
        assert.deepStrictEqual(verdictOf(yield* scripted.complete(missionJudge(3))).criteria_met, [true, false, false])
        const unscripted = yield* MockLlm.make(script({ nodes: { a: [{ content: "done" }] } }))
        assert.deepStrictEqual(verdictOf(yield* unscripted.complete(missionJudge(2))).criteria_met, [true, true])
      }))

    it("refuses a node with no turns, and accepts a script of nodes or mission_criteria_met alone", () => {
      const decode = Schema.decodeUnknownEither(MockScript)
      assert.include(String(Either.getLeft(decode({ nodes: { a: [] } })).pipe(Option.getOrThrow)), "turns must hold at least one turn")
      assert.isTrue(Either.isRight(decode({ nodes: { a: [{ content: "x" }] } })))
      assert.isTrue(Either.isRight(decode({ mission_criteria_met: [true] })))
    })
  })

  describe("tool turns", () => {
    const withTools = (messages: LlmRequest["messages"], purpose = "act"): LlmRequest => ({ ...act(2), purpose, messages })
    const turn = (content: string, ...ids: ReadonlyArray<string>) => ({
      role: "assistant" as const,
      content,
      tool_calls: ids.map((id) => ({ id, type: "function" as const, function: { name: "calculator", arguments: "{\"expression\":\"1+1\"}" } }))
    })
    const defectOf = (exit: Exit.Exit<unknown, unknown>) =>
      Option.match(Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : Option.none(), {
        onNone: () => assert.fail(`expected a defect, got ${Exit.isSuccess(exit) ? "an answer" : Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause)}`),
        onSome: (defect) => String((defect as Error).message)
      })

    it.effect("answers a conversation whose tool messages answer the calls of the assistant turn before them, streamed or not", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const messages = [
          { role: "user" as const, content: "add" },
          turn("", "call_0_0", "call_0_1"),
          { role: "tool" as const, tool_call_id: "call_0_1", content: "2" },
          { role: "tool" as const, tool_call_id: "call_0_0", content: "2" },
          { role: "user" as const, content: "go on" }
        ]
        assert.include((yield* llm.complete(withTools(messages))).content, "## Iteration 2")
        assert.isAbove(Chunk.size(yield* Stream.runCollect(llm.stream(withTools(messages)))), 1)
      }))

    it.effect("gives its scripted tool calls ids, turn by turn, that a later tool message can answer", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make(script({ turns: [{ tool_calls: [{ name: "calculator", arguments: { expression: "1+1" } }] }] }))
        const first = yield* llm.complete(act(1))
        assert.deepStrictEqual(first.tool_calls.map((c) => c.id), ["call_0_0"])
        const again = yield* llm.complete(withTools([
          { role: "user", content: "add" },
          turn(first.content, first.tool_calls[0]!.id),
          { role: "tool", tool_call_id: first.tool_calls[0]!.id, content: "2" },
          { role: "user", content: "go on" }
        ]))
        assert.deepStrictEqual(again.tool_calls.map((c) => c.id), ["call_1_0"])
      }))

    it.effect("reports a conversation OpenAI would refuse as a defect naming the message, in every purpose and in streams", () =>
      Effect.gen(function*() {
        const llm = yield* MockLlm.make()
        const stray = [{ role: "user" as const, content: "add" }, { role: "tool" as const, tool_call_id: "call_9", content: "2" }]
        assert.strictEqual(
          defectOf(yield* Effect.exit(llm.complete(withTools(stray)))),
          "mock model: invalid conversation (the act call of run run-1): message 2 (tool) answers call_9, but follows no assistant turn with tool calls"
        )
        const unanswered = [{ role: "user" as const, content: "add" }, turn("", "call_0_0", "call_0_1"), { role: "tool" as const, tool_call_id: "call_0_0", content: "2" }, { role: "user" as const, content: "go on" }]
        assert.match(defectOf(yield* Effect.exit(llm.complete(withTools(unanswered, "judge")))), /the judge call of run run-1\): message 4 \(user\) comes before every tool call of message 2 was answered \(unanswered: call_0_1\)/)
        const wrong = [{ role: "user" as const, content: "add" }, turn("", "call_0_0"), { role: "tool" as const, tool_call_id: "call_0_1", content: "2" }]
        assert.match(defectOf(yield* Effect.exit(Stream.runDrain(llm.stream(withTools(wrong))))), /message 3 \(tool\) answers call_0_1, which is not an unanswered call/)
        const bare = [{ role: "user" as const, content: "add" }, turn("", "call_0_0"), { role: "tool" as const, content: "2" }]
        assert.match(defectOf(yield* Effect.exit(llm.complete(withTools(bare, "critic")))), /message 3 \(tool\) has no tool_call_id/)
      }))
  })

  describe("outage file", () => {
    /** A fresh temporary folder, and the path of an outage file in it (not yet written). */
    const folder = Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* fs.makeTempDirectoryScoped()
      return { fs, dir, file: path.join(dir, "outage") }
    })

    it.scoped("fails every call while the file says 429 with a Retry-After, transiently and with the wait asked for", () =>
      Effect.gen(function*() {
        const { file, fs } = yield* folder
        yield* fs.writeFileString(file, "429 2000\n")
        const llm = yield* MockLlm.make(script({ turns: [{ content: "fine" }], outage_file: file }))
        for (const call of [act(1), judge(1), request("critic", 1, 2), request("slots", 0, 0), request("synthesis", 0, 0)]) {
          const error = yield* Effect.flip(llm.complete(call))
          assert.deepStrictEqual([error._tag, error.message, error.transient, error.retry_after_ms], [
            "LlmError",
            `mock upstream: 429 Too Many Requests (outage file ${file})`,
            true,
            2000
          ])
        }
        const streamed = yield* Effect.flip(Stream.runCollect(llm.stream(act(1))))
        assert.strictEqual(streamed.retry_after_ms, 2000)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scoped("fails with the 5xx the file names, and with a 503 for anything else; none of them asks for a wait", () =>
      Effect.gen(function*() {
        const { file, fs } = yield* folder
        const llm = yield* MockLlm.make(script({ turns: [{ content: "fine" }], outage_file: file }))
        const cases = [
          ["503", "503 Service Unavailable"],
          ["500", "500 Internal Server Error"],
          [" 502 \n", "502 Bad Gateway"],
          ["504 1500", "504 Gateway Timeout"],
          ["", "503 Service Unavailable"],
          ["down for maintenance", "503 Service Unavailable"],
          ["404", "503 Service Unavailable"],
          ["429 soon", "503 Service Unavailable"]
        ] as const
        for (const [text, status] of cases) {
          yield* fs.writeFileString(file, text)
          const error = yield* Effect.flip(llm.complete(act(1)))
          assert.strictEqual(error.message, `mock upstream: ${status} (outage file ${file})`, JSON.stringify(text))
          assert.isTrue(error.transient)
          assert.strictEqual(error.retry_after_ms, text === "504 1500" ? 1500 : undefined, JSON.stringify(text))
        }
        // A path that exists but cannot be read as a file (a folder) is an outage too, said to be unreadable.
        yield* fs.remove(file)
        yield* fs.makeDirectory(file)
        const unreadable = yield* Effect.flip(llm.complete(act(1)))
        assert.strictEqual(unreadable.message, `mock upstream: 503 Service Unavailable (outage file ${file}, unreadable)`)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scoped("answers again once the file is removed, with the turn the refused calls did not use up", () =>
      Effect.gen(function*() {
        const { file, fs } = yield* folder
        const llm = yield* MockLlm.make(script({ repeat_last: false, turns: [{ content: "first" }, { content: "second" }], outage_file: file }))
        assert.strictEqual((yield* llm.complete(act(1))).content, "first")
        yield* fs.writeFileString(file, "503")
        yield* Effect.flip(llm.complete(act(2)))
        yield* Effect.flip(llm.complete(act(2)))
        yield* fs.remove(file)
        assert.strictEqual((yield* llm.complete(act(2))).content, "second")
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scoped("takes the script's latency on the Effect Clock before refusing", () =>
      Effect.gen(function*() {
        const { file, fs } = yield* folder
        yield* fs.writeFileString(file, "502")
        const llm = yield* MockLlm.make(script({ latency_ms: 800, turns: [{ content: "fine" }], outage_file: file }))
        const fiber = yield* Effect.fork(Effect.flip(llm.complete(act(1))))
        yield* TestClock.adjust("799 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* Fiber.join(fiber)).message, `mock upstream: 502 Bad Gateway (outage file ${file})`)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scoped("a script of an outage file alone is valid, answers as unscripted, and loads with the path made absolute against its folder", () =>
      Effect.gen(function*() {
        const { dir, file, fs } = yield* folder
        const path = yield* Path.Path
        const scriptFile = path.join(dir, "script.json")
        yield* fs.writeFileString(scriptFile, JSON.stringify({ latency_ms: 10, outage_file: "outage" }))
        const loaded = yield* MockLlm.loadScript(scriptFile)
        assert.strictEqual(loaded.outage_file, file)
        assert.strictEqual(loaded.latency_ms, 10)
        assert.instanceOf(loaded, MockScript)
        const absolute = path.join(dir, "elsewhere")
        yield* fs.writeFileString(scriptFile, JSON.stringify({ turns: [{}], outage_file: absolute }))
        assert.strictEqual((yield* MockLlm.loadScript(scriptFile)).outage_file, absolute)
        const llm = yield* MockLlm.make(loaded)
        assert.include((yield* llm.complete(act(1))).content, "## Iteration 1")
        // Old scripts, without one, still decode; an empty path is refused.
        assert.isUndefined(script({ turns: [{}] }).outage_file)
        assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(MockScript)({ turns: [{}], outage_file: "" })))
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scoped("a run that meets an outage retries on its schedule, honouring the Retry-After, and completes once the file is gone", () =>
      Effect.gen(function*() {
        const { file, fs } = yield* folder
        yield* fs.writeFileString(file, "429 2000")
        const mock = new MockScript({ ...Fixtures.script([{ criteria_met: [true] }]), outage_file: file })
        const fiber = yield* Effect.fork(Fixtures.runMission({ runId: "r", goal: Fixtures.goal(1) }, mock))
        // Attempt 1 is refused and asks for 2 s, more than the first backoff (250 ms).
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        // Attempt 2 is refused too: the file is still there.
        yield* TestClock.adjust("1 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        yield* fs.remove(file)
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
        // Attempt 3 meets a healthy upstream, and the script's first turn completes the run.
        yield* TestClock.adjust("1 millis")
        const { events, result } = yield* Fiber.join(fiber)
        assert.strictEqual(result.status, "completed")
        assert.strictEqual(result.iterations, 1)
        const refused = `mock upstream: 429 Too Many Requests (outage file ${file})`
        assert.deepStrictEqual(Fixtures.ofKind(events, "model_retry").map((e) => [e.attempt, e.error]), [[1, refused], [2, refused]])
        const [step] = yield* Effect.flatMap(StepStore, (store) => store.recent("r", 1))
        assert.strictEqual(step?.calls[0]?.attempts, 3)
      }).pipe(Effect.provide(Layer.merge(NodeContext.layer, Fixtures.environment))))
  })
})
