import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, TestClock } from "effect"
import { PersistenceError } from "../../src/domain/Errors.js"
import * as Database from "../../src/store/Database.js"

/** A transaction that fails `busy` times as SQLite's SQLITE_BUSY would, then commits. */
const flaky = (busy: number, calls: Ref.Ref<number>, error = new PersistenceError({ message: "database is locked", busy: true })) =>
  Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (n) => (n <= busy ? Effect.fail(error) : Effect.succeed("committed")))

describe("Database.retryBusy", () => {
  it.effect("runs a transaction again while the database is busy, on the clock", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const fiber = yield* Effect.fork(Database.retryBusy(flaky(3, calls)))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* Fiber.join(fiber), "committed")
      assert.strictEqual(yield* Ref.get(calls), 4)
    }))

  it.effect("fails at once on any other error, and gives up on a lock held past a minute", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const other = yield* Effect.exit(Database.retryBusy(flaky(1, calls, new PersistenceError({ message: "disk I/O error", busy: false }))))
      assert.isTrue(Exit.isFailure(other))
      assert.strictEqual(yield* Ref.get(calls), 1)
      const forever = yield* Ref.make(0)
      const fiber = yield* Effect.fork(Effect.exit(Database.retryBusy(flaky(1_000_000, forever))))
      yield* TestClock.adjust("2 minutes")
      assert.isTrue(Exit.isFailure(yield* Fiber.join(fiber)))
    }))
})
