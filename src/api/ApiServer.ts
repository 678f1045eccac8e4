import {
  FetchHttpClient,
  HttpApi,
  HttpApiBuilder,
  HttpApiSwagger,
  HttpIncomingMessage,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Cause, Deferred, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import * as ApiSessions from "../auth/ApiSessions.js"
import type * as LlmChoice from "../domain/LlmChoice.js"
import type * as Llm from "../llm/Llm.js"
import * as MissionRunner from "../missions/MissionRunner.js"
import * as Settings from "../missions/Settings.js"
import * as GoalQueue from "../queue/GoalQueue.js"
import * as BlueprintService from "../routing/BlueprintService.js"
import * as Catalog from "../routing/Catalog.js"
import * as Confidence from "../routing/Confidence.js"
import * as Goals from "../routing/Goals.js"
import * as GoalRouter from "../routing/GoalRouter.js"
import * as Slots from "../routing/Slots.js"
import * as Synthesis from "../routing/Synthesis.js"
import * as RunArtifacts from "../runtime/RunArtifacts.js"
import * as Specialists from "../specialists/Specialists.js"
import * as BlueprintCacheStore from "../store/BlueprintCacheStore.js"
import * as CuratorStore from "../store/CuratorStore.js"
import * as FineTuneStore from "../store/FineTuneStore.js"
import * as FiringStore from "../store/FiringStore.js"
import * as PromotionStore from "../store/PromotionStore.js"
import * as QueueStore from "../store/QueueStore.js"
import * as Storage from "../store/Storage.js"
import { AutopilotApi } from "./Api.js"
import * as ApiError from "./ApiError.js"
import * as ApiHandlers from "./ApiHandlers.js"
import * as Authorization from "./Authorization.js"
import * as DeltaFeed from "./DeltaFeed.js"
import * as EventHub from "./EventHub.js"
import * as EventStream from "./EventStream.js"
import * as OperatorPage from "./OperatorPage.js"

const openApiPath = "/api/v1/openapi.json"
const docsPath = "/api/v1/docs"

/** The largest request body taken: goals and approvals are small; a queue entry's criteria are text. */
export const maxBodyBytes = 256 * 1024

/**
 * Every route's method and path as a pattern, to tell a wrong method (405) from an unknown path (404): the
 * API's, the operator page's and the OpenAPI document's.
 */
const routes: ReadonlyArray<{ readonly method: string; readonly pattern: RegExp }> = (() => {
  const exact = (path: string) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`)
  const out: Array<{ method: string; pattern: RegExp }> = []
  HttpApi.reflect(AutopilotApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) =>
      out.push({ method: endpoint.method, pattern: new RegExp(`^${endpoint.path.replace(/:[^/]+/g, "[^/]+")}$`) })
  })
  for (const path of [...OperatorPage.assets.map((asset) => asset.path), openApiPath, docsPath]) out.push({ method: "GET", pattern: exact(path) })
  return out
})()

/** A 405 names what the path takes, in `Allow` too (RFC 9110). */
const unknownRoute = (request: HttpServerRequest.HttpServerRequest) => {
  const path = new URL(request.url, "http://autopilot").pathname
  const allowed = [...new Set(routes.filter((route) => route.pattern.test(path)).map((route) => route.method))]
  if (allowed.length === 0) return Effect.fail(new ApiError.NotFound({ message: `no route ${request.method} ${path}` }))
  // The route takes this method, yet the router found none: it refuses a path parameter over 100 characters.
  if (allowed.includes(request.method)) return Effect.fail(new ApiError.BadRequest({ message: `${path}: an id in a path is at most 100 characters` }))
  const error = new ApiError.MethodNotAllowed({ message: `${path} takes ${allowed.join(", ")}, not ${request.method}` })
  return HttpServerResponse.json(ApiError.bodyOf(error), { status: ApiError.statusOf(error), headers: { allow: allowed.join(", ") } }).pipe(Effect.orDie)
}

/**
 * A body sent without its length (chunked), read here up to the limit. The platform's reader destroys the
 * connection when a body goes over its limit, so the client would see a reset, not the 413; here reading
 * just stops, and the 413 closes the connection once sent. The body read is handed on as a request of its own.
 */
const chunkedBody = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.async<HttpServerRequest.HttpServerRequest, ApiError.PayloadTooLarge | ApiError.BadRequest>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let bytes = 0
    const done = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes <= maxBodyBytes) return void chunks.push(chunk)
      done()
      source.pause()
      resume(Effect.fail(tooLarge))
    }
    const onEnd = () => {
      done()
      const body = Buffer.concat(chunks)
      const headers = Object.entries(request.headers).filter(([name]) => name !== "transfer-encoding")
      // On a node event, outside any fiber: a throw here would end the process, so none may escape.
      let web: Request
      try {
        web = new Request(new URL(request.url, "http://autopilot"), { method: request.method, headers, body })
      } catch {
        return resume(Effect.fail(new ApiError.BadRequest({ message: `a ${request.method} request takes no body` })))
      }
      const read = HttpServerRequest.fromWeb(web)
      resume(Effect.succeed(Option.match(request.remoteAddress, { onNone: () => read, onSome: (remoteAddress) => read.modify({ remoteAddress }) })))
    }
    const onError = () => {
      done()
      resume(Effect.fail(new ApiError.BadRequest({ message: "the request body could not be read" })))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(done)
  })

const tooLarge = new ApiError.PayloadTooLarge({ message: `the request body is over the limit of ${maxBodyBytes} bytes` })

/** One line from a schema's complaint: where, and what was expected. */
const decodeMessage = (issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>) => {
  const first = issues[0]
  if (first === undefined) return "the request does not match the route's schema"
  const where = first.path.length === 0 ? "the request" : first.path.map(String).join(".")
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""
  return `${where}: ${first.message.replace(/\s+/g, " ")}${more}`
}

/**
 * Around every route: the body's size checked before it is read, and every failure the platform raises on
 * its own (a body that is not JSON, a schema's complaint, an unknown route or method) turned into the API's
 * one error shape. A defect is a 500 that says only that, never a stack trace.
 */
const guard = HttpApiBuilder.middleware(AutopilotApi, (app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) return yield* tooLarge
    // Every body the API takes is JSON. Refusing any other type before it is read also refuses what a page
    // on another site can send without asking (a form, text): no cross-site sign-in, no multipart parsed.
    const contentType = request.headers["content-type"]
    const chunked = request.headers["content-length"] === undefined && request.headers["transfer-encoding"] !== undefined
    const hasBody = chunked || Number(request.headers["content-length"] ?? 0) > 0
    if (contentType !== undefined ? !/^application\/json\s*(;|$)/i.test(contentType.trim()) : hasBody) {
      const given = contentType === undefined ? "a body without a Content-Type" : contentType.split(";")[0]!.trim()
      return yield* new ApiError.BadRequest({ message: `the request body must be application/json, not ${given}` })
    }
    if (chunked && (request.method === "GET" || request.method === "HEAD")) {
      return yield* new ApiError.BadRequest({ message: `a ${request.method} request takes no body` })
    }
    if (chunked) {
      const read = yield* chunkedBody(request).pipe(
        Effect.tapErrorTag("PayloadTooLarge", () => Effect.sync(() => NodeHttpServerRequest.toServerResponse(request).shouldKeepAlive = false))
      )
      return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, read)
    }
    return yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(maxBodyBytes))
  }).pipe(
    Effect.catchIf(
      (e: unknown): e is { _tag: string } => typeof e === "object" && e !== null && "_tag" in e,
      (error): Effect.Effect<HttpServerResponse.HttpServerResponse, ApiError.ApiError> => {
        const e = error as { readonly _tag: string; readonly issues?: ReadonlyArray<never>; readonly request?: HttpServerRequest.HttpServerRequest }
        if (e._tag === "HttpApiDecodeError") return Effect.fail(new ApiError.BadRequest({ message: decodeMessage(e.issues ?? []) }))
        if (e._tag === "RouteNotFound" && e.request !== undefined) return unknownRoute(e.request)
        return Effect.fail(error as ApiError.ApiError)
      }
    ),
    Effect.catchAllDefect((defect) => {
      const tag = (defect as { readonly _tag?: string })?._tag
      if (tag === "RequestError") return Effect.fail(new ApiError.BadRequest({ message: "the request body is not valid JSON (send {} for none)" }))
      return Effect.zipRight(
        Effect.logError("autopilot serve: an unexpected failure", Cause.die(defect)),
        HttpServerResponse.json({ error: { code: "internal", message: "an unexpected failure; the server's log has it" } }, { status: 500 })
      ).pipe(Effect.orDie)
    })
  ))

/** On every response, the page's and the API's alike: no MIME sniffing, no referrer sent on, no framing. */
const headers = HttpApiBuilder.middleware((app) =>
  Effect.map(app, (response) =>
    HttpServerResponse.setHeaders(response, {
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY"
    })))

/** The API, its OpenAPI document and its offline reference page, over the services it calls. */
export const layerApi = HttpApiBuilder.api(AutopilotApi).pipe(
  Layer.provide(ApiHandlers.layer),
  Layer.provide(Authorization.layer),
  Layer.provide(ApiSessions.layer)
)

export const layerRoutes = Layer.mergeAll(
  guard,
  headers,
  HttpApiBuilder.middlewareOpenApi({ path: openApiPath }),
  HttpApiSwagger.layer({ path: docsPath }),
  OperatorPage.layer
)

/**
 * When the server closes, its open event streams end first (ServerShutdown): built after the HTTP server,
 * this is released before it, so the server is not left waiting on streams that would never end.
 */
const endStreamsOnClose = Layer.scopedDiscard(
  Effect.flatMap(EventStream.ServerShutdown, (shutdown) => Effect.addFinalizer(() => Deferred.succeed(shutdown, undefined)))
)

/**
 * The node server, which answers a request that arrives once the API's handler is gone (the server is
 * closing: a kept-alive connection can still bring one) with a 503 and closes its connection: unanswered, it
 * would hold the close, and the exit, up until the request timed out.
 */
const createClosingServer = () => {
  const server = createServer()
  server.on("request", (_request, response) => {
    if (server.listenerCount("request") > 1) return
    const error = new ApiError.Unavailable({ message: "the server is shutting down; try again shortly" })
    response.writeHead(ApiError.statusOf(error), { "content-type": "application/json", connection: "close" })
    response.end(JSON.stringify(ApiError.bodyOf(error)))
  })
  return server
}

/**
 * Served on `port` (0 picks a free one) of `host`; the HttpServer it provides knows the address, and
 * ServerShutdown ends every event stream when completed: its one owner is this layer, which completes it as it is
 * released, before the HTTP server closes (`autopilot serve` releases it on SIGTERM). The sign-in cookie is
 * Secure with `secureCookie`, or when a proxy of `trustedProxies` says the request came over HTTPS.
 */
export const layer = (options: {
  readonly host: string
  readonly port: number
  readonly secureCookie?: boolean | undefined
  readonly trustedProxies?: ReadonlyArray<string> | undefined
}) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(layerRoutes),
    Layer.provide(layerApi),
    Layer.provide(Layer.succeed(Authorization.CookiePolicy, { secure: options.secureCookie ?? false, trustedProxies: options.trustedProxies ?? [] })),
    Layer.provideMerge(endStreamsOnClose),
    Layer.provideMerge(NodeHttpServer.layer(createClosingServer, { port: options.port, host: options.host })),
    Layer.provideMerge(EventStream.layerShutdown)
  )


/**
 * Every service the handlers call, over the database given, with the model goals and synthesis use.
 * `workspaceRoot` is where the runs' default workspaces are, as for the CLI.
 */
export const layerServices = <E, R>(options: {
  readonly workspaceRoot: string
  /** The model Layer (LlmLayer.layerOf) for slot filling and synthesis. */
  readonly model: Layer.Layer<Llm.Llm, E, R>
  /** What runs queued through the API run on: `serve`'s model flags. */
  readonly requested: LlmChoice.LlmRequested
}) => {
  const catalog = Layer.mergeAll(Catalog.layer, Specialists.layer)
  const remote = BlueprintService.layerConfig.pipe(Layer.provide(Layer.mergeAll(FetchHttpClient.layer, BlueprintCacheStore.layer)))
  const router = GoalRouter.layer.pipe(Layer.provide(remote))
  const runner = MissionRunner.layerWith({ workspaceRoot: options.workspaceRoot })
  const goals = Goals.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Settings.layer, Confidence.layerConfig, router, remote, Slots.layer, Synthesis.layer))
  )
  return Layer.mergeAll(
    goals,
    EventHub.layer,
    DeltaFeed.layer,
    RunArtifacts.layer,
    FiringStore.layer,
    FineTuneStore.layer,
    PromotionStore.layer,
    CuratorStore.layer,
    GoalQueue.layer.pipe(Layer.provide(QueueStore.layer)),
    Layer.succeed(ApiHandlers.ServeModel, options.requested)
  ).pipe(
    Layer.provideMerge(runner),
    Layer.provideMerge(Layer.mergeAll(options.model, catalog, Storage.layer)),
    Layer.provideMerge(NodeContext.layer)
  )
}
