import { Either, ParseResult, Schema } from "effect"
import type { ClassifiableRequest } from "./Classifier.js"
import { describeParseError, HarnessError } from "./HarnessError.js"
import type { ResponseItems } from "./ResponseItems.js"

/**
 * OpenAI's Responses API (`POST /v1/responses`) as the harness reads it. Every request is read as
 * `ResponsesRequest` (what routing and the ledger need); one routed to an upstream without the API is then
 * read as `Translatable` and turned into a chat completions request. The answer's way back is in
 * ResponsesAnswer.
 */

/**
 * What the harness reads of any Responses request; the rest goes to an upstream that has the API (a
 * `native` one) as the client sent it.
 */
export const ResponsesRequest = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1)),
  input: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.Unknown))),
  instructions: Schema.optional(Schema.NullOr(Schema.String)),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  tools: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
  // Finite, as for chat: JSON.parse reads 1e400 as Infinity, which JSON.stringify forwards as null.
  max_output_tokens: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.finite())))
})
export type ResponsesRequest = typeof ResponsesRequest.Type

const decodeRequest = Schema.decodeUnknownEither(ResponsesRequest)

/** The request, or a 400 naming the first field that is wrong. */
export const validate = (body: unknown): Either.Either<ResponsesRequest, HarnessError> =>
  typeof body !== "object" || body === null || Array.isArray(body)
    ? Either.left(HarnessError.invalid("the request body must be a JSON object"))
    : Either.mapLeft(decodeRequest(body), HarnessError.fromParseError)

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/**
 * The request as the classifier reads a chat request, so a question is given the same tier whichever API
 * asks it: instructions as a system message, input items as the messages they stand for (an assistant's
 * text and the function calls after it are one turn, as `toChat` makes them one message).
 */
export const classifiable = (request: ResponsesRequest, items?: ResponseItems): ClassifiableRequest => {
  const input = typeof request.input === "string" ? [{ role: "user", content: request.input }] : request.input ?? []
  const messages: Array<{ readonly role: string; readonly content?: unknown }> = []
  for (const value of input) {
    // An earlier answer's item named by id counts as the item, when this harness still has it.
    const item: unknown = isRecord(value) && value["type"] === "item_reference" && typeof value["id"] === "string"
      ? items?.recall(value["id"])
      : value
    if (!isRecord(item)) continue
    if (typeof item["role"] === "string") messages.push({ role: item["role"], content: item["content"] })
    else if (item["type"] === "function_call" && messages.at(-1)?.role !== "assistant") messages.push({ role: "assistant", content: null })
    else if (item["type"] === "function_call_output") messages.push({ role: "tool", content: item["output"] })
  }
  return {
    messages: request.instructions ? [{ role: "system", content: request.instructions }, ...messages] : messages,
    tools: request.tools,
    max_completion_tokens: request.max_output_tokens
  }
}

// What an upstream with only chat completions can be asked, in the Responses API's words.

const InputText = Schema.Struct({ type: Schema.Literal("input_text"), text: Schema.String })
const InputImage = Schema.Struct({
  type: Schema.Literal("input_image"),
  // A file id points into OpenAI's file store, which a chat-only upstream has not got.
  image_url: Schema.String,
  detail: Schema.optional(Schema.NullOr(Schema.Literal("low", "high", "auto")))
})
const OutputText = Schema.Struct({
  type: Schema.Literal("output_text"),
  text: Schema.String,
  annotations: Schema.optional(Schema.Array(Schema.Unknown)),
  logprobs: Schema.optional(Schema.Unknown)
})
const Refusal = Schema.Struct({ type: Schema.Literal("refusal"), refusal: Schema.String })
const Part = Schema.Union(InputText, InputImage, OutputText, Refusal)
type Part = typeof Part.Type

const Message = Schema.Struct({
  type: Schema.optional(Schema.Literal("message")),
  role: Schema.Literal("user", "system", "developer", "assistant"),
  content: Schema.Union(Schema.String, Schema.Array(Part)),
  // An earlier answer's item, sent back: its id and state say nothing the chat request needs.
  id: Schema.optional(Schema.NullOr(Schema.String)),
  status: Schema.optional(Schema.NullOr(Schema.String)),
  phase: Schema.optional(Schema.NullOr(Schema.String))
})
const FunctionCall = Schema.Struct({
  type: Schema.Literal("function_call"),
  call_id: Schema.String,
  name: Schema.String,
  arguments: Schema.String,
  id: Schema.optional(Schema.NullOr(Schema.String)),
  status: Schema.optional(Schema.NullOr(Schema.String))
})
const FunctionCallOutput = Schema.Struct({
  type: Schema.Literal("function_call_output"),
  call_id: Schema.String,
  output: Schema.Union(Schema.String, Schema.Array(InputText)),
  id: Schema.optional(Schema.NullOr(Schema.String)),
  status: Schema.optional(Schema.NullOr(Schema.String))
})
const ItemReference = Schema.Struct({ type: Schema.Literal("item_reference"), id: Schema.String })
/** The items a translation knows, by their `type` (a message may leave it out), each read by its own Schema. */
const items = { message: Message, function_call: FunctionCall, function_call_output: FunctionCallOutput, item_reference: ItemReference }
const Kind = Schema.Struct({
  type: Schema.optionalWith(Schema.Literal("message", "function_call", "function_call_output", "item_reference"), {
    default: () => "message" as const
  })
})
export type Item = typeof items[keyof typeof items]["Type"]
/** An item an answer holds, which a later request may name by id alone (`item_reference`). */
export type AnswerItem = typeof Message.Type | typeof FunctionCall.Type

const FunctionTool = Schema.Struct({
  type: Schema.Literal("function"),
  name: Schema.String.pipe(Schema.minLength(1)),
  description: Schema.optional(Schema.NullOr(Schema.String)),
  parameters: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  strict: Schema.optional(Schema.NullOr(Schema.Boolean))
})
const ToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), name: Schema.String })
)
const Format = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    name: Schema.String,
    schema: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    description: Schema.optional(Schema.String),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
)
const Count = Schema.Number.pipe(Schema.int(), Schema.positive())
const Ratio = Schema.Number.pipe(Schema.finite())

/** A Responses request the harness can put to an upstream that has only chat completions. */
export const Translatable = Schema.Struct({
  model: Schema.String,
  // Each item is read by the Schema of its kind, so a 400 is about that kind and not every other.
  input: Schema.Union(Schema.String, Schema.Array(Schema.Unknown)),
  instructions: Schema.optional(Schema.NullOr(Schema.String)),
  max_output_tokens: Schema.optional(Schema.NullOr(Count)),
  temperature: Schema.optional(Schema.NullOr(Ratio)),
  top_p: Schema.optional(Schema.NullOr(Ratio)),
  tools: Schema.optional(Schema.NullOr(Schema.Array(FunctionTool))),
  tool_choice: Schema.optional(Schema.NullOr(ToolChoice)),
  parallel_tool_calls: Schema.optional(Schema.NullOr(Schema.Boolean)),
  text: Schema.optional(Schema.NullOr(Schema.Struct({
    format: Schema.optional(Schema.NullOr(Format)),
    verbosity: Schema.optional(Schema.NullOr(Schema.Literal("low", "medium", "high")))
  }))),
  reasoning: Schema.optional(Schema.NullOr(Schema.Struct({
    effort: Schema.optional(Schema.NullOr(Schema.Literal("none", "minimal", "low", "medium", "high", "xhigh"))),
    summary: Schema.optional(Schema.Null)
  }))),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_obfuscation: Schema.optional(Schema.NullOr(Schema.Boolean)) }))),
  // Echoed in the answer, as OpenAI does; stored nowhere.
  metadata: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String }))),
  // Nothing is stored for later retrieval whatever it says; item_reference is served from ResponseItems.
  store: Schema.optional(Schema.NullOr(Schema.Boolean)),
  include: Schema.optional(Schema.NullOr(Schema.Tuple())),
  truncation: Schema.optional(Schema.NullOr(Schema.Literal("disabled"))),
  user: Schema.optional(Schema.NullOr(Schema.String)),
  safety_identifier: Schema.optional(Schema.NullOr(Schema.String)),
  prompt_cache_key: Schema.optional(Schema.NullOr(Schema.String)),
  service_tier: Schema.optional(Schema.NullOr(Schema.String))
})
export type Translatable = typeof Translatable.Type

/** Why a field the translation leaves out is left out, for the 400 that names it. */
const unsupported: Record<string, string> = {
  previous_response_id: "the harness keeps no responses; send the whole conversation in input",
  conversation: "the harness keeps no conversations; send the whole conversation in input",
  prompt: "stored prompts live at OpenAI; send instructions and input instead",
  background: "background responses need a store of responses",
  include: "there is nothing extra to include from a chat completion",
  tools: "only function tools can be put to a chat completions upstream; " +
    "built-in tools (web_search, file_search, …) need an upstream with responses: \"native\""
}

const strict = { onExcessProperty: "error" } as const
const decodeTranslatable = Schema.decodeUnknownEither(Translatable, strict)
const decodeKind = Schema.decodeUnknownEither(Kind)
const decodeItem = {
  message: Schema.decodeUnknownEither(Message, strict),
  function_call: Schema.decodeUnknownEither(FunctionCall, strict),
  function_call_output: Schema.decodeUnknownEither(FunctionCallOutput, strict),
  item_reference: Schema.decodeUnknownEither(ItemReference, strict)
}

/**
 * A request an upstream without the Responses API cannot be asked: one 400 naming the field, what is
 * wrong with it and why, in the harness's usual error shape. `at` is where the part that failed sits.
 */
const untranslatable = (upstream: string, at = "") => (error: ParseResult.ParseError) => {
  const found = describeParseError(error, { deepest: true })
  const param = [at, found.param].filter((p) => p !== "").join(".")
  const why = unsupported[param.split(".")[0] ?? ""]
  const message = found.message.startsWith("is unexpected") ? "is not supported" : found.message
  const where = `when the harness translates the Responses API to chat completions (upstream ${upstream} has responses: "translate")`
  return HarnessError.invalid(`${param || "body"}: ${message} ${where}${why === undefined ? "" : `: ${why}`}`, param || undefined)
}

const itemAt = (value: unknown, index: number, upstream: string): Either.Either<Item, HarnessError> =>
  Either.flatMap(
    Either.mapLeft(decodeKind(value), untranslatable(upstream, `input.${index}`)),
    ({ type }) => Either.mapLeft(decodeItem[type](value) as Either.Either<Item, ParseResult.ParseError>, untranslatable(upstream, `input.${index}`))
  )

type ChatPart =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "image_url"; readonly image_url: { readonly url: string; readonly detail?: string } }

const textOf = (part: Part): string | undefined =>
  part.type === "input_text" || part.type === "output_text" ? part.text : part.type === "refusal" ? part.refusal : undefined

/**
 * The chat completions request standing for a Responses request: instructions as the first system message,
 * each input item as the message it stands for (a run of function calls as one assistant message's
 * tool calls, their outputs as tool messages), function tools as chat tools, `max_output_tokens` as
 * `max_tokens` (which every OpenAI-compatible server reads), and usage asked for on a stream. A developer
 * message goes as a system message, which servers other than OpenAI's all know.
 */
export const toChat = (
  body: unknown,
  options: { readonly upstream: string; readonly items: ResponseItems }
): Either.Either<{ readonly request: Translatable; readonly chat: Record<string, unknown> }, HarnessError> =>
  Either.gen(function*() {
    const request = yield* Either.mapLeft(decodeTranslatable(body), untranslatable(options.upstream))
    const messages: Array<Record<string, unknown>> = []
    if (request.instructions) messages.push({ role: "system", content: request.instructions })
    const input = typeof request.input === "string" ? [{ role: "user", content: request.input }] : request.input
    for (const [index, value] of input.entries()) {
      const item = yield* itemAt(value, index, options.upstream)
      const resolved = item.type === "item_reference" ? options.items.recall(item.id) : item
      if (resolved === undefined) {
        const id = (item as { readonly id: string }).id
        return yield* Either.left(HarnessError.invalid(
          `input.${index}.id: no item ${id} is known to this harness (it keeps the items of its recent answers in memory); ` +
            "send the item itself, or set store: false so that clients send whole items",
          `input.${index}.id`
        ))
      }
      if (resolved.type === "function_call") {
        const call = { id: resolved.call_id, type: "function", function: { name: resolved.name, arguments: resolved.arguments } }
        const last = messages.at(-1)
        // An assistant turn is its text and then its calls: one chat message.
        if (last?.["role"] === "assistant") last["tool_calls"] = [...(last["tool_calls"] as Array<unknown> ?? []), call]
        else messages.push({ role: "assistant", content: null, tool_calls: [call] })
        continue
      }
      if (resolved.type === "function_call_output") {
        const output = typeof resolved.output === "string" ? resolved.output : resolved.output.map((part) => part.text).join("")
        messages.push({ role: "tool", tool_call_id: resolved.call_id, content: output })
        continue
      }
      const role = resolved.role === "developer" ? "system" : resolved.role
      if (typeof resolved.content === "string") {
        messages.push({ role, content: resolved.content })
        continue
      }
      const parts: Array<ChatPart> = []
      for (const [at, part] of resolved.content.entries()) {
        const text = textOf(part)
        if (text !== undefined) parts.push({ type: "text", text })
        else if (part.type === "input_image" && role === "user") {
          parts.push({ type: "image_url", image_url: { url: part.image_url, ...(part.detail ? { detail: part.detail } : {}) } })
        } else {
          return yield* Either.left(
            HarnessError.invalid(`input.${index}.content.${at}: an image can only be in a user message`, `input.${index}.content.${at}`)
          )
        }
      }
      // Only a user message may hold parts other than text everywhere; the others are sent as one string.
      messages.push({
        role,
        content: role === "user" ? parts : parts.map((part) => (part.type === "text" ? part.text : "")).join("")
      })
    }
    if (messages.length === 0) return yield* Either.left(HarnessError.invalid("input: must hold at least one item", "input"))
    const format = request.text?.format
    const choice = request.tool_choice
    const chat: Record<string, unknown> = {
      model: request.model,
      messages,
      ...(request.max_output_tokens != null ? { max_tokens: request.max_output_tokens } : {}),
      ...(request.temperature != null ? { temperature: request.temperature } : {}),
      ...(request.top_p != null ? { top_p: request.top_p } : {}),
      ...(request.tools?.length
        ? {
          tools: request.tools.map((tool) => ({
            type: "function",
            function: {
              name: tool.name,
              ...(tool.description != null ? { description: tool.description } : {}),
              ...(tool.parameters != null ? { parameters: tool.parameters } : {}),
              ...(tool.strict != null ? { strict: tool.strict } : {})
            }
          }))
        }
        : {}),
      ...(choice == null
        ? {}
        : { tool_choice: typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } } }),
      ...(request.parallel_tool_calls != null ? { parallel_tool_calls: request.parallel_tool_calls } : {}),
      ...(format == null || format.type === "text"
        ? {}
        : format.type === "json_object"
        ? { response_format: { type: "json_object" } }
        : {
          response_format: {
            type: "json_schema",
            json_schema: {
              name: format.name,
              schema: format.schema,
              ...(format.description !== undefined ? { description: format.description } : {}),
              ...(format.strict != null ? { strict: format.strict } : {})
            }
          }
        }),
      ...(request.text?.verbosity != null ? { verbosity: request.text.verbosity } : {}),
      ...(request.reasoning?.effort != null ? { reasoning_effort: request.reasoning.effort } : {}),
      ...(request.user != null ? { user: request.user } : {}),
      ...(request.safety_identifier != null ? { safety_identifier: request.safety_identifier } : {}),
      ...(request.prompt_cache_key != null ? { prompt_cache_key: request.prompt_cache_key } : {}),
      ...(request.service_tier != null ? { service_tier: request.service_tier } : {}),
      ...(request.stream === true ? { stream: true, stream_options: { include_usage: true } } : {})
    }
    return { request, chat }
  })
