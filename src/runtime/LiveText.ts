import { Config, Context, DateTime, Duration, Effect, Layer, Option, type Scope } from "effect"
import { BadInput } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import { DeltaStore, type DeltaRow } from "../store/DeltaStore.js"
import type { Delta } from "./ModelCalls.js"

/**
 * A run's answer as the model writes it, for processes that watch the run through the database (the API
 * server). Beside the loop: provided, it gives a run an `onDelta` that buffers the text and writes it every
 * `interval`, and removes it when it is no longer live (its step committed, its call retried, the run
 * over). Writing is best effort: a failed write loses some live text, never the run.
 */
export class LiveText extends Context.Tag("autopilot/LiveText")<
  LiveText,
  {
    /** What a session of `runId` calls with its deltas and events, for as long as the scope is open. */
    readonly writer: (runId: string) => Effect.Effect<Hooks, never, Scope.Scope>
  }
>() {}

export interface Hooks {
  readonly onDelta: (delta: Delta) => Effect.Effect<void>
  readonly onEvent: (event: AutopilotEvent) => Effect.Effect<void>
}

/** How often a streaming run's buffered text is written: one write per run per interval at most. */
export const defaultInterval = Duration.millis(100)

/** How long a row may stay that no session removed (its process was killed): far past any one model call. */
export const maxAge = Duration.hours(1)

/** The variable that turns the channel off (`off`); `on` is the default. */
export const variable = "AUTOPILOT_LIVE_TEXT"

type Op =
  | { readonly _tag: "Text"; readonly iteration: number; readonly purpose: string; readonly text: string }
  /** The iterations whose text is no longer live. */
  | { readonly _tag: "Clear"; readonly from: number; readonly through: number }
  /** A session starts: whatever an earlier one left is stale, and so is any writer's row past `maxAge`. */
  | { readonly _tag: "Reset" }

const covers = (clear: { readonly from: number; readonly through: number }, iteration: number) =>
  iteration >= clear.from && iteration <= clear.through

export const make = (options: { readonly interval?: Duration.DurationInput | undefined } = {}) =>
  Effect.gen(function*() {
    const store = yield* DeltaStore
    const interval = options.interval ?? defaultInterval

    const writer = (runId: string) =>
      Effect.gen(function*() {
        // Plain arrays, touched only in synchronous steps: a delta costs one step, not a Ref update and a wake.
        let pending: Array<Op> = []
        // Opened when something is pending: an idle run (or a test's clock moved by hours) wakes nothing.
        const wake = yield* Effect.makeLatch(false)
        // Iterations this session has rows of, so that a commit with no live text costs no statement.
        const stored = new Set<number>()

        const flush = Effect.gen(function*() {
          const ops = pending
          pending = []
          let texts: Array<Extract<Op, { _tag: "Text" }>> = []
          let reset = false
          const clears: Array<Extract<Op, { _tag: "Clear" }>> = []
          for (const op of ops) {
            if (op._tag === "Text") texts.push(op)
            else if (op._tag === "Reset") reset = true
            else {
              // Text buffered before its iteration was cleared is never written.
              texts = texts.filter((t) => !covers(op, t.iteration))
              clears.push(op)
            }
          }
          const now = yield* DateTime.now
          if (reset) {
            yield* store.remove(runId)
            yield* store.expire(DateTime.formatIso(DateTime.subtractDuration(now, maxAge)))
          }
          for (const clear of clears) {
            const gone = [...stored].filter((i) => covers(clear, i))
            if (gone.length === 0) continue
            // Forgotten only once removed: a failed delete is tried again at the next clear of those iterations.
            yield* store.remove(runId, clear)
            gone.forEach((i) => stored.delete(i))
          }
          if (texts.length === 0) return
          const at = DateTime.formatIso(now)
          texts.forEach((t) => stored.add(t.iteration))
          yield* store.append(texts.map((t): DeltaRow => ({ run_id: runId, iteration: t.iteration, purpose: t.purpose, text: t.text, at })))
        }).pipe(Effect.ignore)

        const push = (op: Op) =>
          Effect.suspend(() => {
            const last = pending.at(-1)
            // Consecutive text of one call is one row.
            if (op._tag === "Text" && last?._tag === "Text" && last.iteration === op.iteration && last.purpose === op.purpose) {
              pending[pending.length - 1] = { ...last, text: last.text + op.text }
              return Effect.void
            }
            pending.push(op)
            return pending.length === 1 ? wake.open : Effect.void
          })

        // Added before the flusher is forked, so it runs after the flusher is interrupted: nothing of this
        // session's is written after it.
        yield* Effect.addFinalizer(() => Effect.ignore(store.remove(runId)))
        yield* wake.await.pipe(
          Effect.zipRight(Effect.sleep(interval)),
          Effect.zipRight(wake.close),
          Effect.zipRight(flush),
          Effect.forever,
          Effect.forkScoped
        )

        return {
          onDelta: (delta) => (delta.text === "" ? Effect.void : push({ _tag: "Text", ...delta })),
          onEvent: (event) => {
            switch (event.kind) {
              case "run_started":
                return push({ _tag: "Reset" })
              case "model_retry":
                // The retried call streams again from its start.
                return push({ _tag: "Clear", from: event.iteration, through: event.iteration })
              case "iteration":
                return push({ _tag: "Clear", from: 0, through: event.iteration })
              default:
                return Effect.void
            }
          }
        } satisfies Hooks
      })

    return LiveText.of({ writer })
  })

export const layer = (options: { readonly interval?: Duration.DurationInput | undefined } = {}) => Layer.effect(LiveText, make(options))

/** Whether `AUTOPILOT_LIVE_TEXT` leaves the channel on (unset, `on`) or turns it off (`off`). */
export const enabled: Effect.Effect<boolean, BadInput> = Config.option(Config.string(variable)).pipe(
  Effect.orDie,
  Effect.flatMap(Option.match({
    onNone: () => Effect.succeed(true),
    onSome: (text) => {
      const value = text.trim().toLowerCase()
      return value === "on" || value === "" ? Effect.succeed(true) : value === "off" ? Effect.succeed(false) : new BadInput({
        message: `${variable} must be on or off, got ${JSON.stringify(text)}`
      })
    }
  }))
)

/** The service as the environment configures it: none when turned off. */
export const fromConfig: Effect.Effect<Option.Option<LiveText["Type"]>, BadInput, DeltaStore> = Effect.flatMap(
  enabled,
  (on) => (on ? Effect.asSome(make()) : Effect.succeedNone)
)

type Observed = {
  readonly runId: string
  readonly onDelta?: ((delta: Delta) => Effect.Effect<void>) | undefined
  readonly onEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
}

const both = <A>(first: ((a: A) => Effect.Effect<void>) | undefined, second: (a: A) => Effect.Effect<void>) =>
  first === undefined ? second : (a: A) => Effect.zipRight(first(a), second(a))

/**
 * A session's options with its live text written beside its own `onDelta` and `onEvent`, when the service
 * is provided; as they are when it is not.
 */
export const attach = <O extends Observed>(options: O): Effect.Effect<O, never, Scope.Scope> =>
  Effect.flatMap(Effect.serviceOption(LiveText), Option.match({
    onNone: () => Effect.succeed(options),
    onSome: (live) =>
      Effect.map(live.writer(options.runId), (hooks) => ({
        ...options,
        onDelta: both(options.onDelta, hooks.onDelta),
        onEvent: both(options.onEvent, hooks.onEvent)
      }))
  }))
