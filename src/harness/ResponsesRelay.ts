import { HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option, Stream } from "effect"
import type { Admission, PlainAnswer } from "./Gateway.js"
import { type ResponsesEvent, responsesUsage, type Upstreams } from "./Upstreams.js"

/**
 * A Responses request relayed to an upstream that has the API (`responses: "native"`): the body as the
 * client sent it but for the routed model's name, the answer as the upstream sent it but for the cost the
 * harness adds beside its usage (`usage.cost_usd`, and `x-autopilot-cost-usd` when not streamed). Its ledger
 * row is written as a chat request's is, however the answer ends.
 */

const encoder = new TextEncoder()
const sse = (event: { readonly type: string }) => encoder.encode(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)

/** The events that end a Responses stream, each carrying the whole Response with its usage. */
const terminal = new Set(["response.completed", "response.incomplete", "response.failed"])
const deltas = new Set(["response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta"])

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

export const relay = (upstreams: Upstreams, admission: Admission, body: object) => {
  const { decided, estimated, headers, price, recordAnswer, recorded, refuse, streaming, target } = admission
  const forwarded = { ...body, model: target.upstream_model ?? target.id }

  if (!streaming) {
    return recordAnswer(Effect.map(
      upstreams.respond(target, forwarded),
      Either.map(({ body: answer, usage }): PlainAnswer => ({
        body: answer,
        usage,
        outputChars: () => JSON.stringify((isRecord(answer) ? answer["output"] : undefined) ?? []).length,
        withCost: (cost_usd) => ({ ...(answer as object), usage: { ...(answer as { usage: object }).usage, cost_usd } })
      }))
    ))
  }

  return Effect.gen(function*() {
    const events = yield* upstreams.respondStream(target, forwarded).pipe(Effect.catchAll((error) => refuse(error, decided)))
    // What the stream said, for the ledger row written when it ends, however it ends.
    let cost: ReturnType<typeof price> | undefined
    let failed: string | null = null
    let finished = false
    let streamedChars = 0
    const priced = (event: ResponsesEvent): ResponsesEvent => {
      if (deltas.has(event.type) && typeof event["delta"] === "string") streamedChars += event["delta"].length
      if (event.type === "error") failed = typeof event["message"] === "string" ? event["message"] : "the upstream sent an error event"
      if (!terminal.has(event.type) || !isRecord(event["response"])) return event
      const response = event["response"]
      finished = true
      if (event.type === "response.failed") {
        const error = response["error"]
        failed = isRecord(error) && typeof error["message"] === "string" ? error["message"] : "the response failed"
      }
      const usage = Option.getOrUndefined(responsesUsage(response["usage"]))
      if (usage === undefined) return event
      cost = price(usage)
      return { ...event, response: { ...response, usage: { ...(response["usage"] as object), cost_usd: cost.cost_usd } } }
    }
    const body$ = events.pipe(
      Stream.map((event) => sse(priced(event))),
      Stream.catchAll((error) => {
        failed = error.message
        return Stream.make(sse({ type: "error", code: error.code, message: error.message, param: null } as ResponsesEvent))
      }),
      Stream.ensuring(Effect.suspend(() =>
        recorded({
          status: 200,
          ...decided,
          ...(cost ?? estimated(streamedChars, failed ?? (finished ? "upstream reported no usage" : "the stream ended early"))),
          ...(failed !== null && cost !== undefined ? { error: failed } : {})
        }).pipe(Effect.catchAll((error) => Effect.logError(`a streamed answer went unrecorded: ${error.message}`)))
      ))
    )
    return HttpServerResponse.stream(body$, {
      contentType: "text/event-stream",
      headers: { ...headers, "cache-control": "no-cache" }
    })
  })
}
