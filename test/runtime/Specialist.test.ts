import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref, Schema } from "effect"
import { CheckpointJson } from "../../src/domain/Checkpoint.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm, type MockScript } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import { restrict } from "../../src/specialists/ToolAllowList.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import * as Tool from "../../src/tools/Tool.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { earlierCheckpoint, echo, environmentWith, goal, ofKind, script } from "./fixtures.js"

const auditor: Specialist = {
  id: "auditor",
  name: "Security Auditor",
  category: "security",
  role: "Reviews code for vulnerabilities.",
  goal: "Find what an attacker would use.",
  background: "Years of code audits.",
  instructions: ["Map the attack surface first.", "Never modify files."],
  allowed_tools: ["echo"],
  model_tier: "complex"
}

/** A tool that must never run in these tests: it counts its calls. */
const writes = Effect.runSync(Ref.make(0))
const writeFile = Tool.make({
  name: "write_file",
  description: "writes a file",
  parameters: Schema.Struct({ path: Schema.String }),
  handler: () => Effect.as(Ref.update(writes, (n) => n + 1), "written")
})

const environment = environmentWith([echo, writeFile])

/** Runs a mission on the mock, keeping every request the model received. */
const runCapturing = (options: Omit<Mission.MissionOptions, "onEvent">, mock?: MockScript) =>
  Effect.gen(function*() {
    const requests = yield* Ref.make<ReadonlyArray<LlmRequest>>([])
    const llm = Layer.effect(Llm, Effect.map(MockLlm.make(mock), (mock) => ({
      complete: (request: LlmRequest) => Effect.zipRight(Ref.update(requests, (rs) => [...rs, request]), mock.complete(request)),
      stream: (request: LlmRequest) => mock.stream(request)
    })))
    const events: Array<AutopilotEvent> = []
    const result = yield* Mission.run({ ...options, onEvent: (event) => Effect.sync(() => events.push(event)) }).pipe(Effect.provide(llm))
    return { result, events, requests: yield* Ref.get(requests) }
  })

const acts = (requests: ReadonlyArray<LlmRequest>) => requests.filter((r) => r.purpose === "act")

const loadCheckpoint = (runId: string) =>
  Effect.flatMap(RunStore, (store) => store.load(runId)).pipe(
    Effect.map((loaded) => (loaded._tag === "Found" ? loaded.checkpoint : assert.fail(`checkpoint ${loaded._tag}`)))
  )

const never = [{ criteria_met: [false, false] }]

describe("a mission run as a specialist", () => {
  it.effect("opens the act system prompt with the specialist's brief, and sends its model tier with every request", () =>
    Effect.gen(function*() {
      const { requests, result } = yield* runCapturing({ runId: "r", goal: goal(2), specialist: auditor })
      assert.strictEqual(result.status, "completed")
      const system = acts(requests)[0]!.messages[0]!
      assert.strictEqual(system.role, "system")
      assert.isTrue(system.content.startsWith("You are the Security Auditor. Reviews code for vulnerabilities."), system.content)
      for (const text of [auditor.goal, auditor.background, "- Map the attack surface first.\n- Never modify files.", "Tools you may use in this role: echo; no others."]) {
        assert.include(system.content, text)
      }
      // The judge judges the work, not the role.
      const judge = requests.find((r) => r.purpose === "judge")!
      assert.notInclude(judge.messages[0]!.content, auditor.name)
      assert.deepStrictEqual([...new Set(requests.map((r) => r.tier))], ["complex"])
    }).pipe(Effect.provide(environment)))

  it.effect("without a specialist, the prompt, the tools and the requests are as before", () =>
    Effect.gen(function*() {
      const { requests } = yield* runCapturing({ runId: "r", goal: goal(1) })
      assert.isTrue(acts(requests)[0]!.messages[0]!.content.startsWith("You are an autonomous agent"))
      assert.deepStrictEqual(acts(requests)[0]!.tools.map((t) => t.name), ["echo", "write_file"])
      assert.isTrue(requests.every((r) => r.tier === undefined && !("tier" in r)))
      assert.isUndefined((yield* loadCheckpoint("r")).specialist)
    }).pipe(Effect.provide(environment)))

  it.effect("offers the model only the tools on the allow-list, and refuses a call to any other without running it", () =>
    Effect.gen(function*() {
      const before = yield* Ref.get(writes)
      const { events, requests } = yield* runCapturing(
        { runId: "r", goal: goal(2), specialist: auditor, policy: { max_iterations: 1 } },
        script([{
          tool_calls: [{ name: "write_file", arguments: { path: "x" } }, { name: "echo", arguments: { text: "hi" } }],
          criteria_met: [false, false]
        }])
      )
      assert.deepStrictEqual(acts(requests)[0]!.tools.map((t) => t.name), ["echo"])
      assert.strictEqual(yield* Ref.get(writes), before)
      const calls = ofKind(events, "tool_call")
      assert.deepStrictEqual(calls.map((c) => [c.name, c.ok, c.refused]), [["write_file", false, true], ["echo", true, undefined]])
      assert.strictEqual(calls[0]!.output, `refused: the auditor specialist may not use "write_file"; its tools: echo`)
      assert.strictEqual(calls[1]!.output, "hi")
      const step = (yield* Effect.flatMap(StepStore, (steps) => steps.recent("r", 1)))[0]!
      assert.deepStrictEqual(step.tool_calls.map((c) => c.refused), [true, undefined])
    }).pipe(Effect.provide(environment)))

  it.effect("an empty allow-list offers no tools and says so; \"all\" offers every one", () =>
    Effect.gen(function*() {
      const none = yield* runCapturing({ runId: "none", goal: goal(1), specialist: { ...auditor, allowed_tools: [] } })
      assert.deepStrictEqual(acts(none.requests)[0]!.tools, [])
      assert.include(acts(none.requests)[0]!.messages[0]!.content, "You have no tools in this role")
      const all = yield* runCapturing({ runId: "all", goal: goal(1), specialist: { ...auditor, allowed_tools: "all" } })
      assert.deepStrictEqual(acts(all.requests)[0]!.tools.map((t) => t.name), ["echo", "write_file"])
      assert.notInclude(acts(all.requests)[0]!.messages[0]!.content, "Tools you may use")
    }).pipe(Effect.provide(environment)))

  it.effect("is recorded in the checkpoint and run_started, and a resume keeps it as it was defined then", () =>
    Effect.gen(function*() {
      const first = yield* runCapturing({ runId: "r", goal: goal(), specialist: auditor, policy: { max_iterations: 1 } }, script(never))
      assert.deepStrictEqual(ofKind(first.events, "run_started")[0]!.specialist, auditor)
      assert.deepStrictEqual((yield* loadCheckpoint("r")).specialist, auditor)

      // A resume without one, and one naming the same id with an edited definition, both keep the recorded one.
      const edited = { ...auditor, instructions: ["Edited later."] as const, model_tier: "simple" as const }
      for (const [i, specialist] of [undefined, edited].entries()) {
        const resumed = yield* runCapturing({ runId: "r", resume: true, specialist, policy: { max_iterations: i + 2 } }, script(never))
        assert.strictEqual(resumed.result.iterations, i + 2)
        const started = ofKind(resumed.events, "run_started")[0]!
        assert.isTrue(started.resuming)
        assert.deepStrictEqual(started.specialist, auditor)
        assert.include(acts(resumed.requests)[0]!.messages[0]!.content, "Map the attack surface first.")
        assert.isTrue(resumed.requests.every((r) => r.tier === "complex"))
        assert.deepStrictEqual((yield* loadCheckpoint("r")).specialist, auditor)
      }
    }).pipe(Effect.provide(environment)))

  it.effect("a resume asking for another specialist is refused, and the run is left as it was", () =>
    Effect.gen(function*() {
      yield* runCapturing({ runId: "r", goal: goal(), specialist: auditor, policy: { max_iterations: 1 } }, script(never))
      const before = yield* loadCheckpoint("r")
      const other = yield* Effect.flip(runCapturing({ runId: "r", resume: true, specialist: { ...auditor, id: "architect" } }, script(never)))
      assert.strictEqual(other._tag, "BadInput")
      assert.strictEqual(other.message, "run \"r\" was started as specialist \"auditor\"; `autopilot resume r` continues it as it was")
      assert.deepStrictEqual(yield* loadCheckpoint("r"), before)

      yield* runCapturing({ runId: "plain", goal: goal(), policy: { max_iterations: 1 } }, script(never))
      const added = yield* Effect.flip(runCapturing({ runId: "plain", resume: true, specialist: auditor }, script(never)))
      assert.match(added.message, /^run "plain" was started without a specialist/)
    }).pipe(Effect.provide(environment)))

  it.effect("a run rebuilt from its history after its checkpoint is lost keeps its specialist", () =>
    Effect.gen(function*() {
      yield* runCapturing({ runId: "r", goal: goal(), specialist: auditor, policy: { max_iterations: 1 } }, script(never))
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE checkpoints SET state = 'garbage' WHERE run_id = 'r'`)
      const { events, requests } = yield* runCapturing({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script(never))
      assert.strictEqual(ofKind(events, "checkpoint_quarantined").length, 1)
      assert.deepStrictEqual((yield* loadCheckpoint("r")).specialist, auditor)
      assert.deepStrictEqual(acts(requests)[0]!.tools.map((t) => t.name), ["echo"])
    }).pipe(Effect.provide(environment)))
})

describe("the checkpoint's specialist", () => {
  it("is optional: a checkpoint written before specialists decodes without one", () => {
    const old = earlierCheckpoint
    const decoded = Schema.decodeUnknownSync(CheckpointJson)(JSON.stringify(old))
    assert.isUndefined(decoded.specialist)
    assert.notProperty(JSON.parse(Schema.encodeSync(CheckpointJson)(decoded)), "specialist")
    const withOne = Schema.decodeUnknownSync(CheckpointJson)(JSON.stringify({ ...old, specialist: auditor }))
    assert.deepStrictEqual(withOne.specialist, auditor)
  })
})

describe("the allow-list", () => {
  const toolkit = Toolkit.make([echo, writeFile])

  it.effect("passes a call on the list through to the toolkit, unknown tools included", () =>
    Effect.gen(function*() {
      const restricted = restrict(toolkit, { ...auditor, allowed_tools: ["echo", "web_search"] })
      assert.deepStrictEqual(restricted.specs.map((s) => s.name), ["echo"])
      assert.deepStrictEqual(yield* restricted.call("echo", { text: "hi" }), { ok: true, output: "hi" })
      const unknown = yield* restricted.call("web_search", {})
      assert.isFalse(unknown.ok)
      assert.isUndefined(unknown.refused)
      assert.include(unknown.output, "unknown tool \"web_search\"")
    }))

  it("is the toolkit itself for no specialist and for \"all\"", () => {
    assert.strictEqual(restrict(toolkit, undefined), toolkit)
    assert.strictEqual(restrict(toolkit, { ...auditor, allowed_tools: "all" }), toolkit)
  })
})
