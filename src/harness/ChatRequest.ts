import { Either, Schema } from "effect"
import { HarnessError } from "./HarnessError.js"

/**
 * The part of a `/v1/chat/completions` body the harness reads. Everything else (temperature, tools'
 * schemas, response_format, …) is the upstream's business and is forwarded as the client sent it.
 */
export const ChatRequest = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1)),
  // minItems rather than NonEmptyArray: `[]` is then an error about `messages`, not "messages.0 is missing".
  messages: Schema.Array(Schema.Struct({
    role: Schema.Literal("system", "developer", "user", "assistant", "tool", "function"),
    content: Schema.optional(Schema.Unknown)
  })).pipe(Schema.minItems(1, { message: () => "must hold at least one message" })),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.NullOr(Schema.Boolean)) }))),
  tools: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
  // Finite: JSON.parse reads 1e400 as Infinity, which would be forwarded as null, lifting the client's cap.
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.finite()))),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.finite())))
})
export type ChatRequest = typeof ChatRequest.Type

const decode = Schema.decodeUnknownEither(ChatRequest)

/** The request, or a 400 naming the first field that is wrong, as OpenAI's `param` does. */
export const validate = (body: unknown): Either.Either<ChatRequest, HarnessError> =>
  typeof body !== "object" || body === null || Array.isArray(body)
    ? Either.left(HarnessError.invalid("the request body must be a JSON object"))
    : Either.mapLeft(decode(body), HarnessError.fromParseError)
