import { HttpApiSchema } from "@effect/platform"
import { Effect, type ParseResult, Schema } from "effect"
import type { AutopilotDisabled } from "../domain/AutopilotSettings.js"
import type { BadInput, CorruptCheckpoint, LlmError, PersistenceError, RunAlreadyExists, RunInProgress, RunInterrupted, RunNotFound } from "../domain/Errors.js"
import type { MissionNotFound } from "../domain/MissionRecord.js"
import type { IllegalTransition } from "../domain/MissionState.js"
import type { QueueEntryNotFound, RunIdTaken } from "../domain/QueueEntry.js"
import type { SynthesisFailed } from "../routing/Synthesis.js"

/**
 * The API's one error shape, `{"error": {"code", "message"}}`, with the status its class stands for. Each
 * class is a tagged error inside the server and on the derived client; on the wire it is only the shape,
 * so every client reads every error the same way.
 */

export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { message: Schema.String }) {}
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { message: Schema.String }) {}
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", { message: Schema.String }) {}
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }) {}
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", { message: Schema.String }) {}
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", { message: Schema.String }) {}
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", { message: Schema.String }) {}
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", { message: Schema.String }) {}

export type ApiError = BadRequest | Unauthorized | Forbidden | NotFound | MethodNotAllowed | Conflict | PayloadTooLarge | Unavailable

/** Every error's code on the wire, status and description for the OpenAPI document: the one table of them. */
const table = {
  BadRequest: { code: "bad_request", status: 400, description: "The request is malformed or a value is not allowed" },
  Unauthorized: { code: "unauthorized", status: 401, description: "No token or session, or one that is unknown, revoked or expired" },
  Forbidden: { code: "forbidden", status: 403, description: "The token may not do this" },
  NotFound: { code: "not_found", status: 404, description: "No such thing in this project" },
  MethodNotAllowed: { code: "method_not_allowed", status: 405, description: "The path exists, not with this method" },
  Conflict: { code: "conflict", status: 409, description: "The thing is not in a state that allows this" },
  PayloadTooLarge: { code: "payload_too_large", status: 413, description: "The body is over the size limit" },
  Unavailable: { code: "unavailable", status: 503, description: "The database or the model could not be reached" }
} as const satisfies { readonly [Tag in ApiError["_tag"]]: { readonly code: string; readonly status: number; readonly description: string } }

/** The wire form of an error class: the shape above, the class inside, the status for HttpApi. */
const wire = <Self extends ApiError>(error: Schema.Schema<Self, { readonly _tag: Self["_tag"]; readonly message: string }>, tag: Self["_tag"]) => {
  const { code, description, status } = table[tag]
  return Schema.transform(Schema.Struct({ error: Schema.Struct({ code: Schema.Literal(code), message: Schema.String }) }), error, {
    strict: true,
    decode: ({ error }) => ({ _tag: tag, message: error.message }),
    encode: (e) => ({ error: { code, message: e.message } })
  }).annotations(HttpApiSchema.annotations({ status, description }))
}

export const BadRequestJson = wire(BadRequest, "BadRequest")
export const UnauthorizedJson = wire(Unauthorized, "Unauthorized")
export const ForbiddenJson = wire(Forbidden, "Forbidden")
export const NotFoundJson = wire(NotFound, "NotFound")
export const MethodNotAllowedJson = wire(MethodNotAllowed, "MethodNotAllowed")
export const ConflictJson = wire(Conflict, "Conflict")
export const PayloadTooLargeJson = wire(PayloadTooLarge, "PayloadTooLarge")
export const UnavailableJson = wire(Unavailable, "Unavailable")

/** The status each error answers with, for the few places that write a response by hand. */
export const statusOf = (error: ApiError): number => table[error._tag].status

/** The wire shape of an error, for responses written by hand (SSE, the pre-routing checks). */
export const bodyOf = (error: ApiError) => ({
  error: { code: table[error._tag].code, message: error.message }
})

/** Every error a service the handlers call can fail with; `mapService` takes no other. */
export type ServiceError =
  | BadInput
  | ParseResult.ParseError
  | MissionNotFound
  | RunNotFound
  | QueueEntryNotFound
  | IllegalTransition
  | AutopilotDisabled
  | RunInProgress
  | RunAlreadyExists
  | RunIdTaken
  | CorruptCheckpoint
  | RunInterrupted
  | SynthesisFailed
  | PersistenceError
  | LlmError

/**
 * Each service error as the error a client sees: input refused is a 400, a thing absent (or another
 * project's) a 404, a state that forbids the action a 409, storage or a model out of reach a 503. A
 * mapped type, so a service error added to `ServiceError` without its answer here does not compile.
 * Never a stack trace; the message is the service's own one line.
 */
const answers: { readonly [Tag in ServiceError["_tag"]]: (error: Extract<ServiceError, { readonly _tag: Tag }>) => ApiError } = {
  BadInput: (e) => new BadRequest({ message: e.message }),
  ParseError: (e) => new BadRequest({ message: e.message }),
  MissionNotFound: (e) => new NotFound({ message: e.message }),
  RunNotFound: (e) => new NotFound({ message: e.message }),
  QueueEntryNotFound: (e) => new NotFound({ message: e.message }),
  IllegalTransition: (e) => new Conflict({ message: e.message }),
  AutopilotDisabled: (e) => new Conflict({ message: e.message }),
  RunInProgress: (e) => new Conflict({ message: e.message }),
  RunAlreadyExists: (e) => new Conflict({ message: e.message }),
  // Whatever holds the id (a run or entry of this project or another, in any state), the same answer:
  // the service's message names a status, which another project's caller must not learn.
  RunIdTaken: (e) => new Conflict({ message: `run id "${e.run_id}" is not available; choose another run_id, or leave it out for a generated one` }),
  CorruptCheckpoint: (e) => new Conflict({ message: e.message }),
  RunInterrupted: (e) => new Conflict({ message: e.message }),
  SynthesisFailed: (e) => new Conflict({ message: e.message }),
  PersistenceError: (e) => new Unavailable({ message: `the database could not be used: ${e.message}` }),
  LlmError: (e) => new Unavailable({ message: `the model could not be used: ${e.message}` })
}

export const fromService = (error: ServiceError): ApiError => (answers[error._tag] as (error: ServiceError) => ApiError)(error)

/** Maps every failure of `effect` to the API's errors. */
export const mapService = <A, E extends ServiceError, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, ApiError, R> =>
  Effect.mapError(effect, fromService)
