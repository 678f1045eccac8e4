import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { CheckpointStore } from "../../src/store/CheckpointStore.js"
import { environment, goal, runMission, script } from "../runtime/fixtures.js"

describe("CheckpointStore.claim", () => {
  it.effect("lets only one session start from a given row: a stale claim is a conflict and writes nothing", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{ criteria_met: [false, false] }]))
      const store = yield* CheckpointStore
      const loaded = yield* store.load("r")
      assert(loaded._tag === "Found")
      // Every session writes its own owner and time, so a claimed row never equals the row it replaced.
      const mine = { checkpoint: new Checkpoint({ ...loaded.checkpoint, updated_at: "2030-01-01T00:00:00.000Z" }), expected: loaded.raw, events: [] }
      assert.strictEqual((yield* store.claim(mine))._tag, "Claimed")
      const stale = yield* store.claim({ ...mine, checkpoint: new Checkpoint({ ...loaded.checkpoint, output: "second writer" }) })
      assert.strictEqual(stale._tag, "Conflict")
      const after = yield* store.load("r")
      assert(after._tag === "Found")
      assert.notStrictEqual(after.checkpoint.output, "second writer")
    }).pipe(Effect.provide(environment)))

  it.effect("a new run's claim fails if the id was taken meanwhile", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 1 } }, script([{ criteria_met: [false, false] }]))
      const store = yield* CheckpointStore
      const loaded = yield* store.load("r")
      assert(loaded._tag === "Found")
      const claim = yield* store.claim({ checkpoint: loaded.checkpoint, expected: undefined, events: [] })
      assert.strictEqual(claim._tag, "Conflict")
    }).pipe(Effect.provide(environment)))
})
