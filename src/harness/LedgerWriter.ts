import { Context, Duration, Effect, Layer, Runtime, type Scope } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import { retryBusy } from "../store/Database.js"
import { HarnessError } from "./HarnessError.js"
import { type LedgerEntry, HarnessStore } from "./HarnessStore.js"

/**
 * The ledger's rows written behind the answers: a request's row is queued when its outcome is known and
 * written `within` later (the config's `ledger_batch_ms`, 10 ms by default) with every other row queued
 * meanwhile, in one INSERT (group commit, as src/store/GroupCommit.ts does for runs, without making the
 * caller wait). An
 * INSERT per request sat on every answer's path, and at one client cost more CPU than the rest of the
 * harness's own work.
 *
 * No row is dropped: a batch that fails stays queued and is tried again every `retryEvery`; meanwhile the
 * harness refuses requests (503, `ledger_unavailable`), as it did when each row was written inline. Closing
 * the writer's scope writes whatever is queued, so a SIGTERM loses nothing. A kill -9 loses at most the rows
 * of the last `within`.
 */
export class LedgerWriter extends Context.Tag("autopilot/harness/LedgerWriter")<LedgerWriter, {
  /** Queues the row; fails (the row still queued) while the ledger cannot be written. */
  readonly record: (entry: LedgerEntry) => Effect.Effect<void, HarnessError>
  /** Fails while queued rows cannot be written: a request is refused before anything is spent on it. */
  readonly ready: Effect.Effect<void, HarnessError>
  /**
   * `record` without an Effect, for the plain-completion fast path (PlainChat.ts): queues the row and
   * answers the error `record` would fail with, if any.
   */
  readonly recordNow: (entry: LedgerEntry) => HarnessError | undefined
  /** Whether `ready` would succeed now. */
  readonly isReady: () => boolean
  /** Writes every row queued so far before it returns: what budgets read must hold them. */
  readonly flush: Effect.Effect<void, PersistenceError>
}>() {}

export interface Options {
  /** The most rows in one INSERT (default 256). */
  readonly maxBatch?: number | undefined
  /** How long a queued row waits for others before it is written (default 10 ms; 0: the end of the event loop's turn). */
  readonly within?: Duration.DurationInput | undefined
  /** How long a failed batch waits before it is tried again (default 1 second). */
  readonly retryEvery?: Duration.DurationInput | undefined
}

/** Resumes once the event loop has run what is ready now: the other requests answered in this turn. */
const endOfTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

const defaultWithin = Duration.millis(10)

export const make = (options: Options = {}): Effect.Effect<LedgerWriter["Type"], never, HarnessStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* HarnessStore
    const scope = yield* Effect.scope
    const runSync = Runtime.runSync(yield* Effect.runtime<never>())
    const maxBatch = Math.max(1, options.maxBatch ?? 256)
    const retryEvery = Duration.decode(options.retryEvery ?? "1 second")
    const within = Duration.decode(options.within ?? defaultWithin)
    const wait = Duration.toMillis(within) > 0 ? Effect.sleep(within) : endOfTurn
    // Plain state, changed only within synchronous steps. The lock orders writes, so rows land in the
    // order they were queued and `flush` returns only once a batch another fiber is writing is in.
    const pending: Array<LedgerEntry> = []
    let scheduled = false
    let failing = false
    const lock = yield* Effect.makeSemaphore(1)

    /** One batch, uninterruptible from taking it to knowing its fate: a failed one goes back to the front. */
    const writeBatch = Effect.uninterruptible(Effect.suspend(() => {
      const batch = pending.splice(0, maxBatch)
      return retryBusy(store.recordAll(batch)).pipe(
        Effect.tapBoth({
          onFailure: () =>
            Effect.sync(() => {
              pending.unshift(...batch)
              failing = true
            }),
          onSuccess: () => Effect.sync(() => void (failing = false))
        })
      )
    }))

    const writeAll: Effect.Effect<void, PersistenceError> = Effect.suspend(() =>
      pending.length === 0 ? Effect.void : Effect.zipRight(writeBatch, writeAll)
    )

    // Until everything queued is in; a failure is logged once per outage and tried again.
    const drain: Effect.Effect<void> = Effect.suspend(() =>
      lock.withPermits(1)(writeAll).pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            failing ? Effect.void : Effect.logError(`the ledger cannot be written, ${pending.length} rows wait: ${error.message}`),
            Effect.zipRight(Effect.sleep(retryEvery), drain)
          )
        )
      )
    )

    const schedule = Effect.suspend(() => {
      if (scheduled) return Effect.void
      scheduled = true
      // Interruptible although a request may queue its row from an uninterruptible region: closing the scope
      // must not wait out the window (a batch being written still finishes).
      return Effect.asVoid(Effect.forkIn(
        Effect.interruptible(Effect.zipRight(wait, drain)).pipe(Effect.ensuring(Effect.sync(() => void (scheduled = false)))),
        scope
      ))
    })

    const ready = Effect.suspend(() => (failing ? Effect.fail(HarnessError.ledgerUnavailable()) : Effect.void))

    const record = (entry: LedgerEntry) =>
      Effect.suspend(() => {
        pending.push(entry)
        return Effect.zipRight(schedule, ready)
      })

    const recordNow = (entry: LedgerEntry) => {
      pending.push(entry)
      // Forking the batch's fiber takes a run of the runtime: once per window, not once per row.
      if (!scheduled) runSync(schedule)
      return failing ? HarnessError.ledgerUnavailable() : undefined
    }

    // Added before any batch is forked into the scope, so it runs after they are interrupted: what they had
    // not written is still queued (a batch being written finishes first: it is uninterruptible).
    yield* Effect.addFinalizer(() =>
      lock.withPermits(1)(writeAll).pipe(
        Effect.catchAll((error) => Effect.logError(`${pending.length} ledger rows could not be written at shutdown: ${error.message}`))
      )
    )

    return { record, recordNow, ready, isReady: () => !failing, flush: lock.withPermits(1)(writeAll) }
  })

export const layer = (options: Options = {}): Layer.Layer<LedgerWriter, never, HarnessStore> =>
  Layer.scoped(LedgerWriter, make(options))

/**
 * The store whose ledger reads (reports, audit, spend, budgets' catch-up) first write what is queued: a
 * request answered before a read is in what the read sees, as when rows were written inline.
 */
export const readsAfterWrites: Layer.Layer<HarnessStore, never, HarnessStore | LedgerWriter> = Layer.effect(
  HarnessStore,
  Effect.gen(function*() {
    const store = yield* HarnessStore
    const { flush } = yield* LedgerWriter
    const after = <Args extends ReadonlyArray<any>, A>(read: (...args: Args) => Effect.Effect<A, PersistenceError>) =>
    (...args: Args) => Effect.zipRight(flush, read(...args))
    return HarnessStore.of({
      ...store,
      spend: after(store.spend),
      lastId: after(store.lastId),
      charges: after(store.charges),
      report: after(store.report),
      audit: after(store.audit)
    })
  })
)
