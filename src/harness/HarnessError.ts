import { HttpServerResponse } from "@effect/platform"
import { ParseResult, Schema } from "effect"

/**
 * The first field that did not decode (its top-level name, as a query parameter or flag is named) and
 * what is wrong with it, in one line. With `deepest`, the first of the most nested ones: what a value that
 * fits no member of a union got furthest into ("content.0.type", not "content: Expected string").
 */
export const describeParseError = (
  error: ParseResult.ParseError,
  options: { readonly deepest?: boolean } = {}
): { readonly param: string; readonly message: string } => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = options.deepest === true
    ? issues.reduce<typeof issues[number] | undefined>(
      (deepest, i) => (deepest === undefined || i.path.length > deepest.path.length ? i : deepest),
      undefined
    )
    : issues[0]
  const path = first?.path.join(".") ?? ""
  // A union of literals fails once per member: "Expected \"user\", actual \"x\"", "Expected \"team\", …". The
  // first alone would name one choice as if it were the only one, so the choices are put together.
  const choices = issues.filter((i) => i.path.join(".") === path).map((i) => /^Expected (.+), actual (.+)$/s.exec(i.message))
  const message = choices.length > 1 && choices.every((m) => m !== null)
    ? `Expected ${choices.map((m) => m![1]).join(" | ")}, actual ${choices[0]![2]}`
    : first?.message ?? "invalid"
  return { param: path, message: message.replace(/\s+/g, " ") }
}

/**
 * A request the harness answers with an OpenAI-style error, so every OpenAI client reports it as it
 * would report OpenAI's own: `{"error": {"message", "type", "param", "code"}}` with a 4xx (or 502/504
 * when the upstream failed).
 */
export class HarnessError extends Schema.TaggedError<HarnessError>()("HarnessError", {
  status: Schema.Int,
  type: Schema.String,
  code: Schema.NullOr(Schema.String),
  message: Schema.String,
  param: Schema.optional(Schema.String),
  retry_after_ms: Schema.optional(Schema.Number),
  /** Retrying cannot help, though the status may suggest it could: sent as `x-should-retry: false`. */
  final: Schema.optional(Schema.Boolean)
}) {
  static invalid(message: string, param?: string) {
    return new HarnessError({ status: 400, type: "invalid_request_error", code: null, message, ...(param ? { param } : {}) })
  }
  /** A 400 naming the first field that did not decode, as OpenAI's `param` does. */
  static fromParseError(error: ParseResult.ParseError) {
    const { message, param } = describeParseError(error)
    return HarnessError.invalid(`${param || "body"}: ${message}`, param || undefined)
  }
  /** The ledger is down: nothing is forwarded that could not be accounted for. */
  static ledgerUnavailable() {
    return new HarnessError({
      status: 503,
      type: "server_error",
      code: "ledger_unavailable",
      message: "the harness cannot reach its ledger database; requests are refused until it can account for them"
    })
  }
  static missingKey() {
    return new HarnessError({
      status: 401,
      type: "invalid_request_error",
      code: "missing_api_key",
      message: "no API key: send it as `Authorization: Bearer ahk_…` (create one with `autopilot harness key create`)"
    })
  }
  static wrongKey() {
    return new HarnessError({
      status: 401,
      type: "invalid_request_error",
      code: "invalid_api_key",
      message: "the API key is unknown, revoked or expired"
    })
  }
  static notAdmin() {
    return new HarnessError({
      status: 403,
      type: "permission_error",
      code: "admin_key_required",
      message: "this route needs an admin key (`autopilot harness key create --admin`)"
    })
  }
  static unknownModel(model: string, available: ReadonlyArray<string>) {
    return new HarnessError({
      status: 404,
      type: "invalid_request_error",
      code: "model_not_found",
      param: "model",
      message: `the model "${model}" does not exist here; use one of: ${available.join(", ")}`
    })
  }
  static tooLarge(limit: number) {
    return new HarnessError({
      status: 413,
      type: "invalid_request_error",
      code: "request_too_large",
      message: `the request body is over the harness limit of ${limit} bytes (max_request_bytes)`
    })
  }
  static refused(message: string) {
    return new HarnessError({ status: 403, type: "permission_error", code: "model_not_permitted", param: "model", message })
  }
  /** A spent budget whose action is stop: final, so clients must not retry it. */
  static budgetSpent(message: string) {
    return new HarnessError({ status: 429, type: "budget_exceeded", code: "budget_exceeded", message, final: true })
  }
  static rateLimited(retryAfterMs: number, limit: number) {
    return new HarnessError({
      status: 429,
      type: "requests",
      code: "rate_limit_exceeded",
      message: `rate limit of ${limit} requests per minute reached for this key; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
      retry_after_ms: retryAfterMs
    })
  }
  static notFound(path: string) {
    return new HarnessError({ status: 404, type: "invalid_request_error", code: "not_found", message: `no route ${path}` })
  }
}

export const toResponse = (error: HarnessError): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code } },
    {
      status: error.status,
      headers: {
        ...(error.retry_after_ms !== undefined
          ? { "retry-after": String(Math.ceil(error.retry_after_ms / 1000)), "retry-after-ms": String(Math.ceil(error.retry_after_ms)) }
          : {}),
        ...(error.final === true ? { "x-should-retry": "false" } : {})
      }
    }
  )
