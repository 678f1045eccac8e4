import type { FileSystem } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Context, Effect, Either, Layer, Option, Schedule } from "effect"
import * as Blueprint from "../domain/Blueprint.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import type { Firing, FiringRecord } from "../domain/Firing.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { policyOf } from "../domain/Healing.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import { defaultProject, type MissionNotFound, type MissionRecord } from "../domain/MissionRecord.js"
import { endAction, type IllegalTransition, isEnd } from "../domain/MissionState.js"
import type { MissionRef } from "../domain/MissionRun.js"
import { Llm } from "../llm/Llm.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import type * as Mission from "../runtime/Mission.js"
import * as RunsModule from "../runtime/Runs.js"
import { Runs } from "../runtime/Runs.js"
import * as SpecialistsModule from "../specialists/Specialists.js"
import { Specialists } from "../specialists/Specialists.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import * as Breaker from "./Breaker.js"
import * as Firings from "./Firings.js"
import type * as Driver from "./Driver.js"
import * as MissionsModule from "./Missions.js"
import { Missions } from "./Missions.js"
import * as NodeLlm from "./NodeLlm.js"
import * as NodeWork from "./NodeWork.js"
import * as OutputSchema from "./OutputSchema.js"
import * as Recurrence from "./Recurrence.js"
import * as StepResults from "./StepResults.js"
import * as TierModels from "./TierModels.js"

export interface RunOptions {
  /** Who runs it, in the mission's history (`cli:alice`). */
  readonly actor: string
  /** The model, as for `autopilot run`; a resume keeps the mission run's own unless told otherwise. */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** The provider nodes fall back to (healing's `fallback_provider`, an open breaker); a resume keeps its own. */
  readonly fallback?: LlmChoice.LlmChoice | undefined
  /** How many nodes run at a time (default 4); a resume keeps its own. */
  readonly maxParallel?: number | undefined
  readonly takeOver?: boolean | undefined
  /** For work delivered again (a daemon's): a run this says has ended is caught up with, never run again. */
  readonly unlessEnded?: Mission.MissionOptions["unlessEnded"]
  readonly halt?: Effect.Effect<string> | undefined
  readonly haltGrace?: Mission.MissionOptions["haltGrace"]
  readonly haltNow?: Effect.Effect<void> | undefined
  readonly heartbeatInterval?: Mission.MissionOptions["heartbeatInterval"]
  readonly onEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
  readonly onChildEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
  /**
   * A scheduled mission's firing (claimed by `Firings.due` or `Firings.fire`): its run is the firing's
   * (`<mission>.at-…`), the mission stays `scheduled`, and how the run ended is recorded with the firing.
   * A firing cut off or halted is resumed by running it again with the same firing.
   */
  readonly firing?: Firing | undefined
}

export interface Ran {
  /** The mission as its run left it: completed, partial, halted or failed (running, if the process is cut off). */
  readonly mission: MissionRecord
  readonly result: Driver.DriveResult
  /**
   * The run had already ended when this call looked (its process ended it, or died just after): nothing ran,
   * the mission only caught up with its end, or found another process had already concluded it.
   */
  readonly caughtUp: boolean
}

export const defaults = { maxParallel: 4 } as const

type Failure = MissionNotFound | BadInput | PersistenceError | IllegalTransition | Mission.MissionError

/**
 * Runs approved missions: checks the mission and its graph before anything is written, moves it to
 * `running`, drives its graph as the mission's run (`Runs.mission`), and moves it to how the run ended.
 * A mission whose run was cut off (kill -9) or stopped is resumed by running it again. A scheduled
 * mission runs only as firings, each a run of its own; it stays `scheduled`, and its firing records the end.
 */
export class MissionRunner extends Context.Tag("autopilot/MissionRunner")<
  MissionRunner,
  {
    readonly run: (project: string, missionId: string, options: RunOptions) => Effect.Effect<Ran, Failure>
    /**
     * What the mission's run did, node by node: every attempt's StepResult (full output, full
     * conversation, telemetry), what was healed and what healing cost. A mission never run has none.
     */
    readonly steps: (project: string, missionId: string) => Effect.Effect<StepResults.MissionSteps, MissionNotFound | BadInput | PersistenceError>
  }
>() {}

const projectFlag = (project: string) => (project === defaultProject ? "" : ` --project ${project}`)

/** Why a mission cannot run as a whole, in one line; undefined when it can. */
const refusal = (m: MissionRecord): string | undefined => {
  switch (m.status) {
    case "approved":
    case "scheduled":
      return Recurrence.isRecurring(m.blueprint)
        ? `mission ${m.mission_id} is scheduled: it runs as firings, each a run of its own (Firings.due on its schedule, Firings.fire by hand, then MissionRunner.run with the firing)`
        : undefined
    case "draft":
      return `mission ${m.mission_id} is a draft: approve it first (\`autopilot approve ${m.mission_id}${projectFlag(m.project_id)}\`)`
    case "cancelled":
      return `mission ${m.mission_id} was cancelled: a cancelled mission does not run`
    case "completed":
    case "failed":
      return `mission ${m.mission_id} has ended (${m.status}): there is nothing left to run`
    default:
      return undefined
  }
}

/** Why a firing cannot run, in one line; undefined when it can. */
const firingRefusal = (m: MissionRecord, firing: Firing, kept: Option.Option<FiringRecord>): string | undefined => {
  if (firing.mission_id !== m.mission_id || firing.project !== m.project_id) {
    return `firing ${firing.run_id} is not a firing of mission ${m.mission_id} in project ${m.project_id}`
  }
  if (Option.isNone(kept) || kept.value.run_id !== firing.run_id) {
    return `firing ${firing.run_id} of mission ${m.mission_id} was never claimed (Firings.due or Firings.fire claims one)`
  }
  const status = kept.value.status
  if (status === "completed" || status === "failed" || status === "cancelled") {
    return `firing ${firing.run_id} has ended (${status}): there is nothing left to run`
  }
  return Firings.refusal(m)
}

/** Every structural problem of the mission's graph, as `blueprints add` would report it, and schemas that do not compile. */
const graphProblems = (m: MissionRecord, specialists: ReadonlyArray<string>) => {
  const problems = [...Blueprint.problems(m.blueprint, { specialists })]
  m.blueprint.graph.nodes.forEach((node, i) => {
    const problem = node.output_schema === undefined ? undefined : OutputSchema.problemOf(node.output_schema)
    if (problem !== undefined) problems.push({ field: `graph.nodes[${i}].output_schema`, message: problem })
  })
  return problems
}

export const make = Effect.gen(function*() {
  const missions = yield* Missions
  const runs = yield* Runs
  const specialists = yield* Specialists
  const runStore = yield* RunStore
  const firings = yield* Firings.Firings
  const stores = yield* Effect.context<RunStore | StepStore | EventStore>()
  // The model Layers read their files and, for an in-process harness, keep its ledger in this database.
  const context = yield* Effect.context<SqlClient.SqlClient | FileSystem.FileSystem>()

  const run = (project: string, missionId: string, options: RunOptions) =>
    options.firing === undefined ? runMission(project, missionId, options, undefined) : runFiring(project, missionId, options, options.firing)

  const runFiring = (project: string, missionId: string, options: RunOptions, firing: Firing) =>
    runMission(project, missionId, options, firing).pipe(
      // Only a firing of this mission: one handed to another mission by mistake is left as it is.
      Effect.tapErrorTag("BadInput", (error) =>
        firing.project === project && firing.mission_id === missionId ? settleRefused(project, firing, error.message) : Effect.void)
    )

  /**
   * A firing refused before its run started holds up no later firing of the mission: its slot ends
   * `cancelled` when the mission was, else `failed` with why; a manual claim is forgotten.
   */
  const settleRefused = (project: string, firing: Firing, reason: string) =>
    Effect.gen(function*() {
      const kept = yield* firings.get(firing)
      if (!Option.exists(kept, (k) => k.run_id === firing.run_id && k.status === "running")) return
      if ((yield* runStore.load(firing.run_id))._tag !== "Missing") return
      const mission = yield* Effect.option(missions.get(project, firing.mission_id))
      if (Option.exists(mission, (m) => m.status === "cancelled")) return yield* firings.ended(firing, "cancelled", reason)
      yield* firings.refused(firing, reason)
    })

  const runMission = (project: string, missionId: string, options: RunOptions, firing: Firing | undefined) =>
    Effect.gen(function*() {
      const mission = yield* missions.get(project, missionId)
      const kept = firing === undefined ? Option.none<FiringRecord>() : yield* firings.get(firing)
      const refused = firing === undefined ? refusal(mission) : firingRefusal(mission, firing, kept)
      if (refused !== undefined) return yield* new BadInput({ message: refused })
      const known = new Map(specialists.all.map(({ specialist }) => [specialist.id, specialist]))
      const problems = graphProblems(mission, [...known.keys()])
      if (problems.length > 0) {
        return yield* new BadInput({
          message: `mission ${missionId} cannot run: its blueprint ${mission.blueprint.id} has ${Blueprint.describeProblems(problems)} (nothing was changed)`
        })
      }
      const maxParallel = options.maxParallel ?? defaults.maxParallel
      if (!Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > 1000) {
        return yield* new BadInput({ message: `max parallel must be a whole number from 1 to 1000, got ${maxParallel}` })
      }
      // Everything the run will need is checked before the mission moves: bad input changes nothing.
      const tiers = yield* TierModels.load
      const runId = firing?.run_id ?? missionId
      const loaded = yield* runStore.load(runId)
      const recorded = loaded._tag === "Found" ? loaded.checkpoint.mission : undefined
      // The model too: a missing key or script must not leave the mission running with no run.
      yield* Effect.flatMap(LlmChoice.resolve(loaded._tag === "Found" ? loaded.checkpoint.llm : undefined, options.llm ?? {}), LlmLayer.validate)
      const ref: MissionRef = recorded ?? {
        mission_id: missionId,
        project_id: project,
        max_parallel: maxParallel,
        ...(options.fallback === undefined ? {} : { fallback: options.fallback }),
        ...(firing === undefined ? {} : { firing: { slot: firing.slot, run_id: firing.run_id, kind: firing.kind } })
      }
      // The fallback the run will use (a resume's is the recorded one) is built once now, so a missing variable changes nothing.
      if (ref.fallback !== undefined) yield* Effect.scoped(LlmLayer.serviceOf(yield* LlmLayer.fallbackLayerOf(ref.fallback)))
      // A run that ended while its process died before the mission followed: the mission catches up, and
      // nothing runs again (not even the criteria check, whose verdict could differ).
      const going = firing === undefined ? mission.status === "running" : Option.exists(kept, (k) => k.status === "running")
      const catchUp = (c: Checkpoint) =>
        Effect.gen(function*() {
          const nodes = (yield* Effect.provide(StepResults.read(mission, runId), stores)).nodes
          const result: Driver.DriveResult = {
            run_id: c.run_id,
            status: c.status as Exclude<typeof c.status, "running">,
            halt_reason: c.halt_reason,
            iterations: c.usage.iterations,
            usage: c.usage,
            criteria_met: c.criteria_met,
            output: c.output,
            nodes: nodes.map((n) => ({
              node: n.node,
              status: n.status === "running" || n.status === "unfinished" ? "not_run" : n.status,
              attempts: n.attempts.length,
              reason: n.reason,
              telemetry: NodeWork.sumTelemetry(n.attempts.map((a) => a.telemetry))
            }))
          }
          return { mission: yield* conclude(mission, result, options.actor, firing), result, caughtUp: true } satisfies Ran
        })
      if (going && loaded._tag === "Found" && loaded.checkpoint.status !== "running") return yield* catchUp(loaded.checkpoint)
      if (firing !== undefined) {
        // The mission stays armed: only the firing moves.
        if (Option.exists(kept, (k) => k.status !== "running")) yield* firings.resumed(firing)
      } else {
        // An approved mission is scheduled on its way (approval normally does both at once).
        if (mission.status === "approved") yield* missions.advance(project, missionId, "schedule", options.actor, "scheduled to run now")
        if (mission.status !== "running") {
          const why = mission.status === "scheduled" || mission.status === "approved" ? "run started" : `resumed after it ${mission.status}`
          yield* missions.advance(project, missionId, "start", options.actor, why)
        }
      }
      const policy = policyOf(mission.blueprint)
      const models = (choice: LlmChoice.LlmChoice) =>
        Effect.gen(function*() {
          const primary = yield* Llm
          const fallback = ref.fallback === undefined
            ? Option.none()
            : Option.some({
              // Breakers are kept by name: the fallback's must differ from the primary's even on the same provider.
              name: `fallback ${LlmChoice.describe(ref.fallback)}`,
              llm: yield* LlmLayer.serviceOf(yield* LlmLayer.fallbackLayerOf(ref.fallback)),
              ...(ref.fallback.model === undefined ? {} : { model: ref.fallback.model })
            })
          const breaker = yield* Breaker.make(policy.breaker)
          const forAttempt = NodeLlm.make({ primary: { name: LlmChoice.describe(choice), llm: primary }, fallback, breaker, policy })
          return {
            forAttempt: (settings) => forAttempt(settings),
            hasFallback: Option.isSome(fallback),
            fallbackModel: (tier, current) => TierModels.fallbackModel(tier, current, tiers),
            breaker
          } satisfies Driver.AttemptModels
        }).pipe(Effect.provide(context))
      const started = yield* runs.mission({
        mission,
        ref,
        specialists: known,
        resume: loaded._tag !== "Missing",
        llm: options.llm,
        models,
        takeOver: options.takeOver,
        unlessEnded: options.unlessEnded,
        halt: Effect.raceFirst(options.halt ?? Effect.never, cancelled(project, missionId)),
        haltGrace: options.haltGrace,
        haltNow: options.haltNow,
        heartbeatInterval: options.heartbeatInterval,
        onEvent: options.onEvent,
        onChildEvent: options.onChildEvent
      }).pipe(
        Effect.map(Either.right),
        // The run ended between the look above and the start's claim (its own process ending it): caught up with, not run again.
        Effect.catchTag("RunAlreadyExists", (e) =>
          loaded._tag === "Missing"
            ? Effect.fail(e)
            : Effect.flatMap(runStore.load(runId), (now) => (now._tag === "Found" ? Effect.succeed(Either.left(now.checkpoint)) : Effect.fail(e))))
      )
      if (Either.isLeft(started)) return yield* catchUp(started.left)
      const result = started.right
      return { mission: yield* conclude(mission, result, options.actor, firing), result, caughtUp: false } satisfies Ran
    }).pipe(Effect.provide(context))

  /**
   * The mission moved to how its run ended; left as it is when it was cancelled meanwhile (its run then
   * halted on the cancellation). A firing records its end, and the mission stays as it is.
   */
  const conclude = (mission: MissionRecord, result: Mission.MissionResult, actor: string, firing: Firing | undefined) =>
    Effect.gen(function*() {
      if (firing !== undefined) yield* firings.ended(firing, result.status, result.halt_reason)
      const now = yield* missions.get(mission.project_id, mission.mission_id)
      // Already at an end: cancelled, or concluded by the process whose run this was while this one caught up.
      if (isEnd(now.status) || firing !== undefined) return now
      const reason = result.halt_reason ?? "every node on the taken path succeeded and every criterion is met"
      return yield* missions.advance(mission.project_id, mission.mission_id, endAction(result.status), actor, reason)
    })

  /**
   * Completes when the mission is cancelled while its run goes on (\`autopilot cancel\` from anywhere): the
   * run then halts as on a stop request. Looked at every second; a read that fails is not a cancellation.
   */
  const cancelled = (project: string, missionId: string): Effect.Effect<string> =>
    missions.get(project, missionId).pipe(
      Effect.map((m) => m.status === "cancelled"),
      Effect.orElseSucceed(() => false),
      Effect.repeat({ until: (isCancelled) => isCancelled, schedule: Schedule.spaced("1 second") }),
      Effect.as("mission cancelled")
    )

  // A scheduled mission's are those of its latest firing.
  const steps = (project: string, missionId: string) =>
    Effect.gen(function*() {
      const mission = yield* missions.get(project, missionId)
      const [latest] = Recurrence.isRecurring(mission.blueprint) ? yield* firings.recent(project, missionId, 1) : []
      return yield* Effect.provide(StepResults.read(mission, latest?.run_id), stores)
    })

  return MissionRunner.of({ run, steps })
})

export const layer = Layer.effect(MissionRunner, make)

/**
 * The runner with everything it stands on but the database: the `Missions`, `Firings` and `Runs` services
 * and the specialist catalog (built-ins and `$AUTOPILOT_HOME/specialists`), each mission's workspace under
 * `workspaceRoot`. Provide it `Storage` and the `SqlClient` they share (`Storage.layerSqlite`).
 */
export const layerWith = (options: { readonly workspaceRoot: string }) =>
  layer.pipe(Layer.provideMerge(Layer.mergeAll(MissionsModule.layer, Firings.layer, RunsModule.layer(options), SpecialistsModule.layer)))
