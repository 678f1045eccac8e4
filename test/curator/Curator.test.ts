import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Curator from "../../src/curator/Curator.js"
import * as Dataset from "../../src/curator/Dataset.js"
import { DatasetDefinition, type DatasetDefinitionEncoded } from "../../src/curator/Dataset.js"
import * as FineTuneFormat from "../../src/curator/FineTuneFormat.js"
import { BudgetPolicy, BudgetUsage } from "../../src/domain/Budget.js"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import { Goal } from "../../src/domain/Goal.js"
import { Step } from "../../src/domain/Step.js"
import * as Critic from "../../src/runtime/Critic.js"
import * as Runs from "../../src/runtime/Runs.js"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import * as MissionStore from "../../src/store/MissionStore.js"
import { RunStore } from "../../src/store/RunStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import * as Storage from "../../src/store/Storage.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { Schema } from "effect"
import { echo, goal, runMission, script } from "../runtime/fixtures.js"
import { eachDatabase } from "../support/Databases.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-curator-"))
let files = 0
const outFile = () => path.join(dir, `out-${++files}.jsonl`)

const environment = (database: Layer.Layer<SqlClient.SqlClient>) =>
  Layer.mergeAll(CuratorStore.layer, MissionStore.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(Storage.layer.pipe(Layer.provideMerge(database)), Toolkit.layer([echo]), NodeContext.layer))
  )

const definition = (fields: DatasetDefinitionEncoded) => Schema.decodeSync(DatasetDefinition)(fields)

const curator = (definitions: ReadonlyArray<DatasetDefinitionEncoded> = []) => Curator.make({ definitions: definitions.map(definition) })

/** The lines of a JSONL file, each checked against the fine-tuning format. */
const readLines = (file: string) =>
  fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((line, i) =>
    Either.getOrElse(FineTuneFormat.checkLine(line), (problem) => assert.fail(`line ${i + 1}: ${problem}`)))

/** Three iterations: the first meets a criterion calling echo, the second nothing new, the third the last one. */
const threeTurns = script([
  { content: "First half: the mutable default.", criteria_met: [true, false], tool_calls: [{ name: "echo", arguments: { text: "hello" } }] },
  { content: "Still thinking.", criteria_met: [false, false] },
  { content: "Second half: iteration order.", criteria_met: [true, true] }
])

const suite = (database: Layer.Layer<SqlClient.SqlClient>) => {
  it.effect("captures each accepted iteration of a completed run once, with its tool turn, tools and telemetry", () =>
    Effect.gen(function*() {
      const { result } = yield* runMission({ runId: "r1", goal: goal() }, threeTurns)
      assert.strictEqual(result.status, "completed")
      const c = yield* curator()
      assert.deepStrictEqual(yield* c.capture, { runs: 1, samples: 2 })
      assert.deepStrictEqual(yield* c.capture, { runs: 0, samples: 0 })

      const out = outFile()
      const report = yield* c.export("all", { out, split: "train" })
      const lines = readLines(out)
      assert.strictEqual(report.written + report.other_split, 2)
      assert.strictEqual(lines.length, report.written)
      const all = [...lines, ...(yield* Stream.runCollect(c.lines("all", "eval")))].map((l) => (typeof l === "string" ? JSON.parse(l) : l))
      const first = all.find((l) => JSON.stringify(l).includes("mutable default"))
      // The instruction is the objective itself, never a run or mission id.
      assert.include(first.messages[1].content, "Objective: Explain three Python dict gotchas")
      assert.notInclude(JSON.stringify(first), "r1")
      assert.deepStrictEqual(first.messages[2], {
        role: "assistant",
        content: "First half: the mutable default.",
        // The id the model gave the call (the mock's `call_<turn>_<call>`), as the step recorded it.
        tool_calls: [{ id: "call_0_0", type: "function", function: { name: "echo", arguments: "{\"text\":\"hello\"}" } }]
      })
      assert.deepStrictEqual(first.messages[3], { role: "tool", tool_call_id: "call_0_0", content: "hello" })
      assert.deepStrictEqual(first.tools.map((t: { function: { name: string } }) => t.function.name), ["echo"])
      // Iteration 2 verified nothing new: not a sample. Iteration 3's conversation replays its turn as context,
      // which is never learned (weight 0).
      const replayed = all.flatMap((l) => l.messages).filter((m: { role: string; content: string }) => m.role === "assistant" && m.content === "Still thinking.")
      assert.isAbove(replayed.length, 0)
      for (const m of replayed) assert.strictEqual(m.weight, 0)

      const store = yield* CuratorStore.CuratorStore
      const stored = yield* store.page({ completed_only: true, max_tokens: 1_000_000 }, 0, 10)
      assert.deepStrictEqual(stored.map((s) => s.sample.metadata.iteration), [1, 3])
      const meta = stored[0]!.sample.metadata
      assert.strictEqual(meta.source, "run")
      assert.strictEqual(meta.model, "gpt-4o-mini")
      assert.isAbove(meta.cost_usd, 0)
      assert.isAbove(meta.tokens, 0)
    }).pipe(Effect.provide(environment(database))))

  it.effect("only completed runs by default; a run resumed to completion counts once it completes", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "p", goal: goal(), policy: { max_iterations: 1 } }, threeTurns)
      const c = yield* curator([{ id: "any-end", completed_only: false }])
      assert.strictEqual((yield* c.show("all")).samples, 0)
      assert.strictEqual((yield* c.show("any-end")).samples, 1)
      const { result } = yield* runMission({ runId: "p", resume: true, policy: { max_iterations: 3 } }, script([
        { content: "Second half, at last.", criteria_met: [true, true] }
      ]))
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual(yield* c.capture, { runs: 1, samples: 1 })
      assert.strictEqual((yield* c.show("all")).samples, 2)
    }).pipe(Effect.provide(environment(database))))

  it.effect("filters as data: critic confidence, tokens per sample, per specialist", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "confident", goal: goal(1) }, script([{ criteria_met: [true], critic: { criteria_met: [true], confidence: 0.9 } }])).pipe(
        Effect.provide(Critic.layer())
      )
      yield* runMission({ runId: "plain", goal: new Goal({ objective: "Write a haiku about caches", success_criteria: ["a haiku"] }) }, script([{ criteria_met: [true] }]))
      const c = yield* curator([
        { id: "sure", min_critic_confidence: 0.8 },
        { id: "surer", min_critic_confidence: 0.95 },
        { id: "tiny", max_tokens: 10 }
      ])
      const counts = Object.fromEntries((yield* c.datasets).map((d) => [d.definition.id, d.samples]))
      assert.deepStrictEqual(counts, { all: 2, sure: 1, surer: 0, tiny: 0 })
      const out = outFile()
      yield* c.export("sure", { out, split: "train" }).pipe(Effect.zip(c.export("sure", { out: `${out}.eval`, split: "eval" })))
      assert.strictEqual(readLines(out).length + readLines(`${out}.eval`).length, 1)
    }).pipe(Effect.provide(environment(database))))

  it.effect("drops exact and near duplicates, keeping the first; both splits stay apart", () =>
    Effect.gen(function*() {
      const turns = script([{ content: "Use a  tuple.", criteria_met: [true] }])
      yield* runMission({ runId: "d1", goal: new Goal({ objective: "Explain 3 dict gotchas", success_criteria: ["done"] }) }, turns)
      yield* runMission({ runId: "d2", goal: new Goal({ objective: "Explain 3 dict gotchas", success_criteria: ["done"] }) }, turns)
      yield* runMission({ runId: "d3", goal: new Goal({ objective: "explain 4 DICT gotchas!", success_criteria: ["Done."] }) }, script([{ content: "use a tuple", criteria_met: [true] }]))
      yield* runMission({ runId: "d4", goal: new Goal({ objective: "Explain list gotchas", success_criteria: ["done"] }) }, turns)
      const c = yield* curator([{ id: "everything", dedup: false }])
      const shown = yield* c.show("all")
      assert.deepStrictEqual([shown.samples, shown.duplicates, shown.train + shown.eval], [4, 2, 2])
      assert.strictEqual((yield* c.show("everything")).duplicates, 0)
      const train = outFile()
      const evalOut = outFile()
      const a = yield* c.export("all", { out: train, split: "train" })
      const b = yield* c.export("all", { out: evalOut, split: "eval" })
      assert.strictEqual(a.written + b.written, 2)
      const texts = [...readLines(train), ...readLines(evalOut)].map((l) => JSON.stringify(l))
      assert.strictEqual(new Set(texts).size, texts.length)
      assert.isTrue(texts.some((t) => t.includes("Explain list gotchas")))
    }).pipe(Effect.provide(environment(database))))

  it.effect("scrubs secrets and e-mail addresses before a sample is stored", () =>
    Effect.gen(function*() {
      const key = "sk-proj-Zx81kdJ29aLq0PwMv73NbT5s"
      yield* runMission(
        { runId: "s", goal: new Goal({ objective: `Deploy with ${key} and tell ops@example.com`, success_criteria: ["deployed"] }) },
        script([{ content: `Done; used Authorization: Bearer abcdef0123456789abcdef`, criteria_met: [true], tool_calls: [{ name: "echo", arguments: { text: key } }] }])
      )
      const c = yield* curator()
      yield* c.capture
      const stored = yield* (yield* CuratorStore.CuratorStore).page({ completed_only: true, max_tokens: 1_000_000 }, 0, 10)
      const text = JSON.stringify(stored.map((s) => s.sample))
      assert.notInclude(text, key)
      assert.notInclude(text, "ops@example.com")
      assert.notInclude(text, "abcdef0123456789abcdef")
      assert.include(text, "[REDACTED_API_KEY]")
      assert.include(text, "[REDACTED_EMAIL]")
    }).pipe(Effect.provide(environment(database))))

  it.effect("a deleted or pruned run takes its samples with it, and a run started again under its id is captured afresh", () =>
    Effect.gen(function*() {
      const store = yield* CuratorStore.CuratorStore
      const runs = yield* Runs.make({ workspaceRoot: dir })
      const texts = Effect.map(store.page({ completed_only: false, max_tokens: 1_000_000 }, 0, 100), (rows) =>
        rows.map((r) => `${r.sample.metadata.run_id}: ${r.sample.messages.at(-1)!.content}`))
      yield* runMission({ runId: "gone", goal: goal(1) }, script([{ content: "first life", criteria_met: [true] }]))
      yield* runMission({ runId: "old", goal: goal(1) }, script([{ content: "pruned away", criteria_met: [true] }]))
      const c = yield* curator()
      assert.deepStrictEqual(yield* c.capture, { runs: 2, samples: 2 })
      yield* runs.delete(["gone"])
      assert.deepStrictEqual(yield* texts, ["old: pruned away"])
      yield* TestClock.adjust("2 hours")
      assert.deepStrictEqual((yield* runs.prune({ olderThan: "1 hour" })).map((d) => d.run_id), ["old"])
      assert.deepStrictEqual(yield* texts, [])
      assert.deepStrictEqual((yield* c.datasets).map((d) => d.samples), [0])
      // The id is free again: the new run's work is captured, not shadowed by the old run's.
      yield* runMission({ runId: "gone", goal: goal(1) }, script([{ content: "second life", criteria_met: [true] }]))
      assert.deepStrictEqual(yield* c.capture, { runs: 1, samples: 1 })
      assert.deepStrictEqual(yield* texts, ["gone: second life"])
    }).pipe(Effect.provide(environment(database))))

  it.effect("what a capture learnt of a parent run is not kept for the next: an id freed and taken by a mission's run makes its children node runs", () =>
    Effect.gen(function*() {
      const runs = yield* Runs.make({ workspaceRoot: dir })
      const store = yield* RunStore
      const c = yield* curator()
      yield* runMission({ runId: "p", goal: goal(1) }, script([{ content: "a plain parent", criteria_met: [true] }]))
      yield* runMission({ runId: "p.1", goal: goal(1) }, script([{ content: "a child of a plain run", criteria_met: [true] }]))
      assert.deepStrictEqual(yield* c.capture, { runs: 2, samples: 2 })
      yield* runs.delete(["p.1", "p"])
      // The id again, now a mission's run, and a node attempt below it: the mission's to capture, not a run's.
      yield* runMission({ runId: "p", goal: goal(1) }, script([{ content: "a mission's run", criteria_met: [true] }]))
      const loaded = yield* store.load("p")
      assert(loaded._tag === "Found")
      yield* store.saveAll([new Checkpoint({ ...loaded.checkpoint, mission: { mission_id: "p", project_id: "default", max_parallel: 1 } })])
      yield* runMission({ runId: "p.2", goal: goal(1) }, script([{ content: "a node attempt", criteria_met: [true] }]))
      assert.deepStrictEqual(yield* c.capture, { runs: 2, samples: 0 })
    }).pipe(Effect.provide(environment(database))))

  it.effect("a run rolled back past corrupt steps loses their samples and is captured again as it redoes them", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* CuratorStore.CuratorStore
      yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 5 } }, script([
        { criteria_met: [false, false] },
        { criteria_met: [false, false] },
        { criteria_met: [false, false] },
        { content: "four, the first time", criteria_met: [true, false] }
      ]))
      const c = yield* curator([{ id: "any-end", completed_only: false }])
      assert.deepStrictEqual(yield* c.capture, { runs: 1, samples: 1 })
      yield* sql`UPDATE steps SET body = 'garbage' WHERE run_id = 'r' AND iteration >= 4`
      yield* sql`UPDATE checkpoints SET state = 'garbage' WHERE run_id = 'r'`
      const { result } = yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 6 } }, script([
        { content: "four, again", criteria_met: [true, false] },
        { content: "five, done", criteria_met: [true, true] }
      ]))
      assert.strictEqual(result.status, "completed")
      assert.deepStrictEqual(yield* c.capture, { runs: 1, samples: 2 })
      const rows = yield* store.page({ completed_only: true, max_tokens: 1_000_000 }, 0, 10)
      assert.deepStrictEqual(rows.map((r) => [r.sample.metadata.iteration, r.sample.messages.at(-1)!.content]), [[4, "four, again"], [5, "five, done"]])
    }).pipe(Effect.provide(environment(database))))

  it.effect("a specialist whose id is too long to name a dataset gets none derived, and asking for it says why; the rest still list", () =>
    Effect.gen(function*() {
      const long = `a${"-b".repeat(60)}`
      yield* runMission({ runId: "b", goal: goal(1) }, script([{ criteria_met: [true] }]))
      const c = yield* curator([{ id: "long-one", specialist: long }])
      yield* c.capture
      const store = yield* CuratorStore.CuratorStore
      const [captured] = yield* store.page({ completed_only: true, max_tokens: 1_000_000 }, 0, 1)
      const sample = captured!.sample
      // As the run's specialist would have it (a run's checkpoint names it; this one's is kept short).
      yield* store.record({
        run_id: "b",
        updated_at: "t",
        size: 1,
        run_status: "completed",
        samples: [{ ...sample, metadata: { ...sample.metadata, run_id: "b-as-specialist", specialist: long, hash: "f".repeat(32) } }]
      })
      assert.deepStrictEqual((yield* c.datasets).map((d) => [d.definition.id, d.samples]), [["all", 2], ["long-one", 1]])
      const error = yield* Effect.flip(c.show(`specialist.${long}`))
      assert.strictEqual(error._tag, "BadInput")
      assert.match(error.message, /^no dataset can be derived for specialist a-b-b.*: its id "specialist\.a-b-b.*" must be 1-100 .*define one with a shorter id/)
      assert.isTrue(Either.isLeft(Dataset.forSpecialist(long)))
      assert.isTrue(Either.isRight(Dataset.forSpecialist("writer")))
    }).pipe(Effect.provide(environment(database))))

  it.effect("bad input: an unknown dataset, an unwritable --out; nothing is written", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "b", goal: goal(1) }, script([{ criteria_met: [true] }]))
      const c = yield* curator()
      const out = outFile()
      const unknown = yield* Effect.flip(c.export("nope", { out, split: "train" }))
      assert.match(unknown.message, /^unknown dataset "nope": known datasets are all/)
      const nowhere = yield* Effect.flip(c.export("all", { out: path.join(dir, "missing", "x.jsonl"), split: "train" }))
      assert.match(nowhere.message, /cannot be written: no folder/)
      const folder = yield* Effect.flip(c.export("all", { out: dir, split: "train" }))
      assert.match(folder.message, /it is a folder/)
      assert.isFalse(fs.existsSync(out))
      assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), [])
    }).pipe(Effect.provide(environment(database))))
}

/** `count` completed one-step runs written straight into the stores, each answer in words beyond ASCII. */
const storedRuns = (count: number) =>
  Effect.gen(function*() {
    const at = "2026-01-01T00:00:00.000Z"
    const usage = new BudgetUsage({ seconds: 1, tool_calls: 0, tokens: 100, dollars: 0.001, iterations: 1 })
    const runId = (i: number) => `p${String(i).padStart(4, "0")}`
    const goalOf = (i: number) => new Goal({ objective: `Write note ${i.toString(36)} on café ${"abcdefgh"[i % 8]}`, success_criteria: ["written"] })
    yield* (yield* RunStore).saveAll(Array.from({ length: count }, (_, i) =>
      new Checkpoint({
        version: 1,
        run_id: runId(i),
        goal: goalOf(i),
        policy: new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0 }),
        status: "completed",
        halt_reason: null,
        usage,
        criteria_met: [true],
        output: "done",
        created_at: at,
        updated_at: at
      })))
    yield* (yield* StepStore).append(Array.from({ length: count }, (_, i) => ({
      runId: runId(i),
      step: new Step({
        iteration: 1,
        at,
        model: "gpt-4o-mini",
        answer: `Note ${i}: crème brûlée, 日本語, 🚀 — ${"xyz".repeat(i % 50)}`,
        tool_calls: [],
        verdict: "met",
        usage,
        criteria_met: [true],
        calls: []
      })
    })))
  })

describe("Curator", () => {
  // Past one page of runs at capture and of samples at export, as a dataset of any size is read.
  eachDatabase("pages", (database) => {
    it.effect("captures and exports across pages: every sample once, in capture order, its UTF-8 bytes counted", () =>
      Effect.gen(function*() {
        yield* storedRuns(250)
        const c = yield* curator([{ id: "every", dedup: false, eval_fraction: 0 }])
        assert.deepStrictEqual(yield* c.capture, { runs: 250, samples: 250 })
        const out = outFile()
        const report = yield* c.export("every", { out, split: "train" })
        assert.deepStrictEqual([report.written, report.duplicates, report.other_split, report.invalid], [250, 0, 0, 0])
        const text = fs.readFileSync(out, "utf8")
        assert.strictEqual(report.bytes, fs.statSync(out).size)
        const streamed = Array.from(yield* Stream.runCollect(c.lines("every", "train")))
        assert.strictEqual(text, streamed.map((line) => `${line}\n`).join(""))
        const answers = readLines(out).map((line) => line.messages.at(-1)!.content)
        assert.deepStrictEqual(answers, Array.from({ length: 250 }, (_, i) => `Note ${i}: crème brûlée, 日本語, 🚀 — ${"xyz".repeat(i % 50)}`))
      }).pipe(Effect.provide(environment(database.layer))))
  })
  eachDatabase("runs", (database) => suite(database.layer))
})
