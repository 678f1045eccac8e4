import { Config, type ConfigError, DateTime, Effect, Layer, Option, Schema } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { home } from "../domain/Home.js"
import { FineTune } from "./FineTune.js"
import { FineTuneError, type ProviderJob } from "./FineTuneJob.js"

export interface CommandFineTuneConfig {
  /**
   * Shell text run as `sh -c '<command> "$DATASET" "$BASE_MODEL"'`: a LoRA trainer, a script around one.
   * It ends, exit 0, by printing one JSON line `{"model": "…", "base_url": "http://…/v1"}`: the tuned
   * model's name and the OpenAI-compatible endpoint that serves it.
   */
  readonly command: string
  /** Where each job keeps its output, exit code and process id, so a restarted poller finds it: `<dir>/<job id>/`. */
  readonly dir: string
}

/** The trainer's last word: what it made and where that is served. */
const Result = Schema.parseJson(Schema.Struct({ model: Schema.NonEmptyTrimmedString, base_url: Schema.NonEmptyTrimmedString.pipe(Schema.pattern(/^https?:\/\//)) }))
const resultOf = Schema.decodeUnknownOption(Result)

/**
 * The wrapper outlives this process (detached, its own process group) and writes the exit code where any
 * later poller reads it; the command runs in a subshell, so an `exit` in it ends only the command.
 */
const wrapper = (command: string) => `( ${command} "$1" "$2" ) >"$3/out" 2>"$3/err"; echo $? >"$3/exit.tmp" && mv "$3/exit.tmp" "$3/exit"`

const read = (file: string): Option.Option<string> => {
  try {
    return Option.some(fs.readFileSync(file, "utf8"))
  } catch {
    return Option.none()
  }
}

const lines = (text: string) => text.split("\n").map((line) => line.trim()).filter((line) => line !== "")

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Fine-tunes by a trainer command on this machine: its process and output are the job's state. */
export const make = (config: CommandFineTuneConfig) =>
  Effect.sync(() => {
    const jobDir = (id: string) => path.join(config.dir, id)
    const unknown = (id: string) => new FineTuneError({ message: `the fine-tune trainer has no job "${id}" under ${config.dir}`, unreachable: false })

    const view = (id: string): Effect.Effect<ProviderJob, FineTuneError> =>
      Effect.suspend((): Effect.Effect<ProviderJob, FineTuneError> => {
        const dir = jobDir(id)
        const pid = Number(Option.getOrElse(read(path.join(dir, "pid")), () => "NaN"))
        if (!Number.isInteger(pid)) return Effect.fail(unknown(id))
        const base: Omit<ProviderJob, "status"> = { id, fine_tuned_model: null, base_url: null, error: null }
        if (fs.existsSync(path.join(dir, "cancelled"))) return Effect.succeed({ ...base, status: "cancelled" as const })
        const exit = Option.map(read(path.join(dir, "exit")), (text) => text.trim())
        if (Option.isNone(exit)) {
          return Effect.succeed(
            alive(pid)
              ? { ...base, status: "running" as const }
              : { ...base, status: "failed" as const, error: "the trainer ended without an exit code (killed, or the machine restarted)" }
          )
        }
        const out = lines(Option.getOrElse(read(path.join(dir, "out")), () => ""))
        const err = lines(Option.getOrElse(read(path.join(dir, "err")), () => ""))
        if (exit.value !== "0") {
          return Effect.succeed({ ...base, status: "failed" as const, error: `the trainer exited ${exit.value}${err.length > 0 ? `: ${err[err.length - 1]!.slice(0, 300)}` : ""}` })
        }
        return Effect.succeed(Option.match(resultOf(out[out.length - 1] ?? ""), {
          onNone: () => ({ ...base, status: "failed" as const, error: `the trainer exited 0 without a last line {"model": "…", "base_url": "http://…"}` }),
          onSome: (result) => ({ ...base, status: "succeeded" as const, fine_tuned_model: result.model, base_url: result.base_url })
        }))
      })

    return FineTune.of({
      provider: "command",
      start: (request) =>
        Effect.try({
          try: () => {
            const id = `ftcmd-${randomBytes(6).toString("hex")}`
            const dir = jobDir(id)
            fs.mkdirSync(dir, { recursive: true })
            const child = spawn("/bin/sh", ["-c", wrapper(config.command), "sh", path.resolve(request.file), request.base_model, dir], {
              detached: true,
              stdio: "ignore",
              env: { ...process.env, AUTOPILOT_FINETUNE_DATASET: path.resolve(request.file), AUTOPILOT_FINETUNE_BASE_MODEL: request.base_model }
            })
            if (child.pid === undefined) throw new Error("it could not be started")
            fs.writeFileSync(path.join(dir, "pid"), String(child.pid))
            child.unref()
            return { id, status: "running" as const, fine_tuned_model: null, base_url: null, error: null }
          },
          catch: (error) => new FineTuneError({ message: `the fine-tune trainer \`${config.command}\`: ${error instanceof Error ? error.message : String(error)}`, unreachable: false })
        }),
      retrieve: view,
      events: (id) =>
        Effect.suspend(() => {
          const file = path.join(jobDir(id), "out")
          const at = (() => {
            try {
              return DateTime.formatIso(DateTime.unsafeMake(fs.statSync(file).mtimeMs))
            } catch {
              return DateTime.formatIso(DateTime.unsafeMake(0))
            }
          })()
          const out = lines(Option.getOrElse(read(file), () => ""))
          return Effect.succeed(out.filter((line) => Option.isNone(resultOf(line))).map((message, i) => ({ id: `${id}-out-${i}`, at, level: "info", message: message.slice(0, 500) })))
        }),
      cancel: (id) =>
        Effect.flatMap(view(id), (job) => {
          if (job.status !== "running") return Effect.succeed(job)
          fs.writeFileSync(path.join(jobDir(id), "cancelled"), "")
          const pid = Number(Option.getOrElse(read(path.join(jobDir(id), "pid")), () => "NaN"))
          // The whole process group: the shell and the trainer it started.
          try {
            process.kill(-pid, "SIGTERM")
          } catch {
            // Already gone.
          }
          return view(id)
        })
    })
  })

export const layerCommand = (config: CommandFineTuneConfig): Layer.Layer<FineTune> => Layer.effect(FineTune, make(config))

/** `AUTOPILOT_FINETUNE_COMMAND` (required), jobs kept under `$AUTOPILOT_HOME/finetune`. */
export const config: Effect.Effect<CommandFineTuneConfig, ConfigError.ConfigError> = Effect.all({
  command: Config.nonEmptyString("AUTOPILOT_FINETUNE_COMMAND"),
  dir: Effect.map(home, (root) => path.join(root, "finetune"))
})

export const layerConfig: Layer.Layer<FineTune, ConfigError.ConfigError> = Layer.unwrapEffect(Effect.map(config, layerCommand))
