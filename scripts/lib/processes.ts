import { type ChildProcess, spawn } from "node:child_process"
import type * as http from "node:http"
import * as fs from "node:fs"
import { root } from "../bench-common.js"

/** The node processes a benchmark started: the servers it measures and their upstreams. */
const children: Array<ChildProcess> = []

/**
 * Spawns `node ...args` (in `cwd`, the repository by default) and resolves with the child and the first
 * match of `ready` in its output (stdout and stderr together); fails if it exits or takes over 60 s first.
 */
export const start = (args: ReadonlyArray<string>, ready: RegExp, what: string, cwd = root) =>
  new Promise<{ child: ChildProcess; match: RegExpMatchArray }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    let out = ""
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 60 s: ${out}`)), 60_000)
    const seen = (d: Buffer) => {
      out += d.toString()
      const match = out.match(ready)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ child, match })
      }
    }
    child.stdout!.on("data", seen)
    child.stderr!.on("data", seen)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${out}`))
    })
  })

/** SIGTERM (a server writes what it queued), SIGKILL 10 s later if it is still there. */
export const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/** Stops every process started here and closes the client pools given: a benchmark's cleanup. */
export const stopAll = async (...agents: ReadonlyArray<http.Agent>) => {
  await Promise.all(children.map(stop))
  for (const agent of agents) agent.destroy()
}

/** User + system CPU of a process so far, ms (/proc/PID/stat, in clock ticks of 10 ms). */
export const cpuMs = (pid: number) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}
