import type { SqlClient } from "@effect/sql"
import { Config, Context, DateTime, Duration, Effect, Layer, Option, Redacted } from "effect"
import * as crypto from "node:crypto"
import * as ApiToken from "../domain/ApiToken.js"
import { type Principal, TokenNotFound, TokenRecord, Unauthenticated } from "../domain/ApiToken.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import * as Database from "../store/Database.js"
import * as TokenStore from "../store/TokenStore.js"

/**
 * Who may call the HTTP API: the admin token (`AUTOPILOT_API_TOKEN`, every project) and project tokens
 * minted here (their project only). A token is in the answer of `create` and nowhere else: never stored,
 * logged, listed or put in an error.
 */
export class ApiTokens extends Context.Tag("autopilot/ApiTokens")<
  ApiTokens,
  {
    /** Mints a project token: the token itself, shown this once, and its record. */
    readonly create: (input: ApiToken.NewToken) => Effect.Effect<{ readonly token: string; readonly record: TokenRecord }, BadInput | PersistenceError>
    /** Newest first, revoked and expired ones too; only one project's when given. Never a token or its hash. */
    readonly list: (options?: { readonly project?: string | undefined }) => Effect.Effect<ReadonlyArray<TokenRecord>, PersistenceError>
    /**
     * Revokes a token at once and gives its record. `TokenNotFound` for an unknown id, one already revoked
     * (revoking is not repeated: its time stays the first), or, with `project`, another project's.
     */
    readonly revoke: (id: string, options?: { readonly project?: string | undefined }) => Effect.Effect<TokenRecord, TokenNotFound | PersistenceError>
    /** Who presents `token`; revocation and expiry as of the Clock's now. */
    readonly authenticate: (token: string) => Effect.Effect<Principal, Unauthenticated | PersistenceError>
    /** A one-way fingerprint of the admin token, if there is one: sessions made with it end when it changes. */
    readonly adminFingerprint: Option.Option<string>
  }
>() {}

/** How stale a token's `last_used_at` may be: a request writes at most once a minute per token. */
const touchEvery = Duration.minutes(1)

/** The admin token is compared in constant time: both sides hashed first, so their lengths are equal too. */
const digest = (text: string) => crypto.createHash("sha256").update(text, "utf8").digest()

export const make = (options: { readonly adminToken: Option.Option<Redacted.Redacted<string>> }) =>
  Effect.gen(function*() {
    const store = yield* TokenStore.TokenStore
    const admin = Option.map(options.adminToken, (token) => digest(Redacted.value(token)))

    const create = (input: ApiToken.NewToken) =>
      Effect.gen(function*() {
        const checked = yield* ApiToken.check(input)
        const now = yield* DateTime.now
        const generated = ApiToken.generate()
        const record = new TokenRecord({
          id: generated.id,
          project: checked.project,
          name: checked.name,
          prefix: generated.prefix,
          created_at: DateTime.formatIso(now),
          expires_at: checked.expiresInDays === null ? null : DateTime.formatIso(DateTime.add(now, { days: checked.expiresInDays })),
          revoked_at: null,
          last_used_at: null
        })
        yield* store.insert(record, generated.hash)
        return { token: generated.token, record }
      })

    const revoke = (id: string, scope: { readonly project?: string | undefined } = {}) =>
      Effect.gen(function*() {
        const at = DateTime.formatIso(yield* DateTime.now)
        const revoked = yield* store.revoke(id, at, scope.project)
        return yield* Option.match(revoked, { onNone: () => Effect.fail(new TokenNotFound({ id })), onSome: Effect.succeed })
      })

    const authenticate = (token: string): Effect.Effect<Principal, Unauthenticated | PersistenceError> =>
      Effect.gen(function*() {
        if (token.trim() === "") return yield* new Unauthenticated({ reason: "missing" })
        if (Option.isSome(admin) && crypto.timingSafeEqual(digest(token), admin.value)) return { kind: "admin" } as const
        if (!ApiToken.looksLikeToken(token)) return yield* new Unauthenticated({ reason: "invalid" })
        const found = yield* store.byHash(ApiToken.hashOf(token))
        if (Option.isNone(found) || found.value.revoked_at !== null) return yield* new Unauthenticated({ reason: "invalid" })
        const record = found.value
        const now = yield* DateTime.now
        if (record.expires_at !== null && !DateTime.lessThan(now, DateTime.unsafeMake(record.expires_at))) {
          return yield* new Unauthenticated({ reason: "expired" })
        }
        // Only a note for `token list`: a request is not refused because it could not be written.
        yield* Effect.ignore(store.touch(record.id, DateTime.formatIso(now), DateTime.formatIso(DateTime.subtractDuration(now, touchEvery))))
        return { kind: "project", project: record.project, tokenId: record.id } as const
      })

    const adminFingerprint = Option.map(admin, (hash) => crypto.createHash("sha256").update(hash).update("autopilot-session").digest("hex").slice(0, 32))

    return ApiTokens.of({ create, list: (scope = {}) => store.list(scope.project), revoke, authenticate, adminFingerprint })
  })

/** The shortest admin token taken: a short one could be guessed. */
export const minAdminTokenLength = 16

/** `AUTOPILOT_API_TOKEN`, if set (an empty value is unset); one shorter than 16 characters is refused. */
export const adminTokenConfig: Effect.Effect<Option.Option<Redacted.Redacted<string>>, BadInput> = Config.option(Config.redacted("AUTOPILOT_API_TOKEN")).pipe(
  Effect.orDie,
  Effect.map(Option.filter((token) => Redacted.value(token) !== "")),
  Effect.filterOrFail(
    (token) => !Option.exists(token, (t) => Redacted.value(t).length < minAdminTokenLength),
    () => new BadInput({ message: `AUTOPILOT_API_TOKEN must be at least ${minAdminTokenLength} characters (e.g. \`openssl rand -hex 32\`)` })
  )
)

/** The service with the admin token given, over `TokenStore` on the database provided. */
export const layerWith = (options: { readonly adminToken: Option.Option<Redacted.Redacted<string>> }): Layer.Layer<ApiTokens, never, SqlClient.SqlClient> =>
  Layer.effect(ApiTokens, make(options)).pipe(Layer.provide(TokenStore.layer))

/** The service with the admin token of `AUTOPILOT_API_TOKEN` (none if unset), over the database provided. */
export const layer: Layer.Layer<ApiTokens, BadInput, SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.map(adminTokenConfig, (adminToken) => layerWith({ adminToken }))
)

/** For tests: the service on a fresh in-memory SQLite database, with `adminToken` as the admin token if given. */
export const layerTest = (adminToken?: string): Layer.Layer<ApiTokens> =>
  layerWith({ adminToken: Option.map(Option.fromNullable(adminToken), Redacted.make) }).pipe(Layer.provide(Database.layerSqlite(":memory:")))
