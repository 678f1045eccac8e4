import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { HarnessStore } from "../../src/harness/HarnessStore.js"
import * as KeyCache from "../../src/harness/KeyCache.js"
import { eachDatabase } from "../support/Databases.js"

eachDatabase("KeyCache", (database) => {
  const environment = HarnessStore.layer.pipe(Layer.provideMerge(database.layer))

  /** The cached store, and the plain one beside it: another process on the same database. */
  const stores = Effect.zip(KeyCache.make, HarnessStore)

  it.effect("a key revoked elsewhere is refused within a second, and not looked up again before", () =>
    Effect.gen(function*() {
      const [cached, elsewhere] = yield* stores
      yield* TestClock.setTime(Date.parse("2025-03-01T12:00:00.000Z"))
      const { key, record } = yield* cached.createKey({ user: "ada", project: "atlas" })
      assert.isTrue(Option.isSome(yield* cached.authenticate(key)))
      assert.isTrue(yield* elsewhere.revokeKey(record.id))
      yield* TestClock.adjust(KeyCache.ttlMillis - 1)
      assert.isTrue(Option.isSome(yield* cached.authenticate(key)), "still remembered just under a second later")
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* cached.authenticate(key)), "refused a second after it was looked up")
    }).pipe(Effect.provide(environment)))

  it.effect("a key revoked through the cached store is refused at once", () =>
    Effect.gen(function*() {
      const [cached] = yield* stores
      const { key, record } = yield* cached.createKey({ user: "ada", project: "atlas" })
      const other = yield* cached.createKey({ user: "bob", project: "atlas" })
      assert.isTrue(Option.isSome(yield* cached.authenticate(key)))
      assert.isTrue(Option.isSome(yield* cached.authenticate(other.key)))
      assert.isTrue(yield* cached.revokeKey(record.id))
      assert.isTrue(Option.isNone(yield* cached.authenticate(key)))
      assert.isTrue(Option.isSome(yield* cached.authenticate(other.key)))
    }).pipe(Effect.provide(environment)))

  it.effect("a remembered key stops working the moment it expires", () =>
    Effect.gen(function*() {
      const [cached] = yield* stores
      yield* TestClock.setTime(Date.parse("2025-03-01T12:00:00.000Z"))
      const { key } = yield* cached.createKey({ user: "ada", project: "atlas", expires_at: "2025-03-01T12:00:00.500Z" })
      assert.isTrue(Option.isSome(yield* cached.authenticate(key)))
      yield* TestClock.adjust(499)
      assert.isTrue(Option.isSome(yield* cached.authenticate(key)))
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* cached.authenticate(key)))
    }).pipe(Effect.provide(environment)))

  it.effect("an unknown key stays refused, and a key made after a refusal of another is accepted", () =>
    Effect.gen(function*() {
      const [cached] = yield* stores
      const { key } = yield* cached.createKey({ user: "ada", project: "atlas" })
      const forged = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`
      assert.isTrue(Option.isNone(yield* cached.authenticate(forged)))
      assert.isTrue(Option.isNone(yield* cached.authenticate(forged)))
      const made = yield* cached.createKey({ user: "bob", project: "atlas" })
      assert.isTrue(Option.isSome(yield* cached.authenticate(made.key)))
    }).pipe(Effect.provide(environment)))
})
