import { assert, describe, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { randomBytes } from "node:crypto"
import { FineTuneJob } from "../../src/finetune/FineTuneJob.js"
import * as Store from "../../src/store/FineTuneStore.js"
import { FineTuneStore } from "../../src/store/FineTuneStore.js"
import { eachDatabase } from "../support/Databases.js"

const jobFor = (dataset: string, snapshot: string, at = "2025-03-10T09:00:00.000Z") =>
  FineTuneJob.claimed({
    id: `ft-${randomBytes(6).toString("hex")}`,
    dataset_id: dataset,
    snapshot,
    samples: 120,
    file: "/data/train.jsonl",
    provider: "mock",
    base_model: "gpt-4o-mini-2024-07-18",
    at
  })

eachDatabase("FineTuneStore", (database) => {
  const store = Store.layer.pipe(Layer.provideMerge(database.layer))

  describe("jobs", () => {
    it.effect("claims a snapshot once: of twenty claims at once, one is written; another snapshot of the dataset is a job of its own", () =>
      Effect.gen(function*() {
        const jobs = yield* FineTuneStore
        const dataset = `ds-${randomBytes(4).toString("hex")}`
        const claims = yield* Effect.all(Array.from({ length: 20 }, () => jobs.claim(jobFor(dataset, "sha256:a"))), { concurrency: "unbounded" })
        assert.strictEqual(claims.filter(Option.isSome).length, 1)
        const claimed = Option.getOrThrow(claims.find(Option.isSome)!)
        assert.deepStrictEqual(yield* jobs.forSnapshot(dataset, "sha256:a"), Option.some(claimed))
        assert.deepStrictEqual(yield* jobs.get(claimed.id), Option.some(claimed))
        assert.isTrue(Option.isSome(yield* jobs.claim(jobFor(dataset, "sha256:b", "2025-03-11T09:00:00.000Z"))))
        assert.deepStrictEqual((yield* jobs.list()).map((j) => j.snapshot), ["sha256:b", "sha256:a"])
      }).pipe(Effect.provide(store)))

    it.effect("moves a job only from the status given, logging the change with it; the ended leave the unfinished list", () =>
      Effect.gen(function*() {
        const jobs = yield* FineTuneStore
        const job = Option.getOrThrow(yield* jobs.claim(jobFor("ds-move", "sha256:m")))
        const at = "2025-03-10T09:05:00.000Z"
        const started = yield* jobs.transition(job.id, "starting", { status: "queued", provider_job_id: "ftjob-9", at, finished: false }, {
          kind: "finetune_started",
          at,
          status: "queued",
          message: "provider job ftjob-9",
          ref: null
        })
        assert.deepStrictEqual(Option.map(started, (j) => [j.status, j.provider_job_id, j.updated_at, j.finished_at]), Option.some(["queued", "ftjob-9", at, null]))
        // A second mover from the old status finds it gone and writes nothing, log included.
        const late = yield* jobs.transition(job.id, "starting", { status: "running", at, finished: false }, { kind: "finetune_status", at, status: "running", message: null, ref: null })
        assert.isTrue(Option.isNone(late))
        assert.deepStrictEqual((yield* jobs.unfinished("mock")).map((j) => j.id), [job.id])
        assert.deepStrictEqual(yield* jobs.unfinished("openai"), [])
        const end = "2025-03-10T10:00:00.000Z"
        const done = yield* jobs.transition(job.id, "queued", { status: "succeeded", fine_tuned_model: "ft:m", base_url: "http://127.0.0.1:8000/v1", error: null, at: end, finished: true }, {
          kind: "finetune_succeeded",
          at: end,
          status: "succeeded",
          message: "model ft:m",
          ref: null
        })
        assert.deepStrictEqual(Option.map(done, (j) => [j.status, j.fine_tuned_model, j.base_url, j.finished_at]), Option.some(["succeeded", "ft:m", "http://127.0.0.1:8000/v1", end]))
        assert.deepStrictEqual(yield* jobs.unfinished("mock"), [])
        assert.deepStrictEqual((yield* jobs.events(job.id)).map((e) => [e.kind, e.status]), [["finetune_started", "queued"], ["finetune_succeeded", "succeeded"]])
      }).pipe(Effect.provide(store)))

    it.effect("appends the provider's messages once each by ref; release forgets a job and its log", () =>
      Effect.gen(function*() {
        const jobs = yield* FineTuneStore
        const job = Option.getOrThrow(yield* jobs.claim(jobFor("ds-log", "sha256:l")))
        const message = (ref: string) => ({ kind: "finetune_message" as const, at: "2025-03-10T09:00:00.000Z", status: "running" as const, message: `m ${ref}`, ref })
        for (const ref of ["e1", "e2", "e1", "e2", "e3"]) yield* jobs.append(job.id, message(ref))
        assert.deepStrictEqual((yield* jobs.events(job.id)).map((e) => e.message), ["m e1", "m e2", "m e3"])
        yield* jobs.release(job.id)
        assert.isTrue(Option.isNone(yield* jobs.get(job.id)))
        assert.deepStrictEqual(yield* jobs.events(job.id), [])
        assert.isTrue(Option.isSome(yield* jobs.claim(jobFor("ds-log", "sha256:l"))))
      }).pipe(Effect.provide(store)))
  })

  describe("what a poller and the snapshot files need", () => {
    it.effect("records where a job was started; a row from before (no endpoint) decodes with none", () =>
      Effect.gen(function*() {
        const jobs = yield* FineTuneStore
        const sql = yield* SqlClient.SqlClient
        const started = Option.getOrThrow(yield* jobs.claim(new FineTuneJob({ ...jobFor("ds-where", "sha256:w"), endpoint: "https://api.openai.com/v1" })))
        assert.strictEqual(Option.getOrThrow(yield* jobs.get(started.id)).endpoint, "https://api.openai.com/v1")
        // As the first schema wrote rows: no endpoint column in the insert.
        yield* sql`INSERT INTO finetune_jobs (id, dataset_id, snapshot, samples, file, provider, provider_job_id, base_model, status, fine_tuned_model, base_url, error, created_at, updated_at, finished_at)
          VALUES (${"ft-old"}, ${"ds-old"}, ${"sha256:o"}, ${5}, ${"/old.jsonl"}, ${"openai"}, ${"ftjob-7"}, ${"m"}, ${"running"}, ${null}, ${null}, ${null}, ${"2025-01-01T00:00:00.000Z"}, ${"2025-01-01T00:00:00.000Z"}, ${null})`
        const old = Option.getOrThrow(yield* jobs.get("ft-old"))
        assert.deepStrictEqual([old.endpoint, old.provider_job_id, old.status], [null, "ftjob-7", "running"])
        assert.deepStrictEqual((yield* jobs.unfinished()).map((j) => j.id).sort(), [started.id, "ft-old"].sort())
        assert.deepStrictEqual((yield* jobs.unfinished("openai")).map((j) => j.id), ["ft-old"])
      }).pipe(Effect.provide(store)))

    it.effect("a file is in use while a job on it has not ended; the last provider message's ref is where reading goes on", () =>
      Effect.gen(function*() {
        const jobs = yield* FineTuneStore
        const a = Option.getOrThrow(yield* jobs.claim(new FineTuneJob({ ...jobFor("ds-a", "sha256:f"), file: "/s/f.jsonl" })))
        const b = Option.getOrThrow(yield* jobs.claim(new FineTuneJob({ ...jobFor("ds-b", "sha256:f"), file: "/s/f.jsonl" })))
        const end = (id: string) => jobs.transition(id, "starting", { status: "failed", error: "x", at: "2025-03-10T10:00:00.000Z", finished: true }, null)
        assert.isTrue(yield* jobs.fileInUse("/s/f.jsonl"))
        assert.isFalse(yield* jobs.fileInUse("/s/other.jsonl"))
        yield* end(a.id)
        assert.isTrue(yield* jobs.fileInUse("/s/f.jsonl"))
        yield* end(b.id)
        assert.isFalse(yield* jobs.fileInUse("/s/f.jsonl"))

        assert.isTrue(Option.isNone(yield* jobs.lastRef(a.id)))
        const entry = (ref: string | null, kind: "finetune_message" | "finetune_status" = "finetune_message") => ({ kind, at: "2025-03-10T09:00:00.000Z", status: "running" as const, message: "m", ref })
        yield* jobs.append(a.id, entry("ftcmd-1-out-10"))
        yield* jobs.append(a.id, entry("ftcmd-1-out-25"))
        yield* jobs.append(a.id, entry(null, "finetune_status"))
        assert.deepStrictEqual(yield* jobs.lastRef(a.id), Option.some("ftcmd-1-out-25"))
        assert.isTrue(Option.isNone(yield* jobs.lastRef(b.id)))
      }).pipe(Effect.provide(store)))
  })
})
