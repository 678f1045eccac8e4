import type { HttpServerResponse } from "@effect/platform"
import { clientAbortFiberId } from "@effect/platform/HttpServerError"
import { Cause, Effect, Either, Runtime, Stream } from "effect"
import type * as Http from "node:http"
import * as ModelRoute from "../finetune/ModelRoute.js"
import { Gateway } from "./Gateway.js"
import { HarnessError, toResponse } from "./HarnessError.js"
import * as JsonBody from "./JsonBody.js"
import * as RequestLog from "./RequestLog.js"

/** The one route every client request takes; the rest (models, admin) go through the router. */
const chatPath = "/v1/chat/completions"

/** Whether a request is for the chat route (any query string aside). */
export const isChat = (request: Http.IncomingMessage) => {
  if (request.method !== "POST") return false
  const url = request.url ?? ""
  const query = url.indexOf("?")
  return (query === -1 ? url : url.slice(0, query)) === chatPath
}

/**
 * The body's text, refusing what is over the size limit: before reading it if its content-length says so.
 * In node callbacks: `done` is called once.
 */
export const readBodyNow = (request: Http.IncomingMessage, limit: number, done: (body: Either.Either<string, HarnessError>) => void) => {
  if (Number(request.headers["content-length"] ?? 0) > limit) return done(Either.left(HarnessError.tooLarge(limit)))
  let settled = false
  const settle = (body: Either.Either<string, HarnessError>) => {
    if (settled) return
    settled = true
    done(body)
  }
  // A body without a content-length (chunked) is counted as it comes, and read to its end keeping no more
  // than the limit: destroying the request would reset the connection instead of answering 413.
  const parts: Array<Buffer> = []
  let bytes = 0
  request.on("data", (part: Buffer) => {
    bytes += part.length
    if (bytes <= limit) parts.push(part)
  })
  request.once("end", () =>
    settle(bytes > limit ? Either.left(HarnessError.tooLarge(limit)) : Either.right(Buffer.concat(parts).toString("utf8"))))
  request.once("error", () => settle(Either.left(HarnessError.invalid("the request body could not be read"))))
}

const readBody = (request: Http.IncomingMessage, limit: number) =>
  Effect.async<string, HarnessError>((resume) => readBodyNow(request, limit, resume))

/**
 * Writes a response whose body is in memory as @effect/platform's Node server does, at once; false (nothing
 * written) for a streamed body.
 */
export const sendNow = (response: HttpServerResponse.HttpServerResponse, out: Http.ServerResponse): boolean => {
  const body = response.body
  if (body._tag !== "Uint8Array" && body._tag !== "Empty") return false
  out.writeHead(response.status, response.headers)
  if (body._tag === "Uint8Array") out.end(body.body)
  else out.end()
  return true
}

/** Writes a response as @effect/platform's Node server does, for the bodies the gateway makes. */
const send = (response: HttpServerResponse.HttpServerResponse, out: Http.ServerResponse): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (sendNow(response, out)) return Effect.void
    const body = response.body
    if (body._tag !== "Stream") return Effect.dieMessage(`the gateway made a ${body._tag} body, which the chat route does not send`)
    out.writeHead(response.status, response.headers)
    // What one upstream read brought comes as one Chunk: written in one go, then wait for the client if need be.
    return body.stream.pipe(
      Stream.runForEachChunk((chunk) => {
        let ready = true
        for (const bytes of chunk) ready = out.write(bytes)
        return ready ? Effect.void : Effect.async<void>((resume) => void out.once("drain", () => resume(Effect.void)))
      }),
      Effect.orDie,
      Effect.ensuring(Effect.sync(() => void out.end()))
    )
  })

/** The request's `x-autopilot-route` (PromotedRoutes); node gives a repeated header as one, comma-joined. */
export const routeHeaderOf = (request: Http.IncomingMessage): string | undefined => {
  const header = request.headers[ModelRoute.routeHeader]
  return typeof header === "string" ? header : undefined
}

export interface HotPath {
  /** The node:http listener for `POST /v1/chat/completions`; it answers false, touching nothing, for any other route. */
  readonly listener: (request: Http.IncomingMessage, out: Http.ServerResponse) => boolean
  /**
   * Answers a chat request with the response `handle` makes (a HarnessError as its JSON answer), logged as
   * `begun` says when another path (PlainChat.ts) began it; a client that goes away interrupts it.
   */
  readonly run: (
    request: Http.IncomingMessage,
    out: Http.ServerResponse,
    handle: Effect.Effect<HttpServerResponse.HttpServerResponse, HarnessError>,
    begun?: RequestLog.Begun
  ) => void
}

/**
 * `POST /v1/chat/completions` straight off node:http: the key check, the body read and parsed, then
 * `Gateway.chat`, in one fiber per request. Through the platform's router and request wrappers it cost
 * about half a millisecond of CPU per request before the harness did anything; what it does is the same
 * (statuses, errors, the request log's line, a client that goes away interrupting the request).
 * PlainChat.ts answers the common plain completion before it, without a fiber, and falls back to it.
 */
export const make = (options: { readonly log?: ((line: string) => Effect.Effect<void>) | undefined }) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const limit = gateway.config.max_request_bytes

    const answer = (request: Http.IncomingMessage) =>
      Effect.gen(function*() {
        const key = yield* gateway.authenticate(request.headers["authorization"])
        yield* RequestLog.note({ key_id: key.id })
        const body = yield* Effect.flatMap(readBody(request, limit), JsonBody.parse)
        return yield* gateway.chat(key, body, routeHeaderOf(request))
      })

    const run: HotPath["run"] = (request, out, handle, begun) => {
      const answered = handle.pipe(Effect.catchTag("HarnessError", (error) => Effect.succeed(toResponse(error))))
      const handled = options.log === undefined ? answered : RequestLog.answering(options.log, "POST", request.url ?? "", begun)(answered)
      const fiber = runFork(
        Effect.flatMap(handled, (response) => send(response, out)).pipe(
          // A defect: a bare 500, as the platform answers one.
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.void : Effect.sync(() => {
              if (!out.headersSent) out.writeHead(500)
              out.end()
            })
          )
        )
      )
      out.on("close", () => {
        if (!out.writableEnded) fiber.unsafeInterruptAsFork(clientAbortFiberId)
      })
    }

    const listener: HotPath["listener"] = (request, out) => {
      if (!isChat(request)) return false
      run(request, out, answer(request))
      return true
    }

    return { listener, run } satisfies HotPath
  })
