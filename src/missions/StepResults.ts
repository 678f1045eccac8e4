import { Effect, Option } from "effect"
import { isInterrupted } from "../domain/Checkpoint.js"
import type { PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Adjustment, FailureClass, Outcome } from "../domain/Healing.js"
import type { MissionRecord } from "../domain/MissionRecord.js"
import type { NodeTelemetry } from "../domain/MissionRun.js"
import type { RunStatus } from "../domain/RunStatus.js"
import type { ChatMessage } from "../llm/Llm.js"
import { messagesOf } from "../runtime/Transcript.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import * as NodeWork from "./NodeWork.js"

/**
 * What a person sees of a mission's run: every node attempt's StepResult (its full answer, its full
 * conversation, its telemetry), read back from the mission run's own events (which child run is which
 * node attempt, how each ended, what healing changed) and each child run's checkpoint and steps.
 */

/**
 * How an attempt stands: ended (`succeeded`, `failed`), its run still going (`running`), or started and
 * not ended (`unfinished`: halted, stopped, or its process cut off; running the mission again continues it).
 */
export type AttemptStatus = "succeeded" | "failed" | "running" | "unfinished"

/** One attempt of one node: a child run of the mission's run. */
export interface StepResult {
  /** The node's key: its id, or `<item>.<id>` in a batch. */
  readonly node: string
  /** 1 for its first run, then 2, 3… for healing attempts. */
  readonly attempt: number
  readonly run_id: string
  readonly status: AttemptStatus
  /** Why it failed, as the driver recorded it; null otherwise. */
  readonly reason: string | null
  /** The attempt's full answer (its checkpoint's output). */
  readonly output: string
  /** The full conversation, per iteration: the act messages with the answer, then the judge's. */
  readonly messages: ReadonlyArray<ChatMessage>
  readonly telemetry: NodeTelemetry
  /** A healing attempt: the class it healed, what it changed, and how it ended (null while it has not). */
  readonly healing?: { readonly class: FailureClass; readonly adjustment: Adjustment; readonly outcome: Outcome | null }
}

/** A node of the mission (per item for a batch), in graph order, with its attempts in order. */
export interface NodeSteps {
  readonly node: string
  /** `not_run`: nothing has started it (yet); skipped and not-run nodes have no attempts. */
  readonly status: "succeeded" | "failed" | "skipped" | "running" | "unfinished" | "not_run"
  readonly reason: string | null
  readonly attempts: ReadonlyArray<StepResult>
}

/** A node that healing re-ran: its attempts, each healing attempt's class and adjustment, and how it ended. */
export interface HealedNode {
  readonly node: string
  readonly attempts: number
  readonly healing: ReadonlyArray<{ readonly attempt: number; readonly class: FailureClass; readonly adjustment: Adjustment; readonly outcome: Outcome | null }>
  /** `healed` when its last attempt succeeded, `failed` when healing gave up, `pending` while it goes on. */
  readonly outcome: Outcome | "pending"
}

/** The mission's run as `missions show` sums it up. */
export interface RunSummary {
  readonly run_id: string
  /** `corrupt` when its checkpoint does not decode (its events still tell the nodes' story). */
  readonly status: RunStatus | "corrupt"
  /** Running in no process any more (kill -9, a crash): running the mission again resumes it. */
  readonly interrupted: boolean
  readonly halt_reason: string | null
  /** Everything the mission's run spent: its nodes and its own check of the criteria. */
  readonly cost_usd: number
}

export interface MissionSteps {
  /** Null for a mission never run; then there are no nodes either. */
  readonly run: RunSummary | null
  readonly nodes: ReadonlyArray<NodeSteps>
  readonly healed: ReadonlyArray<HealedNode>
  /** What healing cost: the telemetry of every failed attempt that healing re-ran, summed. */
  readonly healing_cost: NodeTelemetry
}

/** A mission never run. */
export const none: MissionSteps = { run: null, nodes: [], healed: [], healing_cost: NodeWork.sumTelemetry([]) }

/**
 * Every node's attempts, in graph order, as the mission's run (`runId`: its own by default, or one of its
 * firings) and its child runs recorded them.
 */
export const read = (mission: MissionRecord, runId: string = mission.mission_id): Effect.Effect<MissionSteps, PersistenceError, RunStore | StepStore | EventStore> =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const stepStore = yield* StepStore
    const eventStore = yield* EventStore
    const loaded = yield* runs.load(runId)
    const events = (yield* eventStore.after(runId, 0)).map((stored) => stored.event)
    if (loaded._tag === "Missing" && events.length === 0) return none
    const run: RunSummary = loaded._tag === "Found"
      ? {
        run_id: runId,
        status: loaded.checkpoint.status,
        interrupted: isInterrupted(loaded.checkpoint),
        halt_reason: loaded.checkpoint.halt_reason,
        cost_usd: loaded.checkpoint.usage.dollars
      }
      : {
        run_id: runId,
        status: "corrupt",
        interrupted: false,
        halt_reason: null,
        cost_usd: Option.match(yield* eventStore.lastUsage(runId), { onNone: () => 0, onSome: (u) => u.dollars })
      }
    const going = run.status === "running" && !run.interrupted

    const attempt = (started: Extract<AutopilotEvent, { kind: "node_started" }>) =>
      Effect.gen(function*() {
        const child = yield* runs.load(started.child_run_id)
        const steps = yield* stepStore.recent(started.child_run_id, -1)
        const end = events.find((e): e is Extract<AutopilotEvent, { kind: "node_ended" }> =>
          e.kind === "node_ended" && e.node === started.node && e.attempt === started.attempt)
        const healed = events.find((e): e is Extract<AutopilotEvent, { kind: "healing" }> =>
          e.kind === "healing" && e.node === started.node && e.attempt === started.attempt - 1)
        // A child whose checkpoint is missing (not written yet) or corrupt has no goal to rebuild its prompts from.
        const checkpoint = child._tag === "Found" ? child.checkpoint : undefined
        const status: AttemptStatus = end !== undefined
          ? (end.status === "succeeded" ? "succeeded" : "failed")
          : going && (checkpoint === undefined || !isInterrupted(checkpoint))
          ? "running"
          : "unfinished"
        return {
          node: started.node,
          attempt: started.attempt,
          run_id: started.child_run_id,
          status,
          reason: end?.reason ?? null,
          output: checkpoint?.output ?? "",
          messages: checkpoint === undefined
            ? []
            : messagesOf(checkpoint.goal, steps, checkpoint.specialist).flatMap((m) => [...m.act, ...m.judge]),
          telemetry: NodeWork.telemetryOf(steps),
          ...(started.healing === undefined ? {} : { healing: { ...started.healing, outcome: healed?.outcome ?? null } })
        } satisfies StepResult
      })

    const keys = NodeWork.instancesOf(mission.blueprint, mission.slots).flatMap(({ instance }) =>
      mission.blueprint.graph.nodes.map((node) => NodeWork.keyOf(node.id, instance)))
    const nodes = yield* Effect.forEach(keys, (key) =>
      Effect.gen(function*() {
        // A resume may announce nothing new for an attempt it continues: each attempt once, in order.
        const started = [...new Map(events.flatMap((e) => (e.kind === "node_started" && e.node === key ? [[e.attempt, e] as const] : []))).values()]
          .sort((a, b) => a.attempt - b.attempt)
        const attempts = yield* Effect.forEach(started, attempt)
        const end = events.filter((e): e is Extract<AutopilotEvent, { kind: "node_ended" }> => e.kind === "node_ended" && e.node === key).at(-1)
        const last = attempts.at(-1)
        const status: NodeSteps["status"] = last !== undefined && last.status !== "succeeded" && last.status !== "failed"
          ? last.status
          : end?.status ?? "not_run"
        return { node: key, status, reason: end?.reason ?? null, attempts } satisfies NodeSteps
      }))

    const healed = nodes.flatMap((n): ReadonlyArray<HealedNode> => {
      const healing = n.attempts.flatMap((a) => (a.healing === undefined ? [] : [{ attempt: a.attempt - 1, ...a.healing }]))
      if (healing.length === 0) return []
      const outcome = n.status === "succeeded" ? "healed" : n.status === "failed" ? "failed" : "pending"
      return [{ node: n.node, attempts: n.attempts.length, healing, outcome }]
    })
    // Every attempt a later one re-ran: what the failures cost before healing got past them (or gave up).
    const rerun = nodes.flatMap((n) => n.attempts.slice(0, -1).map((a) => a.telemetry))
    return { run, nodes, healed, healing_cost: NodeWork.sumTelemetry(rerun) } satisfies MissionSteps
  })
