import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { TokenRecord } from "../domain/ApiToken.js"
import { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  // `seq` orders tokens made in the same millisecond; `hash` is the only way a token is looked up.
  "0001_api_tokens": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS api_tokens (
      seq ${Database.serialKey(sql)},
      id TEXT NOT NULL UNIQUE,
      project TEXT NOT NULL,
      name TEXT NULL,
      hash TEXT NOT NULL UNIQUE,
      prefix TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NULL,
      revoked_at TEXT NULL,
      last_used_at TEXT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS api_tokens_by_project ON api_tokens (project, seq)`
  })
}

const columns = "id, project, name, prefix, created_at, expires_at, revoked_at, last_used_at"

const decodeRecord = Schema.decodeUnknown(TokenRecord)

const recordOf = (row: unknown) =>
  decodeRecord(row).pipe(
    Effect.mapError((error) =>
      new PersistenceError({ message: `API token ${String((row as { id?: unknown }).id)} in the database does not decode: ${Database.decodeError(error)}`, busy: false })
    )
  )

/**
 * The API's project tokens: each a hash (never the token), its project, and when it was made, expires,
 * was revoked and last used. A revoked token stays, as the record of what it was.
 */
export class TokenStore extends Context.Tag("autopilot/TokenStore")<
  TokenStore,
  {
    readonly insert: (record: TokenRecord, hash: string) => Effect.Effect<void, PersistenceError>
    /** The token whose hash this is, revoked or expired alike. */
    readonly byHash: (hash: string) => Effect.Effect<Option.Option<TokenRecord>, PersistenceError>
    /** Newest first; only one project's when given. */
    readonly list: (project?: string) => Effect.Effect<ReadonlyArray<TokenRecord>, PersistenceError>
    /** Marks an active token revoked at `at`, and gives it back; none if there is no such active token (of `project`, when given). */
    readonly revoke: (id: string, at: string, project?: string) => Effect.Effect<Option.Option<TokenRecord>, PersistenceError>
    /** Records a use at `at`, unless one is already recorded at or after `since`: at most one write per token per interval. */
    readonly touch: (id: string, at: string, since: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_tokens_migrations", migrations)

  const select = (rows: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>) =>
    rows.pipe(Database.refail, Effect.flatMap((rows) => Effect.forEach(rows, recordOf)))

  return TokenStore.of({
    insert: (record, hash) =>
      sql`INSERT INTO api_tokens ${sql.insert({ ...Schema.encodeSync(TokenRecord)(record), hash })}`.pipe(Effect.asVoid, Database.refail),
    byHash: (hash) =>
      Effect.map(select(sql`SELECT ${sql.literal(columns)} FROM api_tokens WHERE hash = ${hash}`), (records) => Option.fromNullable(records[0])),
    list: (project) =>
      select(
        project === undefined
          ? sql`SELECT ${sql.literal(columns)} FROM api_tokens ORDER BY seq DESC`
          : sql`SELECT ${sql.literal(columns)} FROM api_tokens WHERE project = ${project} ORDER BY seq DESC`
      ),
    revoke: (id, at, project) =>
      Effect.map(
        select(
          project === undefined
            ? sql`UPDATE api_tokens SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL RETURNING ${sql.literal(columns)}`
            : sql`UPDATE api_tokens SET revoked_at = ${at} WHERE id = ${id} AND project = ${project} AND revoked_at IS NULL RETURNING ${sql.literal(columns)}`
        ),
        (records) => Option.fromNullable(records[0])
      ),
    touch: (id, at, since) =>
      sql`UPDATE api_tokens SET last_used_at = ${at} WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < ${since})`.pipe(
        Effect.asVoid,
        Database.refail
      )
  })
})

export const layer = Layer.effect(TokenStore, make)
