import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { ChatToolCall } from "../../src/llm/Llm.js"
import * as MissionRunner from "../../src/missions/MissionRunner.js"
import * as Missions from "../../src/missions/Missions.js"
import * as NodeWork from "../../src/missions/NodeWork.js"
import { diamond, runnerLayer } from "./fixtures.js"

/** `MissionRunner.steps`, on missions actually run by `Missions.run` on the mock. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-steps-"))

const layer = () => runnerLayer(":memory:", dir)

let scripts = 0
const scriptFile = (script: unknown) => {
  const file = path.join(dir, `script-${++scripts}.json`)
  fs.writeFileSync(file, JSON.stringify(script))
  return file
}

const approved = Effect.gen(function*() {
  const missions = yield* Missions.Missions
  const made = yield* missions.create({ project: "default", goal: "test the steps", blueprint: diamond(), slots: {}, missing: [], actor: "test", reason: "test" })
  yield* missions.approve("default", made.mission_id, { actor: "test" })
  return made.mission_id
})

const steps = (id: string) => Effect.flatMap(MissionRunner.MissionRunner, (runner) => runner.steps("default", id))

describe("MissionRunner.steps", () => {
  it.effect("every node's attempts in graph order, with full output, conversation, telemetry and the healing of a retried node", () =>
    Effect.gen(function*() {
      const id = yield* approved
      const long = `${"a long answer, kept whole. ".repeat(200)}the end`
      const ran = yield* Missions.run("default", id, {
        actor: "test",
        llm: {
          provider: "mock",
          mock_script: scriptFile({
            nodes: {
              split: [{ content: "{\"go\": \"yes\"}", usage: { input_tokens: 11, output_tokens: 7 } }, { content: "{\"go\": false}" }],
              right: [{ content: long }]
            }
          })
        }
      })
      assert.strictEqual(ran.result.status, "completed")
      const shown = yield* steps(id)

      assert.deepStrictEqual(shown.run?.run_id, id)
      assert.strictEqual(shown.run?.status, "completed")
      assert.strictEqual(shown.run?.interrupted, false)
      assert.closeTo(shown.run!.cost_usd, ran.result.usage.dollars, 1e-12)
      assert.deepStrictEqual(shown.nodes.map((n) => [n.node, n.status, n.attempts.length]), [
        ["split", "succeeded", 2],
        ["left", "skipped", 0],
        ["right", "succeeded", 1],
        ["merge", "succeeded", 1]
      ])
      assert.strictEqual(shown.nodes[1]!.reason, "no edge into it was taken")

      const [first, second] = shown.nodes[0]!.attempts
      assert.deepStrictEqual([first!.attempt, first!.run_id, first!.status], [1, `${id}.split`, "failed"])
      assert.match(first!.reason ?? "", /healing attempt 1 follows/)
      assert.strictEqual(first!.output, "{\"go\": \"yes\"}")
      assert.isUndefined(first!.healing)
      assert.deepStrictEqual([second!.attempt, second!.run_id, second!.status], [2, `${id}.split.2`, "succeeded"])
      assert.strictEqual(second!.healing?.class, "schema_violation")
      assert.strictEqual(second!.healing?.adjustment.kind, "stricter_output")
      assert.strictEqual(second!.healing?.outcome, "healed")

      // Telemetry is each attempt's own, as the driver recorded it in node_ended.
      const recorded = ran.result.nodes.find((n) => n.node === "split")!.telemetry
      assert.isAtLeast(first!.telemetry.input_tokens, 11)
      assert.isAbove(first!.telemetry.latency_ms + first!.telemetry.output_tokens, 0)
      assert.strictEqual(first!.telemetry.model_used, recorded.model_used)
      assert.strictEqual(first!.telemetry.input_tokens + second!.telemetry.input_tokens, recorded.input_tokens)
      assert.closeTo(first!.telemetry.cost_usd + second!.telemetry.cost_usd, recorded.cost_usd, 1e-12)

      // The output in full, never a preview; the conversation: the act messages with the answer, then the judge's.
      const right = shown.nodes[2]!.attempts[0]!
      assert.strictEqual(right.output, long)
      const answer = right.messages.findIndex((m) => m.role === "assistant")
      assert.strictEqual(right.messages[answer]!.content, long)
      assert.strictEqual(right.messages[0]!.role, "system")
      assert.match(right.messages.slice(0, answer).map((m) => m.content).join("\n"), /Go right/)
      assert.isAbove(right.messages.length, answer + 1)
      assert.match(right.messages.slice(answer + 1).map((m) => m.content).join("\n"), /a long answer/)
      // The healing attempt's conversation carries the stricter instruction quoting the error.
      assert.match(second!.messages.map((m) => m.content).join("\n"), /rejected: .*go.*boolean/)

      // What was healed and what it cost: the first, failed attempt of split.
      assert.deepStrictEqual(shown.healed.map((h) => [h.node, h.attempts, h.outcome, h.healing.map((a) => `${a.attempt}:${a.class}:${a.adjustment.kind}:${a.outcome}`)]), [
        ["split", 2, "healed", ["1:schema_violation:stricter_output:healed"]]
      ])
      assert.deepStrictEqual(shown.healing_cost, first!.telemetry)
      // And the whole run is the sum of its attempts and its own criteria check.
      const attempts = NodeWork.sumTelemetry(shown.nodes.flatMap((n) => n.attempts.map((a) => a.telemetry)))
      assert.isAtMost(attempts.cost_usd, shown.run!.cost_usd + 1e-12)
    }).pipe(Effect.provide(layer())))

  it.effect("a node healing could not recover: every attempt failed, the healing outcome failed, its cost all of the re-run ones", () =>
    Effect.gen(function*() {
      const id = yield* approved
      const ran = yield* Missions.run("default", id, {
        actor: "test",
        llm: { provider: "mock", mock_script: scriptFile({ nodes: { split: [{ content: "not json" }] } }) }
      })
      assert.strictEqual(ran.result.status, "failed")
      const shown = yield* steps(id)
      const split = shown.nodes[0]!
      assert.strictEqual(split.status, "failed")
      assert.isAbove(split.attempts.length, 1)
      assert.isTrue(split.attempts.every((a) => a.status === "failed" && a.output === "not json"))
      assert.deepStrictEqual(shown.nodes.slice(1).map((n) => [n.node, n.status, n.attempts.length]), [
        ["left", "not_run", 0],
        ["right", "not_run", 0],
        ["merge", "not_run", 0]
      ])
      assert.strictEqual(shown.healed[0]!.outcome, "failed")
      assert.strictEqual(shown.healed[0]!.healing.at(-1)!.outcome, "failed")
      assert.deepStrictEqual(shown.healing_cost, NodeWork.sumTelemetry(split.attempts.slice(0, -1).map((a) => a.telemetry)))
    }).pipe(Effect.provide(layer())))

  it.effect("a node that calls a tool: its conversation carries the call and its tool message, and its next iteration replays them as real turns", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const blueprint = diamond()
      const withTools = {
        ...blueprint,
        graph: { ...blueprint.graph, nodes: Arr.map(blueprint.graph.nodes, (n) => (n.id === "right" ? { ...n, tools: ["list_files"] } : n)) }
      }
      const made = yield* missions.create({ project: "default", goal: "test tool turns", blueprint: withTools, slots: {}, missing: [], actor: "test", reason: "test" })
      yield* missions.approve("default", made.mission_id, { actor: "test" })
      const ran = yield* Missions.run("default", made.mission_id, {
        actor: "test",
        llm: {
          provider: "mock",
          mock_script: scriptFile({
            nodes: {
              split: [{ content: "{\"go\": false}" }],
              right: [{ content: "", tool_calls: [{ name: "list_files", arguments: { path: "." } }], criteria_met: [false] }, { content: "went right" }]
            }
          })
        }
      })
      assert.strictEqual(ran.result.status, "completed")
      const right = (yield* steps(made.mission_id)).nodes.find((n) => n.node === "right")!.attempts[0]!
      const call: ChatToolCall = { id: "call_0_0", type: "function", function: { name: "list_files", arguments: "{\"path\":\".\"}" } }
      const calling = right.messages.filter((m) => m.tool_calls !== undefined)
      const answers = right.messages.filter((m) => m.role === "tool")
      // Once as iteration 1's own turn, once replayed into iteration 2's prompt.
      assert.deepStrictEqual(calling.map((m) => [m.role, m.content, m.tool_calls]), [["assistant", "", [call]], ["assistant", "", [call]]])
      assert.deepStrictEqual(answers.map((m) => m.tool_call_id), ["call_0_0", "call_0_0"])
      assert.isTrue(answers.every((m) => m.content === answers[0]!.content && m.content !== ""))
      for (const index of right.messages.flatMap((m, i) => (m.role === "tool" ? [i] : []))) {
        assert.deepStrictEqual(right.messages[index - 1]!.tool_calls, [call])
      }
      assert.strictEqual(right.messages.filter((m) => m.role === "assistant").at(-1)!.content, "went right")
    }).pipe(Effect.provide(layer())))

  it.effect("a mission never run has no run and no steps; an unknown one is not found", () =>
    Effect.gen(function*() {
      const id = yield* approved
      const shown = yield* steps(id)
      assert.isNull(shown.run)
      assert.deepStrictEqual(shown.nodes, [])
      assert.deepStrictEqual(shown.healed, [])
      assert.strictEqual(shown.healing_cost.cost_usd, 0)
      const missing = yield* Effect.flip(steps("ms-000000000000"))
      assert.strictEqual(missing._tag, "MissionNotFound")
    }).pipe(Effect.provide(layer())))
})
