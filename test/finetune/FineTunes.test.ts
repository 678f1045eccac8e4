import type { SqlClient } from "@effect/sql"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { ConfigProvider, DateTime, Duration, Effect, Fiber, Layer, Option, TestClock, TestServices } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as FineTune from "../../src/finetune/FineTune.js"
import { FineTuneJob } from "../../src/finetune/FineTuneJob.js"
import * as FineTunes from "../../src/finetune/FineTunes.js"
import * as FineTuneStore from "../../src/store/FineTuneStore.js"
import { eachDatabase, sqlite } from "../support/Databases.js"

const datasetId = () => `ds-${randomBytes(4).toString("hex")}`

const config: FineTunes.FineTunesConfig = { threshold: 10, baseModel: "gpt-4o-mini-2024-07-18", pollEvery: "30 seconds" }

const over = (database: Layer.Layer<SqlClient.SqlClient>, provider: Layer.Layer<FineTune.FineTune> = FineTune.layerMock(), overrides: Partial<FineTunes.FineTunesConfig> = {}) =>
  Layer.merge(FineTunes.layer({ ...config, ...overrides }), FineTuneStore.layer).pipe(Layer.provideMerge(Layer.merge(provider, FineTuneStore.layer)), Layer.provideMerge(database))

const kinds = (id: string) =>
  Effect.flatMap(FineTunes.FineTunes, (f) => f.events(id)).pipe(Effect.map((events) => events.filter((e) => e.kind !== "finetune_message").map((e) => `${e.kind} ${e.status}`)))

describe("FineTunes on the mock provider", () => {
  it.effect("moves a job through validating_files, queued, running, succeeded as the TestClock goes, each change logged once", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const started = yield* fineTunes.consider({ id: datasetId(), samples: 12, snapshot: "sha256:a", file: "/data/a.jsonl" })
      assert.strictEqual(started._tag, "Started")
      const job = (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job
      assert.strictEqual(job.status, "validating_files")
      assert.strictEqual(job.provider_job_id, "ftjob-mock-1")
      const poller = yield* Effect.fork(fineTunes.untilDone)
      for (const expected of ["validating_files", "queued", "queued", "running", "running", "succeeded"]) {
        yield* TestClock.adjust("30 seconds")
        yield* Effect.yieldNow()
        assert.strictEqual((yield* fineTunes.get(job.id)).status, expected)
      }
      yield* TestClock.adjust("30 seconds")
      yield* Fiber.join(poller)
      const done = yield* fineTunes.get(job.id)
      assert.strictEqual(done.status, "succeeded")
      assert.strictEqual(done.fine_tuned_model, "ft:gpt-4o-mini-2024-07-18:autopilot:ftjob-mock-1")
      assert.isNotNull(done.finished_at)
      assert.deepStrictEqual(yield* kinds(job.id), [
        "finetune_started validating_files",
        "finetune_status queued",
        "finetune_status running",
        "finetune_succeeded succeeded"
      ])
      // The provider's own messages are kept too, once each however often they were read.
      const messages = (yield* fineTunes.events(job.id)).filter((e) => e.kind === "finetune_message").map((e) => e.message)
      assert.deepStrictEqual(messages, ["info: job is validating files", "info: job is queued", "info: job is running", "info: job is succeeded"])
    }).pipe(Effect.provide(over(sqlite.layer))))

  it.effect("a job told to fail ends failed with the provider's error, logged as finetune_failed", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const started = yield* fineTunes.consider({ id: datasetId(), samples: 10, snapshot: "sha256:b", file: "/data/b.jsonl" })
      assert.strictEqual(started._tag, "Started")
      const id = (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id
      const poller = yield* Effect.fork(fineTunes.untilDone)
      yield* TestClock.adjust("4 minutes")
      yield* Fiber.join(poller)
      const job = yield* fineTunes.get(id)
      assert.deepStrictEqual([job.status, job.error, job.fine_tuned_model], ["failed", "out of GPUs", null])
      assert.deepStrictEqual((yield* kinds(id)).at(-1), "finetune_failed failed")
    }).pipe(Effect.provide(over(sqlite.layer, FineTune.layerMock({ failWith: "out of GPUs" })))))

  it.effect("cancels a running job: finetune_cancelled, and a second cancel or an unknown id is refused", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const started = yield* fineTunes.consider({ id: datasetId(), samples: 10, snapshot: "sha256:c", file: "/data/c.jsonl" })
      const id = (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id
      yield* TestClock.adjust("2 minutes")
      assert.strictEqual(yield* fineTunes.pollOnce, 1)
      assert.strictEqual((yield* fineTunes.get(id)).status, "running")
      const cancelled = yield* fineTunes.cancel(id)
      assert.strictEqual(cancelled.status, "cancelled")
      assert.strictEqual(yield* fineTunes.pollOnce, 0)
      assert.deepStrictEqual((yield* kinds(id)).at(-1), "finetune_cancelled cancelled")
      const again = yield* Effect.flip(fineTunes.cancel(id))
      assert.strictEqual(again.message, `fine-tune job ${id} has ended already (cancelled)`)
      const unknown = yield* Effect.flip(fineTunes.cancel("ft-nope"))
      assert.strictEqual(unknown.message, `no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`)
    }).pipe(Effect.provide(over(sqlite.layer))))
})

describe("snapshot files", () => {
  const snapshots = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-snapshots-"))
  const user = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-user-"))
  const write = (dir: string, name: string) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, "{}\n")
    return file
  }
  const started = (considered: FineTunes.Considered) => (considered as Extract<FineTunes.Considered, { _tag: "Started" }>).job
  afterAll(() => {
    for (const dir of [snapshots, user]) fs.rmSync(dir, { recursive: true, force: true })
  })

  it.effect("a snapshot file is removed once its job has ended and no job still going trains on it; kept while one does; a user's file elsewhere is never removed", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const shared = write(snapshots, "shared-0123456789abcdef.jsonl")
      const first = started(yield* fineTunes.consider({ id: datasetId(), samples: 10, snapshot: "sha256:s", file: shared }))
      const second = started(yield* fineTunes.consider({ id: datasetId(), samples: 10, snapshot: "sha256:s", file: shared }))
      assert.strictEqual((yield* fineTunes.cancel(first.id)).status, "cancelled")
      assert.isTrue(fs.existsSync(shared), "the second job still trains on it")
      // The second ends at the provider: the poll that sees it removes the file.
      yield* TestClock.adjust("4 minutes")
      yield* fineTunes.pollOnce
      assert.strictEqual((yield* fineTunes.get(second.id)).status, "succeeded")
      assert.isFalse(fs.existsSync(shared))

      const users = write(user, "mine.jsonl")
      const third = started(yield* fineTunes.consider({ id: datasetId(), samples: 10, snapshot: "sha256:u", file: users }))
      yield* fineTunes.cancel(third.id)
      assert.isTrue(fs.existsSync(users))
    }).pipe(Effect.provide(over(sqlite.layer, FineTune.layerMock(), { snapshots }))))

  it.effect("a consider that starts nothing removes the snapshot it was handed, unless a job still going uses it", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const id = datasetId()
      const small = write(snapshots, "small-0123456789abcdef.jsonl")
      assert.strictEqual((yield* fineTunes.consider({ id, samples: 3, snapshot: "sha256:small", file: small }))._tag, "BelowThreshold")
      assert.isFalse(fs.existsSync(small))
      const going = write(snapshots, "going-0123456789abcdef.jsonl")
      started(yield* fineTunes.consider({ id, samples: 10, snapshot: "sha256:going", file: going }))
      assert.strictEqual((yield* fineTunes.consider({ id, samples: 10, snapshot: "sha256:going", file: going }))._tag, "Exists")
      assert.isTrue(fs.existsSync(going))
      const grown = write(snapshots, "grown-0123456789abcdef.jsonl")
      assert.strictEqual((yield* fineTunes.consider({ id, samples: 30, snapshot: "sha256:grown", file: grown }))._tag, "Training")
      assert.isFalse(fs.existsSync(grown))
    }).pipe(Effect.provide(over(sqlite.layer, FineTune.layerMock(), { snapshots }))))
})

describe("a claim without a provider job", () => {
  // A provider whose start may take a quarter of an hour: a large upload on a slow line.
  const slowStarts = Layer.effect(FineTune.FineTune, Effect.map(FineTune.makeMock(), (mock) => ({ ...mock, startsWithin: Duration.minutes(15) })))

  it.effect("is failed only once its starter cannot still be waiting for the answer: after the longest start and a minute, at least ten minutes", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const store = yield* FineTuneStore.FineTuneStore
      const at = DateTime.formatIso(yield* DateTime.now)
      const claimed = Option.getOrThrow(yield* store.claim(FineTuneJob.claimed({
        id: "ft-claimed",
        dataset_id: datasetId(),
        snapshot: "sha256:slow",
        samples: 10,
        file: "/d.jsonl",
        provider: "mock",
        endpoint: "mock",
        base_model: "m",
        at
      })))
      yield* TestClock.adjust("15 minutes")
      yield* fineTunes.pollOnce
      assert.strictEqual((yield* fineTunes.get(claimed.id)).status, "starting", "its starter may still be uploading")
      yield* TestClock.adjust("1 minute")
      yield* fineTunes.pollOnce
      const failed = yield* fineTunes.get(claimed.id)
      assert.deepStrictEqual([failed.status, failed.error], [
        "failed",
        "no provider job was recorded for it (its starter ended, or the provider's answer was lost); check mock for a stray job before training this dataset again"
      ])
    }).pipe(Effect.provide(over(sqlite.layer, slowStarts))))
})

describe("the threshold", () => {
  it.effect("starts nothing below it, once at it, never again for that snapshot, none while one trains, and again only once the dataset grew by it", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const id = datasetId()
      const below = yield* fineTunes.consider({ id, samples: 9, snapshot: "sha256:1", file: "/d.jsonl" })
      assert.deepStrictEqual(below, FineTunes.Considered.BelowThreshold({ samples: 9, threshold: 10, since: 0 }))
      const first = yield* fineTunes.consider({ id, samples: 10, snapshot: "sha256:1", file: "/d.jsonl" })
      assert.strictEqual(first._tag, "Started")
      const second = yield* fineTunes.consider({ id, samples: 10, snapshot: "sha256:1", file: "/d.jsonl" })
      assert.strictEqual(second._tag, "Exists")
      // Grown while the first still trains: one job at a time.
      assert.strictEqual((yield* fineTunes.consider({ id, samples: 25, snapshot: "sha256:2", file: "/d.jsonl" }))._tag, "Training")
      const poller = yield* Effect.fork(fineTunes.untilDone)
      yield* TestClock.adjust("10 minutes")
      yield* Fiber.join(poller)
      // Trained on 10: 19 is 9 more, not enough; 20 is.
      const little = yield* fineTunes.consider({ id, samples: 19, snapshot: "sha256:3", file: "/d.jsonl" })
      assert.deepStrictEqual(little, FineTunes.Considered.BelowThreshold({ samples: 19, threshold: 10, since: 10 }))
      assert.strictEqual((yield* fineTunes.consider({ id, samples: 20, snapshot: "sha256:4", file: "/d.jsonl" }))._tag, "Started")
      assert.strictEqual((yield* fineTunes.list()).filter((j) => j.dataset_id === id).length, 2)
    }).pipe(Effect.provide(over(sqlite.layer))))

  it.effect("is overridden per dataset: a dataset's own threshold wins, and one below 1 is refused", () =>
    Effect.gen(function*() {
      const fineTunes = yield* FineTunes.FineTunes
      const low = yield* fineTunes.consider({ id: datasetId(), samples: 3, snapshot: "sha256:x", file: "/d.jsonl", threshold: 3 })
      assert.strictEqual(low._tag, "Started")
      const high = yield* fineTunes.consider({ id: datasetId(), samples: 50, snapshot: "sha256:x", file: "/d.jsonl", threshold: 51 })
      assert.deepStrictEqual(high, FineTunes.Considered.BelowThreshold({ samples: 50, threshold: 51, since: 0 }))
      const zero = yield* Effect.flip(fineTunes.consider({ id: "ds-zero", samples: 50, snapshot: "sha256:x", file: "/d.jsonl", threshold: 0 }))
      assert.strictEqual(zero.message, `the threshold of dataset ds-zero must be a whole number of samples from 1 to 1000000000, got "0"`)
    }).pipe(Effect.provide(over(sqlite.layer))))

  it.effect("AUTOPILOT_FINETUNE_THRESHOLD: a positive integer; zero, negative or not a number is one line", () =>
    Effect.gen(function*() {
      const read = (value: string) => FineTunes.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["AUTOPILOT_FINETUNE_THRESHOLD", value]]))))
      assert.strictEqual((yield* read("250")).threshold, 250)
      assert.strictEqual((yield* FineTunes.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))).threshold, FineTunes.defaultThreshold)
      for (const bad of ["0", "-5", "ten", "1.5"]) {
        const error = yield* Effect.flip(read(bad))
        assert.strictEqual(error.message, `AUTOPILOT_FINETUNE_THRESHOLD must be a whole number of samples from 1 to 1000000000, got "${bad}"`)
      }
    }))
})

eachDatabase("FineTunes racing", (database) => {
  it.scoped("two starters in two processes' worth of connections, at once: one job for the snapshot, started at the provider once", () =>
    Effect.gen(function*() {
      const shared = yield* database.shared
      const provider = yield* Layer.build(FineTune.layerMock())
      const starter = () =>
        Effect.flatMap(FineTunes.FineTunes, (f) => f.consider({ id: "ds-race", samples: 20, snapshot: "sha256:race", file: "/race.jsonl" })).pipe(
          Effect.provide(FineTunes.layer(config).pipe(Layer.provide(FineTuneStore.layer), Layer.provide(shared))),
          Effect.provide(provider)
        )
      const results = yield* Effect.all(Array.from({ length: 6 }, starter), { concurrency: "unbounded" })
      assert.strictEqual(results.filter((r) => r._tag === "Started").length, 1)
      assert.strictEqual(results.filter((r) => r._tag === "Exists").length, 5)
      const jobs = yield* Effect.flatMap(FineTuneStore.FineTuneStore, (s) => s.list()).pipe(Effect.provide(FineTuneStore.layer.pipe(Layer.provide(shared))))
      assert.strictEqual(jobs.length, 1)
      // The provider was asked once: a second start would have been ftjob-mock-2.
      assert.strictEqual(jobs[0]!.provider_job_id, "ftjob-mock-1")
    }))

  it.scoped("two pollers of one job log each change once", () =>
    Effect.gen(function*() {
      const shared = yield* database.shared
      const provider = yield* Layer.build(FineTune.layerMock())
      const poller = FineTunes.layer(config).pipe(Layer.provide(FineTuneStore.layer), Layer.provide(shared))
      const [a, b] = yield* Effect.all([Layer.build(poller), Layer.build(poller)]).pipe(Effect.provide(provider))
      const started = yield* Effect.flatMap(FineTunes.FineTunes, (f) => f.consider({ id: "ds-two", samples: 20, snapshot: "sha256:two", file: "/two.jsonl" })).pipe(Effect.provide(a))
      const id = (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id
      const pollers = yield* Effect.forEach([a, b], (poller) => Effect.fork(Effect.flatMap(FineTunes.FineTunes, (f) => f.untilDone).pipe(Effect.provide(poller))))
      const running = Effect.map(Effect.forEach(pollers, Fiber.poll), (polls) => polls.filter(Option.isNone).length)
      // The database's replies come in real time (a Postgres round trip is no TestClock's): the Clock moves on
      // only once every poller still running has gone to sleep on its Schedule, whatever the machine's load.
      const asleep = Effect.gen(function*() {
        const left = yield* running
        return left === 0 || (yield* TestClock.sleeps()).length >= left
      })
      // Asked of the TestClock, waited between in real time, for at most ~30 s.
      const untilAsleep = Effect.gen(function*() {
        for (let i = 0; i < 15_000; i++) {
          if (yield* asleep) return
          yield* TestServices.provideLive(Effect.sleep("2 millis"))
        }
        return yield* Effect.die("a poller neither slept on its Schedule nor ended within 30 s")
      })
      while ((yield* running) > 0) {
        yield* untilAsleep
        yield* TestClock.adjust("30 seconds")
      }
      yield* Fiber.joinAll(pollers)
      assert.deepStrictEqual(yield* kinds(id).pipe(Effect.provide(a)), [
        "finetune_started validating_files",
        "finetune_status queued",
        "finetune_status running",
        "finetune_succeeded succeeded"
      ])
    }))
})
