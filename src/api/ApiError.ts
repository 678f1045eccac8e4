import { HttpApiSchema } from "@effect/platform"
import { Effect, Schema } from "effect"

/**
 * The API's one error shape, `{"error": {"code", "message"}}`, with the status its class stands for. Each
 * class is a tagged error inside the server and on the derived client; on the wire it is only the shape,
 * so every client reads every error the same way.
 */
/** The wire form of an error class: the shape above, the class inside, the status for HttpApi. */
const wire = <Self extends { readonly _tag: string; readonly message: string }, Code extends string>(
  error: Schema.Schema<Self, { readonly _tag: Self["_tag"]; readonly message: string }>,
  tag: Self["_tag"],
  code: Code,
  status: number,
  description: string
) =>
  Schema.transform(Schema.Struct({ error: Schema.Struct({ code: Schema.Literal(code), message: Schema.String }) }), error, {
    strict: true,
    decode: ({ error }) => ({ _tag: tag, message: error.message }),
    encode: (e) => ({ error: { code, message: e.message } })
  }).annotations(HttpApiSchema.annotations({ status, description }))

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { message: Schema.String }) {}
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { message: Schema.String }) {}
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", { message: Schema.String }) {}
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }) {}
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", { message: Schema.String }) {}
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", { message: Schema.String }) {}
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", { message: Schema.String }) {}
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { message: Schema.String }) {}

export const BadRequestJson = wire(BadRequest, "BadRequest", "bad_request", 400, "The request is malformed or a value is not allowed")
export const UnauthorizedJson = wire(Unauthorized, "Unauthorized", "unauthorized", 401, "No token, or one that is unknown, revoked or expired")
export const ForbiddenJson = wire(Forbidden, "Forbidden", "forbidden", 403, "The token may not do this")
export const NotFoundJson = wire(NotFound, "NotFound", "not_found", 404, "No such thing in this project")
export const MethodNotAllowedJson = wire(MethodNotAllowed, "MethodNotAllowed", "method_not_allowed", 405, "The path exists, not with this method")
export const ConflictJson = wire(Conflict, "Conflict", "conflict", 409, "The thing is not in a state that allows this")
export const PayloadTooLargeJson = wire(PayloadTooLarge, "PayloadTooLarge", "payload_too_large", 413, "The body is over the size limit")
export const UnavailableJson = wire(Unavailable, "Unavailable", "unavailable", 503, "The database or the model could not be reached")

/** The `code` of each error, as the wire carries it. */
const codes: Record<ApiError["_tag"], string> = {
  BadRequest: "bad_request",
  Unauthorized: "unauthorized",
  Forbidden: "forbidden",
  NotFound: "not_found",
  MethodNotAllowed: "method_not_allowed",
  Conflict: "conflict",
  PayloadTooLarge: "payload_too_large",
  Unavailable: "unavailable"
}

export type ApiError = BadRequest | Unauthorized | Forbidden | NotFound | MethodNotAllowed | Conflict | PayloadTooLarge | Unavailable


/** The status each error answers with, for the few places that write a response by hand. */
export const statusOf = (error: ApiError): number => {
  switch (error._tag) {
    case "BadRequest":
      return 400
    case "Unauthorized":
      return 401
    case "Forbidden":
      return 403
    case "NotFound":
      return 404
    case "MethodNotAllowed":
      return 405
    case "Conflict":
      return 409
    case "PayloadTooLarge":
      return 413
    case "Unavailable":
      return 503
  }
}

/** The wire shape of an error, for responses written by hand (SSE, the pre-routing checks). */
export const bodyOf = (error: ApiError) => ({
  error: { code: codes[error._tag], message: error.message }
})

/**
 * The service errors an API call can meet, each as the error a client sees: input refused is a 400, a thing
 * absent (or another project's) a 404, a state that forbids the action a 409, storage or a model out of
 * reach a 503. Never a stack trace; the message is the service's own one line.
 */
export const fromService = <E extends { readonly _tag: string; readonly message: string }>(error: E): ApiError => {
  switch (error._tag) {
    case "BadInput":
    case "ParseError":
      return new BadRequest({ message: error.message })
    case "MissionNotFound":
    case "RunNotFound":
    case "QueueEntryNotFound":
      return new NotFound({ message: error.message })
    case "IllegalTransition":
    case "AutopilotDisabled":
    case "RunInProgress":
    case "RunAlreadyExists":
    case "CorruptCheckpoint":
    case "RunInterrupted":
    case "SynthesisFailed":
      return new Conflict({ message: error.message })
    case "PersistenceError":
      return new Unavailable({ message: `the database could not be used: ${error.message}` })
    case "LlmError":
      return new Unavailable({ message: `the model could not be used: ${error.message}` })
    default:
      return new Unavailable({ message: error.message })
  }
}

/** Maps every failure of `effect` to the API's errors. */
export const mapService = <A, E extends { readonly _tag: string; readonly message: string }, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, ApiError, R> => Effect.mapError(effect, fromService)
