import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { SessionRecord } from "../domain/ApiSession.js"
import { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"
import * as TokenStore from "./TokenStore.js"

const migrations = {
  // `hash` (of the id) is the only way a session is looked up; by token and by expiry for the sweep.
  "0001_api_sessions": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS api_sessions (
      seq ${Database.serialKey(sql)},
      hash TEXT NOT NULL UNIQUE,
      token_id TEXT NOT NULL,
      project TEXT NOT NULL,
      csrf_secret TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS api_sessions_by_token ON api_sessions (token_id)`
    yield* sql`CREATE INDEX IF NOT EXISTS api_sessions_by_expiry ON api_sessions (expires_at)`
  })
}

/** A session with the state of the project token it was made from (none for the admin's, or a token gone). */
export interface Found {
  readonly record: SessionRecord
  readonly token: Option.Option<{ readonly revoked_at: string | null; readonly expires_at: string | null }>
}

const Row = Schema.Struct({
  ...SessionRecord.fields,
  token_found: Schema.NullOr(Schema.String),
  token_revoked_at: Schema.NullOr(Schema.String),
  token_expires_at: Schema.NullOr(Schema.String)
})

const decodeRow = Schema.decodeUnknown(Row)

/**
 * The sign-in sessions: each the hash of its id, the token it was made from, its project, times and CSRF
 * secret. A session is looked up with its token's state in the same read (a join on `api_tokens`), so
 * revoking or expiring the token ends its sessions at once, with no second write to forget or race.
 */
export class SessionStore extends Context.Tag("autopilot/SessionStore")<
  SessionStore,
  {
    readonly insert: (record: SessionRecord, hash: string) => Effect.Effect<void, PersistenceError>
    readonly byHash: (hash: string) => Effect.Effect<Option.Option<Found>, PersistenceError>
    /** Ends a session (signing out); false if there was none. */
    readonly remove: (hash: string) => Effect.Effect<boolean, PersistenceError>
    /** Deletes the sessions expired at `now` (ISO) and those whose token is revoked: they can never be used again. */
    readonly sweep: (now: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Sessions are read joined to the tokens: their table is made first.
  yield* TokenStore.TokenStore
  yield* Database.migrate("autopilot_sessions_migrations", migrations)

  return SessionStore.of({
    insert: (record, hash) =>
      sql`INSERT INTO api_sessions ${sql.insert({ ...Schema.encodeSync(SessionRecord)(record), hash })}`.pipe(Effect.asVoid, Database.refail),
    byHash: (hash) =>
      sql`SELECT s.token_id, s.project, s.csrf_secret, s.created_at, s.expires_at,
          t.id AS token_found, t.revoked_at AS token_revoked_at, t.expires_at AS token_expires_at
          FROM api_sessions s LEFT JOIN api_tokens t ON t.id = s.token_id WHERE s.hash = ${hash}`.pipe(
        Database.refail,
        Effect.flatMap((rows) =>
          rows.length === 0
            ? Effect.succeed(Option.none<Found>())
            : decodeRow(rows[0]).pipe(
              Effect.mapError((error) => new PersistenceError({ message: `a session in the database does not decode: ${Database.decodeError(error)}`, busy: false })),
              Effect.map((row) =>
                Option.some<Found>({
                  record: new SessionRecord({
                    token_id: row.token_id,
                    project: row.project,
                    csrf_secret: row.csrf_secret,
                    created_at: row.created_at,
                    expires_at: row.expires_at
                  }),
                  token: row.token_found === null ? Option.none() : Option.some({ revoked_at: row.token_revoked_at, expires_at: row.token_expires_at })
                })
              )
            )
        )
      ),
    remove: (hash) =>
      sql`DELETE FROM api_sessions WHERE hash = ${hash} RETURNING hash`.pipe(Database.refail, Effect.map((rows) => rows.length > 0)),
    sweep: (now) =>
      sql`DELETE FROM api_sessions WHERE expires_at <= ${now}
          OR token_id IN (SELECT id FROM api_tokens WHERE revoked_at IS NOT NULL)`.pipe(Effect.asVoid, Database.refail)
  })
})

/** Over the database provided; the tokens' table is migrated first. */
export const layer = Layer.effect(SessionStore, make).pipe(Layer.provide(TokenStore.layer))
