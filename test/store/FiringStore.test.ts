import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { randomBytes } from "node:crypto"
import { FiringRecord, type FiringRef } from "../../src/domain/Firing.js"
import * as Store from "../../src/store/FiringStore.js"
import { FiringStore } from "../../src/store/FiringStore.js"
import { eachDatabase } from "../support/Databases.js"

/** A mission id of its own per test, so the suite also runs on a database the tests share. */
const missionId = () => `ms-${randomBytes(6).toString("hex")}`

const slot = (iso: string, mission: string): FiringRef => ({
  slot: iso,
  run_id: `${mission}.at-${iso.slice(0, 16).replace(/[-:]/g, "").toLowerCase()}z`,
  kind: "scheduled"
})

/** The store suite over any database. */
const suite = (database: Layer.Layer<SqlClient.SqlClient>) => {
  const store = Store.layer.pipe(Layer.provideMerge(database))

  describe("claims", () => {
    it.effect("claims a slot once: a second claim of it writes nothing and gets none", () =>
      Effect.gen(function*() {
        const firings = yield* FiringStore
        const id = missionId()
        const nine = slot("2025-03-10T09:00:00.000Z", id)
        const first = yield* firings.claim(id, nine, "2025-03-10T09:00:02.000Z")
        const expected = new FiringRecord({ mission_id: id, ...nine, status: "running", fired_at: "2025-03-10T09:00:02.000Z", ended_at: null, reason: null })
        assert.deepStrictEqual(first, Option.some(expected))
        assert.isTrue(Option.isNone(yield* firings.claim(id, { ...nine, run_id: "another" }, "2025-03-10T09:00:03.000Z")))
        assert.deepStrictEqual(yield* firings.recent(id, 0), [expected])
      }).pipe(Effect.provide(store)))

    it.effect("claims concurrently: of twenty claims of one slot, exactly one gets it", () =>
      Effect.gen(function*() {
        const firings = yield* FiringStore
        const id = missionId()
        const nine = slot("2025-03-10T09:00:00.000Z", id)
        const claims = yield* Effect.all(Array.from({ length: 20 }, (_, i) => firings.claim(id, nine, `2025-03-10T09:00:${String(i).padStart(2, "0")}.000Z`)), {
          concurrency: "unbounded"
        })
        assert.strictEqual(claims.filter(Option.isSome).length, 1)
        assert.strictEqual((yield* firings.recent(id, 0)).length, 1)
      }).pipe(Effect.provide(store)))

    it.effect("does not claim a mission's next slot while a firing of it runs; other missions are not held up; once it ends, the next is claimed", () =>
      Effect.gen(function*() {
        const firings = yield* FiringStore
        const [a, b] = [missionId(), missionId()]
        assert.isTrue(Option.isSome(yield* firings.claim(a, slot("2025-03-10T09:00:00.000Z", a), "2025-03-10T09:00:00.000Z")))
        assert.isTrue(Option.isNone(yield* firings.claim(a, slot("2025-03-11T09:00:00.000Z", a), "2025-03-11T09:00:00.000Z")))
        assert.isTrue(Option.isSome(yield* firings.claim(b, slot("2025-03-11T09:00:00.000Z", b), "2025-03-11T09:00:00.000Z")))
        assert.isTrue(yield* firings.mark(a, "2025-03-10T09:00:00.000Z", "completed", { at: "2025-03-11T09:30:00.000Z", reason: null }))
        assert.isTrue(Option.isSome(yield* firings.claim(a, slot("2025-03-11T09:00:00.000Z", a), "2025-03-11T09:30:01.000Z")))
      }).pipe(Effect.provide(store)))

    it.effect("lists a mission's firings latest slot first, a limit honoured; marks a status and its end, and running again clears the end", () =>
      Effect.gen(function*() {
        const firings = yield* FiringStore
        const id = missionId()
        for (const day of ["10", "11", "12"]) {
          const iso = `2025-03-${day}T09:00:00.000Z`
          yield* firings.claim(id, slot(iso, id), iso)
          yield* firings.mark(id, iso, day === "11" ? "halted" : "completed", { at: `2025-03-${day}T09:10:00.000Z`, reason: day === "11" ? "halted by SIGTERM" : null })
        }
        const all = yield* firings.recent(id, 0)
        assert.deepStrictEqual(all.map((f) => `${f.slot} ${f.status} ${f.ended_at} ${f.reason}`), [
          "2025-03-12T09:00:00.000Z completed 2025-03-12T09:10:00.000Z null",
          "2025-03-11T09:00:00.000Z halted 2025-03-11T09:10:00.000Z halted by SIGTERM",
          "2025-03-10T09:00:00.000Z completed 2025-03-10T09:10:00.000Z null"
        ])
        assert.deepStrictEqual(yield* firings.recent(id, 2), all.slice(0, 2))
        assert.isTrue(yield* firings.mark(id, "2025-03-11T09:00:00.000Z", "running", null))
        assert.deepStrictEqual(
          Option.map(yield* firings.get(id, "2025-03-11T09:00:00.000Z"), (f) => [f.status, f.ended_at, f.reason]),
          Option.some(["running", null, null])
        )
        assert.isFalse(yield* firings.mark(id, "2030-01-01T00:00:00.000Z", "failed", { at: "2030-01-01T00:00:00.000Z", reason: "x" }))
        assert.isTrue(Option.isNone(yield* firings.get(missionId(), "2025-03-11T09:00:00.000Z")))
      }).pipe(Effect.provide(store)))

    it.effect("releases a claim as if it had never been made: the slot can be claimed again", () =>
      Effect.gen(function*() {
        const firings = yield* FiringStore
        const id = missionId()
        const nine = slot("2025-03-10T09:00:00.000Z", id)
        yield* firings.claim(id, nine, "2025-03-10T09:00:00.000Z")
        yield* firings.release(id, nine.slot)
        assert.deepStrictEqual(yield* firings.recent(id, 0), [])
        assert.isTrue(Option.isSome(yield* firings.claim(id, nine, "2025-03-10T09:00:05.000Z")))
      }).pipe(Effect.provide(store)))
  })
}

eachDatabase("FiringStore", (database) => suite(database.layer))
