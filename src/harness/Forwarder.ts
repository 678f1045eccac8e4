import { Duration, Effect, Either } from "effect"
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
  /** `post` in node callbacks (the plain-completion fast path): `done` is called once; the function returned cancels. */
  readonly postNow: (path: string, body: string, done: (outcome: Either.Either<unknown, unknown>) => void) => () => void
  /**
   * POSTs `body` for an event stream: resolves at a 2xx answer's headers with its body, read as it arrives
   * (a status error fails as `post` does). The timeout covers the wait for the headers only.
   */
  readonly stream: (path: string, body: string) => Effect.Effect<Body, unknown>
  /** Closes the kept-alive connections. */
  readonly close: () => void
}

/** A streamed answer's body, pulled a read at a time (the connection paused meanwhile). */
export interface Body {
  /** The next bytes the upstream sent; undefined once the body has ended. */
  readonly read: Effect.Effect<Buffer | undefined, unknown>
  /** Drops the connection unless the body was read to its end (then it went back to the pool). */
  readonly close: () => void
  /** Drops the connection; the read waiting, and every one after, fails with `error`. */
  readonly abort: (error: unknown) => void
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

  /**
   * One POST, resolving with the answer's response once `accept` says what to make of it: `post` waits for a
   * 2xx body's end, `stream` takes it at its headers. A status error's body is always read to its end first.
   */
  const send = <A>(
    path: string,
    body: string,
    accept: string,
    answered: (res: Http.IncomingMessage, settle: (outcome: Either.Either<A, unknown>) => void) => void,
    done: (outcome: Either.Either<A, unknown>) => void
  ) => {
      const payload = Buffer.from(body, "utf8")
      let settled = false
      const settle = (outcome: Either.Either<A, unknown>) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        done(outcome)
      }
      const req = request({
        agent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: "POST",
        path: `${prefix}${path}${base.search}`,
        headers: { "content-type": "application/json", "content-length": payload.length, accept, authorization }
      }, (res) => {
        const status = res.statusCode ?? 0
        if (status >= 200 && status <= 299) return answered(res, settle)
        const parts: Array<Buffer> = []
        res.on("data", (part: Buffer) => parts.push(part))
        res.on("error", (error) => settle(Either.left(error)))
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8")
          const json = safeJson(text)
          settle(Either.left(OpenAI.APIError.generate(status, json as object | undefined, json === undefined ? text : undefined, webHeaders(res.headers))))
        })
      })
      const timer = setTimeout(() => {
        settle(Either.left(new OpenAI.APIConnectionTimeoutError()))
        req.destroy()
      }, timeoutMs)
      req.on("error", (error) => settle(Either.left(new OpenAI.APIConnectionError({ cause: error }))))
      req.end(payload)
      // Cancelled (the client went away): the upstream's connection goes too, as the SDK's abort did.
      return () => {
        settled = true
        clearTimeout(timer)
        req.destroy()
      }
    }

  /** A callback-style call as an Effect; interrupting it cancels the call. */
  const asEffect = <A>(start: (done: (outcome: Either.Either<A, unknown>) => void) => () => void) =>
    Effect.async<A, unknown>((resume) => Effect.sync(start(resume)))

  const postNow = (path: string, body: string, done: (outcome: Either.Either<unknown, unknown>) => void) =>
    send<unknown>(path, body, "application/json", (res, settle) => {
      const parts: Array<Buffer> = []
      res.on("data", (part: Buffer) => parts.push(part))
      res.on("error", (error) => settle(Either.left(error)))
      res.on("end", () => {
        try {
          settle(Either.right(readBody(res.headers, Buffer.concat(parts).toString("utf8"))))
        } catch (error) {
          settle(Either.left(error))
        }
      })
    }, done)

  const post = (path: string, body: string) => asEffect<unknown>((done) => postNow(path, body, done))

  const stream = (path: string, body: string) =>
    asEffect<Body>((done) => send<Body>(path, body, "text/event-stream", (res, settle) => settle(Either.right(bodyOf(res))), done))

  return { post, postNow, stream, close: () => agent.destroy() }
}

/**
 * A response body read on demand: flowing only while a read waits, paused as soon as it has its bytes, so
 * an upstream faster than the client is held back by TCP rather than buffered here.
 */
const bodyOf = (res: Http.IncomingMessage): Body => {
  res.pause()
  const queued: Array<Buffer> = []
  let ended = false
  let failure: unknown = undefined
  let waiting: ((effect: Effect.Effect<Buffer | undefined, unknown>) => void) | undefined
  const wake = (effect: Effect.Effect<Buffer | undefined, unknown>) => {
    const resume = waiting
    waiting = undefined
    resume?.(effect)
  }
  res.on("data", (part: Buffer) => {
    res.pause()
    if (waiting === undefined) queued.push(part)
    else wake(Effect.succeed(part))
  })
  res.on("end", () => {
    ended = true
    wake(Effect.succeed(undefined))
  })
  const failed = (error: unknown) => {
    failure ??= error
    wake(Effect.fail(failure))
  }
  res.on("error", (error) => failed(new OpenAI.APIConnectionError({ cause: error })))
  // A connection cut before the body's end: an error, as fetch reports it.
  res.on("close", () => {
    if (!ended) failed(new OpenAI.APIConnectionError({ message: "the upstream closed the stream before its end" }))
  })
  const read = Effect.async<Buffer | undefined, unknown>((resume) => {
    const part = queued.shift()
    if (part !== undefined) return resume(Effect.succeed(part))
    if (failure !== undefined) return resume(Effect.fail(failure))
    if (ended) return resume(Effect.succeed(undefined))
    waiting = resume
    res.resume()
    return Effect.sync(() => {
      waiting = undefined
    })
  })
  return {
    read,
    abort: (error) => {
      failed(error)
      if (!ended) res.destroy()
    },
    close: () => {
      if (ended) return
      // All in but not read: drained, its connection goes back to the pool; else the connection goes.
      if (res.complete) res.resume()
      else res.destroy()
    }
  }
}
