import type { HttpServerResponse } from "@effect/platform"
import { clientAbortFiberId } from "@effect/platform/HttpServerError"
import { Cause, Effect, Runtime, Stream } from "effect"
import type * as Http from "node:http"
import { Gateway } from "./Gateway.js"
import { HarnessError, toResponse } from "./HarnessError.js"
import * as JsonBody from "./JsonBody.js"
import * as RequestLog from "./RequestLog.js"

/** The one route every client request takes; the rest (models, admin) go through the router. */
const chatPath = "/v1/chat/completions"

/** The body's text, refusing what is over the size limit: before reading it if its content-length says so. */
const readBody = (request: Http.IncomingMessage, limit: number) =>
  Effect.async<string, HarnessError>((resume) => {
    if (Number(request.headers["content-length"] ?? 0) > limit) return resume(Effect.fail(HarnessError.tooLarge(limit)))
    // A body without a content-length (chunked) is counted as it comes, and read to its end keeping no more
    // than the limit: destroying the request would reset the connection instead of answering 413.
    const parts: Array<Buffer> = []
    let bytes = 0
    request.on("data", (part: Buffer) => {
      bytes += part.length
      if (bytes <= limit) parts.push(part)
    })
    request.once("end", () =>
      resume(bytes > limit ? Effect.fail(HarnessError.tooLarge(limit)) : Effect.succeed(Buffer.concat(parts).toString("utf8"))))
    request.once("error", () => resume(Effect.fail(HarnessError.invalid("the request body could not be read"))))
  })

/** Writes a response as @effect/platform's Node server does, for the bodies the gateway makes. */
const send = (response: HttpServerResponse.HttpServerResponse, out: Http.ServerResponse): Effect.Effect<void> =>
  Effect.suspend(() => {
    const body = response.body
    out.writeHead(response.status, response.headers)
    switch (body._tag) {
      case "Uint8Array":
        return Effect.sync(() => void out.end(body.body))
      case "Empty":
        return Effect.sync(() => void out.end())
      case "Stream":
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
      default:
        return Effect.dieMessage(`the gateway made a ${body._tag} body, which the chat route does not send`)
    }
  })

/**
 * `POST /v1/chat/completions` straight off node:http: the key check, the body read and parsed, then
 * `Gateway.chat`, in one fiber per request. Through the platform's router and request wrappers it cost
 * about half a millisecond of CPU per request before the harness did anything; what it does is the same
 * (statuses, errors, the request log's line, a client that goes away interrupting the request).
 *
 * Returns the node:http listener for that route; it answers false, touching nothing, for any other.
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
        return yield* gateway.chat(key, body)
      }).pipe(Effect.catchTag("HarnessError", (error) => Effect.succeed(toResponse(error))))

    return (request: Http.IncomingMessage, out: Http.ServerResponse): boolean => {
      if (request.method !== "POST") return false
      const url = request.url ?? ""
      const query = url.indexOf("?")
      if ((query === -1 ? url : url.slice(0, query)) !== chatPath) return false
      const handled = options.log === undefined ? answer(request) : RequestLog.answering(options.log, "POST", url)(answer(request))
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
      return true
    }
  })
