import { HttpApp, HttpServer } from "@effect/platform"
import { Context, Effect, Layer, Ref, Schema, type Scope } from "effect"
import * as Net from "node:net"
import OpenAI from "openai"
import * as Gateway from "../../src/harness/Gateway.js"
import { HarnessConfig } from "../../src/harness/HarnessConfig.js"
import { HarnessStore, type NewKey } from "../../src/harness/HarnessStore.js"
import * as Server from "../../src/harness/Server.js"
import * as Database from "../../src/store/Database.js"
import type { Specialist } from "../../src/specialists/Specialist.js"
import * as PromotionStore from "../../src/store/PromotionStore.js"
import * as TestServer from "../llm/openai-test-server.js"

export type ConfigInput = typeof HarnessConfig.Encoded

/** Three tiers on one upstream, every model in the shared pricing table; `overrides` replace top-level fields. */
export const configInput = (upstream: string, overrides: Partial<ConfigInput> = {}): ConfigInput => ({
  org: "acme",
  upstreams: { test: { base_url: upstream } },
  models: [
    { id: "gpt-4.1-nano", upstream: "test" },
    { id: "gpt-4o-mini", upstream: "test" },
    { id: "gpt-4.1", upstream: "test" }
  ],
  tiers: { simple: "gpt-4.1-nano", medium: "gpt-4o-mini", complex: "gpt-4.1" },
  ...overrides
})

export const config = (upstream: string, overrides: Partial<ConfigInput> = {}): HarnessConfig =>
  Schema.decodeUnknownSync(HarnessConfig)(configInput(upstream, overrides))

export interface Harness {
  /** The harness root, e.g. http://127.0.0.1:40123. */
  readonly url: string
  readonly upstream: TestServer.TestServer
  readonly store: HarnessStore["Type"]
  /** The promoted routes on the harness's database. */
  readonly promotions: PromotionStore.PromotionStore["Type"]
  /** A new key for this identity. */
  readonly key: (identity?: Partial<NewKey>) => Effect.Effect<string>
  /** The official SDK pointed at the harness with `key`. */
  readonly client: (key: string) => OpenAI
  /** The request log's lines so far, oldest first. */
  readonly log: Effect.Effect<ReadonlyArray<string>>
}

/**
 * A harness on 127.0.0.1 with an in-memory ledger, in front of a scripted upstream: real HTTP on both
 * sides, as a deployment has it, its request log kept in memory.
 */
export const start = (
  script: ReadonlyArray<TestServer.Reply | ((request: TestServer.RecordedRequest) => TestServer.Reply)>,
  /** Replace top-level config fields; a function sees the scripted upstream's base URL. */
  overrides: Partial<ConfigInput> | ((upstream: string) => Partial<ConfigInput>) = {}
): Effect.Effect<Harness, never, Scope.Scope> =>
  Effect.gen(function*() {
    const upstream = yield* TestServer.make(script)
    const fields = typeof overrides === "function" ? overrides(upstream.baseURL) : overrides
    const lines = yield* Ref.make<ReadonlyArray<string>>([])
    const log = (line: string) => Ref.update(lines, (all) => [...all, line])
    const layer = Server.layer({ port: 0, host: "127.0.0.1", log }).pipe(
      Layer.provideMerge(Layer.merge(Gateway.layerWithStore(config(upstream.baseURL, fields)), PromotionStore.layer)),
      Layer.provide(Database.layerSqlite(":memory:"))
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    const store = Context.get(context, HarnessStore)
    return {
      url: HttpServer.formatAddress(address),
      upstream,
      store,
      promotions: Context.get(context, PromotionStore.PromotionStore),
      key: (identity = {}) =>
        store.createKey({ user: "alice", project: "p1", ...identity }).pipe(Effect.map((created) => created.key), Effect.orDie),
      client: (key) => new OpenAI({ baseURL: `${HttpServer.formatAddress(address)}/v1`, apiKey: key, maxRetries: 0 }),
      log: Ref.get(lines)
    }
  })

/** Runs a promise from the SDK; its rejection (an OpenAI.APIError) is the failure. */
export const call = <A>(promise: () => Promise<A>) => Effect.tryPromise({ try: promise, catch: (error) => error as InstanceType<typeof OpenAI.APIError> })

export const ask = (text: string) => ({ model: "auto", messages: [{ role: "user" as const, content: text }] })

/** The SDK call's failure, as the APIError the client saw; a call that succeeds fails the test. */
export const refusal = <A>(promise: () => Promise<A>) => Effect.flip(call(promise))

/** Every chunk of a streamed answer, or the error the SDK threw while reading it (with the chunks before it). */
/** Reads a stream to its end or its error; `chunks` fills as they arrive, for a test that waits on them. */
export const drain = <A>(open: () => Promise<AsyncIterable<A>>, chunks: Array<A> = []) =>
  Effect.promise(async () => {
    try {
      for await (const chunk of await open()) chunks.push(chunk)
      return { chunks, error: undefined as InstanceType<typeof OpenAI.APIError> | undefined }
    } catch (error) {
      return { chunks, error: error as InstanceType<typeof OpenAI.APIError> }
    }
  })

export interface Answer {
  readonly status: number
  readonly headers: Headers
  /** The body as text, to check what it must never contain. */
  readonly text: string
  /** The body parsed as JSON (undefined when it is not). */
  readonly body: any
}

/**
 * A plain HTTP request to the harness, for what the SDK would not send (bad bodies, no key) and the admin
 * API. `body` is sent as JSON unless it is a string, which is sent verbatim.
 */
export const http = (
  harness: Harness,
  method: string,
  path: string,
  options: { readonly key?: string; readonly body?: unknown; readonly headers?: Record<string, string> } = {}
): Effect.Effect<Answer> =>
  Effect.promise(async () => {
    const response = await fetch(`${harness.url}${path}`, {
      method,
      headers: {
        ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers
      },
      ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) })
    })
    const text = await response.text()
    let body: any = undefined
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: response.status, headers: response.headers, text, body }
  })

/** An http:// base URL on 127.0.0.1 where nothing listens: a port that was free a moment ago. */
export const closedPort = Effect.async<string>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}/v1`)))
  })
})

const prose = (tokens: number) => "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(tokens * 4 / 45))

const tool = (name: string): OpenAI.Chat.ChatCompletionTool => ({
  type: "function",
  function: { name, description: `the ${name} tool`, parameters: { type: "object", properties: { path: { type: "string" } } } }
})

/**
 * A long agentic turn: a system prompt, several rounds of user, assistant and tool messages, four tools, code,
 * and a last message asking to design and refactor. The classifier calls it complex with room to spare.
 */
export const designRequest = (model = "auto"): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming => ({
  model,
  tools: [tool("read_file"), tool("write_file"), tool("run_tests"), tool("search")],
  messages: [
    { role: "system", content: "You are a senior engineer." },
    { role: "user", content: prose(800) },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "read_file", arguments: "{\"path\":\"src/cache.ts\"}" } }]
    },
    { role: "tool", tool_call_id: "call_1", content: "```ts\nexport class Cache { get(k: string) { return this.m.get(k) } }\n```" },
    { role: "assistant", content: "I have read the module." },
    { role: "user", content: prose(800) },
    { role: "assistant", content: "Noted." },
    { role: "user", content: prose(400) },
    { role: "assistant", content: "Understood." },
    {
      role: "user",
      content: "Design a sharded cache for this service, then refactor the module to use it:\n" +
        "```ts\nclass Cache { get(k: string) { return this.m.get(k) } }\n```"
    }
  ]
})

/**
 * Runs `effect` again, every 10 ms of real time and at most 200 times, until it neither fails nor dies: for
 * what the harness writes just after the client stops reading, such as the ledger row of an abandoned stream.
 */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, attempts = 200): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.catchAllCause((cause) =>
    attempts <= 1
      ? Effect.failCause(cause)
      : Effect.zipRight(Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))), eventually(effect, attempts - 1))
  ))

/**
 * The same app with no socket, as `HarnessLlm.layerInProcess` runs it: a web handler on web Requests.
 * `fetch` can be given to the SDK.
 */
export const startInProcess = (
  script: ReadonlyArray<TestServer.Reply>,
  overrides: Partial<ConfigInput> = {}
) =>
  Effect.gen(function*() {
    const upstream = yield* TestServer.make(script)
    const layer = Layer.merge(Gateway.layerWithStore(config(upstream.baseURL, overrides)), PromotionStore.layer).pipe(
      Layer.provide(Database.layerSqlite(":memory:"))
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const runtime = yield* Effect.provide(Effect.runtime<Gateway.Gateway | HarnessStore>(), context)
    const handler = HttpApp.toWebHandlerRuntime(runtime)(Server.app)
    const store = Context.get(context, HarnessStore)
    const fetch = (input: string | URL | Request, init?: RequestInit) => handler(new Request(input, init))
    return {
      upstream,
      store,
      promotions: Context.get(context, PromotionStore.PromotionStore),
      fetch,
      key: (identity: Partial<NewKey> = {}) =>
        store.createKey({ user: "alice", project: "p1", ...identity }).pipe(Effect.map((created) => created.key), Effect.orDie),
      client: (key: string) => new OpenAI({ baseURL: "http://harness.in-process/v1", apiKey: key, maxRetries: 0, fetch })
    }
  })

/** A small-tier specialist, for runs through the harness as a specialist. */
export const releaseNotesWriter: Specialist = {
  id: "release-notes-writer",
  name: "Release Notes Writer",
  category: "writing",
  role: "Turns changes into release notes.",
  goal: "Notes users can act on.",
  background: "Keep a Changelog.",
  instructions: ["Put breaking changes first."],
  allowed_tools: [],
  model_tier: "simple"
}
