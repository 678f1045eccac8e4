import { SqlClient } from "@effect/sql"
import { Context, DateTime, Effect, Layer, Option } from "effect"
import { createHash } from "node:crypto"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  "0001_blueprint_cache": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // The key is a digest: a goal may be longer than an index entry may be (about 2,700 bytes in Postgres).
    yield* sql`CREATE TABLE IF NOT EXISTS blueprint_cache (
      cache_key TEXT PRIMARY KEY,
      service TEXT NOT NULL,
      kind TEXT NOT NULL,
      goal TEXT NOT NULL,
      k INTEGER NOT NULL,
      body TEXT NOT NULL,
      fetched_at TEXT NOT NULL
    )`
  })
}

/**
 * What was asked of which service, and how: `k` is the number of candidates asked for, 0 for a synthesis;
 * `keyed` whether the service key was sent (tier free). A keyed answer may differ from an anonymous one,
 * so one is never served for the other.
 */
export interface Key {
  readonly service: string
  readonly kind: "retrieve" | "synthesize"
  readonly goal: string
  readonly k: number
  readonly keyed: boolean
}

/** An answer as the service gave it (JSON text), and when, in milliseconds since the epoch. */
export interface Cached {
  readonly body: string
  readonly fetched_at: number
}

/**
 * The remote blueprint service's answers, kept so that the same question within the cache's lifetime is
 * not asked again, and so that routing still has them when the service is down. One row per question,
 * overwritten by a newer answer.
 */
export class BlueprintCacheStore extends Context.Tag("autopilot/BlueprintCacheStore")<
  BlueprintCacheStore,
  {
    readonly get: (key: Key) => Effect.Effect<Option.Option<Cached>, PersistenceError>
    readonly put: (key: Key, answer: Cached) => Effect.Effect<void, PersistenceError>
  }
>() {}

const digest = (key: Key) => createHash("sha256").update(JSON.stringify([key.service, key.kind, key.goal, key.k, key.keyed])).digest("hex")

const iso = (millis: number) => DateTime.formatIso(DateTime.unsafeMake(millis))

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_blueprint_cache_migrations", migrations)

  return BlueprintCacheStore.of({
    get: (key) =>
      sql<{ body: string; fetched_at: string }>`SELECT body, fetched_at FROM blueprint_cache WHERE cache_key = ${digest(key)}`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => ({ body: row.body, fetched_at: Date.parse(row.fetched_at) }))),
        Database.refail
      ),
    put: (key, answer) =>
      sql`
        INSERT INTO blueprint_cache (cache_key, service, kind, goal, k, body, fetched_at)
        VALUES (${digest(key)}, ${key.service}, ${key.kind}, ${key.goal}, ${key.k}, ${answer.body}, ${iso(answer.fetched_at)})
        ON CONFLICT (cache_key) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at
      `.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer: Layer.Layer<BlueprintCacheStore, never, SqlClient.SqlClient> = Layer.effect(BlueprintCacheStore, make)

/** In this process only, for embedders without a database. */
export const layerMemory: Layer.Layer<BlueprintCacheStore> = Layer.sync(BlueprintCacheStore, () => {
  const rows = new Map<string, Cached>()
  return BlueprintCacheStore.of({
    get: (key) => Effect.sync(() => Option.fromNullable(rows.get(digest(key)))),
    put: (key, answer) => Effect.sync(() => void rows.set(digest(key), answer))
  })
})
