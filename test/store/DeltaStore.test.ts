import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import * as Store from "../../src/store/DeltaStore.js"
import { DeltaStore, type DeltaRow } from "../../src/store/DeltaStore.js"
import { eachDatabase } from "../support/Databases.js"

const runId = () => `run-${randomBytes(6).toString("hex")}`

const row = (run_id: string, iteration: number, text: string, at = "2026-12-02T10:00:00.000Z", purpose = "act"): DeltaRow => ({
  run_id,
  iteration,
  purpose,
  text,
  at
})

const texts = (rows: ReadonlyArray<DeltaRow>) => rows.map((r) => `${r.iteration}:${r.text}`)

eachDatabase("DeltaStore", (database) => {
  const store = Store.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("reads a run's rows in the order written, after a cursor, and no other run's", () =>
    Effect.gen(function*() {
      const deltas = yield* DeltaStore
      const [a, b] = [runId(), runId()]
      yield* deltas.append([row(a, 1, "Hello "), row(b, 1, "other"), row(a, 1, "wor")])
      yield* deltas.append([row(a, 1, "ld — ünïcode 🎉\n", "2026-12-02T10:00:00.100Z", "act")])
      const all = yield* deltas.after(a, 0)
      assert.deepStrictEqual(texts(all), ["1:Hello ", "1:wor", "1:ld — ünïcode 🎉\n"])
      assert.deepStrictEqual(all.map(({ id: _, ...r }) => r)[2], row(a, 1, "ld — ünïcode 🎉\n", "2026-12-02T10:00:00.100Z"))
      assert.isTrue(all.every((r, i) => i === 0 || r.id > all[i - 1]!.id), "ids increase in the order written")
      assert.deepStrictEqual(texts(yield* deltas.after(a, all[0]!.id)), ["1:wor", "1:ld — ünïcode 🎉\n"])
      assert.deepStrictEqual(yield* deltas.after(a, all[2]!.id), [])
      assert.deepStrictEqual(texts(yield* deltas.after(b, 0)), ["1:other"])
    }).pipe(Effect.provide(store)))

  it.effect("removes a run's iterations in a range, or all its rows, leaving other runs' alone", () =>
    Effect.gen(function*() {
      const deltas = yield* DeltaStore
      const [a, b] = [runId(), runId()]
      yield* deltas.append([row(a, 1, "one"), row(a, 2, "two"), row(a, 3, "three"), row(b, 2, "b-two")])
      yield* deltas.remove(a, { from: 2, through: 2 })
      assert.deepStrictEqual(texts(yield* deltas.after(a, 0)), ["1:one", "3:three"])
      yield* deltas.remove(a, { from: 0, through: 1 })
      assert.deepStrictEqual(texts(yield* deltas.after(a, 0)), ["3:three"])
      yield* deltas.remove(a)
      assert.deepStrictEqual(yield* deltas.after(a, 0), [])
      assert.deepStrictEqual(texts(yield* deltas.after(b, 0)), ["2:b-two"])
    }).pipe(Effect.provide(store)))

  it.effect("expires every run's rows written before a time, and keeps the later ones", () =>
    Effect.gen(function*() {
      const deltas = yield* DeltaStore
      const [a, b] = [runId(), runId()]
      yield* deltas.append([
        row(a, 1, "old", "2026-12-02T08:59:59.999Z"),
        row(b, 4, "old too", "2026-12-02T07:00:00.000Z"),
        row(a, 2, "new", "2026-12-02T09:00:00.000Z")
      ])
      yield* deltas.expire("2026-12-02T09:00:00.000Z")
      assert.deepStrictEqual(texts(yield* deltas.after(a, 0)), ["2:new"])
      assert.deepStrictEqual(yield* deltas.after(b, 0), [])
    }).pipe(Effect.provide(store)))
})
