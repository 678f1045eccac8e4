import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, DateTime, Effect, Layer, Option } from "effect"
import * as os from "node:os"
import { BadInput } from "../domain/Errors.js"
import { checkProject, defaultProject, MissionNotFound, type MissionRecord, summaryJson, type Transition } from "../domain/MissionRecord.js"
import { describeAdjustment, describePolicy, policyOf } from "../domain/Healing.js"
import { MissionStatuses, type MissionStatus } from "../domain/MissionState.js"
import type { NodeTelemetry } from "../domain/MissionRun.js"
import { dollars, plural } from "../domain/Quantity.js"
import type { ChatMessage } from "../llm/Llm.js"
import * as MissionJson from "../missions/MissionJson.js"
import * as MissionRunner from "../missions/MissionRunner.js"
import * as Firings from "../missions/Firings.js"
import * as Missions from "../missions/Missions.js"
import * as Recurrence from "../missions/Recurrence.js"
import * as StepResults from "../missions/StepResults.js"
import * as Runs from "../runtime/Runs.js"
import * as Specialists from "../specialists/Specialists.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as FiringStore from "../store/FiringStore.js"
import * as Storage from "../store/Storage.js"
import * as Flags from "./Flags.js"
import * as MissionRun from "./MissionRunCommand.js"
import * as Render from "./Render.js"
import * as Schedules from "./Schedules.js"
import type { RemoteError } from "./Remote.js"
import * as Server from "./Server.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** Who a command run by hand acts as, in a mission's history: `cli:` and the OS user. */
export const actor = (): string => {
  try {
    return `cli:${os.userInfo().username}`
  } catch {
    // No passwd entry for this uid (some containers).
    return `cli:${process.env.USER ?? process.env.LOGNAME ?? `uid ${process.getuid?.() ?? "unknown"}`}`
  }
}

export const projectFlag = Options.text("project").pipe(
  Options.withPseudoName("project"),
  Options.withDescription(
    `the project the missions belong to (default "${defaultProject}"; with --server, the token's own): 1-64 letters, digits, ".", "_" or "-"`
  ),
  Options.optional
)

/** The project here: the one given, else the default one. */
export const projectOr = (given: Option.Option<string>): string => Option.getOrElse(given, () => defaultProject)

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/** `--status S[,S...]`: the missions in any of these statuses. */
const statusFlag = Options.text("status").pipe(
  Options.withPseudoName("status[,status]"),
  Options.withDescription(`only missions in these statuses, comma-separated (${MissionStatuses.join(", ")})`),
  Options.optional,
  Options.mapEffect(Option.match({
    onNone: () => Effect.succeed<ReadonlyArray<MissionStatus>>([]),
    onSome: (raw) => {
      const given = raw.split(",").map((s) => s.trim())
      const unknown = given.find((s) => !(MissionStatuses as ReadonlyArray<string>).includes(s))
      return unknown === undefined
        ? Effect.succeed(given as ReadonlyArray<MissionStatus>)
        : Effect.fail(invalid(`--status must be one or more of ${MissionStatuses.join(", ")} (comma-separated), got "${unknown}"`))
    }
  }))
)

/**
 * Runs `effect` with the Missions service on the database, unless the database does not exist or has
 * never held a mission: then `absent`, and nothing is created or migrated by a question about missions.
 */
const withMissions = <A, E, R, A2, E2>(
  db: Flags.DatabaseFlags,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, R | Missions.Missions>
) =>
  Effect.flatMap(Flags.target(db), (target) =>
    DatabaseTarget.whenHolds(target, "missions", absent, Effect.provide(effect, Missions.layer)))

/** For a command about one mission. */
const withMission = <A, E, R>(db: Flags.DatabaseFlags, project: string, id: string, effect: (missions: Missions.Missions["Type"]) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(checkProject(project), () =>
    withMissions(db, Effect.fail(new MissionNotFound({ mission_id: id, project_id: project })), Effect.flatMap(Missions.Missions, effect)))


/** What the listing shows of a mission: fields of `summaryJson`, the JSON of `missions` and `GET /missions`. */
type Summary = Pick<
  ReturnType<typeof summaryJson>,
  "mission_id" | "project_id" | "status" | "blueprint_id" | "blueprint_version" | "created_at" | "goal" | "missing_slots"
>

// Only a draft can still be given its slots: a cancelled or running mission is past asking for them.
const missingHint = (m: Pick<Summary, "missing_slots" | "status" | "mission_id" | "project_id">) =>
  m.missing_slots.length === 0 || m.status !== "draft" ? [] : [
    `missing: ${m.missing_slots.join(", ")} (\`autopilot approve ${m.mission_id}${m.project_id === defaultProject ? "" : ` --project ${m.project_id}`}${
      m.missing_slots.map((name) => ` --slot ${name}=…`).join("")
    }\`)`
  ]

/** The listing, made from its JSON (`summaryJson` here, `GET /missions` from a server). */
const listedText = (missions: ReadonlyArray<Summary>) => {
  const rows = [
    ["MISSION", "STATUS", "BLUEPRINT", "CREATED", "GOAL"],
    ...missions.map((m) => [m.mission_id, m.status, `${m.blueprint_id} v${m.blueprint_version}`, m.created_at, m.goal.replace(/\s+/g, " ").slice(0, 60)])
  ]
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.flatMap((row, i) => [
    row.map((cell, column) => (column < 4 ? cell.padEnd(widths[column]!) : cell)).join("  "),
    ...(i === 0 ? [] : missingHint(missions[i - 1]!).map((line) => `  ${line}`))
  ]).join("\n")
}

const telemetryText = (t: NodeTelemetry) =>
  `${t.model_used === "" ? "no model call" : t.model_used} ${t.input_tokens}+${t.output_tokens} tokens ${dollars(t.cost_usd, 6)} ${t.latency_ms.toFixed(0)} ms`

const indented = (prefix: string, text: string) => `${prefix}${text.replaceAll("\n", `\n${prefix}`)}`

const runText = (run: StepResults.RunSummary | null) =>
  run === null
    ? "run: none yet"
    : `run: ${run.run_id} ${run.interrupted ? "interrupted (its process is gone; running the mission again resumes it)" : run.status}${
      run.halt_reason === null ? "" : ` (${run.halt_reason})`
    } · cost ${dollars(run.cost_usd, 6)}`

const healedText = (steps: StepResults.MissionSteps) =>
  steps.healed.length === 0
    ? [`healed: ${steps.run === null ? "nothing (not run)" : "nothing"}`]
    : [
      `healed: ${plural(steps.healed.length, "node")}; the attempts healing re-ran cost ${telemetryText(steps.healing_cost)}`,
      ...steps.healed.flatMap((h) => [
        `  ${h.node}: ${h.outcome} after ${plural(h.attempts, "attempt")}`,
        ...h.healing.map((a) => `    healing attempt ${a.attempt}: ${a.class} → ${describeAdjustment(a.adjustment)}: ${a.outcome ?? "not ended"}`)
      ])
    ]

const messagesText = (messages: ReadonlyArray<ChatMessage>) => ["      messages:", ...Render.messageLines(messages, "        ")]

/** Every node's attempts: status and telemetry, the output in full, and with `messages` the conversation. */
const stepsText = (nodes: ReadonlyArray<StepResults.NodeSteps>, messages: boolean) =>
  nodes.length === 0 ? ["steps: none (the mission has not run)"] : [
    "steps:",
    ...nodes.flatMap((n) => [
      `  ${n.node}: ${n.status.replace("_", " ")}${n.attempts.length === 0 && n.reason !== null ? ` (${n.reason})` : ""}`,
      ...n.attempts.flatMap((a) => [
        `    [${a.attempt}] ${a.run_id} ${a.status} · ${telemetryText(a.telemetry)}`,
        ...(a.healing === undefined
          ? []
          : [`      healing: ${a.healing.class} → ${describeAdjustment(a.healing.adjustment)}: ${a.healing.outcome ?? "not ended"}`]),
        ...(a.reason === null ? [] : [`      reason: ${a.reason}`]),
        "      output:",
        a.output === "" ? "        (none)" : indented("        ", a.output),
        ...(messages ? messagesText(a.messages) : [])
      ])
    ])
  ]

const showText = (
  m: MissionRecord,
  transitions: ReadonlyArray<Transition>,
  steps: StepResults.MissionSteps,
  view: ShowView,
  schedule: Schedules.ScheduleView | undefined
) =>
  [
    `mission ${m.mission_id}: ${m.status} (project ${m.project_id})`,
    `goal: ${m.goal}`,
    `blueprint: ${m.blueprint.id} v${m.blueprint.version} (${m.blueprint.title})`,
    ...missingHint(m),
    `created ${m.created_at} · updated ${m.updated_at}`,
    "",
    m.preview,
    "",
    `healing policy: ${describePolicy(policyOf(m.blueprint))}`,
    ...(schedule === undefined ? [] : Schedules.text(schedule)),
    `${schedule === undefined ? "" : "latest firing "}${runText(steps.run)}`,
    ...healedText(steps),
    "",
    "history:",
    ...transitions.map((t) => `  ${t.at}  ${t.from ?? "(new)"} → ${t.to}  ${t.actor}  ${t.reason}`),
    ...(view.steps ? ["", ...stepsText(steps.nodes, view.messages)] : [])
  ].join("\n")

type ShowView = MissionJson.ShowView

/**
 * What the mission's run did, by `MissionRunner.steps`. A database that holds no runs has none to show, and
 * is not given the run tables by a question about a mission.
 */
const stepsOf = (db: Flags.DatabaseFlags, project: string, id: string) =>
  Effect.flatMap(Flags.target(db), (target) =>
    DatabaseTarget.whenHolds(
      target,
      "checkpoints",
      Effect.succeed(StepResults.none),
      Effect.flatMap(DatabaseTarget.workspaceRoot(target), (workspaceRoot) =>
        Effect.flatMap(MissionRunner.MissionRunner, (runner) => runner.steps(project, id)).pipe(
          Effect.provide(
            MissionRunner.layer.pipe(
              Layer.provideMerge(Layer.mergeAll(Missions.layer, Firings.layer, Runs.layer({ workspaceRoot }), Specialists.layerBuiltIn)),
              Layer.provideMerge(Storage.layer)
            )
          )
        ))
    ))

/** A scheduled mission's latest firings; none in a database that has never kept one (nothing is created to ask). */
const firingsOf = (db: Flags.DatabaseFlags, mission: MissionRecord) =>
  !Recurrence.isRecurring(mission.blueprint) ? Effect.succeed([]) : Effect.flatMap(Flags.target(db), (target) =>
    DatabaseTarget.whenHolds(
      target,
      "mission_firings",
      Effect.succeed([]),
      Effect.flatMap(FiringStore.FiringStore, (store) => store.recent(mission.mission_id, 10)).pipe(Effect.provide(FiringStore.layer))
    ))

const show = Command.make(
  "show",
  {
    id: Args.text({ name: "mission-id" }),
    project: projectFlag,
    steps: Options.boolean("steps").pipe(
      Options.withDescription("also every node's attempts (StepResults): status, telemetry and the full output of each")
    ),
    messages: Options.boolean("messages").pipe(Options.withDescription("with --steps, also every attempt's whole conversation")),
    db: Flags.db,
    format: jsonFormat,
    ...Server.flags
  },
  ({ db, format, id, messages, project, steps, ...remote }) =>
    Effect.gen(function*() {
      if (messages && !steps) return yield* new BadInput({ message: "--messages shows the conversations of --steps: give --steps too" })
      const view = { steps, messages }
      const shown = yield* Server.either(remote, {
        project,
        refused: Server.databaseFlags(db),
        local: Effect.gen(function*() {
          const { mission, transitions } = yield* withMission(db, projectOr(project), id, (missions) => missions.show(projectOr(project), id))
          const results = yield* stepsOf(db, projectOr(project), id)
          const firings = yield* firingsOf(db, mission)
          const schedule = Schedules.viewOf(mission, firings, yield* DateTime.now)
          const json: unknown = MissionJson.showJson(mission, transitions, results, view, Schedules.json(schedule))
          return { json, view: { mission, transitions, steps: results, firings } }
        }),
        remote: (api) => api.mission(id, view)
      })
      if (format === "json") return yield* Console.log(Render.json(shown.json, 2))
      const { firings, mission, steps: results, transitions } = shown.view
      yield* Console.log(showText(mission, transitions, results, view, Schedules.viewOf(mission, firings, yield* DateTime.now)))
    })
).pipe(
  Command.withDescription(
    "Show one mission: its goal, slots, preview, healing policy, its run and what was healed, every transition with when, who and why; a scheduled mission's schedule, next firings and latest firings; --steps every node's attempts"
  )
)

const run = Command.make(
  "run",
  { id: Args.text({ name: "mission-id" }), project: projectFlag, ...MissionRun.flags },
  ({ id, project, ...flags }) => MissionRun.session(projectOr(project), id, flags, { actor: actor() })
).pipe(
  Command.withDescription(
    "Run an approved mission's agent graph (or resume a halted, partial or cut-off one), each node a run of its own, with live output; a scheduled mission is fired once now, as a run of its own"
  )
)

export const missions = Command.make(
  "missions",
  { project: projectFlag, status: statusFlag, db: Flags.db, format: jsonFormat, ...Server.flags },
  ({ db, format, project, status, ...remote }) =>
    Effect.gen(function*() {
      yield* checkProject(projectOr(project))
      const { json, view: listed, where } = yield* Server.either(remote, {
        project,
        refused: Server.databaseFlags(db),
        local: withMissions(db, Effect.succeed([]), Effect.flatMap(Missions.Missions, (missions) => missions.list(projectOr(project), { status }))).pipe(
          Effect.map((missions) => ({ ...Server.shown<ReadonlyArray<Summary>>(missions.map(summaryJson)), where: Effect.succeed(projectOr(project)) as Effect.Effect<string, RemoteError> }))
        ),
        remote: (api) => Effect.map(api.missions(status), (shown) => ({ ...shown, where: api.project }))
      })
      if (format === "json") return yield* Console.log(Render.json(json, 2))
      if (listed.length === 0) {
        return yield* Console.log(`no ${status.length === 0 ? "" : `${status.join(" or ")} `}missions in project ${yield* where}`)
      }
      yield* Console.log(listedText(listed))
    })
).pipe(
  Command.withDescription("List a project's missions, newest first: made from goals, approved, scheduled, run, ended or cancelled"),
  Command.withSubcommands([show, run])
)

/** `--slot name=value`, repeatable: the value as typed (a list comma-separated), split at the first `=`. */
const slotsOf = (raw: ReadonlyArray<string>): Effect.Effect<Record<string, string>, BadInput> =>
  Effect.reduce(raw, {} as Record<string, string>, (slots, pair) => {
    const at = pair.indexOf("=")
    const name = pair.slice(0, at).trim()
    if (at <= 0 || name === "") return Effect.fail(new BadInput({ message: `--slot must be name=value, got "${pair}"` }))
    if (name in slots) return Effect.fail(new BadInput({ message: `--slot ${name} is given twice; give each slot once` }))
    return Effect.succeed({ ...slots, [name]: pair.slice(at + 1) })
  })

const reasonFlag = (why: string) =>
  Options.text("reason").pipe(Options.withPseudoName("text"), Options.withDescription(`why, kept in the mission's history (default: ${why})`), Options.optional)

export const approve = Command.make(
  "approve",
  {
    id: Args.text({ name: "mission-id" }),
    project: projectFlag,
    slots: Options.text("slot").pipe(
      Options.withPseudoName("name=value"),
      Options.withDescription("a slot's value, checked by its type (a list comma-separated); repeat for several; required for every missing slot"),
      Options.repeated
    ),
    reason: reasonFlag("\"approved\""),
    ...Schedules.flags,
    db: Flags.db,
    format: jsonFormat,
    ...Server.flags
  },
  ({ catchUp, db, format, id, project, reason, slots, timeZone, ...remote }) =>
    Effect.gen(function*() {
      const given = yield* slotsOf(slots)
      const schedule = yield* Schedules.approvalOf({ timeZone, catchUp })
      const mission = yield* Server.either(remote, {
        project,
        refused: Server.databaseFlags(db),
        local: withMission(db, projectOr(project), id, (missions) =>
          missions.approve(projectOr(project), id, { slots: given, actor: actor(), reason: Option.getOrUndefined(reason), ...schedule })),
        remote: (api) =>
          api.ask(api.client.missions.approve({
            path: { id },
            payload: { slots: given, reason: Option.getOrUndefined(reason), time_zone: schedule.timeZone, catch_up: schedule.catchUp }
          })).pipe(Effect.zipRight(api.mission(id, { steps: false, messages: false })), Effect.map((shown) => shown.view.mission))
      })
      const armed = Schedules.viewOf(mission, [], yield* DateTime.now)
      yield* Console.log(
        format === "json"
          ? Render.json({ ...summaryJson(mission), preview: mission.preview, ...(armed === undefined ? {} : { schedule: Schedules.json(armed).schedule }) }, 2)
          : [`mission ${mission.mission_id} approved and ${mission.status}`, ...(armed === undefined ? [] : Schedules.text(armed).filter((line) => !line.startsWith("firings"))), "", mission.preview].join("\n")
      )
    })
).pipe(Command.withDescription("Approve a draft mission, giving any missing slots: it is then scheduled; a scheduled mission is armed, in --time-zone with --catch-up"))

export const cancel = Command.make(
  "cancel",
  {
    id: Args.text({ name: "mission-id" }),
    project: projectFlag,
    reason: reasonFlag("the status it was cancelled from"),
    db: Flags.db,
    format: jsonFormat,
    ...Server.flags
  },
  ({ db, format, id, project, reason, ...remote }) =>
    Effect.gen(function*() {
      const result = yield* Server.either(remote, {
        project,
        refused: Server.databaseFlags(db),
        local: withMission(db, projectOr(project), id, (missions) => missions.cancel(projectOr(project), id, actor(), Option.getOrUndefined(reason))).pipe(
          Effect.map((cancelled) => ({ cancelled: cancelled.cancelled, status: cancelled.mission.status, message: cancelled.message }))
        ),
        remote: (api) => api.ask(api.client.missions.cancel({ path: { id }, urlParams: { reason: Option.getOrUndefined(reason) } }))
      })
      yield* Console.log(
        format === "json"
          ? Render.json({ cancelled: result.cancelled, mission_id: id, status: result.status, message: result.message })
          : result.message
      )
    })
).pipe(Command.withDescription("Cancel a mission that has not ended; one that has (completed, failed…) is left as it is, and it says so"))
