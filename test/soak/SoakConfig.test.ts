import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as SoakConfig from "../../src/soak/SoakConfig.js"

const now = new Date("2026-12-02T14:00:00.000Z")
const read = (env: Record<string, string>) => SoakConfig.fromEnv(env, now, 4242)
const problem = (env: Record<string, string>) => Either.getLeft(read(env)).pipe((o) => (o._tag === "Some" ? o.value : assert.fail("accepted")))

describe("SoakConfig", () => {
  it("an hour on the mock and SQLite by default, with a seed drawn and the folder named for both", () => {
    const config = Either.getOrThrow(read({ AUTOPILOT_SOAK: "3600" }))
    assert.deepStrictEqual(config, {
      seconds: 3600,
      seed: 4242,
      out: "soak-out/2026-12-02T14-00-00-seed-4242",
      model: { _tag: "Mock" },
      database: { _tag: "Sqlite" },
      runsPerMinute: 12
    })
    assert.strictEqual(SoakConfig.commandOf(config), "AUTOPILOT_SOAK=3600 AUTOPILOT_SOAK_SEED=4242 npm run soak")
  })

  it("the real model and Postgres by the usual variables; the command that runs it again never shows the key or the database's URL", () => {
    const config = Either.getOrThrow(read({
      AUTOPILOT_SOAK: "90.5",
      AUTOPILOT_SOAK_SEED: "7",
      AUTOPILOT_LLM_BASE_URL: "https://api.example.com/v1",
      AUTOPILOT_LLM_API_KEY: "sk-secret",
      AUTOPILOT_DATABASE_URL: "postgres://u:pw@db:5432/soak"
    }))
    assert.deepStrictEqual(config.model, { _tag: "OpenAi", baseUrl: "https://api.example.com/v1", apiKey: "sk-secret", model: undefined })
    assert.deepStrictEqual(config.database, { _tag: "Postgres", url: "postgres://u:pw@db:5432/soak" })
    const command = SoakConfig.commandOf(config)
    assert.notInclude(command, "sk-secret")
    assert.notInclude(command, "pw@")
    assert.include(command, "AUTOPILOT_SOAK=90.5 AUTOPILOT_SOAK_SEED=7 AUTOPILOT_LLM_BASE_URL=https://api.example.com/v1")
  })

  it("bad input is one line naming the variable, what it held and what it takes", () => {
    assert.strictEqual(problem({}), "AUTOPILOT_SOAK must name the soak's length in seconds, e.g. AUTOPILOT_SOAK=3600 npm run soak")
    for (const bad of ["abc", "-5", "0", "1e3", "700000", "3600s"]) {
      assert.strictEqual(problem({ AUTOPILOT_SOAK: bad }), `AUTOPILOT_SOAK must be a number of seconds above 0 and at most 604800 (a week), got "${bad}"`)
    }
    assert.include(problem({ AUTOPILOT_SOAK: "60", AUTOPILOT_SOAK_SEED: "x1" }), "AUTOPILOT_SOAK_SEED must be a whole number")
    assert.include(problem({ AUTOPILOT_SOAK: "60", AUTOPILOT_LLM_BASE_URL: "ftp://x" }), "AUTOPILOT_LLM_BASE_URL must be a http: or https: URL")
    assert.include(problem({ AUTOPILOT_SOAK: "60", AUTOPILOT_LLM_BASE_URL: "http://x/v1" }), "AUTOPILOT_LLM_API_KEY must be set")
    assert.include(problem({ AUTOPILOT_SOAK: "60", AUTOPILOT_DATABASE_URL: "mysql://x" }), "AUTOPILOT_DATABASE_URL must be a postgres: or postgresql: URL")
    assert.include(problem({ AUTOPILOT_SOAK: "60", AUTOPILOT_SOAK_RUNS_PER_MINUTE: "0" }), "AUTOPILOT_SOAK_RUNS_PER_MINUTE must be")
    for (const line of [problem({ AUTOPILOT_SOAK: "x" }), problem({})]) assert.notInclude(line, "\n")
  })
})
