import type { BudgetRemaining, BudgetUsage } from "../domain/Budget.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { dollars, plural, roundDollars } from "../domain/Quantity.js"

const compact = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n)}`)

const tokens = (n: number) => plural(n, "token", compact(n))

const criteria = (met: ReadonlyArray<boolean>) => `criteria ${met.filter(Boolean).length}/${met.length}`

/** Headroom as a UI would show it; disabled axes are left out. */
export const remaining = (r: BudgetRemaining) =>
  [
    r.seconds === null ? undefined : `${r.seconds.toFixed(0)}s`,
    r.tool_calls === null ? undefined : plural(r.tool_calls, "tool call"),
    r.tokens === null ? undefined : tokens(r.tokens),
    r.dollars === null ? undefined : dollars(r.dollars),
    r.iterations === null ? undefined : plural(r.iterations, "iteration")
  ].filter((s) => s !== undefined).join(" · ") || "unlimited"

export const usage = (u: BudgetUsage) =>
  [
    plural(u.iterations, "iteration"),
    plural(u.tool_calls, "tool call"),
    tokens(u.tokens),
    dollars(u.dollars),
    `${u.seconds.toFixed(1)}s`
  ].join(" · ")

/** `src/app.ts v2 (code ts, 1,234 bytes)`; a version cut at the cap says so. */
export const artifactText = (a: {
  readonly name: string
  readonly version: number
  readonly artifact_kind: string
  readonly language?: string | undefined
  readonly bytes: number
  readonly truncated: boolean
}) =>
  `${a.name} v${a.version} (${a.artifact_kind}${a.language === undefined ? "" : ` ${a.language}`}, ` +
  `${plural(a.bytes, "byte", a.bytes.toLocaleString("en-US"))}${a.truncated ? ", truncated" : ""})`

/** One event as a line (or a few) for a person watching a run. */
export const text = (e: AutopilotEvent): string => {
  switch (e.kind) {
    case "run_started":
      return `${e.resuming ? "Resuming" : "Starting"} run ${e.run_id} at iteration ${e.iterations + 1}: ${e.goal.objective}\n` +
        e.goal.success_criteria.map((c, i) => `  ${i + 1}. ${c}`).join("\n") + `\n  budget left: ${remaining(e.remaining)}`
    case "iteration":
      return `[${e.iteration}] ${criteria(e.criteria_met)} · left: ${remaining(e.remaining)}\n      ${e.summary}`
    case "heartbeat":
      return `    heartbeat: iteration ${e.iteration} in progress · ${criteria(e.criteria_met)} · left: ${remaining(e.remaining)}`
    case "tool_call":
      return `    tool ${e.name} ${e.ok ? "->" : "failed:"} ${e.output.split("\n")[0]?.slice(0, 160) ?? ""}`
    case "criteria_satisfied":
      return e.newly_met.map((c) => `    met criterion ${c.index + 1}: ${c.criterion}`).join("\n")
    case "judge_invalid":
      return `    judge gave no usable verdict (${e.error}); criteria unchanged`
    case "budget_exceeded":
      return `Budget: ${e.reason}`
    case "checkpoint_quarantined":
      return `Checkpoint was corrupt (${e.error}); kept as quarantine row ${e.quarantine_id}, continuing from ${e.recovered_from}`
    case "model_unpriced":
      return `Warning: model "${e.model}" is not in the pricing table; its calls are not counted in dollars`
    case "model_retry":
      return `    model call failed (attempt ${e.attempt}): ${e.error}; retrying`
    case "halt_requested":
      return `Halt requested (${e.reason}); finishing the current iteration`
    case "artifact":
      return `    artifact ${artifactText(e)}`
    case "result":
      return `Run ${e.run_id} ${e.status}${e.halt_reason === null ? "" : `: ${e.halt_reason}`}\n  ${criteria(e.criteria_met)} · ${usage(e.usage)}`
  }
}

/** Money fields lose the float noise that sums of costs pick up (`0.30000000000000004`). */
const withoutMoneyNoise = (key: string, value: unknown) =>
  (key === "dollars" || key === "cost_usd") && typeof value === "number" ? roundDollars(value) : value

/** A value as JSON for programs; `indent` for people reading it. */
export const json = (value: unknown, indent?: number): string => JSON.stringify(value, withoutMoneyNoise, indent)

export const jsonl = (e: AutopilotEvent): string => json(e)
