import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { exitCodeOf, RunStatus, statusOf } from "../../src/domain/RunStatus.js"

const criteria = fc.array(fc.boolean(), { maxLength: 20 })

describe("RunStatus", () => {
  describe("statusOf", () => {
    it.prop("is completed when every criterion of a non-empty list is met", [fc.integer({ min: 1, max: 20 })], ([n]) => {
      assert.strictEqual(statusOf(Array.from({ length: n }, () => true)), "completed")
    })

    it.prop("is partial when some but not all criteria are met", [criteria], ([met]) => {
      fc.pre(met.some(Boolean) && !met.every(Boolean))
      assert.strictEqual(statusOf(met), "partial")
    })

    it.prop("is halted when no criterion is met", [fc.nat({ max: 20 })], ([n]) => {
      assert.strictEqual(statusOf(Array.from({ length: n }, () => false)), "halted")
    })

    it.prop("follows the rule for any list of criteria", [criteria], ([met]) => {
      const count = met.filter(Boolean).length
      const expected = met.length > 0 && count === met.length ? "completed" : count > 0 ? "partial" : "halted"
      assert.strictEqual(statusOf(met), expected)
    })

    it("treats a run with no criteria as halted, never completed", () => {
      assert.strictEqual(statusOf([]), "halted")
    })

    it("decides on the example vectors", () => {
      assert.strictEqual(statusOf([true]), "completed")
      assert.strictEqual(statusOf([true, true, true]), "completed")
      assert.strictEqual(statusOf([false, true, false]), "partial")
      assert.strictEqual(statusOf([true, true, false]), "partial")
      assert.strictEqual(statusOf([false]), "halted")
      assert.strictEqual(statusOf([false, false]), "halted")
    })
  })

  describe("exitCodeOf", () => {
    it("maps completed 0, partial 3, halted 4, failed 1", () => {
      assert.strictEqual(exitCodeOf("completed"), 0)
      assert.strictEqual(exitCodeOf("partial"), 3)
      assert.strictEqual(exitCodeOf("halted"), 4)
      assert.strictEqual(exitCodeOf("failed"), 1)
    })

    it("treats a run still marked running as failed", () => {
      assert.strictEqual(exitCodeOf("running"), 1)
    })

    it.prop("never uses 2, which is reserved for bad input", [RunStatus], ([status]) => {
      assert.include([0, 1, 3, 4], exitCodeOf(status))
    })
  })
})
