import { Chunk, Clock, Effect, type Scope, TestClock } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** A request as the fake blueprint service received it. */
export interface Received {
  readonly path: string
  readonly authorization: string | undefined
  readonly body: unknown
}

/** How the fake answers one request: JSON with a status, a hang, or a dropped connection. */
export type Reply =
  | { readonly status?: number; readonly json: unknown }
  | { readonly status?: number; readonly text: string }
  | "hang"
  | "reset"

export interface FakeService {
  /** http://127.0.0.1:PORT */
  readonly url: string
  readonly received: () => ReadonlyArray<Received>
  /** What the next requests get; `reply` sees the path and the decoded body. */
  readonly answer: (reply: (request: Received) => Reply) => void
}

/** A blueprint service on 127.0.0.1 for one test, closed with the test's scope; it counts what it gets. */
export const fakeService = (initial: (request: Received) => Reply): Effect.Effect<FakeService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const received: Array<Received> = []
    let reply = initial
    const hanging = new Set<Http.ServerResponse>()
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          // kept as text
        }
        const request = { path: req.url ?? "", authorization: req.headers.authorization, body }
        received.push(request)
        const answer = reply(request)
        if (answer === "hang") return void hanging.add(res)
        if (answer === "reset") return void req.socket.destroy()
        const payload = "json" in answer ? JSON.stringify(answer.json) : answer.text
        res.writeHead(answer.status ?? 200, { "content-type": "application/json" })
        res.end(payload)
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const res of hanging) res.destroy()
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return {
      url: `http://127.0.0.1:${port}`,
      received: () => [...received],
      answer: (next) => {
        reply = next
      }
    }
  })

/** One turn of the event loop, so that real sockets make progress; no timer is slept on. */
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Real time a wait below may take before the test fails instead of hanging: a bound, not an expectation. */
const patience = 30_000

/** Lets the event loop run until `condition` holds. */
export const until = (condition: () => boolean, what = "the condition") =>
  Effect.gen(function*() {
    const start = Date.now()
    while (!condition()) {
      if (Date.now() - start > patience) return yield* Effect.dieMessage(`gave up waiting for ${what}`)
      yield* turn
    }
  })

/**
 * Waits until some fiber sleeps on the TestClock until `millis` from now (a retry's backoff, a timeout),
 * then moves the clock that far.
 */
export const adjustWhenWaiting = (millis: number) =>
  Effect.gen(function*() {
    const target = (yield* Clock.currentTimeMillis) + millis
    const start = Date.now()
    while (!Chunk.some(yield* TestClock.sleeps(), (at) => at === target)) {
      if (Date.now() - start > patience) return yield* Effect.dieMessage(`gave up waiting for a sleep of ${millis} ms`)
      yield* turn
    }
    yield* TestClock.adjust(millis)
  })
