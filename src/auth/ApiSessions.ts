import type { SqlClient } from "@effect/sql"
import { Context, DateTime, Duration, Effect, Layer, Option } from "effect"
import * as ApiSession from "../domain/ApiSession.js"
import { SessionEnded, SessionRecord } from "../domain/ApiSession.js"
import type { Principal, Unauthenticated } from "../domain/ApiToken.js"
import type { PersistenceError } from "../domain/Errors.js"
import { defaultProject } from "../domain/MissionRecord.js"
import * as SessionStore from "../store/SessionStore.js"
import { ApiTokens } from "./ApiTokens.js"

/** How long a session lasts from signing in, however much it is used: the cookie's Max-Age too. */
export const lifetime = Duration.hours(12)

/** A live session, as a request signed in by its cookie is. */
export interface Session {
  readonly principal: Principal
  /** The `X-CSRF-Token` every change made with the cookie must carry. */
  readonly csrfToken: string
  readonly expiresAt: string
}

/**
 * Sign-in sessions of the operator page: made from a token (checked as for any request), named by a random
 * id that only the cookie holds, ended by signing out, at their expiry, or when their token is revoked or
 * expires (the admin's: when AUTOPILOT_API_TOKEN changes). Times are the Clock's.
 */
export class ApiSessions extends Context.Tag("autopilot/ApiSessions")<
  ApiSessions,
  {
    /** Signs in with `token`: the session's id, for the cookie and nowhere else, and the session. */
    readonly create: (token: string) => Effect.Effect<{ readonly id: string; readonly session: Session }, Unauthenticated | PersistenceError>
    /** The live session the id names. */
    readonly authenticate: (id: string) => Effect.Effect<Session, SessionEnded | PersistenceError>
    /** Ends the session the id names, if it is one. */
    readonly end: (id: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

const sessionOf = (record: SessionRecord): Session => ({
  principal: record.token_id.startsWith("admin:")
    ? { kind: "admin" }
    : { kind: "project", project: record.project, tokenId: record.token_id },
  csrfToken: ApiSession.csrfOf(record.csrf_secret),
  expiresAt: record.expires_at
})

const before = (now: DateTime.Utc, iso: string) => DateTime.lessThan(now, DateTime.unsafeMake(iso))

export const make = Effect.gen(function*() {
  const tokens = yield* ApiTokens
  const store = yield* SessionStore.SessionStore

  const create = (token: string) =>
    Effect.gen(function*() {
      const principal = yield* tokens.authenticate(token)
      const now = yield* DateTime.now
      const tokenId = principal.kind === "project"
        ? principal.tokenId
        : ApiSession.adminTokenId(Option.getOrElse(tokens.adminFingerprint, () => ""))
      const generated = ApiSession.generate()
      const record = new SessionRecord({
        token_id: tokenId,
        project: principal.kind === "project" ? principal.project : defaultProject,
        csrf_secret: generated.csrfSecret,
        created_at: DateTime.formatIso(now),
        expires_at: DateTime.formatIso(DateTime.addDuration(now, lifetime))
      })
      // Sessions that can never be used again are dropped as new ones are made, so the table stays small.
      yield* Effect.ignore(store.sweep(DateTime.formatIso(now)))
      yield* store.insert(record, ApiSession.hashOf(generated.id))
      return { id: generated.id, session: sessionOf(record) }
    })

  const authenticate = (id: string) =>
    Effect.gen(function*() {
      if (!ApiSession.looksLikeId(id)) return yield* new SessionEnded()
      const found = yield* store.byHash(ApiSession.hashOf(id))
      if (Option.isNone(found)) return yield* new SessionEnded()
      const { record, token } = found.value
      const now = yield* DateTime.now
      if (!before(now, record.expires_at)) return yield* new SessionEnded()
      const live = record.token_id.startsWith("admin:")
        ? Option.exists(tokens.adminFingerprint, (fingerprint) => record.token_id === ApiSession.adminTokenId(fingerprint))
        : Option.exists(token, (t) => t.revoked_at === null && (t.expires_at === null || before(now, t.expires_at)))
      if (!live) return yield* new SessionEnded()
      return sessionOf(record)
    })

  const end = (id: string) => (ApiSession.looksLikeId(id) ? Effect.asVoid(store.remove(ApiSession.hashOf(id))) : Effect.void)

  return ApiSessions.of({ create, authenticate, end })
})

/** Over the tokens service and the database provided. */
export const layer: Layer.Layer<ApiSessions, never, ApiTokens | SqlClient.SqlClient> = Layer.effect(ApiSessions, make).pipe(
  Layer.provide(SessionStore.layer)
)
