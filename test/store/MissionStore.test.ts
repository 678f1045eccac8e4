import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Either, Layer, Option } from "effect"
import { MissionRecord, Transition } from "../../src/domain/MissionRecord.js"
import { MissionStore } from "../../src/store/MissionStore.js"
import * as Store from "../../src/store/MissionStore.js"
import { research, vendors } from "../missions/fixtures.js"
import { sameOption } from "../assertOption.js"
import { eachDatabase } from "../support/Databases.js"

const mission = (fields: Partial<ConstructorParameters<typeof MissionRecord>[0]> = {}) =>
  new MissionRecord({
    mission_id: "ms-0123456789ab",
    project_id: "acme",
    goal: "watch 3 vendors — daily ✓",
    blueprint: research(),
    slots: { schedule: "0 9 * * 1-5", vendors, depth: 2 },
    missing_slots: ["tone"],
    status: "draft",
    preview: "Scheduled research\nVendors: 3 URLs",
    created_at: "2026-04-15T09:00:00.000Z",
    updated_at: "2026-04-15T09:00:00.000Z",
    ...fields
  })

const created = { from: null, to: "draft" as const, actor: "cli:alice", at: "2026-04-15T09:00:00.000Z", reason: "auto_routed" }

eachDatabase("MissionStore", (database) => {
  const store = Store.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("reads back what it wrote: the blueprint snapshot, slots of every kind, missing slots, and the first transition", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      const written = mission()
      yield* missions.insert(written, created)
      sameOption(yield* missions.get("acme", written.mission_id), Option.some(written))
      assert.deepStrictEqual(yield* missions.list("acme", []), [written])
      assert.deepStrictEqual(yield* missions.transitions(written.mission_id), [
        new Transition({ mission_id: written.mission_id, seq: 1, ...created })
      ])
      // The snapshot is kept whole, a node's defaulted tools and the graph's conditions included.
      const read = Option.getOrThrow(yield* missions.get("acme", written.mission_id))
      assert.deepStrictEqual(read.blueprint.graph.edges[1]?.when, { field: "changed", op: "equals", value: true })
      assert.deepStrictEqual(read.blueprint.graph.nodes[0]?.tools, [])
    }).pipe(Effect.provide(store)))

  it.effect("reads only within the project named", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      yield* missions.insert(mission(), created)
      sameOption(yield* missions.get("beta", "ms-0123456789ab"), Option.none())
      assert.deepStrictEqual(yield* missions.list("beta", []), [])
      const moved = yield* missions.advance(mission({ project_id: "beta", status: "cancelled" }), "draft", [{ ...created, from: "draft", to: "cancelled" }])
      sameOption(moved, Option.none())
      assert.strictEqual(Option.getOrThrow(yield* missions.get("acme", "ms-0123456789ab")).status, "draft")
    }).pipe(Effect.provide(store)))

  it.effect("advances only from the status expected; numbers the transitions after the last", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      yield* missions.insert(mission(), created)
      const step = (from: "draft" | "approved", to: "approved" | "scheduled") => ({ from, to, actor: "x", at: "2026-04-15T10:00:00.000Z", reason: "r" })
      const next = mission({ status: "scheduled", missing_slots: [], slots: { tone: "neutral" }, preview: "p", updated_at: "2026-04-15T10:00:00.000Z" })
      const written = yield* missions.advance(next, "draft", [step("draft", "approved"), step("approved", "scheduled")])
      sameOption(Option.map(written, (ts) => ts.map((t) => t.seq)), Option.some([2, 3]))
      sameOption(yield* missions.get("acme", next.mission_id), Option.some(next))
      // A second writer that read the draft before: nothing written.
      sameOption(yield* missions.advance(mission({ status: "cancelled" }), "draft", [{ ...step("draft", "approved"), to: "cancelled" }]), Option.none())
      assert.deepStrictEqual((yield* missions.transitions(next.mission_id)).map((t) => `${t.seq} ${t.from}→${t.to}`), [
        "1 null→draft",
        "2 draft→approved",
        "3 approved→scheduled"
      ])
    }).pipe(Effect.provide(store)))

  it.effect("lists newest first, by any of the statuses given", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      yield* missions.insert(mission({ mission_id: "ms-1", created_at: "2026-01-01T00:00:00.000Z" }), created)
      yield* missions.insert(mission({ mission_id: "ms-2", created_at: "2026-03-01T00:00:00.000Z", status: "scheduled" }), created)
      yield* missions.insert(mission({ mission_id: "ms-3", created_at: "2026-02-01T00:00:00.000Z", status: "cancelled" }), created)
      const ids = (list: ReadonlyArray<MissionRecord>) => list.map((m) => m.mission_id)
      assert.deepStrictEqual(ids(yield* missions.list("acme", [])), ["ms-2", "ms-3", "ms-1"])
      assert.deepStrictEqual(ids(yield* missions.list("acme", ["draft", "cancelled"])), ["ms-3", "ms-1"])
    }).pipe(Effect.provide(store)))

  it.effect("a row that no longer decodes is reported with its mission's id, not skipped", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      const sql = yield* SqlClient.SqlClient
      yield* missions.insert(mission(), created)
      yield* sql`UPDATE missions SET slots = '{"depth": true}'`
      const error = yield* Effect.flip(missions.list("acme", []))
      assert.strictEqual(error._tag, "PersistenceError")
      assert.match(error.message, /^mission ms-0123456789ab in the database does not decode: .*depth/)
    }).pipe(Effect.provide(store)))

  it.effect("keeps a scheduled mission's schedule through an advance, and lists the missions of every project in the statuses asked, a bad one as its error", () =>
    Effect.gen(function*() {
      const missions = yield* MissionStore
      const sql = yield* SqlClient.SqlClient
      const schedule = { time_zone: "Europe/Paris", catch_up: "skip" as const, armed_at: "2026-04-15T10:00:00.000Z" }
      yield* missions.insert(mission({ mission_id: "ms-a" }), created)
      const armed = mission({ mission_id: "ms-a", status: "scheduled", schedule, updated_at: "2026-04-15T10:00:00.000Z" })
      yield* missions.advance(armed, "draft", [{ ...created, from: "draft", to: "scheduled" }])
      sameOption(yield* missions.get("acme", "ms-a"), Option.some(armed))
      yield* missions.insert(mission({ mission_id: "ms-b", project_id: "beta", status: "scheduled", created_at: "2026-04-16T00:00:00.000Z" }), created)
      yield* missions.insert(mission({ mission_id: "ms-c", project_id: "beta" }), created)
      yield* missions.insert(mission({ mission_id: "ms-d", project_id: "gamma", status: "scheduled", created_at: "2026-04-17T00:00:00.000Z" }), created)
      yield* sql`UPDATE missions SET blueprint_json = '{}' WHERE mission_id = 'ms-d'`
      const listed = yield* missions.listAll(["scheduled"])
      assert.deepStrictEqual(listed.slice(0, 2).map((m) => Either.getOrThrow(m).mission_id), ["ms-a", "ms-b"])
      assert.strictEqual(Either.getOrThrow(listed[0]!).schedule?.time_zone, "Europe/Paris")
      assert.isUndefined(Either.getOrThrow(listed[1]!).schedule)
      assert.match(Either.flip(listed[2]!).pipe(Either.getOrThrow).message, /^mission ms-d's stored blueprint does not decode/)
      assert.deepStrictEqual(yield* missions.listAll([]), [])
    }).pipe(Effect.provide(store)))
})
