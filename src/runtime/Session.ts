import { Data, type Duration, Effect, Option, Ref, type Scope } from "effect"
import * as Budget from "../budget/Budget.js"
import type { BudgetUsage } from "../domain/Budget.js"
import { Checkpoint } from "../domain/Checkpoint.js"
import type { CriticSettings } from "../domain/Critic.js"
import { type PersistenceError, RunAlreadyExists, RunInProgress } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { FanoutSpec } from "../domain/Fanout.js"
import type { Goal } from "../domain/Goal.js"
import type { LlmChoice } from "../domain/LlmChoice.js"
import type { RunStatus } from "../domain/RunStatus.js"
import type { ModelCall } from "../domain/Step.js"
import type { Specialist } from "../specialists/Specialist.js"
import { CuratorStore } from "../store/CuratorStore.js"
import { EventStore } from "../store/EventStore.js"
import { GroupCommit } from "../store/GroupCommit.js"
import { QuarantineStore } from "../store/QuarantineStore.js"
import { RunStore } from "../store/RunStore.js"
import { type Storage, Transaction } from "../store/Storage.js"
import * as Artifacts from "./Artifacts.js"
import * as Iteration from "./Iteration.js"
import * as Journal from "./Journal.js"
import type { MissionError, MissionResult } from "./Mission.js"
import { historyWindowOf, type OpenOptions, type StartingPoint, startingPoint } from "./StartingPoint.js"

/** How a session ends, short of a crash of the process. */
export interface Outcome {
  readonly status: Exclude<RunStatus, "running">
  readonly reason: string | null
  /** The budget axis that stopped the run, announced with its end. */
  readonly exceeded?: Budget.Exceeded | undefined
  /** Calls of an iteration the end cut short: charged, in no step, so listed with the result. */
  readonly unfinished?: ReadonlyArray<ModelCall> | undefined
}

/** One process's turn at a run: it owns the run's row from `open` until `finish`. */
export interface Session {
  readonly runId: string
  readonly goal: Goal
  readonly budget: Budget.Budget
  readonly journal: Journal.Journal
  readonly window: number
  readonly llm: LlmChoice | undefined
  /** The critic the run was started with (or given now), if any. */
  readonly critic: CriticSettings | undefined
  readonly specialist: Specialist | undefined
  /** What a fan-out run fans out over; undefined for a mission. */
  readonly fanout: FanoutSpec | undefined
  /** The project the run belongs to, which the runs it starts (children, node attempts) inherit. */
  readonly project: string
  readonly progress: Ref.Ref<Iteration.Progress>
  /** Counts a finished attempt: its step, its events, its artifacts and the checkpoint, in one transaction. */
  readonly record: (iteration: number, attempt: Iteration.Attempt) => Effect.Effect<void, PersistenceError>
  /** The last checkpoint and the `result` event; it always runs to the end. */
  readonly finish: (outcome: Outcome) => Effect.Effect<MissionResult, PersistenceError>
}

class Conflict extends Data.TaggedError("Conflict") {}

/**
 * Opens a session: finds where the run starts from and claims it, writing its first checkpoint and
 * `run_started` only if no other session changed the run meanwhile, so two processes racing for one run
 * id cannot both win. A `critic` given replaces the run's own; without one a resume keeps it.
 */
export const open = (options: OpenOptions, critic?: CriticSettings): Effect.Effect<Session, MissionError, Storage | Scope.Scope> =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const commits = yield* GroupCommit
    const events = yield* EventStore
    const quarantine = yield* QuarantineStore
    const curator = yield* CuratorStore
    const transaction = yield* Transaction
    const runId = options.runId
    const window = historyWindowOf(options)

    const opened: StartingPoint = yield* startingPoint(options, yield* Journal.isoNow, critic)
    yield* commits.join
    const goal = opened.checkpoint.goal
    const budget = yield* Budget.make(opened.checkpoint.policy, opened.checkpoint.usage)
    const progress = yield* Ref.make<Iteration.Progress>({
      criteria_met: opened.checkpoint.criteria_met,
      output: opened.checkpoint.output,
      history: opened.history,
      suggestions: opened.suggestions
    })
    const journal = yield* Journal.make({
      runId,
      firstSeq: yield* events.nextSeq(runId),
      remaining: budget.remaining,
      onEvent: options.onEvent ?? (() => Effect.void)
    })

    const checkpointOf = (status: RunStatus, haltReason: string | null, usage: BudgetUsage, progress: Iteration.Progress) =>
      Effect.map(Journal.isoNow, (now) =>
        new Checkpoint({
          ...opened.checkpoint,
          status,
          halt_reason: haltReason,
          usage,
          criteria_met: progress.criteria_met,
          output: progress.output,
          updated_at: now
        }, true))

    /** Claims a run that exists, or is rebuilt from its history, in one transaction. */
    const reclaim = (checkpoint: Checkpoint, written: ReadonlyArray<AutopilotEvent>) =>
      Effect.gen(function*() {
        const { corrupt, expected } = opened
        let quarantineId: number | undefined
        if (expected === undefined) {
          if (!(yield* runs.create(checkpoint))) return yield* new Conflict()
        } else {
          if (corrupt !== undefined) {
            const moved = yield* quarantine.checkpoint({ runId, expected, error: corrupt.error, at: checkpoint.updated_at })
            if (Option.isNone(moved)) return yield* new Conflict()
            quarantineId = moved.value
          }
          if (!(yield* runs.replace(checkpoint, expected))) return yield* new Conflict()
        }
        const quarantinedSteps = opened.rebuiltFrom === undefined ? [] : yield* quarantine.stepsAfter({
          runId,
          iteration: opened.rebuiltFrom,
          error: "the step does not decode",
          at: checkpoint.updated_at
        })
        // The run does those iterations again: samples of the work moved aside go, and the new work is captured.
        if (opened.rebuiltFrom !== undefined) yield* curator.removeAfter(runId, opened.rebuiltFrom)
        yield* events.append(written)
        yield* runs.clearStop(runId)
        return { quarantineId, quarantinedSteps }
      })

    // A new run is created with the commits of other sessions starting at the same time. A stop request
    // left for an earlier session is not meant for this one.
    const claim = (checkpoint: Checkpoint, written: ReadonlyArray<AutopilotEvent>) =>
      opened.expected === undefined && opened.rebuiltFrom === undefined
        ? Effect.flatMap(commits.create({ events: written, checkpoint, clearStop: runId }), (created) =>
          created ? Effect.succeed({ quarantineId: undefined, quarantinedSteps: [] }) : Effect.fail(new Conflict()))
        : transaction(reclaim(checkpoint, written))

    yield* journal.emit({
      kind: "run_started",
      goal,
      policy: budget.policy,
      resuming: options.resume === true,
      iterations: opened.checkpoint.usage.iterations,
      usage: opened.checkpoint.usage,
      ...(opened.checkpoint.llm === undefined ? {} : { llm: opened.checkpoint.llm }),
      ...(opened.checkpoint.critic === undefined ? {} : { critic: opened.checkpoint.critic }),
      ...(opened.checkpoint.specialist === undefined ? {} : { specialist: opened.checkpoint.specialist }),
      ...(opened.checkpoint.fanout === undefined ? {} : { fanout: opened.checkpoint.fanout }),
      ...(opened.checkpoint.mission === undefined ? {} : { mission: opened.checkpoint.mission }),
      project: opened.checkpoint.project
    })
    // The first heartbeat is durable with the claim, not in a commit of its own; `heartbeat` writes the rest.
    const usage = yield* budget.usage
    yield* journal.emit({ kind: "heartbeat", iteration: usage.iterations + 1, usage, criteria_met: opened.checkpoint.criteria_met })
    const first = yield* checkpointOf("running", null, usage, yield* Ref.get(progress))
    const { quarantineId, quarantinedSteps } = yield* journal.commit((written) => claim(first, written)).pipe(
      Effect.catchTag("Conflict", () =>
        Effect.gen(function*() {
          const now = yield* runs.load(runId)
          const owner = now._tag === "Found" ? now.checkpoint.owner : null
          return yield* options.resume && owner !== null
            ? Effect.fail(new RunInProgress({ run_id: runId, pid: owner.pid, host: owner.host }))
            : Effect.fail(new RunAlreadyExists({ run_id: runId, status: now._tag === "Found" ? now.checkpoint.status : "just created" }))
        }))
    )
    if (opened.corrupt !== undefined) {
      yield* journal.emitNow({
        kind: "checkpoint_quarantined",
        quarantine_id: quarantineId ?? 0,
        error: opened.corrupt.error,
        recovered_from: opened.corrupt.recoveredFrom,
        quarantined_steps: quarantinedSteps
      })
    }
    const artifacts = yield* Artifacts.ledger(runId)

    const record = (iteration: number, attempt: Iteration.Attempt) =>
      Effect.gen(function*() {
        const usage = yield* budget.charge({ iterations: 1 })
        const settled = Iteration.settle({
          goal,
          iteration,
          at: yield* Journal.isoNow,
          usage,
          window,
          progress: yield* Ref.get(progress),
          attempt
        })
        const made = yield* artifacts.collect({ iteration, at: settled.step.at, answer: attempt.response.content, toolCalls: attempt.toolCalls })
        yield* Effect.forEach([...made.events, ...settled.events], journal.emit, { discard: true })
        const checkpoint = yield* checkpointOf("running", null, usage, settled.progress)
        // An iteration that did not become durable is not counted: its events are dropped unseen and
        // its charge undone, so a resume repeats it instead of skipping it. Its commit is written with
        // those of other sessions committing at the same time, and fails only if it fails alone.
        yield* journal.commit((written) =>
          commits.commit({ steps: [{ runId, step: settled.step }], events: written, artifacts: { runId, artifacts: made.artifacts }, checkpoint })
        ).pipe(Effect.tapError(() => budget.charge({ iterations: -1 })))
        yield* made.committed
        yield* Ref.set(progress, settled.progress)
      })

    const finish = (outcome: Outcome) =>
      Effect.gen(function*() {
        const usage = yield* budget.usage
        const now = yield* Ref.get(progress)
        const result: MissionResult = {
          run_id: runId,
          status: outcome.status,
          halt_reason: outcome.reason,
          iterations: usage.iterations,
          usage,
          criteria_met: now.criteria_met,
          output: now.output
        }
        if (outcome.exceeded !== undefined) {
          const { axis, reason, usage: at } = outcome.exceeded
          yield* journal.emit({ kind: "budget_exceeded", axis, reason, usage: at })
        }
        const unfinished = outcome.unfinished ?? []
        yield* journal.emit({ kind: "result", ...result, ...(unfinished.length === 0 ? {} : { unfinished_calls: unfinished }) })
        const checkpoint = yield* checkpointOf(outcome.status, outcome.reason, usage, now)
        yield* journal.commit((written) => commits.commit({ events: written, checkpoint, clearStop: runId }))
        return result
      }).pipe(Effect.uninterruptible)

    const { fanout, llm, specialist } = opened.checkpoint
    return { runId, goal, budget, journal, window, llm, critic: opened.checkpoint.critic, specialist, fanout, project: opened.checkpoint.project, progress, record, finish } satisfies Session
  })

/** A heartbeat every interval after the first (which `open` writes with the claim), durable at once. */
export const heartbeat = (session: Session, interval: Duration.DurationInput) =>
  Effect.gen(function*() {
    const usage = yield* session.budget.usage
    yield* session.journal.emitNow({
      kind: "heartbeat",
      iteration: usage.iterations + 1,
      usage,
      criteria_met: (yield* Ref.get(session.progress)).criteria_met
    })
  }).pipe(Effect.delay(interval), Effect.forever)
