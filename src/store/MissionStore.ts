import { SqlClient } from "@effect/sql"
import { Context, Effect, type Either, Layer, Option, ParseResult, Schema } from "effect"
import * as Blueprint from "../domain/Blueprint.js"
import { BadInput, PersistenceError } from "../domain/Errors.js"
import { MissionRecord, SlotValues, Transition } from "../domain/MissionRecord.js"
import { MissionStatus } from "../domain/MissionState.js"
import { MissionSchedule } from "../domain/Schedule.js"
import * as Database from "./Database.js"

const migrations = {
  // `from`/`to` are reserved words in SQL: the columns are from_status and to_status.
  "0001_missions": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS missions (
      mission_id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL,
      goal TEXT NOT NULL,
      blueprint_id TEXT NOT NULL,
      blueprint_version INTEGER NOT NULL,
      blueprint_json TEXT NOT NULL,
      slots TEXT NOT NULL,
      missing_slots TEXT NOT NULL,
      status TEXT NOT NULL,
      preview TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS missions_by_project ON missions (project_id, created_at)`
    yield* sql`CREATE TABLE IF NOT EXISTS mission_transitions (
      mission_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      from_status TEXT NULL,
      to_status TEXT NOT NULL,
      actor TEXT NOT NULL,
      at TEXT NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (mission_id, seq)
    )`
  }),
  // A scheduled mission's zone and catch-up policy (JSON), set when it is approved; null for the others.
  "0002_mission_schedule": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`ALTER TABLE missions ADD COLUMN schedule TEXT NULL`)
}

/** A mission's row as the database returns it, its JSON columns decoded by their Schemas. */
const MissionRow = Schema.Struct({
  mission_id: Schema.String,
  project_id: Schema.String,
  goal: Schema.String,
  blueprint_json: Schema.String,
  slots: Schema.parseJson(SlotValues),
  missing_slots: Schema.parseJson(Schema.Array(Schema.String)),
  status: MissionStatus,
  preview: Schema.String,
  created_at: Schema.String,
  updated_at: Schema.String,
  schedule: Schema.NullOr(Schema.parseJson(MissionSchedule))
})

const TransitionRow = Schema.Struct({
  mission_id: Schema.String,
  seq: Schema.Number,
  from_status: Schema.NullOr(MissionStatus),
  to_status: MissionStatus,
  actor: Schema.String,
  at: Schema.String,
  reason: Schema.String
})

const decodeMission = Schema.decodeUnknown(MissionRow)
const decodeTransition = Schema.decodeUnknown(TransitionRow)

/** A row written by this module that no longer decodes is reported, never skipped in silence. */
const undecodable = (what: string) => (error: Parameters<typeof Database.decodeError>[0]) =>
  new PersistenceError({ message: `${what} in the database does not decode: ${Database.decodeError(error)}`, busy: false })

const decodeJson = Schema.decodeUnknown(Schema.parseJson(Blueprint.Blueprint))

/**
 * The missions made from one blueprint store the same text, and a listing decodes every row's: each text is
 * decoded once (the latest 256 kept): decoding was most of what `GET /missions` cost. A blueprint is immutable
 * data, so sharing one decoded value between records is safe.
 */
const decoded = new Map<string, Blueprint.Blueprint>()
const decodedLimit = 256

const decodeBlueprint = (text: string) => {
  const known = decoded.get(text)
  if (known !== undefined) return Effect.succeed(known)
  return Effect.tap(decodeJson(text), (blueprint) =>
    Effect.sync(() => {
      if (decoded.size >= decodedLimit) decoded.delete(decoded.keys().next().value!)
      decoded.set(text, blueprint)
    }))
}

/** `graph.edges[0].when.field: must be a dotted path …`: where, and what is wrong, without the schema. */
const issues = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
    `${issue.path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("") || "the blueprint"}: ${issue.message}`
  ).join("; ")

/**
 * The blueprint is decoded on its own: a stored graph that no longer reads as one (a condition that does
 * not parse, a field edited by hand) is a problem of that mission, said in one line, not a broken database.
 */
const missionOf = (row: unknown) =>
  decodeMission(row).pipe(
    Effect.mapError(undecodable(`mission ${String((row as { mission_id?: unknown }).mission_id)}`)),
    Effect.flatMap(({ blueprint_json, schedule, ...rest }) =>
      decodeBlueprint(blueprint_json).pipe(
        Effect.mapError((error) =>
          new BadInput({ message: `mission ${rest.mission_id}'s stored blueprint does not decode, so it cannot be used: ${issues(error)}` })
        ),
        Effect.map((blueprint) => new MissionRecord({ ...rest, blueprint, ...(schedule === null ? {} : { schedule }) }))
      ))
  )

const transitionOf = (row: unknown) =>
  decodeTransition(row).pipe(
    Effect.map(({ from_status, seq, to_status, ...rest }) => new Transition({ ...rest, seq, from: from_status, to: to_status })),
    Effect.mapError(undecodable(`a transition of mission ${String((row as { mission_id?: unknown }).mission_id)}`))
  )

/** A transition about to be appended; the store numbers it. */
export interface NewTransition {
  readonly from: MissionStatus | null
  readonly to: MissionStatus
  readonly actor: string
  readonly at: string
  readonly reason: string
}

const columns = "mission_id, project_id, goal, blueprint_json, slots, missing_slots, status, preview, created_at, updated_at, schedule"

const scheduleOf = (mission: MissionRecord) => (mission.schedule === undefined ? null : JSON.stringify(mission.schedule))

/**
 * Missions, one row each, scoped to a project: every read names the project, so a mission of another is
 * not there. Their history is appended to `mission_transitions`, never rewritten.
 */
export class MissionStore extends Context.Tag("autopilot/MissionStore")<
  MissionStore,
  {
    /** A new mission and the transition that made it. */
    readonly insert: (mission: MissionRecord, created: NewTransition) => Effect.Effect<void, PersistenceError>
    readonly get: (project: string, missionId: string) => Effect.Effect<Option.Option<MissionRecord>, BadInput | PersistenceError>
    /** Newest first; of any of `statuses`, or all when none are given. */
    readonly list: (project: string, statuses: ReadonlyArray<MissionStatus>) => Effect.Effect<ReadonlyArray<MissionRecord>, BadInput | PersistenceError>
    /**
     * Of every project, oldest first, in any of `statuses`: what a daemon serving them all looks at. A
     * mission whose row or stored blueprint no longer decodes is there as its error, so it holds up no other.
     */
    readonly listAll: (statuses: ReadonlyArray<MissionStatus>) => Effect.Effect<ReadonlyArray<Either.Either<MissionRecord, BadInput | PersistenceError>>, PersistenceError>
    /** In order. */
    readonly transitions: (missionId: string) => Effect.Effect<ReadonlyArray<Transition>, PersistenceError>
    /**
     * Writes `mission` (status, slots, missing slots, preview, updated_at) and appends `steps`, only if its
     * row still has status `expected`: the transitions written, or none (and nothing written) when another
     * writer moved the mission first. For one transaction with the caller's other writes, run it inside one.
     */
    readonly advance: (
      mission: MissionRecord,
      expected: MissionStatus,
      steps: ReadonlyArray<NewTransition>
    ) => Effect.Effect<Option.Option<ReadonlyArray<Transition>>, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_missions_migrations", migrations)

  const append = (missionId: string, first: number, steps: ReadonlyArray<NewTransition>) => {
    if (steps.length === 0) return Effect.succeed<ReadonlyArray<Transition>>([])
    const rows = steps.map((step, i) => ({
      mission_id: missionId,
      seq: first + i,
      from_status: step.from,
      to_status: step.to,
      actor: step.actor,
      at: step.at,
      reason: step.reason
    }))
    return sql`INSERT INTO mission_transitions ${sql.insert(rows)}`.pipe(
      Effect.as(rows.map(({ from_status, to_status, ...row }) => new Transition({ ...row, from: from_status, to: to_status })))
    )
  }

  return MissionStore.of({
    insert: (mission, created) =>
      sql`INSERT INTO missions ${
        sql.insert({
          mission_id: mission.mission_id,
          project_id: mission.project_id,
          goal: mission.goal,
          blueprint_id: mission.blueprint.id,
          blueprint_version: mission.blueprint.version,
          blueprint_json: Blueprint.toJson(mission.blueprint),
          slots: JSON.stringify(mission.slots),
          missing_slots: JSON.stringify(mission.missing_slots),
          status: mission.status,
          preview: mission.preview,
          created_at: mission.created_at,
          updated_at: mission.updated_at,
          schedule: scheduleOf(mission)
        })
      }`.pipe(Effect.zipRight(append(mission.mission_id, 1, [created])), Effect.asVoid, Database.refail),
    get: (project, missionId) =>
      sql`SELECT ${sql.literal(columns)} FROM missions WHERE mission_id = ${missionId} AND project_id = ${project}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(missionOf(rows[0])))
      ),
    list: (project, statuses) =>
      sql`SELECT ${sql.literal(columns)} FROM missions WHERE project_id = ${project} ${
        statuses.length === 0 ? sql`` : sql`AND ${sql.in("status", statuses)}`
      } ORDER BY created_at DESC, mission_id`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, missionOf))
      ),
    listAll: (statuses) =>
      statuses.length === 0 ? Effect.succeed([]) : sql`SELECT ${sql.literal(columns)} FROM missions WHERE ${sql.in("status", statuses)} ORDER BY created_at, mission_id`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, (row) => Effect.either(missionOf(row))))
      ),
    transitions: (missionId) =>
      sql`SELECT mission_id, seq, from_status, to_status, actor, at, reason FROM mission_transitions
        WHERE mission_id = ${missionId} ORDER BY seq`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, transitionOf))
      ),
    advance: (mission, expected, steps) =>
      Effect.gen(function*() {
        const updated = yield* sql`UPDATE missions SET ${
          sql.update({
            status: mission.status,
            slots: JSON.stringify(mission.slots),
            missing_slots: JSON.stringify(mission.missing_slots),
            preview: mission.preview,
            updated_at: mission.updated_at,
            schedule: scheduleOf(mission)
          })
        } WHERE mission_id = ${mission.mission_id} AND project_id = ${mission.project_id} AND status = ${expected} RETURNING mission_id`
        if (updated.length === 0) return Option.none()
        const [last] = yield* sql<{ seq: number | null }>`SELECT MAX(seq) AS seq FROM mission_transitions WHERE mission_id = ${mission.mission_id}`
        return Option.some(yield* append(mission.mission_id, Number(last?.seq ?? 0) + 1, steps))
      }).pipe(Database.refail)
  })
})

export const layer = Layer.effect(MissionStore, make)
