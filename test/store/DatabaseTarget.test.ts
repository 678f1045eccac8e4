import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Database from "../../src/store/Database.js"
import * as DatabaseTarget from "../../src/store/DatabaseTarget.js"
import * as Storage from "../../src/store/Storage.js"
import { freshPostgres, onPostgres } from "../support/Databases.js"

const none = { file: Option.none<string>(), url: Option.none<string>() }

/** The target chosen with these variables set, and only these. */
const chosen = (given: Partial<typeof none>, env: Record<string, string>) =>
  DatabaseTarget.fromConfig({ ...none, ...given }).pipe(
    Effect.map((target) => (target._tag === "Sqlite" ? `sqlite ${target.file}` : `postgres ${Redacted.value(target.url)}`)),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

const pg = "postgres://ada:pw@db.example:5432/autopilot"

describe("DatabaseTarget.fromConfig", () => {
  it.effect("--database, else --db, else AUTOPILOT_DATABASE_URL, else AUTOPILOT_DB, else AUTOPILOT_HOME/autopilot.db", () =>
    Effect.gen(function*() {
      const env = { AUTOPILOT_DATABASE_URL: "postgresql://env@db.example/e", AUTOPILOT_DB: "/data/env.db", AUTOPILOT_HOME: "/home/ap" }
      assert.strictEqual(yield* chosen({ url: Option.some(pg) }, env), `postgres ${pg}`)
      assert.strictEqual(yield* chosen({ file: Option.some("/data/a.db") }, env), "sqlite /data/a.db")
      assert.strictEqual(yield* chosen({}, env), "postgres postgresql://env@db.example/e")
      assert.strictEqual(yield* chosen({}, { ...env, AUTOPILOT_DATABASE_URL: "" }), "sqlite /data/env.db")
      assert.strictEqual(yield* chosen({}, { AUTOPILOT_HOME: "/home/ap" }), `sqlite ${path.join("/home/ap", "autopilot.db")}`)
      assert.strictEqual(yield* chosen({ file: Option.some("rel.db") }, {}), `sqlite ${path.resolve("rel.db")}`)
    }))

  it.effect("both flags, or a value that is no Postgres URL, is bad input naming what is allowed and never showing a password", () =>
    Effect.gen(function*() {
      const both = yield* Effect.flip(chosen({ file: Option.some("a.db"), url: Option.some(pg) }, {}))
      assert.strictEqual(both.message, "--db and --database name two databases: give one (--db for a SQLite file, --database for a Postgres URL)")
      const mysql = yield* Effect.flip(chosen({ url: Option.some("mysql://ada:secret@db.example/a") }, {}))
      assert.match(mysql.message, /^--database must be a postgres:\/\/ or postgresql:\/\/ URL, .*got "mysql:\/\/ada@db\.example\/a"$/)
      const variable = yield* Effect.flip(chosen({}, { AUTOPILOT_DATABASE_URL: "a.db" }))
      assert.match(variable.message, /^AUTOPILOT_DATABASE_URL must be .* \(a SQLite file goes in AUTOPILOT_DB\), got "a\.db"$/)
      for (const error of [both, mysql, variable]) assert.strictEqual(error._tag, "BadInput")
    }))
})

describe("Database.pgAddress and pgDisplay", () => {
  it("name the host, port, database and user, with libpq's defaults, and drop the password when shown", () => {
    assert.deepStrictEqual(Database.pgAddress("postgresql://ada:pw@[::1]:6543/runs"), { host: "::1", port: "6543", database: "runs", user: "ada" })
    const user = os.userInfo().username
    assert.deepStrictEqual(Database.pgAddress("postgres://"), { host: process.env["PGHOST"] || "localhost", port: process.env["PGPORT"] || "5432", database: process.env["PGDATABASE"] || process.env["PGUSER"] || user, user: process.env["PGUSER"] || user })
    assert.strictEqual(Database.pgAddress("postgres:///d?host=/run/pg")?.host, "/run/pg")
    assert.isUndefined(Database.pgAddress("http://db.example/a"))
    assert.isUndefined(Database.pgAddress("db.sqlite"))
    assert.strictEqual(Database.pgDisplay("postgres://ada:s%40cret@db.example:5432/a?sslmode=require"), "postgres://ada@db.example:5432/a?sslmode=require")
  })
})

const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

describe("Database.layerPg", () => {
  it.live("a server that cannot be reached fails the layer with one DatabaseUnavailable naming host, port and database, not the password", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(closedPort)
      const failed = yield* Effect.flip(Effect.scoped(Layer.build(Storage.layerPg(`postgres://ada:hunter2@127.0.0.1:${port}/runs`))))
      assert.strictEqual(failed._tag, "DatabaseUnavailable")
      assert.strictEqual(failed.message, `cannot use Postgres database "runs" at 127.0.0.1:${port}: connection refused (no server listening there)`)
      assert.notInclude(JSON.stringify(failed), "hunter2")
    }))

})

onPostgres("Database.layerPg on the test server", (server) => {
  it.live("a database the server does not have, or a user it does not know, is refused in the same one line", () =>
    Effect.gen(function*() {
      const url = new URL(server)
      const address = `${url.hostname}:${url.port}`
      url.pathname = "/no_such_database"
      const missing = yield* Effect.flip(Effect.scoped(Layer.build(Database.layerPg(url.toString()))))
      assert.strictEqual(missing.message, `cannot use Postgres database "no_such_database" at ${address}: database "no_such_database" does not exist`)
      url.username = "nobody_here"
      url.password = "hunter2"
      const stranger = yield* Effect.flip(Effect.scoped(Layer.build(Database.layerPg(url.toString()))))
      assert.match(stranger.message, new RegExp(`^cannot use Postgres database "no_such_database" at ${address}: .*nobody_here`))
      assert.notInclude(stranger.message, "hunter2")
    }))

  it.live("DatabaseTarget.whenHolds: a database without the table is left without it; the effect runs once it is there", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshPostgres(server)
      const target = DatabaseTarget.DatabaseTarget.Postgres({ url: Redacted.make(url) })
      const tables = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`).pipe(
        Effect.provide(DatabaseTarget.layer(target))
      )
      assert.strictEqual(yield* DatabaseTarget.whenHolds(target, "checkpoints", Effect.succeed("absent"), Effect.succeed("there")), "absent")
      assert.deepStrictEqual(yield* tables, [])
      yield* Effect.scoped(Layer.build(Storage.layer.pipe(Layer.provide(DatabaseTarget.layer(target)))))
      assert.strictEqual(yield* DatabaseTarget.whenHolds(target, "checkpoints", Effect.succeed("absent"), Effect.succeed("there")), "there")
    })))
})

describe("DatabaseTarget.whenHolds", () => {
  it.effect("a SQLite file that does not exist is not made, and one that lacks the table is not given it", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-target-"))
      const target = DatabaseTarget.DatabaseTarget.Sqlite({ file: path.join(dir, "sub", "a.db") })
      assert.strictEqual(yield* DatabaseTarget.whenHolds(target, "checkpoints", Effect.succeed("absent"), Effect.succeed("there")), "absent")
      assert.isFalse(fs.existsSync(path.join(dir, "sub")))
      yield* Effect.scoped(Layer.build(Storage.layer.pipe(Layer.provide(DatabaseTarget.layer(target)))))
      assert.isTrue(yield* DatabaseTarget.holds(target, "checkpoints"))
      assert.isFalse(yield* DatabaseTarget.holds(target, "missions"))
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
