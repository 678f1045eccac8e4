import { HttpServerResponse } from "@effect/platform"
import { Effect, Option, Schema, Stream } from "effect"
import { randomBytes } from "node:crypto"
import type { ResponseItems } from "./ResponseItems.js"
import type { AnswerItem, Translatable } from "./Responses.js"

/**
 * A chat completions answer as the Responses API's: the completion as a Response object, a stream of
 * completion chunks as the Responses API's events, in the shapes of the openai package's
 * `resources/responses/responses.d.ts`. The chat answer is the harness's own (priced, `usage.cost_usd`
 * included); what it says goes into the Response as it is, its cost beside the usage.
 */

/** What a translated answer says of itself beside what the upstream answered. */
export interface Echo {
  readonly request: Translatable
  /** The model the harness routed the request to. */
  readonly model: string
  readonly id: string
  /** Unix seconds. */
  readonly created_at: number
}

/** An id as OpenAI's look: a kind's prefix and 48 random hex digits. */
export const newId = (prefix: "resp" | "msg" | "fc") => `${prefix}_${randomBytes(24).toString("hex")}`

const count = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const ChatUsage = Schema.Struct({
  prompt_tokens: count,
  completion_tokens: count,
  total_tokens: Schema.optional(count),
  prompt_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ cached_tokens: Schema.optional(Schema.NullOr(count)) }))),
  completion_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ reasoning_tokens: Schema.optional(Schema.NullOr(count)) }))),
  cost_usd: Schema.optional(count)
})
const chatUsage = Schema.decodeUnknownOption(ChatUsage)

/** A chat usage as a Responses usage; the cost the harness added stays beside the counts. */
const usageOf = (usage: unknown) =>
  Option.getOrUndefined(Option.map(chatUsage(usage), (u) => ({
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens,
    ...(u.cost_usd === undefined ? {} : { cost_usd: u.cost_usd })
  })))
type Usage = ReturnType<typeof usageOf>

const ToolCall = Schema.Struct({ id: Schema.String, function: Schema.Struct({ name: Schema.String, arguments: Schema.String }) })
const isToolCall = Schema.is(ToolCall)
const Completion = Schema.Struct({
  choices: Schema.Array(Schema.Struct({
    message: Schema.Struct({
      // Some servers send parts; only text is read from them.
      content: Schema.optional(Schema.Unknown),
      refusal: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown)))
    }),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.Unknown)
})
const completionOf = Schema.decodeUnknownOption(Completion)

const isText = Schema.is(Schema.Struct({ text: Schema.String }))
const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : Array.isArray(content)
    ? content.map((part: unknown) => (isText(part) ? part.text : "")).join("")
    : ""

/** How an answer ended, from the chat's finish reason: cut at the output cap or by a filter, it is incomplete. */
const ending = (finish: string | null | undefined) =>
  finish === "length"
    ? { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } }
    : finish === "content_filter"
    ? { status: "incomplete", incomplete_details: { reason: "content_filter" } }
    : { status: "completed", incomplete_details: null }

/** The Response object around `output`, with the request's settings echoed as OpenAI echoes them. */
const response = (echo: Echo, state: {
  readonly status: string
  readonly output: ReadonlyArray<unknown>
  readonly incomplete_details?: unknown
  readonly error?: { readonly code: string; readonly message: string } | null
  readonly usage?: Usage
}) => {
  const request = echo.request
  return {
    id: echo.id,
    object: "response",
    created_at: echo.created_at,
    status: state.status,
    error: state.error ?? null,
    incomplete_details: state.incomplete_details ?? null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model: echo.model,
    output: state.output,
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: request.reasoning?.effort ?? null, summary: null },
    // Nothing is kept for a later GET /v1/responses/{id}.
    store: false,
    temperature: request.temperature ?? null,
    text: { format: request.text?.format ?? { type: "text" }, ...(request.text?.verbosity ? { verbosity: request.text.verbosity } : {}) },
    tool_choice: request.tool_choice ?? "auto",
    tools: request.tools ?? [],
    top_p: request.top_p ?? null,
    truncation: "disabled",
    ...(state.usage === undefined ? {} : { usage: state.usage }),
    user: request.user ?? null,
    metadata: request.metadata ?? {}
  }
}

type Status = "in_progress" | "completed" | "incomplete"
const messageItem = (id: string, text: string, status: Status) => ({
  id,
  type: "message" as const,
  status,
  role: "assistant" as const,
  content: [{ type: "output_text" as const, text, annotations: [] }]
})
const callItem = (call: { id: string; call_id: string; name: string; arguments: string }, status: Status) => ({
  id: call.id,
  type: "function_call" as const,
  status,
  call_id: call.call_id,
  name: call.name,
  arguments: call.arguments
})

/** A completion as a Response: its text as a message, its tool calls as function_call items. */
export const fromCompletion = (echo: Echo, body: unknown, items: ResponseItems) => {
  const completion = Option.getOrUndefined(completionOf(body))
  const choice = completion?.choices[0]
  const message = choice?.message
  const text = textOf(message?.content)
  const calls = (message?.tool_calls ?? []).filter(isToolCall)
  const output = [
    ...(message?.refusal
      ? [{ id: newId("msg"), type: "message", status: "completed", role: "assistant", content: [{ type: "refusal", refusal: message.refusal }] }]
      : text !== "" || calls.length === 0
      ? [messageItem(newId("msg"), text, "completed")]
      : []),
    ...calls.map((call) => callItem({ id: newId("fc"), call_id: call.id, name: call.function.name, arguments: call.function.arguments }, "completed"))
  ]
  items.remember(output as ReadonlyArray<AnswerItem & { id: string }>)
  return response(echo, { ...ending(choice?.finish_reason), output, usage: usageOf(completion?.usage) })
}

const ChunkError = Schema.Struct({
  error: Schema.Struct({ message: Schema.String, code: Schema.optional(Schema.NullOr(Schema.String)), type: Schema.optional(Schema.String) })
})
const Chunk = Schema.Struct({
  choices: Schema.Array(Schema.Struct({
    delta: Schema.optional(Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        index: Schema.Number,
        id: Schema.optional(Schema.NullOr(Schema.String)),
        function: Schema.optional(Schema.Struct({
          name: Schema.optional(Schema.NullOr(Schema.String)),
          arguments: Schema.optional(Schema.NullOr(Schema.String))
        }))
      }))))
    })),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.Unknown)
})
const Event = Schema.Union(ChunkError, Chunk)
const eventOf = Schema.decodeUnknownOption(Schema.parseJson(Event))

const encoder = new TextEncoder()

/**
 * The events of a chat completions stream as the Responses API streams them: `response.created` and
 * `response.in_progress`; per output item `response.output_item.added`, its deltas
 * (`response.output_text.delta` after `response.content_part.added`, or
 * `response.function_call_arguments.delta`) and, at the end, their `…done` events; then
 * `response.completed` (`response.incomplete` at the output cap) with the usage and its `cost_usd`. An error
 * event of the chat stream, or a stream that stops before its finish, ends it with `error` and
 * `response.failed`.
 */
export const events = <E>(echo: Echo, items: ResponseItems) => (chat: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E> =>
  Stream.suspend(() => {
    let sequence = 0
    const event = (type: string, fields: object) =>
      encoder.encode(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`)
    type Message = { readonly kind: "message"; readonly id: string; readonly index: number; text: string }
    type Call = { readonly kind: "call"; readonly id: string; readonly index: number; call_id: string; name: string; arguments: string }
    const output: Array<Message | Call> = []
    let message: Message | undefined
    const calls = new Map<number, Call>()
    let finish: string | null | undefined = undefined
    let usage: Usage = undefined
    let ended = false
    const itemOf = (open: Message | Call, status: Status) =>
      open.kind === "message" ? messageItem(open.id, open.text, status) : callItem(open, status)

    const failed = (message: string, code: string | null = null): Array<Uint8Array> => {
      ended = true
      return [
        event("error", { code, message, param: null }),
        event("response.failed", {
          response: response(echo, {
            status: "failed",
            error: { code: "server_error", message },
            output: output.map((open) => itemOf(open, "incomplete")),
            usage
          })
        })
      ]
    }

    const onChunk = (chunk: typeof Chunk.Type): Array<Uint8Array> => {
      const sent: Array<Uint8Array> = []
      const usageNow = usageOf(chunk.usage)
      if (usageNow !== undefined) usage = usageNow
      // A translated request asks for one choice; a server sending more is read for its first.
      const choice = chunk.choices[0]
      if (choice === undefined) return sent
      const content = choice.delta?.content
      if (content) {
        if (message === undefined) {
          message = { kind: "message", id: newId("msg"), index: output.length, text: "" }
          output.push(message)
          sent.push(
            event("response.output_item.added", { output_index: message.index, item: itemOf(message, "in_progress") }),
            event("response.content_part.added", {
              item_id: message.id,
              output_index: message.index,
              content_index: 0,
              part: { type: "output_text", text: "", annotations: [] }
            })
          )
        }
        message.text += content
        sent.push(event("response.output_text.delta", {
          item_id: message.id,
          output_index: message.index,
          content_index: 0,
          delta: content,
          logprobs: []
        }))
      }
      for (const piece of choice.delta?.tool_calls ?? []) {
        let call = calls.get(piece.index)
        if (call === undefined) {
          call = { kind: "call", id: newId("fc"), index: output.length, call_id: piece.id ?? "", name: piece.function?.name ?? "", arguments: "" }
          calls.set(piece.index, call)
          output.push(call)
          sent.push(event("response.output_item.added", { output_index: call.index, item: itemOf(call, "in_progress") }))
        }
        const delta = piece.function?.arguments
        if (delta) {
          call.arguments += delta
          sent.push(event("response.function_call_arguments.delta", { item_id: call.id, output_index: call.index, delta }))
        }
      }
      if (choice.finish_reason) finish = choice.finish_reason
      return sent
    }

    // Server-sent events are lines; an event's data lines end at a blank line.
    let data: Array<string> = []
    const onLine = (line: string): Array<Uint8Array> => {
      if (ended) return []
      if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5))
        return []
      }
      if (line !== "" || data.length === 0) return []
      const text = data.join("\n")
      data = []
      if (text === "[DONE]") return []
      return Option.match(eventOf(text), {
        onNone: () => failed(`the answer's stream held something that is not a chat completion chunk`),
        onSome: (parsed) => ("error" in parsed ? failed(parsed.error.message, parsed.error.code ?? parsed.error.type ?? null) : onChunk(parsed))
      })
    }

    const finished = (): Array<Uint8Array> => {
      if (ended) return []
      if (finish === undefined) return failed("the upstream's stream ended before the answer was finished")
      const done = output.flatMap((open) =>
        open.kind === "message"
          ? [
            event("response.output_text.done", { item_id: open.id, output_index: open.index, content_index: 0, text: open.text, logprobs: [] }),
            event("response.content_part.done", {
              item_id: open.id,
              output_index: open.index,
              content_index: 0,
              part: { type: "output_text", text: open.text, annotations: [] }
            }),
            event("response.output_item.done", { output_index: open.index, item: itemOf(open, "completed") })
          ]
          : [
            event("response.function_call_arguments.done", { item_id: open.id, output_index: open.index, name: open.name, arguments: open.arguments }),
            event("response.output_item.done", { output_index: open.index, item: itemOf(open, "completed") })
          ]
      )
      const completed = output.map((open) => itemOf(open, "completed"))
      items.remember(completed)
      const end = ending(finish)
      return [
        ...done,
        event(end.status === "completed" ? "response.completed" : "response.incomplete", {
          response: response(echo, { ...end, output: completed, usage })
        })
      ]
    }

    const begun = response(echo, { status: "in_progress", output: [] })
    return Stream.make(event("response.created", { response: begun }), event("response.in_progress", { response: begun })).pipe(
      Stream.concat(chat.pipe(
        Stream.decodeText(),
        Stream.splitLines,
        // The last event may end without its blank line.
        Stream.concat(Stream.make("")),
        Stream.mapConcat(onLine)
      )),
      Stream.concat(Stream.sync(finished).pipe(Stream.flattenIterables))
    )
  })

/**
 * The harness's chat answer to a translated request as the Responses API's: the completion as a Response
 * object, a stream as Responses events; status and headers (`x-autopilot-*`, the cost) as they were.
 */
export const fromChat = (echo: Echo, items: ResponseItems) => (answer: HttpServerResponse.HttpServerResponse) =>
  Effect.suspend(() => {
    const body = answer.body
    if (body._tag === "Stream") {
      return Effect.succeed(HttpServerResponse.stream(events(echo, items)(body.stream), {
        status: answer.status,
        headers: answer.headers,
        contentType: "text/event-stream"
      }))
    }
    if (body._tag === "Uint8Array") {
      const completion: unknown = JSON.parse(new TextDecoder().decode(body.body))
      return Effect.succeed(
        HttpServerResponse.unsafeJson(fromCompletion(echo, completion, items), { status: answer.status, headers: answer.headers })
      )
    }
    // Relaying a chat body to a Responses client would be a wrong answer that looks like a right one.
    return Effect.dieMessage(`a chat answer with a ${body._tag} body cannot be translated to the Responses API`)
  })
