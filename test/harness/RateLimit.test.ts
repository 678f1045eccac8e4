import { RateLimiter } from "@effect/experimental"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, FastCheck, Layer, TestClock } from "effect"
import * as RateLimit from "../../src/harness/RateLimit.js"

/** Requests of a few keys at small limits, with pauses between them that cross window ends. */
const traffic = FastCheck.array(
  FastCheck.record({
    key: FastCheck.constantFrom("a", "b", "c"),
    limit: FastCheck.constantFrom(1, 2, 3, 7),
    pauseMs: FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: 70_000 }))
  }),
  { maxLength: 40 }
)

describe("RateLimit", () => {
  // The harness counted with @effect/experimental's RateLimiter (memory store, fixed window, failing when
  // exceeded) before this plain count replaced it: a request is let through, or refused with its retry-after,
  // exactly as it was.
  it.effect.prop("refuses exactly the requests @effect/experimental's fixed-window limiter refused, with the same retry-after", [traffic], ([requests]) =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.RateLimiter
      const plain = RateLimit.make()
      for (const { key, limit, pauseMs } of requests) {
        yield* TestClock.adjust(pauseMs)
        const now = yield* TestClock.currentTimeMillis
        const theirs = yield* Effect.either(limiter.consume({ key: `${key}/${limit}`, limit, window: "1 minute", onExceeded: "fail", algorithm: "fixed-window" }))
        const ours = plain.consume(`${key}/${limit}`, limit, now)
        if (Either.isRight(theirs)) assert.isUndefined(ours)
        else {
          assert.strictEqual(theirs.left.reason, "Exceeded")
          assert.strictEqual(ours, Duration.toMillis((theirs.left as RateLimiter.RateLimitExceeded).retryAfter))
        }
      }
    }).pipe(Effect.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory)))))

  it("lets `limit` requests through in a minute, refuses the next until its window ends, then counts afresh", () => {
    const limit = RateLimit.make()
    assert.isUndefined(limit.consume("k", 2, 0))
    assert.isUndefined(limit.consume("k", 2, 10))
    assert.strictEqual(limit.consume("k", 2, 20), 60_000 - 20)
    assert.isUndefined(limit.consume("other", 2, 20), "each key on its own")
    assert.isUndefined(limit.consume("k", 2, 60_000))
  })
})
