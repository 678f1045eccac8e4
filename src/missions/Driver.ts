import { Cause, Deferred, Duration, Effect, Either, Option, Queue, Record, Ref } from "effect"
import * as Slices from "../budget/Slices.js"
import type * as Blueprint from "../domain/Blueprint.js"
import { type Axis, BudgetPolicy, BudgetUsage, haltReasonFor } from "../domain/Budget.js"
import type { LlmError, PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent, EventBody } from "../domain/Event.js"
import type { ToolCallRecord } from "../domain/Step.js"
import { Goal } from "../domain/Goal.js"
import { type Adjustment, type Attempt, type HealingPolicy, policyOf, type Rung } from "../domain/Healing.js"
import type { MissionRecord } from "../domain/MissionRecord.js"
import type { MissionRef, NodeTelemetry } from "../domain/MissionRun.js"
import { statusOf } from "../domain/RunStatus.js"
import type { Tier } from "../domain/Tier.js"
import { Llm } from "../llm/Llm.js"
import * as HaltControl from "../runtime/HaltControl.js"
import * as Mission from "../runtime/Mission.js"
import * as ModelCalls from "../runtime/ModelCalls.js"
import { judgeMessages, parseVerdict } from "../runtime/Prompts.js"
import * as Session from "../runtime/Session.js"
import type { Specialist } from "../specialists/Specialist.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import * as GraphPlan from "./GraphPlan.js"
import * as Healing from "./Healing.js"
import type * as NodeLlm from "./NodeLlm.js"
import * as NodeWork from "./NodeWork.js"

/**
 * Drives a mission's agent graph as one run (the mission's run: its id is the mission's, or a firing's for a
 * scheduled mission, `MissionRun.runIdOf`): every node attempt is a child run of the runtime core
 * (`Mission.run`), checkpointed as any run is, its budget a slice of the mission's (`Slices`, the
 * fan-out's rules). `GraphPlan` says which nodes start, `Healing` what to do when one fails; this module
 * only runs, records and waits. Everything a resume needs is in the mission
 * run's own events: which node attempts started (with their healing adjustment), which ended and how.
 */

/** How one node attempt calls the model, as healing adjusts it: `NodeLlm`'s parameters. */
export type AttemptSettings = NodeLlm.AttemptParameters

/** The model calls of node attempts: the mission's model, its fallback provider and its circuit breaker. */
export interface AttemptModels {
  readonly forAttempt: (settings: AttemptSettings) => Effect.Effect<{
    readonly llm: Llm["Type"]
    /** The last model error the attempt's calls saw: what healing classifies when the attempt failed. */
    readonly lastError: Effect.Effect<Option.Option<LlmError>>
  }>
  /** Whether a fallback provider is configured: without one, the `fallback_provider` rung is skipped. */
  readonly hasFallback: boolean
  /** Another model of `tier` than `current`, for the `fallback_model` rung. */
  readonly fallbackModel: (tier: Tier, current: string | undefined) => Option.Option<string>
  /** The mission's circuit breaker: which providers it has opened, and opening one (on a resume). */
  readonly breaker: {
    readonly opened: Effect.Effect<ReadonlyArray<string>>
    readonly open: (provider: string) => Effect.Effect<void>
  }
}

export interface DriveOptions extends Omit<Mission.MissionOptions, "goal" | "onDelta" | "specialist" | "policy"> {
  readonly mission: MissionRecord
  readonly ref: MissionRef
  /** The specialists nodes may name, by id. */
  readonly specialists: ReadonlyMap<string, Specialist>
  readonly models: AttemptModels
  /** Receives every node run's events once durable (the mission run's own go to `onEvent`). */
  readonly onChildEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
}

/** How one node ended, as `missions show --steps` lists it with its runs. */
export interface NodeResult {
  readonly node: string
  readonly status: "succeeded" | "failed" | "skipped" | "not_run"
  readonly attempts: number
  readonly reason: string | null
  readonly telemetry: NodeTelemetry
}

export interface DriveResult extends Mission.MissionResult {
  readonly nodes: ReadonlyArray<NodeResult>
}

/** How a unit's attempts ended, for the scheduling loop. */
type UnitEnd =
  | { readonly _tag: "Succeeded"; readonly value: unknown; readonly text: string }
  | { readonly _tag: "Failed"; readonly reason: string }
  /** Not finished: a halt (stop, signal), its budget, or no budget to start it; a resume continues it. */
  | { readonly _tag: "Unfinished"; readonly reason: string; readonly axis?: Axis | undefined }

/** What a unit continues from: its attempt, and the healing adjustments so far (oldest first). */
interface UnitStart {
  readonly attempt: number
  readonly adjustments: ReadonlyArray<Adjustment>
  readonly resume: boolean
}

const noTelemetry: NodeTelemetry = { model_used: "", input_tokens: 0, output_tokens: 0, cost_usd: 0, latency_ms: 0 }

/** The settings of an attempt after `adjustments`: each later rung adds to the earlier ones. */
const settingsOf = (
  blueprint: string,
  node: Blueprint.Node,
  key: string,
  adjustments: ReadonlyArray<Adjustment>
): AttemptSettings & { readonly keep: number; readonly stricter: Adjustment | undefined } => {
  let settings: AttemptSettings & { keep: number; stricter: Adjustment | undefined } = {
    node: key,
    blueprint,
    provider: "primary",
    keep: 1,
    stricter: undefined,
    ...(node.output_schema === undefined ? {} : { output_schema: { name: node.id, schema: node.output_schema } })
  }
  for (const a of adjustments) {
    if (a.kind === "lower_temperature") settings = { ...settings, temperature: a.temperature }
    if (a.kind === "trim_context") settings = { ...settings, keep: Math.min(settings.keep, a.keep) }
    if (a.kind === "stricter_output") settings = { ...settings, stricter: a }
    if (a.kind === "fallback_provider") settings = { ...settings, provider: "fallback" }
    if (a.kind === "fallback_model" && a.model !== undefined) settings = { ...settings, model: a.model }
  }
  return settings
}

/** What a node attempt's run ended with, in healing's terms. */
type AttemptEnd =
  | { readonly _tag: "Succeeded"; readonly value: unknown; readonly text: string }
  | { readonly _tag: "Failed"; readonly failure: Healing.NodeFailure }
  | { readonly _tag: "Unhealable"; readonly reason: string }
  | { readonly _tag: "Halted"; readonly reason: string }

/**
 * Judges how a node attempt's run ended. Completed: its answer, decoded by the node's output Schema (a
 * mismatch is a failure), and for a node without one, not empty nor a refusal. Failed: the model error
 * its calls last saw, else nothing healing can recover. Halted or partial: the mission's halt; else its
 * own budget, which is a cost spike when it reached the spike limit, a tool error loop when its last tool
 * calls all failed, and otherwise a halt of the mission (a resume continues it).
 */
export const judgeAttempt = (
  unit: NodeWork.Unit,
  result: Mission.MissionResult,
  facts: {
    readonly halted: boolean
    readonly spiked: boolean
    readonly spentUsd: number
    readonly estimateUsd: number
    readonly lastError: Option.Option<LlmError>
    readonly toolCalls: ReadonlyArray<ToolCallRecord>
  },
  policy: HealingPolicy
): AttemptEnd => {
  const failed = (failure: Healing.NodeFailure): AttemptEnd => ({ _tag: "Failed", failure })
  const node = unit.key
  switch (result.status) {
    case "completed": {
      const value = NodeWork.outputOf(unit.node, result.output)
      if (Either.isLeft(value)) return failed(Healing.NodeFailure.InvalidOutput({ node, error: value.left }))
      const answered = Healing.NodeFailure.Answered({ node, answer: result.output })
      if (unit.node.output_schema === undefined && Healing.classify(answered, policy) !== undefined) return failed(answered)
      return { _tag: "Succeeded", value: value.right, text: NodeWork.outputText(value.right) }
    }
    case "failed":
      return Option.match(facts.lastError, {
        onNone: () => ({ _tag: "Unhealable", reason: `node ${node} failed: ${result.halt_reason}` }),
        onSome: (error) => failed(Healing.NodeFailure.ModelFailed({ node, error }))
      })
    default: {
      if (facts.halted) return { _tag: "Halted", reason: result.halt_reason ?? "halted" }
      if (facts.spiked) return failed(Healing.NodeFailure.Spent({ node, cost_usd: facts.spentUsd, estimate_usd: facts.estimateUsd }))
      const loop = Healing.NodeFailure.ToolCalls({ node, calls: facts.toolCalls })
      if (Healing.classify(loop, policy) !== undefined) return failed(loop)
      return { _tag: "Halted", reason: `node ${node} did not finish within its budget: ${result.halt_reason}` }
    }
  }
}

/**
 * What earlier sessions of a mission's run did, from its own log: each node's latest attempt started and
 * ended, the healing attempts so far (oldest first) and each node's adjustments, every node run, the
 * providers the breaker opened, and each node's telemetry per ended attempt.
 */
export const replay = (logged: ReadonlyArray<AutopilotEvent>) => {
  const started = new Map<string, { readonly attempt: number }>()
  const ended = new Map<string, Extract<AutopilotEvent, { kind: "node_ended" }>>()
  const history: Array<Attempt> = []
  const adjustmentsOf = new Map<string, Array<Adjustment>>()
  const children = new Set<string>()
  const broken: Array<string> = []
  const telemetry = new Map<string, Array<NodeTelemetry>>()
  for (const e of logged) {
    if (e.kind === "node_started") {
      started.set(e.node, { attempt: e.attempt })
      children.add(e.child_run_id)
      if (e.healing !== undefined) {
        history.push({ node: e.node, attempt: e.attempt - 1, class: e.healing.class, adjustment: e.healing.adjustment })
        adjustmentsOf.set(e.node, [...(adjustmentsOf.get(e.node) ?? []), e.healing.adjustment])
      }
    }
    if (e.kind === "breaker_opened" && !broken.includes(e.provider)) broken.push(e.provider)
    if (e.kind === "node_ended") {
      ended.set(e.node, e)
      if (e.telemetry !== null) telemetry.set(e.node, [...(telemetry.get(e.node) ?? []), e.telemetry])
    }
  }
  return { started, ended, history, adjustmentsOf, children, broken, telemetry }
}

/**
 * The mission's own criteria, judged once on what its graph produced: completed only when every one is
 * met. The call goes through the mission's breaker, so a provider broken during the graph is not called.
 */
const checkCriteria = (session: Session.Session, models: AttemptModels, output: string) =>
  Effect.gen(function*() {
    const { budget, goal, journal, runId } = session
    const judge = yield* models.forAttempt({ node: "criteria", provider: "primary" })
    const calls = yield* ModelCalls.make({ runId, criteria: goal.success_criteria.length, model: session.llm?.model, budget, journal }).pipe(
      Effect.provideService(Llm, judge.llm)
    )
    const before = goal.success_criteria.map(() => false)
    const { response } = yield* calls.call({
      purpose: "judge",
      messages: judgeMessages({ goal, criteriaMet: before, answer: output, toolResults: [] }),
      tools: []
    }, (yield* budget.usage).iterations + 1)
    const verdict = parseVerdict(response.content, goal.success_criteria.length)
    const met = Either.match(verdict, { onLeft: () => before, onRight: (v) => v.criteria_met.map((m) => m === true) })
    if (met.every(Boolean)) return { criteria_met: met, outcome: { status: "completed", reason: null } satisfies Session.Outcome }
    const unmet = goal.success_criteria.filter((_, i) => !met[i]).map((c) => JSON.stringify(c)).join(", ")
    const why = Either.isLeft(verdict) ? `the judge gave no usable verdict (${verdict.left})` : `criteria not met: ${unmet}`
    return {
      criteria_met: met,
      outcome: { status: statusOf(met), reason: `every node on the taken path succeeded, but ${why}` } satisfies Session.Outcome
    }
  })

/** The mission's graph, run to its end (or a halt), then its criteria judged on what the graph produced. */
export const run = (options: DriveOptions): Effect.Effect<DriveResult, Mission.MissionError, Mission.MissionContext> =>
  Effect.scoped(Effect.gen(function*() {
    const { mission, models } = options
    const { blueprint } = mission
    const graph = blueprint.graph
    const policy = policyOf(blueprint)
    const { session } = yield* Mission.open({
      ...options,
      goal: new Goal({ objective: mission.goal, success_criteria: blueprint.success_criteria }),
      policy: { ...blueprint.budget },
      mission: options.ref
    })
    const { budget, journal, progress, runId } = session
    const instances = NodeWork.instancesOf(blueprint, mission.slots)
    const units = instances.flatMap(({ instance }) =>
      graph.nodes.map((node): NodeWork.Unit => ({ key: NodeWork.keyOf(node.id, instance), node, instance })))
    const unitByKey = new Map(units.map((u) => [u.key, u]))
    const results = new Map<string, { status: NodeResult["status"]; attempts: number; reason: string | null; telemetry: Array<NodeTelemetry> }>(
      units.map((u) => [u.key, { status: "not_run", attempts: 0, reason: null, telemetry: [] }])
    )

    const work = Effect.gen(function*() {
      const runs = yield* RunStore
      const steps = yield* StepStore
      const events = yield* EventStore

      // What earlier sessions of this run did, from its own log.
      const logged = options.resume ? (yield* events.after(runId, 0)).map((stored) => stored.event) : []
      const { adjustmentsOf, broken, children, ended, history, started, telemetry } = replay(logged)
      for (const provider of broken) yield* models.breaker.open(provider)
      for (const [key, spent] of telemetry) results.get(key)?.telemetry.push(...spent)

      // The mission's use is its wall clock plus what every node run spent, as their checkpoints say.
      const spentOf = (childId: string) =>
        Effect.map(runs.load(childId), (loaded) => (loaded._tag === "Found" ? loaded.checkpoint.usage : BudgetUsage.zero))
      yield* Slices.chargeChildren(budget, yield* Effect.forEach([...children], spentOf))
      yield* Effect.forkScoped(Session.heartbeat(session, options.heartbeatInterval ?? "30 seconds"))

      /**
       * What a node is expected to cost: the mean of what the mission's finished nodes cost. (A slice is
       * an equal share of what is left, so the share itself could never be exceeded k times over.) The
       * first nodes have no estimate and no spike limit.
       */
      const finishedCosts: Array<number> = []
      const estimateNow = () => {
        const mean = finishedCosts.reduce((a, b) => a + b, 0) / Math.max(1, finishedCosts.length)
        return finishedCosts.length > 0 && mean > 0 ? mean : undefined
      }

      // Every unit's state, rebuilt from the log on a resume.
      const states = new Map(instances.map(({ instance }) => [instance, new Map(GraphPlan.initial(graph))]))
      const outputs = new Map(instances.map(({ instance }) => [instance, {} as Record<string, string>]))
      const resumeAt = new Map<string, UnitStart>()
      let failure: string | undefined
      for (const unit of units) {
        const state = states.get(unit.instance)!
        const end = ended.get(unit.key)
        const last = started.get(unit.key)
        const result = results.get(unit.key)!
        if (last !== undefined) result.attempts = last.attempt
        if (end?.status === "skipped") {
          state.set(unit.node.id, GraphPlan.NodeState.Skipped())
          result.status = "skipped"
          result.reason = end.reason
        } else if (end !== undefined && end.attempt === last?.attempt && end.status === "succeeded" && end.child_run_id !== null) {
          const loaded = yield* runs.load(end.child_run_id)
          const answer = loaded._tag === "Found" ? loaded.checkpoint.output : ""
          const value = Either.getOrElse(NodeWork.outputOf(unit.node, answer), () => answer)
          state.set(unit.node.id, GraphPlan.NodeState.Succeeded({ output: value }))
          outputs.get(unit.instance)![unit.node.id] = NodeWork.outputText(value)
          result.status = "succeeded"
          finishedCosts.push(result.telemetry.at(-1)?.cost_usd ?? 0)
        } else if (end !== undefined && (last === undefined || end.attempt >= last.attempt) && end.status === "failed") {
          state.set(unit.node.id, GraphPlan.NodeState.Failed({ reason: end.reason ?? "failed" }))
          result.status = "failed"
          result.reason = end.reason
          failure ??= end.reason ?? `node ${unit.key} failed`
        } else if (last !== undefined) {
          resumeAt.set(unit.key, { attempt: last.attempt, adjustments: adjustmentsOf.get(unit.key) ?? [], resume: true })
        }
      }

      const open = units.filter((u) => {
        const s = states.get(u.instance)!.get(u.node.id)!
        return s._tag === "Pending"
      }).length
      const slices = yield* Slices.make(budget, open)
      const halt = yield* HaltControl.forParent({ runId, journal, halt: options.halt })
      const permits = yield* Effect.makeSemaphore(options.ref.max_parallel)
      /**
       * The policy a node heals by: the mission's, without the rungs that cannot apply to it here (no
       * fallback provider configured, no other model of its tier), so the ladder goes on to the next.
       */
      const policyFor = (node: Blueprint.Node): HealingPolicy => {
        const applies = (rung: Rung) =>
          (rung.kind !== "fallback_provider" || models.hasFallback) &&
          (rung.kind !== "fallback_model" || Option.isSome(models.fallbackModel(node.model_tier, session.llm?.model)))
        return { ...policy, ladders: Record.map(policy.ladders, (ladder) => ladder.filter(applies)) as HealingPolicy["ladders"] }
      }
      const historyRef = yield* Ref.make<ReadonlyArray<Attempt>>(history)

      /**
       * One attempt of a unit as a child run, on a slice of the mission's budget and a place among the
       * running nodes; what it ended with, in healing's terms. `announce` runs once it holds its place,
       * just before its run starts.
       */
      const attemptOnce = (
        unit: NodeWork.Unit,
        childId: string,
        adjustments: ReadonlyArray<Adjustment>,
        announce: Effect.Effect<void, PersistenceError>,
        resuming: boolean
      ) =>
        Effect.gen(function*() {
          const settings = settingsOf(blueprint.id, unit.node, unit.key, adjustments)
          const attempt = yield* models.forAttempt(settings)
          // Only an attempt cut off in an earlier session can have a run already (a new one is announced first).
          const loaded = resuming ? yield* runs.load(childId) : { _tag: "Missing" as const }
          const exists = loaded._tag !== "Missing"
          const before = loaded._tag === "Found" ? loaded.checkpoint.usage : BudgetUsage.zero
          const instance = instances.find((i) => i.instance === unit.instance)!
          const outs = outputs.get(unit.instance)!
          const inputs = Object.keys(GraphPlan.inputsOf(graph, unit.node.id, states.get(unit.instance)!))
          const task = NodeWork.taskOf(unit.node, instance.slots, outs, inputs, settings.keep)
          const specialist = NodeWork.specialistOf(unit.node, options.specialists, mission.goal)

          const ran = yield* slices.withSlice(
            before,
            (reservation) =>
              permits.withPermits(1)(Effect.gen(function*() {
                if (yield* Deferred.isDone(halt)) return Option.none<{ readonly result: Mission.MissionResult; readonly spiked: boolean; readonly estimate: number }>()
                yield* announce
                const spikeCap = (estimateNow() ?? 0) * policy.cost_spike_factor
                const spikeLimit = spikeCap > 0 && before.dollars + spikeCap < reservation.policy.max_dollars
                const caps = spikeLimit
                  ? new BudgetPolicy({ ...reservation.policy, max_dollars: before.dollars + spikeCap }, true)
                  : reservation.policy
                const result = yield* Mission.run({
                  runId: childId,
                  goal: exists ? undefined : NodeWork.goalOf(unit.node, task, settings.stricter),
                  policy: { ...caps },
                  resume: exists,
                  takeOver: options.takeOver,
                  llm: session.llm,
                  specialist: exists ? undefined : specialist,
                  project: session.project,
                  halt: Deferred.await(halt),
                  haltGrace: options.haltGrace,
                  haltNow: options.haltNow,
                  heartbeatInterval: options.heartbeatInterval,
                  historyWindow: Math.max(1, Math.round((options.historyWindow ?? 6) * settings.keep)),
                  onEvent: options.onChildEvent
                }).pipe(Effect.provideService(Llm, attempt.llm))
                // The spike limit tripped when the run's dollars reached the cap it set (the slice's is higher).
                const spiked = spikeLimit && result.status !== "completed" && result.usage.dollars >= caps.max_dollars
                return Option.some({ result, spiked, estimate: estimateNow() ?? 0 })
              })),
            (exit) =>
              exit._tag === "Success" && Option.isSome(exit.value)
                ? Effect.succeed(exit.value.value.result.usage)
                : Effect.orElseSucceed(spentOf(childId), () => before)
          )
          const ranSteps = yield* steps.recent(childId, -1)
          const telemetry = NodeWork.telemetryOf(ranSteps)
          if (Either.isLeft(ran)) return { _tag: "NoBudget" as const, axis: ran.left, telemetry }
          if (Option.isNone(ran.right)) return { _tag: "Halted" as const, reason: yield* Deferred.await(halt), telemetry }
          const { estimate, result, spiked } = ran.right.value
          const judged = judgeAttempt(unit, result, {
            halted: yield* Deferred.isDone(halt),
            spiked,
            spentUsd: result.usage.dollars - before.dollars,
            estimateUsd: estimate,
            lastError: yield* attempt.lastError,
            toolCalls: ranSteps.flatMap((step) => step.tool_calls)
          }, policy)
          return { ...judged, telemetry }
        })

      /**
       * A `fallback_model` adjustment with its model chosen now: the next of the node's tier after the one
       * that answered last (or the run's own), kept by the node's later attempts and replayed on a resume.
       */
      const withModel = (unit: NodeWork.Unit, adjustment: Adjustment): Adjustment => {
        if (adjustment.kind !== "fallback_model" || adjustment.model !== undefined) return adjustment
        const last = results.get(unit.key)!.telemetry.at(-1)?.model_used.split(", ").at(-1)
        const model = models.fallbackModel(unit.node.model_tier, last === undefined || last === "" ? session.llm?.model : last)
        return Option.match(model, { onNone: () => adjustment, onSome: (model) => ({ ...adjustment, model }) })
      }
      const announcedBroken = new Set(broken)

      /** A unit's attempts until it succeeds, healing gives up, or the mission halts. */
      const runUnit = (unit: NodeWork.Unit, from: UnitStart): Effect.Effect<UnitEnd, Mission.MissionError, Mission.MissionContext> =>
        Effect.gen(function*() {
          const result = results.get(unit.key)!
          const unitPolicy = policyFor(unit.node)
          let attempt = from.attempt
          let adjustments = from.adjustments
          let resuming = from.resume
          // A first attempt is announced as it starts; a healing attempt with the failure that led to it.
          let announce = from.resume
            ? Effect.void
            : journal.emitNow({ kind: "node_started", node: unit.key, attempt, child_run_id: NodeWork.runIdOf(runId, unit.key, attempt) })
          while (true) {
            const childId = NodeWork.runIdOf(runId, unit.key, attempt)
            result.attempts = attempt
            const outcome = yield* attemptOnce(unit, childId, adjustments, announce, resuming)
            announce = Effect.void
            resuming = false
            result.telemetry.push(outcome.telemetry)
            const healed = (yield* Ref.get(historyRef)).find((a) => a.node === unit.key && a.attempt === attempt - 1)
            const healingEvent = (o: "healed" | "failed"): ReadonlyArray<EventBody> =>
              healed === undefined ? [] : [{ kind: "healing", ...healed, outcome: o }]
            const end = (status: "succeeded" | "failed", reason: string | null): EventBody => ({
              kind: "node_ended",
              node: unit.key,
              attempt,
              child_run_id: childId,
              status,
              reason,
              telemetry: outcome.telemetry
            })
            /**
             * Written together, so a resume never sees an attempt's end without what followed it; with any
             * provider the breaker has opened since, so a resume keeps it open.
             */
            const record = (bodies: ReadonlyArray<EventBody>) =>
              Effect.gen(function*() {
                const broken = (yield* models.breaker.opened).filter((provider) => !announcedBroken.has(provider))
                for (const provider of broken) announcedBroken.add(provider)
                yield* journal.emitAll([...broken.map((provider): EventBody => ({ kind: "breaker_opened", provider })), ...bodies])
                yield* journal.commit(events.append)
              })
            const give = (reason: string) =>
              Effect.gen(function*() {
                yield* record([...healingEvent("failed"), end("failed", reason)])
                result.status = "failed"
                result.reason = reason
                return { _tag: "Failed", reason } satisfies UnitEnd
              })
            switch (outcome._tag) {
              case "Succeeded":
                yield* record([...healingEvent("healed"), end("succeeded", null)])
                finishedCosts.push(outcome.telemetry.cost_usd)
                result.status = "succeeded"
                return { _tag: "Succeeded", value: outcome.value, text: outcome.text } satisfies UnitEnd
              case "NoBudget":
                return { _tag: "Unfinished", reason: "no budget left to start it", axis: outcome.axis } satisfies UnitEnd
              case "Halted":
                return { _tag: "Unfinished", reason: outcome.reason } satisfies UnitEnd
              case "Unhealable":
                return yield* give(outcome.reason)
              case "Failed": {
                // Decided and counted in one step: nodes failing at once cannot all pass the mission's limit.
                const decision = yield* Ref.modify(historyRef, (history): readonly [Healing.Decision, ReadonlyArray<Attempt>] => {
                  const decided = Healing.decide(unitPolicy, history, outcome.failure)
                  if (decided._tag === "GiveUp") return [decided, history]
                  const adjustment = withModel(unit, decided.adjustment)
                  const attempt: Attempt = { node: unit.key, attempt: decided.attempt, class: decided.class, adjustment }
                  return [Healing.Decision.Retry({ ...decided, adjustment }), [...history, attempt]]
                })
                if (decision._tag === "GiveUp") return yield* give(decision.reason)
                yield* record([
                  ...healingEvent("failed"),
                  end("failed", `${Healing.problemOf(outcome.failure)} (${decision.class}); healing attempt ${decision.attempt} follows`),
                  {
                    kind: "node_started",
                    node: unit.key,
                    attempt: attempt + 1,
                    child_run_id: NodeWork.runIdOf(runId, unit.key, attempt + 1),
                    healing: { class: decision.class, adjustment: decision.adjustment }
                  }
                ])
                yield* slices.more
                // A halt does not wait out the backoff: the attempt after it then sees the halt and does not start.
                if (decision.adjustment.kind === "backoff") {
                  yield* Effect.raceFirst(Effect.sleep(Duration.millis(decision.adjustment.delay_ms)), Deferred.await(halt))
                }
                adjustments = [...adjustments, decision.adjustment]
                attempt += 1
              }
            }
          }
        })

      // The scheduling loop: start what GraphPlan says, wait for any unit to end, repeat.
      const done = yield* Queue.unbounded<{ readonly unit: NodeWork.Unit; readonly end: UnitEnd }>()
      let running = 0
      let stopped: { reason: string; axis?: Axis | undefined } | undefined
      const start = (unit: NodeWork.Unit) =>
        Effect.gen(function*() {
          states.get(unit.instance)!.set(unit.node.id, GraphPlan.NodeState.Running())
          running++
          const from = resumeAt.get(unit.key) ?? { attempt: 1, adjustments: [], resume: false }
          yield* runUnit(unit, from).pipe(
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause)
                ? Effect.failCause(cause)
                : Effect.succeed<UnitEnd>({ _tag: "Failed", reason: `node ${unit.key}: ${Mission.describeFailure(cause)}` })),
            Effect.flatMap((end) => Queue.offer(done, { unit, end })),
            Effect.forkScoped
          )
        })
      // Attempts cut off in an earlier session go on as they would have, even after another node failed:
      // nothing new starts after a failure, but what was running finishes.
      if (failure !== undefined) {
        for (const key of resumeAt.keys()) yield* start(unitByKey.get(key)!)
      }
      while (true) {
        let emitted = false
        for (const { instance } of instances) {
          const state = states.get(instance)!
          const next = GraphPlan.step(graph, state)
          for (const id of next.skipped) {
            const key = NodeWork.keyOf(id, instance)
            state.set(id, GraphPlan.NodeState.Skipped())
            const r = results.get(key)!
            r.status = "skipped"
            r.reason = "no edge into it was taken"
            yield* slices.skip
            yield* journal.emit({ kind: "node_ended", node: key, attempt: 0, child_run_id: null, status: "skipped", reason: r.reason, telemetry: null })
            emitted = true
          }
          for (const { node: id, reason } of next.failed) {
            const key = NodeWork.keyOf(id, instance)
            state.set(id, GraphPlan.NodeState.Failed({ reason }))
            const r = results.get(key)!
            r.status = "failed"
            r.reason = reason
            failure ??= `node ${key} failed: ${reason}`
            yield* journal.emit({ kind: "node_ended", node: key, attempt: 0, child_run_id: null, status: "failed", reason, telemetry: null })
            emitted = true
          }
          if (stopped === undefined && failure === undefined) {
            for (const id of next.ready) yield* start(unitByKey.get(NodeWork.keyOf(id, instance))!)
          }
        }
        if (emitted) yield* journal.commit(events.append)
        if (running === 0) break
        const { end, unit } = yield* Queue.take(done)
        running--
        const state = states.get(unit.instance)!
        switch (end._tag) {
          case "Succeeded":
            state.set(unit.node.id, GraphPlan.NodeState.Succeeded({ output: end.value }))
            outputs.get(unit.instance)![unit.node.id] = end.text
            break
          case "Failed":
            state.set(unit.node.id, GraphPlan.NodeState.Failed({ reason: end.reason }))
            failure ??= end.reason
            break
          case "Unfinished":
            state.set(unit.node.id, GraphPlan.NodeState.Pending())
            stopped ??= { reason: end.reason, axis: end.axis }
            break
        }
      }

      // The mission's output: the last word of each instance, the succeeded nodes nothing succeeded after.
      const sinks = instances.flatMap(({ instance }) => {
        const state = states.get(instance)!
        return graph.nodes.filter((n) =>
          state.get(n.id)?._tag === "Succeeded" &&
          !graph.edges.some((e) => e.from === n.id && state.get(e.to)?._tag === "Succeeded")
        ).map((n) => ({ key: NodeWork.keyOf(n.id, instance), text: outputs.get(instance)![n.id]! }))
      })
      const output = sinks.map((s) => `## ${s.key}\n${s.text}`).join("\n\n")
      yield* Ref.update(progress, (p) => ({ ...p, output }))

      if (failure !== undefined) return { status: "failed", reason: failure } satisfies Session.Outcome
      if (stopped !== undefined) {
        const met = (yield* Ref.get(progress)).criteria_met
        if (stopped.axis !== undefined) {
          const usage = yield* budget.usage
          const reason = `${haltReasonFor(stopped.axis, budget.policy, usage)}; nodes not started`
          return { status: statusOf(met), reason, exceeded: { axis: stopped.axis, reason, usage } } satisfies Session.Outcome
        }
        return { status: statusOf(met), reason: stopped.reason } satisfies Session.Outcome
      }

      // Every node on the taken path succeeded: the mission's own criteria are judged on what it produced.
      const met = yield* checkCriteria(session, models, output)
      yield* Ref.update(progress, (p) => ({ ...p, criteria_met: met.criteria_met }))
      return met.outcome
    })

    const nodesOf = (): ReadonlyArray<NodeResult> =>
      units.map((u) => {
        const r = results.get(u.key)!
        return { node: u.key, status: r.status, attempts: r.attempts, reason: r.reason, telemetry: NodeWork.sumTelemetry(r.telemetry.length === 0 ? [noTelemetry] : r.telemetry) }
      })
    return yield* Effect.map(Mission.conclude(session, work), (result): DriveResult => ({ ...result, nodes: nodesOf() }))
  }))
