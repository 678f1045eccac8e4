import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Exit, Fiber, Layer, Redacted, Stream, TestClock } from "effect"
import type { LlmError } from "../../src/domain/Errors.js"
import { Llm, type LlmChunk, type LlmRequest } from "../../src/llm/Llm.js"
import { OpenAiLlm } from "../../src/llm/OpenAiLlm.js"
import * as TestServer from "./openai-test-server.js"

const apiKey = "sk-test-0123456789abcdef"

const request = (overrides: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [{ role: "system", content: "be brief" }, { role: "user", content: "build the thing" }],
  tools: [],
  purpose: "act",
  metadata: { run_id: "run-1", iteration: 1, criteria: 2 },
  ...overrides
})

const calculator = {
  name: "calculator",
  description: "evaluates arithmetic",
  parameters: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] }
}

const llmFor = (server: TestServer.TestServer, model = "gpt-4o-mini") =>
  OpenAiLlm.make({ baseURL: server.baseURL, apiKey: Redacted.make(apiKey), model })

/** Real sockets answer in real time: wait for them on the host's clock, whatever clock the test runs on. */
const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

const waitUntil = (condition: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 6000; i++) {
      if (yield* condition) return
      yield* realSleep(5)
    }
    assert.fail(`timed out waiting until ${what}`)
  })

const received = (server: TestServer.TestServer, n: number) =>
  waitUntil(Effect.map(server.requests, (rs) => rs.length >= n), `the server received ${n} request(s)`)

const onlyRequest = (server: TestServer.TestServer) =>
  Effect.map(server.requests, (rs) => {
    assert.strictEqual(rs.length, 1)
    return rs[0]!
  })

const assertNoKey = (error: LlmError) => assert.notInclude(error.message, apiKey)

/** A port that was just in use and is not any more: connecting to it is refused. */
const closedPort = Effect.async<number>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("OpenAiLlm", () => {
  describe("complete", () => {
    it.scoped("returns the content, the reported usage and the model that answered", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{
          content: "Hello there.",
          usage: { prompt_tokens: 120, completion_tokens: 30 },
          model: "gpt-4o-mini-2024-07-18"
        }])
        const response = yield* (yield* llmFor(server)).complete(request())
        assert.deepStrictEqual(response, {
          content: "Hello there.",
          tool_calls: [],
          usage: { input_tokens: 120, output_tokens: 30 },
          model: "gpt-4o-mini-2024-07-18"
        })
      }))

    it.scoped("sends the messages to /v1/chat/completions with the key as a bearer token and no tools when there are none", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        yield* (yield* llmFor(server)).complete(request())
        const sent = yield* onlyRequest(server)
        assert.strictEqual(sent.method, "POST")
        assert.strictEqual(sent.path, "/v1/chat/completions")
        assert.strictEqual(sent.headers.authorization, `Bearer ${apiKey}`)
        assert.deepStrictEqual(sent.body, {
          model: "gpt-4o-mini",
          messages: [{ role: "system", content: "be brief" }, { role: "user", content: "build the thing" }]
        })
      }))

    it.scoped("asks for the request's model over the configured one", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        const response = yield* (yield* llmFor(server, "default-model")).complete(request({ model: "llama-4-scout" }))
        assert.strictEqual((yield* onlyRequest(server)).body.model, "llama-4-scout")
        assert.strictEqual(response.model, "llama-4-scout")
      }))

    it.scoped("quotes a tool message without a tool_call_id (an older record) as a user message, since OpenAI refuses one", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        yield* (yield* llmFor(server)).complete(request({ messages: [{ role: "tool", content: "42" }] }))
        assert.deepStrictEqual((yield* onlyRequest(server)).body.messages, [{ role: "user", content: "Tool result:\n42" }])
      }))

    it.scoped("caps the output with max_completion_tokens below the ceiling, and leaves a larger budget out", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "a" }, { content: "b" }, { content: "c" }, { content: "d" }])
        const llm = yield* llmFor(server)
        yield* llm.complete(request({ maxOutputTokens: 1000 }))
        yield* llm.complete(request({ maxOutputTokens: 2_000_000 }))
        yield* llm.complete(request({ maxOutputTokens: 0 }))
        const legacy = yield* OpenAiLlm.make({
          baseURL: server.baseURL,
          apiKey: Redacted.make(apiKey),
          model: "m",
          maxTokensParameter: "max_tokens",
          outputTokenCeiling: 100_000
        })
        yield* legacy.complete(request({ maxOutputTokens: 50_000 }))
        const bodies = (yield* server.requests).map((r) => r.body)
        assert.strictEqual(bodies[0].max_completion_tokens, 1000)
        assert.notProperty(bodies[1], "max_completion_tokens")
        assert.notProperty(bodies[1], "max_tokens")
        assert.strictEqual(bodies[2].max_completion_tokens, 1)
        assert.strictEqual(bodies[3].max_tokens, 50_000)
        assert.notProperty(bodies[3], "max_completion_tokens")
      }))

    it.scoped("sends the temperature and the output schema as a json_schema response_format, non-strict, its name made one OpenAI takes", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "{}" }, { content: "{}" }, { content: "{}" }])
        const llm = yield* llmFor(server)
        const schema = { type: "object", properties: { severity: { type: "string", enum: ["low", "high"] } }, required: ["severity"] }
        yield* llm.complete(request({ temperature: 0.2, output_schema: { name: "support_triage.classify", schema } }))
        yield* llm.complete(request({ temperature: 0, output_schema: { name: "x".repeat(80), schema } }))
        yield* llm.complete(request({ output_schema: { name: "", schema } }))
        const bodies = (yield* server.requests).map((r) => r.body)
        assert.strictEqual(bodies[0].temperature, 0.2)
        assert.deepStrictEqual(bodies[0].response_format, {
          type: "json_schema",
          json_schema: { name: "support_triage_classify", schema, strict: false }
        })
        assert.strictEqual(bodies[1].temperature, 0)
        assert.strictEqual(bodies[1].response_format.json_schema.name, "x".repeat(64))
        assert.notProperty(bodies[2], "temperature")
        assert.strictEqual(bodies[2].response_format.json_schema.name, "output")
      }))

    it.scoped("leaves temperature and response_format out when the request has neither", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        yield* (yield* llmFor(server)).complete(request({ maxOutputTokens: 100 }))
        const body = (yield* onlyRequest(server)).body
        assert.notProperty(body, "temperature")
        assert.notProperty(body, "response_format")
      }))

    it.scoped("fails without retrying, naming the provider, when the answer reports no usage", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "free?", usage: null }])
        const error = yield* Effect.flip((yield* llmFor(server)).complete(request()))
        assert.isFalse(error.transient)
        assert.include(error.message, "no token usage")
        assert.include(error.message, new URL(server.baseURL).host)
      }))
  })

  describe("tool calls", () => {
    it.scoped("sends tools as function specs with their JSON Schema parameters", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        yield* (yield* llmFor(server)).complete(request({ tools: [calculator] }))
        assert.deepStrictEqual((yield* onlyRequest(server)).body.tools, [{
          type: "function",
          function: { name: calculator.name, description: calculator.description, parameters: calculator.parameters }
        }])
      }))

    it.scoped("parses the arguments; malformed ones stay the raw string, empty ones are no arguments", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{
          toolCalls: [
            { id: "call_1", name: "calculator", arguments: "{\"expression\":\"6*7\"}" },
            { id: "call_2", name: "calculator", arguments: "{\"expression\":" },
            { id: "call_3", name: "list_files", arguments: "" }
          ]
        }])
        const response = yield* (yield* llmFor(server)).complete(request({ tools: [calculator] }))
        assert.strictEqual(response.content, "")
        assert.deepStrictEqual(response.tool_calls, [
          { id: "call_1", name: "calculator", arguments: { expression: "6*7" } },
          { id: "call_2", name: "calculator", arguments: "{\"expression\":" },
          { id: "call_3", name: "list_files", arguments: {} }
        ])
      }))
  })

  describe("tool turns", () => {
    const turns: LlmRequest["messages"] = [
      { role: "user", content: "what is 6*7, and what is in notes.md?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "calculator", arguments: "{\"expression\":\"6*7\"}" } },
          { id: "call_2", type: "function", function: { name: "read_file", arguments: "{\"path\":\"notes.md\"}" } }
        ]
      },
      { role: "tool", tool_call_id: "call_1", content: "42" },
      { role: "tool", tool_call_id: "call_2", content: "no such file" },
      { role: "assistant", content: "Let me check once more.", tool_calls: [{ id: "call_3", type: "function", function: { name: "list_files", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "call_3", content: "[]" },
      { role: "user", content: "continue" }
    ]
    // On the wire, the same turns but for one: the assistant turn that only called tools says `content: null`.
    const onTheWire = turns.map((m, i) => (i === 1 ? { ...m, content: null } : m))

    it.scoped("sends assistant tool_calls (content null when the turn said nothing else) and tool messages with their tool_call_id, in calls and streams", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "42, and no notes." }, { content: "42, and no notes." }])
        const llm = yield* llmFor(server)
        yield* llm.complete(request({ messages: turns }))
        yield* Stream.runDrain(llm.stream(request({ messages: turns })))
        const [sent, streamed] = yield* server.requests
        assert.deepStrictEqual(sent!.body.messages, onTheWire)
        assert.deepStrictEqual(streamed!.body.messages, onTheWire)
      }))
  })

  describe("stream", () => {
    it.scoped("yields the text as deltas, then one Done with the assembled response and the final usage", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{
          content: "Step one: add the numbers.",
          toolCalls: [
            { id: "call_a", name: "calculator", arguments: "{\"expression\":\"1+2\"}" },
            { id: "call_b", name: "calculator", arguments: "{\"expression\":\"3*4\"}" }
          ],
          usage: { prompt_tokens: 200, completion_tokens: 40 },
          model: "gpt-4o-mini-2024-07-18"
        }])
        const chunks = Chunk.toReadonlyArray(
          yield* Stream.runCollect((yield* llmFor(server)).stream(request({ tools: [calculator] })))
        )
        const deltas = chunks.slice(0, -1)
        assert.isAbove(deltas.length, 1)
        assert.isTrue(deltas.every((c) => c._tag === "Delta"))
        assert.strictEqual(deltas.map((c) => (c as Extract<LlmChunk, { _tag: "Delta" }>).text).join(""), "Step one: add the numbers.")
        assert.deepStrictEqual(chunks.at(-1), {
          _tag: "Done",
          response: {
            content: "Step one: add the numbers.",
            tool_calls: [
              { id: "call_a", name: "calculator", arguments: { expression: "1+2" } },
              { id: "call_b", name: "calculator", arguments: { expression: "3*4" } }
            ],
            usage: { input_tokens: 200, output_tokens: 40 },
            model: "gpt-4o-mini-2024-07-18"
          }
        })
        const sent = (yield* onlyRequest(server)).body
        assert.strictEqual(sent.stream, true)
        assert.deepStrictEqual(sent.stream_options, { include_usage: true })
      }))

    it.scoped("streams with the temperature and the response_format a call would send", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "{\"a\": 1}" }])
        const schema = { type: "object", properties: { a: { type: "integer" } } }
        yield* Stream.runDrain((yield* llmFor(server)).stream(request({ temperature: 0.5, output_schema: { name: "a", schema } })))
        const sent = (yield* onlyRequest(server)).body
        assert.strictEqual(sent.temperature, 0.5)
        assert.deepStrictEqual(sent.response_format, { type: "json_schema", json_schema: { name: "a", schema, strict: false } })
      }))

    it.scoped("fails without retrying when the stream ends with no usage", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "free?", usage: null }])
        const error = yield* Effect.flip(Stream.runDrain((yield* llmFor(server)).stream(request())))
        assert.isFalse(error.transient)
        assert.include(error.message, "stream_options.include_usage")
      }))

    it.scoped("fails a refused stream like a refused call: 500 is transient, 400 is not", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([
          { status: 500, error: { message: "upstream exploded" } },
          { status: 400, error: { message: "messages must not be empty" } }
        ])
        const llm = yield* llmFor(server)
        const first = yield* Effect.flip(Stream.runDrain(llm.stream(request())))
        const second = yield* Effect.flip(Stream.runDrain(llm.stream(request())))
        assert.isTrue(first.transient)
        assert.include(first.message, "upstream exploded")
        assert.isFalse(second.transient)
        assert.include(second.message, "messages must not be empty")
      }))
  })

  describe("errors", () => {
    it.scoped("500 is transient, with the provider's message", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ status: 500, error: { message: "upstream exploded", type: "server_error" } }])
        const error = yield* Effect.flip((yield* llmFor(server)).complete(request()))
        assert.strictEqual(error._tag, "LlmError")
        assert.isTrue(error.transient)
        assert.include(error.message, "500 upstream exploded")
        // One request: the SDK's own retries are off.
        assert.lengthOf(yield* server.requests, 1)
      }))

    it.scoped("408, 409 and 503 are transient; 400, 401, 403, 404 and 422 are not", () =>
      Effect.gen(function*() {
        const statuses = [408, 409, 503, 400, 401, 403, 404, 422]
        const server = yield* TestServer.make(statuses.map((status) => ({ status, error: { message: `said ${status}` } })))
        const llm = yield* llmFor(server)
        const errors = yield* Effect.forEach(statuses, () => Effect.flip(llm.complete(request())))
        assert.deepStrictEqual(errors.map((e) => e.transient), [true, true, true, false, false, false, false, false])
        errors.forEach((e, i) => assert.include(e.message, `said ${statuses[i]}`))
      }))

    it.scoped("400 fails at once, not transient, with the provider's message and model", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{
          status: 400,
          error: { message: "The model `gpt-9` does not exist", code: "model_not_found" }
        }])
        const error = yield* Effect.flip((yield* llmFor(server)).complete(request({ model: "gpt-9" })))
        assert.isFalse(error.transient)
        assert.include(error.message, "The model `gpt-9` does not exist")
        assert.include(error.message, "model gpt-9 at 127.0.0.1:")
      }))

    it.scoped("never puts the key in an error, even when the provider echoes it", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([
          (sent) => ({ status: 401, error: { message: `Incorrect API key provided: ${sent.headers.authorization}` } }),
          (sent) => ({ status: 500, error: { message: `upstream rejected ${sent.headers.authorization}` } })
        ])
        const llm = yield* llmFor(server)
        const unauthorized = yield* Effect.flip(llm.complete(request()))
        const failed = yield* Effect.flip(Stream.runDrain(llm.stream(request())))
        assert.isFalse(unauthorized.transient)
        assert.include(unauthorized.message, "Incorrect API key provided: Bearer [redacted]")
        assertNoKey(unauthorized)
        assertNoKey(failed)
        assert.notInclude(JSON.stringify(unauthorized), apiKey)
      }))

    it.scoped("connection refused is transient", () =>
      Effect.gen(function*() {
        const port = yield* closedPort
        const llm = yield* OpenAiLlm.make({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: Redacted.make(apiKey), model: "m" })
        const error = yield* Effect.flip(llm.complete(request()))
        assert.isTrue(error.transient)
        assert.include(error.message, "ECONNREFUSED")
        assertNoKey(error)
        const streamed = yield* Effect.flip(Stream.runDrain(llm.stream(request())))
        assert.isTrue(streamed.transient)
      }))

    it.scoped("a base URL that is not a URL fails at once, not transient: no retry can fix it", () =>
      Effect.gen(function*() {
        const llm = yield* OpenAiLlm.make({ baseURL: "not a url", apiKey: Redacted.make(apiKey), model: "m" })
        const error = yield* Effect.flip(llm.complete(request()))
        assert.isFalse(error.transient)
        assert.include(error.message, "not a valid URL")
      }))
  })

  describe("servers that do not answer like OpenAI", () => {
    const sse = (chunks: ReadonlyArray<object>) => ({
      contentType: "text/event-stream",
      body: chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n"
    })
    const chunk = (delta: object, finish: string | null = null, usage?: object) => ({
      id: "c", object: "chat.completion.chunk", created: 1, model: "m",
      choices: [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {})
    })
    const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }

    it.scoped("a 200 that is not a completion (an HTML page, an error object) is a final error pointing at the base URL", () =>
      Effect.gen(function*() {
        for (const raw of [
          { contentType: "text/html", body: "<html><body>Welcome to nginx</body></html>" },
          { contentType: "application/json", body: JSON.stringify({ error: { message: "no such model" } }) }
        ]) {
          const server = yield* TestServer.make([{ raw }])
          const error = yield* Effect.flip((yield* llmFor(server)).complete(request()))
          assert.isFalse(error.transient)
          assert.include(error.message, "check that the base URL ends in /v1")
        }
      }))

    it.scoped("usage without token counts fails the call rather than charging NaN", () =>
      Effect.gen(function*() {
        const body = JSON.stringify({
          id: "c", object: "chat.completion", created: 1, model: "m", usage: {},
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "hi" } }]
        })
        const server = yield* TestServer.make([{ raw: { contentType: "application/json", body } }])
        const error = yield* Effect.flip((yield* llmFor(server)).complete(request()))
        assert.isFalse(error.transient)
        assert.include(error.message, "reported no token usage")
      }))

    it.scoped("a stream that ends without a finish_reason was cut off: a transient error, even with usage", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ raw: sse([chunk({ content: "half" }, null, usage)]) }])
        const error = yield* Effect.flip(Stream.runDrain((yield* llmFor(server)).stream(request())))
        assert.isTrue(error.transient)
        assert.include(error.message, "the stream ended before the answer did")
      }))

    it.scoped("a call the server sent without an id gets one from its place in the answer, so its tool message can name it", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([
          { toolCalls: [{ id: "", name: "calculator", arguments: "{}" }, { id: "call_x", name: "list_files", arguments: "{}" }] },
          { raw: sse([chunk({ tool_calls: [{ index: 0, type: "function", function: { name: "calculator", arguments: "{}" } }] }), chunk({}, "tool_calls"), { ...chunk({}), choices: [], usage }]) }
        ])
        const llm = yield* llmFor(server)
        assert.deepStrictEqual((yield* llm.complete(request())).tool_calls.map((c) => c.id), ["call_0", "call_x"])
        const done = Chunk.toReadonlyArray(yield* Stream.runCollect(llm.stream(request()))).find((c) => c._tag === "Done")
        assert(done?._tag === "Done")
        assert.deepStrictEqual(done.response.tool_calls.map((c) => c.id), ["call_0"])
      }))

    it.scoped("streamed tool calls sent whole at index 0 are told apart by their ids", () =>
      Effect.gen(function*() {
        const call = (id: string, name: string, args: string) =>
          chunk({ tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: args } }] })
        const server = yield* TestServer.make([{
          raw: sse([call("a", "calc", "{\"e\":1}"), call("b", "read_file", "{}"), chunk({}, "tool_calls"), { ...chunk({}), choices: [], usage }])
        }])
        const chunks = yield* Stream.runCollect((yield* llmFor(server)).stream(request()))
        const done = Chunk.toReadonlyArray(chunks).find((c) => c._tag === "Done")
        assert(done?._tag === "Done")
        assert.deepStrictEqual(done.response.tool_calls, [
          { id: "a", name: "calc", arguments: { e: 1 } },
          { id: "b", name: "read_file", arguments: {} }
        ])
      }))

    it.scoped("a 429 for an exhausted quota, or a server saying x-should-retry: false, is final", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([
          { status: 429, error: { message: "You exceeded your current quota", code: "insufficient_quota" } },
          { status: 503, headers: { "x-should-retry": "false" }, error: { message: "maintenance" } }
        ])
        const llm = yield* llmFor(server)
        assert.isFalse((yield* Effect.flip(llm.complete(request()))).transient)
        assert.isFalse((yield* Effect.flip(llm.complete(request()))).transient)
      }))

    it.scoped("a proxy's spent budget (LiteLLM's 400, the harness's 429, type budget_exceeded) is final and says so", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([
          { status: 400, error: { message: "Budget has been exceeded! Current cost: 5.2, Max budget: 5.0", type: "budget_exceeded" } },
          { status: 429, error: { message: "project docs daily budget $5.00 is spent", type: "budget_exceeded", code: "budget_exceeded" } },
          { status: 429, error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" } }
        ])
        const llm = yield* llmFor(server)
        for (const _ of [1, 2]) {
          const error = yield* Effect.flip(llm.complete(request()))
          assert.isFalse(error.transient)
          assert.isTrue(error.budget_exhausted)
        }
        assert.isUndefined((yield* Effect.flip(llm.complete(request()))).budget_exhausted)
      }))
  })

  describe("Retry-After", () => {
    it.scopedLive("429 with Retry-After: 1 fails transient at once, carrying the wait for the runtime's retry", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{
          status: 429,
          headers: { "retry-after": "1" },
          error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" }
        }])
        const llm = yield* llmFor(server)
        const started = Date.now()
        const error = yield* Effect.flip(llm.complete(request()))
        const elapsed = Date.now() - started
        assert.isTrue(error.transient)
        assert.include(error.message, "429 Rate limit reached")
        assert.strictEqual(error.retry_after_ms, 1000)
        assert.isBelow(elapsed, 900)
      }))

    /** Sends one request answered with `headers`, and returns the wait its error asks for. */
    const waitFor = (headers: Record<string, string>, status = 429) =>
      Effect.gen(function*() {
        yield* TestClock.setTime(Date.parse("2025-06-01T12:00:00Z"))
        const server = yield* TestServer.make([{ status, headers, error: { message: "slow down" } }])
        const llm = yield* llmFor(server)
        const error = yield* Effect.flip(llm.complete(request()))
        assert.isTrue(error.transient)
        return error.retry_after_ms
      })

    it.scoped("reads retry-after-ms before Retry-After", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* waitFor({ "retry-after-ms": "1500", "retry-after": "9" }), 1500)
      }))

    it.scoped("reads Retry-After as an HTTP date on the Effect Clock", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* waitFor({ "retry-after": "Sun, 01 Jun 2025 12:00:07 GMT" }), 7000)
      }))

    it.scoped("waits at most 60 seconds, whatever the server asks", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* waitFor({ "retry-after": "3600" }), 60_000)
      }))

    it.scoped("honours Retry-After on a 503 too", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* waitFor({ "retry-after": "2" }, 503), 2000)
      }))

    it.scoped("does not wait on a 400, whatever its headers say", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ status: 400, headers: { "retry-after": "30" }, error: { message: "bad" } }])
        const error = yield* Effect.flip((yield* llmFor(server)).complete(request()))
        assert.isFalse(error.transient)
      }))
  })

  describe("interruption", () => {
    it.scopedLive("interrupting a slow call aborts its HTTP request promptly", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "too late", delayMs: 20_000 }])
        const fiber = yield* Effect.fork((yield* llmFor(server)).complete(request()))
        yield* received(server, 1)
        const started = Date.now()
        const exit = yield* Fiber.interrupt(fiber)
        assert.isBelow(Date.now() - started, 1000)
        assert.isTrue(Exit.isInterrupted(exit))
        yield* server.aborted.pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "server never saw the close" }))
      }))

    it.scopedLive("interrupting a slow stream aborts its HTTP request promptly", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "too late", delayMs: 20_000 }])
        const fiber = yield* Effect.fork(Stream.runDrain((yield* llmFor(server)).stream(request())))
        yield* received(server, 1)
        const started = Date.now()
        yield* Fiber.interrupt(fiber)
        assert.isBelow(Date.now() - started, 1000)
        yield* server.aborted.pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "server never saw the close" }))
      }))
    it.scoped("an error event in the middle of a stream fails it, transient", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "half an", streamError: "upstream overloaded" }])
        const error = yield* Effect.flip(Stream.runDrain((yield* llmFor(server)).stream(request())))
        assert.isTrue(error.transient)
        assert.include(error.message, "upstream overloaded")
      }))

    it.scopedLive("a stream closed before its end drops the connection", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "one two three four", stall: true }])
        const chunks = yield* Stream.runCollect((yield* llmFor(server)).stream(request()).pipe(Stream.take(2))).pipe(
          Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "the first deltas never arrived" })
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(chunks), [{ _tag: "Delta", text: "one " }, { _tag: "Delta", text: "two " }])
        yield* server.aborted.pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "server never saw the close" }))
      }))

    it.scopedLive("interrupting a read from a stalled stream ends at once and drops the connection", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "one two", stall: true }])
        const llm = yield* llmFor(server)
        // Waits for a third delta that never comes: the read is pending when the interrupt arrives.
        const reader = yield* Effect.fork(Stream.runCollect(llm.stream(request()).pipe(Stream.take(3))))
        yield* waitUntil(Effect.map(server.requests, (r) => r.length === 1), "the request arrived")
        yield* realSleep(100)
        yield* Fiber.interrupt(reader).pipe(
          Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "the interrupt waited for the stalled server" })
        )
        yield* server.aborted.pipe(Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => "server never saw the close" }))
      }))
  })

  describe("layerConfig", () => {
    const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

    it.scoped("reads the base URL, the key and the default model from the environment", () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make([{ content: "ok" }])
        const response = yield* Effect.flatMap(Llm, (llm) => llm.complete(request())).pipe(
          Effect.provide(OpenAiLlm.layerConfig.pipe(Layer.provide(withEnv({
            AUTOPILOT_LLM_BASE_URL: server.baseURL,
            AUTOPILOT_LLM_API_KEY: apiKey,
            AUTOPILOT_LLM_MODEL: "llama-4-maverick"
          }))))
        )
        assert.strictEqual(response.model, "llama-4-maverick")
        const sent = yield* onlyRequest(server)
        assert.strictEqual(sent.headers.authorization, `Bearer ${apiKey}`)
        assert.strictEqual(sent.body.model, "llama-4-maverick")
      }))

    it.effect("needs a base URL (no host the user did not name), defaults the model, keeps the key redacted", () =>
      Effect.gen(function*() {
        const read = (entries: Array<[string, string]>) => OpenAiLlm.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries))))
        const missing = yield* Effect.flip(read([["AUTOPILOT_LLM_API_KEY", apiKey]]))
        assert.include(String(missing), "AUTOPILOT_LLM_BASE_URL")
        const config = yield* read([["AUTOPILOT_LLM_API_KEY", apiKey], ["AUTOPILOT_LLM_BASE_URL", "http://127.0.0.1:4000/v1"]])
        assert.strictEqual(config.baseURL, "http://127.0.0.1:4000/v1")
        assert.strictEqual(config.model, "gpt-4o-mini")
        assert.notInclude(String(config.apiKey), apiKey)
        assert.strictEqual(Redacted.value(config.apiKey), apiKey)
      }))

    it.effect("rejects a malformed base URL and a missing key before any call", () =>
      Effect.gen(function*() {
        const build = (env: Record<string, string>) =>
          Effect.flip(Layer.build(OpenAiLlm.layerConfig).pipe(Effect.provide(withEnv(env)), Effect.scoped))
        const malformed = yield* build({ AUTOPILOT_LLM_BASE_URL: "not a url", AUTOPILOT_LLM_API_KEY: apiKey })
        assert.include(String(malformed), "AUTOPILOT_LLM_BASE_URL")
        assert.notInclude(String(malformed), apiKey)
        const missing = yield* build({ AUTOPILOT_LLM_BASE_URL: "http://127.0.0.1:1/v1" })
        assert.include(String(missing), "AUTOPILOT_LLM_API_KEY")
      }))
  })
})
