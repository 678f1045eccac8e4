import { assert, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Ref, Schema, Stream, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Curator } from "../../src/curator/Curator.js"
import { DatasetDefinition } from "../../src/curator/Dataset.js"
import * as FineTune from "../../src/finetune/FineTune.js"
import * as FineTunes from "../../src/finetune/FineTunes.js"
import * as TrainingLoop from "../../src/finetune/TrainingLoop.js"
import * as Promotions from "../../src/finetune/Promotions.js"
import { MockLlm, MockScript } from "../../src/llm/MockLlm.js"
import * as FineTuneStore from "../../src/store/FineTuneStore.js"
import * as PromotionStore from "../../src/store/PromotionStore.js"
import { sqlite } from "../support/Databases.js"

const line = (i: number) => JSON.stringify({ messages: [{ role: "user", content: `question ${i}` }, { role: "assistant", content: `answer ${i}` }] })

/**
 * A curator whose `all` dataset holds `samples` (a Ref the test grows), exported as that many lines; it
 * counts its exports. The real curator has its own suite: here only what the loop does with one is tested.
 */
const curatorWith = (samples: Ref.Ref<number>, exports: Ref.Ref<number>, definition: typeof DatasetDefinition.Encoded) =>
  Layer.succeed(Curator, Curator.of({
    capture: Effect.succeed({ runs: 0, samples: 0 } as never),
    datasets: Effect.map(Ref.get(samples), (n) => [{ definition: Schema.decodeSync(DatasetDefinition)(definition), samples: n }]),
    show: () => Effect.die("not used"),
    lines: () => Stream.die("not used"),
    export: (_id, { out }) =>
      Effect.gen(function*() {
        const n = yield* Ref.get(samples)
        yield* Ref.update(exports, (k) => k + 1)
        fs.writeFileSync(out, Array.from({ length: n }, (_, i) => line(i)).join("\n") + "\n")
        return { written: n } as never
      })
  }))

const setupWith = (definition: typeof DatasetDefinition.Encoded) => Effect.gen(function*() {
  const samples = yield* Ref.make(3)
  const exports = yield* Ref.make(0)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-loop-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  const said: Array<string> = []
  const services = yield* Layer.build(Layer.mergeAll(
    curatorWith(samples, exports, definition),
    FineTunes.layer({ threshold: 5, baseModel: "base", pollEvery: "30 seconds", snapshots: dir }).pipe(
      Layer.provide(Layer.merge(FineTune.layerMock(), FineTuneStore.layer)),
      Layer.provide(sqlite.layer)
    )
  ))
  const loop = yield* TrainingLoop.make({ datasets: ["all", "blueprint.unknown"], dir, threshold: 5, every: "1 minute", say: (l) => Effect.sync(() => void said.push(l)) }).pipe(
    Effect.provide(services)
  )
  const listed = Effect.flatMap(FineTunes.FineTunes, (f) => f.list()).pipe(Effect.provide(services))
  const jobs = Effect.map(listed, (js) => js.map((j) => ({ samples: j.samples, file: path.basename(j.file) })))
  const jobIds = Effect.map(listed, (js) => js.map((j) => j.id))
  return { ...loop, samples, exports, dir, said, jobs, jobIds, listed }
})

const setup = setupWith({ id: "all" })

it.scoped("a dataset below the threshold is not exported; at it, one job starts on a file named for its content; unchanged, nothing more", () =>
  Effect.gen(function*() {
    const loop = yield* setup
    yield* loop.round
    assert.strictEqual(yield* Ref.get(loop.exports), 0, "3 samples, threshold 5: no export")
    assert.deepStrictEqual(yield* loop.jobs, [])

    yield* Ref.set(loop.samples, 6)
    yield* loop.round
    const [job] = yield* loop.jobs
    assert.strictEqual(job?.samples, 6)
    assert.match(job!.file, /^all-[0-9a-f]{16}\.jsonl$/)
    assert.strictEqual(fs.readFileSync(path.join(loop.dir, job!.file), "utf8").trim().split("\n").length, 6)
    assert.deepStrictEqual(loop.said, [`fine-tune ${(yield* loop.jobIds)[0]} started on all (6 samples)`])

    yield* loop.round
    yield* loop.round
    assert.strictEqual(yield* Ref.get(loop.exports), 1, "a dataset that did not grow is not exported again")
    assert.strictEqual((yield* loop.jobs).length, 1)
  }))

it.scoped("one job at a time per dataset, and another only once the dataset grew by the threshold since the last one trained; each on its own file", () =>
  Effect.gen(function*() {
    const loop = yield* setup
    yield* Ref.set(loop.samples, 5)
    yield* loop.round
    // Grown while the first trains: not even exported.
    yield* Ref.set(loop.samples, 8)
    yield* loop.round
    assert.strictEqual(yield* Ref.get(loop.exports), 1)
    // The first ends (the mock provider moves on the Clock; the round polls it): 8 is 3 more than 5, below 5.
    yield* TestClock.adjust("10 minutes")
    yield* loop.round
    yield* loop.round
    assert.deepStrictEqual((yield* loop.jobs).map((j) => j.samples), [5])
    yield* Ref.set(loop.samples, 10)
    yield* loop.round
    const jobs = yield* loop.jobs
    assert.deepStrictEqual(jobs.map((j) => j.samples), [10, 5])
    assert.notStrictEqual(jobs[0]!.file, jobs[1]!.file)
    // The new job's file is there; the ended one's was removed when it ended: exports do not pile up.
    assert.strictEqual(fs.readFileSync(path.join(loop.dir, jobs[0]!.file), "utf8").trim().split("\n").length, 10)
    assert.deepStrictEqual(fs.readdirSync(loop.dir), [jobs[0]!.file])
  }))

it.scoped("a round that fails is said, and the next one tries again: a provider that could not be asked is asked again", () =>
  Effect.gen(function*() {
    const loop = yield* setup
    yield* Ref.set(loop.samples, 6)
    // The snapshots' folder cannot be made: a file stands where it should be.
    fs.rmSync(loop.dir, { recursive: true, force: true })
    fs.writeFileSync(loop.dir, "in the way")
    yield* loop.round
    assert.match(loop.said.at(-1)!, /^training loop: all: cannot make .*; trying again next round$/)
    assert.deepStrictEqual(yield* loop.jobs, [])
    fs.rmSync(loop.dir)
    yield* loop.round
    assert.strictEqual((yield* loop.jobs).length, 1)
  }))

it.effect("AUTOPILOT_FINETUNE_DATASETS is a comma-separated list of dataset ids, none when unset; anything else is one line naming it", () =>
  Effect.gen(function*() {
    const read = (value: string | undefined) =>
      TrainingLoop.datasetsFromConfig.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(value === undefined ? [] : [["AUTOPILOT_FINETUNE_DATASETS", value]])))
      )
    assert.deepStrictEqual(yield* read(undefined), [])
    assert.deepStrictEqual(yield* read(" all , blueprint.support_triage,"), ["all", "blueprint.support_triage"])
    const refused = yield* Effect.flip(read("all,Not An Id"))
    assert.strictEqual(refused.message, `AUTOPILOT_FINETUNE_DATASETS takes dataset ids separated by commas (a-z 0-9 . _ -, like all,blueprint.support_triage); got "Not An Id"`)
  }))

/** The loop with Promotions given: the `all` curator above, but defined for one specialist, with held-out lines to replay. */
const promotingSetup = (promote: "auto" | "manual") =>
  Effect.gen(function*() {
    const samples = yield* Ref.make(6)
    const exports = yield* Ref.make(0)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-loop-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    const definition = Schema.decodeSync(DatasetDefinition)({ id: "specialist.coder", specialist: "coder" })
    const base = Context.get(yield* Layer.build(curatorWith(samples, exports, { id: "specialist.coder", specialist: "coder" })), Curator)
    const curator = Layer.succeed(Curator, Curator.of({
      ...base,
      datasets: Effect.map(Ref.get(samples), (n) => [{ definition, samples: n }]),
      show: () => Effect.succeed({ definition, samples: 6, duplicates: 0, train: 4, eval: 2 }),
      lines: () => Stream.fromIterable([line(100), line(101)])
    }))
    const said: Array<string> = []
    const services = yield* Layer.build(
      Promotions.layer({ tolerancePoints: 2, maxSamples: 50 }, { endpoints: false }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          FineTunes.layer({ threshold: 5, baseModel: "gpt-4o-mini-2024-07-18", pollEvery: "30 seconds", snapshots: dir }).pipe(Layer.provideMerge(FineTune.layerMock())),
          PromotionStore.layer,
          curator,
          MockLlm.layer(Schema.decodeSync(MockScript)({ model: "gpt-4o", grades: {} }))
        )),
        Layer.provideMerge(FineTuneStore.layer),
        Layer.provide(sqlite.layer)
      )
    )
    const loop = yield* TrainingLoop.make({ datasets: ["specialist.coder"], dir, threshold: 5, every: "1 minute", say: (l) => Effect.sync(() => void said.push(l)), promote }).pipe(
      Effect.provide(services)
    )
    const promotions = Context.get(services, Promotions.Promotions)
    return { ...loop, said, promotions }
  })

it.scoped("with Promotions, a job that succeeds is evaluated once and takes its scope's traffic when its report earns it", () =>
  Effect.gen(function*() {
    const loop = yield* promotingSetup("auto")
    yield* loop.round
    const [started] = loop.said
    const id = started!.split(" ")[1]!
    yield* TestClock.adjust("10 minutes")
    yield* loop.round
    yield* loop.round
    assert.strictEqual(loop.said.length, 2)
    assert.match(loop.said[1]!, new RegExp(`^fine-tune ${id} promoted: ft:gpt-4o-mini-2024-07-18:autopilot:ftjob-mock-1 takes the traffic of specialist:coder: pass rate 100% against 100%`))
    assert.strictEqual((yield* loop.promotions.evaluations(id)).length, 1)
    assert.deepStrictEqual((yield* loop.promotions.routes).map((r) => [r.scope, r.job_id]), [["specialist:coder", id]])
  }))

it.scoped("with promotion manual, the job is evaluated and said promotable, and left for an operator", () =>
  Effect.gen(function*() {
    const loop = yield* promotingSetup("manual")
    yield* loop.round
    yield* TestClock.adjust("10 minutes")
    yield* loop.round
    assert.match(loop.said[1]!, /^fine-tune ft-[0-9a-f]+ evaluated: promotable \(promotion is manual\): pass rate 100% against 100%/)
    assert.deepStrictEqual(yield* loop.promotions.routes, [])
  }))

it.effect("AUTOPILOT_FINETUNE_PROMOTE is auto (the default) or manual; anything else is one line", () =>
  Effect.gen(function*() {
    const read = (value: string | undefined) =>
      TrainingLoop.promoteFromConfig.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(value === undefined ? [] : [["AUTOPILOT_FINETUNE_PROMOTE", value]]))))
    assert.strictEqual(yield* read(undefined), "auto")
    assert.strictEqual(yield* read("manual"), "manual")
    assert.strictEqual((yield* Effect.flip(read("sometimes"))).message, `AUTOPILOT_FINETUNE_PROMOTE must be auto or manual, got "sometimes"`)
  }))

it.scoped("a dataset's own threshold and base model, from its definition, are what the loop trains with", () =>
  Effect.gen(function*() {
    const loop = yield* setupWith({ id: "all", threshold: 2, base_model: "qwen2.5-7b" })
    yield* Ref.set(loop.samples, 2)
    yield* loop.round
    const [job] = yield* loop.listed
    assert.deepStrictEqual([job?.samples, job?.base_model], [2, "qwen2.5-7b"], "2 samples reach the dataset's threshold of 2, not the loop's 5")
  }))
