import type { TestProject } from "vitest/node"
import * as Database from "../../src/store/Database.js"
import * as Postgres from "../../scripts/lib/postgres.js"

/**
 * One real Postgres server for the whole test run, for the Postgres half of every store suite and the
 * CLI's Postgres tests: `AUTOPILOT_TEST_DATABASE_URL` if set, else a throwaway server started here from
 * the installed binaries (Debian's `postgresql` package) on 127.0.0.1 and a free port, stopped and
 * deleted at the end (scripts/lib/postgres.ts, which the benchmarks share). When none can be started,
 * the tests say so loudly and skip their Postgres half; with `AUTOPILOT_TEST_POSTGRES=required` (CI) the
 * run fails instead.
 */

declare module "vitest" {
  export interface ProvidedContext {
    postgres: { readonly url: string } | { readonly unavailable: string }
  }
}

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
  let server: Postgres.Server
  try {
    server = await Postgres.start(Postgres.throwawaySettings)
    const running = server
    const serverVersion = await Postgres.version(running.url).catch((error) => {
      running.stop()
      throw error
    })
    process.stderr.write(`postgres for the tests: ${serverVersion} at ${server.url}, started in ${Date.now() - began} ms\n`)
  } catch (error) {
    const reason = Postgres.oneLine(error instanceof Error ? error.message : String(error))
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
