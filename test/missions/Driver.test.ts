import { assert, describe, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Deferred, Effect, Fiber, Option, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Blueprint } from "../../src/domain/Blueprint.js"
import { BudgetUsage } from "../../src/domain/Budget.js"
import { LlmError } from "../../src/domain/Errors.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { defaultPolicy } from "../../src/domain/Healing.js"
import { judgeAttempt } from "../../src/missions/Driver.js"
import * as Healing from "../../src/missions/Healing.js"
import type * as MissionRunner from "../../src/missions/MissionRunner.js"
import * as Missions from "../../src/missions/Missions.js"
import * as Runs from "../../src/runtime/Runs.js"
import { diamond, driveClock, runnerLayer } from "./fixtures.js"

/**
 * The driver, end to end on the mock and a real SQLite database: a mission made and approved, then run
 * by `Missions.run` as its agent graph, every node a child run.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-driver-"))

const layer = () => runnerLayer(":memory:", dir)

const schema = { type: "object", properties: { go: { type: "boolean" } }, required: ["go"] }

let scripts = 0
const scriptFile = (script: unknown) => {
  const file = path.join(dir, `script-${++scripts}.json`)
  fs.writeFileSync(file, JSON.stringify(script))
  return file
}

/** A scheduled mission of `blueprint`, run on the mock with `script`; every event of its run and its nodes' runs. */
const runMission = (blueprint: Blueprint, script: unknown, options: Partial<MissionRunner.RunOptions> = {}) =>
  Effect.gen(function*() {
    const missions = yield* Missions.Missions
    const made = yield* missions.create({ project: "default", goal: "test the driver", blueprint, slots: {}, missing: [], actor: "test", reason: "test" })
    yield* missions.approve("default", made.mission_id, { actor: "test" })
    const events: Array<AutopilotEvent> = []
    const children: Array<AutopilotEvent> = []
    const ran = yield* Missions.run("default", made.mission_id, {
      actor: "test",
      llm: { provider: "mock", mock_script: scriptFile(script) },
      onEvent: (e) => Effect.sync(() => void events.push(e)),
      onChildEvent: (e) => Effect.sync(() => void children.push(e)),
      ...options
    })
    return { ...ran, events, children, id: made.mission_id }
  })

const ended = (events: ReadonlyArray<AutopilotEvent>) =>
  events.flatMap((e) => (e.kind === "node_ended" ? [`${e.node}:${e.status}`] : []))

describe("Driver", () => {
  it.effect("a mission's run and every node run belong to the mission's project", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "acme", goal: "test the driver", blueprint: diamond(), slots: {}, missing: [], actor: "test", reason: "test" })
      yield* missions.approve("acme", made.mission_id, { actor: "test" })
      const { result } = yield* Missions.run("acme", made.mission_id, {
        actor: "test",
        llm: { provider: "mock", mock_script: scriptFile({ nodes: { split: [{ content: "{\"go\": true}" }] } }) }
      })
      assert.strictEqual(result.status, "completed")
      const runs = yield* Runs.Runs
      const inAcme = (yield* runs.list({ project: "acme" })).map((r) => (r._tag === "Found" ? r.checkpoint.run_id : r.run_id))
      assert.sameMembers(inAcme, [made.mission_id, ...["split", "left", "right", "merge"].map((node) => `${made.mission_id}.${node}`)])
      assert.deepStrictEqual(yield* runs.list({ project: "default" }), [])
      assert.strictEqual(Runs.viewJson(yield* runs.show(made.mission_id, { steps: 0, messages: false })).project, "acme")
    }).pipe(Effect.provide(layer())))

  it.effect("runs independent branches at once, takes a condition that holds, and joins", () =>
    Effect.gen(function*() {
      const { events, mission, result } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": true}" }] } })
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(mission.status, "completed")
      assert.sameMembers(ended(events), ["split:succeeded", "left:succeeded", "right:succeeded", "merge:succeeded"])
      // Concurrent: the second branch starts before the first one ends.
      const at = (kind: string, node: string) => events.findIndex((e) => e.kind === kind && "node" in e && e.node === node)
      assert.isBelow(at("node_started", "right"), at("node_ended", "left"))
      assert.isBelow(at("node_started", "left"), at("node_ended", "right"))
      // The join starts only after both its inputs are done.
      assert.isAbove(at("node_started", "merge"), Math.max(at("node_ended", "left"), at("node_ended", "right")))
    }).pipe(Effect.provide(layer())))

  it.effect("skips the branch whose condition does not hold, and the join after it still runs", () =>
    Effect.gen(function*() {
      const { events, result } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": false}" }] } })
      assert.strictEqual(result.status, "completed")
      assert.sameMembers(ended(events), ["split:succeeded", "left:skipped", "right:succeeded", "merge:succeeded"])
      assert.deepStrictEqual(result.nodes.find((n) => n.node === "left")?.status, "skipped")
    }).pipe(Effect.provide(layer())))

  it.effect("with one node at a time, the branches run one after the other", () =>
    Effect.gen(function*() {
      const { events } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": true}" }] } }, { maxParallel: 1 })
      const order = events.flatMap((e) => (e.kind === "node_started" || e.kind === "node_ended" ? [`${e.kind}:${e.node}`] : []))
      for (let i = 0; i < order.length; i += 2) assert.strictEqual(order[i]!.split(":")[1], order[i + 1]!.split(":")[1])
    }).pipe(Effect.provide(layer())))

  it.effect("heals an answer that breaks the output Schema with a stricter instruction quoting the error", () =>
    Effect.gen(function*() {
      const { children, events, result } = yield* runMission(diamond(), {
        nodes: { split: [{ content: "{\"go\": \"yes\"}" }, { content: "{\"go\": true}" }] }
      })
      assert.strictEqual(result.status, "completed")
      const healing = events.filter((e) => e.kind === "healing")
      assert.lengthOf(healing, 1)
      const h = healing[0]!
      assert.strictEqual(h.kind === "healing" && h.adjustment.kind, "stricter_output")
      assert.strictEqual(h.kind === "healing" && h.outcome, "healed")
      // The second attempt is a run of its own, and its objective quotes what was wrong.
      const second = children.find((e) => e.kind === "run_started" && e.run_id.endsWith(".split.2"))
      assert.match(second?.kind === "run_started" ? second.goal.objective : "", /rejected: .*go.*boolean/)
      assert.deepStrictEqual(result.nodes.find((n) => n.node === "split")?.attempts, 2)
    }).pipe(Effect.provide(layer())))

  it.effect("a node that fails twice then succeeds: two healing attempts, each with the next rung", () =>
    Effect.gen(function*() {
      const { events, result } = yield* runMission(diamond(), {
        nodes: { split: [{ content: "no" }, { content: "still no" }, { content: "{\"go\": false}" }] }
      })
      assert.strictEqual(result.status, "completed")
      const healing = events.flatMap((e) => (e.kind === "healing" ? [`${e.attempt}:${e.adjustment.kind}:${e.outcome}`] : []))
      assert.deepStrictEqual(healing, ["1:stricter_output:failed", "2:lower_temperature:healed"])
    }).pipe(Effect.provide(layer())))

  it.effect("a node healing cannot recover fails the mission, named, never completed", () =>
    Effect.gen(function*() {
      const { events, mission, result } = yield* runMission(diamond(), { nodes: { split: [{ content: "never JSON" }] } })
      assert.strictEqual(result.status, "failed")
      assert.strictEqual(mission.status, "failed")
      assert.match(result.halt_reason ?? "", /node split/)
      // Nothing after the failed node started.
      assert.notInclude(events.flatMap((e) => (e.kind === "node_started" ? [e.node] : [])), "right")
    }).pipe(Effect.provide(layer())))

  it.effect("a provider that keeps failing is circuit-broken, and calls move to the fallback", () =>
    Effect.gen(function*() {
      const fallback = scriptFile({ model: "fallback-model", turns: [{ content: "answered by the fallback", criteria_met: [true] }] })
      const fiber = yield* runMission(
        diamond({ graph: { entry: "right", nodes: [{ id: "right", role: "Works", prompt: "Work", model_tier: "simple" }], edges: [] } }),
        { nodes: { right: [{ error: "upstream 503" }] } },
        { fallback: { provider: "mock", mock_script: fallback } }
      ).pipe(Effect.fork)
      // The runtime's own retries back off on the clock.
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("10 seconds")
      const { children, events, result } = yield* Fiber.join(fiber)
      assert.strictEqual(result.status, "completed")
      // Three failures of the primary (its retries), then the next retry of the same call reached the fallback.
      assert.lengthOf(children.filter((e) => e.kind === "model_retry"), 3)
      assert.strictEqual(result.nodes[0]?.telemetry.model_used, "fallback-model")
      assert.strictEqual(events.filter((e) => e.kind === "healing").length, 0, "the breaker moved the call before the node failed")
    }).pipe(Effect.provide(layer())))

  it.effect("the mission's spend is the sum of its nodes' telemetry", () =>
    Effect.gen(function*() {
      const { events, result } = yield* runMission(diamond(), {
        nodes: { split: [{ content: "{\"go\": true}", cost_usd: 0.01 }], left: [{ content: "left done", cost_usd: 0.02 }] }
      })
      const telemetry = events.flatMap((e) => (e.kind === "node_ended" && e.telemetry !== null ? [e.telemetry.cost_usd] : []))
      const sum = telemetry.reduce((a, b) => a + b, 0)
      assert.isAbove(sum, 0.03 - 1e-9)
      assert.closeTo(result.usage.dollars, sum, 1e-9)
      assert.closeTo(result.nodes.reduce((s, n) => s + n.telemetry.cost_usd, 0), sum, 1e-9)
    }).pipe(Effect.provide(layer())))

  it.effect("refuses a draft or a cancelled mission, and starts no run", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const draft = yield* missions.create({
        project: "default",
        goal: "g",
        blueprint: diamond(),
        slots: {},
        missing: [],
        actor: "test",
        reason: "test"
      })
      const refused = yield* Effect.flip(Missions.run("default", draft.mission_id, { actor: "test" }))
      assert.match(refused.message, /is a draft: approve it first/)
      yield* missions.cancel("default", draft.mission_id, "test")
      assert.match((yield* Effect.flip(Missions.run("default", draft.mission_id, { actor: "test" }))).message, /cancelled/)
      const runs = yield* Runs.Runs
      assert.lengthOf(yield* runs.list(), 0)
    }).pipe(Effect.provide(layer())))

  it.effect("a halted mission resumes where it stopped: finished nodes keep their results and are not run again", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const runs = yield* Runs.Runs
      const made = yield* missions.create({ project: "default", goal: "g", blueprint: diamond(), slots: {}, missing: [], actor: "test", reason: "test" })
      yield* missions.approve("default", made.mission_id, { actor: "test" })
      const script = scriptFile({ nodes: { split: [{ content: "{\"go\": true}" }] } })
      // Halted as soon as the branches are under way.
      const branches = yield* Deferred.make<string>()
      const first = yield* Missions.run("default", made.mission_id, {
        actor: "test",
        llm: { provider: "mock", mock_script: script },
        halt: Deferred.await(branches),
        onEvent: (e) => (e.kind === "node_ended" && e.node === "split" ? Deferred.succeed(branches, "operator stop").pipe(Effect.asVoid) : Effect.void)
      })
      assert.strictEqual(first.result.status, "halted")
      assert.strictEqual(first.mission.status, "halted")
      const splitRun = `${made.mission_id}.split`
      const before = (yield* runs.show(splitRun, { steps: 0, messages: false })).checkpoint
      const events: Array<AutopilotEvent> = []
      const second = yield* Missions.run("default", made.mission_id, { actor: "test", onEvent: (e) => Effect.sync(() => void events.push(e)) })
      assert.strictEqual(second.result.status, "completed")
      assert.strictEqual(second.mission.status, "completed")
      assert.notInclude(events.flatMap((e) => (e.kind === "node_started" ? [e.node] : [])), "split")
      assert.deepStrictEqual((yield* runs.show(splitRun, { steps: 0, messages: false })).checkpoint.updated_at, before.updated_at)
      // The mission's run is one run across both sessions, and it is deleted with every node run.
      const deleted = yield* runs.delete([made.mission_id])
      assert.includeMembers(deleted.map((d) => d.run_id), [made.mission_id, splitRun, `${made.mission_id}.merge`])
    }).pipe(Effect.provide(layer())))

  it.effect("a node run is deleted only with its mission's run", () =>
    Effect.gen(function*() {
      const { id } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": false}" }] } })
      const refused = yield* Effect.flip((yield* Runs.Runs).delete([`${id}.split`]))
      assert.match(refused.message, new RegExp(`is a node run of mission run "${id}"`))
    }).pipe(Effect.provide(layer())))

  it.effect("a batch mission runs its graph once per item of its list slot, each item's nodes their own runs", () =>
    Effect.gen(function*() {
      const blueprint = diamond({
        mode: "batch",
        slots: [{ name: "tickets", type: "string_list", required: true, description: "Tickets" }],
        graph: {
          entry: "split",
          nodes: [
            { id: "split", role: "Decides", prompt: "Triage {tickets}", model_tier: "simple", output_schema: schema },
            { id: "right", role: "Answers", prompt: "Answer {tickets}", model_tier: "simple" }
          ],
          edges: [{ from: "split", to: "right", when: { field: "go", op: "equals", value: true } }]
        }
      })
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "default", goal: "g", blueprint, slots: { tickets: ["T-1", "T-2"] }, missing: [], actor: "t", reason: "t" })
      yield* missions.approve("default", made.mission_id, { actor: "t" })
      const children: Array<AutopilotEvent> = []
      const { result } = yield* Missions.run("default", made.mission_id, {
        actor: "t",
        llm: { provider: "mock", mock_script: scriptFile({ nodes: { "1.split": [{ content: "{\"go\": true}" }], "2.split": [{ content: "{\"go\": false}" }] } }) },
        onChildEvent: (e) => Effect.sync(() => void children.push(e))
      })
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual(result.nodes.map((n) => `${n.node}:${n.status}`), ["1.split:succeeded", "1.right:succeeded", "2.split:succeeded", "2.right:skipped"])
      const objective = children.find((e) => e.kind === "run_started" && e.run_id === `${made.mission_id}.1.right`)
      assert.match(objective?.kind === "run_started" ? objective.goal.objective : "", /Answer T-1/)
    }).pipe(Effect.provide(layer())))

  it.effect("a node whose spend spikes past k times its estimate is re-run once with its context trimmed", () =>
    Effect.gen(function*() {
      // The nodes before it cost $0.01 each: an estimate of $0.01, a spike above $0.03; its first answer costs $0.50.
      const { events, result } = yield* runMission(diamond(), {
        nodes: {
          split: [{ content: "{\"go\": true}", cost_usd: 0.01 }],
          left: [{ content: "left", cost_usd: 0.01 }],
          right: [{ content: "right", cost_usd: 0.01 }],
          merge: [{ content: "merged, expensively", cost_usd: 0.5, criteria_met: [false] }, { content: "merged", cost_usd: 0.01 }]
        }
      })
      const healing = events.flatMap((e) => (e.kind === "healing" ? [`${e.class}:${e.adjustment.kind}:${e.outcome}`] : []))
      assert.deepStrictEqual(healing, ["cost_spike:trim_context:healed"])
      assert.strictEqual(result.status, "completed")
    }).pipe(Effect.provide(layer())))

  it.effect("cancelling a running mission halts its run, and the mission stays cancelled", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "default", goal: "g", blueprint: diamond(), slots: {}, missing: [], actor: "t", reason: "t" })
      yield* missions.approve("default", made.mission_id, { actor: "t" })
      const script = scriptFile({ nodes: { split: [{ content: "{\"go\": true}", latency_ms: 60_000 }] } })
      const fiber = yield* Missions.run("default", made.mission_id, { actor: "t", llm: { provider: "mock", mock_script: script } }).pipe(Effect.fork)
      // Cancelled once its first node is under way.
      while ((yield* missions.get("default", made.mission_id)).status !== "running") yield* TestClock.adjust("100 millis")
      yield* TestClock.adjust("1 second")
      assert.isTrue((yield* missions.cancel("default", made.mission_id, "cli:carol")).cancelled)
      for (let i = 0; i < 20 && (yield* Fiber.poll(fiber))._tag === "None"; i++) yield* TestClock.adjust("1 second")
      const { mission, result } = yield* Fiber.join(fiber)
      assert.strictEqual(result.status, "halted")
      assert.strictEqual(result.halt_reason, "mission cancelled")
      assert.strictEqual(mission.status, "cancelled")
    }).pipe(Effect.provide(layer())))

  it.effect("a provider the breaker opened stays open when the mission resumes", () =>
    Effect.gen(function*() {
      const chain = diamond({
        graph: {
          entry: "first",
          nodes: [
            { id: "first", role: "Works", prompt: "Work", model_tier: "simple" },
            { id: "second", role: "Works more", prompt: "Work more", model_tier: "simple" }
          ],
          edges: [{ from: "first", to: "second" }]
        }
      })
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "default", goal: "g", blueprint: chain, slots: {}, missing: [], actor: "t", reason: "t" })
      yield* missions.approve("default", made.mission_id, { actor: "t" })
      const fallback = scriptFile({ model: "fallback-model", turns: [{ content: "done by the fallback", criteria_met: [true] }] })
      const primary = scriptFile({ nodes: { first: [{ error: "upstream 503" }], second: [{ error: "upstream 503" }] } })
      const halt = yield* Deferred.make<string>()
      const events: Array<AutopilotEvent> = []
      const first = yield* Missions.run("default", made.mission_id, {
        actor: "t",
        llm: { provider: "mock", mock_script: primary },
        fallback: { provider: "mock", mock_script: fallback },
        halt: Deferred.await(halt),
        onEvent: (e) =>
          Effect.zipRight(
            Effect.sync(() => void events.push(e)),
            e.kind === "node_ended" && e.node === "first" ? Deferred.succeed(halt, "pause") : Effect.void
          )
      }).pipe(Effect.fork)
      for (let i = 0; i < 40 && (yield* Fiber.poll(first))._tag === "None"; i++) yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(first)).result.status, "halted")
      assert.deepStrictEqual(events.flatMap((e) => (e.kind === "breaker_opened" ? [e.provider] : [])), [`mock (script ${primary})`])

      const children: Array<AutopilotEvent> = []
      const second = yield* Missions.run("default", made.mission_id, { actor: "t", onChildEvent: (e) => Effect.sync(() => void children.push(e)) }).pipe(
        Effect.fork
      )
      const { result } = yield* driveClock(second)
      assert.strictEqual(result.status, "completed")
      // The second node's calls went straight to the fallback: not one retry of the broken primary.
      assert.lengthOf(children.filter((e) => e.kind === "model_retry"), 0)
      assert.strictEqual(result.nodes.find((n) => n.node === "second")?.telemetry.model_used, "fallback-model")
    }).pipe(Effect.provide(layer())))

  it.effect("a fallback model, once chosen, is kept by the node's later attempts", () =>
    Effect.gen(function*() {
      const { events, result } = yield* runMission(
        diamond({ healing: { ladders: { schema_violation: [{ kind: "fallback_model" }, { kind: "stricter_output" }] } } }),
        { nodes: { split: [{ content: "no" }, { content: "still no" }, { content: "{\"go\": true}" }] } }
      )
      assert.strictEqual(result.status, "completed")
      const models = events.flatMap((e) => (e.kind === "node_ended" && e.node === "split" ? [e.telemetry?.model_used] : []))
      assert.deepStrictEqual(models, ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-mini"])
      const chosen = events.find((e) => e.kind === "healing" && e.adjustment.kind === "fallback_model")
      assert.deepStrictEqual(chosen?.kind === "healing" ? chosen.adjustment : undefined, { kind: "fallback_model", model: "gpt-4.1-mini" })
    }).pipe(Effect.provide(layer())))

  it.effect("a run that ended before its mission followed is not run again: the mission catches up", () =>
    Effect.gen(function*() {
      const { id, result } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": true}" }] } })
      const sql = yield* SqlClient.SqlClient
      // As if the process died between the run's end and the mission's last transition.
      yield* sql`UPDATE missions SET status = 'running' WHERE mission_id = ${id}`
      const runs = yield* Runs.Runs
      const before = yield* Stream.runCount(runs.events(id, { follow: false }))
      const again = yield* Missions.run("default", id, { actor: "t" })
      assert.strictEqual(again.mission.status, "completed")
      assert.strictEqual(again.result.status, "completed")
      assert.deepStrictEqual(again.result.nodes.map((n) => n.status), result.nodes.map((n) => n.status))
      assert.strictEqual(yield* Stream.runCount(runs.events(id, { follow: false })), before, "no new session, no second criteria check")
    }).pipe(Effect.provide(layer())))

  it.effect("work delivered again whose run ended after it was looked at is caught up with, not run a second time", () =>
    Effect.gen(function*() {
      const { id } = yield* runMission(diamond(), { nodes: { split: [{ content: "{\"go\": true}" }] } })
      const sql = yield* SqlClient.SqlClient
      // What a second daemon saw before the first ended the run: a mission still to be run.
      yield* sql`UPDATE missions SET status = 'scheduled' WHERE mission_id = ${id}`
      const runs = yield* Runs.Runs
      const before = yield* Stream.runCount(runs.events(id, { follow: false }))
      const again = yield* Missions.run("default", id, { actor: "t", unlessEnded: (c) => c.status !== "running" })
      assert.isTrue(again.caughtUp)
      assert.strictEqual(again.mission.status, "completed")
      assert.strictEqual(yield* Stream.runCount(runs.events(id, { follow: false })), before, "no new session: the ended run was not resumed")
    }).pipe(Effect.provide(layer())))

  it.effect("a halt during a healing backoff does not wait it out, and the resume runs the announced attempt", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "default", goal: "g", blueprint: diamond(), slots: {}, missing: [], actor: "t", reason: "t" })
      yield* missions.approve("default", made.mission_id, { actor: "t" })
      // Five failed tries (the runtime's own retries), then an answer: the node fails once, transiently.
      const failing = Array.from({ length: 5 }, () => ({ error: "upstream 503" }))
      const script = scriptFile({ nodes: { split: [...failing, { content: "{\"go\": false}" }] } })
      const halt = yield* Deferred.make<string>()
      const events: Array<AutopilotEvent> = []
      const first = yield* Missions.run("default", made.mission_id, {
        actor: "t",
        llm: { provider: "mock", mock_script: script },
        halt: Deferred.await(halt),
        onEvent: (e) =>
          Effect.zipRight(
            Effect.sync(() => void events.push(e)),
            e.kind === "node_ended" && e.status === "failed" ? Deferred.succeed(halt, "pause") : Effect.void
          )
      }).pipe(Effect.fork)
      // The runtime's retries take 3.75 s of the clock; the backoff after them would take 4 s more.
      const halted = yield* driveClock(first)
      assert.strictEqual(halted.result.status, "halted")
      const started = events.filter((e) => e.kind === "node_started" && e.node === "split")
      assert.deepStrictEqual(started.map((e) => e.kind === "node_started" ? [e.attempt, e.healing?.adjustment.kind] : []), [[1, undefined], [2, "backoff"]])

      // A new session makes a new mock, whose turns start again: this one answers at once.
      const answers = scriptFile({ nodes: { split: [{ content: "{\"go\": false}" }] } })
      const second = yield* Missions.run("default", made.mission_id, {
        actor: "t",
        llm: { provider: "mock", mock_script: answers },
        onEvent: (e) => Effect.sync(() => void events.push(e))
      }).pipe(Effect.fork)
      const { result } = yield* driveClock(second)
      assert.strictEqual(result.status, "completed")
      // Attempt 2 was announced once, in the first session, and run in the second.
      assert.lengthOf(events.filter((e) => e.kind === "node_started" && e.node === "split"), 2)
      const healing = events.flatMap((e) => (e.kind === "healing" ? [`${e.class}:${e.adjustment.kind}:${e.outcome}`] : []))
      assert.deepStrictEqual(healing, ["transient:backoff:healed"])
    }).pipe(Effect.provide(layer())))

  it.effect("a condition that cannot be judged on a node's output fails the mission, naming the edge, never silently", () =>
    Effect.gen(function*() {
      const optional = diamond()
      // The same graph, with `go` no longer required: an answer without it decodes, and the condition cannot be judged.
      const blueprint = {
        ...optional,
        graph: {
          ...optional.graph,
          nodes: [{ ...optional.graph.nodes[0], output_schema: { type: "object", properties: { go: { type: "boolean" } } } }, ...optional.graph.nodes.slice(1)] as typeof optional.graph.nodes
        }
      }
      const { events, mission, result } = yield* runMission(blueprint, { nodes: { split: [{ content: "{}" }] } })
      assert.strictEqual(result.status, "failed")
      assert.strictEqual(mission.status, "failed")
      assert.match(result.halt_reason ?? "", /split → left cannot be judged on split's output: go is missing/)
      assert.include(ended(events), "left:failed")
    }).pipe(Effect.provide(layer())))
})


describe("judgeAttempt", () => {
  const unit = (schema?: Record<string, unknown>) => ({
    key: "draft",
    instance: 0,
    node: { id: "draft", role: "Drafts", prompt: "Draft", tools: [], model_tier: "simple" as const, ...(schema === undefined ? {} : { output_schema: schema }) }
  })
  const result = (status: "completed" | "failed" | "halted" | "partial", output = "", halt_reason: string | null = null) => ({
    run_id: "ms-1.draft",
    status,
    halt_reason,
    iterations: 1,
    usage: new BudgetUsage({ seconds: 1, tool_calls: 0, tokens: 10, dollars: 0.5, iterations: 1 }),
    criteria_met: [status === "completed"],
    output
  })
  const facts = { halted: false, spiked: false, spentUsd: 0.5, estimateUsd: 0.1, lastError: Option.none(), toolCalls: [] }
  const failed = (tools: number) => Array.from({ length: tools }, () => ({ name: "read_file", arguments: {}, ok: false, output: "no such file" }))
  const policy = defaultPolicy

  it("reads a completed answer: decoded, or a schema violation, or an empty answer or refusal", () => {
    assert.deepStrictEqual(judgeAttempt(unit(), result("completed", "A draft."), facts, policy), { _tag: "Succeeded", value: "A draft.", text: "A draft." })
    const invalid = judgeAttempt(unit({ type: "object", required: ["x"] }), result("completed", "{}"), facts, policy)
    assert.strictEqual(invalid._tag === "Failed" && invalid.failure._tag, "InvalidOutput")
    const refused = judgeAttempt(unit(), result("completed", "I'm sorry, but I can't help with that."), facts, policy)
    assert.strictEqual(refused._tag === "Failed" && Healing.classify(refused.failure, policy), "empty_answer")
  })

  it("a failed run is a model failure when a call failed, else beyond healing", () => {
    const error = new LlmError({ message: "upstream 503", transient: true })
    const model = judgeAttempt(unit(), result("failed", "", "model call failed"), { ...facts, lastError: Option.some(error) }, policy)
    assert.strictEqual(model._tag === "Failed" && Healing.classify(model.failure, policy), "transient")
    assert.strictEqual(judgeAttempt(unit(), result("failed", "", "database error"), facts, policy)._tag, "Unhealable")
  })

  it("a run stopped short is the mission's halt, a cost spike, a tool error loop, or out of its budget", () => {
    assert.strictEqual(judgeAttempt(unit(), result("halted", "", "stop"), { ...facts, halted: true }, policy)._tag, "Halted")
    const spike = judgeAttempt(unit(), result("halted", "", "dollar limit"), { ...facts, spiked: true }, policy)
    assert.strictEqual(spike._tag === "Failed" && Healing.classify(spike.failure, policy), "cost_spike")
    const loop = judgeAttempt(unit(), result("halted", "", "iteration limit"), { ...facts, toolCalls: failed(3) }, policy)
    assert.strictEqual(loop._tag === "Failed" && Healing.classify(loop.failure, policy), "tool_error_loop")
    const out = judgeAttempt(unit(), result("partial", "", "iteration limit"), { ...facts, toolCalls: failed(1) }, policy)
    assert.deepStrictEqual(out, { _tag: "Halted", reason: "node draft did not finish within its budget: iteration limit" })
  })
})
