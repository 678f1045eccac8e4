import { Clock, Effect, Layer, Option } from "effect"
import { type KeyRecord, HarnessStore } from "./HarnessStore.js"

/** How long a key lookup is trusted: a key revoked by another process is refused within this. */
export const ttlMillis = 1_000

/** Keys remembered at most; past it the cache starts again empty (garbage keys cannot grow it). */
const maxEntries = 10_000

/**
 * The HarnessStore with its key lookups remembered for at most a second: a SELECT, a hash and a decode
 * per request was a fifth of the harness's CPU. A key revoked through this store (the admin route) is
 * forgotten at once; one revoked elsewhere (`autopilot harness key revoke`, another harness on the same
 * database) is refused within `ttlMillis`. Expiry is checked on every use, on the Effect Clock.
 */
export const make = Effect.gen(function*() {
  const store = yield* HarnessStore
  const known = new Map<string, { readonly found: Option.Option<KeyRecord>; readonly until: number }>()

  const authenticate = (key: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const hit = known.get(key)
      const live = (found: Option.Option<KeyRecord>) =>
        Option.filter(found, (k) => k.expires_at === null || Date.parse(k.expires_at) > now)
      if (hit !== undefined && hit.until > now) return Effect.succeed(live(hit.found))
      return Effect.map(store.authenticate(key), (found) => {
        if (known.size >= maxEntries) known.clear()
        known.set(key, { found, until: now + ttlMillis })
        return found
      })
    })

  const revokeKey = (id: string) =>
    Effect.map(store.revokeKey(id), (revoked) => {
      // Which cached key has this id is known only for hits; forgetting them all costs a lookup each.
      known.clear()
      return revoked
    })

  return HarnessStore.of({ ...store, authenticate, revokeKey })
})

/** Provides the cached store in place of the one it is given. */
export const layer: Layer.Layer<HarnessStore, never, HarnessStore> = Layer.effect(HarnessStore, make)
