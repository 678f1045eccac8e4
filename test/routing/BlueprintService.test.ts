import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import { toJson } from "../../src/domain/Blueprint.js"
import * as BlueprintService from "../../src/routing/BlueprintService.js"
import * as BlueprintCacheStore from "../../src/store/BlueprintCacheStore.js"
import * as Database from "../../src/store/Database.js"
import { adjustWhenWaiting, fakeService, type Received, type Reply, until } from "./fake-service.js"
import { blueprints, showNotes } from "./router-fixtures.js"
import { sameOption } from "../assertOption.js"

/** A blueprint whose graph has a cycle: it decodes, and fails only `problems`. */
const cyclic = JSON.stringify({
  ...JSON.parse(toJson(showNotes)),
  id: "cyclic",
  graph: {
    entry: "a",
    nodes: [{ id: "a", role: "A", prompt: "a", model_tier: "simple" }, { id: "b", role: "B", prompt: "b", model_tier: "simple" }],
    edges: [{ from: "a", to: "b" }, { from: "b", to: "a" }]
  }
})

const retrieved = (...candidates: ReadonlyArray<{ blueprint_json: string; score: number }>): Reply => ({ json: { candidates } })

const ok: (request: Received) => Reply = (request) =>
  request.path.endsWith("/v1/blueprints/retrieve")
    ? retrieved({ blueprint_json: toJson(showNotes), score: 0.9 })
    : { json: { blueprint_json: toJson(showNotes) } }

const key = Option.some(Redacted.make("sk-test-123"))

/** The service against `url` on a fresh in-memory database; no delay between retries unless asked. */
const serviceLayer = (settings: Partial<BlueprintService.Settings> & { readonly url: string }) =>
  BlueprintService.layer({ key: Option.none(), ttl: "1 hour", backoff: 0, ...settings }).pipe(
    Layer.provide(FetchHttpClient.layer),
    Layer.provideMerge(BlueprintCacheStore.layer),
    Layer.provide(Database.layerSqlite(":memory:"))
  )

const withService = <A, E>(
  settings: Partial<BlueprintService.Settings> & { readonly url: string },
  use: (service: BlueprintService.BlueprintService["Type"]) => Effect.Effect<A, E>
) => Effect.flatMap(BlueprintService.BlueprintService, use).pipe(Effect.provide(serviceLayer(settings)))

describe("BlueprintService tiers", () => {
  it.scoped("anonymous calls the service without a key, with the protocol's request", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url, key }, (service) =>
        Effect.gen(function*() {
          const result = yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          assert.strictEqual(result.remote, "ok")
          assert.deepStrictEqual(result.candidates.map((c) => [c.blueprint.id, c.score]), [["podcast_show_notes", 0.9]])
          assert.deepStrictEqual(fake.received(), [{ path: "/v1/blueprints/retrieve", authorization: undefined, body: { goal: "write show notes", k: 3 } }])
        }))
    }))

  it.scoped("free sends the key as a bearer token", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: `${fake.url}/`, key }, (service) =>
        Effect.gen(function*() {
          yield* service.retrieve("write show notes", { k: 3, tier: "free" })
          const { blueprint_json, remote } = yield* service.synthesize("write show notes", "free")
          assert.strictEqual(remote, "ok")
          sameOption(Option.map(blueprint_json, (t) => JSON.parse(t).id), Option.some("podcast_show_notes"))
          assert.deepStrictEqual(fake.received().map((r) => [r.path, r.authorization, r.body]), [
            ["/v1/blueprints/retrieve", "Bearer sk-test-123", { goal: "write show notes", k: 3 }],
            ["/v1/blueprints/synthesize", "Bearer sk-test-123", { goal: "write show notes" }]
          ])
        }))
    }))

  it.scoped("an answer cached for one tier is never served to the other: switching tier calls the service, with its key", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url, key }, (service) =>
        Effect.gen(function*() {
          yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          assert.strictEqual((yield* service.retrieve("write show notes", { k: 3, tier: "free" })).remote, "ok")
          assert.strictEqual((yield* service.retrieve("write show notes", { k: 3, tier: "free" })).remote, "cached")
          assert.strictEqual((yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })).remote, "cached")
          assert.deepStrictEqual(fake.received().map((r) => r.authorization), [undefined, "Bearer sk-test-123"])
        }))
    }))

  it.scoped("free without a key fails with one line naming AUTOPILOT_BLUEPRINT_SERVICE_KEY, and calls nothing", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(service.retrieve("write show notes", { k: 3, tier: "free" }))
          assert.strictEqual(error._tag, "BadInput")
          assert.include(error.message, "AUTOPILOT_BLUEPRINT_SERVICE_KEY")
          assert.notInclude(error.message, "\n")
          const again = yield* Effect.flip(service.synthesize("write show notes", "free"))
          assert.strictEqual(again.message, error.message)
          assert.deepStrictEqual(fake.received(), [])
        }))
    }))

  it.scoped("skip never calls the service, nor reads what it cached", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          const skipped = yield* service.retrieve("write show notes", { k: 3, tier: "skip" })
          assert.deepStrictEqual(skipped, { remote: "skipped", candidates: [], dropped: 0, note: null })
          sameOption(yield* service.synthesize("write show notes", "skip"), { remote: "skipped", blueprint_json: Option.none(), note: null })
          assert.strictEqual(fake.received().length, 1)
        }))
    }))

  it.effect("with no service configured nothing is called, whatever the tier", () =>
    Effect.gen(function*() {
      const service = yield* BlueprintService.BlueprintService
      assert.strictEqual(service.url, null)
      for (const tier of ["anonymous", "free"] as const) {
        assert.deepStrictEqual(yield* service.retrieve("g", { k: 3, tier }), { remote: "unconfigured", candidates: [], dropped: 0, note: null })
        sameOption((yield* service.synthesize("g", tier)).blueprint_json, Option.none())
      }
      assert.strictEqual((yield* service.retrieve("g", { k: 3, tier: "skip" })).remote, "skipped")
    }).pipe(Effect.provide(BlueprintService.layerConfig.pipe(
      Layer.provide([FetchHttpClient.layer, BlueprintCacheStore.layerMemory]),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
    ))))
})

describe("BlueprintService cache", () => {
  it.scoped("an answer is used from the cache within the TTL, and asked again once it has passed", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url, ttl: "10 minutes" }, (service) =>
        Effect.gen(function*() {
          const ask = service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          assert.strictEqual((yield* ask).remote, "ok")
          yield* TestClock.adjust(Duration.toMillis("10 minutes") - 1)
          const cached = yield* ask
          assert.strictEqual(cached.remote, "cached")
          assert.deepStrictEqual(cached.candidates.map((c) => c.blueprint.id), ["podcast_show_notes"])
          assert.strictEqual(fake.received().length, 1)
          // A different question is not the cached one: another goal, another k.
          yield* service.retrieve("write show notes", { k: 4, tier: "anonymous" })
          yield* service.retrieve("write a podcast summary", { k: 3, tier: "anonymous" })
          assert.strictEqual(fake.received().length, 3)
          yield* TestClock.adjust(1)
          assert.strictEqual((yield* ask).remote, "ok")
          assert.strictEqual(fake.received().length, 4)
          // Fetched again means cached again, from the new time.
          yield* TestClock.adjust("5 minutes")
          assert.strictEqual((yield* ask).remote, "cached")
          assert.strictEqual(fake.received().length, 4)
        }))
    }))

  it.scoped("synthesis answers are cached too", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          const first = yield* service.synthesize("write show notes", "anonymous")
          const second = yield* service.synthesize("write show notes", "anonymous")
          assert.deepStrictEqual([first.remote, second.remote], ["ok", "cached"])
          sameOption(second.blueprint_json, first.blueprint_json)
          assert.strictEqual(fake.received().length, 1)
        }))
    }))

  it.scoped("down after the TTL: the stale cached answer is used, after the retries", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      yield* withService({ url: fake.url, ttl: "1 minute" }, (service) =>
        Effect.gen(function*() {
          const ask = service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          yield* ask
          fake.answer(() => "reset")
          yield* TestClock.adjust("2 minutes")
          const stale = yield* ask
          assert.strictEqual(stale.remote, "stale")
          assert.deepStrictEqual(stale.candidates.map((c) => c.blueprint.id), ["podcast_show_notes"])
          assert.include(stale.note, `the blueprint service at ${fake.url} failed: it could not be reached`)
          assert.strictEqual(fake.received().length, 1 + 3)
          const synthesized = yield* service.synthesize("write show notes", "anonymous")
          assert.isTrue(Option.isNone(synthesized.blueprint_json))
          assert.strictEqual(synthesized.remote, "down")
          assert.include(synthesized.note, "it could not be reached")
        }))
    }))

  it.scoped("down with nothing cached: no candidates, and why", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => ({ status: 503, json: { error: "maintenance" } }))
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          const down = yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          assert.deepStrictEqual(down, {
            remote: "down",
            candidates: [],
            dropped: 0,
            note: `the blueprint service at ${fake.url} failed: it answered HTTP 503`
          })
          assert.strictEqual(fake.received().length, 3)
        }))
    }))

  it.scoped("a refusal is not retried: 401 once, then down", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => ({ status: 401, json: { error: "bad key" } }))
      yield* withService({ url: fake.url, key }, (service) =>
        Effect.gen(function*() {
          const down = yield* service.retrieve("write show notes", { k: 3, tier: "free" })
          assert.strictEqual(down.remote, "down")
          assert.include(down.note, "it answered HTTP 401")
          assert.strictEqual(fake.received().length, 1)
        }))
    }))

  it.scoped("an answer that is not the protocol's counts as down, and is not cached", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => ({ json: { results: [] } }))
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          const down = yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })
          assert.strictEqual(down.remote, "down")
          assert.include(down.note, "its answer is not the protocol's")
          fake.answer(ok)
          assert.strictEqual((yield* service.retrieve("write show notes", { k: 3, tier: "anonymous" })).remote, "ok")
          assert.strictEqual(fake.received().length, 2)
        }))
    }))

  it.scoped("retries back off on the clock: 250 ms, then 500 ms", () =>
    Effect.gen(function*() {
      let calls = 0
      const fake = yield* fakeService((request) => (++calls < 3 ? { status: 503, json: {} } : ok(request)))
      yield* withService({ url: fake.url, backoff: undefined }, (service) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(service.retrieve("write show notes", { k: 3, tier: "anonymous" }))
          yield* until(() => fake.received().length === 1)
          yield* adjustWhenWaiting(250)
          yield* until(() => fake.received().length === 2)
          yield* adjustWhenWaiting(500)
          const result = yield* Fiber.join(fiber)
          assert.strictEqual(result.remote, "ok")
          assert.strictEqual(fake.received().length, 3)
        }))
    }))

  it.scoped("a service that does not answer times out (10 s an attempt) and is down", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(() => "hang")
      yield* withService({ url: fake.url, retries: 1, backoff: undefined }, (service) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(service.retrieve("write show notes", { k: 3, tier: "anonymous" }))
          yield* until(() => fake.received().length === 1)
          yield* TestClock.adjust("10 seconds")
          yield* adjustWhenWaiting(250)
          yield* until(() => fake.received().length === 2)
          yield* TestClock.adjust("10 seconds")
          const result = yield* Fiber.join(fiber)
          assert.strictEqual(result.remote, "down")
          assert.include(result.note, "no answer within 10s")
        }))
    }))

  it.scoped("the cache lives in the database: a new service on it uses the answer", () =>
    Effect.gen(function*() {
      const fake = yield* fakeService(ok)
      const database = Layer.fresh(BlueprintCacheStore.layer).pipe(Layer.provideMerge(Database.layerSqlite(":memory:")))
      yield* Effect.gen(function*() {
        const context = yield* Effect.context<BlueprintCacheStore.BlueprintCacheStore>()
        const service = (settings: Partial<BlueprintService.Settings>) =>
          BlueprintService.make({ url: fake.url, key: Option.none(), ttl: "1 hour", backoff: 0, ...settings }).pipe(
            Effect.provide(FetchHttpClient.layer),
            Effect.provide(context)
          )
        const first = yield* service({})
        yield* first.retrieve("write show notes", { k: 3, tier: "anonymous" })
        const second = yield* service({})
        assert.strictEqual((yield* second.retrieve("write show notes", { k: 3, tier: "anonymous" })).remote, "cached")
        // Another service URL is another cache.
        const other = yield* service({ url: `${fake.url}/other` })
        assert.strictEqual((yield* other.retrieve("write show notes", { k: 3, tier: "anonymous" })).remote, "ok")
        assert.strictEqual(fake.received().length, 2)
      }).pipe(Effect.provide(database))
    }))
})

describe("BlueprintService candidates", () => {
  it.scoped("candidates that are not blueprints are dropped and counted; the rest are kept, at most k (the catalog vets them later)", () =>
    Effect.gen(function*() {
      const valid = (i: number, score: number) => ({ blueprint_json: toJson(blueprints[i]!), score })
      const fake = yield* fakeService(() =>
        retrieved(
          valid(0, 0.7),
          { blueprint_json: "{not json", score: 0.9 },
          { blueprint_json: JSON.stringify({ ...JSON.parse(cyclic), nickname: "misspelt field" }), score: 0.8 },
          { blueprint_json: JSON.stringify({ id: "half" }), score: 0.8 },
          { ...valid(1, 0.5), score: 1.5 },
          valid(2, 0.6),
          valid(3, 0.4)
        )
      )
      yield* withService({ url: fake.url }, (service) =>
        Effect.gen(function*() {
          const result = yield* service.retrieve("anything", { k: 2, tier: "anonymous" })
          assert.strictEqual(result.remote, "ok")
          assert.deepStrictEqual(result.candidates.map((c) => c.blueprint.id), [blueprints[0]!.id, blueprints[2]!.id])
          assert.strictEqual(result.dropped, 4)
          assert.include(result.note, "dropped 4 candidates of the blueprint service: candidate 1")
          // From the cache, the same.
          const again = yield* service.retrieve("anything", { k: 2, tier: "anonymous" })
          assert.deepStrictEqual([again.remote, again.dropped], ["cached", 4])
        }))
    }))
})

describe("BlueprintService.settingsFromConfig", () => {
  const settingsOf = (env: Record<string, string>) =>
    BlueprintService.settingsFromConfig.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))), Effect.exit)

  it.effect("unset or empty URL: no service; the TTL defaults to an hour", () =>
    Effect.gen(function*() {
      sameOption(yield* Effect.flatten(settingsOf({})), Option.none())
      sameOption(yield* Effect.flatten(settingsOf({ AUTOPILOT_BLUEPRINT_SERVICE_URL: "" })), Option.none())
      const some = yield* settingsOf({ AUTOPILOT_BLUEPRINT_SERVICE_URL: "https://bp.example.com", AUTOPILOT_BLUEPRINT_SERVICE_KEY: "k" })
      assert.isTrue(Exit.isSuccess(some) && Option.isSome(some.value))
      if (Exit.isSuccess(some) && Option.isSome(some.value)) {
        assert.strictEqual(some.value.value.url, "https://bp.example.com")
        assert.strictEqual(Duration.toSeconds(some.value.value.ttl), 3600)
        assert.strictEqual(Redacted.value(Option.getOrThrow(some.value.value.key)), "k")
      }
      const ttl = yield* settingsOf({ AUTOPILOT_BLUEPRINT_SERVICE_URL: "http://127.0.0.1:9", AUTOPILOT_CACHE_TTL: "0" })
      assert.isTrue(Exit.isSuccess(ttl) && Option.isSome(ttl.value) && Duration.toMillis(ttl.value.value.ttl) === 0)
    }))

  it.effect("a URL that is not http(s) or a TTL that is not whole seconds is one line of bad input", () =>
    Effect.gen(function*() {
      const messageOf = (exit: Exit.Exit<unknown, { message: string }>) => (Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : "")
      assert.strictEqual(
        messageOf(yield* settingsOf({ AUTOPILOT_BLUEPRINT_SERVICE_URL: "ftp://bp.example.com" })),
        `AUTOPILOT_BLUEPRINT_SERVICE_URL must be an http(s) URL such as https://blueprints.example.com, got "ftp://bp.example.com"`
      )
      assert.strictEqual(
        messageOf(yield* settingsOf({ AUTOPILOT_CACHE_TTL: "an hour" })),
        `AUTOPILOT_CACHE_TTL must be a whole number of seconds (0 or more), got "an hour"`
      )
      assert.strictEqual(
        messageOf(yield* settingsOf({ AUTOPILOT_CACHE_TTL: "-5" })),
        `AUTOPILOT_CACHE_TTL must be a whole number of seconds (0 or more), got "-5"`
      )
    }))
})
