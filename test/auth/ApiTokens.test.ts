import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, FastCheck, Layer, Option, Redacted, TestClock } from "effect"
import * as ApiTokens from "../../src/auth/ApiTokens.js"
import { ApiTokens as Tokens } from "../../src/auth/ApiTokens.js"
import * as TokenStore from "../../src/store/TokenStore.js"
import { eachDatabase } from "../support/Databases.js"

const adminToken = "an-admin-token-of-some-length"

const failureOf = <A, E>(exit: Exit.Exit<A, E>) => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  return Option.getOrThrow(Exit.causeOption(exit).pipe(Option.flatMap((cause) => Option.fromNullable(cause._tag === "Fail" ? cause.error : undefined))))
}

eachDatabase("ApiTokens", (database) => {
  const layer = Layer.merge(ApiTokens.layerWith({ adminToken: Option.some(Redacted.make(adminToken)) }), TokenStore.layer).pipe(
    Layer.provideMerge(database.layer)
  )

  it.effect("a project token is shown once, authenticates as its project, and is found nowhere else", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const { record, token } = yield* tokens.create({ project: "atlas", name: "ci" })
      assert.match(token, /^apt_[A-Za-z0-9_-]{32}$/)
      assert.match(record.id, /^tok_[0-9a-f]{16}$/)
      assert.strictEqual(record.prefix, token.slice(0, 12))
      assert.deepInclude(record, { project: "atlas", name: "ci", expires_at: null, revoked_at: null, last_used_at: null })
      assert.deepStrictEqual(yield* tokens.authenticate(token), { kind: "project", project: "atlas", tokenId: record.id })
      const listed = JSON.stringify(yield* tokens.list())
      assert.notInclude(listed, token)
      assert.notInclude(listed, token.slice(12))
    }).pipe(Effect.provide(layer)))

  it.effect("the admin token is admin, and is not stored; a token of the right form that was never made is refused", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      assert.deepStrictEqual(yield* tokens.authenticate(adminToken), { kind: "admin" })
      assert.deepStrictEqual(yield* tokens.list(), [])
      const made = yield* tokens.create({ project: "atlas" })
      const forged = `apt_${"A".repeat(32)}`
      const refused = failureOf(yield* Effect.exit(tokens.authenticate(forged)))
      assert.deepInclude(refused, { _tag: "Unauthenticated", reason: "invalid" })
      assert.strictEqual(refused.message, "the API token is unknown or revoked")
      assert.strictEqual(failureOf(yield* Effect.exit(tokens.authenticate(`${adminToken}x`))).message, "the API token is unknown or revoked")
      assert.strictEqual(failureOf(yield* Effect.exit(tokens.authenticate(made.token.slice(0, -1)))).message, "the API token is unknown or revoked")
      assert.strictEqual(failureOf(yield* Effect.exit(tokens.authenticate(""))).message, "no API token given")
    }).pipe(Effect.provide(layer)))

  it.effect("a revoked token stops at once, with the message an unknown one gets; revoking again or an unknown id is TokenNotFound", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const kept = yield* tokens.create({ project: "atlas" })
      const { record, token } = yield* tokens.create({ project: "atlas" })
      yield* TestClock.adjust("1 hour")
      const revoked = yield* tokens.revoke(record.id)
      assert.strictEqual(revoked.revoked_at, "1970-01-01T01:00:00.000Z")
      assert.deepInclude(failureOf(yield* Effect.exit(tokens.authenticate(token))), { _tag: "Unauthenticated", reason: "invalid" })
      assert.deepInclude(failureOf(yield* Effect.exit(tokens.revoke(record.id))), { _tag: "TokenNotFound", id: record.id })
      const unknown = failureOf(yield* Effect.exit(tokens.revoke("tok_nope")))
      assert.strictEqual(unknown.message, "no active API token \"tok_nope\" (see `autopilot token list`)")
      assert.deepStrictEqual((yield* tokens.list()).map((t) => [t.id, t.revoked_at]), [[record.id, "1970-01-01T01:00:00.000Z"], [kept.record.id, null]])
      assert.deepStrictEqual(yield* tokens.authenticate(kept.token), { kind: "project", project: "atlas", tokenId: kept.record.id })
    }).pipe(Effect.provide(layer)))

  it.effect("a project's caller cannot list or revoke another project's tokens", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const atlas = yield* tokens.create({ project: "atlas" })
      const borealis = yield* tokens.create({ project: "borealis" })
      assert.deepStrictEqual((yield* tokens.list({ project: "atlas" })).map((t) => t.id), [atlas.record.id])
      assert.deepInclude(failureOf(yield* Effect.exit(tokens.revoke(borealis.record.id, { project: "atlas" }))), { _tag: "TokenNotFound" })
      assert.deepStrictEqual(yield* tokens.authenticate(borealis.token), { kind: "project", project: "borealis", tokenId: borealis.record.id })
      assert.strictEqual((yield* tokens.revoke(borealis.record.id, { project: "borealis" })).id, borealis.record.id)
    }).pipe(Effect.provide(layer)))

  it.effect("a token expires when the Clock reaches its expiry, not a moment before", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const { record, token } = yield* tokens.create({ project: "atlas", expiresInDays: 2 })
      assert.strictEqual(record.expires_at, "1970-01-03T00:00:00.000Z")
      yield* TestClock.adjust("47 hours")
      yield* TestClock.adjust("3599 seconds")
      assert.deepStrictEqual(yield* tokens.authenticate(token), { kind: "project", project: "atlas", tokenId: record.id })
      yield* TestClock.adjust("1 second")
      const expired = failureOf(yield* Effect.exit(tokens.authenticate(token)))
      assert.deepInclude(expired, { _tag: "Unauthenticated", reason: "expired" })
      assert.strictEqual(expired.message, "the API token has expired")
    }).pipe(Effect.provide(layer)))

  it.effect("authenticating notes the last use, at most once a minute", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const { record, token } = yield* tokens.create({ project: "atlas" })
      const lastUsed = Effect.map(tokens.list(), (listed) => listed.find((t) => t.id === record.id)!.last_used_at)
      yield* TestClock.adjust("10 seconds")
      yield* tokens.authenticate(token)
      assert.strictEqual(yield* lastUsed, "1970-01-01T00:00:10.000Z")
      yield* TestClock.adjust("30 seconds")
      yield* tokens.authenticate(token)
      assert.strictEqual(yield* lastUsed, "1970-01-01T00:00:10.000Z")
      yield* TestClock.adjust("31 seconds")
      yield* tokens.authenticate(token)
      assert.strictEqual(yield* lastUsed, "1970-01-01T00:01:11.000Z")
    }).pipe(Effect.provide(layer)))

  it.effect("bad input is refused with one line naming what is allowed, and nothing is written", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      const problems = [
        [{ project: "has space" }, "project \"has space\" is not allowed: use 1-64 letters, digits"],
        [{ project: "atlas", expiresInDays: 0 }, "the expiry must be a whole number of days from 1 to 36500, got 0"],
        [{ project: "atlas", expiresInDays: 36_501 }, "from 1 to 36500, got 36501"],
        [{ project: "atlas", expiresInDays: 1.5 }, "got 1.5"],
        [{ project: "atlas", name: "" }, "the token's name must be 1-100 characters on one line"],
        [{ project: "atlas", name: "two\nlines" }, "the token's name must be 1-100 characters on one line"],
        [{ project: "atlas", name: "x".repeat(101) }, "the token's name must be 1-100 characters on one line"]
      ] as const
      for (const [input, expected] of problems) {
        const error = failureOf(yield* Effect.exit(tokens.create(input)))
        assert.strictEqual(error._tag, "BadInput")
        assert.include(error.message, expected)
        assert.notInclude(error.message, "\n")
      }
      assert.deepStrictEqual(yield* tokens.list(), [])
    }).pipe(Effect.provide(layer)))
})

describe("ApiTokens", () => {
  it.effect("without an admin token, no string is admin", () =>
    Effect.gen(function*() {
      const tokens = yield* Tokens
      assert.deepInclude(failureOf(yield* Effect.exit(tokens.authenticate(adminToken))), { reason: "invalid" })
    }).pipe(Effect.provide(ApiTokens.layerTest())))

  it.effect.prop(
    "whatever is presented that was never made is refused, and the error never repeats it",
    [FastCheck.oneof(FastCheck.string({ minLength: 4 }), FastCheck.stringMatching(/^apt_[A-Za-z0-9_-]{32}$/))],
    ([presented]) =>
      Effect.gen(function*() {
        const tokens = yield* Tokens
        const error = failureOf(yield* Effect.exit(tokens.authenticate(presented)))
        assert.strictEqual(error._tag, "Unauthenticated")
        if (presented.trim() !== "") assert.notInclude(error.message, presented)
      }).pipe(Effect.provide(ApiTokens.layerTest(adminToken))),
    { fastCheck: { numRuns: 50 } }
  )

  const configured = (env: Record<string, string>) =>
    Effect.withConfigProvider(ApiTokens.adminTokenConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.effect("AUTOPILOT_API_TOKEN sets the admin token; empty is unset; shorter than 16 characters is refused", () =>
    Effect.gen(function*() {
      assert.strictEqual(Option.map(yield* configured({ AUTOPILOT_API_TOKEN: adminToken }), Redacted.value).pipe(Option.getOrNull), adminToken)
      assert.isTrue(Option.isNone(yield* configured({ AUTOPILOT_API_TOKEN: "" })))
      assert.isTrue(Option.isNone(yield* configured({})))
      const short = failureOf(yield* Effect.exit(configured({ AUTOPILOT_API_TOKEN: "short-secret" })))
      assert.strictEqual(short.message, "AUTOPILOT_API_TOKEN must be at least 16 characters (e.g. `openssl rand -hex 32`)")
      assert.notInclude(short.message, "short-secret")
    }))
})
