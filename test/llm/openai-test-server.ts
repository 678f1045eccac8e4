import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Deferred, Effect, Exit, type Scope } from "effect"

/** A request as the server received it. */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: any
}

/** One scripted answer to one `/v1/chat/completions` (or `/v1/responses`) request. */
export interface Reply {
  /** Anything but 200 answers with an OpenAI-style error body, unless `raw` gives the body. */
  readonly status?: number
  readonly headers?: Record<string, string>
  readonly error?: { readonly message: string; readonly type?: string; readonly code?: string }
  readonly content?: string
  readonly toolCalls?: ReadonlyArray<{ readonly id: string; readonly name: string; readonly arguments: string }>
  /** The finish reason, when not the one the content implies (`stop`, or `tool_calls`): `length` for a cut answer. */
  readonly finish?: string
  /** `null` leaves usage out, as servers without usage reporting do. */
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number } | null
  readonly model?: string
  /** Before the status line is sent. */
  readonly delayMs?: number
  /** A stream sends its content, then this error event, as a proxy relays an upstream failing mid-answer. */
  readonly streamError?: string
  /** A stream sends its chunks and then neither finishes nor closes, like a model that stalls. */
  readonly stall?: boolean
  /** Sent verbatim with `status` (default 200), for servers that answer in ways OpenAI would not. */
  readonly raw?: { readonly contentType: string; readonly body: string }
}

export interface TestServer {
  /** Ends in `/v1`, as the SDK expects. */
  readonly baseURL: string
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Completes when a client closes its connection before its reply was fully sent. */
  readonly aborted: Effect.Effect<void>
}

const defaultUsage = { prompt_tokens: 11, completion_tokens: 7 }

const completionOf = (reply: Reply, model: string) => ({
  id: "chatcmpl-test",
  object: "chat.completion",
  created: 1_700_000_000,
  model,
  choices: [{
    index: 0,
    finish_reason: reply.finish ?? (reply.toolCalls?.length ? "tool_calls" : "stop"),
    logprobs: null,
    message: {
      role: "assistant",
      content: reply.content ?? null,
      refusal: null,
      ...(reply.toolCalls?.length
        ? {
          tool_calls: reply.toolCalls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: call.arguments }
          }))
        }
        : {})
    }
  }],
  ...(reply.usage === null ? {} : { usage: withTotal(reply.usage ?? defaultUsage) })
})

const withTotal = (usage: { prompt_tokens: number; completion_tokens: number }) => ({
  ...usage,
  total_tokens: usage.prompt_tokens + usage.completion_tokens
})

/**
 * The chunks OpenAI would send: content word by word, each tool call as a head (id and name) and its
 * arguments in two halves, the calls' pieces interleaved, then the finish and, if asked for, the usage.
 */
const chunksOf = (reply: Reply, model: string, includeUsage: boolean) => {
  const chunk = (delta: object, finish: string | null = null) => ({
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }]
  })
  const calls = reply.toolCalls ?? []
  const half = (text: string, first: boolean) => first ? text.slice(0, text.length >> 1) : text.slice(text.length >> 1)
  return [
    chunk({ role: "assistant", content: "" }),
    ...(reply.content?.match(/\S+\s*|\s+/g) ?? []).map((text) => chunk({ content: text })),
    ...calls.map((call, index) =>
      chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] })
    ),
    ...[true, false].flatMap((first) =>
      calls.map((call, index) => chunk({ tool_calls: [{ index, function: { arguments: half(call.arguments, first) } }] }))
    ),
    chunk({}, reply.finish ?? (calls.length > 0 ? "tool_calls" : "stop")),
    ...(includeUsage && reply.usage !== null
      ? [{ ...chunk({}), choices: [], usage: withTotal(reply.usage ?? defaultUsage) }]
      : [])
  ]
}

/** The same reply as OpenAI's Responses API gives it (`POST /v1/responses`): text as a message, tool calls as function_call items. */
const responseOf = (reply: Reply, model: string, status = "completed") => ({
  id: "resp_test",
  object: "response",
  created_at: 1_700_000_000,
  status,
  error: null,
  incomplete_details: null,
  model,
  output: status === "in_progress" ? [] : [
    ...(reply.content === undefined ? [] : [{
      id: "msg_test",
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: reply.content, annotations: [] }]
    }]),
    ...(reply.toolCalls ?? []).map((call, index) => ({
      id: `fc_test_${index}`,
      type: "function_call",
      status: "completed",
      call_id: call.id,
      name: call.name,
      arguments: call.arguments
    }))
  ],
  ...(reply.usage === null || status === "in_progress" ? {} : {
    usage: {
      input_tokens: (reply.usage ?? defaultUsage).prompt_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: (reply.usage ?? defaultUsage).completion_tokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: (reply.usage ?? defaultUsage).prompt_tokens + (reply.usage ?? defaultUsage).completion_tokens
    }
  })
})

/** The Responses API's events for a reply, as OpenAI streams them (without a terminating [DONE]). */
const responseEventsOf = (reply: Reply, model: string) => {
  let sequence = 0
  const event = (type: string, fields: object) => ({ type, sequence_number: sequence++, ...fields })
  const done = responseOf(reply, model)
  const message = done.output.find((item) => item.type === "message")
  const words = reply.content?.match(/\S+\s*|\s+/g) ?? []
  return [
    event("response.created", { response: responseOf(reply, model, "in_progress") }),
    ...(message === undefined ? [] : [
      event("response.output_item.added", { output_index: 0, item: { ...message, status: "in_progress", content: [] } }),
      event("response.content_part.added", { item_id: message.id, output_index: 0, content_index: 0, part: { type: "output_text", text: "", annotations: [] } }),
      ...words.map((delta) => event("response.output_text.delta", { item_id: message.id, output_index: 0, content_index: 0, delta, logprobs: [] })),
      event("response.output_text.done", { item_id: message.id, output_index: 0, content_index: 0, text: reply.content, logprobs: [] }),
      event("response.output_item.done", { output_index: 0, item: message })
    ]),
    ...done.output.filter((item) => item.type === "function_call").flatMap((item) => {
      const index = done.output.indexOf(item)
      const call = item as { id: string; arguments: string; name: string }
      return [
        event("response.output_item.added", { output_index: index, item: { ...item, status: "in_progress", arguments: "" } }),
        event("response.function_call_arguments.delta", { item_id: call.id, output_index: index, delta: call.arguments }),
        event("response.function_call_arguments.done", { item_id: call.id, output_index: index, name: call.name, arguments: call.arguments }),
        event("response.output_item.done", { output_index: index, item })
      ]
    }),
    ...(reply.streamError === undefined && !reply.stall ? [event("response.completed", { response: done })] : [])
  ]
}

/**
 * A real HTTP server on 127.0.0.1 speaking enough of `/v1/chat/completions` (and of `/v1/responses`) for the
 * OpenAI SDK, answering
 * each request with the next scripted reply (a function of the request, if it needs to see it) and
 * recording what it was sent. With the script used up it answers 500, which tests will notice.
 */
export const make = (
  script: ReadonlyArray<Reply | ((request: RecordedRequest) => Reply)>
): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requests: Array<RecordedRequest> = []
    const aborted = yield* Deferred.make<void>()

    const handle = (req: Http.IncomingMessage, res: Http.ServerResponse, raw: string) => {
      let body: any = undefined
      try {
        body = JSON.parse(raw)
      } catch {
        body = raw
      }
      const request: RecordedRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body }
      const index = requests.push(request) - 1
      res.on("close", () => {
        if (!res.writableFinished) Deferred.unsafeDone(aborted, Exit.void)
      })
      const scripted = script[index]
      const reply: Reply = scripted === undefined
        ? { status: 500, error: { message: `test server: no scripted reply for request ${index + 1}` } }
        : typeof scripted === "function"
        ? scripted(request)
        : scripted
      const send = () => {
        if (res.destroyed) return
        const responses = request.path === "/v1/responses"
        const routed = request.path === "/v1/chat/completions" || responses
        const status = routed ? reply.status ?? 200 : 404
        const model = reply.model ?? body?.model ?? "unknown"
        if (routed && reply.raw !== undefined) {
          res.writeHead(status, { "content-type": reply.raw.contentType, ...reply.headers })
          res.end(reply.raw.body)
        } else if (status !== 200) {
          res.writeHead(status, { "content-type": "application/json", ...reply.headers })
          res.end(JSON.stringify({
            error: {
              message: !routed ? `no route ${request.path}` : reply.error?.message ?? `status ${status}`,
              type: reply.error?.type ?? "invalid_request_error",
              param: null,
              code: reply.error?.code ?? null
            }
          }))
        } else if (responses && body?.stream === true) {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...reply.headers })
          for (const event of responseEventsOf(reply, model)) res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
          if (reply.streamError !== undefined) {
            res.write(`event: error\ndata: ${JSON.stringify({ type: "error", code: "server_error", message: reply.streamError, param: null })}\n\n`)
          }
          if (!reply.stall) res.end()
        } else if (responses) {
          res.writeHead(200, { "content-type": "application/json", ...reply.headers })
          res.end(JSON.stringify(responseOf(reply, model)))
        } else if (body?.stream === true) {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...reply.headers })
          for (const chunk of chunksOf(reply, model, body?.stream_options?.include_usage === true)) {
            res.write(`data: ${JSON.stringify(chunk)}\n\n`)
          }
          if (reply.streamError !== undefined) {
            res.write(`data: ${JSON.stringify({ error: { message: reply.streamError, type: "server_error" } })}\n\n`)
          }
          if (!reply.stall) res.end("data: [DONE]\n\n")
        } else {
          res.writeHead(200, { "content-type": "application/json", ...reply.headers })
          res.end(JSON.stringify(completionOf(reply, model)))
        }
      }
      if (reply.delayMs === undefined) return send()
      const timer = setTimeout(send, reply.delayMs)
      res.on("close", () => clearTimeout(timer))
    }

    const server = Http.createServer((req, res) => {
      const parts: Array<Buffer> = []
      req.on("data", (part: Buffer) => parts.push(part))
      req.on("end", () => handle(req, res, Buffer.concat(parts).toString("utf8")))
    })

    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )

    return {
      baseURL: `http://127.0.0.1:${port}/v1`,
      requests: Effect.sync(() => [...requests]),
      aborted: Deferred.await(aborted)
    }
  })
