import { assert, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect } from "effect"
import * as vm from "node:vm"
import { assets, contentSecurityPolicy } from "../../src/api/OperatorPage.js"
import { eachDatabase, sqlite } from "../support/Databases.js"
import { environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { serve } from "./fixtures.js"

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

it.scopedLive("serves the page, its script, styles and icon under a CSP of 'self' alone, each with an ETag that a browser revalidates for a 304", () =>
  Effect.gen(function*() {
    const { base } = yield* serve(yield* sqlite.shared).pipe(Effect.provide(NodeContext.layer))
    const page = yield* get(`${base}/`)
    assert.strictEqual(page.status, 200)
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
    assert.strictEqual(page.headers.get("content-security-policy"), contentSecurityPolicy)
    for (const directive of contentSecurityPolicy.split(";").map((d) => d.trim().split(/\s+/))) {
      assert.includeMembers(["'self'", "'none'"], directive.slice(1), `${directive[0]} allows only 'self' (or nothing)`)
    }
    // Nothing from another origin: every script, style and image the page names is one of the server's own.
    const named = [...page.text.matchAll(/(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]!)
    assert.deepStrictEqual(named.filter((url) => !url.startsWith("/")), [])
    assert.deepStrictEqual(named.sort(), assets.filter((a) => a.path !== "/").map((a) => a.path).sort())
    for (const asset of assets) {
      const first = yield* get(base + asset.path)
      assert.strictEqual(first.status, 200, asset.path)
      assert.strictEqual(first.headers.get("content-type"), asset.contentType)
      assert.strictEqual(first.headers.get("content-security-policy"), contentSecurityPolicy)
      assert.strictEqual(first.headers.get("cache-control"), "no-cache")
      const etag = first.headers.get("etag")
      assert.match(etag ?? "", /^"[\w-]+"$/)
      const again = yield* get(base + asset.path, { "if-none-match": `W/"other", ${etag}` })
      assert.deepStrictEqual([again.status, again.text, again.headers.get("etag")], [304, "", etag])
      const changed = yield* get(base + asset.path, { "if-none-match": `"not-this-build"` })
      assert.strictEqual(changed.status, 200)
    }
  }))

it("the page's script is one valid script that never writes the API's text as HTML", () => {
  const script = assets.find((a) => a.path === "/page/app.js")!.body
  assert.doesNotThrow(() => new vm.Script(script, { filename: "app.js" }))
  assert.notMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
})

eachDatabase("GET /spend", (database) => {
  it.scopedLive("gives each run's cost and the spend per model of the caller's project, summed over the calls its steps recorded", () =>
    Effect.gen(function*() {
      const db = yield* database.shared
      const { base, tokens } = yield* serve(db).pipe(Effect.provide(NodeContext.layer))
      const mock = (model: string) => script([{ content: "part", criteria_met: [true, false] }, { content: "done", criteria_met: [true, true] }], { model })
      const env = environmentWith([], db)
      const cheap = yield* runMission({ runId: "cheap", goal: goal(2) }, mock("gpt-4o-mini")).pipe(Effect.provide(env))
      const dear = yield* runMission({ runId: "dear", goal: goal(2) }, mock("gpt-4o")).pipe(Effect.provide(env))

      const spend = yield* get(`${base}/api/v1/autopilot/spend`, { authorization: `Bearer ${tokens.admin}` })
      assert.strictEqual(spend.status, 200, spend.text)
      const body = JSON.parse(spend.text)
      assert.deepStrictEqual(
        body.runs.map((r: any) => [r.run_id, r.kind, r.status, r.cost_usd]),
        [["cheap", "run", "completed", cheap.result.usage.dollars], ["dear", "run", "completed", dear.result.usage.dollars]]
      )
      assert.deepStrictEqual(body.models.map((m: any) => m.model), ["gpt-4o", "gpt-4o-mini"], "costliest first")
      for (const [model, run] of [["gpt-4o", dear], ["gpt-4o-mini", cheap]] as const) {
        const row = body.models.find((m: any) => m.model === model)
        assert.closeTo(row.cost_usd, run.result.usage.dollars, 1e-12)
        assert.strictEqual(row.input_tokens + row.output_tokens, run.result.usage.tokens)
        // Two iterations, each an act call and a judge call.
        assert.strictEqual(row.calls, 4)
      }

      const limited = JSON.parse((yield* get(`${base}/api/v1/autopilot/spend?limit=1`, { authorization: `Bearer ${tokens.admin}` })).text)
      assert.deepStrictEqual(limited.runs.map((r: any) => r.run_id), ["dear"])
      assert.deepStrictEqual(limited.models.map((m: any) => m.model), ["gpt-4o"])

      const other = yield* get(`${base}/api/v1/autopilot/spend`, { authorization: `Bearer ${tokens.p1}` })
      assert.deepStrictEqual([other.status, JSON.parse(other.text)], [200, { runs: [], models: [] }])
      const anonymous = yield* get(`${base}/api/v1/autopilot/spend`)
      assert.strictEqual(anonymous.status, 401)
      const bad = yield* get(`${base}/api/v1/autopilot/spend?limit=0`, { authorization: `Bearer ${tokens.admin}` })
      assert.strictEqual(bad.status, 400)
      assert.match(JSON.parse(bad.text).error.message, /limit/)
    }))
})
