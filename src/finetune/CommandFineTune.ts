import { Config, DateTime, Duration, Effect, Layer, Option, Schema } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { BadInput } from "../domain/Errors.js"
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
  /**
   * The trainer's whole environment (with AUTOPILOT_FINETUNE_DATASET and _BASE_MODEL added): never this
   * process's own, which holds API keys the trainer has no business with. Empty when absent.
   */
  readonly environment?: Readonly<Record<string, string>> | undefined
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

/**
 * Which process a pid was when the trainer started: the boot and the process's start time (in clock ticks
 * since boot, /proc/PID/stat field 22). A pid outlives neither a reboot nor its process; after either it
 * may name someone else's. Null where the system has no /proc.
 */
const Identity = Schema.parseJson(Schema.Struct({ boot_id: Schema.NullOr(Schema.String), start_time: Schema.NullOr(Schema.String) }))
type Identity = typeof Identity.Type
const decodeIdentity = Schema.decodeUnknownOption(Identity)
const encodeIdentity = Schema.encodeSync(Identity)

const bootId = (): string | null => Option.getOrNull(Option.map(read("/proc/sys/kernel/random/boot_id"), (text) => text.trim()))

const startTime = (pid: number): string | null =>
  Option.getOrNull(Option.flatMap(read(`/proc/${pid}/stat`), (stat) =>
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ")", at field 3.
    Option.fromNullable(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19])))

const identityOf = (pid: number): Identity => ({ boot_id: bootId(), start_time: startTime(pid) })

/** Whether `pid` is still the trainer's process; a job from before identities were recorded has its pid alone. */
const isTrainer = (pid: number, recorded: Option.Option<Identity>) => {
  if (Option.isNone(recorded)) return alive(pid)
  const now = identityOf(pid)
  if (recorded.value.boot_id !== null && now.boot_id !== null && recorded.value.boot_id !== now.boot_id) return false
  if (recorded.value.start_time !== null && now.start_time !== recorded.value.start_time) return false
  return alive(pid)
}

/** A message's ref is where its line ends in the trainer's output: the next read starts there. */
const refOf = (id: string, end: number) => `${id}-out-${end}`
const offsetOf = (id: string, ref: string | null) => {
  const match = ref === null ? null : new RegExp(`^${id}-out-(\\d+)$`).exec(ref)
  return match === null ? 0 : Number(match[1])
}
const chunk = 1 << 20

/** The whole lines of `file` from byte `from` (at most a chunk of them), each with where it ends; a finished file's last line too. */
const linesFrom = (file: string, from: number, finished: boolean): ReadonlyArray<{ readonly line: string; readonly end: number }> => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch {
    return []
  }
  try {
    const buffer = Buffer.alloc(chunk)
    const read = fs.readSync(fd, buffer, 0, chunk, from)
    const text = buffer.subarray(0, read)
    const result: Array<{ line: string; end: number }> = []
    let start = 0
    for (let newline = text.indexOf(10); newline >= 0; newline = text.indexOf(10, start)) {
      result.push({ line: text.subarray(start, newline).toString("utf8"), end: from + newline + 1 })
      start = newline + 1
    }
    // The rest: a last line without its newline once the trainer has ended, or one longer than a chunk.
    if (start < read && (finished || start === 0 && read === chunk)) result.push({ line: text.subarray(start, read).toString("utf8"), end: from + read })
    return result
  } finally {
    fs.closeSync(fd)
  }
}
/** Fine-tunes by a trainer command on this machine: its process and output are the job's state. */
export const make = (config: CommandFineTuneConfig) =>
  Effect.sync(() => {
    const jobDir = (id: string) => path.join(config.dir, id)
    const unknown = (id: string) =>
      new FineTuneError({ message: `the fine-tune trainer \`${config.command}\` has no job "${id}" under ${config.dir}`, unreachable: false, permanent: true })
    const identity = (id: string) => Option.flatMap(read(path.join(jobDir(id), "identity")), decodeIdentity)

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
            isTrainer(pid, identity(id))
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
      endpoint: config.command,
      // A spawn and a few small files.
      startsWithin: Duration.seconds(10),
      start: (request) =>
        Effect.try({
          try: () => {
            const id = `ftcmd-${randomBytes(6).toString("hex")}`
            const dir = jobDir(id)
            fs.mkdirSync(dir, { recursive: true })
            const child = spawn("/bin/sh", ["-c", wrapper(config.command), "sh", path.resolve(request.file), request.base_model, dir], {
              detached: true,
              stdio: "ignore",
              env: { ...config.environment, AUTOPILOT_FINETUNE_DATASET: path.resolve(request.file), AUTOPILOT_FINETUNE_BASE_MODEL: request.base_model }
            })
            if (child.pid === undefined) throw new Error("it could not be started")
            // Before the pid: a poller that finds a pid finds what it was.
            fs.writeFileSync(path.join(dir, "identity"), encodeIdentity(identityOf(child.pid)))
            fs.writeFileSync(path.join(dir, "pid"), String(child.pid))
            child.unref()
            return { id, status: "running" as const, fine_tuned_model: null, base_url: null, error: null }
          },
          catch: (error) => new FineTuneError({ message: `the fine-tune trainer \`${config.command}\`: ${error instanceof Error ? error.message : String(error)}`, unreachable: false })
        }),
      retrieve: view,
      events: (id, after) =>
        Effect.suspend(() => {
          const file = path.join(jobDir(id), "out")
          const at = (() => {
            try {
              return DateTime.formatIso(DateTime.unsafeMake(fs.statSync(file).mtimeMs))
            } catch {
              return DateTime.formatIso(DateTime.unsafeMake(0))
            }
          })()
          // Only what was written since the last line recorded: a trainer's output grows for hours.
          const fresh = linesFrom(file, offsetOf(id, after), fs.existsSync(path.join(jobDir(id), "exit")))
          return Effect.succeed(
            fresh.filter(({ line }) => line.trim() !== "" && Option.isNone(resultOf(line.trim())))
              .map(({ end, line }) => ({ id: refOf(id, end), at, level: "info", message: line.trim().slice(0, 500) }))
          )
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

export const envVariable = "AUTOPILOT_FINETUNE_COMMAND_ENV"

/**
 * `AUTOPILOT_FINETUNE_COMMAND` (required), jobs kept under `$AUTOPILOT_HOME/finetune`; the trainer gets PATH,
 * HOME, LANG and the variables named in `AUTOPILOT_FINETUNE_COMMAND_ENV` (comma-separated), nothing else.
 */
export const config: Effect.Effect<CommandFineTuneConfig, BadInput> = Effect.gen(function*() {
  const command = yield* Config.nonEmptyString("AUTOPILOT_FINETUNE_COMMAND").pipe(
    Effect.mapError(() => new BadInput({ message: "AUTOPILOT_FINETUNE_COMMAND must name the trainer to run (AUTOPILOT_FINETUNE_PROVIDER=command)" }))
  )
  const dir = path.join(yield* Effect.orDie(home), "finetune")
  const named = Option.getOrElse(yield* Effect.orDie(Config.option(Config.string(envVariable))), () => "")
  const names = named.split(",").map((name) => name.trim()).filter((name) => name !== "")
  const bad = names.find((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
  if (bad !== undefined) {
    return yield* new BadInput({ message: `${envVariable} takes environment variable names separated by commas (letters, digits, _, like HF_TOKEN,CUDA_VISIBLE_DEVICES); got "${bad}"` })
  }
  const environment: Record<string, string> = {}
  for (const name of ["PATH", "HOME", "LANG", ...names]) {
    const value = yield* Effect.orDie(Config.option(Config.string(name)))
    if (Option.isSome(value)) environment[name] = value.value
  }
  return { command, dir, environment }
})

export const layerConfig: Layer.Layer<FineTune, BadInput> = Layer.unwrapEffect(Effect.map(config, layerCommand))
