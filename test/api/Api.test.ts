import { assert, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer } from "effect"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import { Missions } from "../../src/missions/Missions.js"
import * as BlueprintService from "../../src/routing/BlueprintService.js"
import { FetchHttpClient } from "@effect/platform"
import { Option, Redacted } from "effect"
import { SqlClient } from "@effect/sql"
import * as BlueprintCacheStore from "../../src/store/BlueprintCacheStore.js"
import * as Database from "../../src/store/Database.js"
import { eachDatabase } from "../support/Databases.js"
import { environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { client, http, serve } from "./fixtures.js"

const releaseGoal = "write release notes for v2.1 from the changelog"

eachDatabase("the HTTP API", (database) => {
  /** A server on a fresh database, with one completed run (`done`) written there as `autopilot run` would. */
  const setup = Effect.gen(function*() {
    const db = yield* database.shared
    const served = yield* serve(db)
    yield* runMission({ runId: "done", goal: goal(1) }, script([{ content: "the answer", criteria_met: [true] }])).pipe(
      Effect.provide(environmentWith([], db))
    )
    return { ...served, db, call: http(served.base) }
  })

  it.scopedLive("serves the seed's routes and shapes: status, enable, disable, goal, missions, approve, delete", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const status = yield* api.autopilot.status()
      assert.deepStrictEqual([status.enabled, status.tier, typeof status.instance_id], [true, "anonymous", "string"])
      assert.deepStrictEqual(yield* api.autopilot.enable({ payload: { tier: "free" } }), { ok: true })
      assert.strictEqual((yield* api.autopilot.status()).tier, "free")
      assert.deepStrictEqual(yield* api.autopilot.disable(), { ok: true })
      const refused = yield* Effect.flip(api.autopilot.goal({ payload: { goal: releaseGoal } }))
      assert.strictEqual(refused._tag, "Conflict")
      yield* api.autopilot.enable({ payload: {} })

      const outcome = yield* api.autopilot.goal({ payload: { goal: releaseGoal } })
      assert.strictEqual(outcome.kind, "auto_routed")
      if (outcome.kind !== "auto_routed") return
      assert.strictEqual(outcome.blueprint_id, "release_notes")
      assert.includeMembers([...outcome.missing_slots], ["changes"])
      const listed = yield* api.missions.list({ urlParams: {} })
      assert.deepStrictEqual(listed.map((m) => [m.mission_id, m.status, m.project_id]), [[outcome.mission_id, "draft", "default"]])

      const missing = yield* Effect.flip(api.missions.approve({ path: { id: outcome.mission_id }, payload: {} }))
      assert.strictEqual(missing._tag, "BadRequest")
      assert.match(missing.message, /changes/)
      const approved = yield* api.missions.approve({
        path: { id: outcome.mission_id },
        payload: { slots: { changes: "fixed the login bug; added dark mode", version: "2.1" } }
      })
      assert.strictEqual(approved.status, "scheduled")
      const shown = yield* api.missions.show({ path: { id: outcome.mission_id }, urlParams: {} })
      assert.deepStrictEqual((shown["transitions"] as Array<{ to: string }>).map((t) => t.to), ["draft", "approved", "scheduled"])

      const cancelled = yield* api.missions.cancel({ path: { id: outcome.mission_id }, urlParams: {} })
      assert.deepStrictEqual([cancelled.cancelled, cancelled.status], [true, "cancelled"])
      const again = yield* api.missions.cancel({ path: { id: outcome.mission_id }, urlParams: {} })
      assert.strictEqual(again.cancelled, false, "an ended mission is left as it was")
    }))

  it.scopedLive("picks a candidate, and refuses a pick out of range in one line", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const picked = yield* api.autopilot.goal({ payload: { goal: "help me with some documents", pick: 2 } })
      assert.strictEqual(picked.kind, "auto_routed")
      const bad = yield* Effect.flip(api.autopilot.goal({ payload: { goal: "help me with some documents", pick: 9 } }))
      assert.strictEqual(bad._tag, "BadRequest")
      assert.match(bad.message, /from 1 to 3/)
    }))

  it.scopedLive("names a value the goal stated wrongly (`invalid_slots`), whose slot stays missing", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const outcome = yield* api.autopilot.goal({ payload: { goal: "run daily competitive research on 3 vendors, vendor_count=999", pick: 1 } })
      if (outcome.kind !== "auto_routed") return assert.fail(`expected auto_routed, got ${outcome.kind}`)
      assert.deepStrictEqual(outcome.invalid_slots?.map((i) => i.slot), ["vendor_count"])
      assert.include(outcome.missing_slots, "vendor_count")
      const plain = yield* api.autopilot.goal({ payload: { goal: "help me with some documents", pick: 2 } })
      assert.notProperty(plain, "invalid_slots", "the seed's shape when the goal gave nothing wrong")
    }))

  it.scopedLive("a completed mission is not cancelled: `cancelled: false`, its status kept", () =>
    Effect.gen(function*() {
      const { base, context, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const outcome = yield* api.autopilot.goal({ payload: { goal: releaseGoal } })
      if (outcome.kind !== "auto_routed") return assert.fail("not routed")
      yield* api.missions.approve({ path: { id: outcome.mission_id }, payload: { slots: { changes: "x", version: "1" } } })
      const missions = Context.get(context, Missions)
      yield* missions.advance("default", outcome.mission_id, "start", "test", "ran")
      yield* missions.advance("default", outcome.mission_id, "complete", "test", "done")
      const kept = yield* api.missions.cancel({ path: { id: outcome.mission_id }, urlParams: {} })
      assert.deepStrictEqual([kept.cancelled, kept.status], [false, "completed"])
      assert.strictEqual((yield* api.missions.list({ urlParams: {} }))[0]?.status, "completed")
    }))

  it.scopedLive("lists and shows runs, filtered by state; an unknown run is not found", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const runs = yield* api.runs.list({ urlParams: {} })
      assert.deepStrictEqual(runs.map((r) => [r["run_id"], r["status"]]), [["done", "completed"]])
      const shown = yield* api.runs.show({ path: { id: "done" }, urlParams: {} })
      assert.strictEqual(shown["output"], "the answer")
      assert.strictEqual((shown["steps"] as Array<unknown>).length, 1)
      assert.deepStrictEqual(yield* api.runs.list({ urlParams: { status: "running" } }), [])
      const badStatus = yield* Effect.flip(api.runs.list({ urlParams: { status: "sleeping" } }))
      assert.match(badStatus.message, /status must be one or more of/)
      assert.deepStrictEqual(yield* api.runs.artifacts({ path: { id: "done" } }), [])
      const absent = yield* Effect.flip(api.runs.show({ path: { id: "nope" }, urlParams: {} }))
      assert.strictEqual(absent._tag, "NotFound")
    }))

  it.scopedLive("a run's events and artifacts need only its project, not its checkpoint: a corrupt one does not stop them", () =>
    Effect.gen(function*() {
      const { call, db, tokens } = yield* setup
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE checkpoints SET state = '{"version": 1, "run_id": tru' WHERE run_id = 'done'`).pipe(
        Effect.provide(db)
      )
      const token = tokens.admin
      const shown = yield* call("GET", "/api/v1/autopilot/runs/done", { token })
      assert.strictEqual(shown.status, 409, "show decodes the checkpoint")
      assert.match(shown.json.error.message, /corrupt/)
      const artifacts = yield* call("GET", "/api/v1/autopilot/runs/done/artifacts", { token })
      assert.deepStrictEqual([artifacts.status, artifacts.json], [200, []])
      const events = yield* call("GET", "/api/v1/autopilot/runs/done/events?follow=false", { token })
      assert.strictEqual(events.status, 200, events.text)
      assert.match(events.text, /event: run_started\n/)
      assert.match(events.text, /event: result\n/)
      const other = yield* call("GET", "/api/v1/autopilot/runs/done/artifacts", { token: tokens.p1 })
      assert.strictEqual(other.status, 404, "another project's run is still not found")
    }))

  it.scopedLive("downloads an artifact, its latest version or the one asked for", () =>
    Effect.gen(function*() {
      const { base, call, db, tokens } = yield* setup
      const fence = (text: string) => "Here:\n```python app.py\n" + text + "\n```\n"
      yield* runMission(
        { runId: "arts", goal: goal(1) },
        script([{ content: fence("print(1)") }, { content: fence("print(2)"), criteria_met: [true] }])
      ).pipe(Effect.provide(environmentWith([], db)))
      const api = yield* client(base, tokens.admin)
      const listed = yield* api.runs.artifacts({ path: { id: "arts" } })
      assert.deepStrictEqual(listed.map((a) => [a["name"], a["versions"]]), [["app.py", 2]])
      const latest = yield* call("GET", "/api/v1/autopilot/runs/arts/artifact?name=app.py", { token: tokens.admin })
      assert.strictEqual(latest.status, 200)
      assert.strictEqual(latest.text, "print(2)\n")
      assert.match(latest.headers.get("content-disposition") ?? "", /attachment; filename="app.py"/)
      const first = yield* call("GET", "/api/v1/autopilot/runs/arts/artifact?name=app.py&version=1", { token: tokens.admin })
      assert.strictEqual(first.text, "print(1)\n")
      const absent = yield* call("GET", "/api/v1/autopilot/runs/arts/artifact?name=nope.py", { token: tokens.admin })
      assert.strictEqual(absent.status, 404)
      assert.match(absent.json.error.message, /no artifact "nope.py"/)
    }))

  it.scopedLive("stops a running run, and a mission's run; a mission without one is told so", () =>
    Effect.gen(function*() {
      const { base, db, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const started = yield* Deferred.make<void>()
      const running = yield* Mission.run({ runId: "long", goal: goal(1), policy: { max_iterations: 500 }, onEvent: () => Deferred.succeed(started, undefined) }).pipe(
        Effect.provide(MockLlm.layer(script([{}], { latency_ms: 20 }))),
        Effect.provide(environmentWith([], db)),
        Effect.fork
      )
      yield* Deferred.await(started)
      const stopped = yield* api.runs.stop({ path: { id: "long" }, payload: { reason: "enough" } })
      assert.deepStrictEqual(stopped, { run_id: "long", stop_requested: true, reason: "enough" })
      const result = yield* Fiber.join(running)
      assert.strictEqual(result.status, "halted")
      assert.match((yield* api.runs.show({ path: { id: "long" }, urlParams: { steps: 1 } }))["halt_reason"] as string, /enough/)

      const outcome = yield* api.autopilot.goal({ payload: { goal: releaseGoal } })
      if (outcome.kind !== "auto_routed") return assert.fail("not routed")
      const notYet = yield* Effect.flip(api.missions.stop({ path: { id: outcome.mission_id }, payload: {} }))
      assert.strictEqual(notYet._tag, "BadRequest")
      assert.match(notYet.message, /has no run to stop/)
      const noEvents = yield* Effect.flip(api.missions.events({ path: { id: outcome.mission_id } }))
      assert.strictEqual(noEvents._tag, "Conflict")
    }))

  it.scopedLive("queues, lists and removes runs", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.admin)
      const added = yield* api.queue.add({ payload: { objective: "count to three", max_iterations: 2, priority: 70 } })
      assert.deepStrictEqual([added["status"], added["priority"], added["ready"]], ["queued", 70, true])
      assert.strictEqual(((added["policy"] as { max_iterations: number }).max_iterations), 2)
      const listed = yield* api.queue.list()
      assert.deepStrictEqual(listed.map((e) => e["id"]), [added["id"]])
      const badCap = yield* Effect.flip(api.queue.add({ payload: { objective: "x", max_dollars: -1 } }))
      assert.match(badCap.message, /max_dollars/)
      yield* api.queue.remove({ path: { id: added["id"] as string } })
      assert.deepStrictEqual(yield* api.queue.list(), [])
      const gone = yield* Effect.flip(api.queue.remove({ path: { id: added["id"] as string } }))
      assert.strictEqual(gone._tag, "NotFound")
    }))

  it.scopedLive("lists and shows blueprints and specialists", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const api = yield* client(base, tokens.p1)
      const blueprints = yield* api.catalog.blueprints({ urlParams: {} })
      assert.isAtLeast(blueprints.length, 10)
      assert.strictEqual((yield* api.catalog.blueprint({ path: { id: "release_notes" } }))["id"], "release_notes")
      assert.strictEqual((yield* Effect.flip(api.catalog.blueprint({ path: { id: "nope" } })))._tag, "NotFound")
      const specialists = yield* api.catalog.specialists({ urlParams: {} })
      assert.isAtLeast(specialists.length, 1)
      const first = specialists[0]!["id"] as string
      assert.strictEqual((yield* api.catalog.specialist({ path: { id: first } }))["id"], first)
    }))

  it.scopedLive("is a blueprint service that BlueprintService, the client other instances use, can call", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* setup
      const remoteAs = (key: string) =>
        Effect.map(
          Layer.build(BlueprintService.layer({ url: base, key: Option.some(Redacted.make(key)), ttl: "1 hour" }).pipe(
            Layer.provide(Layer.mergeAll(FetchHttpClient.layer, BlueprintCacheStore.layer.pipe(Layer.provide(Database.layerSqlite(":memory:")))))
          )),
          (context) => Context.get(context, BlueprintService.BlueprintService)
        )
      const remote = yield* remoteAs(tokens.p1)
      const retrieved = yield* remote.retrieve(releaseGoal, { k: 3, tier: "free" })
      assert.strictEqual(retrieved.remote, "ok")
      assert.strictEqual(retrieved.candidates[0]?.blueprint.id, "release_notes")
      assert.strictEqual(retrieved.candidates.length, 3)
      // Synthesis writes to the instance's catalog: the admin token's to ask for, not a project token's.
      const refused = yield* remote.synthesize("keep a log of the office plants' watering", "free")
      assert.notStrictEqual(refused.remote, "ok")
      assert.isTrue(Option.isNone(refused.blueprint_json))
      const written = yield* (yield* remoteAs(tokens.admin)).synthesize("keep a log of the office plants' watering", "free")
      assert.strictEqual(written.remote, "ok")
      assert.isTrue(Option.isSome(written.blueprint_json))
    }))
})
