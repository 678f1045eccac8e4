import { Duration, Effect } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import OpenAI from "openai"

/**
 * The hot path's HTTP client: one POST to an upstream over a kept-alive node:http connection, the body
 * sent in one write and the answer read as bytes. The openai SDK over `fetch` cost about a millisecond of
 * CPU per call (request building, WHATWG streams, its logging); this is the same round trip for a tenth.
 *
 * It fails as the SDK would, with the SDK's own error classes (a status error built by `APIError.generate`
 * from the body and headers, `APIConnectionError`, `APIConnectionTimeoutError`), so the harness tells the
 * client the same statuses and messages whichever client made the call.
 */
export interface Forwarder {
  /** POSTs `body` (JSON) to `path` under the upstream's base URL; a 2xx answer's body as the SDK reads it. */
  readonly post: (path: string, body: string) => Effect.Effect<unknown, unknown>
  /** Closes the kept-alive connections. */
  readonly close: () => void
}

/** As the SDK reads a 2xx body: JSON when its media type says so (none when it says it is empty), else text. */
const readBody = (headers: Http.IncomingHttpHeaders, text: string): unknown => {
  const mediaType = headers["content-type"]?.split(";")[0]?.trim()
  if (mediaType?.includes("application/json") || mediaType?.endsWith("+json")) {
    return headers["content-length"] === "0" ? undefined : JSON.parse(text)
  }
  return text
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const webHeaders = (headers: Http.IncomingHttpHeaders) => {
  const result = new Headers()
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) result.append(name, v)
    else if (value !== undefined) result.set(name, value)
  }
  return result
}

export const make = (options: {
  /** Where `/chat/completions` lives, e.g. https://api.openai.com/v1. */
  readonly baseUrl: string
  readonly apiKey: string
  /** The whole call, as the SDK's `timeout` is. */
  readonly timeout: Duration.Duration
}): Forwarder => {
  const base = new URL(options.baseUrl)
  const secure = base.protocol === "https:"
  const agent = secure
    ? new Https.Agent({ keepAlive: true, keepAliveMsecs: 30_000 })
    : new Http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 })
  const request = secure ? Https.request : Http.request
  const prefix = base.pathname.replace(/\/+$/, "")
  const timeoutMs = Duration.toMillis(options.timeout)
  const authorization = `Bearer ${options.apiKey}`

  const post = (path: string, body: string) =>
    Effect.async<unknown, unknown>((resume) => {
      const payload = Buffer.from(body, "utf8")
      let settled = false
      const settle = (effect: Effect.Effect<unknown, unknown>) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resume(effect)
      }
      const req = request({
        agent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: "POST",
        path: `${prefix}${path}${base.search}`,
        headers: {
          "content-type": "application/json",
          "content-length": payload.length,
          accept: "application/json",
          authorization
        }
      }, (res) => {
        const parts: Array<Buffer> = []
        res.on("data", (part: Buffer) => parts.push(part))
        res.on("error", (error) => settle(Effect.fail(error)))
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8")
          const status = res.statusCode ?? 0
          if (status < 200 || status > 299) {
            const json = safeJson(text)
            return settle(Effect.fail(OpenAI.APIError.generate(status, json as object | undefined, json === undefined ? text : undefined, webHeaders(res.headers))))
          }
          try {
            settle(Effect.succeed(readBody(res.headers, text)))
          } catch (error) {
            settle(Effect.fail(error))
          }
        })
      })
      const timer = setTimeout(() => {
        settle(Effect.fail(new OpenAI.APIConnectionTimeoutError()))
        req.destroy()
      }, timeoutMs)
      req.on("error", (error) => settle(Effect.fail(new OpenAI.APIConnectionError({ cause: error }))))
      req.end(payload)
      // Interrupted (the client went away): the upstream's connection goes too, as the SDK's abort did.
      return Effect.sync(() => {
        settled = true
        clearTimeout(timer)
        req.destroy()
      })
    })

  return { post, close: () => agent.destroy() }
}
