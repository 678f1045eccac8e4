import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One real Postgres server for the run (or AUTOPILOT_TEST_DATABASE_URL), for the Postgres half of the suites.
    globalSetup: ["test/support/postgres-global.ts"],
    // Process-level tests start the built CLI; two cores are all CI has.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Bounds for a test that would otherwise hang, not expectations of speed: the suite must pass with
    // both cores busy. Process tests wait for the event they need, never for a fixed time.
    testTimeout: 240_000,
    hookTimeout: 60_000
  }
})
