import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import type OpenAI from "openai"
import { costOf, priceOf } from "../../src/budget/Pricing.js"
import type { AuditEntry } from "../../src/harness/HarnessStore.js"
import type * as TestServer from "../llm/openai-test-server.js"
import { ask, call, designRequest, drain, eventually, type Harness, http, refusal, start } from "./fixtures.js"

/** What the shared pricing table says `usage` on `model` costs. */
const tableCost = (model: string, input_tokens: number, output_tokens: number) =>
  costOf(Option.getOrThrow(priceOf(model)), { input_tokens, output_tokens })

const rows = (harness: Harness) => Effect.map(harness.store.audit({}), (all) => all as ReadonlyArray<AuditEntry>)

/** The one ledger row the harness has: every request writes exactly one. */
const onlyRow = (harness: Harness) =>
  Effect.map(rows(harness), (all) => {
    assert.strictEqual(all.length, 1, JSON.stringify(all))
    return all[0]!
  })

/** A harness whose upstream has the Responses API and is configured so. */
const native = (url: string) => ({ upstreams: { test: { base_url: url, responses: "native" as const } } })

type Usage = OpenAI.Responses.ResponseUsage & { cost_usd: number }

/** designRequest's conversation as Responses input: the same turns, tools and question. */
const designInput = (): OpenAI.Responses.ResponseCreateParamsNonStreaming => {
  const chat = designRequest()
  return {
    model: "auto",
    instructions: chat.messages[0]!.content as string,
    tools: chat.tools!.map((tool) => ({
      type: "function" as const,
      name: (tool as OpenAI.Chat.ChatCompletionFunctionTool).function.name,
      parameters: (tool as OpenAI.Chat.ChatCompletionFunctionTool).function.parameters ?? null,
      strict: false
    })),
    input: chat.messages.slice(1).flatMap((message): Array<OpenAI.Responses.ResponseInputItem> =>
      message.role === "tool"
        ? [{ type: "function_call_output", call_id: message.tool_call_id, output: message.content as string }]
        : message.role === "assistant" && message.tool_calls
        ? message.tool_calls.map((c) => {
          const fn = (c as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function
          return { type: "function_call" as const, call_id: c.id, name: fn.name, arguments: fn.arguments }
        })
        : [{ role: message.role as "user" | "assistant", content: message.content as string }]
    )
  }
}

describe("the Responses API (POST /v1/responses)", () => {
  describe("translated to chat completions for an upstream without it", () => {
    it.scoped("answers responses.create with a Response built from the chat answer, priced in usage and a header, with one ledger row", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "Four.", usage: { prompt_tokens: 1000, completion_tokens: 500 } }])
        const client = harness.client(yield* harness.key())
        const { data: answer, response } = yield* call(() =>
          client.responses.create({ model: "auto", instructions: "Be brief.", input: "what is 2+2?", max_output_tokens: 50, temperature: 0.2 })
            .withResponse()
        )
        const [forwarded] = yield* harness.upstream.requests
        assert.strictEqual(forwarded?.path, "/v1/chat/completions")
        assert.deepStrictEqual(forwarded?.body, {
          model: "gpt-4.1-nano",
          messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "what is 2+2?" }],
          max_tokens: 50,
          temperature: 0.2,
          stream: false
        })
        const cost = tableCost("gpt-4.1-nano", 1000, 500)
        assert.strictEqual(answer.object, "response")
        assert.match(answer.id, /^resp_[0-9a-f]{48}$/)
        assert.strictEqual(answer.status, "completed")
        assert.strictEqual(answer.model, "gpt-4.1-nano")
        assert.strictEqual(answer.instructions, "Be brief.")
        assert.strictEqual(answer.max_output_tokens, 50)
        assert.strictEqual(answer.output_text, "Four.")
        assert.strictEqual(answer.output.length, 1)
        const [message] = answer.output as Array<OpenAI.Responses.ResponseOutputMessage>
        assert.match(message!.id, /^msg_/)
        assert.deepStrictEqual({ ...message, id: "" }, {
          id: "",
          type: "message",
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Four.", annotations: [] }]
        })
        const usage = answer.usage as Usage
        assert.deepStrictEqual({ ...usage, cost_usd: 0 }, {
          input_tokens: 1000,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: 500,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: 1500,
          cost_usd: 0
        })
        assert.closeTo(usage.cost_usd, cost, 1e-12)
        assert.strictEqual(Number(response.headers.get("x-autopilot-cost-usd")), usage.cost_usd)
        assert.strictEqual(response.headers.get("x-autopilot-model"), "gpt-4.1-nano")
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "simple")
        const row = yield* onlyRow(harness)
        assert.deepStrictEqual(
          [row.status, row.stream, row.model_requested, row.model_used, row.tier, row.input_tokens, row.output_tokens, row.error, row.policy_action],
          [200, false, "auto", "gpt-4.1-nano", "simple", 1000, 500, null, "routed by tier"]
        )
        assert.closeTo(row.cost_usd, cost, 1e-12)
      }))

    it.scoped("classifies a conversation as it classifies its chat twin: the design request goes to the complex tier either way", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "ok" }, { content: "ok" }])
        const client = harness.client(yield* harness.key())
        const { response: viaChat } = yield* call(() => client.chat.completions.create(designRequest()).withResponse())
        const { response: viaResponses } = yield* call(() => client.responses.create(designInput()).withResponse())
        assert.strictEqual(viaChat.headers.get("x-autopilot-tier"), "complex")
        assert.strictEqual(viaResponses.headers.get("x-autopilot-tier"), "complex")
        assert.strictEqual(viaResponses.headers.get("x-autopilot-confidence"), viaChat.headers.get("x-autopilot-confidence"))
        const [chat, translated] = yield* harness.upstream.requests
        // The translation of the same conversation is the same chat request but for how it is spelled.
        assert.deepStrictEqual(translated?.body.messages, chat?.body.messages)
        assert.deepStrictEqual(
          translated?.body.tools.map((t: any) => t.function.name),
          chat?.body.tools.map((t: any) => t.function.name)
        )
      }))

    it.scoped("turns function tools into chat tools and tool calls into function_call items, and takes them back on the next turn", () =>
      Effect.gen(function*() {
        const harness = yield* start([
          { content: "Let me look.", toolCalls: [{ id: "call_7", name: "read_file", arguments: "{\"path\":\"a.ts\"}" }] },
          { content: "It exports Cache." }
        ])
        const client = harness.client(yield* harness.key())
        const tools: Array<OpenAI.Responses.FunctionTool> = [{
          type: "function",
          name: "read_file",
          description: "reads a file",
          parameters: { type: "object", properties: { path: { type: "string" } } },
          strict: true
        }]
        const first = yield* call(() =>
          client.responses.create({ model: "auto", input: "What does a.ts export?", tools, tool_choice: { type: "function", name: "read_file" } })
        )
        const [message, toolCall] = first.output
        assert.strictEqual(message?.type, "message")
        assert.strictEqual(first.output_text, "Let me look.")
        assert.strictEqual(toolCall?.type, "function_call")
        const fn = toolCall as OpenAI.Responses.ResponseFunctionToolCall
        assert.deepStrictEqual([fn.call_id, fn.name, fn.arguments, fn.status], ["call_7", "read_file", "{\"path\":\"a.ts\"}", "completed"])
        assert.match(fn.id ?? "", /^fc_/)
        // The second turn names the earlier text by id, as the Vercel AI SDK does by default, and sends the call.
        const second = yield* call(() =>
          client.responses.create({
            model: "auto",
            tools,
            input: [
              { role: "user", content: [{ type: "input_text", text: "What does a.ts export?" }] },
              { type: "item_reference", id: (message as OpenAI.Responses.ResponseOutputMessage).id },
              { type: "function_call", call_id: fn.call_id, name: fn.name, arguments: fn.arguments, id: fn.id! },
              { type: "function_call_output", call_id: "call_7", output: "export class Cache {}" }
            ]
          })
        )
        assert.strictEqual(second.output_text, "It exports Cache.")
        const [asked, followed] = yield* harness.upstream.requests
        assert.deepStrictEqual(asked?.body.tools, [{
          type: "function",
          function: { name: "read_file", description: "reads a file", parameters: tools[0]!.parameters, strict: true }
        }])
        assert.deepStrictEqual(asked?.body.tool_choice, { type: "function", function: { name: "read_file" } })
        assert.deepStrictEqual(followed?.body.messages, [
          { role: "user", content: [{ type: "text", text: "What does a.ts export?" }] },
          {
            role: "assistant",
            content: "Let me look.",
            tool_calls: [{ id: "call_7", type: "function", function: { name: "read_file", arguments: "{\"path\":\"a.ts\"}" } }]
          },
          { role: "tool", tool_call_id: "call_7", content: "export class Cache {}" }
        ])
        assert.strictEqual((yield* rows(harness)).length, 2)
      }))

    it.scoped("streams Responses events, the last one response.completed carrying the usage and its cost_usd", () =>
      Effect.gen(function*() {
        const content = "hello there world"
        const harness = yield* start([{ content, usage: { prompt_tokens: 1200, completion_tokens: 300 } }])
        const client = harness.client(yield* harness.key())
        const { chunks: events, error } = yield* drain(() => client.responses.create({ model: "auto", input: "hi", stream: true }))
        assert.isUndefined(error)
        assert.deepStrictEqual(events.map((e) => e.type), [
          "response.created",
          "response.in_progress",
          "response.output_item.added",
          "response.content_part.added",
          "response.output_text.delta",
          "response.output_text.delta",
          "response.output_text.delta",
          "response.output_text.done",
          "response.content_part.done",
          "response.output_item.done",
          "response.completed"
        ])
        assert.deepStrictEqual(events.map((e) => e.sequence_number), events.map((_, i) => i))
        const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []))
        assert.strictEqual(deltas.join(""), content)
        const last = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent
        const cost = tableCost("gpt-4.1-nano", 1200, 300)
        const usage = last.response.usage as Usage
        assert.deepStrictEqual([usage.input_tokens, usage.output_tokens, usage.total_tokens], [1200, 300, 1500])
        assert.closeTo(usage.cost_usd, cost, 1e-12)
        assert.strictEqual(last.response.status, "completed")
        assert.deepStrictEqual(
          last.response.output.map((item) => (item as OpenAI.Responses.ResponseOutputMessage).content),
          [[{ type: "output_text", text: content, annotations: [] }]]
        )
        const [forwarded] = yield* harness.upstream.requests
        assert.deepStrictEqual([forwarded?.body.stream, forwarded?.body.stream_options], [true, { include_usage: true }])
        const row = yield* eventually(onlyRow(harness))
        assert.deepStrictEqual([row.status, row.stream, row.input_tokens, row.output_tokens, row.error], [200, true, 1200, 300, null])
        assert.closeTo(row.cost_usd, cost, 1e-12)
      }))

    it.scoped("streams tool calls as function_call items whose argument deltas the SDK's ResponseStream assembles", () =>
      Effect.gen(function*() {
        const harness = yield* start([{
          toolCalls: [
            { id: "call_1", name: "read_file", arguments: "{\"path\":\"a.ts\"}" },
            { id: "call_2", name: "read_file", arguments: "{\"path\":\"b.ts\"}" }
          ]
        }])
        const client = harness.client(yield* harness.key())
        const final = yield* call(() =>
          client.responses.stream({
            model: "auto",
            input: "read both",
            tools: [{ type: "function", name: "read_file", parameters: { type: "object" }, strict: null }]
          }).finalResponse()
        )
        assert.strictEqual(final.status, "completed")
        assert.deepStrictEqual(
          final.output.map((item) => {
            const fn = item as OpenAI.Responses.ResponseFunctionToolCall
            return [fn.type, fn.call_id, fn.name, fn.arguments, fn.status]
          }),
          [
            ["function_call", "call_1", "read_file", "{\"path\":\"a.ts\"}", "completed"],
            ["function_call", "call_2", "read_file", "{\"path\":\"b.ts\"}", "completed"]
          ]
        )
        assert.strictEqual((yield* eventually(onlyRow(harness))).status, 200)
      }))

    it.scoped("ends a stream whose upstream fails mid-way with error and response.failed events, and records it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "partial answer", streamError: "the model fell over" }])
        const client = harness.client(yield* harness.key())
        const { chunks: events, error } = yield* drain(() => client.responses.create({ model: "auto", input: "hi", stream: true }))
        assert.isUndefined(error)
        const [failure, failed] = events.slice(-2)
        assert.strictEqual(failure?.type, "error")
        assert.include((failure as OpenAI.Responses.ResponseErrorEvent).message, "the model fell over")
        assert.strictEqual(failed?.type, "response.failed")
        const response = (failed as OpenAI.Responses.ResponseFailedEvent).response
        assert.strictEqual(response.status, "failed")
        assert.include(response.error?.message ?? "", "the model fell over")
        const row = yield* eventually(Effect.flatMap(onlyRow(harness), (row) => (row.error === null ? Effect.fail("not yet") : Effect.succeed(row))))
        assert.strictEqual(row.stream, true)
        assert.include(row.error ?? "", "the model fell over")
      }))

    it.scoped("closes the upstream's connection when the client leaves mid-stream, and still writes the row, charged by estimate", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "one two three", usage: null, stall: true }])
        const client = harness.client(yield* harness.key())
        const first = yield* Effect.promise(async () => {
          const stream = await client.responses.create({ model: "auto", input: "hi", stream: true })
          for await (const event of stream) return event // leaving the loop aborts the request
          return undefined
        })
        assert.strictEqual(first?.type, "response.created")
        // The upstream stalls: only the harness closing it ends its reply.
        yield* harness.upstream.aborted
        const row = yield* eventually(onlyRow(harness))
        assert.strictEqual(row.stream, true)
        assert.isAbove(row.cost_usd, 0)
        assert.include(row.error ?? "", "tokens estimated from characters")
      }))

    it.scoped("reports an answer cut at max_output_tokens as incomplete", () =>
      Effect.gen(function*() {
        const harness = yield* start([(request) => ({ content: "cut", ...(request.body.max_tokens === 3 ? { finish: "length" } : {}) })])
        const client = harness.client(yield* harness.key())
        const answer = yield* call(() => client.responses.create({ model: "auto", input: "write a novel", max_output_tokens: 3 }))
        assert.strictEqual(answer.status, "incomplete")
        assert.deepStrictEqual(answer.incomplete_details, { reason: "max_output_tokens" })
      }))
  })

  describe("forwarded to an upstream that has it (responses: native)", () => {
    it.scoped("relays the request as sent but for the routed model, and the Response as answered but for its cost", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "Paris.", usage: { prompt_tokens: 1000, completion_tokens: 500 } }], native)
        const client = harness.client(yield* harness.key())
        const request: OpenAI.Responses.ResponseCreateParamsNonStreaming = {
          model: "auto",
          input: "capital of France?",
          previous_response_id: "resp_earlier",
          tools: [{ type: "web_search" }],
          include: ["web_search_call.action.sources"]
        }
        const { data: answer, response } = yield* call(() => client.responses.create(request).withResponse())
        const [forwarded] = yield* harness.upstream.requests
        assert.strictEqual(forwarded?.path, "/v1/responses")
        assert.deepStrictEqual(forwarded?.body, { ...request, model: "gpt-4.1-nano", stream: false })
        assert.strictEqual(answer.id, "resp_test")
        assert.strictEqual(answer.output_text, "Paris.")
        const cost = tableCost("gpt-4.1-nano", 1000, 500)
        assert.closeTo((answer.usage as Usage).cost_usd, cost, 1e-12)
        assert.strictEqual(Number(response.headers.get("x-autopilot-cost-usd")), (answer.usage as Usage).cost_usd)
        const row = yield* onlyRow(harness)
        assert.deepStrictEqual(
          [row.status, row.stream, row.model_used, row.input_tokens, row.output_tokens, row.error],
          [200, false, "gpt-4.1-nano", 1000, 500, null]
        )
        assert.closeTo(row.cost_usd, cost, 1e-12)
      }))

    it.scoped("relays a stream's events as they came, adding cost_usd to response.completed's usage", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "hello there", usage: { prompt_tokens: 1200, completion_tokens: 300 } }], native)
        const client = harness.client(yield* harness.key())
        const { chunks: events, error } = yield* drain(() => client.responses.create({ model: "auto", input: "hi", stream: true }))
        assert.isUndefined(error)
        assert.deepStrictEqual(events.map((e) => e.type), [
          "response.created",
          "response.output_item.added",
          "response.content_part.added",
          "response.output_text.delta",
          "response.output_text.delta",
          "response.output_text.done",
          "response.output_item.done",
          "response.completed"
        ])
        const [forwarded] = yield* harness.upstream.requests
        assert.deepStrictEqual([forwarded?.path, forwarded?.body.stream], ["/v1/responses", true])
        const cost = tableCost("gpt-4.1-nano", 1200, 300)
        const usage = (events.at(-1) as OpenAI.Responses.ResponseCompletedEvent).response.usage as Usage
        assert.deepStrictEqual([usage.input_tokens, usage.output_tokens], [1200, 300])
        assert.closeTo(usage.cost_usd, cost, 1e-12)
        const row = yield* eventually(onlyRow(harness))
        assert.deepStrictEqual([row.status, row.stream, row.input_tokens, row.output_tokens, row.error], [200, true, 1200, 300, null])
        assert.closeTo(row.cost_usd, cost, 1e-12)
      }))

    it.scoped("answers an upstream failure with 502 in OpenAI's shape, and records it", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ status: 500, error: { message: "boom" } }], native)
        const client = harness.client(yield* harness.key())
        const error = yield* refusal(() => client.responses.create({ model: "auto", input: "hi" }))
        assert.strictEqual(error.status, 502)
        assert.strictEqual(error.type, "upstream_error")
        const row = yield* onlyRow(harness)
        assert.strictEqual(row.status, 502)
        assert.include(row.error ?? "", "boom")
      }))

    it.scoped("answers 502 for a 200 that is no Response, charging only the usage it reports", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ raw: { contentType: "application/json", body: JSON.stringify({ choices: [] }) } }], native)
        const client = harness.client(yield* harness.key())
        const error = yield* refusal(() => client.responses.create({ model: "auto", input: "hi" }))
        assert.strictEqual(error.status, 502)
        assert.include(error.message, "not a response")
        const row = yield* onlyRow(harness)
        assert.deepStrictEqual([row.status, row.cost_usd], [502, 0])
      }))
  })

  describe("the same gate as chat completions", () => {
    it.scoped("refuses a model the policy blocks with 403, and a spent stop budget with 429, each with a row and no upstream call", () =>
      Effect.gen(function*() {
        const harness = yield* start([], {
          policy: [{ scope: "org", allow_client_model: true, blocked_models: ["gpt-4.1"] }],
          budgets: [{ scope: "project", id: "spent", period: "daily", limit_usd: 0, action: "stop" }]
        })
        const alice = harness.client(yield* harness.key())
        const refused = yield* refusal(() => alice.responses.create({ model: "gpt-4.1", input: "hi" }))
        assert.strictEqual(refused.status, 403)
        assert.strictEqual(refused.code, "model_not_permitted")
        const broke = harness.client(yield* harness.key({ user: "bob", project: "spent" }))
        const stopped = yield* refusal(() => broke.responses.create({ model: "auto", input: "hi", stream: true }))
        assert.strictEqual(stopped.status, 429)
        assert.strictEqual(stopped.code, "budget_exceeded")
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
        const [second, first] = yield* rows(harness)
        assert.deepStrictEqual([first?.status, first?.user, first?.model_requested], [403, "alice", "gpt-4.1"])
        assert.deepStrictEqual([second?.status, second?.user, second?.stream], [429, "bob", true])
      }))

    it.scoped("routes with the policy's forced model and the tier a client names, as for chat", () =>
      Effect.gen(function*() {
        const harness = yield* start([{}, {}], { policy: [{ scope: "project", id: "locked", forced_model: "gpt-4o-mini" }] })
        const locked = harness.client(yield* harness.key({ project: "locked" }))
        yield* call(() => locked.responses.create({ model: "auto", input: "hi" }))
        const free = harness.client(yield* harness.key())
        const { response } = yield* call(() => free.responses.create({ model: "auto:complex", input: "hi" }).withResponse())
        assert.strictEqual(response.headers.get("x-autopilot-tier"), "complex")
        assert.deepStrictEqual((yield* harness.upstream.requests).map((r) => r.body.model), ["gpt-4o-mini", "gpt-4.1"])
      }))

    it.scoped("checks the key and its rate limit: no key is a 401, the request over the limit a 429", () =>
      Effect.gen(function*() {
        const harness = yield* start([{}], { requests_per_minute: 1 })
        const none = yield* http(harness, "POST", "/v1/responses", { body: { model: "auto", input: "hi" } })
        assert.strictEqual(none.status, 401)
        assert.strictEqual(none.body.error.code, "missing_api_key")
        const client = harness.client(yield* harness.key())
        yield* call(() => client.responses.create({ model: "auto", input: "hi" }))
        const limited = yield* refusal(() => client.responses.create({ model: "auto", input: "hi" }))
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.code, "rate_limit_exceeded")
        assert.strictEqual((yield* rows(harness)).length, 1)
      }))
  })

  describe("bad requests", () => {
    const post = (harness: Harness, key: string, body: unknown) => http(harness, "POST", "/v1/responses", { key, body })

    it.scoped("answers what cannot be translated with one 400 naming the field, calling no upstream and writing no row", () =>
      Effect.gen(function*() {
        const harness = yield* start([])
        const key = yield* harness.key()
        const cases: ReadonlyArray<readonly [unknown, string, RegExp]> = [
          [{ model: "auto", input: "hi", previous_response_id: "resp_1" }, "previous_response_id", /the harness keeps no responses/],
          [{ model: "auto", input: "hi", conversation: "conv_1" }, "conversation", /keeps no conversations/],
          [{ model: "auto", input: "hi", tools: [{ type: "web_search" }] }, "tools.0.type", /need an upstream with responses: "native"/],
          [{ model: "auto", input: [{ type: "reasoning", id: "rs_1", summary: [] }] }, "input.0.type", /Expected "message" \| "function_call"/],
          [{ model: "auto", input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] }, "input.0.content.0.type", /input_file/],
          [{ model: "auto", input: [{ role: "robot", content: "hi" }] }, "input.0.role", /actual "robot"/],
          [{ model: "auto", input: [{ type: "item_reference", id: "msg_gone" }] }, "input.0.id", /no item msg_gone is known/],
          [{ model: "auto", input: "hi", include: ["reasoning.encrypted_content"] }, "include.0", /nothing extra to include/],
          [{ model: "auto", input: [] }, "input", /at least one item/],
          [{ model: "auto" }, "input", /is missing/]
        ]
        for (const [body, param, message] of cases) {
          const answer = yield* post(harness, key, body)
          assert.strictEqual(answer.status, 400, answer.text)
          assert.deepStrictEqual(Object.keys(answer.body.error).sort(), ["code", "message", "param", "type"])
          assert.strictEqual(answer.body.error.type, "invalid_request_error")
          assert.strictEqual(answer.body.error.param, param, answer.text)
          assert.match(answer.body.error.message, message)
          assert.notInclude(answer.body.error.message, "\n")
        }
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
        assert.deepStrictEqual(yield* rows(harness), [])
      }))

    it.scoped("refuses a body that is no Responses request whatever the upstream: not an object, no model, a wrong type", () =>
      Effect.gen(function*() {
        const harness = yield* start([], native)
        const key = yield* harness.key()
        for (const [body, param] of [["[1]", null], [{ input: "hi" }, "model"], [{ model: "auto", input: 42 }, "input"], [{ model: "auto", input: "hi", stream: "yes" }, "stream"], [{ model: "auto", input: "hi", max_output_tokens: "1e400" }, "max_output_tokens"]] as const) {
          const answer = yield* post(harness, key, body)
          assert.strictEqual(answer.status, 400, answer.text)
          assert.strictEqual(answer.body.error.param, param, answer.text)
        }
        const unknown = yield* post(harness, key, { model: "gpt-9", input: "hi" })
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.body.error.code, "model_not_found")
        assert.deepStrictEqual(yield* harness.upstream.requests, [])
        assert.deepStrictEqual(yield* rows(harness), [])
      }))
  })

  describe("cost on streamed chat completions", () => {
    it.scoped("carries cost_usd beside the usage in the final usage chunk", () =>
      Effect.gen(function*() {
        const harness = yield* start([{ content: "hi", usage: { prompt_tokens: 10, completion_tokens: 5 } } satisfies TestServer.Reply])
        const client = harness.client(yield* harness.key())
        const { chunks } = yield* drain(() => client.chat.completions.create({ ...ask("hi"), stream: true, stream_options: { include_usage: true } }))
        const usage = chunks.at(-1)?.usage as OpenAI.CompletionUsage & { cost_usd: number }
        assert.closeTo(usage.cost_usd, tableCost("gpt-4.1-nano", 10, 5), 1e-15)
      }))
  })
})
