import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CommandFineTune from "../../src/finetune/CommandFineTune.js"
import type { ProviderJob } from "../../src/finetune/FineTuneJob.js"

const workdir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-trainer-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Asks until the job is no longer running; real processes, so real time, bounded. */
const settled = (retrieve: Effect.Effect<ProviderJob, unknown>) =>
  retrieve.pipe(Effect.delay("20 millis"), Effect.repeat({ until: (job: ProviderJob) => job.status !== "running" }), Effect.timeout("10 seconds"))

describe("CommandFineTune: a trainer command on this machine", () => {
  it.scopedLive("runs the trainer with the dataset and base model, reads its last JSON line; a new instance over the same folder (a restarted poller) sees the same job", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const trainer = path.join(dir, "train.sh")
      fs.writeFileSync(trainer, `#!/bin/sh\necho "epoch 1 on $1"\nsleep 0.2\necho '{"model": "lora-'"$2"'", "base_url": "http://127.0.0.1:8000/v1"}'\n`, { mode: 0o755 })
      const dataset = path.join(dir, "train.jsonl")
      fs.writeFileSync(dataset, "{}\n")
      const first = yield* CommandFineTune.make({ command: trainer, dir: path.join(dir, "jobs") })
      const started = yield* first.start({ file: dataset, base_model: "qwen2.5-7b", suffix: "d" })
      assert.strictEqual(started.status, "running")
      const second = yield* CommandFineTune.make({ command: trainer, dir: path.join(dir, "jobs") })
      const done = yield* settled(second.retrieve(started.id))
      assert.deepStrictEqual(done, { id: started.id, status: "succeeded", fine_tuned_model: "lora-qwen2.5-7b", base_url: "http://127.0.0.1:8000/v1", error: null })
      assert.deepStrictEqual((yield* second.events(started.id)).map((e) => e.message), [`epoch 1 on ${dataset}`])
    }))

  it.scopedLive("a trainer that exits non-zero fails with its last stderr line; one that exits 0 without the JSON line fails saying what was expected", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const failing = yield* CommandFineTune.make({ command: `echo "CUDA out of memory" >&2; exit 3; :`, dir: path.join(dir, "a") })
      const a = yield* failing.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      assert.deepStrictEqual(yield* settled(failing.retrieve(a.id)), { id: a.id, status: "failed", fine_tuned_model: null, base_url: null, error: "the trainer exited 3: CUDA out of memory" })
      const silent = yield* CommandFineTune.make({ command: "true", dir: path.join(dir, "b") })
      const b = yield* silent.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      assert.strictEqual((yield* settled(silent.retrieve(b.id))).error, `the trainer exited 0 without a last line {"model": "…", "base_url": "http://…"}`)
    }))

  it.scopedLive("cancels a running trainer: its process group is ended and the job is cancelled", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const trainer = yield* CommandFineTune.make({ command: "sleep 30; :", dir })
      const job = yield* trainer.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      const pid = Number(fs.readFileSync(path.join(dir, job.id, "pid"), "utf8"))
      assert.strictEqual((yield* trainer.cancel(job.id)).status, "cancelled")
      const gone = yield* Effect.sync(() => {
        try {
          process.kill(-pid, 0)
          return false
        } catch {
          return true
        }
      }).pipe(Effect.delay("50 millis"), Effect.repeat({ until: (gone) => gone }), Effect.timeout("5 seconds"))
      assert.isTrue(gone)
      assert.strictEqual((yield* trainer.retrieve(job.id)).status, "cancelled")
      const unknown = yield* Effect.flip(trainer.retrieve("ftcmd-nope"))
      assert.strictEqual(unknown.message, `the fine-tune trainer has no job "ftcmd-nope" under ${dir}`)
    }))
})
