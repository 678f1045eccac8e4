import { Effect, Random } from "effect"

/**
 * The faults a soak injects, on a schedule that follows from its seed alone: the same seed and duration
 * give the same faults at the same offsets, so a failed soak is run again as it was.
 *
 * - `kill_runner`: kill -9 of a runner daemon (one that faults may touch), started again `down_seconds` later.
 * - `term_runner`: SIGTERM of one: it drains, exits, and is started again.
 * - `kill_fanout`, `term_fanout`: the same for a running `autopilot fanout` process, resumed afterwards.
 * - `torn_checkpoint`: kill -9 of a runner, then the checkpoint of one of the runs it held overwritten with
 *   bytes that do not decode, as a write torn by the crash would leave it; the run is taken over from that.
 * - `write_lock`: another process holds the database's write lock for `hold_seconds`, past SQLite's 5 s
 *   busy timeout.
 * - `upstream_429`, `upstream_5xx`: the model answers 429 (with a Retry-After) or 503 for `hold_seconds`.
 */
export type FaultKind =
  | "kill_runner"
  | "term_runner"
  | "kill_fanout"
  | "term_fanout"
  | "torn_checkpoint"
  | "write_lock"
  | "upstream_429"
  | "upstream_5xx"

export const faultKinds: ReadonlyArray<FaultKind> = [
  "kill_runner",
  "term_runner",
  "kill_fanout",
  "term_fanout",
  "torn_checkpoint",
  "write_lock",
  "upstream_429",
  "upstream_5xx"
]

export interface Fault {
  readonly kind: FaultKind
  /** Seconds from the soak's start. */
  readonly at: number
  /** How long a runner stays down, or how long a lock or an outage lasts, seconds. */
  readonly hold_seconds: number
  /** Which runner or fan-out, as an index the driver takes modulo what it has: a choice the seed makes. */
  readonly pick: number
}

export interface PlanOptions {
  readonly seed: number
  /** The soak's length, seconds. */
  readonly seconds: number
  /** No fault before this (the warm-up), seconds; default a tenth of the soak, at least 20 s. */
  readonly quietStart?: number
  /** No fault in this last stretch, so that the work submitted last can end; default 30 s. */
  readonly quietEnd?: number
}

/** How far apart faults are on average: about 40 over a soak, but never closer than 20 s or further than 3 minutes. */
export const meanGap = (seconds: number) => Math.min(180, Math.max(20, seconds / 40))

const holdOf = (kind: FaultKind, r: number): number => {
  switch (kind) {
    case "kill_runner":
    case "torn_checkpoint":
      return 1 + Math.round(r * 4)
    case "term_runner":
    case "kill_fanout":
    case "term_fanout":
      return 0
    case "write_lock":
      return 6 + Math.round(r * 6)
    case "upstream_429":
    case "upstream_5xx":
      return 10 + Math.round(r * 30)
  }
}

/**
 * The schedule: gaps drawn around `meanGap` (between half and one and a half of it), and kinds dealt from a
 * shuffled deck of all eight, so every kind comes up once per eight faults rather than by luck.
 */
export const plan = (options: PlanOptions): ReadonlyArray<Fault> =>
  Effect.runSync(
    Effect.gen(function*() {
      const quietStart = options.quietStart ?? Math.max(20, options.seconds / 10)
      const last = options.seconds - (options.quietEnd ?? 30)
      const gap = meanGap(options.seconds)
      const faults: Array<Fault> = []
      let deck: Array<FaultKind> = []
      let at = quietStart
      while (at <= last) {
        if (deck.length === 0) deck = [...(yield* Random.shuffle(faultKinds))]
        const kind = deck.shift()!
        faults.push({ kind, at: Math.round(at * 10) / 10, hold_seconds: holdOf(kind, yield* Random.next), pick: yield* Random.nextIntBetween(0, 1000) })
        at += gap * (0.5 + (yield* Random.next))
      }
      return faults
    }).pipe(Effect.withRandom(Random.make(options.seed)))
  )
