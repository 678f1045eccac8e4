import { Cron, DateTime, Duration, Either, Option } from "effect"
import type { Blueprint, SlotValues } from "../domain/Blueprint.js"
import { type CatchUp, CatchUps, defaults, type MissionSchedule } from "../domain/Schedule.js"

/**
 * A scheduled mission's slots, pure: the cron of its `cron` slot read in its time zone by effect's `Cron`,
 * the next firings, and which slot is due now under its catch-up policy. Daylight saving time is
 * `Cron.next`'s: a slot in the hour a spring change skips fires at the same wall time an hour later
 * (`30 2 * * *` in Europe/Paris fires at 03:30 CEST that day), and an hour an autumn change repeats fires
 * once, on its first pass.
 */

export interface Recurrence {
  /** The cron as given (5 fields). */
  readonly expression: string
  readonly cron: Cron.Cron
  readonly zone: DateTime.TimeZone.Named
  readonly catchUp: CatchUp
}

/** With `skip`, a slot fires only this long after it came: a daemon that ticks late still fires it. */
export const grace = Duration.minutes(1)

/** An IANA time zone by name, canonicalised (`europe/paris` is `Europe/Paris`), or why not. */
export const zoneOf = (name: string): Either.Either<DateTime.TimeZone.Named, string> =>
  Either.fromOption(
    DateTime.zoneMakeNamed(name.trim()),
    () => `time zone "${name}" is not known: give an IANA name such as UTC, Europe/Paris or America/New_York`
  )

export const catchUpOf = (raw: string): Either.Either<CatchUp, string> =>
  (CatchUps as ReadonlyArray<string>).includes(raw)
    ? Either.right(raw as CatchUp)
    : Either.left(`catch-up must be ${CatchUps.join(" or ")} (once: the latest missed slot fires after downtime; skip: missed slots do not), got "${raw}"`)

/** The first slot after `after`; none when no date matches the cron (`0 0 30 2 *`). */
const nextAfter = (cron: Cron.Cron, after: DateTime.Utc): Option.Option<DateTime.Utc> =>
  Option.map(Option.liftThrowable(() => Cron.next(cron, DateTime.toDateUtc(after)))(), DateTime.unsafeFromDate)

/** A cron of 5 fields in a zone with a policy, or one line saying what is wrong and what is allowed. */
export const make = (
  expression: string,
  options: { readonly timeZone?: string | undefined; readonly catchUp?: string | undefined } = {}
): Either.Either<Recurrence, string> =>
  Either.gen(function*() {
    const zone = yield* zoneOf(options.timeZone ?? defaults.time_zone)
    const catchUp = yield* catchUpOf(options.catchUp ?? defaults.catch_up)
    const text = expression.trim().replace(/\s+/g, " ")
    const cron = text.split(" ").length === 5 ? Either.getRight(Cron.parse(text, zone)) : Option.none()
    if (Option.isNone(cron)) {
      return yield* Either.left(
        `cron "${expression}" is not valid: give 5 fields (minute hour day-of-month month day-of-week), like "0 9 * * 1-5"`
      )
    }
    // Cron gives up after 10,000 steps without a match: a cron that never fires is refused up front.
    if (Option.isNone(nextAfter(cron.value, DateTime.unsafeMake(0)))) {
      return yield* Either.left(`cron "${text}" never fires: no date matches it`)
    }
    return { expression: text, cron: cron.value, zone, catchUp }
  })

/** The `n` slots after `after`, in order. */
export const next = (recurrence: Recurrence, after: DateTime.Utc, n: number): ReadonlyArray<DateTime.Utc> => {
  const slots: Array<DateTime.Utc> = []
  let from = after
  while (slots.length < n) {
    const slot = nextAfter(recurrence.cron, from)
    if (Option.isNone(slot)) break
    slots.push(slot.value)
    from = slot.value
  }
  return slots
}

/**
 * The latest slot in (since, now]. Searched forward with `Cron.next` over a window that doubles back
 * from `now` (`Cron.prev` is wrong around DST changes in effect 3.22): a few steps for any cron, however
 * long ago `since` is.
 */
export const latest = (recurrence: Recurrence, since: DateTime.Utc, now: DateTime.Utc): Option.Option<DateTime.Utc> => {
  if (!DateTime.lessThan(since, now)) return Option.none()
  for (let width = Duration.minutes(1); ; width = Duration.times(width, 2)) {
    const from = DateTime.max(since, DateTime.subtractDuration(now, width))
    let found = Option.none<DateTime.Utc>()
    for (let slot = nextAfter(recurrence.cron, from); Option.isSome(slot) && DateTime.lessThanOrEqualTo(slot.value, now);) {
      found = slot
      slot = nextAfter(recurrence.cron, slot.value)
    }
    if (Option.isSome(found) || DateTime.Equivalence(from, since)) return found
  }
}

/**
 * The slot to fire now, if any, for a mission that last fired at `since` (or was armed then): with
 * `once`, the latest slot since, however many were missed; with `skip`, only a slot that came within
 * `grace` of now.
 */
export const due = (recurrence: Recurrence, since: DateTime.Utc, now: DateTime.Utc): Option.Option<DateTime.Utc> =>
  Option.filter(
    latest(recurrence, since, now),
    (slot) => recurrence.catchUp === "once" || DateTime.lessThanOrEqualTo(now, DateTime.addDuration(slot, grace))
  )

/** The `cron` slot of a scheduled blueprint (`Blueprint.problems` requires one). */
export const cronSlotOf = (blueprint: Blueprint) => blueprint.slots.find((slot) => slot.type === "cron")

/** Whether missions of this blueprint recur: they fire on their schedule rather than run once. */
export const isRecurring = (blueprint: Blueprint) => blueprint.mode === "scheduled"

/**
 * A mission's recurrence: the cron of its slot, in the zone and with the policy of its schedule (the
 * defaults when it was armed before schedules were kept), or why it has none.
 */
export const ofMission = (
  mission: { readonly blueprint: Blueprint; readonly slots: SlotValues; readonly schedule?: MissionSchedule | undefined }
): Either.Either<Recurrence, string> => {
  const slot = cronSlotOf(mission.blueprint)
  const value = slot === undefined ? undefined : mission.slots[slot.name]
  if (!isRecurring(mission.blueprint) || typeof value !== "string") {
    return Either.left(`blueprint ${mission.blueprint.id} is not scheduled (mode ${mission.blueprint.mode}) or has no cron value`)
  }
  return make(value, { timeZone: mission.schedule?.time_zone, catchUp: mission.schedule?.catch_up })
}
