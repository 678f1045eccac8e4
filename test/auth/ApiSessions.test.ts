import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, TestClock } from "effect"
import * as ApiSessions from "../../src/auth/ApiSessions.js"
import * as ApiTokens from "../../src/auth/ApiTokens.js"
import * as ApiSession from "../../src/domain/ApiSession.js"
import { eachDatabase } from "../support/Databases.js"

const adminToken = "an-admin-token-of-some-length"

/** The services with `admin` as the admin token, over one database (built by the caller). */
const servicesWith = (admin: string) =>
  ApiSessions.layer.pipe(Layer.provideMerge(ApiTokens.layerWith({ adminToken: Option.some(Redacted.make(admin)) })))

const ended = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => error._tag)

eachDatabase("ApiSessions", (database) => {
  const layer = servicesWith(adminToken).pipe(Layer.provideMerge(database.layer))

  it.effect("a session is a random id, stored only as its hash, with its own CSRF token; signing out ends it", () =>
    Effect.gen(function*() {
      const tokens = yield* ApiTokens.ApiTokens
      const sessions = yield* ApiSessions.ApiSessions
      const { record, token } = yield* tokens.create({ project: "atlas" })
      const first = yield* sessions.create(token)
      const second = yield* sessions.create(token)
      assert.match(first.id, /^aps_[A-Za-z0-9_-]{43}$/)
      assert.notStrictEqual(first.id, second.id)
      assert.notStrictEqual(first.session.csrfToken, second.session.csrfToken, "each session its own CSRF secret, not one derived from the token")
      assert.deepStrictEqual(first.session.principal, { kind: "project", project: "atlas", tokenId: record.id })
      assert.deepStrictEqual(yield* sessions.authenticate(first.id), first.session)

      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<Record<string, string>>`SELECT * FROM api_sessions ORDER BY seq`
      assert.deepStrictEqual(rows.map((row) => [row["hash"], row["token_id"], row["project"]]), [
        [ApiSession.hashOf(first.id), record.id, "atlas"],
        [ApiSession.hashOf(second.id), record.id, "atlas"]
      ])
      const stored = JSON.stringify(rows)
      for (const secret of [first.id, second.id, token]) assert.notInclude(stored, secret)

      yield* sessions.end(first.id)
      assert.strictEqual(yield* ended(sessions.authenticate(first.id)), "SessionEnded")
      assert.deepStrictEqual(yield* sessions.authenticate(second.id), second.session, "the other session stays")
      assert.strictEqual(yield* ended(sessions.authenticate("aps_" + "x".repeat(43))), "SessionEnded")
      assert.strictEqual(yield* ended(sessions.authenticate(token)), "SessionEnded", "a token is not a session id")
      assert.strictEqual(yield* ended(sessions.create("apt_" + "x".repeat(32))), "Unauthenticated")
    }).pipe(Effect.provide(layer)))

  it.effect("a session ends at 12 hours however much it is used, and when its token is revoked or expires", () =>
    Effect.gen(function*() {
      const tokens = yield* ApiTokens.ApiTokens
      const sessions = yield* ApiSessions.ApiSessions
      const admin = yield* sessions.create(adminToken)
      assert.deepStrictEqual(admin.session.principal, { kind: "admin" })
      yield* TestClock.adjust("11 hours")
      yield* sessions.authenticate(admin.id)
      yield* TestClock.adjust("59 minutes")
      yield* sessions.authenticate(admin.id)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* ended(sessions.authenticate(admin.id)), "SessionEnded")

      const kept = yield* tokens.create({ project: "atlas" })
      const revoked = yield* tokens.create({ project: "atlas" })
      const short = yield* tokens.create({ project: "atlas", expiresInDays: 1 })
      const [a, b, c] = [yield* sessions.create(kept.token), yield* sessions.create(revoked.token), yield* sessions.create(short.token)]
      yield* tokens.revoke(revoked.record.id)
      assert.strictEqual(yield* ended(sessions.authenticate(b.id)), "SessionEnded", "revoking the token ends its sessions at once")
      yield* sessions.authenticate(a.id)
      yield* TestClock.adjust("2 hours")
      yield* sessions.authenticate(c.id)
      // A session made an hour before its token expires ends with the token, not 12 hours later.
      yield* TestClock.adjust("21 hours")
      const late = yield* sessions.create(short.token)
      yield* TestClock.adjust("61 minutes")
      assert.strictEqual(yield* ended(sessions.authenticate(late.id)), "SessionEnded")

      // Sessions that can never be used again are swept when the next one is made.
      const sql = yield* SqlClient.SqlClient
      yield* sessions.create(kept.token)
      const left = yield* sql<{ hash: string }>`SELECT hash FROM api_sessions`
      assert.notInclude(left.map((row) => row.hash), ApiSession.hashOf(b.id), "the revoked token's session")
      assert.notInclude(left.map((row) => row.hash), ApiSession.hashOf(admin.id), "the expired session")
    }).pipe(Effect.provide(layer)))

  it.effect("an admin session ends when AUTOPILOT_API_TOKEN changes", () =>
    Effect.gen(function*() {
      const db = yield* Layer.build(database.layer)
      const before = yield* Effect.provide(
        Effect.flatMap(ApiSessions.ApiSessions, (sessions) => sessions.create(adminToken)),
        servicesWith(adminToken).pipe(Layer.provide(Layer.succeedContext(db)))
      )
      const check = (admin: string) =>
        Effect.provide(Effect.flatMap(ApiSessions.ApiSessions, (sessions) => sessions.authenticate(before.id)), servicesWith(admin).pipe(Layer.provide(Layer.succeedContext(db))))
      yield* check(adminToken)
      assert.strictEqual(yield* ended(check("another-admin-token-entirely")), "SessionEnded")
    }).pipe(Effect.scoped))
})
