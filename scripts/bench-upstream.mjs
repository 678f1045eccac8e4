/**
 * The stand-in upstream for scripts/bench-harness.ts: a bare node:http server that answers every
 * POST /v1/chat/completions at once with a fixed, small chat.completion (with usage), or, when the body
 * asks for `"stream":true`, with a fixed SSE stream (three content chunks, a finish chunk, a usage chunk,
 * [DONE]) written in one go. It reads the whole body first, as a real server would, and does nothing else.
 *
 *   node scripts/bench-upstream.mjs                    the upstream
 *   node scripts/bench-upstream.mjs --proxy=URL        reference: a bare proxy (node:http server, global
 *                                                      fetch to URL/chat/completions, answer passed back)
 *   node scripts/bench-upstream.mjs --effect           reference: the same fixed answer served through
 *                                                      @effect/platform-node's HttpServer and HttpRouter, as
 *                                                      the harness serves, after reading the body as JSON
 *
 * Each prints "upstream listening on http://127.0.0.1:PORT". It runs in its own process so its work does not
 * share the benchmark client's event loop.
 */
import { createServer } from "node:http"

const proxyTo = process.argv.find((a) => a.startsWith("--proxy="))?.slice("--proxy=".length)
const effect = process.argv.includes("--effect")

const created = 1_763_780_000
const completion = Buffer.from(JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created,
  model: "gpt-4.1-nano",
  choices: [{ index: 0, message: { role: "assistant", content: "OK", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13 }
}))

const chunk = (fields) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created, model: "gpt-4.1-nano", ...fields })}\n\n`
const delta = (content, finish_reason = null) => ({ choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason }] })
const stream = Buffer.from([
  chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }),
  chunk(delta("O")),
  chunk(delta("K")),
  chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] }),
  chunk({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13 } }),
  "data: [DONE]\n\n"
].join(""))

/** The bare proxy: what any proxy with an HTTP client hop pays on this machine, and nothing else. */
const proxy = (req, res, body) => {
  fetch(`${proxyTo}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
    async (answer) => {
      const bytes = Buffer.from(await answer.arrayBuffer())
      res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json", "content-length": bytes.length })
        .end(bytes)
    },
    (error) => res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: String(error) } }))
  )
}

const serveEffect = async () => {
  const { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } = await import("@effect/platform")
  const { NodeHttpServer, NodeRuntime } = await import("@effect/platform-node")
  const { Effect, Layer } = await import("effect")
  const answer = JSON.parse(completion.toString())
  const router = HttpRouter.empty.pipe(HttpRouter.post(
    "/v1/chat/completions",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.json).pipe(
      Effect.as(HttpServerResponse.unsafeJson(answer)),
      Effect.orDie
    )
  ))
  const announce = Layer.effectDiscard(Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.sync(() => console.log(`upstream listening on ${HttpServer.formatAddress(server.address)}`))))
  NodeRuntime.runMain(Layer.launch(Layer.merge(HttpServer.serve(router), announce).pipe(
    Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )))
}

const server = createServer((req, res) => {
  const parts = []
  req.on("data", (part) => parts.push(part))
  req.on("end", () => {
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" }).end(`{"error":{"message":"not found"}}`)
      return
    }
    if (proxyTo !== undefined) return proxy(req, res, Buffer.concat(parts))
    if (Buffer.concat(parts).includes('"stream":true')) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" }).end(stream)
    } else {
      res.writeHead(200, { "content-type": "application/json", "content-length": completion.length }).end(completion)
    }
  })
})
// Idle keep-alive connections (between rounds) stay open: a reconnect must not land inside a measurement.
server.keepAliveTimeout = 120_000
server.headersTimeout = 121_000

if (effect) {
  await serveEffect()
} else {
  server.listen(0, "127.0.0.1", () => {
    console.log(`upstream listening on http://127.0.0.1:${server.address().port}`)
  })
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections())
}
