import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** `--name=value` from the command line, else `fallback`. */
export const option = (name: string, fallback: string) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? fallback : hit.slice(name.length + 3)
}

/** Which src/ was measured: a digest of every file under it, so figures can be matched to code. */
export const srcDigest = () => {
  const hash = createHash("sha256")
  const walk = (dir: string): Array<string> =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]))
  for (const file of walk(path.join(root, "src")).sort()) hash.update(path.relative(root, file)).update(fs.readFileSync(file))
  return hash.digest("hex").slice(0, 16)
}

export const r1 = (x: number) => Math.round(x * 10) / 10
export const r2 = (x: number) => Math.round(x * 100) / 100

export const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

// ---------------------------------------------------------------------------- the loop benchmarks' workload

/** Exactly 1,024 characters of markdown: a prose line (the summary), then a code block. */
export const answer = (() => {
  const head = "## Progress\n\nThis iteration refines the plan, records what was checked and what remains open.\n\n```ts\n"
  const tail = "\n```\n"
  let body = ""
  while (head.length + body.length + tail.length < 1024) body += "export const step = (input: string): string => input.trim()\n"
  return `${head}${body.slice(0, 1024 - head.length - tail.length)}${tail}`
})()

/** The mock script, as `--mock-script` reads it: one 1 KB turn, repeated; the judge never meets a criterion. */
export const mockScript = {
  model: "gpt-4o-mini",
  latency_ms: 0,
  repeat_last: true,
  turns: [{ content: answer, usage: { input_tokens: 1000, output_tokens: 256 }, criteria_met: [false, false] }]
}

export const objective = "Keep refining the plan (benchmark: the criteria are never met)"
export const criteria: readonly [string, ...Array<string>] = ["the first criterion, never met", "the second criterion, never met"]

/** Only the iteration axis is capped, so the run length is exactly `iterations`. */
export const policyFor = (iterations: number) => ({ max_iterations: iterations, max_seconds: 0, max_tokens: 0, max_dollars: 0 })

// ---------------------------------------------------------------------------------------------- machine

// better-sqlite3 ships no types and @types/better-sqlite3 is not a dependency: declare what is used.
export interface RawStatement {
  run(...params: ReadonlyArray<unknown>): unknown
  get(...params: ReadonlyArray<unknown>): unknown
  all(...params: ReadonlyArray<unknown>): Array<unknown>
}
export interface RawDatabase {
  prepare(sql: string): RawStatement
  pragma(source: string): unknown
  exec(sql: string): void
  transaction<A extends Array<unknown>>(fn: (...args: A) => void): (...args: A) => void
  close(): void
}
export const Sqlite = createRequire(import.meta.url)("better-sqlite3") as new(filename: string) => RawDatabase

const fileSize = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 0)

/** Bytes of a closed database once its WAL is folded in by `PRAGMA wal_checkpoint(TRUNCATE)`. */
export const checkpointedBytes = (file: string) => {
  const db = new Sqlite(file)
  db.pragma("wal_checkpoint(TRUNCATE)")
  db.close()
  return fileSize(file) + fileSize(`${file}-wal`)
}

/** The commit checked out, with `+dirty` when the work tree differs from it. */
const commit = () => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "scripts", "bin", "package.json"], { cwd: root, encoding: "utf8" }).trim()
    return dirty === "" ? head : `${head}+dirty`
  } catch {
    return "unknown"
  }
}

/** What the figures were measured on. */
export const machine = () => {
  const cpus = os.cpus()
  const db = new Sqlite(":memory:")
  const sqliteVersion = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v
  db.close()
  return {
    date: new Date().toISOString(),
    node: process.version,
    sqlite: sqliteVersion,
    cpu: cpus[0]?.model ?? "?",
    nproc: os.availableParallelism(),
    memory_gb: r1(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg_at_start: os.loadavg().map(r2),
    commit: commit(),
    src_sha256: srcDigest()
  }
}

// ---------------------------------------------------------------------------------------------- children

export interface Timed {
  readonly exitCode: number | null
  /** From spawn to exit, as bash's `time` measures the command alone. */
  readonly wall_ms: number
  /** User + system CPU time of the command and everything it ran (every thread: GC and JIT included). */
  readonly cpu_ms: number
  readonly stderr: string
}

/**
 * Runs `command ...args` under bash's `time` keyword, which reports the command's own wall and CPU time
 * (no shell start-up in either), handing each chunk of its stdout to `onStdout` as it arrives: stdout is
 * a pipe, as when a program reads the output.
 */
export const timed = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv; readonly onStdout?: (chunk: Buffer) => void } = {}
) =>
  new Promise<Timed>((resolve, reject) => {
    const marker = "__bench_time__"
    // `time` reports on the shell's stderr once the command has exited: the last line of stderr.
    const child = spawn("bash", ["-c", `TIMEFORMAT='${marker} %3R %3U %3S'; time "$@"`, "bash", command, ...args], {
      cwd: options.cwd ?? root,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => options.onStdout?.(chunk))
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.on("error", reject)
    child.on("close", (exitCode) => {
      const line = stderr.split("\n").reverse().find((l) => l.startsWith(marker))
      if (line === undefined) return reject(new Error(`no timing from ${command} ${args.join(" ")}: ${stderr}`))
      const [real, user, sys] = line.slice(marker.length).trim().split(/\s+/).map(Number) as [number, number, number]
      resolve({
        exitCode,
        wall_ms: r1(real * 1000),
        cpu_ms: r1((user + sys) * 1000),
        stderr: stderr.split("\n").filter((l) => !l.startsWith(marker)).join("\n")
      })
    })
  })
