import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import * as Database from "../../src/store/Database.js"

/**
 * One real Postgres server for the whole test run, for the Postgres half of every store suite and the
 * CLI's Postgres tests: `AUTOPILOT_TEST_DATABASE_URL` if set, else a throwaway server started here from
 * the installed binaries (Debian's `postgresql` package) on 127.0.0.1 and a free port, stopped and
 * deleted at the end. When none can be started, the tests say so loudly and skip their Postgres half;
 * with `AUTOPILOT_TEST_POSTGRES=required` (CI) the run fails instead.
 */

declare module "vitest" {
  export interface ProvidedContext {
    postgres: { readonly url: string } | { readonly unavailable: string }
  }
}

const executable = (file: string) => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** PATH first, then Debian's versioned folders, newest first. */
const binaryDirs = () => {
  const debian = "/usr/lib/postgresql"
  const versions = fs.existsSync(debian)
    ? fs.readdirSync(debian).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a)).map((v) => path.join(debian, v, "bin"))
    : []
  return [...(process.env["PATH"] ?? "").split(path.delimiter).filter((dir) => dir !== ""), ...versions]
}

const find = (name: string) => {
  const dir = binaryDirs().find((d) => executable(path.join(d, name)))
  return dir === undefined ? undefined : path.join(dir, name)
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

interface Server {
  readonly url: string
  readonly stop: () => void
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`

/** A command line as the server's user: initdb refuses root, so as root that is the `postgres` user. */
const asServerUser = () => {
  if (process.getuid?.() !== 0) return (bin: string, args: ReadonlyArray<string>) => [bin, ...args]
  const id = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" })
  if (id.status !== 0) throw new Error("running as root, and there is no unprivileged `postgres` user to run initdb as")
  const runuser = find("runuser") ?? ["/usr/sbin/runuser", "/sbin/runuser"].find(executable)
  return (bin: string, args: ReadonlyArray<string>) =>
    runuser !== undefined
      ? [runuser, "-u", "postgres", "--", bin, ...args]
      : ["su", "postgres", "-s", "/bin/sh", "-c", [bin, ...args].map(quote).join(" ")]
}

/**
 * Stops the server and deletes its folder once this process is gone, however it ended: a run killed
 * before its teardown (Ctrl-C, a closed pipe, kill -9) must not leave a server behind.
 */
const watchdog = (stop: ReadonlyArray<string>, data: string, dir: string) => {
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `if [ -d ${quote(data)} ]; then ${stop.map(quote).join(" ")} >/dev/null 2>&1; rm -rf ${quote(dir)}; fi`
  const child = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore" })
  child.unref()
  return child
}

const start = async (): Promise<Server> => {
  const initdb = find("initdb")
  const pgCtl = find("pg_ctl")
  if (initdb === undefined || pgCtl === undefined) {
    throw new Error("initdb and pg_ctl are not on PATH nor in /usr/lib/postgresql/*/bin (Debian's `postgresql` package has them)")
  }
  const command = asServerUser()
  const run = (bin: string, args: ReadonlyArray<string>) => {
    const [executable, ...rest] = command(bin, args)
    return spawnSync(executable!, rest, { encoding: "utf8" })
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-pg-"))
  const data = path.join(dir, "data")
  const log = path.join(dir, "server.log")
  const check = (what: string, result: ReturnType<typeof spawnSync>) => {
    if (result.error !== undefined) throw new Error(`${what}: ${result.error.message}`)
    if (result.status !== 0) throw new Error(`${what} exited ${result.status}: ${oneLine(String(result.stderr ?? "")).slice(-400)}`)
  }
  try {
    if (process.getuid?.() === 0) check("chown", spawnSync("chown", ["postgres:", dir], { encoding: "utf8" }))
    // The server is thrown away at the end: no fsync, and C collation so text sorts as SQLite sorts it.
    check("initdb", run(initdb, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]))
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const options = `-h 127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`
      // -w waits (here at most 60 s) until the server accepts connections.
      const started = run(pgCtl, ["-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"])
      if (started.status === 0) {
        const url = `postgresql://postgres@127.0.0.1:${port}/postgres`
        const guard = watchdog(command(pgCtl, ["-D", data, "-m", "immediate", "stop"]), data, dir)
        return {
          url,
          stop: () => {
            guard.kill()
            run(pgCtl, ["-D", data, "-m", "fast", "-w", "-t", "30", "stop"])
            fs.rmSync(dir, { recursive: true, force: true })
          }
        }
      }
      // Another process may have taken the port between our look and the server's bind.
      lastError = new Error(`pg_ctl start exited ${started.status}: ${oneLine(fs.existsSync(log) ? fs.readFileSync(log, "utf8") : String(started.stderr)).slice(-400)}`)
    }
    throw lastError
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

const version = (url: string) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ v: string }>`SELECT current_setting('server_version') AS v`).pipe(
      Effect.map((rows) => rows[0]?.v ?? "?"),
      Effect.provide(Database.layerPg(url))
    )
  )

const warn = (reason: string) => {
  const bar = "!".repeat(100)
  process.stderr.write([
    "",
    bar,
    "!!  NO POSTGRES FOR THE TESTS: the Postgres half of every store suite and the CLI's Postgres tests are SKIPPED.",
    `!!  Why: ${reason}`,
    "!!  Install Debian's `postgresql` package (initdb, pg_ctl), or set AUTOPILOT_TEST_DATABASE_URL to a server",
    "!!  whose user may CREATE DATABASE. Nothing about Postgres was tested in this run.",
    bar,
    "",
    ""
  ].join("\n"))
}

export default async function setup(project: TestProject) {
  const external = process.env["AUTOPILOT_TEST_DATABASE_URL"]
  const began = Date.now()
  if (external !== undefined && external !== "") {
    project.provide("postgres", { url: external })
    process.stderr.write(`postgres for the tests: ${Database.pgDisplay(external)} (AUTOPILOT_TEST_DATABASE_URL)\n`)
    return
  }
  let server: Server
  try {
    server = await start()
    const running = server
    const serverVersion = await version(running.url).catch((error) => {
      running.stop()
      throw error
    })
    process.stderr.write(`postgres for the tests: ${serverVersion} at ${server.url}, started in ${Date.now() - began} ms\n`)
  } catch (error) {
    const reason = oneLine(error instanceof Error ? error.message : String(error))
    if (process.env["AUTOPILOT_TEST_POSTGRES"] === "required") throw new Error(`AUTOPILOT_TEST_POSTGRES=required, but no Postgres could be started: ${reason}`)
    warn(reason)
    project.provide("postgres", { unavailable: reason })
    // Again at the end, below the results, where it is read.
    return () => warn(reason)
  }
  project.provide("postgres", { url: server.url })
  return () => {
    const stopping = Date.now()
    server.stop()
    process.stderr.write(`postgres for the tests: stopped and removed in ${Date.now() - stopping} ms\n`)
  }
}
