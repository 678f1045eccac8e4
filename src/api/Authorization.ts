import { HttpApiMiddleware, HttpServerRequest } from "@effect/platform"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { timingSafeEqual } from "node:crypto"
import { ApiSessions, type Session } from "../auth/ApiSessions.js"
import { ApiTokens } from "../auth/ApiTokens.js"
import type { Principal } from "../domain/ApiToken.js"
import { checkProject, defaultProject } from "../domain/MissionRecord.js"
import { BadRequest, BadRequestJson, Forbidden, ForbiddenJson, NotFound, NotFoundJson, Unauthorized, UnauthorizedJson, Unavailable, UnavailableJson } from "./ApiError.js"

/** The cookie the operator page signs in with: it holds the session's id, never a token. */
export const cookieName = "autopilot_auth"

/** Who is asking, and for which project: every handler reads this, and scopes everything it does to `project`. */
export interface Caller {
  readonly principal: Principal
  readonly project: string
  /** As a mission's history records it: `api:admin`, or `api:` and the token's id. */
  readonly actor: string
  /** The session, for a request signed in by the cookie (with its id, to sign out); none for a Bearer token. */
  readonly session: Option.Option<Session & { readonly id: string }>
  /**
   * Whether the token or session this request came with is still good: a stream open for hours asks it again
   * now and then, so that signing out or revoking the token ends it too. A database out of reach is not a no.
   */
  readonly stillAllowed: Effect.Effect<boolean>
}

export class CurrentCaller extends Context.Tag("autopilot/api/CurrentCaller")<CurrentCaller, Caller>() {}

/**
 * Every route but signing in: a Bearer token or the `autopilot_auth` cookie's session, then `X-Project-ID`.
 * A project token asking for another project is told it does not exist, as for any id of that project. A
 * request signed in by the cookie that changes something must carry the session's CSRF token.
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("autopilot/api/Authorization", {
  failure: Schema.Union(UnauthorizedJson, ForbiddenJson, NotFoundJson, BadRequestJson, UnavailableJson),
  provides: CurrentCaller
}) {}

/**
 * When the sign-in cookie is `Secure`: always with `secure` (`serve --secure-cookie`), else only for a
 * request that a proxy listed in `trustedProxies` (`serve --trust-proxy`) says came over HTTPS. Anyone else
 * can send `X-Forwarded-Proto`, so it is not believed from them.
 */
export class CookiePolicy extends Context.Tag("autopilot/api/CookiePolicy")<
  CookiePolicy,
  { readonly secure: boolean; readonly trustedProxies: ReadonlyArray<string> }
>() {}

/** An IPv4 address as Node gives it on a dual-stack socket (`::ffff:10.0.0.1`), plainly. */
const plainAddress = (address: string) => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1").toLowerCase()

export const secureCookie = (policy: CookiePolicy["Type"], request: HttpServerRequest.HttpServerRequest): boolean =>
  policy.secure ||
  (Option.exists(request.remoteAddress, (address) => policy.trustedProxies.map(plainAddress).includes(plainAddress(address))) &&
    request.headers["x-forwarded-proto"]?.split(",")[0]?.trim().toLowerCase() === "https")

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"])

const credentialsOf = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const header = request.headers["authorization"]
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
      if (match === null) return yield* new Unauthorized({ message: "the Authorization header must be `Bearer <token>`" })
      return { kind: "token", token: match[1]! } as const
    }
    const cookie = request.cookies[cookieName]
    if (cookie !== undefined && cookie !== "") return { kind: "session", id: cookie } as const
    return yield* new Unauthorized({ message: `a token is required: \`Authorization: Bearer <token>\`, or the ${cookieName} cookie from signing in` })
  })

const unavailable = (what: string, error: { readonly message: string }) => new Unavailable({ message: `${what} could not be checked: ${error.message}` })

/** Who the token is, as an API error when it is not anyone. */
export const authenticate = (tokens: ApiTokens["Type"], token: string) =>
  tokens.authenticate(token).pipe(
    Effect.catchTags({
      Unauthenticated: (error) => Effect.fail(new Unauthorized({ message: error.message })),
      PersistenceError: (error) => Effect.fail(unavailable("tokens", error))
    })
  )

/** The live session a cookie names, as an API error when it names none. */
export const sessionOf = (sessions: ApiSessions["Type"], id: string) =>
  sessions.authenticate(id).pipe(
    Effect.map((session) => ({ ...session, id })),
    Effect.catchTags({
      SessionEnded: (error) => Effect.fail(new Unauthorized({ message: error.message })),
      PersistenceError: (error) => Effect.fail(unavailable("the session", error))
    })
  )

/** The project a request is about: `X-Project-ID`, else the token's own (or `default` for the admin). */
const projectOf = (request: HttpServerRequest.HttpServerRequest, principal: Principal) =>
  Effect.gen(function*() {
    const asked = request.headers["x-project-id"]
    if (asked === undefined) return principal.kind === "project" ? principal.project : defaultProject
    const project = yield* Effect.mapError(checkProject(asked), (e) => new BadRequest({ message: `X-Project-ID: ${e.message}` }))
    if (principal.kind === "project" && project !== principal.project) return yield* new NotFound({ message: `no project "${project}"` })
    return project
  })

export const layer = Layer.effect(
  Authorization,
  Effect.gen(function*() {
    const tokens = yield* ApiTokens
    const sessions = yield* ApiSessions
    return Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const credentials = yield* credentialsOf(request)
      if (credentials.kind === "token") {
        const principal = yield* authenticate(tokens, credentials.token)
        const stillAllowed = recheck(authenticate(tokens, credentials.token))
        return { principal, project: yield* projectOf(request, principal), actor: actorOf(principal), session: Option.none(), stillAllowed }
      }
      const session = yield* sessionOf(sessions, credentials.id)
      if (!safeMethods.has(request.method)) {
        const sent = request.headers["x-csrf-token"]
        if (sent === undefined || !sameText(sent, session.csrfToken)) {
          return yield* new Forbidden({ message: "a change made with the sign-in cookie needs the session's X-CSRF-Token header" })
        }
      }
      const principal = session.principal
      const stillAllowed = recheck(sessionOf(sessions, credentials.id))
      return { principal, project: yield* projectOf(request, principal), actor: actorOf(principal), session: Option.some(session), stillAllowed }
    })
  })
)

/** Asked again: refused only when the credential itself was (ended, revoked, expired), not when the database was away. */
const recheck = <E extends { readonly _tag: string }>(asked: Effect.Effect<unknown, E>): Effect.Effect<boolean> =>
  asked.pipe(Effect.as(true), Effect.catchAll((error) => Effect.succeed(error._tag !== "Unauthorized")))

const actorOf = (principal: Principal) => (principal.kind === "admin" ? "api:admin" : `api:${principal.tokenId}`)

/**
 * Only the admin token may change what is the instance's, not a project's: enabling, the tier, and the
 * blueprint catalog (synthesis keeps what it writes there, for every project). `what` names the refused act.
 */
export const requireAdmin = (what: string) =>
  Effect.flatMap(CurrentCaller, (caller) =>
    caller.principal.kind === "admin"
      ? Effect.void
      : Effect.fail(new Forbidden({ message: `only the admin token (AUTOPILOT_API_TOKEN) may ${what}` })))

export const changeSettings = "change the instance's settings"
export const synthesizeBlueprints = "synthesize blueprints: a new blueprint joins the catalog every project routes to"
export const seeFineTunes = "see fine-tunes: their datasets are made from every project's work, and their models take every project's traffic"
