import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { Blueprint } from "../domain/Blueprint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { checkProject, defaultProject, MissionNotFound, type MissionRecord, summaryJson, type Transition } from "../domain/MissionRecord.js"
import { MissionStatuses, type MissionStatus } from "../domain/MissionState.js"
import * as Missions from "../missions/Missions.js"
import * as Database from "../store/Database.js"
import * as Flags from "./Flags.js"
import * as MissionRun from "./MissionRunCommand.js"
import * as Render from "./Render.js"

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
  Options.withDescription(`the project the missions belong to (default "${defaultProject}"): 1-64 letters, digits, ".", "_" or "-"`),
  Options.withDefault(defaultProject)
)

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

const hasMissions = Database.hasTable("missions")

/**
 * Runs `effect` with the Missions service on the database, unless the database does not exist or has
 * never held a mission: then `absent`, and nothing is created or migrated by a question about missions.
 */
const withMissions = <A, E, R, A2, E2>(
  db: Option.Option<string>,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, R | Missions.Missions>
): Effect.Effect<A | A2, E | E2 | PersistenceError, Exclude<R, Missions.Missions>> =>
  Effect.flatMap(Flags.databasePath(db), (file) =>
    Effect.if(fs.existsSync(file), {
      onFalse: () => absent,
      onTrue: () =>
        Effect.flatMap(hasMissions, (has) => Effect.if(has, { onTrue: () => Effect.provide(effect, Missions.layer), onFalse: () => absent })).pipe(
          Effect.provide(Database.layerSqlite(file))
        )
    }))

/** For a command about one mission. */
const withMission = <A, E, R>(db: Option.Option<string>, project: string, id: string, effect: (missions: Missions.Missions["Type"]) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(checkProject(project), () =>
    withMissions(db, Effect.fail(new MissionNotFound({ mission_id: id, project_id: project })), Effect.flatMap(Missions.Missions, effect)))

const transitionJson = (t: Transition) => ({ seq: t.seq, at: t.at, from: t.from, to: t.to, actor: t.actor, reason: t.reason })

// Only a draft can still be given its slots: a cancelled or running mission is past asking for them.
const missingHint = (m: MissionRecord) =>
  m.missing_slots.length === 0 || m.status !== "draft" ? [] : [
    `missing: ${m.missing_slots.join(", ")} (\`autopilot approve ${m.mission_id}${m.project_id === defaultProject ? "" : ` --project ${m.project_id}`}${
      m.missing_slots.map((name) => ` --slot ${name}=…`).join("")
    }\`)`
  ]

const listedText = (missions: ReadonlyArray<MissionRecord>) => {
  const rows = [
    ["MISSION", "STATUS", "BLUEPRINT", "CREATED", "GOAL"],
    ...missions.map((m) => [m.mission_id, m.status, `${m.blueprint.id} v${m.blueprint.version}`, m.created_at, m.goal.replace(/\s+/g, " ").slice(0, 60)])
  ]
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.flatMap((row, i) => [
    row.map((cell, column) => (column < 4 ? cell.padEnd(widths[column]!) : cell)).join("  "),
    ...(i === 0 ? [] : missingHint(missions[i - 1]!).map((line) => `  ${line}`))
  ]).join("\n")
}

const showText = (m: MissionRecord, transitions: ReadonlyArray<Transition>) =>
  [
    `mission ${m.mission_id}: ${m.status} (project ${m.project_id})`,
    `goal: ${m.goal}`,
    `blueprint: ${m.blueprint.id} v${m.blueprint.version} (${m.blueprint.title})`,
    ...missingHint(m),
    `created ${m.created_at} · updated ${m.updated_at}`,
    "",
    m.preview,
    "",
    "history:",
    ...transitions.map((t) => `  ${t.at}  ${t.from ?? "(new)"} → ${t.to}  ${t.actor}  ${t.reason}`)
  ].join("\n")

const encodeBlueprint = Schema.encodeSync(Blueprint)

const show = Command.make(
  "show",
  { id: Args.text({ name: "mission-id" }), project: projectFlag, db: Flags.db, format: jsonFormat },
  ({ db, format, id, project }) =>
    Effect.gen(function*() {
      const { mission, transitions } = yield* withMission(db, project, id, (missions) => missions.show(project, id))
      yield* Console.log(
        format === "json"
          ? Render.json({
            ...summaryJson(mission),
            preview: mission.preview,
            transitions: transitions.map(transitionJson),
            blueprint: encodeBlueprint(mission.blueprint)
          }, 2)
          : showText(mission, transitions)
      )
    })
).pipe(Command.withDescription("Show one mission: its goal, slots, preview, and every transition with when, who and why"))

const run = Command.make(
  "run",
  { id: Args.text({ name: "mission-id" }), project: projectFlag, ...MissionRun.flags },
  ({ id, project, ...flags }) => MissionRun.session(project, id, flags, { actor: actor() })
).pipe(
  Command.withDescription(
    "Run an approved or scheduled mission's agent graph (or resume a halted, partial or cut-off one), each node a run of its own, with live output"
  )
)

export const missions = Command.make(
  "missions",
  { project: projectFlag, status: statusFlag, db: Flags.db, format: jsonFormat },
  ({ db, format, project, status }) =>
    Effect.gen(function*() {
      yield* checkProject(project)
      const listed = yield* withMissions(db, Effect.succeed([]), Effect.flatMap(Missions.Missions, (missions) => missions.list(project, { status })))
      if (format === "json") return yield* Console.log(Render.json(listed.map(summaryJson), 2))
      if (listed.length === 0) {
        return yield* Console.log(`no ${status.length === 0 ? "" : `${status.join(" or ")} `}missions in project ${project}`)
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
    db: Flags.db,
    format: jsonFormat
  },
  ({ db, format, id, project, reason, slots }) =>
    Effect.gen(function*() {
      const given = yield* slotsOf(slots)
      const mission = yield* withMission(db, project, id, (missions) =>
        missions.approve(project, id, { slots: given, actor: actor(), reason: Option.getOrUndefined(reason) }))
      yield* Console.log(
        format === "json"
          ? Render.json({ ...summaryJson(mission), preview: mission.preview }, 2)
          : `mission ${mission.mission_id} approved and ${mission.status}\n\n${mission.preview}`
      )
    })
).pipe(Command.withDescription("Approve a draft mission, giving any missing slots: it is then scheduled"))

export const cancel = Command.make(
  "cancel",
  { id: Args.text({ name: "mission-id" }), project: projectFlag, reason: reasonFlag("the status it was cancelled from"), db: Flags.db, format: jsonFormat },
  ({ db, format, id, project, reason }) =>
    Effect.gen(function*() {
      const result = yield* withMission(db, project, id, (missions) => missions.cancel(project, id, actor(), Option.getOrUndefined(reason)))
      yield* Console.log(
        format === "json"
          ? Render.json({ cancelled: result.cancelled, mission_id: result.mission.mission_id, status: result.mission.status, message: result.message })
          : result.message
      )
    })
).pipe(Command.withDescription("Cancel a mission that has not ended; one that has (completed, failed…) is left as it is, and it says so"))
