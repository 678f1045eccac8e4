import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, TestClock } from "effect"
import * as Secret from "../../src/domain/Secret.js"
import * as HarnessKeys from "../../src/harness/HarnessKeys.js"
import { HarnessStore, type LedgerEntry } from "../../src/harness/HarnessStore.js"
import * as Database from "../../src/store/Database.js"
import { sameOption } from "../assertOption.js"
import { eachDatabase } from "../support/Databases.js"

const entry = (overrides: Partial<LedgerEntry> = {}): LedgerEntry => ({
  at: "2025-03-01T12:00:00.000Z",
  key_id: "key_000000000001",
  user: "ada",
  team: "research",
  project: "atlas",
  model_requested: "auto",
  model_used: "gpt-4o-mini",
  tier: "simple",
  confidence: 0.9,
  input_tokens: 100,
  output_tokens: 20,
  cost_usd: 0.25,
  latency_ms: 120.5,
  status: 200,
  stream: false,
  policy_action: null,
  budget_action: null,
  error: null,
  ...overrides
})

/** Costs are sums of binary fractions, so totals compare exactly. */
const ledger = [
  entry({ user: "ada", team: "research", project: "atlas", model_used: "gpt-4o-mini", at: "2025-03-01T09:00:00.000Z", cost_usd: 0.25 }),
  entry({ user: "ada", team: "research", project: "atlas", model_used: "gpt-4o", at: "2025-03-01T10:00:00.000Z", cost_usd: 1 }),
  entry({ user: "bob", team: "research", project: "borealis", model_used: "gpt-4o", at: "2025-03-02T09:00:00.000Z", cost_usd: 2 }),
  entry({ user: "cyd", team: null, project: "atlas", model_used: "gpt-4o-mini", at: "2025-03-03T09:00:00.000Z", cost_usd: 0.5 }),
  entry({ user: "ada", team: "research", project: "borealis", model_used: null, at: "2025-03-03T10:00:00.000Z", cost_usd: 0, status: 403, error: "blocked" })
]

const recordAll = (entries: ReadonlyArray<LedgerEntry>) =>
  Effect.flatMap(HarnessStore, (store) => Effect.forEach(entries, store.record))

eachDatabase("HarnessStore", (database) => {
  const environment = HarnessStore.layer.pipe(Layer.provideMerge(database.layer))

  describe("keys", () => {
    it.effect("a new key authenticates with its plaintext, which is stored nowhere: only its hash and prefix are", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const { key, record } = yield* store.createKey({ user: "ada", team: "research", project: "atlas", admin: true, requests_per_minute: 30 })
        assert.isTrue(HarnessKeys.looksLikeKey(key))
        assert.strictEqual(record.prefix, key.slice(0, 12))
        assert.match(record.id, /^key_[0-9a-f]{12}$/)
        sameOption(yield* store.authenticate(key), Option.some(record))
        assert.deepStrictEqual(record, {
          id: record.id,
          prefix: record.prefix,
          user: "ada",
          team: "research",
          project: "atlas",
          admin: true,
          requests_per_minute: 30,
          created_at: "1970-01-01T00:00:00.000Z",
          expires_at: null,
          revoked_at: null
        })

        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<Record<string, unknown>>`SELECT * FROM harness_keys`
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(rows[0]?.hash, Secret.hashOf(key))
        for (const value of Object.values(rows[0] ?? {})) {
          assert.isFalse(String(value).includes(key), "the plaintext key is in harness_keys")
        }
      }).pipe(Effect.provide(environment)))

    it.effect("a key defaults to no team, not admin, the configured rate limit and no expiry", () =>
      Effect.gen(function*() {
        const { record } = yield* (yield* HarnessStore).createKey({ user: "ada", project: "atlas" })
        assert.strictEqual(record.team, null)
        assert.isFalse(record.admin)
        assert.strictEqual(record.requests_per_minute, null)
        assert.strictEqual(record.expires_at, null)
      }).pipe(Effect.provide(environment)))

    it.effect("an unknown key, or something that is not a key at all, does not authenticate", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const { key } = yield* store.createKey({ user: "ada", project: "atlas" })
        assert.isTrue(Option.isNone(yield* store.authenticate(HarnessKeys.generate().key)))
        assert.isTrue(Option.isNone(yield* store.authenticate(key.slice(0, -1))))
        assert.isTrue(Option.isNone(yield* store.authenticate("")))
        assert.isTrue(Option.isNone(yield* store.authenticate(Secret.hashOf(key))))
      }).pipe(Effect.provide(environment)))

    it.effect("a revoked key no longer authenticates; revoking twice, or a key that does not exist, is false", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const { key, record } = yield* store.createKey({ user: "ada", project: "atlas" })
        yield* TestClock.setTime(Date.parse("2025-03-01T12:00:00.000Z"))
        assert.isTrue(yield* store.revokeKey(record.id))
        assert.isTrue(Option.isNone(yield* store.authenticate(key)))
        assert.isFalse(yield* store.revokeKey(record.id))
        assert.isFalse(yield* store.revokeKey("key_000000000000"))
        const [listed] = yield* store.listKeys()
        assert.strictEqual(listed?.revoked_at, "2025-03-01T12:00:00.000Z")
      }).pipe(Effect.provide(environment)))

    it.effect("a key authenticates until the moment it expires on the Effect Clock", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* TestClock.setTime(Date.parse("2025-03-01T12:00:00.000Z"))
        const { key, record } = yield* store.createKey({ user: "ada", project: "atlas", expires_at: "2025-03-01T13:00:00Z" })
        assert.strictEqual(record.expires_at, "2025-03-01T13:00:00.000Z")
        yield* TestClock.adjust("59 minutes")
        assert.isTrue(Option.isSome(yield* store.authenticate(key)))
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Option.isNone(yield* store.authenticate(key)))
      }).pipe(Effect.provide(environment)))

    it.effect("listKeys shows every key, newest first, and never a hash", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const first = yield* store.createKey({ user: "ada", project: "atlas" })
        yield* TestClock.adjust("1 second")
        const second = yield* store.createKey({ user: "bob", project: "atlas" })
        const third = yield* store.createKey({ user: "cyd", project: "atlas" })
        yield* store.revokeKey(first.record.id)
        const listed = yield* store.listKeys()
        assert.deepStrictEqual(listed.map((k) => k.id), [third.record.id, second.record.id, first.record.id])
        const hashes = [first, second, third].map(({ key }) => Secret.hashOf(key))
        for (const k of listed) {
          assert.notProperty(k, "hash")
          for (const value of Object.values(k)) assert.notInclude(hashes, value)
        }
      }).pipe(Effect.provide(environment)))
  })

  describe("ledger", () => {
    it.effect("record gives increasing ids and files each entry under the UTC day of its time", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const ids = yield* recordAll([entry(), entry({ at: "2025-03-01T23:30:00-02:00", stream: true })])
        assert.isTrue(ids[1]! > ids[0]!)
        const [late, early] = yield* store.audit({})
        assert.deepStrictEqual(late, { ...entry({ at: "2025-03-02T01:30:00.000Z", stream: true }), id: ids[1]!, day: "2025-03-02" })
        assert.deepStrictEqual(early, { ...entry(), id: ids[0]!, day: "2025-03-01" })
      }).pipe(Effect.provide(environment)))

    it.effect("spend up to a ledger id, then the rows after it, count each row exactly once", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        assert.strictEqual(yield* store.lastId(), 0)
        const ids = yield* recordAll(ledger)
        assert.strictEqual(yield* store.lastId(), ids[4])
        const through = ids[1]!
        assert.strictEqual(yield* store.spend({ scope: "team", id: "research", from_day: "2025-03-01", through_id: through }), 1.25)
        const after = yield* store.charges(through)
        assert.deepStrictEqual(after.map((c) => c.id), ids.slice(2))
        assert.deepStrictEqual(after[1], { id: ids[3]!, at: "2025-03-03T09:00:00.000Z", user: "cyd", team: null, project: "atlas", cost_usd: 0.5 })
        assert.deepStrictEqual(yield* store.charges(ids[4]!), [])
      }).pipe(Effect.provide(environment)))

    it.effect("spend totals a user's, team's or project's cost from a day on, or over a range of days inclusive", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(ledger)
        assert.strictEqual(yield* store.spend({ scope: "user", id: "ada", from_day: "2025-03-01" }), 1.25)
        assert.strictEqual(yield* store.spend({ scope: "team", id: "research", from_day: "2025-03-01" }), 3.25)
        assert.strictEqual(yield* store.spend({ scope: "project", id: "atlas", from_day: "2025-03-01" }), 1.75)
        assert.strictEqual(yield* store.spend({ scope: "project", id: "atlas", from_day: "2025-03-02" }), 0.5)
        assert.strictEqual(yield* store.spend({ scope: "team", id: "research", from_day: "2025-03-01", to_day: "2025-03-01" }), 1.25)
        assert.strictEqual(yield* store.spend({ scope: "team", id: "research", from_day: "2025-03-02", to_day: "2025-03-03" }), 2)
        assert.strictEqual(yield* store.spend({ scope: "user", id: "nobody", from_day: "2025-03-01" }), 0)
      }).pipe(Effect.provide(environment)))

    it.effect("report groups by project and day, in that order, with only those columns", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(ledger)
        assert.deepStrictEqual(yield* store.report({ group_by: ["project", "day"] }), [
          { project: "atlas", day: "2025-03-01", requests: 2, input_tokens: 200, output_tokens: 40, cost_usd: 1.25 },
          { project: "atlas", day: "2025-03-03", requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0.5 },
          { project: "borealis", day: "2025-03-02", requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 2 },
          { project: "borealis", day: "2025-03-03", requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0 }
        ])
      }).pipe(Effect.provide(environment)))

    it.effect("report by model groups on the model used; a request that reached no model is its own null group", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(ledger)
        assert.deepStrictEqual(yield* store.report({ group_by: ["model"] }), [
          { model: null, requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0 },
          { model: "gpt-4o", requests: 2, input_tokens: 200, output_tokens: 40, cost_usd: 3 },
          { model: "gpt-4o-mini", requests: 2, input_tokens: 200, output_tokens: 40, cost_usd: 0.75 }
        ])
      }).pipe(Effect.provide(environment)))

    it.effect("report filters by user, team, project, model and a range of days; no group_by is one total", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(ledger)
        const total = (cost_usd: number, requests: number) => [{ requests, input_tokens: 100 * requests, output_tokens: 20 * requests, cost_usd }]
        assert.deepStrictEqual(yield* store.report({ group_by: [] }), total(3.75, 5))
        assert.deepStrictEqual(yield* store.report({ group_by: [], user: "ada" }), total(1.25, 3))
        assert.deepStrictEqual(yield* store.report({ group_by: [], team: "research", project: "borealis" }), total(2, 2))
        assert.deepStrictEqual(yield* store.report({ group_by: [], model: "gpt-4o-mini" }), total(0.75, 2))
        assert.deepStrictEqual(yield* store.report({ group_by: [], from_day: "2025-03-02", to_day: "2025-03-02" }), total(2, 1))
        assert.deepStrictEqual(yield* store.report({ group_by: ["user"], from_day: "2025-03-03" }), [
          { user: "ada", requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0 },
          { user: "cyd", requests: 1, input_tokens: 100, output_tokens: 20, cost_usd: 0.5 }
        ])
        assert.deepStrictEqual(yield* store.report({ group_by: ["team"], user: "nobody" }), [])
      }).pipe(Effect.provide(environment)))

    it.effect("audit lists entries newest first, a page at a time", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const ids = yield* recordAll(ledger)
        const newestFirst = [...ids].reverse()
        assert.deepStrictEqual((yield* store.audit({})).map((e) => e.id), newestFirst)
        const page1 = yield* store.audit({ limit: 2 })
        assert.deepStrictEqual(page1.map((e) => e.id), newestFirst.slice(0, 2))
        const page2 = yield* store.audit({ limit: 2, before_id: page1.at(-1)!.id })
        assert.deepStrictEqual(page2.map((e) => e.id), newestFirst.slice(2, 4))
        const page3 = yield* store.audit({ limit: 2, before_id: page2.at(-1)!.id })
        assert.deepStrictEqual(page3.map((e) => e.id), newestFirst.slice(4))
        assert.strictEqual(page3[0]?.error, null)
        assert.strictEqual(page1[0]?.error, "blocked")
      }).pipe(Effect.provide(environment)))

    it.effect("audit filters by user, team, project, model, day and key", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        const ids = yield* recordAll([...ledger, entry({ key_id: "key_other", user: "dee", at: "2025-03-04T00:00:00.000Z" })])
        const audited = (query: Parameters<typeof store.audit>[0]) => Effect.map(store.audit(query), (es) => es.map((e) => e.id))
        assert.deepStrictEqual(yield* audited({ user: "ada" }), [ids[4]!, ids[1]!, ids[0]!])
        assert.deepStrictEqual(yield* audited({ team: "research", project: "borealis" }), [ids[4]!, ids[2]!])
        assert.deepStrictEqual(yield* audited({ model: "gpt-4o" }), [ids[2]!, ids[1]!])
        assert.deepStrictEqual(yield* audited({ day: "2025-03-03" }), [ids[4]!, ids[3]!])
        assert.deepStrictEqual(yield* audited({ key_id: "key_other" }), [ids[5]!])
      }).pipe(Effect.provide(environment)))

    it.effect("audit returns at most 1000 entries however many are asked for", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(Array.from({ length: 1001 }, () => entry()))
        assert.strictEqual((yield* store.audit({})).length, 100)
        assert.strictEqual((yield* store.audit({ limit: 5000 })).length, 1000)
      }).pipe(Effect.provide(environment)))

    it.effect("report and spend take only whitelisted column names: anything else dies before any SQL is built", () =>
      Effect.gen(function*() {
        const store = yield* HarnessStore
        yield* recordAll(ledger)
        // @ts-expect-error group_by names are a closed set
        const injected = yield* Effect.exit(store.report({ group_by: ["user) FROM harness_keys --"] }))
        assert.isTrue(Exit.isFailure(injected) && Exit.causeOption(injected).pipe(Option.exists((c) => c._tag === "Die")))
        // @ts-expect-error so are spend scopes
        const scoped = yield* Effect.exit(store.spend({ scope: "1=1 OR user", id: "x", from_day: "2025-03-01" }))
        assert.isTrue(Exit.isFailure(scoped) && Exit.causeOption(scoped).pipe(Option.exists((c) => c._tag === "Die")))
        // @ts-expect-error an inherited property is not a whitelisted one
        const inherited = yield* Effect.exit(store.report({ group_by: ["constructor"] }))
        assert.isTrue(Exit.isFailure(inherited))
        // Values are parameters, so one that looks like SQL matches nothing and harms nothing.
        assert.deepStrictEqual(yield* store.report({ group_by: ["user"], user: "ada' OR '1'='1" }), [])
        assert.strictEqual((yield* store.audit({})).length, ledger.length)
      }).pipe(Effect.provide(environment)))
  })
})

describe("HarnessStore on a SQLite database made before keys were numbered", () => {
  it.effect("its keys keep the order they were made in, the rowid's, and new ones come after them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE autopilot_harness_migrations (migration_id integer PRIMARY KEY NOT NULL, created_at datetime NOT NULL DEFAULT current_timestamp, name VARCHAR(255) NOT NULL)`
      yield* sql`INSERT INTO autopilot_harness_migrations (migration_id, name) VALUES (1, 'harness')`
      yield* sql`CREATE TABLE harness_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, user TEXT NOT NULL, team TEXT NULL,
        project TEXT NOT NULL, admin INTEGER NOT NULL, requests_per_minute INTEGER NULL, created_at TEXT NOT NULL, expires_at TEXT NULL, revoked_at TEXT NULL)`
      yield* sql`CREATE TABLE harness_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, day TEXT NOT NULL, key_id TEXT NOT NULL,
        user TEXT NOT NULL, team TEXT NULL, project TEXT NOT NULL, model_requested TEXT NOT NULL, model_used TEXT NULL, tier TEXT NULL,
        confidence REAL NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, latency_ms REAL NOT NULL,
        status INTEGER NOT NULL, stream INTEGER NOT NULL, policy_action TEXT NULL, budget_action TEXT NULL, error TEXT NULL)`
      // Made in one millisecond, ids not in the order they were made.
      for (const id of ["key_00000000000c", "key_00000000000a", "key_00000000000b"]) {
        yield* sql`INSERT INTO harness_keys (id, hash, prefix, user, project, admin, created_at) VALUES (${id}, ${`hash-${id}`}, 'ap-', 'ada', 'atlas', 0, '2025-03-01T00:00:00.000Z')`
      }
      const store = yield* HarnessStore.make
      yield* TestClock.setTime(Date.parse("2025-03-01T00:00:00.000Z"))
      const made = yield* store.createKey({ user: "bob", project: "atlas" })
      assert.deepStrictEqual((yield* store.listKeys()).map((k) => k.id), [made.record.id, "key_00000000000b", "key_00000000000a", "key_00000000000c"])
    }).pipe(Effect.provide(Database.layerSqlite(":memory:"))))
})
