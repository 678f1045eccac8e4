import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { applicableBudgets, periodKey, periodStart, verdict } from "../../src/harness/BudgetRules.js"
import type { BudgetRule } from "../../src/harness/HarnessConfig.js"
import type { Identity } from "../../src/harness/Policy.js"

const alice: Identity = { key_id: "k1", user: "alice", team: "research", project: "p1" }

const daily = (scope: BudgetRule["scope"], id: string, limit_usd: number, action: BudgetRule["action"]): BudgetRule => ({
  scope,
  id,
  period: "daily",
  limit_usd,
  action
})

/** Spend by rule, looked up by identity so that equal-looking rules can differ. */
const spending = (spent: ReadonlyArray<readonly [BudgetRule, number]>) => (rule: BudgetRule) =>
  spent.find(([r]) => r === rule)?.[1] ?? 0

describe("BudgetRules", () => {
  describe("periods", () => {
    it("keys a day and a month in UTC", () => {
      const now = new Date("2026-11-22T15:04:05Z")
      assert.strictEqual(periodKey("daily", now), "2026-11-22")
      assert.strictEqual(periodKey("monthly", now), "2026-11")
      assert.strictEqual(periodStart("daily", now), "2026-11-22")
      assert.strictEqual(periodStart("monthly", now), "2026-11-01")
    })

    it("turns over at UTC midnight, whatever the local time zone", () => {
      const last = new Date("2026-11-30T23:59:59.999Z")
      const first = new Date("2026-12-01T00:00:00Z")
      assert.strictEqual(periodKey("daily", last), "2026-11-30")
      assert.strictEqual(periodKey("daily", first), "2026-12-01")
      assert.strictEqual(periodKey("monthly", last), "2026-11")
      assert.strictEqual(periodKey("monthly", first), "2026-12")
      assert.strictEqual(periodStart("monthly", last), "2026-11-01")
      assert.strictEqual(periodStart("monthly", first), "2026-12-01")
      assert.strictEqual(periodKey("monthly", new Date("2026-12-31T23:59:59Z")), "2026-12")
      assert.strictEqual(periodKey("monthly", new Date("2027-01-01T00:00:00Z")), "2027-01")
      assert.strictEqual(periodKey("daily", new Date("2028-02-29T12:00:00+14:00")), "2028-02-28")
    })

    it.prop("starts every period on or before the day it holds", [fc.date({
      min: new Date("2000-01-01T00:00:00Z"),
      max: new Date("2100-01-01T00:00:00Z"),
      noInvalidDate: true
    })], ([now]) => {
      const day = periodKey("daily", now)
      assert.strictEqual(periodStart("daily", now), day)
      assert.isTrue(periodStart("monthly", now) <= day)
      assert.isTrue(day.startsWith(periodKey("monthly", now)))
      assert.strictEqual(periodStart("monthly", now), `${periodKey("monthly", now)}-01`)
    })
  })

  describe("applicableBudgets", () => {
    it("keeps the rules for the key's user, team and project, and no others", () => {
      const mine = [daily("user", "alice", 1, "warn"), daily("team", "research", 1, "warn"), daily("project", "p1", 1, "warn")]
      const others = [daily("user", "bob", 1, "stop"), daily("team", "sales", 1, "stop"), daily("project", "p2", 1, "stop")]
      assert.deepStrictEqual(applicableBudgets([...others, ...mine], alice), mine)
    })

    it("applies no team budget to a key without a team", () => {
      const team = daily("team", "research", 1, "stop")
      const user = daily("user", "alice", 1, "warn")
      assert.deepStrictEqual(applicableBudgets([team, user], { ...alice, team: null }), [user])
    })
  })

  describe("verdict", () => {
    it("is none while every budget has room", () => {
      const rule = daily("project", "p1", 5, "stop")
      assert.deepStrictEqual(verdict([rule], alice, () => 4.99), { action: "none", rule: null, spent: 0, message: null })
      assert.deepStrictEqual(verdict([], alice, () => 100), { action: "none", rule: null, spent: 0, message: null })
    })

    it("trips a budget once spending reaches its limit, with the rule's action", () => {
      for (const action of ["warn", "downgrade", "stop"] as const) {
        const rule = daily("project", "p1", 5, action)
        assert.deepStrictEqual(verdict([rule], alice, () => 5.12), {
          action,
          rule,
          spent: 5.12,
          message: "project p1 daily budget $5.00 is spent ($5.12)"
        })
        assert.strictEqual(verdict([rule], alice, () => 5).action, action)
      }
    })

    it("trips a zero limit at once", () => {
      const rule: BudgetRule = { scope: "user", id: "alice", period: "monthly", limit_usd: 0, action: "stop" }
      assert.deepStrictEqual(verdict([rule], alice, () => 0), {
        action: "stop",
        rule,
        spent: 0,
        message: "user alice monthly budget $0.00 is spent ($0.00)"
      })
    })

    it("shows amounts under a cent to two significant digits", () => {
      const rule = daily("team", "research", 0.005, "warn")
      assert.strictEqual(verdict([rule], alice, () => 0.0051234).message, "team research daily budget $0.0050 is spent ($0.0051)")
      assert.strictEqual(
        verdict([daily("team", "research", 0.0000123, "warn")], alice, () => 1).message,
        "team research daily budget $0.000012 is spent ($1.00)"
      )
    })

    it("lets stop beat downgrade beat warn, whichever is more overspent", () => {
      const warn = daily("user", "alice", 1, "warn")
      const downgrade = daily("team", "research", 1, "downgrade")
      const stop = daily("project", "p1", 1, "stop")
      const spent = spending([[warn, 50], [downgrade, 10], [stop, 1]])
      assert.strictEqual(verdict([warn, downgrade, stop], alice, spent).rule, stop)
      assert.strictEqual(verdict([stop, downgrade, warn], alice, spent).rule, stop)
      assert.strictEqual(verdict([warn, downgrade], alice, spent).rule, downgrade)
      assert.strictEqual(verdict([warn, downgrade, stop], alice, spending([[warn, 50], [downgrade, 10], [stop, 0.5]])).rule, downgrade)
    })

    it("among equally severe budgets, picks the most overspent, then the first listed", () => {
      const a = daily("user", "alice", 10, "stop")
      const b = daily("project", "p1", 1, "stop")
      assert.strictEqual(verdict([a, b], alice, spending([[a, 12], [b, 1.5]])).rule, b)
      assert.strictEqual(verdict([a, b], alice, spending([[a, 20], [b, 2]])).rule, a)
      assert.strictEqual(verdict([b, a], alice, spending([[a, 20], [b, 2]])).rule, b)
    })

    it("ignores budgets that do not apply, without asking what they spent", () => {
      const asked: Array<BudgetRule> = []
      const rule = daily("user", "bob", 1, "stop")
      assert.strictEqual(verdict([rule], alice, (r) => (asked.push(r), 100)).action, "none")
      assert.deepStrictEqual(asked, [])
    })
  })
})
