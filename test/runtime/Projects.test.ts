import * as NodeContext from "@effect/platform-node/NodeContext"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Fanout from "../../src/runtime/Fanout.js"
import * as Runs from "../../src/runtime/Runs.js"
import { RunStore } from "../../src/store/RunStore.js"
import { calculator } from "../../src/tools/Calculator.js"
import { eachDatabase } from "../support/Databases.js"
import { earlierCheckpoint, environmentWith, goal, ofKind, runMission, script } from "./fixtures.js"

const workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-projects-"))
afterAll(() => fs.rmSync(workspaceRoot, { recursive: true, force: true }))

/** Never meets its second criterion, so every session ends on its iteration cap and can be resumed. */
const halfway = script([{ criteria_met: [true, false] }])

const idsIn = (project: string) =>
  Effect.flatMap(Runs.Runs, (runs) => Effect.map(runs.list({ project }), (listed) => listed.map((r) => (r._tag === "Found" ? r.checkpoint.run_id : r.run_id))))

const checkpointOf = (runId: string) =>
  Effect.flatMap(RunStore, (store) =>
    Effect.map(store.load(runId), (loaded) => {
      assert(loaded._tag === "Found", `${runId} has no checkpoint that decodes`)
      return loaded.checkpoint
    }))

describe("a checkpoint from before projects", () => {
  it("decodes as the default project's", () => {
    assert.strictEqual(Schema.decodeUnknownSync(Checkpoint)(earlierCheckpoint).project, "default")
  })
})

eachDatabase("Projects", (database) => {
  const layer = Runs.layer({ workspaceRoot }).pipe(Layer.provideMerge(Layer.merge(environmentWith([calculator], database.layer), NodeContext.layer)))

  it.effect("a run started in a project is listed under it and no other, and keeps it across resumes", () =>
    Effect.gen(function*() {
      const started = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 }, project: "p1" }, halfway)
      yield* runMission({ runId: "other", goal: goal(), policy: { max_iterations: 1 } }, halfway)
      assert.deepStrictEqual(ofKind(started.events, "run_started").map((e) => e.project), ["p1"])
      assert.deepStrictEqual(yield* idsIn("p1"), ["r"])
      assert.deepStrictEqual(yield* idsIn("p2"), [])
      assert.deepStrictEqual(yield* idsIn("default"), ["other"])
      const resumed = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, halfway)
      assert.strictEqual(resumed.result.iterations, 2)
      assert.deepStrictEqual(ofKind(resumed.events, "run_started").map((e) => e.project), ["p1"])
      assert.strictEqual((yield* checkpointOf("r")).project, "p1")
      assert.deepStrictEqual(yield* idsIn("p1"), ["r"])
      const runs = yield* Runs.Runs
      assert.strictEqual(yield* runs.project("r"), "p1")
      assert.strictEqual(Runs.viewJson(yield* runs.show("r", { steps: 0, messages: false })).project, "p1")
      assert.deepStrictEqual((yield* runs.list({ project: "p1" })).map((r) => Runs.listedJson(r).project), ["p1"])
    }).pipe(Effect.provide(layer)))

  it.effect("a resume asking for another project is refused and changes nothing; a bad project is refused before anything is written", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 }, project: "p1" }, halfway)
      const before = yield* checkpointOf("r")
      const moved = yield* Effect.flip(runMission({ runId: "r", resume: true, project: "p2", policy: { max_iterations: 2 } }, halfway))
      assert.strictEqual(moved._tag, "BadInput")
      assert.strictEqual(moved.message, "run \"r\" belongs to project \"p1\", not \"p2\"; `autopilot resume r` continues it in its own")
      assert.deepStrictEqual(yield* checkpointOf("r"), before)
      const bad = yield* Effect.flip(runMission({ runId: "new", goal: goal(), project: "no/slashes" }, halfway))
      assert.strictEqual(bad.message, "project \"no/slashes\" is not allowed: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit")
      assert.strictEqual((yield* Effect.flip((yield* Runs.Runs).project("new")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layer)))

  it.effect("a run rebuilt from its history, its checkpoint corrupt or gone, keeps its project", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "corrupt", goal: goal(), policy: { max_iterations: 1 }, project: "p1" }, halfway)
      yield* runMission({ runId: "gone", goal: goal(), policy: { max_iterations: 1 }, project: "p2" }, halfway)
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE checkpoints SET state = '{"version": 1, "run_id": tru' WHERE run_id = 'corrupt'`
      yield* sql`DELETE FROM checkpoints WHERE run_id = 'gone'`
      const runs = yield* Runs.Runs
      // With no checkpoint, the project is still on record in the run's history.
      assert.strictEqual(yield* runs.project("gone"), "p2")
      assert.strictEqual(yield* runs.project("corrupt"), "p1")
      yield* runMission({ runId: "corrupt", resume: true, policy: { max_iterations: 2 } }, halfway)
      yield* runMission({ runId: "gone", resume: true, policy: { max_iterations: 2 } }, halfway)
      assert.strictEqual((yield* checkpointOf("corrupt")).project, "p1")
      assert.strictEqual((yield* checkpointOf("gone")).project, "p2")
      assert.deepStrictEqual(yield* idsIn("p2"), ["gone"])
    }).pipe(Effect.provide(layer)))

  it.effect("a fan-out's children, nested ones too, belong to the fan-out's project, on a resume as well", () =>
    Effect.gen(function*() {
      const fanout = (resume: boolean) =>
        Fanout.run({
          runId: "f",
          template: "Summarize {item}",
          items: ["alpha", "beta", { item: "gamma", template: "Compare {item}", items: ["x", "y"] }],
          policy: { max_iterations: resume ? 40 : 20 },
          project: resume ? undefined : "p1",
          resume
        }).pipe(Effect.provide(MockLlm.layer(halfway)))
      yield* fanout(false)
      const started = yield* idsIn("p1")
      // The fan-out, its three children and the two below the nested one.
      assert.lengthOf(started, 6)
      assert.isTrue(started.every((id) => id === "f" || id.startsWith("f.")))
      assert.deepStrictEqual(yield* idsIn("default"), [])
      yield* fanout(true)
      assert.sameMembers(yield* idsIn("p1"), started)
      assert.deepStrictEqual(yield* idsIn("default"), [])
      for (const id of started) assert.strictEqual((yield* checkpointOf(id)).project, "p1")
    }).pipe(Effect.provide(layer)))
})
