import { describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as BlueprintCacheStore from "../../src/store/BlueprintCacheStore.js"
import { sameOption } from "../assertOption.js"
import { databases } from "../support/Databases.js"

const key = (more: Partial<BlueprintCacheStore.Key> = {}): BlueprintCacheStore.Key => ({
  service: "http://127.0.0.1:1",
  kind: "retrieve",
  goal: "review my pull request",
  k: 5,
  keyed: false,
  ...more
})

const laws = (name: string, layer: Layer.Layer<BlueprintCacheStore.BlueprintCacheStore>, skipped?: string) =>
  (skipped === undefined ? describe : describe.skip)(skipped === undefined ? name : `${name}: SKIPPED, ${skipped}`, () => {
    it.effect("keeps one answer per question, the newest, with when it was fetched", () =>
      Effect.gen(function*() {
        const cache = yield* BlueprintCacheStore.BlueprintCacheStore
        sameOption(yield* cache.get(key()), Option.none())
        yield* cache.put(key(), { body: `{"candidates":[]}`, fetched_at: 1_000 })
        yield* cache.put(key(), { body: `{"candidates":[1]}`, fetched_at: 2_000 })
        sameOption(yield* cache.get(key()), Option.some({ body: `{"candidates":[1]}`, fetched_at: 2_000 }))
        for (const other of [{ kind: "synthesize" as const }, { k: 6 }, { goal: "review my pull request." }, { service: "http://127.0.0.1:2" }]) {
          sameOption(yield* cache.get(key(other)), Option.none())
        }
      }).pipe(Effect.provide(layer)))

    it.effect("a goal far longer than an index entry may be is a key like any other", () =>
      Effect.gen(function*() {
        const cache = yield* BlueprintCacheStore.BlueprintCacheStore
        const goal = "é".repeat(4000)
        yield* cache.put(key({ goal }), { body: "{}", fetched_at: 1_700_000_000_123 })
        sameOption(yield* cache.get(key({ goal })), Option.some({ body: "{}", fetched_at: 1_700_000_000_123 }))
      }).pipe(Effect.provide(layer)))
  })

for (const database of databases) {
  laws(`BlueprintCacheStore [${database.name}]`, BlueprintCacheStore.layer.pipe(Layer.provide(database.layer)), database.skipped)
}
laws("BlueprintCacheStore [memory]", BlueprintCacheStore.layerMemory)
