import { Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import * as QueueEntry from "../domain/QueueEntry.js"
import { type RunState, type StartOptions, stateOf } from "../runtime/Runs.js"
import { QueueStore } from "../store/QueueStore.js"
import { RunStore } from "../store/RunStore.js"

/** An entry as `queue list` shows it. */
export interface Listed {
  readonly entry: QueueEntry.QueueEntry
  /** Queued, and its not-before (if any) has come: a daemon with room takes it next, in its turn. */
  readonly ready: boolean
  /** A dispatched entry's run as it is now; null while it has no checkpoint (not started yet, or deleted), and for a queued one. */
  readonly run: RunState | null
}

export interface ListOptions {
  /** Only the entries of this status; both when absent. */
  readonly status?: QueueEntry.QueueStatus | undefined
  /** Only the entries of this project; every project's when absent. */
  readonly project?: string | undefined
}

/**
 * Runs waiting their turn: queued by anyone (`queue add`, a library caller), taken by the daemons in
 * priority order, each by exactly one. Time is the Clock's, so a not-before comes when the Clock says.
 */
export class GoalQueue extends Context.Tag("autopilot/GoalQueue")<
  GoalQueue,
  {
    /**
     * Queues a run, checked as `autopilot run` checks its input (a model's key or script is checked by
     * `Runs.start` where it runs); an id already queued (or dispatched) or already a run is refused.
     */
    readonly add: (input: QueueEntry.NewEntry) => Effect.Effect<QueueEntry.QueueEntry, BadInput | QueueEntry.RunIdTaken | PersistenceError>
    /**
     * Queued entries in the order the daemons take them (priority, highest first, then the order they were
     * queued), then dispatched ones, most recently taken first, with their runs' states; or only those of
     * `status`.
     */
    readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<Listed>, PersistenceError>
    /**
     * Removes a queued entry; one already dispatched has become a run, which `autopilot stop` stops. With
     * `project`, another project's entry is not found, as if absent.
     */
    readonly remove: (id: string, options?: { readonly project?: string | undefined }) => Effect.Effect<void, QueueEntry.QueueEntryNotFound | BadInput | PersistenceError>
    /** Up to `limit` entries ready now, in the order they are taken. */
    readonly ready: (limit: number) => Effect.Effect<ReadonlyArray<QueueEntry.QueueEntry>, BadInput | PersistenceError>
    /**
     * Takes an entry for its run to start: true for exactly one caller, however many race for it; false if
     * another took it first or it was removed.
     */
    readonly dispatch: (id: string) => Effect.Effect<boolean, PersistenceError>
    /** An entry, queued or dispatched, by its id. */
    readonly get: (id: string) => Effect.Effect<Option.Option<QueueEntry.QueueEntry>, PersistenceError>
    /** What `Runs.start` is given to run the entry as a new run. */
    readonly startOptions: (entry: QueueEntry.QueueEntry) => StartOptions
  }
>() {}

/** `queue list --format json`, `queue add --format json` and the API: an entry, whether it is ready, its run's state. */
export const listedJson = ({ entry, ready, run }: Listed) => {
  const encoded = Schema.encodeSync(QueueEntry.QueueEntry)(entry)
  return {
    id: entry.id,
    project: entry.project,
    status: entry.status,
    ready,
    run_status: run,
    priority: entry.priority,
    not_before: entry.not_before,
    objective: entry.objective,
    criteria: entry.criteria,
    policy: encoded.policy,
    llm: encoded.llm,
    specialist: entry.specialist?.id ?? null,
    created_at: entry.created_at,
    dispatched_at: entry.dispatched_at
  }
}

/** What `Runs.start` is given to run an entry as a new run: its id, goal, caps, model and specialist. */
export const startOptions = (entry: QueueEntry.QueueEntry): StartOptions => ({
  runId: entry.id,
  goal: entry.goal,
  policy: entry.policy,
  llm: entry.llm,
  specialist: entry.specialist ?? undefined,
  project: entry.project
})

const nowIso = Effect.map(DateTime.now, DateTime.formatIso)

export const make = Effect.gen(function*() {
  const store = yield* QueueStore
  const runs = yield* RunStore

  /** Why `id` cannot be queued, if it cannot. */
  const taken = (id: string) =>
    Effect.gen(function*() {
      const status = yield* store.statusOf(id)
      if (Option.isSome(status)) {
        return status.value === "queued"
          ? `run id "${id}" is already queued (see \`autopilot queue list\`); choose another --run-id`
          : `run id "${id}" was already queued and has been started as run ${id} (see \`autopilot show ${id}\`); choose another --run-id`
      }
      const run = yield* runs.load(id)
      return run._tag === "Missing"
        ? undefined
        : `run id "${id}" is already a run (${run._tag === "Found" ? `status ${run.checkpoint.status}` : "its checkpoint is corrupt"}; see \`autopilot show ${id}\`); choose another --run-id`
    })

  const add = (input: QueueEntry.NewEntry) =>
    Effect.gen(function*() {
      const entry = yield* QueueEntry.make(input)
      const problem = yield* taken(entry.id)
      if (problem !== undefined) return yield* new QueueEntry.RunIdTaken({ run_id: entry.id, detail: problem })
      // Another `queue add` of the same id may land between the check and the insert: only one row wins.
      if (yield* store.insert(entry)) return entry
      const raced = yield* taken(entry.id)
      return yield* new QueueEntry.RunIdTaken({
        run_id: entry.id,
        detail: raced ?? `run id "${entry.id}" was queued and removed meanwhile by another caller; choose another --run-id`
      })
    })

  const runStateOf = (id: string) =>
    Effect.map(runs.load(id), (loaded): RunState | null =>
      loaded._tag === "Missing" ? null : loaded._tag === "Corrupt" ? "corrupt" : stateOf(loaded))

  const list = (options: ListOptions = {}) =>
    Effect.gen(function*() {
      const now = yield* DateTime.now
      const queued = options.status === "dispatched" ? [] : yield* store.list("queued", options.project)
      const dispatched = options.status === "queued" ? [] : yield* store.list("dispatched", options.project)
      return [
        ...queued.map((entry): Listed => ({ entry, ready: QueueEntry.isReady(entry, now), run: null })),
        ...(yield* Effect.forEach(dispatched, (entry) => Effect.map(runStateOf(entry.id), (run): Listed => ({ entry, ready: false, run }))))
      ]
    })

  const remove = (id: string, scope: { readonly project?: string | undefined } = {}) =>
    Effect.gen(function*() {
      if (yield* store.remove(id, scope.project)) return
      const status = yield* store.statusOf(id, scope.project)
      if (Option.isNone(status)) return yield* new QueueEntry.QueueEntryNotFound({ id })
      return yield* new BadInput({ message: `queue entry "${id}" has already started as run ${id}; stop it with \`autopilot stop ${id}\`` })
    })

  const ready = (limit: number) =>
    Number.isInteger(limit) && limit > 0
      ? Effect.flatMap(nowIso, (now) => store.ready(now, limit))
      : Effect.fail(new BadInput({ message: `the number of entries to take must be a positive whole number, got ${limit}` }))

  return GoalQueue.of({
    add,
    list,
    remove,
    ready,
    dispatch: (id) => Effect.flatMap(nowIso, (at) => store.dispatch(id, at)),
    get: store.get,
    startOptions
  })
})

/** The queue over the stores it needs: `QueueStore.layer` and `RunStore.layer` on one database. */
export const layer = Layer.effect(GoalQueue, make)
