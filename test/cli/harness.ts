import * as net from "node:net"
import Database from "better-sqlite3"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TestContext } from "vitest"

/** The built CLI; the tests exercise it as a user would, one OS process per command. */
export const bin = fileURLToPath(new URL("../../bin/autopilot.js", import.meta.url))

/** How much longer than on an idle machine a process test may wait for what it needs. */
const slack = 4

/** One JSONL event as printed on stdout; the fields beyond the envelope depend on `kind`. */
export interface CliEvent {
  readonly kind: string
  readonly run_id: string
  readonly at: string
  readonly seq: number
  readonly [field: string]: any
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Finished extends Exit {
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
}

export const Axes = ["seconds", "tool_calls", "tokens", "dollars", "iterations"] as const

export const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** The status rule of the contract, restated here rather than imported from src. */
export const statusFor = (criteriaMet: ReadonlyArray<boolean>) =>
  criteriaMet.length > 0 && criteriaMet.every(Boolean) ? "completed" : criteriaMet.some(Boolean) ? "partial" : "halted"

export const exitCodeFor = (status: string) =>
  ({ completed: 0, partial: 3, halted: 4, failed: 1 })[status] ?? Number.NaN

/** A scripted mock model that answers slowly and never meets every criterion, so runs go on until stopped. */
export const slowScript = (options: {
  readonly latency_ms: number
  readonly criteria_met: ReadonlyArray<boolean>
}) => ({
  model: "gpt-4o-mini",
  latency_ms: options.latency_ms,
  repeat_last: true,
  turns: [{
    content: "Working on the objective.\n\nMade some progress.",
    usage: { input_tokens: 120, output_tokens: 30 },
    criteria_met: options.criteria_met
  }]
})

const describeExit = (exit: Exit) => (exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`)

/** A running CLI process whose output is collected line by line. */
export class CliProcess {
  readonly stdout: Array<string> = []
  readonly stderr: Array<string> = []
  readonly exited: Promise<Exit>
  private exit: Exit | undefined
  private readonly waiters = new Set<() => void>()

  constructor(readonly args: ReadonlyArray<string>, private readonly child: ChildProcess) {
    this.collect(child.stdout, this.stdout)
    this.collect(child.stderr, this.stderr)
    // `close`, not `exit`: every byte of stdout and stderr has been read by then.
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        this.exit = { code, signal }
        this.notify()
        resolve(this.exit)
      })
    })
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`autopilot ${this.args.join(" ")} did not start`)
    return this.child.pid
  }

  get running(): boolean {
    return this.exit === undefined
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal)
  }

  /** Every stdout line parsed as JSON (the process was started with `--format jsonl`). */
  events(): Array<CliEvent> {
    return this.stdout.map((line) => {
      try {
        return JSON.parse(line) as CliEvent
      } catch {
        throw new Error(`stdout line is not JSON: ${line}\n${this.transcript()}`)
      }
    })
  }

  /** The first stdout line matching, waiting for it at most `timeoutMs`. */
  line(predicate: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    return this.until(`a stdout line matching ${predicate}`, timeoutMs, () => this.stdout.find(predicate))
  }

  /** The first stderr line matching, waiting for it at most `timeoutMs`. */
  errorLine(predicate: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    return this.until(`a stderr line matching ${predicate}`, timeoutMs, () => this.stderr.find(predicate))
  }

  /** The first event matching, waiting for it at most `timeoutMs`. */
  event(predicate: (event: CliEvent) => boolean, timeoutMs = 20_000): Promise<CliEvent> {
    return this.until(`an event matching ${predicate}`, timeoutMs, () => this.events().find(predicate))
  }

  /** The `count`-th event of a kind (1-based). */
  nth(kind: string, count: number, timeoutMs = 20_000): Promise<CliEvent> {
    return this.until(`${count} "${kind}" events`, timeoutMs, () => this.events().filter((e) => e.kind === kind)[count - 1])
  }

  waitForExit(timeoutMs = 20_000): Promise<Finished> {
    return this.until("exit", timeoutMs, () =>
      this.exit === undefined ? undefined : { ...this.exit, stdout: this.stdout, stderr: this.stderr })
  }

  transcript(): string {
    return [
      `$ autopilot ${this.args.join(" ")}${this.exit === undefined ? "" : `  [${describeExit(this.exit)}]`}`,
      ...this.stdout.slice(-20).map((l) => `  out| ${l.slice(0, 300)}`),
      ...this.stderr.slice(-20).map((l) => `  err| ${l.slice(0, 300)}`)
    ].join("\n")
  }

  /**
   * Resolves when `check` gives a value; rejects at the deadline or when the process exits first. The
   * deadline is only a bound for a test that would otherwise hang: it is stretched `slack` times, so a
   * machine with both cores busy is slow, not failing.
   */
  private until<A>(what: string, timeoutMs: number, check: () => A | undefined): Promise<A> {
    timeoutMs *= slack
    return new Promise<A>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(attempt)
      }
      const attempt = () => {
        let value: A | undefined
        try {
          value = check()
        } catch (error) {
          done()
          return reject(error)
        }
        if (value !== undefined) {
          done()
          resolve(value)
        } else if (this.exit !== undefined) {
          done()
          reject(new Error(`waiting for ${what}: the process ended first\n${this.transcript()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`waiting for ${what}: nothing within ${timeoutMs} ms\n${this.transcript()}`))
      }, timeoutMs)
      this.waiters.add(attempt)
      attempt()
    })
  }

  private notify() {
    for (const waiter of [...this.waiters]) waiter()
  }

  private collect(stream: NodeJS.ReadableStream | null, lines: Array<string>) {
    if (stream === null) return
    let partial = ""
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n")
      partial = parts.pop() ?? ""
      lines.push(...parts)
      if (parts.length > 0) this.notify()
    })
    stream.on("end", () => {
      if (partial !== "") lines.push(partial)
      partial = ""
      this.notify()
    })
  }
}

export interface StartOptions {
  /** Append `--db <sandbox>/a.db` (default true). */
  readonly db?: boolean
  readonly env?: Readonly<Record<string, string>>
  /** Run this executable with the arguments instead of `node bin/autopilot.js`, as a supervisor would. */
  readonly executable?: string
}

/** A temporary AUTOPILOT_HOME holding the database `a.db`, with every process started in it. */
export class Sandbox {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-cli-"))
  readonly db = path.join(this.dir, "a.db")
  private readonly processes: Array<CliProcess> = []

  start(args: ReadonlyArray<string>, options: StartOptions = {}): CliProcess {
    const argv = options.db === false ? [...args] : [...args, "--db", this.db]
    const env: Record<string, string | undefined> = { ...process.env, AUTOPILOT_HOME: this.dir, ...options.env }
    for (const name of ["AUTOPILOT_DB", "AUTOPILOT_DATABASE_URL", "AUTOPILOT_MOCK_SCRIPT", "AUTOPILOT_DB_SYNC", "AUTOPILOT_LLM_BASE_URL", "AUTOPILOT_LLM_API_KEY", "AUTOPILOT_LLM_MODEL", "AUTOPILOT_HARNESS_KEY", "AUTOPILOT_HARNESS_URL", "AUTOPILOT_HARNESS_CONFIG", "AUTOPILOT_AUTO_ROUTE_THRESHOLD", "AUTOPILOT_PICKER_THRESHOLD", "AUTOPILOT_BLUEPRINT_SERVICE_URL", "AUTOPILOT_BLUEPRINT_SERVICE_KEY", "AUTOPILOT_CACHE_TTL"]) {
      if (options.env?.[name] === undefined) delete env[name]
    }
    const [command, commandArgs] = options.executable === undefined ? [process.execPath, [bin, ...argv]] : [options.executable, argv]
    const child = spawn(command, commandArgs, { cwd: this.dir, env, stdio: ["ignore", "pipe", "pipe"] })
    const cli = new CliProcess(argv, child)
    this.processes.push(cli)
    return cli
  }

  /** Runs a command to its end. */
  run(args: ReadonlyArray<string>, options: StartOptions & { readonly timeoutMs?: number } = {}): Promise<Finished> {
    return this.start(args, options).waitForExit(options.timeoutMs)
  }

  /** `show ID --format json`, parsed. */
  async show(runId: string): Promise<Record<string, any>> {
    const shown = await this.run(["show", runId, "--format", "json"])
    if (shown.code !== 0) throw new Error(`show ${runId} exited ${describeExit(shown)}: ${shown.stderr.join("\n")}`)
    return JSON.parse(shown.stdout.join("\n")) as Record<string, any>
  }

  writeFile(name: string, content: string | object): string {
    const file = path.join(this.dir, name)
    fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content))
    return file
  }

  /** Opens the database for the length of `f`; only while no CLI process of this test is writing. */
  sql<A>(f: (db: Database) => A): A {
    const db = new Database(this.db, { fileMustExist: true })
    try {
      return f(db)
    } finally {
      db.close()
    }
  }

  /** The `checkpoints.state` of a run, decoded from its JSON. */
  checkpoint(runId: string): Record<string, any> {
    const row = this.sql((db) => db.prepare("SELECT state FROM checkpoints WHERE run_id = ?").get(runId)) as
      | { state: string }
      | undefined
    if (row === undefined) throw new Error(`no checkpoint row for ${runId}`)
    return JSON.parse(row.state) as Record<string, any>
  }

  count(table: string, runId: string): number {
    return (this.sql((db) => db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE run_id = ?`).get(runId)) as { n: number }).n
  }

  files(): Array<string> {
    return fs.readdirSync(this.dir).sort()
  }

  async dispose(): Promise<void> {
    for (const cli of this.processes) cli.signal("SIGKILL")
    await Promise.race([
      Promise.all(this.processes.map((cli) => cli.exited)),
      new Promise((resolve) => setTimeout(resolve, 5_000))
    ])
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

const sandboxes = new Map<string, Array<Sandbox>>()

/** A fresh sandbox owned by the current test; `cleanup` in afterEach kills its processes and removes it. */
export const sandbox = (context: TestContext): Sandbox => {
  const created = new Sandbox()
  sandboxes.set(context.task.id, [...(sandboxes.get(context.task.id) ?? []), created])
  return created
}

/** For afterEach: per test, so concurrent tests in a file do not kill each other's processes. */
export const cleanup = async (context: TestContext): Promise<void> => {
  const owned = sandboxes.get(context.task.id) ?? []
  sandboxes.delete(context.task.id)
  await Promise.all(owned.map((s) => s.dispose()))
}

/** A port on 127.0.0.1 that nothing listens on now: taken, then given back. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
