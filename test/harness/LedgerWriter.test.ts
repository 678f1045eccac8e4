import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, FastCheck, Fiber, Layer, Scope, TestClock } from "effect"
import { PersistenceError } from "../../src/domain/Errors.js"
import { HarnessStore, type LedgerEntry } from "../../src/harness/HarnessStore.js"
import * as LedgerWriter from "../../src/harness/LedgerWriter.js"
import * as Database from "../../src/store/Database.js"
import { eachDatabase } from "../support/Databases.js"

const entry = (n: number): LedgerEntry => ({
  at: "2025-03-01T12:00:00.000Z",
  key_id: `key_${String(n).padStart(12, "0")}`,
  user: "ada",
  team: n % 2 === 0 ? null : "research",
  project: "atlas",
  model_requested: "auto",
  model_used: "gpt-4o-mini",
  tier: "simple",
  confidence: 0.75,
  input_tokens: n,
  output_tokens: 2 * n,
  // Binary fractions: sums compare exactly.
  cost_usd: n / 1024,
  latency_ms: n + 0.5,
  status: 200,
  stream: n % 3 === 0,
  policy_action: "routed by tier",
  budget_action: null,
  error: null
})

/** What the ledger holds, oldest first, as the entries given (ids and days aside). */
const rows = Effect.map(Effect.flatMap(HarnessStore, (store) => store.audit({ limit: 1000 })), (all) =>
  all.map(({ day: _day, id: _id, ...row }) => row).reverse())

eachDatabase("LedgerWriter", (database) => {
  const environment = HarnessStore.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("recordAll appends every entry in order in one statement", () =>
    Effect.gen(function*() {
      const store = yield* HarnessStore
      const entries = Array.from({ length: 300 }, (_, i) => entry(i + 1))
      yield* store.recordAll(entries.slice(0, 256))
      yield* store.recordAll(entries.slice(256))
      yield* store.recordAll([])
      assert.deepStrictEqual(yield* rows, entries)
    }).pipe(Effect.provide(environment)))

  it.effect.prop(
    "requests answered at once each get exactly one row, as recorded, in the order queued",
    [FastCheck.integer({ min: 1, max: 120 }), FastCheck.integer({ min: 1, max: 40 })],
    ([requests, maxBatch]) =>
      Effect.scoped(Effect.gen(function*() {
        const writer = yield* LedgerWriter.make({ maxBatch, within: "10 millis" })
        const entries = Array.from({ length: requests }, (_, i) => entry(i + 1))
        yield* Effect.forEach(entries, writer.record, { concurrency: "unbounded", discard: true })
        // Written by the writer itself once the window has passed, not by a flush.
        yield* TestClock.adjust("10 millis")
        while ((yield* rows).length < requests) yield* Effect.yieldNow()
        assert.deepStrictEqual(yield* rows, entries)
      })).pipe(Effect.provide(environment)),
    { fastCheck: { numRuns: 8 } }
  )

  it.effect("a read through readsAfterWrites first writes every row queued before it", () =>
    Effect.scoped(Effect.gen(function*() {
      // The window is an hour on the TestClock: only the read's flush writes them.
      const writer = yield* LedgerWriter.make({ within: "1 hour" })
      const view = yield* Layer.build(LedgerWriter.readsAfterWrites).pipe(Effect.provideService(LedgerWriter.LedgerWriter, writer))
      const store = Context.get(view, HarnessStore)
      for (let i = 1; i <= 5; i++) yield* writer.record(entry(i))
      assert.deepStrictEqual(yield* rows, [])
      assert.deepStrictEqual((yield* store.audit({})).map((row) => row.input_tokens), [5, 4, 3, 2, 1])
      yield* writer.record(entry(6))
      assert.strictEqual(yield* store.spend({ scope: "user", id: "ada", from_day: "2025-03-01" }), (1 + 2 + 3 + 4 + 5 + 6) / 1024)
    })).pipe(Effect.provide(environment)))

  it.effect("closing its scope writes whatever is still queued: a shutdown loses no row", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const writer = yield* Scope.extend(LedgerWriter.make({ within: "1 hour" }), scope)
      const entries = Array.from({ length: 40 }, (_, i) => entry(i + 1))
      yield* Effect.forEach(entries, writer.record, { discard: true })
      assert.deepStrictEqual(yield* rows, [])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* rows, entries)
    }).pipe(Effect.provide(environment)))
})

describe("LedgerWriter on a ledger that fails", () => {
  /** The store, with its INSERTs failing while `down.value` is true. */
  const flaky = (down: { value: boolean }) =>
    Layer.effect(
      HarnessStore,
      Effect.map(HarnessStore, (store) =>
        HarnessStore.of({
          ...store,
          recordAll: (entries) =>
            down.value ? Effect.fail(new PersistenceError({ message: "disk I/O error", busy: false })) : store.recordAll(entries)
        }))
    ).pipe(Layer.provideMerge(HarnessStore.layer), Layer.provideMerge(Database.layerSqlite(":memory:")))

  it.effect("keeps a failed batch, refuses requests with 503 meanwhile, and writes it once the ledger is back", () => {
    const down = { value: true }
    return Effect.scoped(Effect.gen(function*() {
      const writer = yield* LedgerWriter.make({ within: "10 millis", retryEvery: "1 second" })
      yield* writer.record(entry(1))
      yield* writer.record(entry(2))
      yield* TestClock.adjust("10 millis")
      const refused = yield* Effect.eventually(Effect.flip(writer.ready))
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.code, "ledger_unavailable")
      // A request answered meanwhile is queued all the same, and told the ledger is unavailable.
      assert.strictEqual((yield* Effect.flip(writer.record(entry(3)))).status, 503)
      assert.deepStrictEqual(yield* rows, [])
      down.value = false
      const retried = yield* Effect.fork(Effect.eventually(writer.ready))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(retried)
      assert.deepStrictEqual(yield* rows, [entry(1), entry(2), entry(3)])
    })).pipe(Effect.provide(flaky(down)))
  })
})
