import type { FileSystem, Path } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Stream } from "effect"
import * as path from "node:path"
import type { Checkpoint } from "../domain/Checkpoint.js"
import { BadInput, CorruptCheckpoint, type PersistenceError, RunNotFound } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { Step } from "../domain/Step.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore, type RunSummary } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import type { Storage } from "../store/Storage.js"
import { defaultTools } from "../tools/Defaults.js"
import { Toolkit } from "../tools/Tool.js"
import * as Journal from "./Journal.js"
import * as Mission from "./Mission.js"
import { messagesOf, type StepMessages } from "./Transcript.js"

export interface StartOptions extends Omit<Mission.MissionOptions, "llm"> {
  /**
   * The model Layer the run uses. What is left out comes from the run's own choice on a resume (so a
   * resume never silently swaps models), or is the mock for a new run.
   */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** The folder the file tools may use; by default `workspaces/<run-id>` under the workspace root. */
  readonly workspace?: string | undefined
}

/** A run as `show` presents it: its latest checkpoint, its latest steps, and their messages if asked for. */
export interface RunView {
  readonly checkpoint: Checkpoint
  readonly steps: ReadonlyArray<Step>
  /** By iteration; empty unless messages were asked for. */
  readonly messages: ReadonlyMap<number, StepMessages>
}

/**
 * Everything a user can do with runs, for every surface alike: the CLI, and later the daemon and the
 * HTTP API, hold flags, routes and rendering, and call this.
 */
export class Runs extends Context.Tag("autopilot/Runs")<
  Runs,
  {
    /** Starts a new run, or resumes one with `resume`, and runs it to its end. */
    readonly start: (options: StartOptions) => Effect.Effect<Mission.MissionResult, Mission.MissionError>
    /** Asks a running run, in any process, to halt at its next iteration boundary with `reason`. */
    readonly stop: (runId: string, reason: string) => Effect.Effect<void, BadInput | RunNotFound | CorruptCheckpoint | PersistenceError>
    /** Newest first; a checkpoint that does not decode is listed as corrupt, not hidden. */
    readonly list: Effect.Effect<ReadonlyArray<RunSummary>, PersistenceError>
    /** The run as of its latest checkpoint with its latest `steps` steps (0 for all). */
    readonly show: (
      runId: string,
      options: { readonly steps: number; readonly messages: boolean }
    ) => Effect.Effect<RunView, BadInput | RunNotFound | CorruptCheckpoint | PersistenceError>
    /** The run's events from the start; with `follow`, then live until the run ends. */
    readonly events: (
      runId: string,
      options: { readonly follow: boolean }
    ) => Stream.Stream<AutopilotEvent, RunNotFound | PersistenceError>
  }
>() {}

export const make = (options: {
  /** Where each run's default workspace folder is made. */
  readonly workspaceRoot: string
}): Effect.Effect<Runs["Type"], never, Storage | SqlClient.SqlClient | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Storage | SqlClient.SqlClient | FileSystem.FileSystem | Path.Path>()
    const runs = yield* RunStore
    const steps = yield* StepStore
    const events = yield* EventStore

    /** A run's checkpoint, or a clear error if it is unknown or does not decode. */
    const checkpointOf = (runId: string) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(runId)
        switch (loaded._tag) {
          case "Missing":
            return yield* new RunNotFound({ run_id: runId })
          case "Corrupt":
            return yield* new CorruptCheckpoint({ run_id: runId, error: loaded.error })
          case "Found":
            return loaded.checkpoint
        }
      })

    /** The model a run was started on; a run whose checkpoint is lost still has it in its history. */
    const recordedChoice = (runId: string) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(runId)
        if (loaded._tag === "Found") return loaded.checkpoint.llm
        const started = (yield* events.sessions(runId)).at(-1)
        return started?.kind === "run_started" ? started.llm : undefined
      })

    const start = (start: StartOptions) =>
      Effect.gen(function*() {
        const choice = yield* LlmChoice.resolve(start.resume ? yield* recordedChoice(start.runId) : undefined, start.llm ?? {})
        // Checked before anything is written: a missing key or script is bad input that leaves no trace.
        const llm = yield* LlmLayer.layerOf(choice)
        const workspace = path.resolve(start.workspace ?? path.join(options.workspaceRoot, "workspaces", start.runId))
        const tools = Layer.effect(Toolkit, Effect.map(defaultTools(workspace), Toolkit.make))
        // The script is recorded by its full path, so a resume from another folder finds it.
        const recorded = choice.mock_script === undefined ? choice : { ...choice, mock_script: path.resolve(choice.mock_script) }
        return yield* Mission.run({ ...start, llm: recorded }).pipe(Effect.provide(Layer.merge(llm, tools)))
      }).pipe(Effect.provide(context))

    const stop = (runId: string, reason: string) =>
      Effect.gen(function*() {
        if (reason.trim() === "") return yield* new BadInput({ message: "the reason to stop must be non-empty text" })
        const checkpoint = yield* checkpointOf(runId)
        if (checkpoint.status !== "running") {
          return yield* new BadInput({ message: `run "${runId}" is not running (it is ${checkpoint.status}); there is nothing to stop` })
        }
        if (checkpoint.owner !== null && !checkpoint.owner.isAlive) {
          return yield* new BadInput({
            message: `run "${runId}" is not running in any process (process ${checkpoint.owner.pid} is gone); \`autopilot resume ${runId}\` continues it`
          })
        }
        yield* runs.requestStop(runId, reason, yield* Journal.isoNow)
      })

    const show = (runId: string, view: { readonly steps: number; readonly messages: boolean }) =>
      Effect.gen(function*() {
        if (view.steps < 0) return yield* new BadInput({ message: `steps must be 0 (all) or a positive whole number, got ${view.steps}` })
        const checkpoint = yield* checkpointOf(runId)
        // Messages are rebuilt from every earlier step, so all are read; only the latest are shown.
        const recent = yield* steps.recent(runId, view.steps === 0 || view.messages ? -1 : view.steps)
        const shown = view.steps === 0 ? recent : recent.slice(-view.steps)
        const messages: ReadonlyMap<number, StepMessages> = view.messages
          ? new Map(messagesOf(checkpoint.goal, recent).slice(-shown.length).map((m) => [m.iteration, m]))
          : new Map()
        return { checkpoint, steps: shown, messages } satisfies RunView
      })

    const replayOf = (runId: string, replay: { readonly follow: boolean }) =>
      Stream.unwrap(Effect.gen(function*() {
        // A run whose checkpoint is gone still has its history.
        const known = (yield* runs.load(runId))._tag !== "Missing" || (yield* events.sessions(runId)).length > 0
        return known
          ? Journal.replay(runId, replay).pipe(Stream.provideContext(context))
          : Stream.fail<RunNotFound | PersistenceError>(new RunNotFound({ run_id: runId }))
      }))

    return Runs.of({ start, stop, list: runs.list, show, events: replayOf })
  })

export const layer = (options: { readonly workspaceRoot: string }) => Layer.effect(Runs, make(options))

/** Per-step telemetry: what each model call of a step cost and took. */
export const telemetryOf = (step: Step) => ({
  iteration: step.iteration,
  at: step.at,
  cost_usd: step.calls.reduce((sum, call) => sum + call.cost_usd, 0),
  calls: step.calls
})

/** `show --format json`: `{run_id, status, halt_reason, iterations, usage, cost_usd, criteria_met, goal, …}`. */
export const viewJson = ({ checkpoint: c, messages, steps }: RunView) => ({
  run_id: c.run_id,
  status: c.status,
  halt_reason: c.halt_reason,
  iterations: c.usage.iterations,
  usage: c.usage,
  cost_usd: c.usage.dollars,
  criteria_met: c.criteria_met,
  goal: c.goal,
  policy: c.policy,
  llm: c.llm ?? null,
  output: c.output,
  created_at: c.created_at,
  updated_at: c.updated_at,
  steps: steps.map((step) => {
    const m = messages.get(step.iteration)
    return m === undefined ? telemetryOf(step) : { ...telemetryOf(step), messages: { act: m.act, judge: m.judge } }
  })
})
