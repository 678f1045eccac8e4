import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Stream } from "effect"
import { classify } from "../../src/harness/Classifier.js"
import { config } from "./fixtures.js"
import * as ResponseItems from "../../src/harness/ResponseItems.js"
import * as Responses from "../../src/harness/Responses.js"
import * as ResponsesAnswer from "../../src/harness/ResponsesAnswer.js"

const settings = config("http://127.0.0.1:1/v1").classification

const text = fc.string({ minLength: 1, maxLength: 400 })
const call = fc.record({
  call_id: fc.stringMatching(/^call_[a-z0-9]{1,8}$/),
  name: fc.stringMatching(/^[a-z_]{1,12}$/),
  arguments: fc.json(),
  output: text
})
/** After a user's message, the assistant answers in text, or (with or without text) with calls and their outputs. */
const round = fc.record({
  user: text,
  answer: fc.oneof(
    fc.record({ text }),
    fc.record({ text: fc.option(text, { nil: null }), calls: fc.array(call, { minLength: 1, maxLength: 3 }) })
  )
})
const conversation = fc.record({
  instructions: fc.option(text, { nil: undefined }),
  rounds: fc.array(round, { minLength: 1, maxLength: 6 }),
  last: text,
  tools: fc.uniqueArray(fc.stringMatching(/^[a-z_]{1,12}$/), { maxLength: 5 }),
  max: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined })
})
type Conversation = typeof conversation extends fc.Arbitrary<infer A> ? A : never

/** The conversation as a chat completions request. */
const asChat = (c: Conversation) => ({
  model: "auto",
  messages: [
    ...(c.instructions === undefined ? [] : [{ role: "system", content: c.instructions }]),
    ...c.rounds.flatMap((r) => [
      { role: "user", content: r.user },
      ...("calls" in r.answer
        ? [
          {
            role: "assistant",
            content: r.answer.text,
            tool_calls: r.answer.calls.map((k) => ({ id: k.call_id, type: "function", function: { name: k.name, arguments: k.arguments } }))
          },
          ...r.answer.calls.map((k) => ({ role: "tool", tool_call_id: k.call_id, content: k.output }))
        ]
        : [{ role: "assistant", content: r.answer.text }])
    ]),
    { role: "user", content: [{ type: "text", text: c.last }] }
  ],
  ...(c.max === undefined ? {} : { max_tokens: c.max }),
  ...(c.tools.length === 0 ? {} : { tools: c.tools.map((name) => ({ type: "function", function: { name, parameters: { type: "object" } } })) })
})

/** The same conversation as a Responses request. */
const asResponses = (c: Conversation) => ({
  model: "auto",
  ...(c.instructions === undefined ? {} : { instructions: c.instructions }),
  input: [
    ...c.rounds.flatMap((r): Array<unknown> => [
      { role: "user", content: r.user },
      ...("calls" in r.answer
        ? [
          ...(r.answer.text === null ? [] : [{ role: "assistant", content: [{ type: "output_text", text: r.answer.text }] }]),
          ...r.answer.calls.map((k) => ({ type: "function_call", call_id: k.call_id, name: k.name, arguments: k.arguments })),
          ...r.answer.calls.map((k) => ({ type: "function_call_output", call_id: k.call_id, output: k.output }))
        ]
        : [{ type: "message", role: "assistant", content: r.answer.text }])
    ]),
    { role: "user", content: [{ type: "input_text", text: c.last }] }
  ],
  ...(c.max === undefined ? {} : { max_output_tokens: c.max }),
  ...(c.tools.length === 0 ? {} : { tools: c.tools.map((name) => ({ type: "function", name, parameters: { type: "object" } })) })
})

const translate = (body: unknown, items = ResponseItems.make()) =>
  Either.getOrThrowWith(Responses.toChat(body, { upstream: "local", items }), (error) => new Error(error.message))

describe("the Responses API's translation to chat completions", () => {
  it.prop("puts any conversation to the upstream as its chat completions twin", [conversation], ([c]) => {
    assert.deepStrictEqual(translate(asResponses(c)).chat, asChat(c))
  })

  it.prop("classifies any conversation as it classifies its chat completions twin", [conversation], ([c]) => {
    const request = Either.getOrThrow(Responses.validate(asResponses(c)))
    assert.deepStrictEqual(classify(Responses.classifiable(request), settings), classify(asChat(c), settings))
  })

  it("sends a developer message as a system message, and an image only in a user message", () => {
    const { chat } = translate({
      model: "auto",
      input: [
        { role: "developer", content: [{ type: "input_text", text: "Answer in French." }] },
        { role: "user", content: [{ type: "input_text", text: "What is this?" }, { type: "input_image", image_url: "data:image/png;base64,AA", detail: "low" }] }
      ]
    })
    assert.deepStrictEqual(chat["messages"], [
      { role: "system", content: "Answer in French." },
      { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AA", detail: "low" } }] }
    ])
    const refused = Responses.toChat(
      { model: "auto", input: [{ role: "system", content: [{ type: "input_image", image_url: "https://x/y.png" }] }] },
      { upstream: "local", items: ResponseItems.make() }
    )
    assert.isTrue(Either.isLeft(refused))
    assert.strictEqual(Either.isLeft(refused) && refused.left.param, "input.0.content.0")
  })

  it("asks for structured output, reasoning effort and verbosity in chat's words", () => {
    const schema = { type: "object", properties: { a: { type: "string" } }, required: ["a"] }
    const { chat } = translate({
      model: "auto",
      input: "hi",
      text: { format: { type: "json_schema", name: "answer", schema, strict: true }, verbosity: "low" },
      reasoning: { effort: "low" },
      parallel_tool_calls: false,
      tool_choice: "required",
      stream: true
    })
    assert.deepStrictEqual(chat, {
      model: "auto",
      messages: [{ role: "user", content: "hi" }],
      tool_choice: "required",
      parallel_tool_calls: false,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } },
      verbosity: "low",
      reasoning_effort: "low",
      stream: true,
      stream_options: { include_usage: true }
    })
    assert.deepStrictEqual(translate({ model: "auto", input: "hi", text: { format: { type: "json_object" } } }).chat["response_format"], {
      type: "json_object"
    })
  })

  it("resolves an item_reference to an item of an earlier answer, until it is forgotten", () => {
    const items = ResponseItems.make({ maxItems: 2, maxChars: 1000 })
    const answer = (body: unknown) =>
      ResponsesAnswer.fromCompletion(
        { request: translate({ model: "auto", input: "q" }, items).request, model: "m", id: "resp_1", created_at: 1 },
        body,
        items
      )
    const first = answer({ choices: [{ message: { content: "first" }, finish_reason: "stop" }] })
    const firstId = (first.output[0] as { id: string }).id
    assert.deepStrictEqual(translate({ model: "auto", input: [{ type: "item_reference", id: firstId }] }, items).chat["messages"], [
      { role: "assistant", content: "first" }
    ])
    // Two more items push the first out.
    answer({ choices: [{ message: { content: null, tool_calls: [{ id: "c1", function: { name: "f", arguments: "{}" } }, { id: "c2", function: { name: "g", arguments: "{}" } }] } }] })
    const gone = Responses.toChat({ model: "auto", input: [{ type: "item_reference", id: firstId }] }, { upstream: "local", items })
    assert.isTrue(Either.isLeft(gone))
  })
})

describe("the harness's memory of answer items", () => {
  it("keeps at most maxItems and maxChars, forgetting the oldest first", () => {
    const items = ResponseItems.make({ maxItems: 3, maxChars: 10 })
    const message = (id: string, text: string) => ({ id, type: "message" as const, role: "assistant" as const, content: text })
    items.remember([message("a", "1234"), message("b", "1234")])
    assert.isDefined(items.recall("a"))
    items.remember([message("c", "1234")]) // 12 characters: a goes
    assert.deepStrictEqual(["a", "b", "c"].map((id) => items.recall(id) !== undefined), [false, true, true])
    items.remember([message("d", ""), message("e", "")]) // 4 items: b goes
    assert.deepStrictEqual(["b", "c", "d", "e"].map((id) => items.recall(id) !== undefined), [false, true, true, true])
  })
})

describe("a chat stream as Responses events", () => {
  const echo = { request: translate({ model: "auto", input: "q" }).request, model: "m", id: "resp_1", created_at: 1 }
  const run = (...sse: ReadonlyArray<string>) =>
    Stream.make(...sse.map((s) => new TextEncoder().encode(s))).pipe(
      ResponsesAnswer.events(echo, ResponseItems.make()),
      Stream.decodeText(),
      Stream.mkString,
      Effect.map((text) => text.split("\n\n").filter((e) => e !== "").map((e) => JSON.parse(e.split("\n")[1]!.slice(6))))
    )
  const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`

  it.effect("reads events split anywhere across the bytes it is given", () =>
    Effect.gen(function*() {
      const whole = chunk({ content: "Hel" }) + chunk({ content: "lo" }, "stop") + "data: [DONE]\n\n"
      const cuts = [3, 17, 40, whole.length - 5]
      const pieces = [0, ...cuts].map((at, i) => whole.slice(at, [...cuts, whole.length][i]))
      const events = yield* run(...pieces)
      assert.strictEqual(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), "Hello")
      assert.strictEqual(events.at(-1).type, "response.completed")
    }))

  it.effect("ends a stream that stops before its finish with error and response.failed, and a cut answer as incomplete", () =>
    Effect.gen(function*() {
      const cut = yield* run(chunk({ content: "Hel" }))
      assert.deepStrictEqual(cut.slice(-2).map((e) => e.type), ["error", "response.failed"])
      assert.strictEqual(cut.at(-1).response.output[0].status, "incomplete")
      const long = yield* run(chunk({ content: "Hel" }, "length"))
      assert.strictEqual(long.at(-1).type, "response.incomplete")
      assert.deepStrictEqual(long.at(-1).response.incomplete_details, { reason: "max_output_tokens" })
    }))
})
