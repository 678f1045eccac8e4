import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, FastCheck as fc, Option, Redacted, Schema, TestClock } from "effect"
import OpenAI from "openai"
import * as OpenAiCompat from "../../src/llm/OpenAiCompat.js"
import { sameOption } from "../assertOption.js"

const noon = DateTime.unsafeMake("2025-06-01T12:00:00Z")

/** The wait a response with these headers asks for, in milliseconds, or undefined for none. */
const waitOf = (headers: Record<string, string>, now: DateTime.Utc = noon) =>
  Option.getOrUndefined(Option.map(OpenAiCompat.retryAfter(new Headers(headers), now), Duration.toMillis))

/** The error the SDK throws for an error status with this body. */
const refusal = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  OpenAI.APIError.generate(status, body as object, undefined, new Headers(headers))

/** An error event in the middle of a stream: the SDK's APIError without a status. */
const event = (error: object) => new OpenAI.APIError(undefined, error, undefined, new Headers())

const classify = (error: unknown) => OpenAiCompat.classify(error, noon)

describe("OpenAiCompat", () => {
  describe("retryAfter", () => {
    it("reads retry-after-ms before Retry-After", () => {
      assert.strictEqual(waitOf({ "retry-after-ms": "1500", "retry-after": "9" }), 1500)
      assert.strictEqual(waitOf({ "retry-after-ms": "12.5" }), 12.5)
    })

    it("reads Retry-After as seconds", () => {
      assert.strictEqual(waitOf({ "retry-after": "7" }), 7000)
      assert.strictEqual(waitOf({ "retry-after": " 0.5 " }), 500)
      assert.strictEqual(waitOf({ "retry-after": "0" }), 0)
    })

    it.effect("reads Retry-After in each of the three HTTP-date forms, counted on the Effect Clock", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(DateTime.toEpochMillis(noon))
        const now = yield* DateTime.now
        assert.strictEqual(waitOf({ "retry-after": "Sun, 01 Jun 2025 12:00:07 GMT" }, now), 7000)
        assert.strictEqual(waitOf({ "retry-after": "Sunday, 01-Jun-25 12:00:30 GMT" }, now), 30_000)
        // asctime carries no zone and means GMT, whatever the machine's own zone is.
        assert.strictEqual(waitOf({ "retry-after": "Sun Jun  1 12:01:00 2025" }, now), 60_000)
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(waitOf({ "retry-after": "Sun, 01 Jun 2025 12:00:07 GMT" }, yield* DateTime.now), 2000)
      }))

    it("reads an RFC 850 two-digit year as the most recent past one when it would be over 50 years ahead", () => {
      // 80 would be 2080, more than 50 years ahead: it is 1980, long past, so no wait.
      assert.strictEqual(waitOf({ "retry-after": "Sunday, 01-Jun-80 12:00:00 GMT" }), 0)
      assert.strictEqual(waitOf({ "retry-after": "Monday, 01-Jun-26 12:00:00 GMT" }), 365 * 86_400_000)
    })

    it("asks for no wait for a date already past", () => {
      assert.strictEqual(waitOf({ "retry-after": "Sun, 01 Jun 2025 11:00:00 GMT" }), 0)
    })

    it("ignores what is none of the three forms, falling back from a bad retry-after-ms to Retry-After", () => {
      for (const value of ["", "soon", "-5", "1e3", "0x10", "7 seconds", "2025-06-01T12:00:07Z", "Sun, 01 Foo 2025 12:00:07 GMT", "1.5.2"]) {
        assert.isUndefined(waitOf({ "retry-after": value }), value)
      }
      assert.strictEqual(waitOf({ "retry-after-ms": "-5", "retry-after": "2" }), 2000)
      assert.strictEqual(waitOf({ "retry-after-ms": "soon", "retry-after": "2" }), 2000)
      assert.isUndefined(waitOf({ "retry-after": "9".repeat(400) }), "a wait too long to be a number")
      assert.isUndefined(waitOf({}))
    })

    const header = fc.oneof(
      fc.string(),
      fc.stringMatching(/^-?\d{1,12}(\.\d{1,3})?$/),
      fc.date({ min: new Date("1950-01-01"), max: new Date("2100-01-01") }).map((d) => d.toUTCString())
    )
    const instant = fc.date({ min: new Date("1970-01-01"), max: new Date("2100-01-01") }).map(DateTime.unsafeMake)

    it.prop("never asks for a negative or endless wait, whatever the headers and the time", [
      fc.option(header, { nil: undefined }),
      fc.option(header, { nil: undefined }),
      instant
    ], ([millis, seconds, now]) => {
      const headers = {
        ...(millis === undefined ? {} : { "retry-after-ms": millis }),
        ...(seconds === undefined ? {} : { "retry-after": seconds })
      }
      const wait = waitOf(headers, now)
      if (wait !== undefined) {
        assert.isAtLeast(wait, 0)
        assert.isTrue(Number.isFinite(wait))
      }
    })

    it.prop("waits until the date an IMF-fixdate names, to the second, or not at all once it is past", [instant, instant], ([at, now]) => {
      const date = new Date(DateTime.toEpochMillis(at)).toUTCString()
      const whole = Math.floor(DateTime.toEpochMillis(at) / 1000) * 1000
      assert.strictEqual(waitOf({ "retry-after": date }, now), Math.max(0, whole - DateTime.toEpochMillis(now)))
    })

    it.prop("waits exactly the seconds Retry-After gives", [fc.nat({ max: 10_000_000 })], ([seconds]) => {
      assert.strictEqual(waitOf({ "retry-after": String(seconds) }), seconds * 1000)
    })
  })

  describe("scrubber", () => {
    const key = "sk-test-0123456789abcdef"
    const scrub = OpenAiCompat.scrubber(Redacted.make(key))

    it("replaces every occurrence of the key", () => {
      assert.strictEqual(
        scrub(`Incorrect API key provided: Bearer ${key}; again ${key}`),
        "Incorrect API key provided: Bearer [redacted]; again [redacted]"
      )
    })

    it("leaves a placeholder key under 8 characters alone, so messages are not garbled", () => {
      assert.strictEqual(OpenAiCompat.scrubber(Redacted.make("ollama"))("ollama is not running"), "ollama is not running")
    })

    it("never lets a key re-form across the mask, even a key made of the mask's own characters", () => {
      assert.notInclude(OpenAiCompat.scrubber(Redacted.make("]abcdefg"))("]abcdefgabcdefg"), "]abcdefg")
      assert.notInclude(OpenAiCompat.scrubber(Redacted.make("redacted"))("key: redacted"), "redacted")
      assert.notInclude(OpenAiCompat.scrubber(Redacted.make("d][redac"))("d][redacd][redac"), "d][redac")
    })

    // Keys from a small alphabet holding the mask's characters, in texts made of pieces of the key: the
    // shapes in which a key could re-form once an occurrence is masked.
    const tricky = fc.string({ unit: fc.constantFrom("[", "]", "r", "e", "d", "a", "c", "t", "x"), minLength: 8, maxLength: 10 })
    const keyAndText = fc.oneof(tricky, fc.string({ minLength: 8 })).chain((key) =>
      fc.tuple(
        fc.constant(key),
        fc.array(
          fc.oneof(fc.constant(key), fc.string(), fc.nat(key.length).map((i) => key.slice(i)), fc.nat(key.length).map((i) => key.slice(0, i))),
          { maxLength: 8 }
        ).map((pieces) => pieces.join(""))
      )
    )

    it.prop("removes the key wherever it appears, whatever the key and the text around it", [keyAndText], ([[key, text]]) => {
      assert.notInclude(OpenAiCompat.scrubber(Redacted.make(key))(text), key)
    }, { fastCheck: { numRuns: 2000 } })

    it.prop("changes nothing in text without the key", [fc.string({ minLength: 8 }), fc.string()], ([key, text]) => {
      fc.pre(!text.includes(key))
      assert.strictEqual(OpenAiCompat.scrubber(Redacted.make(key))(text), text)
    })
  })

  describe("oneLine", () => {
    it("puts an HTML error page on one line, cut to the length asked", () => {
      const page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n" + "x".repeat(1000) + "</body></html>"
      const line = OpenAiCompat.oneLine(page, 60)
      assert.strictEqual(line.length, 60)
      assert.isTrue(line.startsWith("<html> <head><title>502 Bad Gateway</title></head> <body> x"))
      assert.isTrue(line.endsWith("…"))
    })

    it.prop("never breaks a line and never exceeds its length", [fc.string(), fc.integer({ min: 1, max: 600 })], ([text, max]) => {
      const line = OpenAiCompat.oneLine(text, max)
      assert.isAtMost(line.length, max)
      assert.notMatch(line, /[\r\n]/)
    })
  })

  describe("classify", () => {
    it("sorts statuses: 408, 409, 429 and 5xx are transient; other refusals are final", () => {
      for (const status of [408, 409, 429, 500, 502, 503]) assert.strictEqual(classify(refusal(status, {})).verdict, "transient", String(status))
      for (const status of [400, 401, 403, 404, 422]) assert.strictEqual(classify(refusal(status, {})).verdict, "final", String(status))
    })

    it("makes an exhausted quota, or a server saying x-should-retry: false, final whatever the status", () => {
      assert.strictEqual(classify(refusal(429, { error: { message: "quota", code: "insufficient_quota" } })).verdict, "final")
      assert.strictEqual(classify(refusal(503, { error: { message: "maintenance" } }, { "x-should-retry": "false" })).verdict, "final")
    })

    it("names a proxy's spent budget, by type or by code, in a status or in a stream's error event", () => {
      assert.strictEqual(classify(refusal(400, { error: { message: "Budget has been exceeded!", type: "budget_exceeded" } })).verdict, "budget_exhausted")
      assert.strictEqual(classify(refusal(429, { error: { message: "spent", code: "budget_exceeded" } })).verdict, "budget_exhausted")
      assert.strictEqual(classify(event({ message: "spent", type: "budget_exceeded" })).verdict, "budget_exhausted")
    })

    it("carries the wait only on a transient failure", () => {
      const slow = classify(refusal(429, { error: { message: "slow down" } }, { "retry-after": "3" }))
      sameOption(Option.map(slow.retryAfter, Duration.toMillis), Option.some(3000))
      const quota = classify(refusal(429, { error: { message: "quota", code: "insufficient_quota" } }, { "retry-after": "3" }))
      assert.isTrue(Option.isNone(quota.retryAfter))
    })

    it("keeps the body's fields only where they are what OpenAI's are: a number code as its digits, a number type not at all", () => {
      const failure = classify(refusal(400, { error: { message: "bad request", type: 123, code: 400, param: ["messages"] } }))
      assert.strictEqual(failure.kind, "status")
      assert.strictEqual(failure.status, 400)
      assert.strictEqual(failure.message, "400 bad request")
      assert.isUndefined(failure.type)
      assert.strictEqual(failure.code, "400")
      assert.isUndefined(failure.param)
      const named = classify(refusal(400, { error: { message: "no", type: "invalid_request_error", code: "invalid_value", param: "max_tokens" } }))
      assert.deepStrictEqual([named.type, named.code, named.param], ["invalid_request_error", "invalid_value", "max_tokens"])
    })

    it("sorts an error body that is not OpenAI's: text, HTML, an empty body, a bare string", () => {
      const html = OpenAI.APIError.generate(400, undefined, "<html><body>Bad Request</body></html>", new Headers())
      assert.strictEqual(classify(html).message, "400 <html><body>Bad Request</body></html>")
      assert.strictEqual(classify(OpenAI.APIError.generate(400, undefined, undefined, new Headers())).message, "400 status code (no body)")
      assert.strictEqual(classify(refusal(400, { error: "nope" })).message, `400 "nope"`)
      for (const error of [html, refusal(400, { error: "nope" })]) {
        assert.strictEqual(classify(error).verdict, "final")
        assert.isUndefined(classify(error).type)
      }
    })

    it("makes a stream's error event transient, unless the context is too long or the quota spent", () => {
      const overloaded = classify(event({ message: "overloaded" }))
      assert.strictEqual(overloaded.kind, "event")
      assert.strictEqual(overloaded.verdict, "transient")
      assert.strictEqual(classify(event({ message: "too long", code: "context_length_exceeded" })).verdict, "final")
      assert.strictEqual(classify(event({ message: "quota", code: "insufficient_quota" })).verdict, "final")
    })

    it("names the socket error behind a failed connection, and makes it transient", () => {
      const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" })
      const failure = classify(new OpenAI.APIConnectionError({ cause: new Error("fetch failed", { cause: socket }) }))
      assert.deepStrictEqual([failure.kind, failure.verdict, failure.message], ["unreachable", "transient", "connect ECONNREFUSED 127.0.0.1:9"])
      const reset = classify(new OpenAI.APIConnectionError({ cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) }))
      assert.strictEqual(reset.message, "other side closed (UND_ERR_SOCKET)")
    })

    it("sorts a timeout, a base URL that is no URL, and a body that could not be read", () => {
      const timeout = classify(new OpenAI.APIConnectionTimeoutError())
      assert.deepStrictEqual([timeout.kind, timeout.verdict], ["timeout", "transient"])
      const url = classify(Object.assign(new TypeError("Invalid URL"), { code: "ERR_INVALID_URL" }))
      assert.deepStrictEqual([url.kind, url.verdict], ["invalid_url", "final"])
      const truncated = classify(new SyntaxError("Unexpected end of JSON input"))
      assert.deepStrictEqual([truncated.kind, truncated.verdict, truncated.message], ["unreadable", "transient", "Unexpected end of JSON input"])
    })

    it.prop("makes an error status transient exactly when its status is retryable and nothing says otherwise", [
      fc.integer({ min: 400, max: 599 }),
      fc.constantFrom(undefined, "insufficient_quota", "budget_exceeded", "rate_limit_exceeded"),
      fc.boolean()
    ], ([status, code, shouldNotRetry]) => {
      const failure = classify(refusal(status, { error: { message: "m", code } }, shouldNotRetry ? { "x-should-retry": "false" } : {}))
      const transient = OpenAiCompat.retryableStatus(status) && !shouldNotRetry && code !== "insufficient_quota" && code !== "budget_exceeded"
      assert.strictEqual(failure.verdict === "transient", transient)
      assert.strictEqual(failure.verdict === "budget_exhausted", code === "budget_exceeded")
    })
  })

  describe("client", () => {
    it.scoped("never retries on its own, and never sends an organization or project taken from the environment", () =>
      Effect.gen(function*() {
        yield* Effect.acquireRelease(
          Effect.sync(() => Object.assign(process.env, { OPENAI_ORG_ID: "org-from-env", OPENAI_PROJECT_ID: "proj-from-env" })),
          () =>
            Effect.sync(() => {
              delete process.env.OPENAI_ORG_ID
              delete process.env.OPENAI_PROJECT_ID
            })
        )
        const client = OpenAiCompat.client({ baseURL: "http://127.0.0.1:1/v1", apiKey: Redacted.make("k"), timeout: "30 seconds" })
        assert.strictEqual(client.maxRetries, 0)
        assert.strictEqual(client.timeout, 30_000)
        assert.isNull(client.organization)
        assert.isNull(client.project)
      }))
  })

  describe("what a completion is", () => {
    const isCompletion = Schema.is(OpenAiCompat.ChatCompletion)
    const isChunk = Schema.is(OpenAiCompat.ChatCompletionChunk)

    it("is a body with a choice that has a message; not a page, an error object, or no choices", () => {
      assert.isTrue(isCompletion({ choices: [{ message: { role: "assistant", content: "hi" } }], model: "m", extra: 1 }))
      for (const body of ["<html>Welcome to nginx</html>", { error: { message: "no such model" } }, { choices: [] }, { choices: [{}] }, null]) {
        assert.isFalse(isCompletion(body), JSON.stringify(body))
      }
    })

    it("streams as chunks, the usage chunk without choices among them; a delta's text must be text", () => {
      assert.isTrue(isChunk({ choices: [{ index: 0, delta: { content: "hi" }, finish_reason: null }] }))
      assert.isTrue(isChunk({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } }))
      for (const chunk of [{ foo: 1 }, "hello", { choices: [{ delta: { content: 42 } }] }]) assert.isFalse(isChunk(chunk), JSON.stringify(chunk))
    })

    it("reads usage only with both token counts, keeping the fields it does not read", () => {
      sameOption(
        OpenAiCompat.usageOf({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }),
        Option.some({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
      )
      for (const usage of [undefined, null, {}, { prompt_tokens: 3 }, { prompt_tokens: -1, completion_tokens: 2 }, { prompt_tokens: "3", completion_tokens: 2 }]) {
        assert.isTrue(Option.isNone(OpenAiCompat.usageOf(usage)), JSON.stringify(usage))
      }
    })
  })
})
