import { Context, DateTime, Duration, Effect, Layer, Option, Schedule } from "effect"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type * as LlmChoice from "../domain/LlmChoice.js"
import type { MissionNotFound } from "../domain/MissionRecord.js"
import { type IllegalTransition, isEnd } from "../domain/MissionState.js"
import type * as Mission from "../runtime/Mission.js"
import { Owner } from "../domain/Owner.js"
import { Firings } from "../missions/Firings.js"
import { MissionRunner } from "../missions/MissionRunner.js"
import { Missions } from "../missions/Missions.js"
import { DaemonStore, type RunnerRow } from "../store/DaemonStore.js"
import { GoalQueue } from "../queue/GoalQueue.js"
import { Runs } from "../runtime/Runs.js"
import { RunStore } from "../store/RunStore.js"
import type { WorkOrder } from "./WorkOrder.js"

/** The halt reason of a run a draining daemon stopped: such a run is resumed by the runner that takes it over. */
export const drainReason = "daemon draining"

export interface ExecuteOptions {
  /** The runner running it, for the mission's history and the takeover rule. */
  readonly runner: string
  /** Completes when the run must halt at its next boundary (the daemon drains). */
  readonly halt: Effect.Effect<string>
  /** Told just before the run starts or resumes (not when it had already ended). */
  readonly starting: Effect.Effect<void>
}

export interface Config {
  /** The model of work that has none of its own yet, as for `autopilot run`. */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** A runner whose heartbeat is older than this is gone (on another machine; see `mayTakeOver`): its runs are taken over without `--force`. */
  readonly lease: Duration.Duration
}

/**
 * Runs one piece of work (a queued run, an approved mission, a firing of a scheduled one) to its end, the same way whoever delivers it: a new run starts, a run a lost or
 * drained runner left behind resumes from its checkpoint, and work that already ended is not run again.
 * Never fails: whatever happened is the outcome the daemon records.
 */
export class WorkRunner extends Context.Tag("autopilot/WorkRunner")<
  WorkRunner,
  { readonly execute: (order: WorkOrder, options: ExecuteOptions) => Effect.Effect<Outcome> }
>() {}

/**
 * How a delivery of work ended: the run's status (or why it could not run), and whether the run had
 * already ended before this delivery (a runner that lost the shard as the run ended did not answer).
 */
export interface Outcome {
  readonly outcome: string
  readonly already: boolean
}

const ended = (outcome: string): Outcome => ({ outcome, already: false })
const already = (outcome: string): Outcome => ({ outcome, already: true })

/** Whether a run is over for good: not running, and not halted by a draining daemon (that one goes on elsewhere). */
const settled = (c: Checkpoint) => c.status !== "running" && !(c.status === "halted" && c.halt_reason?.startsWith(drainReason) === true)

/**
 * Whether a run whose last writer was `owner` may be taken over without `--force`: only from a daemon the
 * cluster knows is gone (stopped, or silent past its lease), never from another live process. On this
 * machine the owner's pid says whether it lives, and a live daemon is not gone however long it was silent:
 * a database lock held past the lease silences every daemon at once, and the run it holds goes on when the
 * lock is released. On another machine, silence past the lease is all there is to go on. (A dead owner needs
 * no take-over: its claim is free.)
 */
export const mayTakeOver = (owner: Owner | null, runners: ReadonlyArray<RunnerRow>, now: DateTime.Utc): boolean => {
  if (owner === null || !owner.isAlive) return false
  if (owner.host === Owner.current.host) return owner.pid === Owner.current.pid
  return runners.some((r) => r.host === owner.host && r.pid === owner.pid && !r.aliveAt(now))
}

export const make = (config: Config) =>
  Effect.gen(function*() {
    const missionRunner = yield* MissionRunner
    const missions = yield* Missions
    const runStore = yield* RunStore
    const daemons = yield* DaemonStore
    const queue = yield* GoalQueue
    const firings = yield* Firings
    const runs = yield* Runs

    const takeOver = (c: Checkpoint) => Effect.map(Effect.all([daemons.runners, DateTime.now]), ([runners, now]) => mayTakeOver(c.owner, runners, now))

    const mission = (order: WorkOrder, options: ExecuteOptions) =>
      Effect.gen(function*() {
        const project = order.project_id ?? ""
        const missionId = order.mission_id ?? order.run_id
        const record = yield* missions.get(project, missionId)
        if (isEnd(record.status)) return already(record.status)
        const loaded = yield* runStore.load(order.run_id)
        if (loaded._tag === "Found" && settled(loaded.checkpoint) && record.status !== "running") return already(record.status)
        yield* options.starting
        const ran = yield* missionRunner.run(project, missionId, {
          actor: `daemon:${options.runner}`,
          llm: config.llm,
          takeOver: loaded._tag === "Found" ? yield* takeOver(loaded.checkpoint) : false,
          unlessEnded: settled,
          halt: options.halt
        })
        return ran.caughtUp ? already(ran.mission.status) : ended(ran.mission.status)
      })

    const queued = (order: WorkOrder, options: ExecuteOptions): Effect.Effect<Outcome, Mission.MissionError> =>
      Effect.gen(function*() {
        const entry = yield* queue.get(order.run_id)
        if (Option.isNone(entry)) return ended(`refused: no queue entry ${order.run_id}`)
        const loaded = yield* runStore.load(order.run_id)
        if (loaded._tag === "Found" && settled(loaded.checkpoint)) return already(loaded.checkpoint.status)
        yield* options.starting
        // The run may end between the look above and the start (its old runner finishing it): the start
        // decides again on the checkpoint it claims, so it never runs an ended run a second time.
        return yield* runs.start({
          ...queue.startOptions(entry.value),
          resume: loaded._tag !== "Missing",
          takeOver: loaded._tag === "Found" ? yield* takeOver(loaded.checkpoint) : false,
          unlessEnded: settled,
          halt: options.halt
        }).pipe(
          Effect.map((result) => ended(result.status)),
          // Started meanwhile by another delivery of the same entry: looked at again, it is that one's to run
          // (waited out while it runs) or already ended, never refused.
          Effect.catchTag("RunAlreadyExists", (e) => (loaded._tag === "Missing" ? Effect.suspend(() => queued(order, options)) : Effect.succeed(already(e.status))))
        )
      })

    /** One firing of a scheduled mission: its own run; the mission stays armed. */
    const firing = (order: WorkOrder, options: ExecuteOptions) =>
      Effect.gen(function*() {
        const ref = { project: order.project_id ?? "", mission_id: order.mission_id ?? "", slot: order.slot ?? "", run_id: order.run_id, kind: order.firing_kind ?? "scheduled" }
        const loaded = yield* runStore.load(order.run_id)
        const record = yield* firings.get(ref)
        if (Option.isSome(record) && record.value.status !== "running" && (loaded._tag !== "Found" || settled(loaded.checkpoint))) {
          return already(record.value.status)
        }
        yield* options.starting
        const ran = yield* missionRunner.run(ref.project, ref.mission_id, {
          actor: `daemon:${options.runner}`,
          llm: config.llm,
          takeOver: loaded._tag === "Found" ? yield* takeOver(loaded.checkpoint) : false,
          unlessEnded: settled,
          halt: options.halt,
          firing: ref
        })
        return ran.caughtUp ? already(ran.result.status) : ended(ran.result.status)
      })

    const work = (order: WorkOrder, options: ExecuteOptions): Effect.Effect<Outcome, Mission.MissionError | MissionNotFound | IllegalTransition> =>
      order.kind === "queued" ? queued(order, options) : order.kind === "firing" ? firing(order, options) : mission(order, options)

    return WorkRunner.of({
      execute: (order, options) =>
        work(order, options).pipe(
          // A runner that lost the run's shard may still be halting it (a model call can take minutes), and
          // a run started by hand is someone's: the claim is waited out for as long as its process lives,
          // never broken, and the run is then resumed, or found ended.
          Effect.retry({
            while: (error) => error._tag === "RunInProgress",
            schedule: Schedule.spaced(Duration.divide(config.lease, 10).pipe(Option.getOrElse(() => config.lease)))
          }),
          Effect.catchAll((error) => Effect.succeed(ended(`refused: ${error.message}`)))
        )
    })
  })

export const layer = (config: Config) => Layer.effect(WorkRunner, make(config))
