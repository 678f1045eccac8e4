import { Effect, Option, ParseResult, Schema } from "effect"
import { BudgetPolicy, BudgetUsage } from "../domain/Budget.js"
import { Checkpoint } from "../domain/Checkpoint.js"
import type { CriticSettings } from "../domain/Critic.js"
import { BadInput, RunAlreadyExists, RunInProgress, RunNotFound } from "../domain/Errors.js"
import { type FanoutSpec, sameSpec } from "../domain/Fanout.js"
import { sameGoal } from "../domain/Goal.js"
import type { LlmChoice } from "../domain/LlmChoice.js"
import type { MissionRef } from "../domain/MissionRun.js"
import { checkProject, defaultProject } from "../domain/MissionRecord.js"
import { Owner } from "../domain/Owner.js"
import type { Step } from "../domain/Step.js"
import type { Specialist } from "../specialists/Specialist.js"
import { EventStore } from "../store/EventStore.js"
import { type Raw, RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import type { MissionOptions, PolicyOverrides } from "./Mission.js"

/** The state a session starts from, and the row it must find unchanged to claim the run. */
export interface StartingPoint {
  readonly checkpoint: Checkpoint
  readonly history: ReadonlyArray<Step>
  /** The critic's suggestions on the run's last step, which feed its next iteration. */
  readonly suggestions: ReadonlyArray<string>
  /** The row as loaded, which the session claims only if no one changed it meanwhile. */
  readonly expected: Raw | undefined
  readonly corrupt?: { readonly error: string; readonly recoveredFrom: string }
  /**
   * For a run rebuilt from its history: the step it continues from (0 for the start). Any step after it
   * does not decode, and is quarantined when the run is claimed.
   */
  readonly rebuiltFrom?: number
}

/** A session opened for a fan-out: `spec` for a new one; a resume runs the recorded one, which `spec` must match if given. */
export interface FanoutSession {
  readonly spec?: FanoutSpec | undefined
}

export type OpenOptions = MissionOptions & {
  readonly fanout?: FanoutSession | undefined
  /** A session of a mission's run: the mission whose graph it drives (a resume must name the recorded one). */
  readonly mission?: MissionRef | undefined
}

/** A mission's run is resumed only as one, and only as the same mission's; nothing else is resumed as one. */
const sameMission = (options: OpenOptions, recorded: MissionRef | undefined) => {
  const runId = options.runId
  if (recorded !== undefined && options.mission?.mission_id !== recorded.mission_id) {
    return new BadInput({
      message: recorded.firing !== undefined
        ? `run "${runId}" is a firing of mission ${recorded.mission_id}: \`autopilot resume ${runId}\` continues it`
        : `run "${runId}" is the run of mission ${recorded.mission_id}: \`autopilot missions run ${recorded.mission_id}${
          recorded.project_id === "default" ? "" : ` --project ${recorded.project_id}`
        }\` (or \`autopilot resume ${runId}\`) continues it`
    })
  }
  if (recorded === undefined && options.mission !== undefined) {
    return new BadInput({ message: `run "${runId}" exists and is not the run of mission ${options.mission.mission_id}; nothing was changed` })
  }
  return undefined
}

/** A mission is never resumed as a fan-out, nor a fan-out as a mission: each keeps what it was started as. */
const sameKind = (options: OpenOptions, recorded: FanoutSpec | undefined, mission: MissionRef | undefined) => {
  const runId = options.runId
  const otherMission = sameMission(options, mission)
  if (otherMission !== undefined) return otherMission
  if (recorded !== undefined && options.fanout === undefined) {
    return new BadInput({ message: `run "${runId}" is a fan-out: \`autopilot resume ${runId}\` (Autopilot.fanout with resume in the library) continues it` })
  }
  if (recorded === undefined && options.fanout !== undefined) {
    return new BadInput({ message: `run "${runId}" is not a fan-out: \`autopilot resume ${runId}\` (Autopilot.run with resume in the library) continues it` })
  }
  if (recorded !== undefined && options.fanout?.spec !== undefined && !sameSpec(recorded, options.fanout.spec)) {
    return new BadInput({ message: `run "${runId}" was started with a different template or items; \`autopilot resume ${runId}\` continues it as it was` })
  }
  return undefined
}

/** How many earlier iterations the model sees, unless told otherwise. */
export const historyWindowOf = (options: MissionOptions) => options.historyWindow ?? 6

const decodePolicy = Schema.decodeUnknown(BudgetPolicy)

/** Library callers get the same one-line BadInput for a bad cap as the CLI gives. */
const policyOf = (fields: PolicyOverrides) =>
  decodePolicy(fields).pipe(
    Effect.mapError((e) =>
      new BadInput({
        message: `budget policy ${
          ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.join(".")} ${i.message}`).join("; ")
        }`
      })
    )
  )

/** The model a run records: the one asked for, else the run's own (absent for a library caller's own Layer). */
const recorded = (llm: LlmChoice | undefined) => (llm === undefined ? {} : { llm })

/** The critic a run records: the one given, else the run's own (absent for a run without one). */
const withCritic = (critic: CriticSettings | undefined) => (critic === undefined ? {} : { critic })

/** Only the latest verdict's suggestions feed the next iteration: those of the run's last step. */
const suggestionsAfter = (last: Option.Option<Step>) =>
  Option.match(last, { onNone: () => [], onSome: (step) => step.critic?.suggestions ?? [] })

const asSpecialist = (specialist: Specialist | undefined) => (specialist === undefined ? {} : { specialist })

/**
 * A resumed run keeps the specialist it was started as, in the definition it was started with; asking
 * for another is refused rather than ignored.
 */
const sameSpecialist = (runId: string, recorded: Specialist | undefined, requested: Specialist | undefined) =>
  requested === undefined || requested.id === recorded?.id
    ? Effect.void
    : new BadInput({
      message: `run "${runId}" was started ${recorded === undefined ? "without a specialist" : `as specialist "${recorded.id}"`}; \`autopilot resume ${runId}\` continues it as it was`
    })

/**
 * A new run's project: the one asked for, checked, else its mission's, else "default". A resume keeps the
 * run's own; asking for another is refused rather than ignored, as moving a run between projects is not a resume.
 */
const projectOf = (options: OpenOptions, recorded: string | undefined) =>
  recorded === undefined
    ? checkProject(options.project ?? options.mission?.project_id ?? defaultProject)
    : options.project === undefined || options.project === recorded
    ? Effect.succeed(recorded)
    : Effect.fail(new BadInput({ message: `run "${options.runId}" belongs to project "${recorded}", not "${options.project}"; \`autopilot resume ${options.runId}\` continues it in its own` }))

/** Axis by axis, the larger: usage only ever grows, so the newer record of it wins. */
const latest = (a: BudgetUsage, b: BudgetUsage) =>
  new BudgetUsage({
    seconds: Math.max(a.seconds, b.seconds),
    tool_calls: Math.max(a.tool_calls, b.tool_calls),
    tokens: Math.max(a.tokens, b.tokens),
    dollars: Math.max(a.dollars, b.dollars),
    iterations: Math.max(a.iterations, b.iterations)
  }, true)

/** Loads the run to continue, or makes a new one; a checkpoint that does not decode is rebuilt from history. */
export const startingPoint = (options: OpenOptions, now: string, critic: CriticSettings | undefined) =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const steps = yield* StepStore
    const events = yield* EventStore
    const runId = options.runId
    const loaded = yield* runs.load(runId)
    const history = steps.recent(runId, historyWindowOf(options))
    if (!options.resume) {
      if (loaded._tag !== "Missing") {
        return yield* new RunAlreadyExists({
          run_id: runId,
          status: loaded._tag === "Found" ? loaded.checkpoint.status : "corrupt checkpoint"
        })
      }
      if (options.goal === undefined) return yield* new BadInput({ message: "a new run needs a goal: an objective and at least one criterion" })
      if (options.fanout !== undefined && options.fanout.spec === undefined) {
        return yield* new BadInput({ message: "a new fan-out needs a template and items" })
      }
      const checkpoint = new Checkpoint({
        version: 1,
        run_id: runId,
        goal: options.goal,
        policy: yield* policyOf(options.policy ?? {}),
        status: "running",
        halt_reason: null,
        usage: BudgetUsage.zero,
        criteria_met: options.goal.success_criteria.map(() => false),
        output: "",
        owner: Owner.current,
        ...recorded(options.llm),
        ...withCritic(critic),
        ...asSpecialist(options.specialist),
        created_at: now,
        updated_at: now,
        ...(options.fanout?.spec === undefined ? {} : { fanout: options.fanout.spec }),
        ...(options.mission === undefined ? {} : { mission: options.mission }),
        project: yield* projectOf(options, undefined)
      })
      return { checkpoint, history: [], suggestions: [], expected: undefined } satisfies StartingPoint
    }
    if (loaded._tag === "Found") {
      const { goal, owner, status, usage } = loaded.checkpoint
      const otherKind = sameKind(options, loaded.checkpoint.fanout, loaded.checkpoint.mission)
      if (otherKind !== undefined) return yield* otherKind
      if (options.goal !== undefined && !sameGoal(options.goal, goal)) {
        return yield* new BadInput({
          message: `run "${runId}" was started with a different objective or criteria; \`autopilot resume ${runId}\` continues it as it was`
        })
      }
      yield* sameSpecialist(runId, loaded.checkpoint.specialist, options.specialist)
      yield* projectOf(options, loaded.checkpoint.project)
      if (options.unlessEnded?.(loaded.checkpoint) === true) return yield* new RunAlreadyExists({ run_id: runId, status })
      if (status === "running" && owner !== null && owner.isAlive && !options.takeOver) {
        return yield* new RunInProgress({ run_id: runId, pid: owner.pid, host: owner.host })
      }
      // A session killed mid-iteration spent more than its last checkpoint says; its heartbeats know.
      const spent = status === "running"
        ? Option.match(yield* events.lastUsage(runId), { onNone: () => usage, onSome: (beat) => latest(usage, beat) })
        : usage
      const checkpoint = new Checkpoint({
        ...loaded.checkpoint,
        policy: yield* policyOf({ ...loaded.checkpoint.policy, ...options.policy }),
        status: "running",
        halt_reason: null,
        usage: spent,
        owner: Owner.current,
        ...recorded(options.llm ?? loaded.checkpoint.llm),
        ...withCritic(critic ?? loaded.checkpoint.critic)
      })
      return {
        checkpoint,
        history: yield* history,
        suggestions: suggestionsAfter(yield* steps.last(runId)),
        expected: loaded.raw
      } satisfies StartingPoint
    }
    // The checkpoint is corrupt or gone: rebuild the run from its append-only history.
    const sessions = (yield* events.sessions(runId)).flatMap((e) => (e.kind === "run_started" ? [e] : []))
    const first = sessions[0]
    const latestSession = sessions[sessions.length - 1]
    if (first === undefined || latestSession === undefined) {
      if (loaded._tag === "Missing") return yield* new RunNotFound({ run_id: runId })
      return yield* new BadInput({ message: `run "${runId}" has a corrupt checkpoint and no history to rebuild it from` })
    }
    const goal = latestSession.goal
    yield* sameSpecialist(runId, latestSession.specialist, options.specialist)
    const project = yield* projectOf(options, latestSession.project ?? defaultProject)
    const otherKind = sameKind(options, latestSession.fanout, latestSession.mission)
    if (otherKind !== undefined) return yield* otherKind
    const last = yield* steps.last(runId)
    // Spending after the last step that decodes is still on record in the event log; its iterations are
    // not counted, since the rebuilt run writes them afresh.
    const logged = yield* events.lastUsage(runId)
    const from = Option.match(last, {
      onNone: () => ({ usage: BudgetUsage.zero, criteria_met: goal.success_criteria.map(() => false), output: "", iteration: 0, label: "start" }),
      onSome: (step) => ({
        usage: step.usage,
        criteria_met: step.criteria_met,
        output: step.answer,
        iteration: step.iteration,
        label: `iteration ${step.iteration}`
      })
    })
    const checkpoint = new Checkpoint({
      version: 1,
      run_id: runId,
      goal,
      policy: yield* policyOf({ ...latestSession.policy, ...options.policy }),
      status: "running",
      halt_reason: null,
      usage: Option.match(logged, {
        onNone: () => from.usage,
        onSome: (beat) => latest(from.usage, new BudgetUsage({ ...beat, iterations: from.usage.iterations }, true))
      }),
      criteria_met: from.criteria_met,
      output: from.output,
      owner: Owner.current,
      ...recorded(options.llm ?? latestSession.llm),
      ...withCritic(critic ?? latestSession.critic),
      ...asSpecialist(latestSession.specialist),
      created_at: first.at,
      updated_at: now,
      ...(latestSession.fanout === undefined ? {} : { fanout: latestSession.fanout }),
      ...(latestSession.mission === undefined ? {} : { mission: latestSession.mission }),
      project
    })
    return {
      checkpoint,
      history: yield* history,
      suggestions: suggestionsAfter(last),
      expected: loaded._tag === "Corrupt" ? loaded.raw : undefined,
      rebuiltFrom: from.iteration,
      ...(loaded._tag === "Corrupt" ? { corrupt: { error: loaded.error, recoveredFrom: from.label } } : {})
    } satisfies StartingPoint
  })
