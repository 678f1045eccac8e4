import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Server from "../../src/harness/Server.js"
import { ask, http, start } from "./fixtures.js"

describe("harness connections", () => {
  it.scoped("are kept 15 s idle and say so, on the chat route and the router's alike", () =>
    Effect.gen(function*() {
      const harness = yield* start([{ content: "4" }])
      const key = yield* harness.key()
      const chat = yield* http(harness, "POST", "/v1/chat/completions", { key, body: ask("what is 2+2?") })
      const models = yield* http(harness, "GET", "/v1/models", { key })
      assert.deepStrictEqual([chat.status, models.status], [200, 200])
      // A client pool drops a connection a little before the server would: with Node's 5 s, after 4 s idle.
      for (const answer of [chat, models]) assert.strictEqual(answer.headers.get("keep-alive"), `timeout=${Server.keepAliveMillis / 1000}`)
    }))
})
