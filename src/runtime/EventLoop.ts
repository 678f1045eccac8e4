import { Effect } from "effect"

/**
 * Resumes once the event loop has run what is ready now: due timers, I/O callbacks, signal handlers.
 * Effect runs a fiber on microtasks, and a loop whose every step completes synchronously (a model that
 * answers at once, SQLite's synchronous driver) never hands the thread back: SIGTERM, heartbeats and
 * timers would wait for the whole run. A turn is microseconds (`setImmediate`), not a timer's millisecond.
 */
export const endOfTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})
