import type { BudgetRemaining, BudgetUsage } from "../domain/Budget.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { describeAdjustment } from "../domain/Healing.js"
import { dollars, plural, roundDollars } from "../domain/Quantity.js"
import type { ChatMessage } from "../llm/Llm.js"

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

/** A critic's verdict in one line: what it found, whether it counted, and its first suggestion. */
const critique = (e: Extract<AutopilotEvent, { kind: "critic"; ok: true }>) => {
  const weight = e.ended_run
    ? "confident every criterion is met: the run ends"
    : e.confident
    ? "confident: its verdict counts, not the judge's"
    : "not confident enough: the judge's verdict counts"
  const first = e.suggestions[0]?.replace(/\s+/g, " ")
  const advice = first === undefined
    ? ""
    : ` · suggests: ${first.length > 100 ? `${first.slice(0, 97)}...` : first}${e.suggestions.length > 1 ? ` (+${e.suggestions.length - 1} more)` : ""}`
  return `critic: ${criteria(e.criteria_met)} at confidence ${e.confidence}, ${weight}${advice}`
}
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
      // A fan-out has no iterations of its own: its children's add up to its count.
      return `${e.resuming ? "Resuming" : "Starting"} ${e.fanout === undefined ? "run" : "fan-out"} ${e.run_id}` +
        `${e.specialist === undefined ? "" : ` as ${e.specialist.name} (${e.specialist.id})`}` +
        `${e.fanout === undefined ? ` at iteration ${e.iterations + 1}` : ""}: ${e.goal.objective}\n` +
        e.goal.success_criteria.map((c, i) => `  ${i + 1}. ${c}`).join("\n") + `\n  budget left: ${remaining(e.remaining)}` +
        (e.critic === undefined ? "" : `\n  critic: overrules the judge at confidence ≥ ${e.critic.threshold}`)
    case "iteration":
      return `[${e.iteration}] ${criteria(e.criteria_met)} · left: ${remaining(e.remaining)}\n      ${e.summary}`
    case "heartbeat":
      return `    heartbeat: iteration ${e.iteration} in progress · ${criteria(e.criteria_met)} · left: ${remaining(e.remaining)}`
    case "tool_call":
      return `    tool ${e.name} ${e.ok ? "->" : e.refused === true ? "not run," : "failed:"} ${e.output.split("\n")[0]?.slice(0, 160) ?? ""}`
    case "criteria_satisfied":
      return e.newly_met.map((c) => `    met criterion ${c.index + 1}: ${c.criterion}`).join("\n")
    case "judge_invalid":
      return `    judge gave no usable verdict (${e.error}); criteria unchanged`
    case "critic":
      return e.ok ? `    ${critique(e)}` : `    critic gave no usable verdict (${e.error}); skipped`
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
    case "fanout_started":
      return `Fan-out of ${e.children.length} ${e.children.length === 1 ? "child" : "children"}, at most ${e.max_parallel} at a time: ${e.template}` +
        (e.finished.length === 0 ? "" : `\n  ${e.finished.length} finished in an earlier session and will not run again`)
    case "fanout_child":
      return `  child [${e.index}] ${e.child_run_id} ${e.status}${e.halt_reason === null ? "" : `: ${e.halt_reason}`} · ${usage(e.usage)}`
    case "artifact":
      return `    artifact ${artifactText(e)}`
    case "healing":
      return `    healing ${e.node} (attempt ${e.attempt}, ${e.class}): ${describeAdjustment(e.adjustment)} → ${e.outcome}`
    case "node_started":
      return `  node ${e.node}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ""} started as ${e.child_run_id}`
    case "node_ended":
      return `  node ${e.node} ${e.status}${e.reason === null ? "" : `: ${e.reason}`}` +
        (e.telemetry === null ? "" : ` · ${dollars(e.telemetry.cost_usd)}, ${e.telemetry.input_tokens + e.telemetry.output_tokens} tokens, ${Math.round(e.telemetry.latency_ms)} ms`)
    case "breaker_opened":
      return `  provider ${e.provider} is circuit-broken for the rest of the mission: its calls go to the fallback`
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

/**
 * A conversation as `--messages` prints it, a message a line at `indent` (its text indented below): an
 * assistant turn's tool calls as `→ id name(arguments)`, a tool message with the id of the call it answers.
 */
export const messageLines = (messages: ReadonlyArray<ChatMessage>, indent: string): ReadonlyArray<string> =>
  messages.flatMap((m) => [
    `${indent}${m.role}${m.tool_call_id === undefined ? "" : ` (${m.tool_call_id})`}:${m.content === "" ? "" : ` ${m.content.replaceAll("\n", `\n${indent}  `)}`}`,
    ...(m.tool_calls ?? []).map((call) => `${indent}  → ${call.id} ${call.function.name}(${call.function.arguments})`)
  ])
