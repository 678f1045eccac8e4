import { Context, Deferred, Effect, Exit, FiberId, Layer, type Scope } from "effect"
import type { Artifact } from "../domain/Artifact.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { PersistenceError } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { ArtifactStore } from "./ArtifactStore.js"
import { whileBusy } from "./Database.js"
import { EventStore } from "./EventStore.js"
import { RunStore } from "./RunStore.js"
import { type StepOf, StepStore } from "./StepStore.js"
import { Transaction } from "./Transaction.js"

/** What one commit makes durable: all of it, or none of it. */
export interface Writes {
  readonly steps?: ReadonlyArray<StepOf> | undefined
  /** Each run's in seq order. */
  readonly events?: ReadonlyArray<AutopilotEvent> | undefined
  readonly checkpoint?: Checkpoint | undefined
  /** New versions of a run's artifacts. */
  readonly artifacts?: { readonly runId: string; readonly artifacts: ReadonlyArray<Artifact> } | undefined
  /** A run whose pending stop request this commit answers, and so deletes. */
  readonly clearStop?: string | undefined
}

/**
 * Group commit: the commits that sessions of one process make at the same time (the children of a
 * fan-out, concurrent runs sharing a Storage) are written together, in one transaction. Each caller is
 * answered only once its writes are durable, and fails exactly as it would have failed alone. A batch is
 * a transaction of its own: never commit from inside a `Transaction`.
 */
export class GroupCommit extends Context.Tag("autopilot/GroupCommit")<
  GroupCommit,
  {
    /** Makes `writes` durable, together with whatever other commits are waiting. */
    readonly commit: (writes: Writes) => Effect.Effect<void, PersistenceError>
    /**
     * A new run's first commit: written only if no run has its id yet; false, writing nothing, if one
     * has (another session created it meanwhile).
     */
    readonly create: (writes: Writes & { readonly checkpoint: Checkpoint }) => Effect.Effect<boolean, PersistenceError>
    /**
     * Counts a session among those committing through this store until the scope closes. Alone, a
     * commit is written at once; with others, it first lets them join it.
     */
    readonly join: Effect.Effect<void, never, Scope.Scope>
  }
>() {}

export interface Options {
  /** The most commits written in one transaction (default 256); 1 writes each in its own, as without batching. */
  readonly maxBatch?: number | undefined
}

/** A commit waiting to be written, and how its caller is answered: its outcome, or that it writes next. */
interface Member {
  readonly writes: Writes
  readonly create: boolean
  readonly answer: Deferred.Deferred<boolean | "lead", PersistenceError>
}


/** Resumes once the event loop has run what is ready now: timers that are due, I/O callbacks. */
const endOfTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * No fiber of its own: a commit that finds no batch being written writes one itself, with every commit
 * waiting (up to `maxBatch`), then hands the turn to the next one waiting. Commits that arrive while a
 * batch is being written form the next batch.
 */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    const steps = yield* StepStore
    const events = yield* EventStore
    const artifacts = yield* ArtifactStore
    const transaction = yield* Transaction
    const maxBatch = Math.max(1, options.maxBatch ?? 256)
    // Plain state: each change happens within one synchronous step, so no two fibers interleave in it.
    let writing = false
    let sessions = 0
    const waiting: Array<Member> = []

    /** Everything the members write but their new runs, skipping what none of them has. */
    const rest = (kept: ReadonlyArray<Member>) => {
      const writes: Array<Effect.Effect<void, PersistenceError>> = []
      const stepsOf = kept.flatMap((m) => m.writes.steps ?? [])
      const eventsOf = kept.flatMap((m) => m.writes.events ?? [])
      const checkpoints = kept.flatMap((m) => (m.create || m.writes.checkpoint === undefined ? [] : [m.writes.checkpoint]))
      const stops = kept.flatMap((m) => (m.writes.clearStop === undefined ? [] : [m.writes.clearStop]))
      if (stepsOf.length > 0) writes.push(steps.append(stepsOf))
      if (eventsOf.length > 0) writes.push(events.append(eventsOf))
      if (checkpoints.length > 0) writes.push(runs.saveAll(checkpoints))
      if (stops.length > 0) writes.push(runs.clearStops(stops))
      // Artifacts are stored a run at a time: few iterations make any.
      for (const m of kept) {
        if (m.writes.artifacts !== undefined && m.writes.artifacts.artifacts.length > 0) {
          writes.push(artifacts.append(m.writes.artifacts.runId, m.writes.artifacts.artifacts))
        }
      }
      return Effect.all(writes, { discard: true })
    }

    /**
     * One transaction: first the new runs (a member whose run exists is left out), then the rest. Rows
     * are encoded inside it, so one that cannot be is a defect of this batch, not of the writer.
     */
    const write = (batch: ReadonlyArray<Member>): Effect.Effect<ReadonlyArray<boolean>, PersistenceError> =>
      Effect.suspend(() => {
        const creating = batch.flatMap((m) => (m.create && m.writes.checkpoint !== undefined ? [m.writes.checkpoint] : []))
        const written = creating.length === 0
          ? Effect.as(rest(batch), batch.map(() => true))
          : Effect.flatMap(runs.createAll(creating), (ids) => {
            const created = new Set(ids)
            // Two members creating one run: the first wins, as its row was inserted first.
            const outcomes = batch.map((m) => !m.create || created.delete(m.writes.checkpoint?.run_id ?? ""))
            return Effect.as(rest(batch.filter((_, i) => outcomes[i])), outcomes)
          })
        return Effect.retry(transaction(written), { schedule: whileBusy, while: (e) => e.busy })
      })

    // A failed batch writes nothing. Its members are then tried one by one, each in its own transaction,
    // so that one bad commit does not fail the others; a commit that fails alone fails its caller.
    const flush = (batch: ReadonlyArray<Member>) =>
      Effect.flatMap(Effect.exit(write(batch)), (exit) =>
        Exit.isSuccess(exit)
          ? Effect.succeed(exit.value.map((written) => Exit.succeed(written)))
          : batch.length === 1
          ? Effect.succeed([exit.pipe(Exit.as(false))])
          : Effect.forEach(batch, (m) => Effect.exit(Effect.map(write([m]), (outcomes) => outcomes[0] ?? false))))

    /** Answers the batch's other members, hands the turn to the next one waiting, if any, and says how `me` fared. */
    const answer = (batch: ReadonlyArray<Member>, outcomes: ReadonlyArray<Exit.Exit<boolean, PersistenceError>>) => {
      for (let i = 1; i < batch.length; i++) Deferred.unsafeDone(batch[i]!.answer, outcomes[i]!)
      const next = waiting.shift()
      if (next === undefined) writing = false
      else Deferred.unsafeDone(next.answer, Exit.succeed("lead"))
      return outcomes[0]!
    }

    /**
     * Writes `me` with whatever is waiting, answers the others, and hands the turn on. With other
     * sessions about, the event loop first finishes its turn: those woken in the same turn (their model
     * calls answered together) commit meanwhile, instead of each being written alone. A turn is
     * microseconds, not a timer.
     */
    const lead = (me: Member): Effect.Effect<boolean, PersistenceError> =>
      Effect.zipRight(
        sessions > 1 && maxBatch > 1 ? endOfTurn : Effect.void,
        Effect.suspend(() => {
          const batch = [me, ...waiting.splice(0, maxBatch - 1)]
          // Whatever happens, every member is answered and the turn handed on: a stuck turn would stop
          // every later commit.
          return flush(batch).pipe(
            Effect.catchAllCause((cause) => Effect.succeed(batch.map(() => Exit.failCause(cause)))),
            Effect.flatMap((outcomes) => answer(batch, outcomes))
          )
        })
      )

    // Uninterruptible: a member that is waiting may be handed the turn, and must then take it.
    const submit = (writes: Writes, create: boolean) =>
      Effect.uninterruptible(Effect.suspend(() => {
        const me: Member = { writes, create, answer: Deferred.unsafeMake(FiberId.none) }
        if (!writing) {
          writing = true
          return lead(me)
        }
        waiting.push(me)
        return Effect.flatMap(Deferred.await(me.answer), (turn) => (turn === "lead" ? lead(me) : Effect.succeed(turn)))
      }))

    return GroupCommit.of({
      commit: (writes) => Effect.asVoid(submit(writes, false)),
      create: (writes) => submit(writes, true),
      join: Effect.acquireRelease(Effect.sync(() => void sessions++), () => Effect.sync(() => void sessions--))
    })
  })

/** Group commit over the stores and transaction provided. */
export const layer = (options: Options = {}) => Layer.effect(GroupCommit, make(options))
