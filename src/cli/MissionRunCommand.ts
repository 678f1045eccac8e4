import { Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import * as path from "node:path"
import { BadInput } from "../domain/Errors.js"
import type { AutopilotEvent } from "../domain/Event.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import { checkProject, MissionNotFound, summaryJson } from "../domain/MissionRecord.js"
import { type Firing, fromRef } from "../domain/Firing.js"
import * as MissionRun from "../domain/MissionRun.js"
import type { MissionRef } from "../domain/MissionRun.js"
import { exitCodeOf } from "../domain/RunStatus.js"
import * as Firings from "../missions/Firings.js"
import * as MissionRunner from "../missions/MissionRunner.js"
import * as Missions from "../missions/Missions.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import { RunStore } from "../store/RunStore.js"
import * as Storage from "../store/Storage.js"
import * as Flags from "./Flags.js"
import * as Live from "./Live.js"
import * as LiveText from "../runtime/LiveText.js"
import * as Render from "./Render.js"
import * as Run from "./RunCommand.js"
import * as Signals from "./Signals.js"

/**
 * The flags of `missions run`: the model, timing and database flags of `run` (a mission's budget is its
 * blueprint's, so no budget flags), how many nodes run at once, and the provider nodes fall back to.
 */
export const flags = {
  llm: Run.sessionFlags.llm,
  model: Run.sessionFlags.model,
  mockScript: Run.sessionFlags.mockScript,
  heartbeat: Run.sessionFlags.heartbeat,
  grace: Run.sessionFlags.grace,
  db: Flags.db,
  format: Flags.oneOf("format", ["text", "json", "jsonl"], "text for people as it runs, json for one object at the end, jsonl for one JSON event per line"),
  maxParallel: Options.text("max-parallel").pipe(
    Options.withPseudoName("integer"),
    Options.withDescription(`how many nodes run at a time: a whole number from 1 to 1000 (default ${MissionRunner.defaults.maxParallel}; a resume keeps its own)`),
    Options.optional
  ),
  fallbackLlm: Run.providerFlag(
    "fallback-llm",
    "the provider nodes fall back to when healing asks for one or a provider's breaker opens; openai reads $AUTOPILOT_FALLBACK_LLM_BASE_URL (default: none; a resume keeps its own)"
  ),
  fallbackModel: Options.text("fallback-model").pipe(Options.withDescription("model name passed to the fallback provider"), Options.optional),
  fallbackMockScript: Options.file("fallback-mock-script").pipe(
    Options.withDescription("JSON script for a mock fallback (with --fallback-llm mock)"),
    Options.optional
  )
}

export type MissionFlags = {
  readonly [K in keyof typeof flags]: typeof flags[K] extends Options.Options<infer A> ? A : never
}

const maxParallelOf = (raw: Option.Option<string>) =>
  Option.match(raw, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) =>
      /^\d{1,4}$/.test(text) && Number(text) >= 1 && Number(text) <= 1000
        ? Effect.succeed(Number(text))
        : Effect.fail(new BadInput({ message: `--max-parallel must be a whole number from 1 to 1000, got "${text}"` }))
  })

/** The fallback provider asked for. */
const fallbackOf = (given: MissionFlags) =>
  Effect.gen(function*() {
    const model = Option.getOrUndefined(given.fallbackModel)
    const script = Option.getOrUndefined(given.fallbackMockScript)
    if (given.fallbackLlm === undefined) {
      if (model !== undefined || script !== undefined) {
        return yield* new BadInput({ message: `--${model !== undefined ? "fallback-model" : "fallback-mock-script"} needs --fallback-llm naming the fallback provider` })
      }
      return undefined
    }
    if (script !== undefined && given.fallbackLlm !== "mock") {
      return yield* new BadInput({ message: `--fallback-mock-script is for a mock fallback, but --fallback-llm is ${given.fallbackLlm}` })
    }
    // By its full path, as the mission's own script is: a resume from another folder finds it.
    const choice: LlmChoice.LlmChoice = {
      provider: given.fallbackLlm,
      ...(model === undefined ? {} : { model }),
      ...(script === undefined ? {} : { mock_script: path.resolve(script) })
    }
    // Built and so checked (a missing URL or script) by the runner before the mission moves.
    return choice
  })

/** Everything a mission's run needs, on one database: its missions, its runs and the specialist catalog. */
export const layer = (target: DatabaseTarget.DatabaseTarget) =>
  Layer.unwrapEffect(Effect.map(DatabaseTarget.workspaceRoot(target), (workspaceRoot) => MissionRunner.layerWith({ workspaceRoot }))).pipe(
    Layer.provideMerge(Storage.layer),
    Layer.provideMerge(DatabaseTarget.layer(target))
  )

/** A node run's id without its mission run's: `collect`, `analyze.2`, `3.summarize`. */
const nodeKey = (missionRunId: string, runId: string) => (runId.startsWith(`${missionRunId}.`) ? runId.slice(missionRunId.length + 1) : runId)

/**
 * Runs (or resumes) a mission with live output, as `run` does: flags checked before the database is
 * opened, signals halting at the next boundary (a second one at once), the exit code from how it ended.
 * An armed scheduled mission is fired now, by hand: a firing of its own (`<mission>.manual-<time>`).
 */
export const session = (
  project: string,
  missionId: string,
  given: MissionFlags,
  options: { readonly actor: string; readonly takeOver?: boolean; readonly firing?: Firing | undefined }
) =>
  Effect.gen(function*() {
    yield* checkProject(project)
    const heartbeat = yield* Option.match(given.heartbeat, {
      onNone: () => Effect.succeed(30),
      onSome: (raw) => Flags.seconds("--heartbeat-seconds", raw, 0.1, 86_400)
    })
    const grace = yield* Option.match(given.grace, {
      onNone: () => Effect.succeed(5),
      onSome: (raw) => Flags.seconds("--grace-seconds", raw, 0, 3_600)
    })
    const maxParallel = yield* maxParallelOf(given.maxParallel)
    const fallback = yield* fallbackOf(given)
    yield* LiveText.enabled
    const target = yield* Flags.target(given.db)
    // Asking about a mission never creates or migrates a database.
    if (!(yield* DatabaseTarget.holds(target, "missions"))) return yield* new MissionNotFound({ mission_id: missionId, project_id: project })

    const quiet = given.format === "json"

    const ran = yield* Effect.scoped(Effect.gen(function*() {
      const mission = yield* (yield* Missions.Missions).get(project, missionId)
      const firing = options.firing ?? (Firings.refusal(mission) === undefined ? yield* (yield* Firings.Firings).fire(project, missionId) : undefined)
      const runId = firing?.run_id ?? missionId
      const own = given.format === "jsonl" ? Live.jsonl(Live.stdout, { runId, deltas: false }) : Live.text(Live.stdout)
      const nodes = given.format === "jsonl" ? own.event : Live.nested(Live.stdout, (e) => nodeKey(runId, e.run_id))
      const onEvent = (event: AutopilotEvent) =>
        Effect.zipRight(
          event.kind === "run_started" ? Effect.sync(() => process.stderr.write(`database: ${DatabaseTarget.describe(target)}\n`)) : Effect.void,
          quiet ? Effect.void : own.event(event)
        )
      // $AUTOPILOT_MOCK_SCRIPT stands in for --mock-script as for `run`: on a first run, not on a resume.
      const resume = (yield* (yield* RunStore).load(runId))._tag !== "Missing"
      const signals = yield* Signals.listen
      const ran = yield* Missions.run(project, missionId, {
        actor: options.actor,
        llm: Run.llmRequested(given, resume),
        fallback,
        maxParallel,
        takeOver: options.takeOver,
        halt: signals.halt,
        haltNow: signals.haltNow,
        haltGrace: `${grace} seconds`,
        heartbeatInterval: `${heartbeat} seconds`,
        onEvent,
        onChildEvent: quiet ? undefined : nodes,
        firing
      })
      return { ...ran, firing }
    })).pipe(Effect.provide(layer(target)))

    const { firing, mission, result } = ran
    if (given.format === "json") {
      yield* Console.log(Render.json({
        ...summaryJson(mission),
        ...(firing === undefined ? {} : { firing: { run_id: firing.run_id, slot: firing.slot, kind: firing.kind } }),
        run: { run_id: result.run_id, status: result.status, halt_reason: result.halt_reason, criteria_met: result.criteria_met, usage: result.usage },
        nodes: result.nodes
      }, 2))
    } else if (given.format === "text") {
      const ended = firing === undefined
        ? `mission ${mission.mission_id} ${mission.status}`
        : `firing ${result.run_id} ${result.status} (mission ${mission.mission_id} stays ${mission.status})`
      yield* Console.log(`\n${ended}${result.output === "" ? "" : `\n\n${result.output}`}`)
    }
    yield* Run.setExitCode(exitCodeOf(result.status))
  })

/**
 * `autopilot resume` of a mission's run: through the mission, so its lifecycle moves with the run. What
 * `resume` takes for a plain run but a mission does not (budget caps: a mission's are its blueprint's; a
 * workspace, a critic, deltas) is refused rather than ignored.
 */
export const resume = (ref: MissionRef, given: Run.SessionFlags, actor: string, takeOver: boolean) =>
  Effect.gen(function*() {
    const overrides = yield* Flags.policyOverrides(given)
    const extra = [
      ...Object.keys(overrides ?? {}).length > 0 ? ["budget caps"] : [],
      ...Option.isSome(given.workspace) ? ["--workspace"] : [],
      ...given.critic || Option.isSome(given.criticThreshold) ? ["--critic"] : [],
      ...given.deltas ? ["--deltas"] : []
    ]
    if (extra.length > 0) {
      return yield* new BadInput({
        message: `run "${MissionRun.runIdOf(ref)}" is the run of mission ${ref.mission_id}, which runs on its blueprint's budget and settings: ${extra.join(", ")} do not apply to it`
      })
    }
    yield* session(ref.project_id, ref.mission_id, {
      ...given,
      maxParallel: Option.none(),
      fallbackLlm: undefined,
      fallbackModel: Option.none(),
      fallbackMockScript: Option.none()
    }, { actor, takeOver, firing: ref.firing === undefined ? undefined : fromRef(ref.project_id, ref.mission_id, ref.firing) })
  })
