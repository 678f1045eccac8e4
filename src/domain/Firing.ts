import { DateTime, Schema } from "effect"

/**
 * One firing of a scheduled mission: a checkpointed run of its graph for one slot of its schedule
 * (`scheduled`), or fired by hand (`manual`). Its run id is `<mission id>.at-<slot>` (`.manual-<time>`),
 * in UTC, lower case: node ids are snake_case, so a firing never collides with a node run `<run>.<node>`.
 */

export const FiringKind = Schema.Literal("scheduled", "manual")
export type FiringKind = typeof FiringKind.Type

/** A firing is `running` from its claim until its run ends; a halted or partial one may be resumed. */
export const FiringStatuses = ["running", "completed", "partial", "halted", "failed", "cancelled"] as const
export const FiringStatus = Schema.Literal(...FiringStatuses)
export type FiringStatus = typeof FiringStatus.Type

/** What a firing run records in its checkpoint (`MissionRef.firing`), so a resume knows it is one. */
export const FiringRef = Schema.Struct({
  /** The slot (ISO, UTC); a manual firing's is the second it was fired. */
  slot: Schema.String,
  run_id: Schema.String,
  kind: FiringKind
})
export type FiringRef = typeof FiringRef.Type

/** A firing claimed and to be run: `MissionRunner.run(project, mission_id, { firing })`. */
export const Firing = Schema.Struct({
  project: Schema.String,
  mission_id: Schema.String,
  ...FiringRef.fields
})
export type Firing = typeof Firing.Type

/** A firing as kept in `mission_firings`. */
export class FiringRecord extends Schema.Class<FiringRecord>("FiringRecord")({
  mission_id: Schema.String,
  ...FiringRef.fields,
  status: FiringStatus,
  fired_at: Schema.String,
  /** Null while it runs. */
  ended_at: Schema.NullOr(Schema.String),
  /** Why it ended so (its run's halt reason, or why it could not run); null while it runs or when it completed. */
  reason: Schema.NullOr(Schema.String)
}) {}

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** `20250330t0130z`, or with seconds `20250330t013012z`: a time within the run id alphabet. */
const stamp = (at: DateTime.Utc, seconds: boolean) => {
  const p = DateTime.toPartsUtc(at)
  return `${p.year}${pad(p.month)}${pad(p.day)}t${pad(p.hours)}${pad(p.minutes)}${seconds ? pad(p.seconds) : ""}z`
}

/** The run of a firing: `<mission>.at-<slot to the minute>`, or `<mission>.manual-<time to the second>`. */
export const runIdOf = (missionId: string, slot: DateTime.Utc, kind: FiringKind) =>
  kind === "scheduled" ? `${missionId}.at-${stamp(slot, false)}` : `${missionId}.manual-${stamp(slot, true)}`

const SEGMENT = /^(?:at-\d{8}t\d{4}z|manual-\d{8}t\d{6}z)$/

/**
 * The mission run `runId` would be a node run of, by its shape: the mission's own run (`ms-…`, whose id
 * holds no dot) or one of its firings (`ms-….at-…`). Undefined for a mission run itself.
 */
export const missionRunOf = (runId: string): string | undefined => {
  const parts = runId.split(".")
  if (parts.length < 2 || parts[0] === "") return undefined
  if (!SEGMENT.test(parts[1]!)) return parts[0]
  return parts.length > 2 ? `${parts[0]}.${parts[1]}` : undefined
}

/** Whether `runId` is a firing's run (not a node run below one). */
export const isFiringRun = (runId: string) => {
  const parts = runId.split(".")
  return parts.length === 2 && SEGMENT.test(parts[1]!)
}

export const fromRef = (project: string, missionId: string, ref: FiringRef): Firing => ({ project, mission_id: missionId, ...ref })
