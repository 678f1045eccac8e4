import { HttpApp, HttpMiddleware, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Clock, Effect, Layer, Schema, Stream } from "effect"
import { createServer } from "node:http"
import * as ModelRoute from "../finetune/ModelRoute.js"
import { Gateway } from "./Gateway.js"
import { Name } from "./HarnessConfig.js"
import { HarnessError, toResponse } from "./HarnessError.js"
import { HarnessStore } from "./HarnessStore.js"
import * as JsonBody from "./JsonBody.js"
import * as PlainChat from "./PlainChat.js"
import * as RequestLog from "./RequestLog.js"

/** The body as JSON, refusing what is over the size limit: before reading it if its content-length says so. */
const jsonBody = (limit: number) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (Number(request.headers["content-length"] ?? 0) > limit) return yield* HarnessError.tooLarge(limit)
    // A body without a content-length (chunked) is counted as it comes. It is read to its end, keeping no more
    // than the limit: the platform's own maxBodySize destroys the request, and with it the socket, so the client
    // would get a reset connection instead of the 413.
    const { bytes, parts } = yield* request.stream.pipe(
      Stream.runFold({ bytes: 0, parts: [] as Array<Uint8Array> }, (read, part) => {
        read.bytes += part.length
        if (read.bytes <= limit) read.parts.push(part)
        return read
      }),
      Effect.mapError(() => HarnessError.invalid("the request body could not be read"))
    )
    if (bytes > limit) return yield* HarnessError.tooLarge(limit)
    return yield* JsonBody.parse(Buffer.concat(parts).toString("utf8"))
  })

const authenticated = Effect.flatMap(
  Gateway,
  (gateway) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => gateway.authenticate(request.headers["authorization"])).pipe(
      Effect.tap((key) => RequestLog.note({ key_id: key.id }))
    )
)

/** What a request names for promoted routes to match (`x-autopilot-route`), if it names anything. */
const routeHeader = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.headers[ModelRoute.routeHeader])

const admin = Effect.filterOrFail(authenticated, (key) => key.admin, () => HarnessError.notAdmin())

/** Query and body fields decoded by a Schema; what does not decode is a 400 naming the field. */
const decodeOr400 = <A, I>(schema: Schema.Schema<A, I>) => (input: unknown) =>
  Schema.decodeUnknown(schema, { onExcessProperty: "error" })(input).pipe(Effect.mapError(HarnessError.fromParseError))

/** As decodeOr400, with `param` the query parameter itself: `group_by`, not `group_by.1` for its second item. */
const queryOr400 = <A, I>(schema: Schema.Schema<A, I>) => (input: unknown) =>
  decodeOr400(schema)(input).pipe(
    Effect.mapError((error) => HarnessError.invalid(error.message, error.param?.split(".")[0]))
  )

const searchParams = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
  Object.fromEntries(new URL(request.url, "http://harness").searchParams))

/** `message` stands for every way the value can be wrong, including the wrong type. */
const saying = (message: string) => ({ message: () => ({ message, override: true }) })

const Day = Schema.String.pipe(
  // The pattern, and a real day: 2026-02-30 parses, but as another day.
  Schema.filter((s) => {
    const at = Date.parse(`${s}T00:00:00Z`)
    return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(at) && new Date(at).toISOString().startsWith(s)
  }),
  Schema.annotations(saying("must be a day as YYYY-MM-DD"))
)
const Filters = {
  user: Schema.optional(Schema.String),
  team: Schema.optional(Schema.String),
  project: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String)
}
const GroupBy = Schema.Literal("user", "team", "project", "model", "day")

export const SpendQuery = Schema.Struct({
  ...Filters,
  group_by: Schema.optionalWith(
    Schema.split(",").pipe(
      Schema.compose(Schema.Array(GroupBy)),
      Schema.annotations(saying("must be a comma-separated list of user, team, project, model and day"))
    ),
    { default: () => ["project", "day"] as const }
  ),
  from: Schema.optional(Day),
  to: Schema.optional(Day)
})

export const AuditQuery = Schema.Struct({
  ...Filters,
  day: Schema.optional(Day),
  key_id: Schema.optional(Schema.String),
  limit: Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000), Schema.annotations(saying("must be a whole number from 1 to 1000")))
  ),
  before_id: Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.positive(), Schema.annotations(saying("must be a positive whole number")))
  )
})

export const NewKey = Schema.Struct({
  // As rules name them: a key for "my team" could never match a rule.
  user: Name,
  project: Name,
  team: Schema.optional(Name),
  admin: Schema.optional(Schema.Boolean),
  requests_per_minute: Schema.optional(Schema.Int.pipe(Schema.positive(), Schema.annotations(saying("must be a positive whole number")))),
  // At most a century: far beyond it the expiry is not a Date at all, and making the key failed with a 500.
  expires_in_days: Schema.optional(
    Schema.Number.pipe(Schema.positive(), Schema.lessThanOrEqualTo(36_500), Schema.annotations(saying("must be a number of days above 0 and at most 36500")))
  )
})

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

/** Every route checks the key first; the admin routes also need an admin key. */
export const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/v1/chat/completions",
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const key = yield* authenticated
      return yield* gateway.chat(key, yield* jsonBody(gateway.config.max_request_bytes), yield* routeHeader)
    })
  ),
  HttpRouter.post(
    "/v1/responses",
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const key = yield* authenticated
      return yield* gateway.responses(key, yield* jsonBody(gateway.config.max_request_bytes), yield* routeHeader)
    })
  ),
  HttpRouter.get(
    "/v1/models",
    Effect.gen(function*() {
      const gateway = yield* Gateway
      const key = yield* authenticated
      return json({
        object: "list",
        data: gateway.models(key).map((id) => ({ id, object: "model", created: 0, owned_by: gateway.config.org }))
      })
    })
  ),
  HttpRouter.get(
    "/admin/keys",
    Effect.gen(function*() {
      yield* admin
      return json({ keys: (yield* (yield* HarnessStore).listKeys()) })
    })
  ),
  HttpRouter.post(
    "/admin/keys",
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* admin
      const input = yield* Effect.flatMap(jsonBody(gateway.config.max_request_bytes), decodeOr400(NewKey))
      const now = yield* Clock.currentTimeMillis
      const { expires_in_days, ...rest } = input
      const created = yield* (yield* HarnessStore).createKey({
        ...rest,
        ...(expires_in_days === undefined ? {} : { expires_at: new Date(now + expires_in_days * 86_400_000).toISOString() })
      })
      return json({ key: created.key, ...created.record }, 201)
    })
  ),
  HttpRouter.del(
    "/admin/keys/:id",
    Effect.gen(function*() {
      yield* admin
      const { id } = yield* HttpRouter.params
      const revoked = yield* (yield* HarnessStore).revokeKey(id ?? "")
      return revoked
        ? json({ id, revoked: true })
        : yield* new HarnessError({ status: 404, type: "invalid_request_error", code: "not_found", message: `no active key ${id}` })
    })
  ),
  HttpRouter.get(
    "/admin/spend",
    Effect.gen(function*() {
      yield* admin
      const { from, to, ...query } = yield* Effect.flatMap(searchParams, queryOr400(SpendQuery))
      const rows = yield* (yield* HarnessStore).report({ ...query, from_day: from, to_day: to })
      return json({ rows })
    })
  ),
  HttpRouter.get(
    "/admin/audit",
    Effect.gen(function*() {
      yield* admin
      const query = yield* Effect.flatMap(searchParams, queryOr400(AuditQuery))
      return json({ entries: yield* (yield* HarnessStore).audit(query) })
    })
  )
)

/** The router as an app whose every failure is an OpenAI-style JSON answer. */
export const app: HttpApp.Default<never, Gateway | HarnessStore> = router.pipe(
  Effect.catchTags({
    HarnessError: (error) => Effect.succeed(toResponse(error)),
    PersistenceError: () => Effect.succeed(toResponse(HarnessError.ledgerUnavailable())),
    RouteNotFound: () =>
      Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
        toResponse(HarnessError.notFound(`${request.method} ${new URL(request.url, "http://harness").pathname}`)))
  })
)

/**
 * How long an idle client connection is kept. Longer than Node's 5 s, so pools keep their connections
 * through a pause (BENCHMARKS.md, "the burst"); not minutes, because undici-based clients (fetch, the openai
 * SDK) keep an aborted stream's connection until this hint runs out, and only its close tells the harness
 * that the client is gone and the upstream call can stop: at 120 s an abandoned stream ran two minutes.
 */
export const keepAliveMillis = 15_000

/**
 * Serves the harness on `port` (0 picks a free one) of `host`; the HttpServer it provides knows the address.
 * With `log`, every request is written as one line (RequestLog.line) once it is answered.
 * `POST /v1/chat/completions` is answered by PlainChat (falling back to the HotPath), every other route by `app`.
 */
export const layer = (options: {
  readonly port: number
  readonly host: string
  readonly log?: ((line: string) => Effect.Effect<void>) | undefined
}) =>
  Layer.scoped(
    HttpServer.HttpServer,
    Effect.gen(function*() {
      const hot = yield* PlainChat.make({ log: options.log })
      const routed = yield* NodeHttpServer.makeHandler(options.log === undefined ? app : RequestLog.logged(options.log)(app)).pipe(
        // The platform's tracer middleware builds a span per request (URL parsed, headers redacted) even
        // where no tracer listens: nothing here reads them.
        HttpMiddleware.withTracerDisabledWhenEffect(() => true)
      )
      return yield* NodeHttpServer.make(() => {
        const server = createServer((request, response) => void (hot(request, response) || routed(request, response)))
        // Node's default keeps an idle connection 5 s and says so (`Keep-Alive: timeout=5`); client pools that heed
        // it (node's Agent with a timeout, undici) drop theirs after 4 s idle, so a burst after a pause came in on
        // new connections, one handshake at a time, and waited up to a second (BENCHMARKS.md, "the burst").
        // An idle connection costs a file descriptor; requests still have Node's headers timeout.
        server.keepAliveTimeout = keepAliveMillis
        return server
      }, { port: options.port, host: options.host })
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))
