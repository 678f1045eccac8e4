import { Schema } from "effect"

/**
 * When a scheduled mission (blueprint mode `scheduled`) fires: the cron of its `cron` slot read in its
 * time zone, and what happens to slots missed while nothing was running. Set at approval, which arms it.
 */

/** `once`: after downtime, the latest missed slot fires (one firing however many were missed); `skip`: none does. */
export const CatchUps = ["once", "skip"] as const
export const CatchUp = Schema.Literal(...CatchUps)
export type CatchUp = typeof CatchUp.Type

export const defaults = { time_zone: "UTC", catch_up: "once" } as const

/** What approval adds to a scheduled mission; the cron itself stays its slot's value. */
export const MissionSchedule = Schema.Struct({
  /** An IANA time zone name, as canonicalised (`Europe/Paris`). */
  time_zone: Schema.String,
  catch_up: CatchUp,
  /** When the mission was armed (ISO, UTC): no slot before it fires. */
  armed_at: Schema.String
})
export type MissionSchedule = typeof MissionSchedule.Type
