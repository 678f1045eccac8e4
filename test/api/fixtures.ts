import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { AutopilotApi } from "../../src/api/Api.js"
import * as ApiServer from "../../src/api/ApiServer.js"
import * as ApiTokens from "../../src/auth/ApiTokens.js"
import * as LlmLayer from "../../src/llm/LlmLayer.js"

/** The admin token the suites' servers are started with. */
export const adminToken = "admin-token-for-the-api-suites"

/** The tokens a suite signs in with: the admin's, and a token of project p1 and one of p2, minted by ApiTokens. */
export interface Tokens {
  readonly admin: string
  readonly p1: string
  readonly p2: string
}

/** The API on a free port of 127.0.0.1 over `database`, the mock model answering; yields its base URL. */
export const serve = (database: Layer.Layer<SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-api-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(workspaceRoot, { recursive: true, force: true })))
    const model = yield* LlmLayer.layerOf({ provider: "mock" }).pipe(Effect.provide(NodeContext.layer), Effect.orDie)
    const tokensLayer = ApiTokens.layerWith({ adminToken: Option.some(Redacted.make(adminToken)) })
    const server = ApiServer.layer({ host: "127.0.0.1", port: 0 }).pipe(
      Layer.provideMerge(ApiServer.layerServices({ workspaceRoot, model, requested: {} })),
      Layer.provideMerge(tokensLayer),
      Layer.provideMerge(database)
    )
    const context = yield* Layer.build(server).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("the server listens on no TCP port")
    const mint = (project: string) =>
      Effect.map(Context.get(context, ApiTokens.ApiTokens).create({ project }), (made) => made.token).pipe(Effect.orDie)
    const tokens: Tokens = { admin: adminToken, p1: yield* mint("p1"), p2: yield* mint("p2") }
    return { base: `http://127.0.0.1:${address.port}`, tokens, context }
  })


/** What `http` answers. */
export interface Answered {
  readonly status: number
  readonly json: any
  readonly text: string
  readonly headers: globalThis.Headers
}

/** A request as any HTTP client makes it: the status, the JSON body (or text), the headers. */
export const http = (base: string) =>
(
  method: string,
  path: string,
  options: { readonly token?: string; readonly body?: string | object; readonly headers?: Record<string, string> } = {}
): Effect.Effect<Answered> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    const init: RequestInit = { method, headers }
    if (options.body !== undefined) {
      headers["content-type"] ??= "application/json"
      init.body = typeof options.body === "string" ? options.body : JSON.stringify(options.body)
    }
    const response = await fetch(base + path, init)
    const text = await response.text()
    let json: any = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON: the text is there
    }
    return { status: response.status, json, text, headers: response.headers }
  })

/** The derived client, as `token` for `project` (X-Project-ID) when given. */
export const client = (base: string, token: string, project?: string) =>
  HttpApiClient.make(AutopilotApi, {
    baseUrl: base,
    transformClient: HttpClient.mapRequest((request) =>
      project === undefined
        ? HttpClientRequest.bearerToken(request, token)
        : HttpClientRequest.setHeader(HttpClientRequest.bearerToken(request, token), "x-project-id", project))
  }).pipe(Effect.provide(FetchHttpClient.layer))
