import { Cause, Duration, Effect, Either, Exit, Fiber, Option, Queue, Ref, Stream, Take } from "effect"
import type { BudgetPolicy, BudgetUsage } from "../domain/Budget.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { BadInput, RunAlreadyExists, RunInProgress, RunNotFound } from "../domain/Errors.js"
import { LlmError, PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Goal } from "../domain/Goal.js"
import type { LlmChoice } from "../domain/LlmChoice.js"
import { type RunStatus, statusOf } from "../domain/RunStatus.js"
import type { ModelCall } from "../domain/Step.js"
import type { Llm } from "../llm/Llm.js"
import type { Specialist } from "../specialists/Specialist.js"
import type { Storage } from "../store/Storage.js"
import type { Toolkit } from "../tools/Tool.js"
import * as Critic from "./Critic.js"
import * as EventLoop from "./EventLoop.js"
import * as HaltControl from "./HaltControl.js"
import * as Iteration from "./Iteration.js"
import * as LiveText from "./LiveText.js"
import * as ModelCalls from "./ModelCalls.js"
import * as Session from "./Session.js"
import type { OpenOptions } from "./StartingPoint.js"

export type PolicyOverrides = Partial<ConstructorParameters<typeof BudgetPolicy>[0]>

export interface MissionOptions {
  readonly runId: string
  /** Required for a new run; a resumed run keeps its own. */
  readonly goal?: Goal | undefined
  /** Caps for this session. A new run fills the rest with defaults; a resumed run keeps its earlier caps. */
  readonly policy?: PolicyOverrides | undefined
  readonly resume?: boolean | undefined
  /**
   * Resume even if the checkpoint's owner looks alive: for an owner that cannot be checked (another host,
   * a container that was replaced, a pid reused by another program). The caller vouches it is gone.
   */
  readonly takeOver?: boolean | undefined
  /**
   * For work delivered again (a daemon's): a run this says has ended is not run again, and the start fails
   * with `RunAlreadyExists` and the run's status. Decided on the very checkpoint the session would claim, so
   * a run that ends while the caller looks is never started a second time.
   */
  readonly unlessEnded?: ((checkpoint: Checkpoint) => boolean) | undefined
  /**
   * Which model Layer provides `Llm` (the caller provides the Layer itself), recorded with the run so that
   * a resume uses it again. A resume without it keeps the run's own.
   */
  readonly llm?: LlmChoice | undefined
  /**
   * The role the run runs as: its brief in the act prompt, only its tools offered (a call to another is
   * refused), its model tier passed on with every request. Recorded with the run, so a resume keeps it.
   */
  readonly specialist?: Specialist | undefined
  /** Completes with a reason when the run should halt at its next iteration boundary, e.g. on a signal. */
  readonly halt?: Effect.Effect<string> | undefined
  /** How long the iteration in flight may go on after a halt request before it is interrupted. */
  readonly haltGrace?: Duration.DurationInput | undefined
  /** Completes when a requested halt must not wait out the grace period (a second signal). */
  readonly haltNow?: Effect.Effect<void> | undefined
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** How many earlier iterations the model sees. */
  readonly historyWindow?: number | undefined
  /** Receives every event once it is durable, in `seq` order. */
  readonly onEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
  /**
   * Receives the model's answer as it is generated (act calls are then streamed); shown live, never
   * stored, and a call that is retried streams again from its start.
   */
  readonly onDelta?: ((delta: ModelCalls.Delta) => Effect.Effect<void>) | undefined
  /**
   * The project the run belongs to (1-64 letters, digits, ".", "_", "-"): a new run records it, "default"
   * when absent (a mission's run: its mission's); a resume keeps the run's own, and refuses another.
   */
  readonly project?: string | undefined
}

export interface MissionResult {
  readonly run_id: string
  readonly status: Exclude<RunStatus, "running">
  readonly halt_reason: string | null
  readonly iterations: number
  readonly usage: BudgetUsage
  readonly criteria_met: ReadonlyArray<boolean>
  readonly output: string
}

export type MissionError = BadInput | RunNotFound | RunAlreadyExists | RunInProgress | PersistenceError

/** What a mission needs from its environment. */
export type MissionContext = Llm | Toolkit | Storage

/** An unexpected end as the `halt_reason` of a failed run. */
export const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (error instanceof LlmError) return `model call failed: ${error.message}`
  if (error instanceof PersistenceError) return `database error: ${error.message}`
  return `unexpected error: ${error instanceof Error ? error.message : String(error)}`
}

/**
 * Runs a mission until every criterion is met, a budget axis trips, a halt is requested or the model
 * keeps failing. Every iteration ends in one transaction writing the step, its events and the checkpoint.
 */
export const run = (given: MissionOptions): Effect.Effect<MissionResult, MissionError, MissionContext> =>
  Effect.scoped(Effect.gen(function*() {
    const options = yield* LiveText.attach(given)
    const { critic, session } = yield* open(options)
    const { budget, goal, journal, progress, runId } = session

    const models = yield* ModelCalls.make({
      runId,
      criteria: goal.success_criteria.length,
      model: session.llm?.model,
      tier: session.specialist?.model_tier,
      specialist: session.specialist?.id,
      budget,
      journal,
      onDelta: options.onDelta
    })

    const work = Effect.gen(function*() {
      const halts = yield* HaltControl.make({
        runId,
        journal,
        halt: options.halt,
        grace: options.haltGrace,
        now: options.haltNow
      })
      const iterations = yield* Iteration.make({ goal, budget, journal, models, critic, specialist: session.specialist })

      /** Why the run must stop before its next iteration, if it must. */
      const boundary = Effect.gen(function*() {
        const { criteria_met: met, ended } = yield* Ref.get(progress)
        if (met.every(Boolean)) return Option.some<Session.Outcome>({ status: "completed", reason: ended ?? null })
        const requested = yield* halts.requested
        if (Option.isSome(requested)) return Option.some<Session.Outcome>({ status: statusOf(met), reason: requested.value })
        const exceeded = yield* budget.exceeded
        return Option.map(exceeded, (exceeded): Session.Outcome => ({ status: statusOf(met), reason: exceeded.reason, exceeded }))
      })

      /** Iterations until a boundary says stop. Each commit is whole: a cut never lands inside one. */
      const iterate = Effect.gen(function*() {
        while (true) {
          const stop = yield* boundary
          if (Option.isSome(stop)) return stop.value
          const iteration = (yield* budget.usage).iterations + 1
          const done = yield* iterations.attempt(iteration, yield* Ref.get(progress)).pipe(
            Effect.map(Either.right),
            Effect.catchIf((error) => error._tag === "LlmError" && error.budget_exhausted === true, (error) => Effect.succeed(Either.left(error)))
          )
          if (Either.isLeft(done)) {
            // A proxy's budget is the run's budget too: halting on it is a budget stop, not a failure.
            const reason = `dollar limit reached: ${done.left.message}`
            return {
              status: statusOf((yield* Ref.get(progress)).criteria_met),
              reason,
              exceeded: { axis: "dollars", reason, usage: yield* budget.usage }
            } satisfies Session.Outcome
          }
          yield* Effect.uninterruptible(Effect.zipRight(session.record(iteration, done.right), models.stepped))
          // Between iterations the thread goes back to the event loop, however fast they come (see EventLoop).
          yield* EventLoop.endOfTurn
        }
      })

      /**
       * The iteration in flight is cut short when the wall-clock axis runs out, or a halt's grace period
       * does; the boundary after it says why the run stops. One fiber and one watcher per session bound
       * every iteration: a race per iteration would cost more than the rest of a fast iteration.
       */
      const loop = Effect.gen(function*() {
        while (true) {
          const bounded = Option.match(yield* budget.timeLeft, {
            onNone: () => Effect.asSome(iterate),
            // With no time left, the first boundary stops the run: there is nothing to race.
            onSome: (left) => (Duration.isZero(left) ? Effect.asSome(iterate) : Effect.timeoutOption(iterate, left))
          })
          const iterating = yield* Effect.fork(halts.guard(bounded))
          // Interrupted from outside, the session waits for its iterations to stop before it finishes.
          const ended = yield* Fiber.join(iterating).pipe(Effect.onInterrupt(() => Fiber.interrupt(iterating)))
          if (Option.isSome(ended)) return ended.value
        }
      })

      const beating = yield* Effect.forkScoped(Session.heartbeat(session, options.heartbeatInterval ?? "30 seconds"))
      return yield* loop.pipe(Effect.ensuring(Fiber.interrupt(beating)))
    })

    return yield* conclude(session, work, models.unstepped)
  }))

/**
 * Opens a run's session (a mission's or a fan-out's), with the critic provided for this session, else the
 * one the run was started with.
 */
export const open = (options: OpenOptions) =>
  Effect.gen(function*() {
    const provided = yield* Effect.serviceOption(Critic.Critic)
    // Opening is short database work, never a model call; once it has claimed the run, the run is ours
    // to finish, so nothing may cut it off half-way.
    const session = yield* Effect.uninterruptible(Session.open(options, Option.getOrUndefined(provided)?.settings))
    const critic = Option.getOrElse(provided, () => (session.critic === undefined ? undefined : Critic.make(session.critic)))
    return { session, critic }
  })

/**
 * Runs a session's work and finishes the session with its outcome. However it ends, it leaves a true
 * checkpoint and one `result` behind: interrupted from outside (by the embedding program) too, after
 * which it stays interrupted.
 */
export const conclude = <E, R>(
  session: Session.Session,
  work: Effect.Effect<Session.Outcome, E, R>,
  /** The calls of the iteration in flight, if the work makes any itself: an end that cuts it short lists them. */
  unstepped: Effect.Effect<ReadonlyArray<ModelCall>> = Effect.succeed([])
) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.zip(Effect.exit(restore(work)), Effect.suspend(() => unstepped)), ([exit, unfinished]) => {
      if (Exit.isSuccess(exit)) return session.finish({ ...exit.value, unfinished })
      if (!Cause.isInterruptedOnly(exit.cause)) return session.finish({ status: "failed", reason: describeFailure(exit.cause), unfinished })
      return Ref.get(session.progress).pipe(
        Effect.flatMap(({ criteria_met }) => session.finish({ status: statusOf(criteria_met), reason: "interrupted", unfinished })),
        Effect.ignore,
        Effect.zipRight(Effect.interrupt)
      )
    })
  )

/** The same mission as a stream of its events, ending with the `result` event. */
export const stream = (
  options: Omit<MissionOptions, "onEvent">
): Stream.Stream<AutopilotEvent, MissionError, MissionContext> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Take.Take<AutopilotEvent, MissionError>>()
    yield* run({ ...options, onEvent: (event) => Queue.offer(queue, Take.of(event)) }).pipe(
      Effect.exit,
      Effect.flatMap((exit) => Queue.offer(queue, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))),
      Effect.forkScoped
    )
    return Stream.flattenTake(Stream.fromQueue(queue))
  }))
