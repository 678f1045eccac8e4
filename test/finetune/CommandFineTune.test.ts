import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
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
      assert.deepStrictEqual((yield* second.events(started.id, null)).map((e) => e.message), [`epoch 1 on ${dataset}`])
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
      assert.strictEqual(unknown.message, `the fine-tune trainer \`sleep 30; :\` has no job "ftcmd-nope" under ${dir}`)
      assert.isTrue(unknown.permanent)
    }))

  it.scopedLive("a pid that names another process now (after a reboot, or reused) is not taken for the trainer: the job has failed, and cancel kills nothing", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const trainer = yield* CommandFineTune.make({ command: "sleep 30; :", dir })
      const job = yield* trainer.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      const pid = Number(fs.readFileSync(path.join(dir, job.id, "pid"), "utf8"))
      yield* Effect.addFinalizer(() => Effect.sync(() => {
        try {
          process.kill(-pid, "SIGKILL")
        } catch {
          // Gone already.
        }
      }))
      assert.strictEqual((yield* trainer.retrieve(job.id)).status, "running")
      const identity = path.join(dir, job.id, "identity")
      const recorded = JSON.parse(fs.readFileSync(identity, "utf8")) as { boot_id: string | null; start_time: string | null }
      assert.match(recorded.start_time ?? "", /^\d+$/, "the process's start time is recorded (Linux)")
      assert.match(recorded.boot_id ?? "", /^[0-9a-f-]{36}$/)
      for (const other of [{ ...recorded, boot_id: "00000000-0000-0000-0000-000000000000" }, { ...recorded, start_time: "1" }]) {
        fs.writeFileSync(identity, JSON.stringify(other))
        const seen = yield* trainer.retrieve(job.id)
        assert.deepStrictEqual([seen.status, seen.error], ["failed", "the trainer ended without an exit code (killed, or the machine restarted)"])
        assert.strictEqual((yield* trainer.cancel(job.id)).status, "failed")
        process.kill(pid, 0) // still there: cancel left a process that is not the trainer alone
      }
      fs.writeFileSync(identity, JSON.stringify(recorded))
      assert.strictEqual((yield* trainer.retrieve(job.id)).status, "running")
    }))

  it.scopedLive("reads the trainer's output from where the last recorded line ended: only new lines, each once", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const gate = path.join(dir, "gate")
      const trainer = yield* CommandFineTune.make({
        command: `echo "epoch 1"; echo "epoch 2"; while [ ! -e ${gate} ]; do sleep 0.02; done; echo "epoch 3"; echo '{"model": "m2", "base_url": "http://127.0.0.1:8000/v1"}'; :`,
        dir
      })
      const job = yield* trainer.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      const first = yield* trainer.events(job.id, null).pipe(
        Effect.delay("20 millis"),
        Effect.repeat({ until: (events) => events.length === 2 }),
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual(first.map((e) => e.message), ["epoch 1", "epoch 2"])
      assert.deepStrictEqual(yield* trainer.events(job.id, first[1]!.id), [], "nothing new yet")
      fs.writeFileSync(gate, "")
      yield* settled(trainer.retrieve(job.id))
      const next = yield* trainer.events(job.id, first[1]!.id)
      assert.deepStrictEqual(next.map((e) => e.message), ["epoch 3"])
      assert.deepStrictEqual((yield* trainer.events(job.id, null)).map((e) => e.id), [...first, ...next].map((e) => e.id))
    }))

  it.scopedLive("the trainer gets PATH, HOME, LANG and the variables AUTOPILOT_FINETUNE_COMMAND_ENV names, not this process's keys", () =>
    Effect.gen(function*() {
      const dir = yield* workdir
      const seen = path.join(dir, "env.txt")
      // A key in this very process's environment, which the old trainer inherited whole.
      process.env.AUTOPILOT_FINETUNE_API_KEY = "sk-must-not-leak"
      yield* Effect.addFinalizer(() => Effect.sync(() => delete process.env.AUTOPILOT_FINETUNE_API_KEY))
      const config = yield* CommandFineTune.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
        ["AUTOPILOT_FINETUNE_COMMAND", `env > ${seen}; :`],
        ["AUTOPILOT_HOME", dir],
        ["PATH", process.env.PATH ?? "/usr/bin:/bin"],
        ["HOME", "/home/trainer"],
        ["OPENAI_API_KEY", "sk-other"],
        ["HF_TOKEN", "hf-123"],
        ["AUTOPILOT_FINETUNE_COMMAND_ENV", "HF_TOKEN, CUDA_VISIBLE_DEVICES"]
      ]))))
      const trainer = yield* CommandFineTune.make(config)
      const job = yield* trainer.start({ file: "/x.jsonl", base_model: "m", suffix: "d" })
      yield* settled(trainer.retrieve(job.id))
      const names = fs.readFileSync(seen, "utf8").split("\n").map((line) => line.split("=")[0]!).filter((name) => name !== "")
      // `sh` sets PWD, SHLVL and `_` of its own.
      assert.deepStrictEqual(names.filter((n) => !["PWD", "SHLVL", "_", "OLDPWD"].includes(n)).sort(), [
        "AUTOPILOT_FINETUNE_BASE_MODEL",
        "AUTOPILOT_FINETUNE_DATASET",
        "HF_TOKEN",
        "HOME",
        "PATH"
      ])
      const bad = yield* Effect.flip(CommandFineTune.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([
        ["AUTOPILOT_FINETUNE_COMMAND", "train"],
        ["AUTOPILOT_FINETUNE_COMMAND_ENV", "HF_TOKEN,NOT-A-NAME"]
      ])))))
      assert.strictEqual(bad.message, `AUTOPILOT_FINETUNE_COMMAND_ENV takes environment variable names separated by commas (letters, digits, _, like HF_TOKEN,CUDA_VISIBLE_DEVICES); got "NOT-A-NAME"`)
    }))
})
