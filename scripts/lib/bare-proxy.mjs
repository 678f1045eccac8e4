/**
 * The floor under any proxy on this machine: a node:http server that forwards every request to `--to=URL`
 * (the bench's fake upstream) over a kept-alive http.Agent and pipes the answer back, status, content type
 * and body as they come, streamed or not. No key, no parsing, no ledger: what a proxy pays for the second
 * hop and nothing else. scripts/bench-portkey.ts measures it beside the harness, in the same run.
 *
 *   node scripts/lib/bare-proxy.mjs --to=http://127.0.0.1:PORT
 *
 * Prints "bare proxy listening on http://127.0.0.1:PORT".
 */
import { Agent, createServer, request } from "node:http"

const to = new URL(process.argv.find((a) => a.startsWith("--to="))?.slice("--to=".length) ?? "")
const agent = new Agent({ keepAlive: true, maxSockets: 256 })

const server = createServer((req, res) => {
  const parts = []
  req.on("data", (part) => parts.push(part))
  req.on("end", () => {
    const body = Buffer.concat(parts)
    const forwarded = request({
      agent,
      host: to.hostname,
      port: to.port,
      method: req.method,
      path: req.url,
      headers: { "content-type": req.headers["content-type"] ?? "application/json", "content-length": body.length }
    }, (answer) => {
      const length = answer.headers["content-length"]
      res.writeHead(answer.statusCode ?? 502, {
        "content-type": answer.headers["content-type"] ?? "application/json",
        ...(length === undefined ? {} : { "content-length": length })
      })
      answer.pipe(res)
    })
    forwarded.on("error", (error) => res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: String(error) } })))
    // A client gone before the answer's end: the upstream's connection goes too (else it goes back to the pool).
    res.on("close", () => {
      if (!res.writableFinished) forwarded.destroy()
    })
    forwarded.end(body)
  })
})
server.keepAliveTimeout = 15_000
server.listen(0, "127.0.0.1", () => console.log(`bare proxy listening on http://127.0.0.1:${server.address().port}`))
