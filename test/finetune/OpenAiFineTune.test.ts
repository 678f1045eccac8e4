import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Redacted, Schedule } from "effect"
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

const provider = (url: string, options: Partial<OpenAiFineTune.OpenAiFineTuneConfig> = {}) =>
  OpenAiFineTune.layerOpenAi({ baseURL: url, apiKey: Redacted.make("sk-fake"), ...options })

const config: FineTunes.FineTunesConfig = { threshold: 1, baseModel: "gpt-4o-mini-2024-07-18", pollEvery: "20 millis" }

const fineTunes = (
  url: string,
  database: Layer.Layer<import("@effect/sql").SqlClient.SqlClient>,
  options: Partial<OpenAiFineTune.OpenAiFineTuneConfig> = {},
  overrides: Partial<FineTunes.FineTunesConfig> = {}
) =>
  Layer.merge(FineTunes.layer({ ...config, ...overrides }), FineTuneStore.layer).pipe(
    Layer.provide(provider(url, options)),
    Layer.provideMerge(FineTuneStore.layer),
    Layer.provide(database)
  )

/** What FineTunes warned of, one line each. */
const warned = (lines: Array<string>) => Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void lines.push(String(Array.isArray(message) ? message.join(" ") : message))))

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

describe("starting a job is never done twice, whatever becomes of the provider's answer", () => {
  const startedJob = (considered: FineTunes.Considered) => (considered as Extract<FineTunes.Considered, { _tag: "Started" }>).job

  for (const [name, behave] of [
    ["an answer to jobs.create that comes after the timeout", { createDelayMs: 2_000 }],
    ["a 500 to jobs.create from a provider that made the job", { createFails: { status: 500, created: true } }]
  ] as const) {
    it.scopedLive(`${name}: the job stays starting with an event saying the provider may hold it; the next consider starts nothing; the poller fails it telling the operator to check the provider`, () =>
      Effect.gen(function*() {
        const fake = yield* server
        const file = yield* dataset
        const shared = yield* sqlite.shared
        Object.assign(fake.behave, behave)
        const result = yield* Effect.gen(function*() {
          const f = yield* FineTunes.FineTunes
          const error = yield* Effect.flip(f.consider({ id: "lost", samples: 1, snapshot: "sha256:l1", file }))
          const [job] = yield* f.list()
          return { error, job: job!, log: yield* kinds(job!.id), again: yield* f.consider({ id: "lost", samples: 1, snapshot: "sha256:l1", file }), grown: yield* f.consider({ id: "lost", samples: 5, snapshot: "sha256:l2", file }) }
        }).pipe(Effect.provide(fineTunes(fake.url, shared, { timeout: "300 millis" })))
        assert.strictEqual(result.error._tag, "FineTuneError")
        assert.match(result.error.message, new RegExp(`^fine-tune endpoint ${fake.url.replace(/\//g, "\\/")} \\(creating the job\\): .*; the provider may have made the job anyway, so fine-tune job ${result.job.id} stays starting and is never started twice: check ${fake.url.replace(/\//g, "\\/")} for it$`))
        assert.deepStrictEqual([result.job.status, result.job.provider_job_id, result.job.endpoint], ["starting", null, fake.url])
        assert.strictEqual(result.log.length, 1)
        assert.match(result.log[0]!, /^finetune_start_unknown the provider may hold a job for it: /)
        assert.deepStrictEqual([result.again._tag, result.grown._tag], ["Exists", "Training"])
        assert.strictEqual(fake.jobs.size, 1, "the provider was asked to create one job")
        // Its time up, a poller fails it, naming where to look.
        const abandoned = yield* Effect.gen(function*() {
          const f = yield* FineTunes.FineTunes
          yield* f.pollOnce
          return yield* f.get(result.job.id)
        }).pipe(Effect.provide(fineTunes(fake.url, shared, {}, { abandonAfter: 0 })))
        assert.strictEqual(abandoned.status, "failed")
        assert.strictEqual(abandoned.error, `no provider job was recorded for it (its starter ended, or the provider's answer was lost); check ${fake.url} for a stray job before training this dataset again`)
      }), { timeout: 20_000 })
  }

  it.scopedLive("a 4xx to jobs.create made nothing: the claim is released and a later consider starts the job", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      fake.behave.createFails = { status: 400, created: false }
      const result = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const error = yield* Effect.flip(f.consider({ id: "refused", samples: 1, snapshot: "sha256:r1", file }))
        const after = yield* f.list()
        fake.behave.createFails = undefined
        return { error, after, again: yield* f.consider({ id: "refused", samples: 1, snapshot: "sha256:r1", file }) }
      }).pipe(Effect.provide(fineTunes(fake.url, sqlite.layer)))
      assert.match(result.error.message, /\(creating the job\): 400 the fake says 400$/)
      assert.isFalse(result.error._tag === "FineTuneError" && result.error.mayHoldJob)
      assert.deepStrictEqual(result.after, [])
      assert.strictEqual(result.again._tag, "Started")
      assert.strictEqual(startedJob(result.again).provider_job_id, "ftjob-1")
    }))

  it.scopedLive("an interrupted start runs to the provider's answer: the job is recorded as started, not let go", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      fake.behave.createDelayMs = 300
      const jobs = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        const starting = yield* Effect.fork(f.consider({ id: "cut", samples: 1, snapshot: "sha256:c1", file }))
        // Interrupted once the provider has the request, before it answers.
        yield* Effect.sync(() => fake.requests.includes("POST /v1/fine_tuning/jobs")).pipe(
          Effect.repeat({ until: (asked) => asked, schedule: Schedule.spaced("5 millis") }),
          Effect.timeout("5 seconds")
        )
        yield* Fiber.interrupt(starting)
        return yield* f.list()
      }).pipe(Effect.provide(fineTunes(fake.url, sqlite.layer)))
      assert.deepStrictEqual(jobs.map((j) => [j.status, j.provider_job_id]), [["validating_files", "ftjob-1"]])
    }))

  it.scopedLive("the upload has a timeout of its own, longer than other calls': a large file uploads where a call would have timed out", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      fake.behave.uploadDelayMs = 600
      const started = yield* Effect.flatMap(FineTunes.FineTunes, (f) => f.consider({ id: "large", samples: 1, snapshot: "sha256:u1", file })).pipe(
        Effect.provide(fineTunes(fake.url, sqlite.layer, { timeout: "200 millis", uploadTimeout: "5 seconds" }))
      )
      assert.strictEqual(started._tag, "Started")
      // And it is bounded too.
      const tooSlow = yield* Effect.flip(Effect.flatMap(FineTunes.FineTunes, (f) => f.consider({ id: "large", samples: 1, snapshot: "sha256:u2", file: file })).pipe(
        Effect.provide(fineTunes(fake.url, sqlite.layer, { timeout: "5 seconds", uploadTimeout: "200 millis" }))
      ))
      assert.match(tooSlow.message, /\(uploading the training file\): no answer in time$/)
    }))
})

describe("polling stops on a refusal that will not change, and only there", () => {
  const startOne = (fake: FakeOpenAi.FakeOpenAi, file: string, shared: Layer.Layer<import("@effect/sql").SqlClient.SqlClient>) =>
    Effect.flatMap(FineTunes.FineTunes, (f) => f.consider({ id: "polled", samples: 1, snapshot: "sha256:p1", file })).pipe(
      Effect.map((considered) => (considered as Extract<FineTunes.Considered, { _tag: "Started" }>).job),
      Effect.provide(fineTunes(fake.url, shared))
    )

  it.scopedLive("a 503 or an unreachable provider is a warning and the next poll asks again; a 401 stops untilDone with one line naming the endpoint", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const shared = yield* sqlite.shared
      const job = yield* startOne(fake, file, shared)
      assert.strictEqual(job.endpoint, fake.url)
      const lines: Array<string> = []
      fake.behave.retrieveFails = 503
      const left = yield* Effect.flatMap(FineTunes.FineTunes, (f) => f.pollOnce).pipe(Effect.provide(fineTunes(fake.url, shared)), Effect.provide(warned(lines)))
      assert.strictEqual(left, 1)
      assert.match(lines[0]!, new RegExp(`^fine-tune job ${job.id}: fine-tune endpoint .* \\(reading job ftjob-1\\): 503`))
      fake.behave.retrieveFails = undefined
      const refused = yield* Effect.flip(Effect.flatMap(FineTunes.FineTunes, (f) => f.untilDone).pipe(
        Effect.provide(fineTunes(fake.url, shared, { apiKey: Redacted.make("sk-revoked-key") }))
      ))
      assert.strictEqual(refused._tag, "FineTuneError")
      assert.match(refused.message, new RegExp(`^fine-tune job ${job.id}: fine-tune endpoint ${fake.url.replace(/\//g, "\\/")} \\(reading job ftjob-1\\): 401 Incorrect API key provided \\(polling stops: this refusal will not change by itself\\)$`))
      // With the key put right, polling takes it to its end.
      yield* Effect.flatMap(FineTunes.FineTunes, (f) => f.untilDone).pipe(Effect.provide(fineTunes(fake.url, shared)))
      const done = yield* Effect.flatMap(FineTunes.FineTunes, (f) => f.get(job.id)).pipe(Effect.provide(fineTunes(fake.url, shared)))
      assert.strictEqual(done.status, "succeeded")
    }), { timeout: 20_000 })

  it.scopedLive("a job the provider no longer has (404) stops untilDone too", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const file = yield* dataset
      const shared = yield* sqlite.shared
      const job = yield* startOne(fake, file, shared)
      fake.jobs.delete("ftjob-1")
      const refused = yield* Effect.flip(Effect.flatMap(FineTunes.FineTunes, (f) => f.untilDone).pipe(Effect.provide(fineTunes(fake.url, shared))))
      assert.match(refused.message, new RegExp(`^fine-tune job ${job.id}: .*\\(reading job ftjob-1\\): 404 No such job: ftjob-1 \\(polling stops`))
    }))

  it.scopedLive("a job started at another endpoint is said once and not asked about; untilDone does not wait for it", () =>
    Effect.gen(function*() {
      const fake = yield* server
      const other = yield* server
      const file = yield* dataset
      const shared = yield* sqlite.shared
      const job = yield* startOne(fake, file, shared)
      const lines: Array<string> = []
      const result = yield* Effect.gen(function*() {
        const f = yield* FineTunes.FineTunes
        yield* f.untilDone
        yield* f.pollOnce
        return { cancel: yield* Effect.flip(f.cancel(job.id)), job: yield* f.get(job.id) }
      }).pipe(Effect.provide(fineTunes(other.url, shared)), Effect.provide(warned(lines)))
      assert.deepStrictEqual(lines, [`fine-tune job ${job.id} was started on openai at ${fake.url}, not on the configured openai at ${other.url}: not polled here`])
      assert.deepStrictEqual(other.requests, [])
      assert.strictEqual(result.job.status, "validating_files")
      assert.strictEqual(result.cancel.message, `fine-tune job ${job.id} was started at ${fake.url}, not at the configured ${other.url}: cancel it with that endpoint configured`)
    }))
})
