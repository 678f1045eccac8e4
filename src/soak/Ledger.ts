import { Effect } from "effect"
import type { BudgetUsage } from "../domain/Budget.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Step } from "../domain/Step.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"

/**
 * The books of a database, audited after runs were killed, drained and resumed: what the soak and the
 * chaos test hold every run to. Each check names a promise of the runtime:
 * - `ended_once`: a run ends once. Every `result` but the last is an end short of completion followed by a
 *   resuming session (a signal, a drain, a budget raised), and the checkpoint says what the last one said.
 * - `exact_usage`: no iteration lost or counted twice. Steps are 1..N with N the usage's iterations; each
 *   step's tokens and dollars are exactly its model calls' (counted from the step before, or from the
 *   session that wrote it when a killed session's spend was carried in at its start); the checkpoint's usage
 *   is the last step's or, when a session started after it, that session's, plus the calls the `result`
 *   lists of an iteration its end cut short.
 * - `none_running`: no run left `running` (meaningful once every runner has stopped).
 * - `events_gap_free`: a run's log is seq 0..M without a hole, and its `iteration` events are 1..N once each.
 * - `fanout_sum`: an ended fan-out's usage is exactly the sum of its children's.
 */
export type Check = "ended_once" | "exact_usage" | "none_running" | "events_gap_free" | "fanout_sum"

export const checks: ReadonlyArray<Check> = ["ended_once", "exact_usage", "none_running", "events_gap_free", "fanout_sum"]

export interface Finding {
  readonly check: Check
  readonly run_id: string
  readonly detail: string
}

export interface LedgerAudit {
  /** Runs audited (a corrupt checkpoint counts, and is a finding). */
  readonly runs: number
  /** Iterations of the audited runs that iterate themselves (a fan-out's or a mission's are its children's), as their checkpoints count them. */
  readonly iterations: number
  readonly findings: ReadonlyArray<Finding>
}

/** Dollars are sums of floats: equal within a billionth of a dollar, far below any price of a call. */
const sameDollars = (a: number, b: number) => Math.abs(a - b) < 1e-9

const money = (u: BudgetUsage) => `${u.tokens} tokens, $${u.dollars}, ${u.iterations} iterations`

const sameMoney = (a: BudgetUsage, b: BudgetUsage) => a.tokens === b.tokens && sameDollars(a.dollars, b.dollars) && a.iterations === b.iterations

/** A run's own books: its checkpoint, steps and event log. */
export const auditRun = (
  checkpoint: Checkpoint,
  steps: ReadonlyArray<Step>,
  events: ReadonlyArray<AutopilotEvent>
): ReadonlyArray<Finding> => {
  const runId = checkpoint.run_id
  const findings: Array<Finding> = []
  const found = (check: Check, detail: string) => findings.push({ check, run_id: runId, detail })

  if (checkpoint.status === "running") found("none_running", "left running")

  // A session that ended short of completion (halted or partial by a signal, a drain, its budget; failed)
  // may be resumed: its result is followed by a resuming session. A completed run never goes on, and no
  // result is followed by anything but a new session.
  const results = events.flatMap((e) => (e.kind === "result" ? [e] : []))
  results.slice(0, -1).forEach((r) => {
    const next = events[events.indexOf(r) + 1]
    if (r.status === "completed") found("ended_once", `ended completed at seq ${r.seq}, then went on`)
    else if (next?.kind !== "run_started" || !next.resuming) found("ended_once", `ended ${r.status} at seq ${r.seq}, then ${next?.kind ?? "nothing"} without a resume`)
  })
  const last = results[results.length - 1]
  if (checkpoint.status !== "running") {
    if (last === undefined) found("ended_once", `${checkpoint.status} without a result in its log`)
    else if (last.status !== checkpoint.status) found("ended_once", `its log ended ${last.status}, its checkpoint says ${checkpoint.status}`)
  }

  const hole = events.findIndex((e, i) => e.seq !== i)
  if (hole >= 0) found("events_gap_free", `seq ${events[hole]!.seq} where ${hole} was due`)
  const iterationEvents = events.flatMap((e) => (e.kind === "iteration" ? [e.iteration] : []))
  const total = checkpoint.usage.iterations
  if (checkpoint.fanout === undefined && checkpoint.mission === undefined) {
    if (iterationEvents.length !== total || iterationEvents.some((n, i) => n !== i + 1)) {
      found("events_gap_free", `iteration events ${summary(iterationEvents)}, expected 1..${total}`)
    }
    auditUsage(checkpoint, steps, events, found)
  }
  return findings
}

/** Steps and their money, against the sessions that wrote them. */
const auditUsage = (
  checkpoint: Checkpoint,
  steps: ReadonlyArray<Step>,
  events: ReadonlyArray<AutopilotEvent>,
  found: (check: Check, detail: string) => void
) => {
  const total = checkpoint.usage.iterations
  if (steps.length !== total || steps.some((s, i) => s.iteration !== i + 1)) {
    found("exact_usage", `steps ${summary(steps.map((s) => s.iteration))}, its usage counts ${total} iterations`)
    return
  }
  // Where each session started: the usage it carried in (a killed session's spend, from its heartbeats).
  const sessions = events.flatMap((e) => (e.kind === "run_started" ? [{ seq: e.seq, iterations: e.iterations, usage: e.usage }] : []))
  // What it carried in must be exactly the newest record before it: usage only grows, so the largest on
  // every axis of what the log said before (a step's iteration, a heartbeat, the last session's end). A
  // resume that added the heartbeat's spend to the checkpoint's, instead of taking the newer, shows here.
  let seen = { tokens: 0, dollars: 0, iterations: 0 }
  for (const e of events) {
    if (e.kind === "run_started" && !sameMoney(e.usage, seen as BudgetUsage)) {
      found("exact_usage", `the session at seq ${e.seq} carried in ${money(e.usage)}; the log before it says ${money(seen as BudgetUsage)}`)
    }
    if ("usage" in e) {
      seen = {
        tokens: Math.max(seen.tokens, e.usage.tokens),
        dollars: Math.max(seen.dollars, e.usage.dollars),
        iterations: Math.max(seen.iterations, e.usage.iterations)
      }
    }
  }
  const stepSeq = new Map(events.flatMap((e) => (e.kind === "iteration" ? [[e.iteration, e.seq] as const] : [])))
  let before: BudgetUsage | undefined
  for (const step of steps) {
    const seq = stepSeq.get(step.iteration) ?? Number.POSITIVE_INFINITY
    // The session that wrote the step: the last to start before its iteration event.
    const writer = sessions.filter((s) => s.seq < seq).pop()
    const base = writer !== undefined && writer.iterations === step.iteration - 1 ? writer.usage : before
    const calls = step.calls.reduce((sum, c) => ({ tokens: sum.tokens + c.input_tokens + c.output_tokens, dollars: sum.dollars + c.cost_usd }), {
      tokens: 0,
      dollars: 0
    })
    const tokens = step.usage.tokens - (base?.tokens ?? 0)
    const dollars = step.usage.dollars - (base?.dollars ?? 0)
    if (tokens !== calls.tokens || !sameDollars(dollars, calls.dollars)) {
      found("exact_usage", `iteration ${step.iteration} added ${tokens} tokens and $${dollars}; its model calls spent ${calls.tokens} tokens and $${calls.dollars}`)
    }
    before = step.usage
  }
  const lastStep = steps[steps.length - 1]
  const lastStepSeq = lastStep === undefined ? 0 : (stepSeq.get(lastStep.iteration) ?? 0)
  const lastSession = sessions[sessions.length - 1]
  const settled = lastSession !== undefined && lastSession.seq > lastStepSeq ? lastSession.usage : lastStep?.usage
  // An end that cut an iteration short lists the calls it had charged: they count, itemized, in no step.
  const lastResult = events.flatMap((e) => (e.kind === "result" ? [e] : [])).pop()
  const cut = lastResult !== undefined && lastResult.seq > Math.max(lastStepSeq, lastSession?.seq ?? 0) ? (lastResult.unfinished_calls ?? []) : []
  const expected = settled === undefined ? undefined : {
    ...settled,
    tokens: settled.tokens + cut.reduce((n, c) => n + c.input_tokens + c.output_tokens, 0),
    dollars: settled.dollars + cut.reduce((n, c) => n + c.cost_usd, 0)
  }
  if (checkpoint.status !== "running" && expected !== undefined && !sameMoney(checkpoint.usage, expected)) {
    found("exact_usage", `checkpoint counts ${money(checkpoint.usage)}; its steps, sessions and unfinished calls ${money(expected)}`)
  }
}

/** 1..N as a range, anything else as its first numbers: enough to see a hole or a repeat. */
const summary = (ns: ReadonlyArray<number>) =>
  ns.length === 0 ? "none" : ns.every((n, i) => n === i + 1) ? `1..${ns.length}` : `[${ns.slice(0, 12).join(", ")}${ns.length > 12 ? ", …" : ""}]`

/** An ended fan-out against its children: its usage is theirs, summed. */
export const auditFanout = (
  parent: Checkpoint,
  events: ReadonlyArray<AutopilotEvent>,
  children: ReadonlyMap<string, Checkpoint>
): ReadonlyArray<Finding> => {
  if (parent.fanout === undefined || parent.status === "running") return []
  const started = events.flatMap((e) => (e.kind === "fanout_started" ? [e] : [])).pop()
  if (started === undefined) return []
  const ids = started.children.map((c) => c.run_id)
  const ran = ids.flatMap((id) => {
    const child = children.get(id)
    return child === undefined ? [] : [child.usage]
  })
  const sum = ran.reduce((a, u) => ({ tokens: a.tokens + u.tokens, dollars: a.dollars + u.dollars, iterations: a.iterations + u.iterations }), {
    tokens: 0,
    dollars: 0,
    iterations: 0
  })
  return sum.tokens === parent.usage.tokens && sameDollars(sum.dollars, parent.usage.dollars) && sum.iterations === parent.usage.iterations
    ? []
    : [{
      check: "fanout_sum",
      run_id: parent.run_id,
      detail: `fan-out counts ${money(parent.usage)}; its ${ran.length} children ${sum.tokens} tokens, $${sum.dollars}, ${sum.iterations} iterations`
    }]
}

/** Audits every run in the database, or the given ones. */
export const audit = (options: { readonly runIds?: ReadonlyArray<string> } = {}): Effect.Effect<
  LedgerAudit,
  PersistenceError,
  RunStore | StepStore | EventStore
> =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const steps = yield* StepStore
    const events = yield* EventStore
    const wanted = options.runIds === undefined ? undefined : new Set(options.runIds)
    const listed = (yield* runs.list()).filter((r) => wanted === undefined || wanted.has(r._tag === "Found" ? r.checkpoint.run_id : r.run_id))
    const findings: Array<Finding> = []
    const found = new Map<string, Checkpoint>()
    for (const r of listed) {
      if (r._tag === "Corrupt") findings.push({ check: "ended_once", run_id: r.run_id, detail: `checkpoint does not decode: ${r.error}` })
      else found.set(r.checkpoint.run_id, r.checkpoint)
    }
    const logs = new Map<string, ReadonlyArray<AutopilotEvent>>()
    yield* Effect.forEach(found.values(), (checkpoint) =>
      Effect.gen(function*() {
        const log = (yield* events.after(checkpoint.run_id, 0)).map((e) => e.event)
        // Only a fan-out's log is wanted again (for its children): a day's soak audits tens of thousands of runs.
        if (checkpoint.fanout !== undefined) logs.set(checkpoint.run_id, log)
        const own = checkpoint.fanout === undefined && checkpoint.mission === undefined ? yield* steps.recent(checkpoint.run_id, -1) : []
        findings.push(...auditRun(checkpoint, own, log))
      }), { discard: true })
    for (const checkpoint of found.values()) {
      if (checkpoint.fanout === undefined) continue
      const children = new Map<string, Checkpoint>()
      const started = (logs.get(checkpoint.run_id) ?? []).flatMap((e) => (e.kind === "fanout_started" ? e.children : []))
      for (const child of started) {
        const known = found.get(child.run_id) ?? (yield* runs.load(child.run_id).pipe(Effect.map((l) => (l._tag === "Found" ? l.checkpoint : undefined))))
        if (known !== undefined) children.set(child.run_id, known)
      }
      findings.push(...auditFanout(checkpoint, logs.get(checkpoint.run_id) ?? [], children))
    }
    const own = [...found.values()].filter((c) => c.fanout === undefined && c.mission === undefined)
    return { runs: listed.length, iterations: own.reduce((n, c) => n + c.usage.iterations, 0), findings }
  })
