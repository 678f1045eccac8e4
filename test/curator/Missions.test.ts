import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Curator from "../../src/curator/Curator.js"
import type { Blueprint } from "../../src/domain/Blueprint.js"
import * as Missions from "../../src/missions/Missions.js"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import * as MissionStore from "../../src/store/MissionStore.js"
import { diamond, runnerLayer } from "../missions/fixtures.js"

/** Missions run end to end on the mock (every node a child run), then curated. */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-curator-missions-"))
let scripts = 0
const scriptFile = (script: unknown) => {
  const file = path.join(dir, `script-${++scripts}.json`)
  fs.writeFileSync(file, JSON.stringify(script))
  return file
}

const layer = () =>
  Curator.layer().pipe(Layer.provideMerge(Layer.mergeAll(CuratorStore.layer, MissionStore.layer)), Layer.provideMerge(runnerLayer(":memory:", dir)))

const runMission = (blueprint: Blueprint, goal: string) =>
  Effect.gen(function*() {
    const missions = yield* Missions.Missions
    const made = yield* missions.create({ project: "default", goal, blueprint, slots: {}, missing: [], actor: "test", reason: "test" })
    yield* missions.approve("default", made.mission_id, { actor: "test" })
    const ran = yield* Missions.run("default", made.mission_id, {
      actor: "test",
      llm: { provider: "mock", mock_script: scriptFile({ nodes: { split: [{ content: "{\"go\": true}" }] } }) }
    })
    return { id: made.mission_id, status: ran.result.status }
  })

const samples = Effect.flatMap(CuratorStore.CuratorStore, (store) => store.page({ completed_only: false, max_tokens: 1_000_000 }, 0, 100))

describe("Curator on missions", () => {
  it.effect("captures every succeeded node of a completed mission as a node sample with its blueprint, node, specialist and tier; its child runs are not also runs", () =>
    Effect.gen(function*() {
      const { id, status } = yield* runMission(diamond(), "decide, branch and join")
      assert.strictEqual(status, "completed")
      const curator = yield* Curator.Curator
      const report = yield* curator.capture
      const stored = (yield* samples).map((s) => s.sample)
      assert.strictEqual(report.samples, 4)
      assert.sameMembers(stored.map((s) => s.metadata.node), ["split", "left", "right", "merge"])
      for (const s of stored) {
        assert.strictEqual(s.metadata.source, "node")
        assert.strictEqual(s.metadata.blueprint, "diamond")
        assert.strictEqual(s.metadata.mission_id, id)
        assert.strictEqual(s.metadata.run_status, "completed")
        assert.strictEqual(s.metadata.tier, "simple")
        assert.strictEqual(s.metadata.run_id, `${id}.${s.metadata.node}`)
        // The instruction is the node's task, not the mission's id.
        assert.notInclude(s.messages.find((m) => m.role === "user")!.content, id)
      }
      assert.include(stored.find((s) => s.metadata.node === "split")!.messages[1]!.content, "Decide whether to go")
      assert.strictEqual(stored.find((s) => s.metadata.node === "left")!.metadata.specialist, "left")
      const datasets = (yield* curator.datasets).map((d) => [d.definition.id, d.samples])
      assert.deepInclude(datasets, ["blueprint.diamond", 4])
      assert.deepInclude(datasets, ["specialist.merge", 1])
      assert.deepStrictEqual(yield* curator.capture, { runs: 0, samples: 0 })
    }).pipe(Effect.provide(layer())))

  it.effect("honours the blueprint's curation: nothing when capture is off, only the nodes it names", () =>
    Effect.gen(function*() {
      yield* runMission(diamond({ id: "quiet", curation: { capture: false } }), "a quiet one")
      yield* runMission(diamond({ id: "picky", curation: { capture: true, nodes: ["merge"], tags: ["gold"] } }), "a picky one")
      yield* (yield* Curator.Curator).capture
      const stored = (yield* samples).map((s) => s.sample.metadata)
      assert.deepStrictEqual(stored.map((m) => [m.blueprint, m.node, m.tags]), [["picky", "merge", ["gold"]]])
    }).pipe(Effect.provide(layer())))
})
