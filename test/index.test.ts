import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted, Schedule, Schema, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Autopilot, calculator, Database, Firings, Goal, Harness, HarnessLlm, MissionRunner, Missions, MockLlm, Settings, Specialist, Specialists, Storage, Toolkit } from "../src/index.js"
import { configInput } from "./harness/fixtures.js"
import { dailyDiamond, research } from "./missions/fixtures.js"
import * as TestServer from "./llm/openai-test-server.js"

/** The library example from README.md, against an in-memory database. */
describe("the public API", () => {
  const layers = Layer.mergeAll(MockLlm.layer(), Toolkit.layer([calculator]), Storage.layerSqlite(":memory:"))

  it.effect("runs a mission embedded in another Effect program, as README shows", () =>
    Effect.gen(function*() {
      const kinds: Array<string> = []
      const result = yield* Autopilot.run({
        runId: "py-dict-gotchas",
        goal: new Goal({
          objective: "Summarize three Python dict gotchas with runnable snippets.",
          success_criteria: ["At least 3 gotchas explained", "Each has a snippet", "Each has an avoidance tip"]
        }),
        policy: { max_iterations: 8, max_dollars: 2 },
        onEvent: (event) => Effect.sync(() => kinds.push(event.kind))
      })
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(result.iterations, 3)
      assert.strictEqual(kinds[0], "run_started")
      assert.strictEqual(kinds[kinds.length - 1], "result")
      const resumed = yield* Autopilot.stream({ runId: "py-dict-gotchas", resume: true }).pipe(Stream.runCollect)
      assert.strictEqual([...resumed].at(-1)?.kind, "result")
    }).pipe(Effect.provide(layers)))

  it.effect("fans out one mission per item, as README shows", () =>
    Effect.gen(function*() {
      const result = yield* Autopilot.fanout({
        runId: "languages",
        template: "Summarize the memory model of {item}",
        items: ["Rust", "Go", { item: "the JVM", template: "Summarize the memory model of {item}", items: ["Java", "Kotlin"] }],
        criteria: ["the model is explained", "one example"],
        maxParallel: 2,
        policy: { max_iterations: 30, max_dollars: 1 }
      })
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual(result.children.map((c) => c.run_id), ["languages.0-rust", "languages.1-go", "languages.2-the-jvm"])
      assert.deepStrictEqual(result.rollup, { completed: 3, partial: 0, halted: 0, failed: 0, not_started: 0 })
      assert.strictEqual(result.usage.iterations, result.children.reduce((n, c) => n + c.iterations, 0))
    }).pipe(Effect.provide(layers)))
})

describe("the public API with specialists", () => {
  it.effect("runs a mission as a specialist from the catalog, as README shows", () =>
    Effect.gen(function*() {
      const catalog = yield* Specialists.Specialists
      const { specialist } = yield* catalog.get("security-auditor")
      const result = yield* Autopilot.run({
        runId: "audit-login",
        goal: new Goal({ objective: "Audit the login handler", success_criteria: ["every finding has a file, a line and a fix"] }),
        specialist
      })
      assert.strictEqual(result.status, "completed")
      const events = yield* Autopilot.stream({ runId: "audit-login", resume: true }).pipe(Stream.runCollect)
      const started = [...events][0]
      assert.strictEqual(started?.kind === "run_started" ? started.specialist?.id : undefined, "security-auditor")
      assert.isTrue(Schema.is(Specialist)(specialist))
    }).pipe(Effect.provide(Layer.mergeAll(
      Specialists.layerBuiltIn,
      MockLlm.layer(),
      Toolkit.layer([calculator]),
      Storage.layerSqlite(":memory:")
    ))))
})

describe("the public API with the harness", () => {
  it.scoped("runs a mission through the in-process harness, its ledger beside the run, as README shows", () =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.make([
        { content: "## Gotcha 1", usage: { prompt_tokens: 900, completion_tokens: 100 } },
        { content: JSON.stringify({ criteria_met: [true], notes: "done" }), usage: { prompt_tokens: 300, completion_tokens: 10 } }
      ])
      // A model only the harness can price: the run's dollars can only have come from the harness.
      const config = yield* Harness.HarnessConfig.parse(
        JSON.stringify(configInput(upstream.baseURL, {
          models: [{ id: "house-model", upstream: "test", input_per_mtok: 1, output_per_mtok: 2 }],
          tiers: { simple: "house-model", medium: "house-model", complex: "house-model" }
        })),
        "harness.json"
      )
      // One database for the runs, the keys and the ledger.
      const database = yield* Layer.build(Database.layerSqlite(":memory:"))
      const onDatabase = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, database)
      const { key } = yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (store) => store.createKey({ user: "ana", project: "docs" }))
        .pipe(Effect.provide(Harness.HarnessStore.layer)))
      const layers = Layer.mergeAll(
        HarnessLlm.layerInProcess({ key: Redacted.make(key), harness: config }),
        Toolkit.layer([calculator]),
        Storage.layer
      )
      const result = yield* onDatabase(Autopilot.run({
        runId: "through-the-harness",
        goal: new Goal({ objective: "One Python dict gotcha", success_criteria: ["one gotcha explained"] })
      }).pipe(Effect.provide(layers)))
      assert.strictEqual(result.status, "completed")
      const ledger = yield* onDatabase(Effect.flatMap(Harness.HarnessStore, (store) => store.audit({}))
        .pipe(Effect.provide(Harness.HarnessStore.layer)))
      assert.strictEqual(ledger.length, 2)
      assert.closeTo(result.usage.dollars, ((900 + 300) * 1 + (100 + 10) * 2) / 1e6, 1e-12)
      assert.closeTo(result.usage.dollars, ledger.reduce((sum, row) => sum + row.cost_usd, 0), 1e-12)
    }))
})

describe("the public API for missions", () => {
  it.effect("approves every ready draft of a project while autopilot is enabled, as README shows", () =>
    Effect.gen(function*() {
      const approveAll = (project: string) => Effect.gen(function*() {
        yield* Effect.flatMap(Settings.Settings, (settings) => settings.requireEnabled())
        const missions = yield* Missions.Missions
        for (const draft of yield* missions.list(project, { status: ["draft"] })) {
          if (draft.missing_slots.length === 0) yield* missions.approve(project, draft.mission_id, { actor: "bot:nightly" })
        }
      })
      const missions = yield* Missions.Missions
      const make = (slots: Record<string, ReadonlyArray<string> | string>) =>
        missions.create({ project: "acme", goal: "watch vendors", blueprint: research(), slots, missing: [], actor: "test", reason: "routed" })
      const ready = yield* make({ schedule: "0 9 * * 1-5", vendors: ["https://a.example"] })
      const waiting = yield* make({ schedule: "0 9 * * 1-5" })
      yield* approveAll("acme")
      assert.strictEqual((yield* missions.get("acme", ready.mission_id)).status, "scheduled")
      assert.strictEqual((yield* missions.get("acme", waiting.mission_id)).status, "draft")
      yield* Effect.flatMap(Settings.Settings, (settings) => settings.disable())
      assert.strictEqual((yield* Effect.flip(approveAll("acme")))._tag, "AutopilotDisabled")
    }).pipe(Effect.provide(Layer.merge(Missions.layer, Settings.layer).pipe(Layer.provide(Database.layerSqlite(":memory:"))))))

  it.effect("runs an approved mission's graph to completed through Missions.run, on the mock", () =>
    Effect.gen(function*() {
      const missions = yield* Missions.Missions
      const made = yield* missions.create({
        project: "acme",
        goal: "watch vendors",
        // Once: a scheduled mission runs as firings (see "the public API for scheduled missions").
        blueprint: research({ mode: "once" }),
        slots: { schedule: "0 9 * * 1-5", vendors: ["https://a.example"] },
        missing: [],
        actor: "test",
        reason: "routed"
      })
      yield* missions.approve("acme", made.mission_id, { actor: "test" })
      const { mission, result } = yield* Missions.run("acme", made.mission_id, { actor: "bot:nightly" })
      assert.strictEqual(result.status, "completed")
      assert.strictEqual(mission.status, "completed")
      // collect, analyze, then report; alert only if analyze says something changed (the mock's instance says true).
      assert.deepStrictEqual(result.nodes.map((n) => `${n.node}:${n.status}`), ["collect:succeeded", "analyze:succeeded", "alert:succeeded", "report:succeeded"])
    }).pipe(Effect.provide(MissionRunner.layerWith({ workspaceRoot: fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-api-")) }).pipe(
      Layer.provideMerge(Storage.layerSqlite(":memory:")),
      Layer.provideMerge(NodeContext.layer)
    ))))
})

describe("the public API for scheduled missions", () => {
  it.effect("a loop over Firings.due fires an armed mission on its slots, as README shows; the mission stays scheduled", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2026-04-15T06:00:00.000Z"))
      const missions = yield* Missions.Missions
      const made = yield* missions.create({ project: "acme", goal: "brief me", blueprint: dailyDiamond, slots: {}, missing: [], actor: "t", reason: "r" })
      yield* missions.approve("acme", made.mission_id, { actor: "t", timeZone: "Europe/Paris" })

      const fireDue = Effect.gen(function*() {
        const runner = yield* MissionRunner.MissionRunner
        for (const firing of yield* (yield* Firings.Firings).due) {
          yield* runner.run(firing.project, firing.mission_id, { actor: "bot:cron", firing }).pipe(
            Effect.catchAll((error) => Effect.logWarning(`firing ${firing.run_id}: ${error.message}`))
          )
        }
      })
      // Around 09:00 in Paris, then again the next morning (a new process: the night is not ticked through).
      const around = (start: string) =>
        Effect.gen(function*() {
          yield* TestClock.setTime(Date.parse(start))
          const cron = yield* Effect.fork(fireDue.pipe(Effect.repeat(Schedule.spaced("30 seconds"))))
          yield* TestClock.adjust("3 minutes")
          yield* Fiber.interrupt(cron)
        })
      yield* around("2026-04-15T06:58:00.000Z")
      yield* around("2026-04-16T06:58:00.000Z")

      // 09:00 in Paris is 07:00 UTC in April: two days' slots came.
      const fired = yield* (yield* Firings.Firings).recent("acme", made.mission_id, 0)
      assert.deepStrictEqual(fired.map((f) => [f.run_id, f.status]), [
        [`${made.mission_id}.at-20260416t0700z`, "completed"],
        [`${made.mission_id}.at-20260415t0700z`, "completed"]
      ])
      assert.strictEqual((yield* missions.get("acme", made.mission_id)).status, "scheduled")
    }).pipe(Effect.provide(MissionRunner.layerWith({ workspaceRoot: fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-cron-")) }).pipe(
      Layer.provideMerge(Storage.layerSqlite(":memory:")),
      Layer.provideMerge(NodeContext.layer)
    ))))
})
