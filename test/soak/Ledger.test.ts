import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Fanout from "../../src/runtime/Fanout.js"
import * as Ledger from "../../src/soak/Ledger.js"
import { calculator } from "../../src/tools/Calculator.js"
import { environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { eachDatabase } from "../support/Databases.js"

const never = [{ criteria_met: [false, false] }]

/**
 * A database with the three shapes of books the ledger reads: a run that ended on its budget, one halted
 * and then resumed with a bigger budget (two sessions, two results), and a fan-out of three children.
 */
const books = Effect.gen(function*() {
  yield* runMission({ runId: "plain", goal: goal(), policy: { max_iterations: 4 } }, script(never))
  yield* runMission({ runId: "resumed", goal: goal(), policy: { max_iterations: 2 } }, script(never))
  yield* runMission({ runId: "resumed", resume: true, policy: { max_iterations: 5 } }, script(never))
  const fanout = yield* Fanout.run({ runId: "fan", template: "Research {item}", items: ["a", "b", "c"], policy: { max_iterations: 6 } }).pipe(
    Effect.provide(MockLlm.layer(script([{ criteria_met: [false] }], { latency_ms: 10 }))),
    Effect.fork
  )
  yield* TestClock.adjust("1 minute")
  yield* Fiber.join(fanout)
})

const checksOf = (audit: Ledger.LedgerAudit) => audit.findings.map((f) => `${f.check} ${f.run_id}`).sort()

// The same books on every database the runtime supports: the audit reads them through the stores.
eachDatabase("Ledger", (database) => {
  const environment = environmentWith([calculator], database.layer)

  /** The audit after one deliberate corruption of the books, as a store that loses or repeats a write would leave them. */
  const auditAfter = (corrupt: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      yield* books
      yield* corrupt(yield* SqlClient.SqlClient)
      return yield* Ledger.audit()
    }).pipe(Effect.provide(environment))

  it.effect("runs that ended, resumed and fanned out leave books with no finding", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter(() => Effect.void)
      assert.deepStrictEqual(audit.findings, [])
      assert.strictEqual(audit.runs, 6)
      // 4 + 5, and the fan-out's 6 counted once by itself and once by its children.
      assert.strictEqual(audit.iterations, 4 + 5 + 6 + 6)
    }))

  it.effect("a step that was never written: the iteration is lost", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) => sql`DELETE FROM steps WHERE run_id = 'plain' AND iteration = 3`)
      assert.deepStrictEqual(checksOf(audit), ["exact_usage plain"])
      assert.include(audit.findings[0]!.detail, "steps [1, 2, 4]")
    }))

  it.effect("an iteration counted twice in the checkpoint's usage", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) =>
        sql`UPDATE checkpoints SET state = REPLACE(state, '"iterations":4', '"iterations":5') WHERE run_id = 'plain'`
      )
      assert.deepStrictEqual(checksOf(audit), ["events_gap_free plain", "exact_usage plain"])
    }))

  it.effect("tokens a step recorded but its model calls never spent", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) =>
        sql`UPDATE steps SET body = REPLACE(body, '"tokens":6000', '"tokens":6001') WHERE run_id = 'resumed' AND iteration = 5`
      )
      assert.deepStrictEqual(checksOf(audit), ["exact_usage resumed", "exact_usage resumed"])
      assert.include(audit.findings[0]!.detail, "iteration 5 added 1201 tokens")
    }))

  it.effect("an event that never became durable leaves a gap in the log", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) => sql`DELETE FROM events WHERE run_id = 'resumed' AND kind = 'iteration' AND seq = 3`)
      assert.deepStrictEqual(checksOf(audit), ["events_gap_free resumed", "events_gap_free resumed"])
    }))

  it.effect("a run that ended twice: a result that is not a halt, then more", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) =>
        sql`UPDATE events SET body = REPLACE(body, '"status":"halted"', '"status":"completed"') WHERE id = (SELECT MIN(id) FROM events WHERE run_id = 'resumed' AND kind = 'result')`
      )
      assert.deepStrictEqual(checksOf(audit), ["ended_once resumed"])
    }))

  it.effect("a run left running, and a checkpoint that disagrees with its log's end", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) =>
        sql`UPDATE checkpoints SET state = REPLACE(state, '"status":"halted"', '"status":"running"') WHERE run_id = 'plain'`
      )
      assert.deepStrictEqual(checksOf(audit), ["none_running plain"])
      const partial = yield* auditAfter((sql) =>
        sql`UPDATE checkpoints SET state = REPLACE(state, '"status":"halted"', '"status":"partial"') WHERE run_id = 'plain'`
      )
      assert.deepStrictEqual(checksOf(partial), ["ended_once plain"])
    }))

  it.effect("a fan-out charged more than its children spent", () =>
    Effect.gen(function*() {
      const audit = yield* auditAfter((sql) =>
        sql`UPDATE checkpoints SET state = REPLACE(state, '"iterations":6', '"iterations":7') WHERE run_id = 'fan'`
      )
      assert.deepStrictEqual(checksOf(audit), ["fanout_sum fan"])
    }))

  it.effect("only the runs asked for are audited", () =>
    Effect.gen(function*() {
      yield* books
      const audit = yield* Ledger.audit({ runIds: ["plain", "fan"] })
      assert.strictEqual(audit.runs, 2)
      assert.strictEqual(audit.iterations, 10)
    }).pipe(Effect.provide(environment)))
})
