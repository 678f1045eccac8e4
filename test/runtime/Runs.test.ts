import * as NodeContext from "@effect/platform-node/NodeContext"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { Owner } from "../../src/domain/Owner.js"
import * as Runs from "../../src/runtime/Runs.js"
import { QuarantineStore } from "../../src/store/QuarantineStore.js"
import { RunStore } from "../../src/store/RunStore.js"
import { calculator } from "../../src/tools/Calculator.js"
import { eachDatabase } from "../support/Databases.js"
import { environmentWith, goal, runMission, script } from "./fixtures.js"

/** A process on this host that does not exist: above any pid Linux hands out. */
const gone = new Owner({ pid: 2 ** 30, host: Owner.current.host })

const workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-runs-"))
afterAll(() => fs.rmSync(workspaceRoot, { recursive: true, force: true }))


/** A finished run with steps and events: `iterations` iterations, criteria never all met. */
const finished = (runId: string, iterations = 2) =>
  runMission({ runId, goal: goal(), policy: { max_iterations: iterations } }, script([{ criteria_met: [true, false] }]))

/** Rewrites a run's checkpoint as if its session were still going, in `owner`'s process. */
const runningIn = (runId: string, owner: Owner | null) =>
  Effect.gen(function*() {
    const store = yield* RunStore
    const loaded = yield* store.load(runId)
    assert(loaded._tag === "Found")
    yield* store.save(new Checkpoint({ ...loaded.checkpoint, status: "running", halt_reason: null, owner }))
  })

const rowsOf = (runId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const count = (table: string) =>
      Effect.map(sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql(table)} WHERE run_id = ${runId}`, (rows) => Number(rows[0]!.n))
    return {
      checkpoints: yield* count("checkpoints"),
      steps: yield* count("steps"),
      events: yield* count("events"),
      stop_requests: yield* count("stop_requests"),
      quarantine: yield* count("quarantine")
    }
  })

const none = { checkpoints: 0, steps: 0, events: 0, stop_requests: 0, quarantine: 0 }

const states = (listed: ReadonlyArray<Runs.Listed>) =>
  Object.fromEntries(listed.map((run) => [run._tag === "Found" ? run.checkpoint.run_id : run.run_id, run.state]))

eachDatabase("Runs", (database) => {
  const layer = Runs.layer({ workspaceRoot }).pipe(Layer.provideMerge(Layer.merge(environmentWith([calculator], database.layer), NodeContext.layer)))

  describe("a run whose process is gone", () => {
    it.effect("is interrupted; a run whose process is alive is running, a finished one keeps its status", () =>
      Effect.gen(function*() {
        yield* finished("killed")
        yield* finished("alive")
        yield* finished("old-format")
        yield* finished("done")
        yield* runningIn("killed", gone)
        yield* runningIn("alive", Owner.current)
        // A checkpoint from before owners were recorded: resume takes it over, so it is interrupted too.
        yield* runningIn("old-format", null)
        const runs = yield* Runs.Runs

        assert.deepStrictEqual(states(yield* runs.list()), {
          killed: "interrupted",
          alive: "running",
          "old-format": "interrupted",
          done: "partial"
        })
      }).pipe(Effect.provide(layer)))

    it.effect("is listed by state and newest first, up to a limit", () =>
      Effect.gen(function*() {
        yield* finished("a")
        yield* TestClock.adjust("1 second")
        yield* finished("b")
        yield* TestClock.adjust("1 second")
        yield* finished("c")
        yield* runningIn("b", gone)
        const runs = yield* Runs.Runs
        const ids = (listed: ReadonlyArray<Runs.Listed>) => Object.keys(states(listed))

        assert.deepStrictEqual(ids(yield* runs.list()), ["c", "b", "a"])
        assert.deepStrictEqual(ids(yield* runs.list({ states: ["interrupted"] })), ["b"])
        assert.deepStrictEqual(ids(yield* runs.list({ states: ["partial", "interrupted"] })), ["c", "b", "a"])
        assert.deepStrictEqual(ids(yield* runs.list({ states: ["partial"], limit: 1 })), ["c"])
        assert.deepStrictEqual(ids(yield* runs.list({ limit: 2 })), ["c", "b"])
        assert.deepStrictEqual(ids(yield* runs.list({ states: ["running"] })), [])
        const bad = yield* Effect.either(runs.list({ limit: -1 }))
        assert(Either.isLeft(bad) && bad.left._tag === "BadInput")
      }).pipe(Effect.provide(layer)))

    it.effect("shows as interrupted in JSON beside its stored status, with the command that resumes it", () =>
      Effect.gen(function*() {
        yield* finished("killed")
        yield* finished("done")
        yield* runningIn("killed", gone)
        const runs = yield* Runs.Runs

        const killed = Runs.viewJson(yield* runs.show("killed", { steps: 0, messages: false }))
        assert.deepInclude(killed, { status: "running", interrupted: true, resume: "autopilot resume killed" })
        const done = Runs.viewJson(yield* runs.show("done", { steps: 0, messages: false }))
        assert.deepInclude(done, { status: "partial", interrupted: false, resume: null })
        const listed = (yield* runs.list()).map(Runs.listedJson)
        assert.deepInclude(listed.find((r) => r.run_id === "killed"), { status: "running", interrupted: true, resume: "autopilot resume killed" })
      }).pipe(Effect.provide(layer)))

    it.effect("followed, gives every event it wrote, then RunInterrupted saying how to resume it", () =>
      Effect.gen(function*() {
        const { events } = yield* finished("killed")
        yield* runningIn("killed", gone)
        const runs = yield* Runs.Runs

        const followed: Array<number> = []
        const end = yield* runs.events("killed", { follow: true }).pipe(
          Stream.runForEach((event) => Effect.sync(() => followed.push(event.seq))),
          Effect.either
        )
        assert.deepStrictEqual(followed, events.map((e) => e.seq))
        assert(Either.isLeft(end) && end.left._tag === "RunInterrupted")
        assert.strictEqual(end.left.resume, "autopilot resume killed")
        assert.match(end.left.message, /^run "killed" is interrupted: process \d+ on .* is gone; `autopilot resume killed` continues it$/)
        // Not following, the history is all there is to say.
        const replayed = yield* Stream.runCollect(runs.events("killed", { follow: false }))
        assert.strictEqual(Chunk.size(replayed), events.length)
      }).pipe(Effect.provide(layer)))

    it.effect("cannot be stopped: stop says that its process is gone and how to resume it", () =>
      Effect.gen(function*() {
        yield* finished("killed")
        yield* runningIn("killed", gone)
        const runs = yield* Runs.Runs

        const stopped = yield* Effect.either(runs.stop("killed", "enough"))
        assert(Either.isLeft(stopped) && stopped.left._tag === "BadInput")
        assert.match(stopped.left.message, /not running in any process: process \d+ on .* is gone; `autopilot resume killed` continues it/)
      }).pipe(Effect.provide(layer)))
  })

  describe("deleting runs", () => {
    it.effect("deletes a run's checkpoint, steps, events, stop request, quarantined rows and workspace, and nothing of any other run", () =>
      Effect.gen(function*() {
        yield* finished("gone")
        yield* finished("kept")
        const store = yield* RunStore
        for (const runId of ["gone", "kept"]) {
          yield* store.requestStop(runId, "enough", "2030-01-01T00:00:00.000Z")
          const loaded = yield* store.load(runId)
          assert(loaded._tag === "Found")
          yield* (yield* QuarantineStore).checkpoint({ runId, expected: loaded.raw, error: "test", at: "2030-01-01T00:00:00.000Z" })
          fs.mkdirSync(path.join(workspaceRoot, "workspaces", runId), { recursive: true })
          fs.writeFileSync(path.join(workspaceRoot, "workspaces", runId, "notes.md"), "kept by the model")
        }
        const kept = yield* rowsOf("kept")
        assert.isTrue(Object.values(kept).every((n) => n > 0))
        const runs = yield* Runs.Runs

        const deleted = yield* runs.delete(["gone"])

        assert.deepStrictEqual(deleted.map((d) => [d.run_id, d.state, d.workspace]), [["gone", "partial", path.join(workspaceRoot, "workspaces", "gone")]])
        assert.deepStrictEqual(yield* rowsOf("gone"), none)
        assert.isFalse(fs.existsSync(path.join(workspaceRoot, "workspaces", "gone")))
        assert.deepStrictEqual(yield* rowsOf("kept"), kept)
        assert.isTrue(fs.existsSync(path.join(workspaceRoot, "workspaces", "kept", "notes.md")))
        const missing = yield* Effect.either(runs.show("gone", { steps: 0, messages: false }))
        assert(Either.isLeft(missing) && missing.left._tag === "RunNotFound")
      }).pipe(Effect.provide(layer)))

    it.effect("never deletes a run alive in its process, and then deletes none of the runs asked for", () =>
      Effect.gen(function*() {
        yield* finished("done")
        yield* finished("live")
        yield* runningIn("live", Owner.current)
        const before = { done: yield* rowsOf("done"), live: yield* rowsOf("live") }
        const runs = yield* Runs.Runs

        const refused = yield* Effect.either(runs.delete(["done", "live"]))

        assert(Either.isLeft(refused) && refused.left._tag === "BadInput")
        assert.match(refused.left.message, /run "live" is running in process \d+ on .*; stop it first \(autopilot stop live\), then delete it/)
        assert.deepStrictEqual({ done: yield* rowsOf("done"), live: yield* rowsOf("live") }, before)
      }).pipe(Effect.provide(layer)))

    it.effect("deletes an interrupted run; an unknown id among others deletes none", () =>
      Effect.gen(function*() {
        yield* finished("killed")
        yield* runningIn("killed", gone)
        const runs = yield* Runs.Runs

        const unknown = yield* Effect.either(runs.delete(["killed", "no-such-run"]))
        assert(Either.isLeft(unknown) && unknown.left._tag === "RunNotFound")
        assert.strictEqual((yield* rowsOf("killed")).checkpoints, 1)

        const deleted = yield* runs.delete(["killed"])
        assert.deepStrictEqual(deleted.map((d) => d.state), ["interrupted"])
        assert.deepStrictEqual(yield* rowsOf("killed"), none)
      }).pipe(Effect.provide(layer)))

    it.effect("deletes what is left of a run whose checkpoint is gone", () =>
      Effect.gen(function*() {
        yield* finished("orphan")
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM checkpoints WHERE run_id = 'orphan'`
        const runs = yield* Runs.Runs

        const deleted = yield* runs.delete(["orphan"])

        assert.deepStrictEqual(deleted.map((d) => [d.run_id, d.state]), [["orphan", null]])
        assert.deepStrictEqual(yield* rowsOf("orphan"), none)
      }).pipe(Effect.provide(layer)))

    it.effect("the store deletes a checkpoint only as it was read: a run changed meanwhile is left whole", () =>
      Effect.gen(function*() {
        yield* finished("r")
        const store = yield* RunStore
        const read = yield* store.load("r")
        assert(read._tag === "Found")
        yield* store.save(new Checkpoint({ ...read.checkpoint, updated_at: "2030-01-01T00:00:00.000Z" }))
        const before = yield* rowsOf("r")

        assert.isFalse(yield* store.remove("r", Option.some(read.raw)))
        assert.deepStrictEqual(yield* rowsOf("r"), before)
        // And a run believed gone that was started meanwhile is not deleted either.
        assert.isFalse(yield* store.remove("r", Option.none()))
        assert.deepStrictEqual(yield* rowsOf("r"), before)
      }).pipe(Effect.provide(layer)))
  })

  describe("pruning", () => {
    it.effect("deletes the runs last updated longer ago than asked, never a live one; a dry run deletes nothing", () =>
      Effect.gen(function*() {
        yield* finished("old")
        yield* finished("old-killed")
        yield* finished("old-live")
        yield* runningIn("old-killed", gone)
        yield* runningIn("old-live", Owner.current)
        yield* TestClock.adjust("10 days")
        yield* finished("recent")
        const runs = yield* Runs.Runs
        const ids = (deleted: ReadonlyArray<Runs.Deleted>) => deleted.map((d) => d.run_id).sort()

        const dry = yield* runs.prune({ olderThan: "7 days", dryRun: true })
        assert.deepStrictEqual(ids(dry), ["old", "old-killed"])
        assert.strictEqual((yield* rowsOf("old")).checkpoints, 1)

        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days", states: ["interrupted"] })), ["old-killed"])
        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days" })), ["old"])
        assert.deepStrictEqual(yield* rowsOf("old"), none)
        assert.deepStrictEqual(Object.keys(states(yield* runs.list())).sort(), ["old-live", "recent"])
        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days" })), [])
      }).pipe(Effect.provide(layer)))
  })

  describe("a fan-out with the runs below it", () => {
    /** A fan-out of two children, the second fanning out in turn over two of its own. */
    const nested = (runId: string, policy?: Runs.FanoutStartOptions["policy"]) =>
      Effect.flatMap(Runs.Runs, (runs) =>
        runs.fanout({ runId, template: "Research {item}", items: ["Rust", { item: "the JVM", template: "Compare {item}", items: ["Java", "Kotlin"] }], policy }))

    const tree = (runId: string) => [runId, `${runId}.0-rust`, `${runId}.1-the-jvm`, `${runId}.1-the-jvm.0-java`, `${runId}.1-the-jvm.1-kotlin`]

    it.effect("delete of a fan-out deletes every run below it; a child alone is refused while its fan-out is there", () =>
      Effect.gen(function*() {
        yield* nested("fan")
        yield* finished("other")
        const runs = yield* Runs.Runs
        const before = yield* Effect.forEach(tree("fan"), rowsOf)
        assert.isTrue(before.every((rows) => rows.checkpoints === 1))

        for (const [child, parent] of [["fan.0-rust", "fan"], ["fan.1-the-jvm.1-kotlin", "fan.1-the-jvm"]]) {
          const alone = yield* Effect.flip(runs.delete([child!]))
          assert.strictEqual(alone._tag, "BadInput")
          assert.include(alone.message, `run "${child}" is a child of fan-out "${parent}"`)
        }
        assert.deepStrictEqual(yield* Effect.forEach(tree("fan"), rowsOf), before)

        const deleted = yield* runs.delete(["fan.0-rust", "fan"])

        assert.deepStrictEqual(deleted.map((d) => d.run_id).sort(), tree("fan").sort())
        for (const runId of tree("fan")) assert.deepStrictEqual(yield* rowsOf(runId), none)
        assert.strictEqual((yield* rowsOf("other")).checkpoints, 1)
      }).pipe(Effect.provide(layer)))

    it.effect("show counts a fan-out's artifacts as those of the runs below it", () =>
      Effect.gen(function*() {
        yield* nested("fan")
        const runs = yield* Runs.Runs
        // The mock's default answer holds one code block: one artifact for each of the three missions.
        assert.strictEqual((yield* runs.show("fan", { steps: 0, messages: false })).artifacts, 3)
        assert.strictEqual((yield* runs.show("fan.1-the-jvm", { steps: 0, messages: false })).artifacts, 2)
        assert.strictEqual((yield* runs.show("fan.0-rust", { steps: 0, messages: false })).artifacts, 1)
      }).pipe(Effect.provide(layer)))

    it.effect("Runs.fanout takes a critic as Runs.start does: the fan-out records it, and every child is reviewed", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        yield* runs.fanout({ runId: "fan", template: "Research {item}", items: ["Rust", "Go"], critic: { threshold: 0.5 } })
        for (const runId of ["fan", "fan.0-rust", "fan.1-go"]) {
          assert.deepStrictEqual((yield* runs.show(runId, { steps: 0, messages: false })).checkpoint.critic, { threshold: 0.5, max_suggestions: 3 })
        }
        const steps = (yield* runs.show("fan.0-rust", { steps: 0, messages: false })).steps
        assert.deepStrictEqual(steps[0]?.calls.map((call) => call.purpose), ["act", "judge", "critic"])
      }).pipe(Effect.provide(layer)))

    it.effect("prune takes a fan-out with every run below it, and never a child on its own", () =>
      Effect.gen(function*() {
        // Two iterations for three runs to do: the last child never starts, so the fan-outs are partial.
        yield* nested("fan", { max_iterations: 2 })
        yield* TestClock.adjust("10 days")
        const runs = yield* Runs.Runs
        assert.strictEqual(states(yield* runs.list())["fan"], "partial")
        assert.strictEqual(states(yield* runs.list())["fan.0-rust"], "completed")
        const ids = (deleted: ReadonlyArray<Runs.Deleted>) => deleted.map((d) => d.run_id).sort()
        const started = tree("fan").filter((id) => id !== "fan.1-the-jvm.1-kotlin").sort()

        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days", states: ["completed"] })), [])
        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days", states: ["partial"], dryRun: true })), started)
        assert.strictEqual((yield* rowsOf("fan.0-rust")).checkpoints, 1)

        assert.deepStrictEqual(ids(yield* runs.prune({ olderThan: "7 days", states: ["partial"] })), started)
        for (const runId of tree("fan")) assert.deepStrictEqual(yield* rowsOf(runId), none)
      }).pipe(Effect.provide(layer)))
  })

  describe("start", () => {
    it.effect("refuses a run id that reads as a path, and another run's default workspace, writing nothing", () =>
      Effect.gen(function*() {
        const runs = yield* Runs.Runs
        const escaping = yield* Effect.flip(runs.start({ runId: "../outside", goal: goal() }))
        assert.strictEqual(escaping._tag, "BadInput")
        assert.include(escaping.message, "run id \"../outside\" is not allowed")
        const borrowed = yield* Effect.flip(runs.start({ runId: "b", goal: goal(), workspace: path.join(workspaceRoot, "workspaces", "a") }))
        assert.strictEqual(borrowed._tag, "BadInput")
        assert.include(borrowed.message, "is the default workspace of run \"a\"")
        assert.deepStrictEqual(yield* rowsOf("b"), none)
        assert.deepStrictEqual(yield* rowsOf("../outside"), none)
      }).pipe(Effect.provide(layer)))
  })
})
