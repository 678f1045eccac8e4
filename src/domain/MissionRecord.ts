import { Effect, Schema } from "effect"
import { Blueprint } from "./Blueprint.js"
import { BadInput } from "./Errors.js"
import { MissionStatus } from "./MissionState.js"
import { MissionSchedule } from "./Schedule.js"

/**
 * A mission as it is kept: the goal it was made for, a snapshot of the blueprint it was made from (a later
 * edit of that blueprint does not change what was approved), its slot values, and where it is in its
 * lifecycle. Its history is a list of `Transition`s. `runtime/Mission.ts` is something else: the loop
 * that runs a mission's work.
 */

const PROJECT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export const defaultProject = "default"

/** Missions are scoped to a project; its id is one word of 1-64 letters, digits, ".", "_" or "-". */
export const checkProject = (raw: string): Effect.Effect<string, BadInput> =>
  PROJECT_ID.test(raw)
    ? Effect.succeed(raw)
    : Effect.fail(new BadInput({
      message: `project "${raw}" is not allowed: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`
    }))

/** A slot's validated value (`Blueprint.slotValue`): text, a whole number, or a list of text. */
export const SlotValue = Schema.Union(Schema.String, Schema.Number, Schema.Array(Schema.String))
export const SlotValues = Schema.Record({ key: Schema.String, value: SlotValue })

export class MissionRecord extends Schema.Class<MissionRecord>("MissionRecord")({
  mission_id: Schema.String,
  project_id: Schema.String,
  goal: Schema.String,
  blueprint: Blueprint,
  slots: SlotValues,
  /** Slots that must be given before the mission can be approved. */
  missing_slots: Schema.Array(Schema.String),
  status: MissionStatus,
  /** What the mission will do, in a few lines (`Preview.preview`), as of its latest slot values. */
  preview: Schema.String,
  created_at: Schema.String,
  updated_at: Schema.String,
  /** A scheduled mission's time zone and catch-up policy, set when it is approved (armed). */
  schedule: Schema.optionalWith(MissionSchedule, { exact: true })
}) {}

/** One step of a mission's history: who moved it from which status to which, when and why. */
export class Transition extends Schema.Class<Transition>("Transition")({
  mission_id: Schema.String,
  /** 1 for the mission's creation, then one more per step. */
  seq: Schema.Int,
  /** null for the creation. */
  from: Schema.NullOr(MissionStatus),
  to: MissionStatus,
  actor: Schema.String,
  at: Schema.String,
  reason: Schema.String
}) {}

/** No such mission in this project; a mission of another project is not found either. */
export class MissionNotFound extends Schema.TaggedError<MissionNotFound>()("MissionNotFound", {
  mission_id: Schema.String,
  project_id: Schema.String
}) {
  get message() {
    const list = this.project_id === defaultProject ? "autopilot missions" : `autopilot missions --project ${this.project_id}`
    return `no mission "${this.mission_id}" in project "${this.project_id}" (see \`${list}\`)`
  }
}

/** The seed's mission object (`GET /missions`), with the goal and the slots. */
export const summaryJson = (m: MissionRecord) => ({
  mission_id: m.mission_id,
  blueprint_id: m.blueprint.id,
  blueprint_version: m.blueprint.version,
  status: m.status,
  project_id: m.project_id,
  created_at: m.created_at,
  updated_at: m.updated_at,
  goal: m.goal,
  slots: m.slots,
  missing_slots: m.missing_slots
})
