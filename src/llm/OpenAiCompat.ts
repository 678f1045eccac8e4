import { DateTime, Duration, Option, Redacted, Schema } from "effect"
import OpenAI from "openai"

/**
 * What talking to an OpenAI-compatible `/chat/completions` takes, whoever talks: the runtime's client
 * (OpenAiLlm) and the harness forwarding to its upstreams. One client setup, one sorting of failures, one
 * reading of Retry-After, one scrubbing of keys, one idea of what a completion is.
 */

export interface ClientOptions {
  readonly baseURL: string
  readonly apiKey: Redacted.Redacted<string>
  /** How long an answer may take to start; the SDK's own (ten minutes) when absent. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How requests are sent; the in-process harness answers them without a socket. */
  readonly fetch?: typeof globalThis.fetch | undefined
}

export const client = (options: ClientOptions): OpenAI =>
  new OpenAI({
    baseURL: options.baseURL,
    apiKey: Redacted.value(options.apiKey),
    // Retries follow one policy, the caller's (the runtime's Schedule, the harness's client), not two stacked.
    maxRetries: 0,
    ...(options.timeout === undefined ? {} : { timeout: Duration.toMillis(options.timeout) }),
    // The SDK would otherwise read these from the environment and send them to whatever baseURL is.
    organization: null,
    project: null,
    // OPENAI_LOG would make the SDK print to stdout, into the middle of --format jsonl or a server's log.
    logLevel: "off",
    ...(options.fetch ? { fetch: options.fetch } : {})
  })

const mask = "[redacted]"

/** A character `text` does not hold. */
const charNotIn = (text: string) => {
  let code = 42 // "*"
  while (text.includes(String.fromCharCode(code))) code++
  return String.fromCharCode(code)
}

/**
 * Takes the key out of text that may quote it: providers echo a wrong key in their 401s. Placeholder keys
 * ("ollama", "none") are no secret, and blanking short strings would garble messages, so keys under 8
 * characters are left in.
 */
export const scrubber = (apiKey: Redacted.Redacted<string>): (text: string) => string => {
  const key = Redacted.value(apiKey)
  if (key.length < 8) return (text) => text
  // Only a key holding a bracket could re-form across the mask's edge with the text beside it, and only
  // "redacted" lies inside it: such keys get a mask of a character they lack, which nothing can re-form.
  const replacement = /[[\]]/.test(key) || mask.includes(key) ? charNotIn(key).repeat(mask.length) : mask
  return (text) => text.replaceAll(key, replacement)
}

/** Text for one line of a message, a ledger row or a log: an HTML error page can be kilobytes over many lines. */
export const oneLine = (text: string, max = 500): string => {
  const line = text.replace(/\s+/g, " ").trim()
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

const decimal = /^\d+(?:\.\d+)?$/
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
const clock = "(?<hours>\\d{2}):(?<minutes>\\d{2}):(?<seconds>\\d{2})"
/** The three forms of an HTTP-date (RFC 9110 §5.6.7), all in GMT: not `Date.parse`, which reads the last in local time. */
const httpDates = [
  // IMF-fixdate, what servers send: Sun, 06 Nov 1994 08:49:37 GMT
  new RegExp(`^[A-Z][a-z]{2}, (?<day>\\d{2}) (?<month>[A-Z][a-z]{2}) (?<year>\\d{4}) ${clock} GMT$`),
  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
  new RegExp(`^[A-Z][a-z]+, (?<day>\\d{2})-(?<month>[A-Z][a-z]{2})-(?<year>\\d{2}) ${clock} GMT$`),
  // asctime: Sun Nov  6 08:49:37 1994
  new RegExp(`^[A-Z][a-z]{2} (?<month>[A-Z][a-z]{2}) (?<day>[ \\d]\\d) ${clock} (?<year>\\d{4})$`)
]

export const parseHttpDate = (value: string, now: DateTime.Utc): Option.Option<DateTime.Utc> => {
  for (const form of httpDates) {
    const parts = form.exec(value)?.groups
    if (parts === undefined) continue
    const month = months.indexOf(parts["month"]!)
    if (month < 0) return Option.none()
    let year = Number(parts["year"])
    if (parts["year"]!.length === 2) {
      // A two-digit year more than 50 years ahead is the most recent past one with those digits.
      const thisYear = DateTime.getPartUtc(now, "year")
      year += thisYear - (thisYear % 100)
      if (year > thisYear + 50) year -= 100
    }
    return DateTime.make({
      year,
      month: month + 1,
      day: Number(parts["day"]),
      hours: Number(parts["hours"]),
      minutes: Number(parts["minutes"]),
      seconds: Number(parts["seconds"])
    })
  }
  return Option.none()
}

/**
 * How long a server asked to be left alone: `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or as
 * an HTTP-date, counted from `now`. Never negative (a date in the past is no wait); a malformed value is none.
 */
export const retryAfter = (headers: Headers, now: DateTime.Utc): Option.Option<Duration.Duration> => {
  const waitOf = (millis: number) => (Number.isFinite(millis) ? Option.some(Duration.millis(Math.max(0, millis))) : Option.none())
  const millis = headers.get("retry-after-ms")?.trim()
  if (millis !== undefined && decimal.test(millis)) return waitOf(Number(millis))
  const value = headers.get("retry-after")?.trim()
  if (value === undefined || value === "") return Option.none()
  if (decimal.test(value)) return waitOf(Number(value) * 1000)
  return Option.flatMap(parseHttpDate(value, now), (at) => waitOf(DateTime.distance(now, at)))
}

/** The statuses a server may answer differently next time; every other refusal stands. */
export const retryableStatus = (status: number): boolean => status === 408 || status === 409 || status === 429 || status >= 500

/** `transient`: worth retrying. `final`: not. `budget_exhausted`: a proxy's spend limit (LiteLLM's, the harness's). */
export type Verdict = "transient" | "final" | "budget_exhausted"

/** An OpenAI-compatible server's failure, sorted; each caller words it for its own audience. */
export interface Failure {
  /**
   * `timeout`: no answer in time. `unreachable`: no connection. `invalid_url`: the base URL is not one.
   * `status`: an error status. `event`: an error event in the middle of a stream, which is how proxies relay
   * an upstream failing after the answer began. `unreadable`: the answer could not be read (a connection
   * reset mid-body, a body that is not JSON).
   */
  readonly kind: "timeout" | "unreachable" | "invalid_url" | "status" | "event" | "unreadable"
  readonly verdict: Verdict
  /** The server's message for `status` and `event` ("429 slow down"), the root cause otherwise; not scrubbed. */
  readonly message: string
  readonly status?: number | undefined
  /** The error body's fields, when they are what OpenAI's are (a numeric code as its digits): bodies vary. */
  readonly type?: string | undefined
  readonly code?: string | undefined
  readonly param?: string | undefined
  /** Only on a transient failure: a final one is not retried after any wait. */
  readonly retryAfter: Option.Option<Duration.Duration>
}

/** The innermost cause: the SDK wraps undici's "fetch failed", which wraps the socket error that says why. */
export const rootCause = (error: unknown): string => {
  let current = error
  while (current instanceof Error && current.cause instanceof Error) current = current.cause
  if (!(current instanceof Error)) return String(current)
  const code = (current as { code?: unknown }).code
  return typeof code === "string" && !current.message.includes(code) ? `${current.message} (${code})` : current.message
}

const text = (value: unknown) => (typeof value === "string" ? value : undefined)

export const classify = (error: unknown, now: DateTime.Utc): Failure => {
  const plain = (kind: Failure["kind"], message: string, verdict: Verdict): Failure => ({ kind, verdict, message, retryAfter: Option.none() })
  if (error instanceof OpenAI.APIConnectionTimeoutError) return plain("timeout", "timed out", "transient")
  if (error instanceof OpenAI.APIConnectionError) return plain("unreachable", rootCause(error), "transient")
  if (error instanceof OpenAI.APIError) {
    const fields = {
      type: text(error.type),
      code: typeof error.code === "number" ? String(error.code) : text(error.code),
      param: text(error.param)
    }
    const verdict = (transient: boolean): Verdict =>
      // The harness and LiteLLM both name a spent budget so; retrying cannot help, and a run halts on it.
      fields.type === "budget_exceeded" || fields.code === "budget_exceeded"
        ? "budget_exhausted"
        // An exhausted quota (a 429 too) will not succeed on retry.
        : fields.code === "insufficient_quota" || !transient
        ? "final"
        : "transient"
    if (error.status === undefined || error.headers === undefined) {
      return { kind: "event", message: error.message, ...fields, verdict: verdict(fields.code !== "context_length_exceeded"), retryAfter: Option.none() }
    }
    const decided = verdict(retryableStatus(error.status) && error.headers.get("x-should-retry") !== "false")
    return {
      kind: "status",
      status: error.status,
      message: error.message,
      ...fields,
      verdict: decided,
      retryAfter: decided === "transient" ? retryAfter(error.headers, now) : Option.none()
    }
  }
  if ((error as { code?: unknown } | null)?.code === "ERR_INVALID_URL") return plain("invalid_url", "the base URL is not a valid URL", "final")
  // Anything else comes from reading the response: a connection reset mid-body, a truncated JSON.
  return plain("unreadable", rootCause(error), "transient")
}

const count = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/** Token counts as a server reports them; without both, the token and dollar budgets could not be charged. */
export const Usage = Schema.Struct({ prompt_tokens: count, completion_tokens: count })
export type Usage = typeof Usage.Type

/** The usage a server reported, with every other field it sent (`total_tokens`, cache details) kept in its order. */
export const usageOf: (usage: unknown) => Option.Option<Usage> = Schema.decodeUnknownOption(Usage, {
  onExcessProperty: "preserve",
  propertyOrder: "original"
})

/**
 * What makes an answer a chat completion: a choice with a message. Only that is required; the rest is read
 * where it is used and relayed as it came, since servers differ in what else they send.
 */
export const ChatCompletion = Schema.Struct({
  // minItems rather than NonEmptyArray: `[]` is then an error about `choices`, not "choices.0 is missing".
  choices: Schema.Array(Schema.Struct({ message: Schema.Object })).pipe(Schema.minItems(1, { message: () => "must hold at least one choice" })),
  model: Schema.optional(Schema.String),
  usage: Schema.optional(Schema.Unknown)
})
export type ChatCompletion = typeof ChatCompletion.Type

/**
 * One chunk of a streamed completion; the usage chunk at the end, and Azure's first, have no choices. The
 * delta is checked as far as it is read: the harness counts its characters when usage never comes.
 */
export const ChatCompletionChunk = Schema.Struct({
  choices: Schema.Array(Schema.Struct({
    delta: Schema.optional(Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        function: Schema.optional(Schema.Struct({ arguments: Schema.optional(Schema.NullOr(Schema.String)) }))
      }))))
    })),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  model: Schema.optional(Schema.String),
  usage: Schema.optional(Schema.Unknown)
})
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type
