import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { LlmError } from "../../src/domain/Errors.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Fanout from "../../src/runtime/Fanout.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Ledger from "../../src/soak/Ledger.js"
import * as ArtifactStore from "../../src/store/ArtifactStore.js"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import * as Database from "../../src/store/Database.js"
import * as DeltaStore from "../../src/store/DeltaStore.js"
import * as EventStore from "../../src/store/EventStore.js"
import * as GroupCommit from "../../src/store/GroupCommit.js"
import * as QuarantineStore from "../../src/store/QuarantineStore.js"
import * as RunStore from "../../src/store/RunStore.js"
import * as StepStore from "../../src/store/StepStore.js"
import * as Transaction from "../../src/store/Transaction.js"
import { Toolkit } from "../../src/tools/Tool.js"
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
      // 4 + 5, and the fan-out's 6, counted at its children.
      assert.strictEqual(audit.iterations, 4 + 5 + 6)
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

  it.effect("an iteration cut short by a call that kept failing: the calls it had charged are listed with the result, and the books balance", () =>
    Effect.gen(function*() {
      // The act call of iteration 3 answers, its judge then fails for good: the run fails mid-iteration.
      const judgeFailsOnThird = Layer.effect(Llm, Effect.map(MockLlm.make(script(never)), (mock) => ({
        ...mock,
        complete: (request: LlmRequest) =>
          request.purpose === "judge" && request.metadata.iteration === 3
            ? Effect.fail(new LlmError({ message: "the judge's provider refused", transient: false }))
            : mock.complete(request)
      })))
      const result = yield* Mission.run({ runId: "cut", goal: goal(), policy: { max_iterations: 5 } }).pipe(Effect.provide(judgeFailsOnThird))
      assert.strictEqual(result.status, "failed")
      const ended = (yield* Effect.flatMap(EventStore.EventStore, (events) => events.after("cut", 0))).map((e) => e.event).filter((e) => e.kind === "result")
      assert.deepStrictEqual(ended.map((e) => e.kind === "result" ? e.unfinished_calls?.map((c) => c.purpose) : undefined), [["act"]])
      assert.deepStrictEqual((yield* Ledger.audit()).findings, [])
      // Without the list, the run's usage would hold spend no record explains.
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE events SET body = REPLACE(body, '"unfinished_calls"', '"calls_nobody_reads"') WHERE run_id = 'cut' AND kind = 'result'`
      assert.deepStrictEqual(checksOf(yield* Ledger.audit()), ["exact_usage cut"])
    }).pipe(Effect.provide(environment)))

  it.effect("only the runs asked for are audited", () =>
    Effect.gen(function*() {
      yield* books
      const audit = yield* Ledger.audit({ runIds: ["plain", "fan"] })
      assert.strictEqual(audit.runs, 2)
      assert.strictEqual(audit.iterations, 4)
    }).pipe(Effect.provide(environment)))
})

// A deliberately broken build, put together from Layers: the real stores over a real database, but a step
// store that loses the commit of one step, as a store with a bug in its batching would. Group commit, which
// writes a run's iterations, is built on it, so the runs themselves go through the broken store.
const droppingOne = Layer.effect(
  StepStore.StepStore,
  Effect.map(StepStore.make, (store) => ({
    ...store,
    append: (steps: ReadonlyArray<StepStore.StepOf>) => store.append(steps.filter((s) => !(s.runId === "unlucky" && s.step.iteration === 3)))
  }))
)
const brokenBuild = GroupCommit.layer().pipe(
  Layer.provideMerge(
    Layer.mergeAll(RunStore.layer, droppingOne, EventStore.layer, QuarantineStore.layer, ArtifactStore.layer, Transaction.layer, DeltaStore.layer, CuratorStore.layer)
  ),
  Layer.provideMerge(Database.layerSqlite(":memory:")),
  Layer.merge(Toolkit.layer([calculator]))
)

it.effect("a build whose step store drops one commit is caught: the lost iteration is named", () =>
  Effect.gen(function*() {
    yield* runMission({ runId: "lucky", goal: goal(), policy: { max_iterations: 4 } }, script(never))
    yield* runMission({ runId: "unlucky", goal: goal(), policy: { max_iterations: 4 } }, script(never))
    const audit = yield* Ledger.audit()
    assert.deepStrictEqual(audit.findings, [{ check: "exact_usage", run_id: "unlucky", detail: "steps [1, 2, 4], its usage counts 4 iterations" }])
  }).pipe(Effect.provide(brokenBuild)))
