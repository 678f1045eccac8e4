import { HttpApiMiddleware, HttpServerRequest } from "@effect/platform"
import { Context, Effect, Layer, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { ApiTokens } from "../auth/ApiTokens.js"
import type { Principal } from "../domain/ApiToken.js"
import { checkProject, defaultProject } from "../domain/MissionRecord.js"
import { BadRequest, BadRequestJson, Forbidden, ForbiddenJson, NotFound, NotFoundJson, Unauthorized, UnauthorizedJson, Unavailable, UnavailableJson } from "./ApiError.js"

/** The cookie the operator page signs in with. */
export const cookieName = "autopilot_auth"

/** Who is asking, and for which project: every handler reads this, and scopes everything it does to `project`. */
export interface Caller {
  readonly principal: Principal
  readonly project: string
  /** As a mission's history records it: `api:admin`, or `api:` and the token's id. */
  readonly actor: string
}

export class CurrentCaller extends Context.Tag("autopilot/api/CurrentCaller")<CurrentCaller, Caller>() {}

/**
 * Every route but signing in: a Bearer token or the `autopilot_auth` cookie, then `X-Project-ID`. A project
 * token asking for another project is told it does not exist, as for any id of that project. A request
 * signed in by the cookie that changes something must carry the session's CSRF token.
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("autopilot/api/Authorization", {
  failure: Schema.Union(UnauthorizedJson, ForbiddenJson, NotFoundJson, BadRequestJson, UnavailableJson),
  provides: CurrentCaller
}) {}

/**
 * The CSRF token of a session: keyed by the token the cookie holds, so only whoever has the token (the
 * page that signed in with it) can make it, and it outlives a restart of the server.
 */
export const csrfOf = (token: string): string => createHmac("sha256", token).update("autopilot-csrf").digest("hex")

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
      return { token: match[1]!, cookie: false }
    }
    const cookie = request.cookies[cookieName]
    if (cookie !== undefined && cookie !== "") return { token: cookie, cookie: true }
    return yield* new Unauthorized({ message: `a token is required: \`Authorization: Bearer <token>\`, or the ${cookieName} cookie from signing in` })
  })

/** Who the token is, as an API error when it is not anyone. */
export const authenticate = (tokens: ApiTokens["Type"], token: string) =>
  tokens.authenticate(token).pipe(
    Effect.catchAll((error: { readonly _tag: string; readonly message: string }) =>
      Effect.fail(
        error._tag === "Unauthenticated"
          ? new Unauthorized({ message: error.message })
          : new Unavailable({ message: `tokens could not be checked: ${error.message}` })
      )
    )
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
    return Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const { cookie, token } = yield* credentialsOf(request)
      const principal = yield* authenticate(tokens, token)
      if (cookie && !safeMethods.has(request.method)) {
        const sent = request.headers["x-csrf-token"]
        if (sent === undefined || !sameText(sent, csrfOf(token))) {
          return yield* new Forbidden({ message: "a change made with the sign-in cookie needs the session's X-CSRF-Token header" })
        }
      }
      const project = yield* projectOf(request, principal)
      return { principal, project, actor: principal.kind === "admin" ? "api:admin" : `api:${principal.tokenId}` }
    })
  })
)

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
