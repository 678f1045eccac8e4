import { DateTime, Effect, Either, Runtime } from "effect"
import type * as Http from "node:http"
import { validate } from "./ChatRequest.js"
import { Gateway } from "./Gateway.js"
import { type HarnessError, toResponse } from "./HarnessError.js"
import * as HotPath from "./HotPath.js"
import * as JsonBody from "./JsonBody.js"
import * as RequestLog from "./RequestLog.js"

/**
 * The plain-completion fast path: `POST /v1/chat/completions` in its common case (the key remembered by the
 * KeyCache, a valid body, not streamed, no budgets configured, the ledger writable, a request the policy lets
 * through) answered in node:http callbacks, from the request to its ledger row queued, without a fiber.
 *
 * Why: at one client the Effect path (HotPath) spent about 0.45 ms of wall time per request around the
 * upstream's round trip, most of it starting and resuming a fiber at each step (the key check, the body,
 * the upstream's answer) rather than the harness's own work (BENCHMARKS.md, "Session 3").
 *
 * Same semantics, the same code: the key check and rate limit, the admission (classification, policy,
 * routing), the upstream call, the pricing, the row and the response are Gateway's, Upstreams' and
 * LedgerWriter's own steps (Gateway's `unsafe` face), and everything else is handed to the Effect path at
 * the point reached: a key not remembered (the store must be asked), anything `unsafe.admit` declines (the
 * 400 of an invalid body, a stream, budgets, a refusal with its row), an upstream's failure or a 200 that is
 * no completion (recorded by `recordAnswer`), a client gone before the answer (the 499 row).
 */
export const make = (options: { readonly log?: ((line: string) => Effect.Effect<void>) | undefined }) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const hot = yield* HotPath.make(options)
    const clock = yield* Effect.clock
    // A log line is written before the answer, as the Effect path writes it; the CLI's and the tests' are synchronous.
    const runSync = Runtime.runSyncExit(yield* Effect.runtime<never>())
    const limit = gateway.config.max_request_bytes
    const { log } = options
    const { unsafe } = gateway

    const listener = (request: Http.IncomingMessage, out: Http.ServerResponse): boolean => {
      if (!HotPath.isChat(request)) return false
      const startedAt = clock.unsafeCurrentTimeMillis()
      const authenticated = unsafe.authenticate(request.headers["authorization"], startedAt)
      if (authenticated === undefined) return hot.listener(request, out)

      const url = request.url ?? ""
      const facts: RequestLog.Facts | undefined = log === undefined ? undefined : {}
      const begun = facts === undefined ? undefined : { facts, startedAt }
      const note = (status: number) => {
        if (log === undefined) return
        const at = DateTime.unsafeMake(clock.unsafeCurrentTimeMillis())
        runSync(log(RequestLog.answeredLine("POST", url, status, startedAt, at, facts!)))
      }
      // Reading the body, waiting for the upstream, or done: answered here or handed to the Effect path.
      let stage: "reading" | "forwarding" | "done" = "reading"
      let cancel = () => {}
      let abandon = () => {}
      const reply = (response: Parameters<typeof HotPath.sendNow>[0]) => {
        stage = "done"
        note(response.status)
        HotPath.sendNow(response, out)
      }
      const handOver = (handle: Effect.Effect<Parameters<typeof HotPath.sendNow>[0], HarnessError>) => {
        stage = "done"
        hot.run(request, out, handle, begun)
      }
      // A defect: a bare 500, as the Effect path answers one.
      const guarded = <A extends ReadonlyArray<unknown>>(f: (...args: A) => void) => (...args: A) => {
        try {
          f(...args)
        } catch {
          stage = "done"
          if (!out.headersSent) out.writeHead(500)
          out.end()
        }
      }

      out.on("close", () => {
        if (out.writableEnded) return
        if (stage === "reading") {
          stage = "done"
          note(499)
        } else if (stage === "forwarding") {
          stage = "done"
          cancel()
          abandon()
        }
      })

      guarded(() => {
        if (Either.isLeft(authenticated)) return reply(toResponse(authenticated.left))
        const key = authenticated.right
        if (facts !== undefined) facts.key_id = key.id
        HotPath.readBodyNow(
          request,
          limit,
          guarded((text) => {
            if (stage !== "reading") return
            const body = Either.flatMap(text, JsonBody.parse)
            if (Either.isLeft(body)) return reply(toResponse(body.left))
            const valid = validate(body.right)
            const route = HotPath.routeHeaderOf(request)
            const admission = Either.isRight(valid) ? unsafe.admit(key, valid.right, startedAt, facts, route) : undefined
            if (admission === undefined) return handOver(gateway.chat(key, body.right, route))
            stage = "forwarding"
            // The upstream was asked all the same: the row says 499 and how much was estimated, as when the Effect path is interrupted.
            abandon = () => hot.run(request, out, admission.recordAnswer(Effect.interrupt), begun)
            cancel = unsafe.complete(
              admission,
              body.right,
              guarded((outcome) => {
                if (stage !== "forwarding") return
                if (Either.isRight(outcome) && Either.isRight(outcome.right)) return reply(admission.answerNow(outcome.right.right))
                handOver(admission.recordAnswer(Either.isLeft(outcome) ? Effect.fail(outcome.left) : Effect.succeed(outcome.right)))
              })
            )
          })
        )
      })()
      return true
    }

    return listener
  })
