import { Clock, Context, Effect, Layer, Option } from "effect"
import { type KeyRecord, HarnessStore } from "./HarnessStore.js"

/** How long a key lookup is trusted: a key revoked by another process is refused within this. */
export const ttlMillis = 1_000

/** Keys remembered at most; past it the cache starts again empty (garbage keys cannot grow it). */
const maxEntries = 10_000

/**
 * What the cache remembers, read without an Effect: the plain-completion fast path (PlainChat.ts) checks a
 * key this way and goes the Effect way only when the key is not remembered.
 */
export class KeyCache extends Context.Tag("autopilot/harness/KeyCache")<KeyCache, {
  /** The key's record at `now` (none: unknown, revoked or expired); undefined when no lookup within ttl remembers it. */
  readonly known: (key: string, now: number) => Option.Option<KeyRecord> | undefined
}>() {}

/**
 * The HarnessStore with its key lookups remembered for at most a second: a SELECT, a hash and a decode
 * per request was a fifth of the harness's CPU. A key revoked through this store (the admin route) is
 * forgotten at once; one revoked elsewhere (`autopilot harness key revoke`, another harness on the same
 * database) is refused within `ttlMillis`. Expiry is checked on every use, on the Effect Clock.
 */
export const makeWithCache = Effect.gen(function*() {
  const store = yield* HarnessStore
  const remembered = new Map<string, { readonly found: Option.Option<KeyRecord>; readonly until: number }>()

  const known = (key: string, now: number) => {
    const hit = remembered.get(key)
    if (hit === undefined || hit.until <= now) return undefined
    return Option.filter(hit.found, (k) => k.expires_at === null || Date.parse(k.expires_at) > now)
  }

  const authenticate = (key: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const hit = known(key, now)
      if (hit !== undefined) return Effect.succeed(hit)
      return Effect.map(store.authenticate(key), (found) => {
        if (remembered.size >= maxEntries) remembered.clear()
        remembered.set(key, { found, until: now + ttlMillis })
        return found
      })
    })

  const revokeKey = (id: string) =>
    Effect.map(store.revokeKey(id), (revoked) => {
      // Which cached key has this id is known only for hits; forgetting them all costs a lookup each.
      remembered.clear()
      return revoked
    })

  return { store: HarnessStore.of({ ...store, authenticate, revokeKey }), cache: KeyCache.of({ known }) }
})

/** The cached store. */
export const make = Effect.map(makeWithCache, ({ store }) => store)

/** Provides the cached store in place of the one it is given, and the cache's synchronous face. */
export const layer: Layer.Layer<HarnessStore | KeyCache, never, HarnessStore> = Layer.effectContext(
  Effect.map(makeWithCache, ({ cache, store }) => Context.make(HarnessStore, store).pipe(Context.add(KeyCache, cache)))
)
