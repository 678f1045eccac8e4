import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { eachDatabase } from "../support/Databases.js"
import { ids, promotedReport, promotedScope, seedFineTunes, tunedModel } from "./finetuneFixtures.js"
import { http, serve } from "./fixtures.js"

const errorShape = (response: { readonly status: number; readonly json: any }, status: number, code: string) => {
  assert.strictEqual(response.status, status, JSON.stringify(response.json))
  assert.deepStrictEqual(Object.keys(response.json ?? {}), ["error"])
  assert.strictEqual(response.json.error.code, code)
  assert.notMatch(response.json.error.message, /\n|at .*\.ts:\d+/, "one line, no stack")
}

eachDatabase("GET /finetunes", (database) => {
  /** A server whose database holds the fixtures' three jobs, their reports, routes and samples. */
  const setup = Effect.gen(function*() {
    const served = yield* serve(yield* database.shared).pipe(Effect.provide(NodeContext.layer))
    yield* Effect.provide(seedFineTunes, served.context)
    return { ...served, call: http(served.base) }
  })

  it.scopedLive("the admin sees every job, newest first, with its latest verdict and whether its model takes traffic now", () =>
    Effect.gen(function*() {
      const { call, tokens } = yield* setup
      const listed = yield* call("GET", "/api/v1/autopilot/finetunes", { token: tokens.admin })
      assert.strictEqual(listed.status, 200)
      assert.deepStrictEqual(
        listed.json.map((l: any) => [l.job.id, l.job.status, l.job.dataset_id, l.verdict, l.takes_traffic, l.traffic_scope]),
        [
          [ids.running, "running", "specialist.sorter", null, false, null],
          [ids.promoted, "succeeded", "triage-classify", "promotable", true, promotedScope],
          [ids.candidate, "succeeded", "blueprint.triage", "candidate", false, null]
        ]
      )
      assert.strictEqual(listed.json[1].job.fine_tuned_model, tunedModel)
      assert.strictEqual(listed.json[1].evaluated_at, promotedReport.evaluated_at)
      // Fine-tunes are the instance's: the project the admin names changes nothing.
      const asP1 = yield* call("GET", "/api/v1/autopilot/finetunes", { token: tokens.admin, headers: { "x-project-id": "p1" } })
      assert.deepStrictEqual(asP1.json, listed.json)
    }))

  it.scopedLive("a project token, or a session signed in with one, is refused with a 403 naming why; no token is a 401; the admin's session sees them", () =>
    Effect.gen(function*() {
      const { call, tokens } = yield* setup
      for (const path of ["/api/v1/autopilot/finetunes", `/api/v1/autopilot/finetunes/${ids.promoted}`, "/api/v1/autopilot/finetunes/ft-unknown"]) {
        const refused = yield* call("GET", path, { token: tokens.p1 })
        errorShape(refused, 403, "forbidden")
        assert.match(refused.json.error.message, /^only the admin token .* may see fine-tunes: their datasets are made from every project's work/)
        errorShape(yield* call("GET", path), 401, "unauthorized")
      }
      const cookieOf = (token: string) =>
        Effect.map(call("POST", "/api/v1/session", { body: { token } }), (answer) => ({ cookie: answer.headers.get("set-cookie")!.split(";")[0]! }))
      const project = yield* cookieOf(tokens.p2)
      errorShape(yield* call("GET", "/api/v1/autopilot/finetunes", { headers: project }), 403, "forbidden")
      const admin = yield* cookieOf(tokens.admin)
      assert.strictEqual((yield* call("GET", `/api/v1/autopilot/finetunes/${ids.promoted}`, { headers: admin })).status, 200)
    }))

  it.scopedLive("shows a job: its log, its reports in full, its routes, and its scope's cost per step split at the promotion with the promotions and the rollback marked", () =>
    Effect.gen(function*() {
      const { call, tokens } = yield* setup
      const shown = yield* call("GET", `/api/v1/autopilot/finetunes/${ids.promoted}`, { token: tokens.admin })
      assert.strictEqual(shown.status, 200)
      const detail = shown.json
      assert.strictEqual(detail.job.id, ids.promoted)
      assert.deepStrictEqual(detail.events.map((e: any) => e.kind), ["finetune_started", "finetune_promoted"])
      assert.deepStrictEqual(detail.evaluations, [JSON.parse(JSON.stringify(promotedReport))])
      assert.deepStrictEqual(detail.evaluations[0].candidate.cost_per_step_usd, 0.0021)
      assert.strictEqual(detail.evaluations[0].verdict, "promotable")
      assert.deepStrictEqual(detail.routes.map((r: any) => [r.id, r.retired_at === null]), [["route-b2", true], ["route-b1", false]])
      assert.deepStrictEqual([detail.takes_traffic, detail.scope], [true, promotedScope])

      const curve = detail.curve
      assert.deepStrictEqual([curve.scope, curve.model, curve.promoted_at, curve.bucket_seconds], [promotedScope, tunedModel, "2025-03-10T12:00:00.000Z", 900])
      assert.deepStrictEqual(
        curve.buckets.map((b: any) => [b.from, b.phase, b.steps, b.model_steps]),
        [
          ["2025-03-10T10:00:00.000Z", "before", 2, 0],
          ["2025-03-10T11:00:00.000Z", "before", 2, 0],
          ["2025-03-10T12:30:00.000Z", "after", 2, 2],
          ["2025-03-10T14:30:00.000Z", "after", 2, 2]
        ]
      )
      assert.deepStrictEqual(curve.markers.map((m: any) => [m.kind, m.at]), [
        ["promoted", "2025-03-10T12:00:00.000Z"],
        ["rolled_back", "2025-03-10T13:30:00.000Z"],
        ["promoted", "2025-03-10T14:00:00.000Z"]
      ])
      assert.closeTo(curve.before.cost_per_step_usd, 0.012, 1e-12)
      assert.closeTo(curve.after.cost_per_step_usd, 0.002, 1e-12)
      assert.closeTo(curve.change, -5 / 6, 1e-9)

      // A job never evaluated has the scope its derived dataset names, and every step before.
      const running = (yield* call("GET", `/api/v1/autopilot/finetunes/${ids.running}`, { token: tokens.admin })).json
      assert.deepStrictEqual([running.scope, running.evaluations, running.routes, running.takes_traffic], ["specialist:sorter", [], [], false])
      assert.deepStrictEqual([running.curve.promoted_at, running.curve.before.steps, running.curve.after.steps], [null, 2, 0])
      // A candidate's curve is of the scope its evaluation names: the whole blueprint's steps, never promoted.
      const candidate = (yield* call("GET", `/api/v1/autopilot/finetunes/${ids.candidate}`, { token: tokens.admin })).json
      assert.deepStrictEqual([candidate.scope, candidate.evaluations[0].verdict, candidate.curve.promoted_at, candidate.curve.before.steps], ["blueprint:triage", "candidate", null, 8])
      assert.match(candidate.evaluations[0].reason, /more than 2 points below/)
    }))

  it.scopedLive("an unknown job is a 404 and an id that cannot be one a 400, each in the error shape; the routes are in the OpenAPI document", () =>
    Effect.gen(function*() {
      const { call, tokens } = yield* setup
      const unknown = yield* call("GET", "/api/v1/autopilot/finetunes/ft-ffffffffffff", { token: tokens.admin })
      errorShape(unknown, 404, "not_found")
      assert.strictEqual(unknown.json.error.message, "no fine-tune job \"ft-ffffffffffff\" in this database (see `autopilot finetune list`)")
      for (const bad of ["%20ft-1", "ft%2F..%2Fx", "-ft", "ft%0A1"]) {
        const refused = yield* call("GET", `/api/v1/autopilot/finetunes/${bad}`, { token: tokens.admin })
        errorShape(refused, 400, "bad_request")
        assert.match(refused.json.error.message, /fine-tune job's id is 1-100 letters/)
      }
      // Longer than the router takes: refused before any handler, as for every route's id.
      const long = yield* call("GET", `/api/v1/autopilot/finetunes/${"x".repeat(200)}`, { token: tokens.admin })
      errorShape(long, 400, "bad_request")
      assert.match(long.json.error.message, /an id in a path is at most 100 characters$/)
      errorShape(yield* call("POST", "/api/v1/autopilot/finetunes", { token: tokens.admin, body: {} }), 405, "method_not_allowed")
      const openapi = yield* call("GET", "/api/v1/openapi.json")
      for (const path of ["/api/v1/autopilot/finetunes", "/api/v1/autopilot/finetunes/{id}"]) {
        const get = openapi.json.paths[path]?.get
        assert.isDefined(get, path)
        assert.includeMembers(Object.keys(get.responses), ["200", "400", "401", "403", "404"], path)
      }
    }))
})

eachDatabase("GET /finetunes on a database without fine-tunes", (database) => {
  it.scopedLive("is an empty list, not an error", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* serve(yield* database.shared).pipe(Effect.provide(NodeContext.layer))
      const listed = yield* http(base)("GET", "/api/v1/autopilot/finetunes", { token: tokens.admin })
      assert.deepStrictEqual([listed.status, listed.json], [200, []])
    }))
})
