import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { FineTune } from "../../src/finetune/FineTune.js"
import * as FineTunes from "../../src/finetune/FineTunes.js"
import * as OpenAiFineTune from "../../src/finetune/OpenAiFineTune.js"
import * as FineTuneStore from "../../src/store/FineTuneStore.js"
import { sqlite } from "../support/Databases.js"
import * as FakeOpenAi from "./FakeOpenAi.js"

const server = Effect.acquireRelease(Effect.promise(FakeOpenAi.start), (fake) => Effect.promise(fake.close))

const dataset = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-ft-"))
    const file = path.join(dir, "train.jsonl")
    fs.writeFileSync(file, `${JSON.stringify({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] })}\n`)
    return file
  }),
  (file) => Effect.sync(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }))
)

const provider = (url: string) => OpenAiFineTune.layerOpenAi({ baseURL: url, apiKey: Redacted.make("sk-fake") })

const config: FineTunes.FineTunesConfig = { threshold: 1, baseModel: "gpt-4o-mini-2024-07-18", pollEvery: "20 millis" }

const fineTunes = (url: string, database: Layer.Layer<import("@effect/sql").SqlClient.SqlClient>) =>
  Layer.merge(FineTunes.layer(config), FineTuneStore.layer).pipe(Layer.provide(provider(url)), Layer.provideMerge(FineTuneStore.layer), Layer.provide(database))

const kinds = (id: string) =>
  Effect.flatMap(FineTunes.FineTunes, (f) => f.events(id)).pipe(Effect.map((events) => events.map((e) => `${e.kind} ${e.message}`)))

describe("OpenAiFineTune against a fake OpenAI fine-tuning server on 127.0.0.1", () => {
  it.scopedLive("uploads the file with purpose fine-tune, creates the job, polls it on the Schedule to succeeded, and records the model and where it is served", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const result = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const started = yield* f.consider({ id: "support-replies", samples: 1, snapshot: "sha256:s1", file })
        assert.strictEqual(started._tag, "Started")
        const id = (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id
        yield* f.untilDone
        return { job: yield* f.get(id), log: yield* kinds(id) }
      }).pipe(Effect.provide(fineTunes(fake.url, sqlite.layer)))
      assert.deepStrictEqual(fake.uploads.map((u) => u.purpose), ["fine-tune"])
      assert.include(fake.uploads[0]!.content, `"role":"assistant"`)
      assert.deepStrictEqual([fake.jobs.get("ftjob-1")!.training_file, fake.jobs.get("ftjob-1")!.suffix], ["file-1", "support-replies"])
      assert.deepStrictEqual([result.job.status, result.job.provider_job_id, result.job.fine_tuned_model, result.job.base_url, result.job.error], [
        "succeeded",
        "ftjob-1",
        "ft:gpt-4o-mini-2024-07-18:acme:support-replies:abc123",
        fake.url,
        null
      ])
      const ours = result.log.filter((line) => !line.startsWith("finetune_message"))
      assert.deepStrictEqual(ours, [
        "finetune_started provider job ftjob-1 (validating files)",
        "finetune_status queued",
        "finetune_status running",
        `finetune_succeeded model ft:gpt-4o-mini-2024-07-18:acme:support-replies:abc123 served at ${fake.url}`
      ])
      assert.deepStrictEqual(result.log.filter((line) => line.startsWith("finetune_message")), [
        "finetune_message info: Job is validating_files",
        "finetune_message info: Job is queued",
        "finetune_message info: Job is running"
      ])
    }))

  it.scopedLive("a job the provider fails ends failed with the provider's error and code", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const job = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const started = yield* f.consider({ id: "tiny", samples: 1, snapshot: "sha256:t", file, base_model: "fail-model" })
        yield* f.untilDone
        return yield* f.get((started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id)
      }).pipe(Effect.provide(fineTunes(fake.url, sqlite.layer)))
      assert.deepStrictEqual([job.status, job.error, job.fine_tuned_model], ["failed", "The training file has too few examples (invalid_training_file)", null])
      assert.isNotNull(job.finished_at)
    }))

  it.scopedLive("a poller stopped mid-poll is replaced by a new one over the same database, which resumes the job to its end", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const shared = yield* sqlite.shared
      const id = yield* Effect.scoped(Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const started = yield* f.consider({ id: "restart", samples: 1, snapshot: "sha256:r", file })
        // One poll (queued), then the process goes: its layer, connections and all, released.
        assert.strictEqual(yield* f.pollOnce, 1)
        return (started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id
      }).pipe(Effect.provide(fineTunes(fake.url, shared))))
      const requestsBefore = fake.requests.length
      const after = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        assert.strictEqual((yield* f.get(id)).status, "queued")
        yield* f.untilDone
        return { job: yield* f.get(id), log: yield* kinds(id) }
      }).pipe(Effect.provide(fineTunes(fake.url, shared)))
      assert.isAbove(fake.requests.length, requestsBefore)
      assert.strictEqual(after.job.status, "succeeded")
      assert.deepStrictEqual(after.log.filter((line) => !line.startsWith("finetune_message")).map((line) => line.split(" ")[0]), [
        "finetune_started",
        "finetune_status",
        "finetune_status",
        "finetune_succeeded"
      ])
      assert.strictEqual(fake.jobs.size, 1)
    }), { timeout: 20_000 })

  it.scopedLive("cancels at the provider", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const job = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const started = yield* f.consider({ id: "cancel-me", samples: 1, snapshot: "sha256:c", file })
        return yield* f.cancel((started as Extract<FineTunes.Considered, { _tag: "Started" }>).job.id)
      }).pipe(Effect.provide(fineTunes(fake.url, sqlite.layer)))
      assert.strictEqual(job.status, "cancelled")
      assert.include(fake.requests, "POST /v1/fine_tuning/jobs/ftjob-1/cancel")
    }))

  it.scopedLive("an unreachable endpoint is one error naming it, and the snapshot's claim is released (no job is left behind to block a later start)", () =>
    Effect.gen(function*() {
      const file = yield* dataset
      // A port that was just free: nothing listens there.
      const port = yield* Effect.promise(() => new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as net.AddressInfo
          probe.close(() => resolve(port))
        })
      }))
      const url = `http://127.0.0.1:${port}/v1`
      const result = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const error = yield* Effect.flip(f.consider({ id: "down", samples: 1, snapshot: "sha256:d", file }))
        return { error, jobs: yield* f.list() }
      }).pipe(Effect.provide(fineTunes(url, sqlite.layer)))
      assert.strictEqual(result.error._tag, "FineTuneError", result.error.message)
      assert.match(result.error.message, new RegExp(`^fine-tune endpoint http://127\\.0\\.0\\.1:${port}/v1 \\(uploading the training file\\): unreachable: .*ECONNREFUSED`))
      assert.notInclude(result.error.message, "\n")
      assert.deepStrictEqual(result.jobs, [])
    }))

  it.scopedLive("a wrong key is refused in one line, without the key", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const error = yield* Effect.flip(Effect.flatMap(FineTune, (p) => p.retrieve("ftjob-1")).pipe(
        Effect.provide(OpenAiFineTune.layerOpenAi({ baseURL: fake.url, apiKey: Redacted.make("sk-wrong-secret") }))
      ))
      assert.strictEqual(error.unreachable, false)
      assert.match(error.message, new RegExp(`^fine-tune endpoint ${fake.url.replace(/\//g, "\\/")} \\(reading job ftjob-1\\): 401`))
      assert.notInclude(error.message, "sk-wrong-secret")
    }))
})
