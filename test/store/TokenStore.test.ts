import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { TokenRecord } from "../../src/domain/ApiToken.js"
import * as TokenStore from "../../src/store/TokenStore.js"
import { sameOption } from "../assertOption.js"
import { eachDatabase } from "../support/Databases.js"

const record = (id: string, fields: Partial<ConstructorParameters<typeof TokenRecord>[0]> = {}) =>
  new TokenRecord({
    id,
    project: "atlas",
    name: "ci — “deploys”",
    prefix: `apt_${id.slice(-8)}`,
    created_at: "2026-04-15T09:00:00.000Z",
    expires_at: null,
    revoked_at: null,
    last_used_at: null,
    ...fields
  })

eachDatabase("TokenStore", (database) => {
  const store = TokenStore.layer.pipe(Layer.provideMerge(database.layer))
  const test = <A, E>(name: string, body: Effect.Effect<A, E, TokenStore.TokenStore | SqlClient.SqlClient>) =>
    it.effect(name, () => Effect.provide(body, store))

  test("reads back what it wrote, found by its hash only; the hash is never part of a record", Effect.gen(function*() {
    const tokens = yield* TokenStore.TokenStore
    const written = record("tok_1", { expires_at: "2026-05-15T09:00:00.000Z" })
    yield* tokens.insert(written, "hash-1")
    sameOption(yield* tokens.byHash("hash-1"), Option.some(written))
    sameOption(yield* tokens.byHash("hash-2"), Option.none())
    const listed = yield* tokens.list()
    assert.lengthOf(listed, 1)
    for (const token of [...listed, Option.getOrThrow(yield* tokens.byHash("hash-1"))]) assert.notProperty(token, "hash")
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ hash: string }>`SELECT hash FROM api_tokens WHERE id = 'tok_1'`
    assert.deepStrictEqual(rows.map((r) => r.hash), ["hash-1"])
  }))

  test("a hash is stored once: a second token of the same hash is refused", Effect.gen(function*() {
    const tokens = yield* TokenStore.TokenStore
    yield* tokens.insert(record("tok_1"), "same")
    const error = yield* Effect.flip(tokens.insert(record("tok_2"), "same"))
    assert.strictEqual(error._tag, "PersistenceError")
    assert.deepStrictEqual((yield* tokens.list()).map((t) => t.id), ["tok_1"])
  }))

  test("lists newest first, all projects or one", Effect.gen(function*() {
    const tokens = yield* TokenStore.TokenStore
    for (const [id, project] of [["tok_a", "atlas"], ["tok_b", "borealis"], ["tok_c", "atlas"]] as const) {
      yield* tokens.insert(record(id, { project }), `hash-${id}`)
    }
    assert.deepStrictEqual((yield* tokens.list()).map((t) => t.id), ["tok_c", "tok_b", "tok_a"])
    assert.deepStrictEqual((yield* tokens.list("atlas")).map((t) => t.id), ["tok_c", "tok_a"])
    assert.deepStrictEqual(yield* tokens.list("nowhere"), [])
  }))

  test("revokes an active token once, and only within the project given", Effect.gen(function*() {
    const tokens = yield* TokenStore.TokenStore
    yield* tokens.insert(record("tok_1"), "hash-1")
    sameOption(yield* tokens.revoke("tok_1", "2026-04-16T00:00:00.000Z", "borealis"), Option.none())
    sameOption(yield* tokens.revoke("tok_1", "2026-04-16T00:00:00.000Z", "atlas"), Option.some(record("tok_1", { revoked_at: "2026-04-16T00:00:00.000Z" })))
    sameOption(yield* tokens.revoke("tok_1", "2026-04-17T00:00:00.000Z"), Option.none())
    sameOption(yield* tokens.revoke("tok_unknown", "2026-04-17T00:00:00.000Z"), Option.none())
    assert.strictEqual(Option.getOrThrow(yield* tokens.byHash("hash-1")).revoked_at, "2026-04-16T00:00:00.000Z")
  }))

  test("a use is written only when the last one on record is older than the interval", Effect.gen(function*() {
    const tokens = yield* TokenStore.TokenStore
    yield* tokens.insert(record("tok_1"), "hash-1")
    const lastUsed = Effect.map(tokens.byHash("hash-1"), (found) => Option.getOrThrow(found).last_used_at)
    yield* tokens.touch("tok_1", "2026-04-16T10:00:00.000Z", "2026-04-16T09:59:00.000Z")
    assert.strictEqual(yield* lastUsed, "2026-04-16T10:00:00.000Z")
    yield* tokens.touch("tok_1", "2026-04-16T10:00:30.000Z", "2026-04-16T09:59:30.000Z")
    assert.strictEqual(yield* lastUsed, "2026-04-16T10:00:00.000Z")
    yield* tokens.touch("tok_1", "2026-04-16T10:01:00.000Z", "2026-04-16T10:00:00.001Z")
    assert.strictEqual(yield* lastUsed, "2026-04-16T10:01:00.000Z")
  }))
})
