import { Data, Duration } from "effect"
import type { LlmError } from "../domain/Errors.js"
import { type Adjustment, type Attempt, defaultPolicy, type FailureClass, type HealingPolicy, type Rung } from "../domain/Healing.js"
import { dollars, plural } from "../domain/Quantity.js"
import type { ToolCallRecord } from "../domain/Step.js"
import { backoffBase, maxAttempts } from "../runtime/ModelCalls.js"

/**
 * Healing's decisions, as pure functions: what class of failure a node attempt ended with (`classify`),
 * and whether to re-run the node and with which adjustment (`decide`). The mission driver calls them
 * when a node fails, applies the adjustment, re-runs only that node and records a `healing` event; the
 * events are the history the next decision reads, so a resumed mission keeps its counts.
 */

/**
 * How a node attempt can end that healing looks at:
 * - `ModelFailed`: a model call failed after the runtime's own retries (`ModelCalls.retrySchedule`);
 * - `TimedOut`: the node ran past its time;
 * - `InvalidOutput`: the answer did not decode with the node's output Schema, `error` saying why;
 * - `Answered`: the node's answer, for `classify` to tell whether it is empty or a refusal;
 * - `Spent`: what the node cost against what it was estimated to cost;
 * - `ToolCalls`: the node's tool calls, in order, for `classify` to find a loop of failing ones.
 */
export type NodeFailure = Data.TaggedEnum<{
  ModelFailed: { readonly node: string; readonly error: LlmError }
  TimedOut: { readonly node: string; readonly after_ms: number }
  InvalidOutput: { readonly node: string; readonly error: string }
  Answered: { readonly node: string; readonly answer: string }
  Spent: { readonly node: string; readonly cost_usd: number; readonly estimate_usd: number }
  ToolCalls: { readonly node: string; readonly calls: ReadonlyArray<ToolCallRecord> }
}>
export const NodeFailure = Data.taggedEnum<NodeFailure>()

/** What healing does about a failure: re-run the node with `adjustment`, or give up, saying why. */
export type Decision = Data.TaggedEnum<{
  /** `attempt`: the node's healing attempt this is, from 1. */
  Retry: { readonly adjustment: Adjustment; readonly attempt: number; readonly class: FailureClass }
  GiveUp: { readonly reason: string }
}>
export const Decision = Data.taggedEnum<Decision>()

const rateLimited = /\b429\b|rate[ _-]?limit|too many requests/i
const timedOut = /timed out|timeout/i

/**
 * Openings of a refusal. Only a short answer is read as one: a long answer that says "I can't" somewhere
 * answered something.
 */
const refusal =
  /^(i'?m sorry,? (but )?)?(i|we) (can(no|')t|cannot|am unable to|'m unable to|won'?t|will not) (help|assist|comply|provide|do that|answer|fulfil)|^sorry,? (but )?i can(no|')t/i
const refusalLength = 300

/** The trailing failed tool calls: a loop is that many, all failed, at the end of what the node did. */
const trailingFailures = (calls: ReadonlyArray<ToolCallRecord>) => {
  let n = 0
  for (let i = calls.length - 1; i >= 0 && !calls[i]!.ok; i--) n++
  return n
}

/**
 * The class of what a node attempt ended with, or undefined when healing has nothing to recover: a
 * model error that is permanent (a bad key, a bad request) or a proxy's spent budget (the mission halts
 * on it as on its own), an answer that is neither empty nor a refusal, a spend within `cost_spike_factor`
 * times the estimate, tool calls that do not end in `tool_error_loop_after` failures.
 *
 * A model error is a rate limit when the provider said when to retry (Retry-After) or its message says
 * 429 or rate limit; a timeout when its message says it timed out; else transient.
 */
export const classify = (failure: NodeFailure, policy: HealingPolicy = defaultPolicy): FailureClass | undefined => {
  switch (failure._tag) {
    case "ModelFailed": {
      const { error } = failure
      if (error.budget_exhausted === true || !error.transient) return undefined
      if (error.retry_after_ms !== undefined || rateLimited.test(error.message)) return "rate_limit"
      return timedOut.test(error.message) ? "timeout" : "transient"
    }
    case "TimedOut":
      return "timeout"
    case "InvalidOutput":
      return "schema_violation"
    case "Answered": {
      const answer = failure.answer.trim()
      return answer === "" || (answer.length <= refusalLength && refusal.test(answer)) ? "empty_answer" : undefined
    }
    case "Spent":
      return failure.estimate_usd > 0 && failure.cost_usd > policy.cost_spike_factor * failure.estimate_usd ? "cost_spike" : undefined
    case "ToolCalls":
      return trailingFailures(failure.calls) >= policy.tool_error_loop_after ? "tool_error_loop" : undefined
  }
}

const oneLine = (text: string, max = 200) => {
  const line = text.replace(/\s+/g, " ").trim()
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

/** What went wrong, in words: the validation error as it is; a description for every other failure. */
export const problemOf = (failure: NodeFailure): string => {
  switch (failure._tag) {
    case "ModelFailed":
      return failure.error.budget_exhausted === true
        ? `the provider's spend budget is exhausted (${oneLine(failure.error.message)})`
        : `the model call failed${failure.error.transient ? "" : " for good"}: ${oneLine(failure.error.message)}`
    case "TimedOut":
      return `it ran past its time (${failure.after_ms} ms)`
    case "InvalidOutput":
      return failure.error
    case "Answered":
      return failure.answer.trim() === "" ? "the answer was empty" : `the answer was a refusal: ${JSON.stringify(oneLine(failure.answer, 120))}`
    case "Spent":
      return `it spent ${dollars(failure.cost_usd)} against an estimate of ${dollars(failure.estimate_usd)}`
    case "ToolCalls": {
      const last = failure.calls.at(-1)
      return `its last ${plural(trailingFailures(failure.calls), "tool call")} failed${last === undefined ? "" : ` (last: ${last.name}: ${oneLine(last.output, 120)})`}`
    }
  }
}

/**
 * The wait of the node's nth backoff: the runtime's schedule continued, since the call was already
 * retried with it (250 ms doubling over `maxAttempts` calls), and never shorter than the provider's
 * Retry-After.
 */
export const backoffDelay = (n: number, retryAfterMs: number | undefined): number =>
  Math.max(Duration.toMillis(Duration.times(backoffBase, 2 ** (maxAttempts - 1 + n - 1))), retryAfterMs ?? 0)

const adjustmentOf = (rung: Rung, failure: NodeFailure, backoffs: number): Adjustment => {
  switch (rung.kind) {
    case "backoff":
      return {
        kind: "backoff",
        delay_ms: backoffDelay(backoffs + 1, failure._tag === "ModelFailed" ? failure.error.retry_after_ms : undefined)
      }
    case "stricter_output":
      return { kind: "stricter_output", validation_error: problemOf(failure) }
    default:
      return rung
  }
}

/**
 * Whether to re-run `failure.node`, given the mission's healing attempts so far (`history`, oldest
 * first, as its `healing` events record them). The rules, in order:
 * - a failure `classify` finds nothing to heal in gives up, saying what it was;
 * - a node that has made `max_attempts_per_node` attempts gives up, and so does every node once the
 *   mission has made `max_attempts_per_mission`;
 * - otherwise the node's nth failure of a class is retried with the nth rung of the class's ladder, and
 *   once the ladder is spent the node gives up: each rung is a different remedy, and repeating the last
 *   (another provider, again) mostly spends budget; a policy that wants a rung repeated lists it twice.
 * Each class walks its own ladder (a node that timed out and then answered badly starts the schema
 * ladder at its first rung); the per-node limit bounds them together. A give-up's reason names the node,
 * the class and the limit reached.
 */
export const decide = (policy: HealingPolicy, history: ReadonlyArray<Attempt>, failure: NodeFailure): Decision => {
  const { node } = failure
  const failureClass = classify(failure, policy)
  if (failureClass === undefined) {
    return Decision.GiveUp({ reason: `node ${node} failed and healing cannot recover it: ${problemOf(failure)}` })
  }
  const ofNode = history.filter((a) => a.node === node)
  const failed = `node ${node} failed (${failureClass}: ${oneLine(problemOf(failure), 120)})`
  if (ofNode.length >= policy.max_attempts_per_node) {
    return Decision.GiveUp({
      reason: `${failed} after ${ofNode.length} healing attempts, the limit per node (max_attempts_per_node ${policy.max_attempts_per_node})`
    })
  }
  if (history.length >= policy.max_attempts_per_mission) {
    return Decision.GiveUp({
      reason: `${failed}, and the mission has made ${history.length} healing attempts, its limit (max_attempts_per_mission ${policy.max_attempts_per_mission})`
    })
  }
  const ladder = policy.ladders[failureClass]
  const rung = ladder[ofNode.filter((a) => a.class === failureClass).length]
  if (rung === undefined) {
    return Decision.GiveUp({
      reason: ladder.length === 0
        ? `${failed}, and the ${failureClass} ladder is empty: that class is never retried`
        : `${failed}, and every rung of the ${failureClass} ladder (${ladder.map((r) => r.kind).join(", ")}) has been tried`
    })
  }
  const backoffs = ofNode.filter((a) => a.adjustment.kind === "backoff").length
  return Decision.Retry({ adjustment: adjustmentOf(rung, failure, backoffs), attempt: ofNode.length + 1, class: failureClass })
}
