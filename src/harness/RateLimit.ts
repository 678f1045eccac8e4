/**
 * Requests per minute per key, counted in this process (a restart forgets at most a minute of counts).
 *
 * The count of @effect/experimental's RateLimiter (memory store, `fixed-window`, `onExceeded: "fail"`), kept
 * as plain code on a Map: every request asked it through an Effect, the limiter's and its store's, for what
 * is a lookup and an addition. Each request pushes its key's window end a minute / limit further; the count
 * starts again once that end has passed; a request that would go over the limit is refused, told to retry
 * when the window ends, and not counted.
 */
export interface RateLimit {
  /** Counts one request of `key` at `now` (ms): undefined when it is within `limit`, else ms until it would be. */
  readonly consume: (key: string, limit: number, now: number) => number | undefined
}

const windowMillis = 60_000

export const make = (): RateLimit => {
  const counters = new Map<string, { count: number; endsAt: number }>()
  return {
    consume: (key, limit, now) => {
      let counter = counters.get(key)
      if (counter === undefined || counter.endsAt <= now) {
        counter = { count: 0, endsAt: now }
        counters.set(key, counter)
      }
      if (counter.count + 1 > limit) return counter.endsAt - now
      counter.count += 1
      counter.endsAt += windowMillis / limit
      return undefined
    }
  }
}
