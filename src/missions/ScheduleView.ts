import { DateTime, Either } from "effect"
import type { FiringRecord } from "../domain/Firing.js"
import type { MissionRecord } from "../domain/MissionRecord.js"
import * as Recurrence from "./Recurrence.js"

/** A scheduled mission's schedule, next firings and latest firings, as `missions show` and the API give them. */

/** How many next firings `missions show` lists. */
export const upcoming = 3

export interface ScheduleView {
  readonly cron: string | null
  readonly time_zone: string
  readonly catch_up: string
  /** Null until approval arms it. */
  readonly armed_at: string | null
  /** After now; none unless it is armed. */
  readonly next: ReadonlyArray<DateTime.Utc>
  readonly zone: DateTime.TimeZone | undefined
  /** Latest first. */
  readonly firings: ReadonlyArray<FiringRecord>
  readonly state: string
}

const stateOf = (m: MissionRecord) => {
  switch (m.status) {
    case "scheduled":
      return "armed"
    case "draft":
    case "approved":
      return "not armed yet: approval arms it (--time-zone, --catch-up)"
    case "cancelled":
      return "cancelled: it fires no more"
    default:
      return `${m.status}: it was run as a whole before firings were kept, and does not fire`
  }
}

/** A scheduled mission's schedule at `now`; undefined for a mission that does not recur. */
export const viewOf = (m: MissionRecord, firings: ReadonlyArray<FiringRecord>, now: DateTime.Utc): ScheduleView | undefined => {
  if (!Recurrence.isRecurring(m.blueprint)) return undefined
  const recurrence = Recurrence.ofMission(m)
  const slot = Recurrence.cronSlotOf(m.blueprint)
  const cron = slot === undefined ? undefined : m.slots[slot.name]
  return {
    cron: typeof cron === "string" ? cron : null,
    time_zone: m.schedule?.time_zone ?? "UTC",
    catch_up: m.schedule?.catch_up ?? "once",
    armed_at: m.status === "scheduled" ? m.schedule?.armed_at ?? m.updated_at : null,
    next: m.status === "scheduled" && Either.isRight(recurrence) ? Recurrence.next(recurrence.right, now, upcoming) : [],
    zone: Either.isRight(recurrence) ? recurrence.right.zone : undefined,
    firings,
    state: stateOf(m)
  }
}

const pad = (n: number) => String(n).padStart(2, "0")

/** `2025-03-30 03:30 +02:00`: a time as the wall clock of `zone` shows it, to the minute. */
const wall = (at: DateTime.Utc, zone: DateTime.TimeZone | undefined) => {
  const zoned = DateTime.setZone(at, zone ?? DateTime.zoneMakeOffset(0))
  const p = DateTime.toParts(zoned)
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hours)}:${pad(p.minutes)} ${DateTime.zonedOffsetIso(zoned)}`
}

const utc = (at: DateTime.Utc) => {
  const p = DateTime.toPartsUtc(at)
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hours)}:${pad(p.minutes)} UTC`
}

const firingLine = (f: FiringRecord) =>
  `  ${f.run_id}  ${f.kind}  ${f.status}  slot ${f.slot}${f.ended_at === null ? "" : ` · ended ${f.ended_at}`}${f.reason === null ? "" : ` (${f.reason})`}`

export const text = (view: ScheduleView): ReadonlyArray<string> => [
  `schedule: ${view.cron ?? "(no cron yet)"} in ${view.time_zone} · catch-up ${view.catch_up} · ${view.state}${
    view.armed_at === null ? "" : ` since ${view.armed_at}`
  }`,
  ...(view.next.length === 0 ? [] : [
    "next firings:",
    ...view.next.map((at) => `  ${wall(at, view.zone)} ${view.time_zone} · ${utc(at)}`)
  ]),
  ...(view.firings.length === 0 ? ["firings: none yet"] : ["firings (latest first):", ...view.firings.map(firingLine)])
]

export const json = (view: ScheduleView | undefined) =>
  view === undefined ? { schedule: null, firings: [] } : {
    schedule: {
      cron: view.cron,
      time_zone: view.time_zone,
      catch_up: view.catch_up,
      armed_at: view.armed_at,
      next: view.next.map((at) => ({
        at: DateTime.formatIso(at),
        local: DateTime.formatIsoOffset(DateTime.setZone(at, view.zone ?? DateTime.zoneMakeOffset(0)))
      }))
    },
    firings: view.firings.map((f) => ({
      run_id: f.run_id,
      slot: f.slot,
      kind: f.kind,
      status: f.status,
      fired_at: f.fired_at,
      ended_at: f.ended_at,
      reason: f.reason
    }))
  }
