import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Option, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import type { Firing } from "../../src/domain/Firing.js"
import { Firings } from "../../src/missions/Firings.js"
import { MissionRunner } from "../../src/missions/MissionRunner.js"
import * as Missions from "../../src/missions/Missions.js"
import * as Runs from "../../src/runtime/Runs.js"
import { dailyDiamond, runnerLayer } from "./fixtures.js"

/**
 * A scheduled mission's firings, end to end on the mock and a real SQLite database: claimed by
 * `Firings`, each run by `MissionRunner.run` with its firing, the mission staying `scheduled`.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-firing-"))

const layer = () => runnerLayer(":memory:", dir)

let scripts = 0
const scriptFile = (script: unknown) => {
  const file = path.join(dir, `script-${++scripts}.json`)
  fs.writeFileSync(file, JSON.stringify(script))
  return file
}

const daily = dailyDiamond

const goRight = () => scriptFile({ nodes: { split: [{ content: "{\"go\": false}" }] } })

/** A daily mission armed at 08:00, and the clock at its first slot. */
const armedAndDue = Effect.gen(function*() {
  yield* TestClock.setTime(Date.parse("2025-03-10T08:00:00.000Z"))
  const missions = yield* Missions.Missions
  const made = yield* missions.create({ project: "acme", goal: "watch the market", blueprint: daily, slots: {}, missing: [], actor: "t", reason: "t" })
  yield* missions.approve("acme", made.mission_id, { actor: "t" })
  yield* TestClock.adjust("1 hour")
  const [firing] = yield* (yield* Firings).due
  assert.isDefined(firing)
  return { id: made.mission_id, firing: firing! }
})

const statusOf = (firing: Firing) => Effect.flatMap(Firings, (firings) => Effect.map(firings.get(firing), Option.map((f) => [f.status, f.reason])))

describe("a firing run", () => {
  it.effect("runs the graph as the firing's own run, its nodes below it; the mission stays scheduled and the firing records its end", () =>
    Effect.gen(function*() {
      const { firing, id } = yield* armedAndDue
      assert.strictEqual(firing.run_id, `${id}.at-20250310t0900z`)
      const children: Array<AutopilotEvent> = []
      const { mission, result } = yield* (yield* MissionRunner).run("acme", id, {
        actor: "daemon",
        firing,
        llm: { provider: "mock", mock_script: goRight() },
        onChildEvent: (e) => Effect.sync(() => void children.push(e))
      })
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.run_id, firing.run_id)
      assert.deepStrictEqual([...new Set(children.map((e) => e.run_id))].sort(), [`${firing.run_id}.merge`, `${firing.run_id}.right`, `${firing.run_id}.split`])
      assert.strictEqual(mission.status, "scheduled")
      const shown = yield* (yield* Missions.Missions).show("acme", id)
      assert.deepStrictEqual(shown.transitions.map((t) => t.to), ["draft", "approved", "scheduled"])
      assert.deepStrictEqual(yield* statusOf(firing), Option.some(["completed", null]))
      // The run knows it is a firing, for a resume; and the mission's own run id was never used.
      const runs = yield* Runs.Runs
      assert.deepStrictEqual((yield* runs.show(firing.run_id, { steps: 0, messages: false })).checkpoint.mission?.firing, {
        slot: "2025-03-10T09:00:00.000Z",
        run_id: firing.run_id,
        kind: "scheduled"
      })
      assert.strictEqual((yield* Effect.flip(runs.show(id, { steps: 0, messages: false })))._tag, "RunNotFound")
      // The firing's run and its node runs belong to the mission's project.
      assert.sameMembers(
        (yield* runs.list({ project: "acme" })).map((r) => (r._tag === "Found" ? r.checkpoint.run_id : r.run_id)),
        [firing.run_id, `${firing.run_id}.merge`, `${firing.run_id}.right`, `${firing.run_id}.split`]
      )
      assert.deepStrictEqual(yield* runs.list({ project: "default" }), [])
      assert.strictEqual(yield* runs.project(firing.run_id), "acme")
      // What `missions show --steps` reads for a scheduled mission: its latest firing.
      const steps = yield* (yield* MissionRunner).steps("acme", id)
      assert.strictEqual(steps.run?.run_id, firing.run_id)
      assert.deepStrictEqual(steps.nodes.map((n) => `${n.node}:${n.status}`), ["split:succeeded", "left:skipped", "right:succeeded", "merge:succeeded"])

      // The next day's firing is a run of its own; the first is left as it was.
      yield* TestClock.adjust("1 day")
      const [next] = yield* (yield* Firings).due
      const second = yield* (yield* MissionRunner).run("acme", id, { actor: "daemon", firing: next!, llm: { provider: "mock", mock_script: goRight() } })
      assert.strictEqual(second.result.run_id, `${id}.at-20250311t0900z`)
      assert.strictEqual(second.mission.status, "scheduled")
    }).pipe(Effect.provide(layer())))

  it.effect("a halted firing is recorded halted with why, and running the same firing again resumes it to its end", () =>
    Effect.gen(function*() {
      const { firing, id } = yield* armedAndDue
      const runner = yield* MissionRunner
      const script = goRight()
      const splitDone = yield* Deferred.make<string>()
      const first = yield* runner.run("acme", id, {
        actor: "daemon",
        firing,
        llm: { provider: "mock", mock_script: script },
        halt: Deferred.await(splitDone),
        onEvent: (e) => (e.kind === "node_ended" && e.node === "split" ? Deferred.succeed(splitDone, "halted by SIGTERM").pipe(Effect.asVoid) : Effect.void)
      })
      assert.strictEqual(first.result.status, "halted")
      assert.strictEqual(first.mission.status, "scheduled")
      assert.deepStrictEqual(yield* statusOf(firing), Option.some(["halted", "halted by SIGTERM"]))
      const events: Array<AutopilotEvent> = []
      const second = yield* runner.run("acme", id, { actor: "daemon", firing, onEvent: (e) => Effect.sync(() => void events.push(e)) })
      assert.strictEqual(second.result.status, "completed")
      assert.strictEqual(second.result.run_id, firing.run_id)
      assert.notInclude(events.flatMap((e) => (e.kind === "node_started" ? [e.node] : [])), "split")
      assert.deepStrictEqual(yield* statusOf(firing), Option.some(["completed", null]))
      // Ended: it is not run a third time.
      const again = yield* Effect.flip(runner.run("acme", id, { actor: "daemon", firing }))
      assert.strictEqual(again.message, `firing ${firing.run_id} has ended (completed): there is nothing left to run`)
    }).pipe(Effect.provide(layer())))

  it.effect("a scheduled mission does not run as a whole, nor an unclaimed firing; a firing refused before its run is recorded failed, a manual one forgotten", () =>
    Effect.gen(function*() {
      const { firing, id } = yield* armedAndDue
      const runner = yield* MissionRunner
      const whole = yield* Effect.flip(runner.run("acme", id, { actor: "t" }))
      assert.strictEqual(
        whole.message,
        `mission ${id} is scheduled: it runs as firings, each a run of its own (Firings.due on its schedule, Firings.fire by hand, then MissionRunner.run with the firing)`
      )
      // A firing handed to another mission is refused, and left as it is.
      const other = yield* (yield* Missions.Missions).create({ project: "acme", goal: "g", blueprint: daily, slots: {}, missing: [], actor: "t", reason: "t" })
      yield* (yield* Missions.Missions).approve("acme", other.mission_id, { actor: "t" })
      assert.strictEqual(
        (yield* Effect.flip(runner.run("acme", other.mission_id, { actor: "t", firing }))).message,
        `firing ${firing.run_id} is not a firing of mission ${other.mission_id} in project acme`
      )
      assert.deepStrictEqual(yield* statusOf(firing), Option.some(["running", null]))
      const unclaimed = { ...firing, slot: "2025-03-12T09:00:00.000Z", run_id: `${id}.at-20250312t0900z` }
      assert.strictEqual(
        (yield* Effect.flip(runner.run("acme", id, { actor: "t", firing: unclaimed }))).message,
        `firing ${unclaimed.run_id} of mission ${id} was never claimed (Firings.due or Firings.fire claims one)`
      )
      // A model that cannot be built: nothing runs, and the slot is spent with the reason.
      const missing = path.join(dir, "no-such-script.json")
      const refused = yield* Effect.flip(runner.run("acme", id, { actor: "t", firing, llm: { provider: "mock", mock_script: missing } }))
      assert.strictEqual(refused._tag, "BadInput")
      assert.deepStrictEqual(yield* statusOf(firing), Option.some(["failed", refused.message]))
      assert.strictEqual((yield* Effect.flip((yield* Runs.Runs).show(firing.run_id, { steps: 0, messages: false })))._tag, "RunNotFound")
      // A manual firing refused so is forgotten, as if it had never been asked for.
      const firings = yield* Firings
      yield* TestClock.adjust("1 second")
      const manual = yield* firings.fire("acme", id)
      yield* Effect.flip(runner.run("acme", id, { actor: "t", firing: manual, llm: { provider: "mock", mock_script: missing } }))
      assert.deepStrictEqual(yield* statusOf(manual), Option.none())

      // A slot claimed just before its mission was cancelled never runs: it ends cancelled.
      yield* TestClock.adjust("1 day")
      const [claimed] = yield* firings.due
      yield* (yield* Missions.Missions).cancel("acme", id, "t")
      const cancelled = yield* Effect.flip(runner.run("acme", id, { actor: "t", firing: claimed! }))
      assert.strictEqual(cancelled.message, `mission ${id} was cancelled: a cancelled mission does not fire`)
      assert.deepStrictEqual(yield* statusOf(claimed!), Option.some(["cancelled", cancelled.message]))
    }).pipe(Effect.provide(layer())))

  it.effect("a firing is deleted with its node runs, never a node run alone, and another firing is left whole", () =>
    Effect.gen(function*() {
      const { firing, id } = yield* armedAndDue
      const runner = yield* MissionRunner
      yield* runner.run("acme", id, { actor: "t", firing, llm: { provider: "mock", mock_script: goRight() } })
      yield* TestClock.adjust("1 second")
      const manual = yield* (yield* Firings).fire("acme", id)
      yield* runner.run("acme", id, { actor: "t", firing: manual, llm: { provider: "mock", mock_script: goRight() } })
      const runs = yield* Runs.Runs
      const refused = yield* Effect.flip(runs.delete([`${firing.run_id}.split`]))
      assert.match(refused.message, new RegExp(`is a node run of mission run "${firing.run_id.replace(".", "\\.")}"`))
      const deleted = yield* runs.delete([firing.run_id])
      assert.deepStrictEqual(deleted.map((d) => d.run_id).sort(), [firing.run_id, `${firing.run_id}.merge`, `${firing.run_id}.right`, `${firing.run_id}.split`])
      assert.strictEqual((yield* runs.show(manual.run_id, { steps: 0, messages: false })).checkpoint.status, "completed")
      assert.strictEqual((yield* runs.show(`${manual.run_id}.split`, { steps: 0, messages: false })).checkpoint.status, "completed")
    }).pipe(Effect.provide(layer())))
})
