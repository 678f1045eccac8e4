import { Array as Arr, Either, Option, ParseResult, Schema } from "effect"
import * as Conversation from "../llm/Conversation.js"
import type { ChatMessage } from "../llm/Llm.js"
import { FunctionTool, type TrainingSample } from "./Sample.js"

/**
 * OpenAI's chat fine-tuning format, one JSON object per line of the JSONL file: `messages`, and with
 * tools a top-level `tools`; an assistant's `tool_calls` carry their arguments as JSON text, and a `tool`
 * message answers one of them by `tool_call_id`. Every line is checked against it before it is written.
 */

const JsonText = Schema.String.pipe(Schema.filter((text) => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return "must be JSON text"
  }
}))

export const ToolCall = Schema.Struct({
  id: Schema.NonEmptyString,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.NonEmptyString, arguments: JsonText })
})

export const SystemMessage = Schema.Struct({ role: Schema.Literal("system"), content: Schema.String })
export const UserMessage = Schema.Struct({ role: Schema.Literal("user"), content: Schema.String })
export const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  tool_calls: Schema.optionalWith(Schema.NonEmptyArray(ToolCall), { exact: true }),
  /** 0 leaves this turn out of training. */
  weight: Schema.optionalWith(Schema.Literal(0, 1), { exact: true })
}).pipe(Schema.filter((m) =>
  (typeof m.content === "string" && m.content !== "") || m.tool_calls !== undefined || "an assistant message needs content or tool_calls"
))
export const ToolMessage = Schema.Struct({ role: Schema.Literal("tool"), tool_call_id: Schema.NonEmptyString, content: Schema.String })

export const Message = Schema.Union(SystemMessage, UserMessage, AssistantMessage, ToolMessage)
export type Message = typeof Message.Type

/**
 * What no per-message Schema can say: something to learn, and tool turns as OpenAI's rule for a chat has
 * them (`Conversation.problemOf`), except that a line may end on the calls it teaches.
 */
const conversationProblem = (messages: ReadonlyArray<Message>): string | undefined =>
  !messages.some((m) => m.role === "assistant")
    ? "messages need at least one assistant message to train on"
    : Option.getOrUndefined(Conversation.problemOf(messages, { openEnd: true }))

export const Line = Schema.Struct({
  messages: Schema.NonEmptyArray(Message),
  tools: Schema.optionalWith(Schema.NonEmptyArray(FunctionTool), { exact: true }),
  parallel_tool_calls: Schema.optionalWith(Schema.Boolean, { exact: true })
}).pipe(Schema.filter((line) => conversationProblem(line.messages) ?? true))
export type Line = typeof Line.Type

/** Unknown keys are errors, not dropped: a line the upload would reject must not pass here. */
const strict = { onExcessProperty: "error", errors: "first" } as const
const validate = Schema.validateEither(Line, strict)
const decodeText = Schema.decodeUnknownEither(Schema.parseJson(Line), strict)

const problemOf = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => `${i.path.length === 0 ? "line" : i.path.join(".")}: ${i.message}`).join("; ")

/** A message of a sample as the format has it: empty assistant content with tool calls becomes null. */
const messageOf = (m: ChatMessage): Message => {
  switch (m.role) {
    case "assistant":
      return m.tool_calls !== undefined && Arr.isNonEmptyReadonlyArray(m.tool_calls)
        ? { role: "assistant", content: m.content === "" ? null : m.content, tool_calls: m.tool_calls }
        : { role: "assistant", content: m.content }
    case "tool":
      return { role: "tool", tool_call_id: m.tool_call_id ?? "", content: m.content }
    default:
      return { role: m.role, content: m.content }
  }
}

/** A sample's line, checked; the Left names the first problem. */
export const lineOf = (sample: Pick<TrainingSample, "messages" | "tools">): Either.Either<string, string> => {
  // Only the sample's own turn (the last assistant message) is learned: an earlier iteration's turn, replayed
  // as context in the act conversation, may be work the judge did not accept.
  const last = sample.messages.map((m) => m.role).lastIndexOf("assistant")
  const candidate = {
    messages: sample.messages.map((m, i) => {
      const message = messageOf(m)
      return message.role === "assistant" && i < last ? { ...message, weight: 0 as const } : message
    }),
    ...(sample.tools.length === 0 ? {} : { tools: sample.tools })
  }
  return Either.match(validate(candidate), {
    onLeft: (error) => Either.left(problemOf(error)),
    onRight: () => Either.right(JSON.stringify(candidate))
  })
}

/** One line of a JSONL file, checked against the format; the Left names what is wrong. */
export const checkLine = (text: string): Either.Either<Line, string> => Either.mapLeft(decodeText(text), problemOf)
