import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { machine } from "../bench-common.js"

/**
 * The frame every benchmark's `main` runs in: the line saying what it measures on (machine, load, commit,
 * source digest), a temporary folder, and one way out whatever ends the run: done, failed, over its
 * deadline, or a signal. The benchmark's own cleanup (its children, its client pools) runs first, then the
 * folder goes (unless `keep`); a guard process deletes the folder even if this one is killed with -9.
 *
 * Exit codes: 0 done, 1 failed (its stack on stderr), 2 over the deadline, 130 a signal.
 */
export interface Bench {
  readonly machine: ReturnType<typeof machine>
  /** The temporary folder, gone after the run. */
  readonly tmp: string
  readonly log: (line: string) => void
  /** performance.now() at the start. */
  readonly began: number
}

export const log = (line: string) => void process.stdout.write(`${line}\n`)

export const runBench = (options: {
  /** The script's name, for the folder and the messages: "bench-portkey". */
  readonly name: string
  /** The first line's words: "harness vs Portkey". */
  readonly title: string
  /** Give up (exit 2) after this many seconds; none: no deadline. */
  readonly deadlineS?: number | undefined
  readonly keep: boolean
  readonly cleanup?: (() => Promise<void> | void) | undefined
  readonly main: (bench: Bench) => Promise<void>
}): void => {
  const began = performance.now()
  const env = machine()
  log(
    `${options.title}: ${env.date}, node ${env.node}, ${env.cpu} x${env.nproc}, load ${env.loadavg_at_start.join(" ")}, ` +
      `commit ${env.commit}, src ${env.src_sha256}`
  )
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `autopilot-${options.name}-`))
  const guard = options.keep
    ? undefined
    : spawn("/bin/sh", ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; rm -rf '${tmp}'`], { detached: true, stdio: "ignore" })
  guard?.unref()

  let ending: Promise<void> | undefined
  const end = (code: number, message?: string) => {
    ending ??= (async () => {
      clearTimeout(watchdog)
      if (message !== undefined) process.stderr.write(`${options.name}: ${message}\n`)
      try {
        await options.cleanup?.()
      } finally {
        guard?.kill()
        if (!options.keep) fs.rmSync(tmp, { recursive: true, force: true })
      }
      if (code !== 0) process.exit(code)
    })()
    return ending
  }
  const watchdog = options.deadlineS === undefined
    ? undefined
    : setTimeout(() => void end(2, `over the ${options.deadlineS} s deadline, giving up`), options.deadlineS * 1000)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => void end(130, `${signal}, stopping`))

  options.main({ machine: env, tmp, log, began }).then(
    () => end(0),
    (error: unknown) => end(1, `failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  )
}
