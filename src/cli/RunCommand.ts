import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { BadInput, RunNotFound } from "../domain/Errors.js"
import { fromText, type Goal } from "../domain/Goal.js"
import { exitCodeOf } from "../domain/RunStatus.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as RunId from "../domain/RunId.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import * as LiveText from "../runtime/LiveText.js"
import type { MissionError, MissionResult } from "../runtime/Mission.js"
import { Runs, type StartOptions } from "../runtime/Runs.js"
import type { Specialist } from "../specialists/Specialist.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as CriticFlags from "./CriticFlags.js"
import * as Flags from "./Flags.js"
import * as Live from "./Live.js"
import * as Signals from "./Signals.js"
import { catalog } from "./SpecialistsCommand.js"
import { recordedMission, runsLayer } from "./Store.js"

const providers = LlmChoice.LlmChoice.fields.provider.literals

/** `--<name> mock|openai|harness`, optional: a model provider by name. */
export const providerFlag = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withPseudoName(providers.join("|")),
    Options.withDescription(description),
    Options.optional,
    Options.mapEffect(Option.match({
      onNone: () => Effect.succeed(undefined),
      onSome: (raw) =>
        providers.includes(raw as LlmChoice.LlmChoice["provider"])
          ? Effect.succeed(raw as LlmChoice.LlmChoice["provider"])
          : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be ${providers.join(" or ")}, got "${raw}"`)))
    }))
  )

export const sessionFlags = {
  ...Flags.budgetFlags,
  llm: providerFlag(
    "llm",
    "the model: the embedded deterministic mock (no key, no network), any OpenAI-compatible server at $AUTOPILOT_LLM_BASE_URL, or the harness (served at $AUTOPILOT_HARNESS_URL, or in process from $AUTOPILOT_HARNESS_CONFIG) with $AUTOPILOT_HARNESS_KEY (mock or openai or harness; default: a resumed run's own, else mock)"
  ),
  model: Options.text("model").pipe(Options.withDescription("model name passed to the provider"), Options.optional),
  mockScript: Options.file("mock-script").pipe(
    Options.withDescription("JSON script for the mock model (default: $AUTOPILOT_MOCK_SCRIPT)"),
    Options.optional
  ),
  workspace: Options.directory("workspace").pipe(
    Options.withDescription("folder the file tools may use (default: workspaces/<run-id> beside the database)"),
    Options.optional
  ),
  heartbeat: Options.text("heartbeat-seconds").pipe(
    Options.withPseudoName("seconds"),
    Options.withDescription("seconds between heartbeat events (default 30)"),
    Options.optional
  ),
  grace: Options.text("grace-seconds").pipe(
    Options.withPseudoName("seconds"),
    Options.withDescription("how long a halted run lets its in-flight iteration finish (default 5)"),
    Options.optional
  ),
  db: Flags.db,
  format: Flags.format,
  deltas: Options.boolean("deltas").pipe(
    Options.withDescription("with --format jsonl, also write the answer as it is generated, as `delta` lines (never stored)")
  ),
  ...CriticFlags.flags
}

export type SessionFlags = Command.Command.ParseConfig<typeof sessionFlags>

export const setExitCode = (code: number) => Effect.sync(() => { process.exitCode = code })

/**
 * The model the flags ask for. $AUTOPILOT_MOCK_SCRIPT stands in for --mock-script where the mock is chosen
 * afresh (a new run, or --llm mock), not on a resume that keeps its own.
 */
export const llmRequested = (flags: Pick<SessionFlags, "llm" | "model" | "mockScript">, resume: boolean): LlmChoice.LlmRequested => {
  const fromEnv = process.env["AUTOPILOT_MOCK_SCRIPT"]
  const freshMock = flags.llm === "mock" || (flags.llm === undefined && !resume)
  return {
    provider: flags.llm,
    model: Option.getOrUndefined(flags.model),
    mock_script: Option.getOrUndefined(flags.mockScript) ?? (freshMock && fromEnv !== "" ? fromEnv : undefined)
  }
}

/** How a session is started once its flags are checked: a mission (the default), or a fan-out. */
export type Starter = (runs: Runs["Type"], options: StartOptions) => Effect.Effect<MissionResult, MissionError>

/** Validates everything first, so bad input never reaches the database; then runs the mission. */
export const session = (
  runId: string,
  goal: Goal | undefined,
  resume: boolean,
  flags: SessionFlags,
  takeOver = false,
  specialist: Specialist | undefined = undefined,
  starter: Starter = (runs, options) => runs.start(options)
) =>
  Effect.gen(function*() {
    const policy = yield* Flags.policyOverrides(flags)
    const heartbeat = yield* Option.match(flags.heartbeat, {
      onNone: () => Effect.succeed(30),
      onSome: (raw) => Flags.seconds("--heartbeat-seconds", raw, 0.1, 86_400)
    })
    const grace = yield* Option.match(flags.grace, {
      onNone: () => Effect.succeed(5),
      onSome: (raw) => Flags.seconds("--grace-seconds", raw, 0, 3_600)
    })
    const critic = yield* CriticFlags.requested(flags)
    const llm = llmRequested(flags, resume)
    // A resumed run's own choice is read from its database; a new run's is checked before one is made.
    if (!resume) yield* Effect.flatMap(LlmChoice.resolve(undefined, llm), LlmLayer.validate)
    yield* LiveText.enabled
    const target = yield* Flags.target(flags.db)
    if (flags.deltas && flags.format !== "jsonl") {
      return yield* new BadInput({ message: "--deltas needs --format jsonl (the text view always shows the answer as it is generated)" })
    }
    // A resume of a run that is not there creates nothing: no database, no tables.
    if (resume && !(yield* DatabaseTarget.holds(target, "checkpoints"))) return yield* new RunNotFound({ run_id: runId })
    const view = flags.format === "jsonl" ? Live.jsonl(Live.stdout, { runId, deltas: flags.deltas }) : Live.text(Live.stdout)

    const result = yield* Effect.scoped(Effect.gen(function*() {
      const signals = yield* Signals.listen
      const runs = yield* Runs
      return yield* starter(runs, {
        runId,
        goal,
        resume,
        takeOver,
        policy,
        llm,
        critic,
        specialist,
        workspace: Option.getOrUndefined(flags.workspace),
        halt: signals.halt,
        haltNow: signals.haltNow,
        haltGrace: `${grace} seconds`,
        heartbeatInterval: `${heartbeat} seconds`,
        // Which database the flags and environment chose, once the run is claimed (bad input stays
        // one line). On stderr, so --format jsonl keeps stdout to JSON lines; not Console.error, which
        // main silences while @effect/cli runs.
        onEvent: (event) =>
          event.kind === "run_started"
            ? Effect.zipRight(Effect.sync(() => process.stderr.write(`database: ${DatabaseTarget.describe(target)}\n`)), view.event(event))
            : view.event(event),
        onDelta: view.delta
      })
    })).pipe(Effect.provide(runsLayer(target)))

    if (flags.format === "text" && result.output !== "") yield* Console.log(`\n${result.output}`)
    yield* setExitCode(exitCodeOf(result.status))
  })

export const newRunId = RunId.fresh

export const specialistFlag = Options.text("specialist").pipe(
  Options.withPseudoName("id"),
  Options.withDescription("run as this specialist: its instructions, its tools only, its model tier (`autopilot specialists` lists them)"),
  Options.optional
)

/** The catalog is read only when a specialist is asked for; an unknown one is bad input before anything is written. */
export const specialistOf = (id: Option.Option<string>) =>
  Option.match(id, {
    onNone: () => Effect.succeed(undefined),
    onSome: (id) => Effect.map(Effect.flatMap(catalog, (specialists) => specialists.get(id)), (entry) => entry.specialist)
  })

export const run = Command.make(
  "run",
  {
    objective: Args.text({ name: "objective" }).pipe(Args.withDescription("what the mission is for, in plain words")),
    criteria: Options.text("criterion").pipe(
      Options.withDescription("a success criterion; repeat for several (default: the objective itself)"),
      Options.repeated
    ),
    runId: Options.text("run-id").pipe(Options.withDescription("id for the run (default: generated)"), Options.optional),
    resume: Options.boolean("resume").pipe(Options.withDescription("continue the run with this --run-id")),
    specialist: specialistFlag,
    project: Flags.project(`the project the run belongs to (default "default"; with --resume, the run's own)`),
    ...sessionFlags
  },
  (input) =>
    Effect.gen(function*() {
      const goal = yield* fromText(input.objective, input.criteria)
      const project = yield* Flags.projectOf(input.project)
      if (input.resume && Option.isNone(input.runId)) {
        return yield* new BadInput({ message: "--resume needs --run-id naming the run to continue" })
      }
      const runId = yield* Option.match(input.runId, { onNone: () => newRunId("run"), onSome: Flags.runId })
      yield* session(runId, goal, input.resume, input, false, yield* specialistOf(input.specialist), (runs, options) => runs.start({ ...options, project }))
    })
).pipe(Command.withDescription("Run a mission until every criterion is met or a budget axis trips"))

export const resume = Command.make(
  "resume",
  {
    runId: Args.text({ name: "run-id" }),
    force: Options.boolean("force").pipe(
      Options.withDescription("take over a run whose process looks alive but is gone (another host, a replaced container, a reused pid)")
    ),
    ...sessionFlags
  },
  (input) =>
    Effect.gen(function*() {
      const runId = yield* Flags.runId(input.runId)
      const mission = yield* recordedMission(yield* Flags.target(input.db), runId)
      if (Option.isNone(mission)) return yield* session(runId, undefined, true, input, input.force)
      // A mission's run resumes through its mission, whose lifecycle moves with it. Loaded here, not
      // imported: the mission command's module builds on this one.
      const [missionRun, missionsCommands] = yield* Effect.promise(() => Promise.all([import("./MissionRunCommand.js"), import("./MissionsCommands.js")]))
      yield* missionRun.resume(mission.value, input, missionsCommands.actor(), input.force)
    })
).pipe(Command.withDescription("Continue a run where its last checkpoint left it, with cumulative budgets; a mission's run, through its mission"))
