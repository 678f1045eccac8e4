import { FileSystem, type Path } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Context, DateTime, Duration, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as path from "node:path"
import { type Checkpoint, isInterrupted } from "../domain/Checkpoint.js"
import { BadInput, CorruptCheckpoint, type PersistenceError, RunInterrupted, RunNotFound } from "../domain/Errors.js"
import type { BudgetUsage } from "../domain/Budget.js"
import type { AutopilotEvent } from "../domain/Event.js"
import * as FanoutSpec from "../domain/Fanout.js"
import * as FiringId from "../domain/Firing.js"
import { defaultProject } from "../domain/MissionRecord.js"
import * as MissionRun from "../domain/MissionRun.js"
import type { Step } from "../domain/Step.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as RunId from "../domain/RunId.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import { ArtifactStore } from "../store/ArtifactStore.js"
import { CuratorStore } from "../store/CuratorStore.js"
import * as Database from "../store/Database.js"
import { EventStore } from "../store/EventStore.js"
import { QuarantineStore } from "../store/QuarantineStore.js"
import { type Raw, RunStore, type RunSummary } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import { type Storage, Transaction } from "../store/Storage.js"
import { defaultTools } from "../tools/Defaults.js"
import { Toolkit } from "../tools/Tool.js"
import * as Critic from "./Critic.js"
import * as Fanout from "./Fanout.js"
import * as Journal from "./Journal.js"
import * as LiveText from "./LiveText.js"
import * as Mission from "./Mission.js"
import { messagesOf, type StepMessages } from "./Transcript.js"
import * as Driver from "../missions/Driver.js"

export interface StartOptions extends Omit<Mission.MissionOptions, "llm"> {
  /**
   * The model Layer the run uses. What is left out comes from the run's own choice on a resume (so a
   * resume never silently swaps models), or is the mock for a new run.
   */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** The folder the file tools may use; by default `workspaces/<run-id>` under the workspace root. */
  readonly workspace?: string | undefined
  /**
   * A critic for the run. What is left out comes from the run's own critic on a resume, else the
   * defaults; without it, a resume keeps the run's own critic and a new run has none.
   */
  readonly critic?: Critic.Options | undefined
}

export interface FanoutStartOptions extends Omit<Fanout.FanoutOptions, "llm"> {
  /** As for `start`: what is left out comes from the fan-out's own choice on a resume, or is the mock. */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** The folder the file tools of every child may use; by default `workspaces/<run-id>` of the fan-out. */
  readonly workspace?: string | undefined
  /** As for `start`, and the fan-out's critic reviews every child it starts. */
  readonly critic?: Critic.Options | undefined
}

export interface MissionStartOptions extends Omit<Driver.DriveOptions, "llm" | "models" | "runId"> {
  /** As for `start`: what is left out comes from the mission run's own choice on a resume, or is the mock. */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** The folder every node's file tools use; by default `workspaces/<mission id>`, shared by its nodes and its firings. */
  readonly workspace?: string | undefined
  /** The model calls of node attempts, made from the mission's model once it is chosen (see `MissionRunner`). */
  readonly models: (choice: LlmChoice.LlmChoice) => Effect.Effect<Driver.AttemptModels, BadInput, Mission.MissionContext | Scope.Scope>
}

/** What a run is now, as every surface shows it: its checkpoint's status, or `interrupted`, or `corrupt`. */
export const RunStates = ["running", "interrupted", "completed", "partial", "halted", "failed", "corrupt"] as const
export type RunState = typeof RunStates[number]


/** Why a run is interrupted, if it is. */
export const interruptionOf = (c: Checkpoint): Option.Option<RunInterrupted> =>
  isInterrupted(c)
    ? Option.some(new RunInterrupted({ run_id: c.run_id, pid: c.owner?.pid ?? null, host: c.owner?.host ?? null }))
    : Option.none()

export const stateOf = (run: RunSummary): RunState =>
  run._tag === "Corrupt" ? "corrupt" : isInterrupted(run.checkpoint) ? "interrupted" : run.checkpoint.status

/** A run as `runs` lists it, with what it is now. */
export type Listed = RunSummary & { readonly state: RunState }

export interface ListOptions {
  /** Only runs in one of these states; all when absent or empty. */
  readonly states?: ReadonlyArray<RunState> | undefined
  /** The newest `limit` runs (after `states`); all when absent or 0. */
  readonly limit?: number | undefined
  /** Only the runs of this project; every project's when absent. */
  readonly project?: string | undefined
}

/** A run that was deleted, or with `dryRun` would be. */
export interface Deleted {
  readonly run_id: string
  /** Null for a run of which only history was left (its checkpoint was already gone). */
  readonly state: RunState | null
  readonly updated_at: string | null
  /** The run's default workspace folder, if it had one: deleted with it. */
  readonly workspace: string | null
}

export interface PruneOptions {
  /** Runs last updated longer ago than this. */
  readonly olderThan: Duration.DurationInput
  /** Only runs in one of these states; all when absent or empty. A run alive in its process never is. */
  readonly states?: ReadonlyArray<RunState> | undefined
  /** Say what would be deleted, and delete nothing. */
  readonly dryRun?: boolean | undefined
}

/** A run as `show` presents it: its latest checkpoint, its latest steps, and their messages if asked for. */
export interface RunView {
  readonly checkpoint: Checkpoint
  readonly steps: ReadonlyArray<Step>
  /** By iteration; empty unless messages were asked for. */
  readonly messages: ReadonlyMap<number, StepMessages>
  /** A fan-out's children as their own checkpoints say now, in the order of the items; empty for a mission. */
  readonly children: ReadonlyArray<ChildView>
  /** How many artifacts (names) the run has produced; a fan-out, the runs below it. */
  readonly artifacts: number
}

/** A child of a fan-out as `show` lists it. */
export interface ChildView {
  readonly index: number
  readonly run_id: string
  readonly item: string
  /** `not_started` for a child that has no run yet. */
  readonly state: RunState | "not_started"
  readonly halt_reason: string | null
  readonly usage: BudgetUsage | null
}

/**
 * Everything a user can do with runs, for every surface alike: the CLI, and later the daemon and the
 * HTTP API, hold flags, routes and rendering, and call this.
 */
export class Runs extends Context.Tag("autopilot/Runs")<
  Runs,
  {
    /** Starts a new run, or resumes one with `resume` (a fan-out as a fan-out), and runs it to its end. */
    readonly start: (options: StartOptions) => Effect.Effect<Mission.MissionResult, Mission.MissionError>
    /** Starts a new fan-out, or resumes one with `resume`, and runs it to its end. */
    readonly fanout: (options: FanoutStartOptions) => Effect.Effect<Fanout.FanoutResult, Mission.MissionError>
    /**
     * Starts a mission's run (its id is the mission's, or a firing's: `MissionRun.runIdOf(ref)`), or
     * resumes it with `resume`, and drives its agent graph to its end. `MissionRunner` calls it, with the mission's lifecycle around it.
     */
    readonly mission: (options: MissionStartOptions) => Effect.Effect<Driver.DriveResult, Mission.MissionError>
    /** Asks a running run, in any process, to halt at its next iteration boundary with `reason`. */
    readonly stop: (runId: string, reason: string) => Effect.Effect<void, BadInput | RunNotFound | CorruptCheckpoint | PersistenceError>
    /** Newest first; a checkpoint that does not decode is listed as corrupt, not hidden. */
    readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<Listed>, BadInput | PersistenceError>
    /**
     * The project a run belongs to (what the HTTP API checks a project token against before `show`, `events`,
     * `stop` or `delete`): beside its checkpoint, even a corrupt one, else in its history.
     */
    readonly project: (runId: string) => Effect.Effect<string, RunNotFound | PersistenceError>
    /** The run as of its latest checkpoint with its latest `steps` steps (0 for all). */
    readonly show: (
      runId: string,
      options: { readonly steps: number; readonly messages: boolean }
    ) => Effect.Effect<RunView, BadInput | RunNotFound | CorruptCheckpoint | PersistenceError>
    /**
     * The run's events from the start; with `follow`, then live until the run ends, or, if its process
     * is gone, until the last event it wrote, then `RunInterrupted`.
     */
    readonly events: (
      runId: string,
      /**
       * `pollInterval`: how often (ms) a followed log is read for what is new (250 unless given); `after`: a seq,
       * the events after it only, read from there.
       */
      options: { readonly follow: boolean; readonly pollInterval?: number | undefined; readonly after?: number | undefined }
    ) => Stream.Stream<AutopilotEvent, RunNotFound | RunInterrupted | PersistenceError>
    /**
     * Deletes runs, all or none, in one transaction: their checkpoints, steps, events, stop requests,
     * quarantined rows, artifacts and default workspace folders. A run alive in its process is refused.
     * A fan-out is deleted with every run below it; a child alone, while its fan-out is there, is refused.
     */
    readonly delete: (runIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Deleted>, BadInput | RunNotFound | PersistenceError>
    /**
     * Deletes every run last updated longer ago than `olderThan` (in `states`), except runs alive in their
     * process; a fan-out with every run below it, never a child on its own.
     */
    readonly prune: (options: PruneOptions) => Effect.Effect<ReadonlyArray<Deleted>, BadInput | PersistenceError>
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
    const quarantine = yield* QuarantineStore
    const artifacts = yield* ArtifactStore
    const curator = yield* CuratorStore
    const transaction = yield* Transaction
    const files = yield* FileSystem.FileSystem
    const workspaces = path.resolve(options.workspaceRoot, "workspaces")

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

    /**
     * The model and critic a run was started on, and what it fans out over if it is a fan-out; a run whose
     * checkpoint is lost still has them in its history.
     */
    const recordedRun = (runId: string) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(runId)
        const c = loaded._tag === "Found" ? loaded.checkpoint : (yield* events.sessions(runId)).at(-1)
        return c === undefined || ("kind" in c && c.kind !== "run_started")
          ? { llm: undefined, critic: undefined, fanout: undefined }
          : { llm: c.llm, critic: c.critic, fanout: c.fanout }
      })

    /** Checks the run id, workspace and model before anything is written, then runs `go` on them. */
    const launch = <A>(
      start: {
        readonly runId: string
        readonly resume?: boolean | undefined
        readonly llm?: LlmChoice.LlmRequested | undefined
        readonly workspace?: string | undefined
        readonly critic?: Critic.Options | undefined
        /** Whose default workspace the run uses: its own, or (a mission's firing) its mission's. */
        readonly workspaceOf?: string | undefined
      },
      go: (llm: LlmChoice.LlmChoice, isFanout: boolean) => Effect.Effect<A, Mission.MissionError, Mission.MissionContext>
    ) =>
      Effect.gen(function*() {
        yield* RunId.check(start.runId)
        const owner = start.workspaceOf ?? start.runId
        const workspace = path.resolve(start.workspace ?? path.join(workspaces, owner))
        // Another run's default workspace would be deleted with that run.
        if (path.dirname(workspace) === workspaces && path.basename(workspace) !== owner) {
          return yield* new BadInput({
            message: `the workspace ${workspace} is the default workspace of run "${path.basename(workspace)}"; choose a folder outside ${workspaces}`
          })
        }
        const recorded = start.resume ? yield* recordedRun(start.runId) : { llm: undefined, critic: undefined, fanout: undefined }
        const choice = yield* LlmChoice.resolve(recorded.llm, start.llm ?? {})
        const critic = start.critic === undefined ? Layer.empty : Critic.layer({
          threshold: start.critic.threshold ?? recorded.critic?.threshold,
          maxSuggestions: start.critic.maxSuggestions ?? recorded.critic?.max_suggestions
        })
        // Checked before anything is written: a missing key or script is bad input that leaves no trace.
        const llm = yield* LlmLayer.layerOf(choice)
        const tools = Layer.effect(Toolkit, Effect.map(defaultTools(workspace), Toolkit.make))
        // The script is recorded by its full path, so a resume from another folder finds it.
        const chosen = choice.mock_script === undefined ? choice : { ...choice, mock_script: path.resolve(choice.mock_script) }
        // Every run started here writes its live text for watchers in other processes, unless turned off.
        const live = Option.match(yield* LiveText.fromConfig, { onNone: () => Layer.empty, onSome: (live) => Layer.succeed(LiveText.LiveText, live) })
        return yield* go(chosen, recorded.fanout !== undefined).pipe(Effect.provide(Layer.mergeAll(llm, tools, critic, live)))
      }).pipe(Effect.provide(context))

    // A fan-out is resumed as one; given a goal (`run --resume`), it is refused like any other mismatch.
    const start = (start: StartOptions) =>
      launch(start, (llm, isFanout): Effect.Effect<Mission.MissionResult, Mission.MissionError, Mission.MissionContext> =>
        isFanout && start.goal === undefined ? Fanout.run({ ...start, llm }) : Mission.run({ ...start, llm }))

    const fanout = (options: FanoutStartOptions) => launch(options, (llm) => Fanout.run({ ...options, llm }))

    // A mission's firings share its workspace, where each finds what the earlier ones left.
    const mission = (options: MissionStartOptions) => {
      const runId = MissionRun.runIdOf(options.ref)
      return launch({ ...options, runId, workspaceOf: options.mission.mission_id }, (llm) =>
        Effect.scoped(Effect.flatMap(options.models(llm), (models) => Driver.run({ ...options, runId, llm, models }))))
    }

    const childrenOf = (c: Checkpoint) =>
      c.fanout === undefined ? Effect.succeed([]) : Effect.forEach(FanoutSpec.childrenOf(c.run_id, c.fanout), (child) =>
        Effect.map(runs.load(child.run_id), (loaded): ChildView => {
          const known = { index: child.index, run_id: child.run_id, item: FanoutSpec.itemText(child.item) }
          switch (loaded._tag) {
            case "Missing":
              return { ...known, state: "not_started", halt_reason: null, usage: null }
            case "Corrupt":
              return { ...known, state: "corrupt", halt_reason: null, usage: null }
            case "Found":
              return { ...known, state: stateOf(loaded), halt_reason: loaded.checkpoint.halt_reason, usage: loaded.checkpoint.usage }
          }
        }))

    const stop = (runId: string, reason: string) =>
      Effect.gen(function*() {
        if (reason.trim() === "") return yield* new BadInput({ message: "the reason to stop must be non-empty text" })
        const checkpoint = yield* checkpointOf(runId)
        if (checkpoint.status !== "running") {
          return yield* new BadInput({ message: `run "${runId}" is not running (it is ${checkpoint.status}); there is nothing to stop` })
        }
        const interrupted = interruptionOf(checkpoint)
        if (Option.isSome(interrupted)) {
          return yield* new BadInput({ message: `run "${runId}" is not running in any process: ${interrupted.value.reason}` })
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
          ? new Map(messagesOf(checkpoint.goal, recent, checkpoint.specialist).slice(-shown.length).map((m) => [m.iteration, m]))
          : new Map()
        return {
          checkpoint,
          steps: shown,
          messages,
          children: yield* childrenOf(checkpoint),
          artifacts: yield* Effect.reduce(
            checkpoint.fanout === undefined ? [runId] : FanoutSpec.descendantsOf(runId, checkpoint.fanout),
            0,
            (n, id) => Effect.map(artifacts.count(id), (more) => n + more)
          )
        } satisfies RunView
      })

    const list = (filter: ListOptions = {}) =>
      Effect.gen(function*() {
        const limit = filter.limit ?? 0
        if (!Number.isInteger(limit) || limit < 0) {
          return yield* new BadInput({ message: `limit must be 0 (all) or a positive whole number, got ${limit}` })
        }
        const states = filter.states ?? []
        const listed = (yield* runs.list({ project: filter.project }))
          .map((run): Listed => ({ ...run, state: stateOf(run) }))
          .filter((run) => states.length === 0 || states.includes(run.state))
        return limit === 0 ? listed : listed.slice(0, limit)
      })

    /** Whether a run has history left though its checkpoint is gone. */
    const hasHistory = (runId: string) => Effect.map(events.sessions(runId), (sessions) => sessions.length > 0)

    const replayOf = (runId: string, replay: { readonly follow: boolean; readonly pollInterval?: number | undefined; readonly after?: number | undefined }) =>
      Stream.unwrap(Effect.gen(function*() {
        const known = (yield* runs.load(runId))._tag !== "Missing" || (yield* hasHistory(runId))
        if (!known) return Stream.fail<RunNotFound | RunInterrupted | PersistenceError>(new RunNotFound({ run_id: runId }))
        const logged = Journal.replay(runId, replay).pipe(Stream.provideContext(context))
        // The follower stops once the run's process is gone; whoever follows must hear why it stopped.
        const interrupted = Effect.flatMap(runs.load(runId), (loaded) =>
          loaded._tag === "Found" ? Option.match(interruptionOf(loaded.checkpoint), { onNone: () => Effect.void, onSome: Effect.fail }) : Effect.void)
        return replay.follow ? Stream.concat(logged, Stream.drain(Stream.fromEffect(interrupted))) : logged
      }))

    /**
     * What deleting a run would delete, read now: the checkpoint row to delete only if unchanged, or
     * why the run may not be deleted.
     */
    const deletable = (runId: string) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(runId)
        switch (loaded._tag) {
          case "Missing":
            return (yield* hasHistory(runId))
              ? { run_id: runId, expected: Option.none<Raw>(), state: null, updated_at: null }
              : yield* new RunNotFound({ run_id: runId })
          case "Corrupt":
            return { run_id: runId, expected: Option.some(loaded.raw), state: "corrupt" as const, updated_at: null }
          case "Found": {
            const c = loaded.checkpoint
            if (c.status === "running" && !isInterrupted(c)) {
              const where = c.owner === null ? "" : ` in process ${c.owner.pid} on ${c.owner.host}`
              return yield* new BadInput({
                message: `run "${runId}" is running${where}; stop it first (autopilot stop ${runId}), then delete it`
              })
            }
            return {
              run_id: runId,
              expected: Option.some(loaded.raw),
              state: isInterrupted(c) ? "interrupted" as const : c.status,
              updated_at: c.updated_at
            }
          }
        }
      })

    /** The run's default workspace folder, if it has one; never a folder outside `workspaces`. */
    const workspaceOf = (runId: string) =>
      Effect.gen(function*() {
        const folder = path.resolve(workspaces, runId)
        if (path.dirname(folder) !== workspaces) return null
        return (yield* files.exists(folder)) ? folder : null
      }).pipe(Effect.orDie)

    const removeWorkspace = (folder: string | null) =>
      folder === null ? Effect.void : files.remove(folder, { recursive: true }).pipe(Effect.orDie)

    const withWorkspace = (target: Omit<Deleted, "workspace">) =>
      Effect.map(workspaceOf(target.run_id), (workspace): Deleted => ({ ...target, workspace }))

    /** Deletes a run's rows, inside the caller's transaction; false if its checkpoint changed since `deletable`. */
    const removeRun = (runId: string, expected: Option.Option<Raw>) =>
      Effect.gen(function*() {
        if (!(yield* runs.remove(runId, expected))) return false
        yield* steps.remove(runId)
        yield* events.remove(runId)
        yield* quarantine.remove(runId)
        yield* artifacts.remove(runId)
        // Its conversations leave the training data with it.
        yield* curator.remove(runId)
        return true
      })

    /** The rows are committed first; a workspace is only deleted once its run is gone for good. */
    const removeWorkspaces = (deleted: ReadonlyArray<Omit<Deleted, "workspace">>) =>
      Effect.forEach(deleted, (target) => Effect.tap(withWorkspace(target), (done) => removeWorkspace(done.workspace)))

    /**
     * The fan-out each run is a child of, if that fan-out is still there; each fan-out's spec is read
     * once, since a prune may weigh thousands of its children.
     */
    const parentsOf = (runIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const childrenOf = new Map<string, ReadonlySet<string>>()
        return yield* Effect.forEach(runIds, (runId) =>
          Effect.gen(function*() {
            const mission = yield* missionRunOf(runId)
            if (mission !== undefined) return mission
            const parent = FanoutSpec.parentIdOf(runId)
            if (parent === undefined) return undefined
            let children = childrenOf.get(parent)
            if (children === undefined) {
              const spec = yield* Effect.provide(Fanout.specOf(parent), context)
              children = new Set(spec === undefined ? [] : FanoutSpec.childrenOf(parent, spec).map((child) => child.run_id))
              childrenOf.set(parent, children)
            }
            return children.has(runId) ? parent : undefined
          }))
      })

    /**
     * The mission run a run is a node attempt of (`<mission run>.<node>…`, the mission run a mission's own
     * or a firing), if that mission run is still there.
     */
    const missionRunOf = (runId: string) =>
      Effect.gen(function*() {
        const head = FiringId.missionRunOf(runId)
        if (head === undefined) return undefined
        const loaded = yield* runs.load(head)
        const started = loaded._tag === "Found" ? loaded.checkpoint : (yield* events.sessions(head)).at(-1)
        return started !== undefined && "mission" in started && started.mission !== undefined ? head : undefined
      })

    /** A run and, for a fan-out, every run below it that was started: what is deleted together. */
    const treeOf = (runId: string) =>
      Effect.gen(function*() {
        const loaded = yield* runs.load(runId)
        if (loaded._tag === "Found" && loaded.checkpoint.mission !== undefined) {
          // A mission's run goes with every node attempt it ran (not with its mission's firings).
          const nodes = (yield* runs.list()).map(idOf).filter((id) => FiringId.missionRunOf(id) === runId)
          return [runId, ...nodes]
        }
        const spec = yield* Effect.provide(Fanout.specOf(runId), context)
        if (spec === undefined) return [runId]
        const started = yield* Effect.filter(FanoutSpec.descendantsOf(runId, spec), (id) =>
          Effect.flatMap(runs.load(id), (loaded) => (loaded._tag === "Missing" ? hasHistory(id) : Effect.succeed(true))))
        return [runId, ...started]
      })

    /**
     * A fan-out is deleted with its children, and a child only with its fan-out: alone, it would leave the
     * fan-out's usage without its spending and its resume running it again.
     */
    const deleteRuns = (runIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const asked = [...new Set(runIds)]
        yield* Effect.forEach(asked, deletable, { discard: true })
        const trees = new Set((yield* Effect.forEach(asked, treeOf)).flat())
        for (const [i, parent] of (yield* parentsOf(asked)).entries()) {
          const runId = asked[i]!
          if (parent !== undefined && !trees.has(parent)) {
            return yield* new BadInput({
              message: `run "${runId}" is ${
                (yield* missionRunOf(runId)) === parent ? `a node run of mission run "${parent}"` : `a child of fan-out "${parent}"`
              } and is deleted with it: \`autopilot delete ${parent}\` deletes it and every run below it`
            })
          }
        }
        const targets = yield* Effect.forEach([...trees], deletable)
        // Another process's commit may land meanwhile (a live run's heartbeat): a busy database is waited out.
        yield* Database.retryBusy(transaction(Effect.forEach(targets, (target) =>
          Effect.flatMap(removeRun(target.run_id, target.expected), (removed) =>
            removed
              ? Effect.void
              : new BadInput({ message: `run "${target.run_id}" changed while it was being deleted (was it resumed?); nothing was deleted` })))))
        return yield* removeWorkspaces(targets.map(({ expected: _, ...target }) => target))
      })

    /**
     * As for `delete`, a fan-out goes with its children and a child only with its fan-out, so a fan-out is
     * pruned when it is old and in one of the states, and then only if every run of it is old and none is
     * still going; a child of a fan-out that is still there is never pruned on its own.
     */
    const prune = (prune: PruneOptions) =>
      Effect.gen(function*() {
        const cutoff = DateTime.subtractDuration(yield* DateTime.now, prune.olderThan)
        const isOld = (updatedAt: string) => Option.exists(DateTime.make(updatedAt), (at) => DateTime.lessThan(at, cutoff))
        const old = (yield* list({ states: prune.states }))
          .filter((run) => run.state !== "running" && isOld(updatedAtOf(run)))
          .map(idOf)
        const parents = yield* parentsOf(old)
        const roots = old.filter((_, i) => parents[i] === undefined)
        const trees = yield* Effect.forEach(roots, treeOf)
        /** Each run of a tree as it is now, or none of them if any is going again or has been changed since. */
        const prunable = (tree: ReadonlyArray<string>) =>
          Effect.forEach(tree, deletable).pipe(
            Effect.map((targets) => (targets.every((t) => t.updated_at === null || isOld(t.updated_at)) ? targets : [])),
            Effect.catchTags({ BadInput: () => Effect.succeed([]), RunNotFound: () => Effect.succeed([]) })
          )
        const strip = ({ expected: _, ...target }: Effect.Effect.Success<ReturnType<typeof deletable>>) => target
        if (prune.dryRun === true) return yield* Effect.forEach((yield* Effect.forEach(trees, prunable)).flat().map(strip), withWorkspace)
        // Read again inside the transaction: a run resumed since it was listed is left alone.
        const deleted = yield* Database.retryBusy(transaction(Effect.flatMap(Effect.forEach(trees, prunable), (targets) =>
          Effect.filter(targets.flat(), (target) => removeRun(target.run_id, target.expected)))))
        return yield* removeWorkspaces(deleted.map(strip))
      })

    const projectOf = (runId: string) =>
      Effect.gen(function*() {
        const beside = yield* runs.projectOf(runId)
        if (Option.isSome(beside)) return beside.value
        const started = (yield* events.sessions(runId)).at(-1)
        if (started?.kind !== "run_started") return yield* new RunNotFound({ run_id: runId })
        return started.project ?? defaultProject
      })

    return Runs.of({ start, fanout, mission, stop, list, project: projectOf, show, events: replayOf, delete: deleteRuns, prune })
  })

export const layer = (options: { readonly workspaceRoot: string }) => Layer.effect(Runs, make(options))

const idOf = (run: RunSummary) => (run._tag === "Found" ? run.checkpoint.run_id : run.run_id)

const updatedAtOf = (run: RunSummary) => (run._tag === "Found" ? run.checkpoint.updated_at : run.updated_at)

/** Per-step telemetry: what each model call of a step cost and took. */
export const telemetryOf = (step: Step) => ({
  iteration: step.iteration,
  at: step.at,
  cost_usd: step.calls.reduce((sum, call) => sum + call.cost_usd, 0),
  calls: step.calls
})

/**
 * Whether a run is interrupted, and the command that continues it, as JSON: `status` stays as stored
 * (`running`), as it always was for a run killed mid-way.
 */
const interruptionJson = (c: Checkpoint) => {
  const interrupted = interruptionOf(c)
  return {
    interrupted: Option.isSome(interrupted),
    resume: Option.getOrNull(Option.map(interrupted, (i) => i.resume)),
    // Which process is gone, as only the machine that wrote the checkpoint can tell: a client of the API prints it.
    interrupted_reason: Option.getOrNull(Option.map(interrupted, (i) => i.reason))
  }
}

/** `runs --format json`: one entry per run, newest first. */
export const listedJson = (run: Listed) =>
  run._tag === "Found"
    ? {
      run_id: run.checkpoint.run_id,
      project: run.checkpoint.project,
      status: run.checkpoint.status,
      ...interruptionJson(run.checkpoint),
      objective: run.checkpoint.goal.objective,
      iterations: run.checkpoint.usage.iterations,
      criteria_met: run.checkpoint.criteria_met,
      cost_usd: run.checkpoint.usage.dollars,
      halt_reason: run.checkpoint.halt_reason,
      created_at: run.checkpoint.created_at,
      updated_at: run.checkpoint.updated_at,
      fanout: run.checkpoint.fanout === undefined ? null : { children: run.checkpoint.fanout.items.length }
    }
    : {
      run_id: run.run_id,
      project: run.project,
      status: "corrupt" as const,
      interrupted: false,
      resume: null,
      interrupted_reason: null,
      objective: null,
      iterations: null,
      criteria_met: null,
      cost_usd: null,
      halt_reason: null,
      created_at: null,
      updated_at: run.updated_at,
      fanout: null,
      error: run.error
    }

/** How many children are in each state, every state named. */
export const childRollup = (children: ReadonlyArray<ChildView>): Record<RunState | "not_started", number> =>
  Object.fromEntries([...RunStates, "not_started" as const].map((state) => [state, children.filter((c) => c.state === state).length])) as Record<
    RunState | "not_started",
    number
  >

/** A fan-out's template, parallelism, roll-up and children, as `show --format json` gives them. */
const fanoutJson = (spec: FanoutSpec.FanoutSpec, children: ReadonlyArray<ChildView>) => ({
  template: spec.template,
  max_parallel: spec.max_parallel,
  rollup: childRollup(children),
  children: children.map((c) => ({
    index: c.index,
    run_id: c.run_id,
    item: c.item,
    status: c.state,
    halt_reason: c.halt_reason,
    iterations: c.usage?.iterations ?? null,
    usage: c.usage
  }))
})

/** `show --format json`: `{run_id, status, interrupted, resume, halt_reason, iterations, usage, cost_usd, criteria_met, goal, …}`. */
export const viewJson = ({ artifacts, checkpoint: c, children, messages, steps }: RunView) => ({
  run_id: c.run_id,
  project: c.project,
  status: c.status,
  ...interruptionJson(c),
  halt_reason: c.halt_reason,
  iterations: c.usage.iterations,
  usage: c.usage,
  cost_usd: c.usage.dollars,
  criteria_met: c.criteria_met,
  goal: c.goal,
  policy: c.policy,
  llm: c.llm ?? null,
  critic: c.critic ?? null,
  specialist: c.specialist ?? null,
  output: c.output,
  artifacts,
  created_at: c.created_at,
  updated_at: c.updated_at,
  steps: steps.map((step) => {
    const m = messages.get(step.iteration)
    return m === undefined ? telemetryOf(step) : { ...telemetryOf(step), messages: { act: m.act, judge: m.judge } }
  }),
  ...(c.fanout === undefined ? {} : { fanout: fanoutJson(c.fanout, children) })
})
