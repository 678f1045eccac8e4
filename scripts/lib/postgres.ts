import { SqlClient } from "@effect/sql"
import { Effect, Exit, Scope } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Database from "../../src/store/Database.js"

/**
 * A throwaway Postgres server from the installed binaries (Debian's `postgresql` package): initdb into a
 * temporary folder (as the `postgres` user when root, since initdb refuses root), pg_ctl on 127.0.0.1 and
 * a free port, trust login, stopped and deleted by `stop` or, whatever ends this process, by a watchdog.
 * The tests' global setup (test/support/postgres-global.ts) and the benchmarks (scripts/bench-daemon.ts)
 * start theirs here; each gives the server settings it wants.
 */

export interface Server {
  readonly url: string
  /** The server's data folder (its `postmaster.pid` names the server's process). */
  readonly data: string
  readonly stop: () => void
}

/** What the tests run with: nothing survives the run, so nothing is synced. */
export const throwawaySettings = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_connections: 300
} as const

export const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

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

/** Starts a server with these settings (`-c name=value` each); fails with one line saying why it could not. */
export const start = async (settings: Readonly<Record<string, string | number>> = throwawaySettings): Promise<Server> => {
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
    // C collation so text sorts as SQLite sorts it; initdb's own files need no sync on a throwaway cluster.
    check("initdb", run(initdb, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]))
    const configured = Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`).join(" ")
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const options = `-h 127.0.0.1 -p ${port} -k ${dir} ${configured}`
      // -w waits (here at most 60 s) until the server accepts connections.
      const started = run(pgCtl, ["-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"])
      if (started.status === 0) {
        const url = `postgresql://postgres@127.0.0.1:${port}/postgres`
        const guard = watchdog(command(pgCtl, ["-D", data, "-m", "immediate", "stop"]), data, dir)
        return {
          url,
          data,
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

const query = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(Database.layerPg(url)), Effect.orDie)

/** The server's version, as it reports it. */
export const version = (url: string) =>
  Effect.runPromise(query(url, (sql) => Effect.map(sql<{ v: string }>`SELECT current_setting('server_version') AS v`, (rows) => rows[0]?.v ?? "?")))

/** The URL of database `name` on the server `serverUrl` points at. */
export const urlOf = (serverUrl: string, name: string) => {
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * A new, empty database on the server (`prefix_<pid>_<random>`), dropped, whoever is still connected,
 * when the scope closes. `settings` are made the database's defaults (`ALTER DATABASE … SET`).
 */
export const freshDatabase = (
  serverUrl: string,
  prefix: string,
  settings: Readonly<Record<string, string>> = {}
): Effect.Effect<string, never, Scope.Scope> =>
  Effect.suspend(() => {
    const name = `${prefix}_${process.pid}_${randomBytes(6).toString("hex")}`
    const admin = (statement: string) => query(serverUrl, (sql) => sql.unsafe(statement))
    return Effect.acquireRelease(
      Effect.gen(function*() {
        yield* admin(`CREATE DATABASE ${name}`)
        for (const [setting, value] of Object.entries(settings)) yield* admin(`ALTER DATABASE ${name} SET ${setting} = '${value}'`)
        return urlOf(serverUrl, name)
      }),
      () => Effect.ignore(admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    )
  })

/** For callers outside Effect: a fresh database's URL, and how to drop it. */
export const createDatabase = async (
  serverUrl: string,
  prefix: string,
  settings: Readonly<Record<string, string>> = {}
): Promise<{ readonly url: string; readonly drop: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const url = await Effect.runPromise(Scope.extend(freshDatabase(serverUrl, prefix, settings), scope))
  return { url, drop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
