import type { BudgetAction, BudgetRule } from "./HarnessConfig.js"
import type { Identity } from "./Policy.js"

type Period = BudgetRule["period"]

/** The period `now` falls in, in UTC: "2026-11-22" for a day, "2026-11" for a month. */
export const periodKey = (period: Period, now: Date): string =>
  now.toISOString().slice(0, period === "daily" ? 10 : 7)

/** The first day of the period `now` falls in, as YYYY-MM-DD in UTC. */
export const periodStart = (period: Period, now: Date): string =>
  period === "daily" ? periodKey(period, now) : `${periodKey(period, now)}-01`

export interface BudgetVerdict {
  readonly action: "none" | BudgetAction
  readonly rule: BudgetRule | null
  readonly spent: number
  readonly message: string | null
}

const none: BudgetVerdict = { action: "none", rule: null, spent: 0, message: null }

const severity: Record<BudgetAction, number> = { warn: 1, downgrade: 2, stop: 3 }

export const applicableBudgets = (
  rules: ReadonlyArray<BudgetRule>,
  identity: Pick<Identity, BudgetRule["scope"]>
): ReadonlyArray<BudgetRule> =>
  rules.filter((rule) => rule.id === identity[rule.scope])

/** Two decimals, or two significant digits below a cent so that small limits stay readable. */
const usd = (dollars: number) =>
  `$${dollars.toFixed(dollars === 0 || dollars >= 0.01 ? 2 : Math.min(20, 1 - Math.floor(Math.log10(dollars))))}`

// A zero limit is spent by any use at all: the fullest a budget can be.
const ratio = (rule: BudgetRule, spent: number) => rule.limit_usd === 0 ? Infinity : spent / rule.limit_usd

/** The most severe tripped budget (spent at or over its limit); among equals, the most overspent, then the first. */
export const verdict = (
  rules: ReadonlyArray<BudgetRule>,
  identity: Identity,
  spentOf: (rule: BudgetRule) => number
): BudgetVerdict =>
  applicableBudgets(rules, identity).reduce((worst, rule) => {
    const spent = spentOf(rule)
    if (spent < rule.limit_usd) return worst
    const worse = worst.rule === null ||
      severity[rule.action] > severity[worst.rule.action] ||
      (severity[rule.action] === severity[worst.rule.action] && ratio(rule, spent) > ratio(worst.rule, worst.spent))
    return worse
      ? {
        action: rule.action,
        rule,
        spent,
        message: `${rule.scope} ${rule.id} ${rule.period} budget ${usd(rule.limit_usd)} is spent (${usd(spent)})`
      }
      : worst
  }, none)
