import type { SqlClient } from "@effect/sql"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { Blueprint, type BlueprintEncoded } from "../../src/domain/Blueprint.js"
import * as MissionRunner from "../../src/missions/MissionRunner.js"
import * as Firings from "../../src/missions/Firings.js"
import * as Missions from "../../src/missions/Missions.js"
import * as Runs from "../../src/runtime/Runs.js"
import * as Specialists from "../../src/specialists/Specialists.js"
import * as Storage from "../../src/store/Storage.js"
import * as Settings from "../../src/missions/Settings.js"
import * as Database from "../../src/store/Database.js"

/**
 * A blueprint as a catalog would hold one: recurring research on a list of vendors, with a required cron
 * and URL list, a bounded integer with a default, an optional enum, and a graph with a conditional edge.
 */
export const researchJson = (fields: Partial<BlueprintEncoded> = {}): BlueprintEncoded => ({
  id: "scheduled_research",
  version: 3,
  title: "Scheduled research",
  description: "Recurring competitive research on a set of vendors.",
  category: "research",
  example_goals: ["run daily competitive research on 3 vendors"],
  mode: "scheduled",
  slots: [
    { name: "schedule", type: "cron", required: true, description: "When to run" },
    { name: "vendors", type: "url_list", required: true, description: "Vendor sites" },
    { name: "depth", type: "integer", required: false, default: 2, min: 1, max: 5, description: "Pages per vendor" },
    { name: "tone", type: "enum", required: false, values: ["neutral", "critical"], description: "Report tone" }
  ],
  graph: {
    entry: "collect",
    nodes: [
      { id: "collect", role: "Collects pages", prompt: "Read {vendors}, {depth} pages each", model_tier: "simple" },
      {
        id: "analyze",
        role: "Compares vendors",
        prompt: "Compare: {collect.output}",
        model_tier: "medium",
        output_schema: { type: "object", properties: { changed: { type: "boolean" } } }
      },
      { id: "alert", role: "Writes an alert", prompt: "Alert on {analyze.output}", model_tier: "simple" },
      { id: "report", role: "Writes the report", prompt: "Report {analyze.output} in a {tone} tone", model_tier: "medium" }
    ],
    edges: [
      { from: "collect", to: "analyze" },
      { from: "analyze", to: "alert", when: { field: "changed", op: "equals", value: true } },
      { from: "analyze", to: "report" }
    ]
  },
  success_criteria: ["every vendor is covered", "changes since the last run are named"],
  budget: { max_seconds: 600, max_dollars: 0.5 },
  curation: { capture: true },
  ...fields
})

export const research = (fields: Partial<BlueprintEncoded> = {}): Blueprint => Schema.decodeUnknownSync(Blueprint)(researchJson(fields))

/** A blueprint with no slots at all: a draft of it is ready as made. */
export const digest = research({
  id: "daily_digest",
  version: 1,
  title: "Daily digest",
  mode: "once",
  slots: [],
  graph: { entry: "summarize", nodes: [{ id: "summarize", role: "Summarizes", prompt: "Summarize the news", model_tier: "simple" }], edges: [] }
})

export const vendors = ["https://a.example", "https://b.example", "https://c.example"]

/** The services on one database. */
export const layerOn = (database: Layer.Layer<SqlClient.SqlClient>) => Layer.merge(Missions.layer, Settings.layer).pipe(Layer.provideMerge(database))

/** The services on one SQLite database (":memory:" for a test of its own). */
export const layerSqlite = (file: string) => layerOn(Database.layerSqlite(file))

const goSchema = { type: "object", properties: { go: { type: "boolean" } }, required: ["go"] }

/** A graph to drive: split decides (a JSON `go`); left runs only when it says go, right always; merge joins both. */
export const diamond = (fields: Partial<BlueprintEncoded> = {}) =>
  research({
    id: "diamond",
    mode: "once",
    slots: [],
    graph: {
      entry: "split",
      nodes: [
        { id: "split", role: "Decides", prompt: "Decide whether to go", model_tier: "simple", output_schema: goSchema },
        { id: "left", role: "Goes left", prompt: "Go left after {split.output}", model_tier: "simple" },
        { id: "right", role: "Goes right", prompt: "Go right", model_tier: "simple" },
        { id: "merge", role: "Joins", prompt: "Join the branches", model_tier: "simple" }
      ],
      edges: [
        { from: "split", to: "left", when: { field: "go", op: "equals", value: true } },
        { from: "split", to: "right" },
        { from: "left", to: "merge" },
        { from: "right", to: "merge" }
      ]
    },
    budget: { max_seconds: 600, max_dollars: 1 },
    ...fields
  })

/** The diamond as a scheduled blueprint, fired every day at 09:00 unless its cron slot says otherwise. */
export const dailyDiamond = diamond({
  mode: "scheduled",
  slots: [{ name: "schedule", type: "cron", required: true, default: "0 9 * * *", description: "When it runs" }]
})

/** `Missions.run` and everything it stands on, over one SQLite database (":memory:" for a test of its own). */
export const runnerLayer = (database: string, workspaceRoot: string) =>
  MissionRunner.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Missions.layer, Firings.layer, Runs.layer({ workspaceRoot }), Specialists.layerBuiltIn)),
    Layer.provideMerge(Storage.layerSqlite(database)),
    Layer.provideMerge(NodeContext.layer)
  )

/** first → second, run once: the shortest graph where one node has finished while another runs. */
const chainJson = (fields: Partial<BlueprintEncoded> = {}): Partial<BlueprintEncoded> => ({
  id: "chain",
  version: 1,
  mode: "once",
  slots: [],
  graph: {
    entry: "first",
    nodes: [
      { id: "first", role: "Starts", prompt: "Start the work", model_tier: "simple" },
      { id: "second", role: "Finishes", prompt: "Finish after {first.output}", model_tier: "simple" }
    ],
    edges: [{ from: "first", to: "second" }]
  },
  budget: { max_seconds: 600, max_dollars: 1 },
  ...fields
})

export const chain = (fields: Partial<BlueprintEncoded> = {}): Blueprint => research(chainJson(fields))

/** One turn of the event loop, so that real I/O (the database, script files) makes progress; no timer is slept on. */
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/**
 * Joins `fiber`, moving the TestClock to each sleep it waits on (a retry, a backoff, a watcher) and
 * otherwise letting real I/O run, however slow the machine: time moves only as far as the fiber asks.
 * A bound in real time turns a hang into a failure.
 */
export const driveClock = <A, E>(fiber: Fiber.Fiber<A, E>, patienceMs = 120_000) =>
  Effect.gen(function*() {
    const start = Date.now()
    while ((yield* Fiber.poll(fiber))._tag === "None") {
      if (Date.now() - start > patienceMs) return yield* Effect.dieMessage(`gave up driving the clock after ${patienceMs} ms`)
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.isNonEmpty(sleeps)) yield* TestClock.setTime(Math.min(...sleeps))
      else yield* turn
    }
    return yield* Fiber.join(fiber)
  })

/**
 * A mission of `blueprint` made through the service in the default project, approved unless `draft`, or
 * approved and then cancelled when `cancelled`: how the process tests put a mission in a database.
 */
export const madeMission = (
  blueprint: Blueprint,
  options: { readonly goal?: string; readonly draft?: boolean; readonly cancelled?: boolean } = {}
) =>
  Effect.gen(function*() {
    const missions = yield* Missions.Missions
    const made = yield* missions.create({
      project: "default",
      goal: options.goal ?? "finish the work in two steps",
      blueprint,
      slots: {},
      missing: [],
      actor: "test",
      reason: "test"
    })
    if (options.cancelled) yield* missions.cancel("default", made.mission_id, "test")
    else if (!options.draft) yield* missions.approve("default", made.mission_id, { actor: "test" })
    return made.mission_id
  })
