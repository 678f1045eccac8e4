import { Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { BadInput } from "../domain/Errors.js"
import * as Recurrence from "../missions/Recurrence.js"

/**
 * A scheduled mission on the command line: the flags approval arms it with, and its schedule, next
 * firings and latest firings as `approve` and `missions show` print them.
 */

export const flags = {
  timeZone: Options.text("time-zone").pipe(
    Options.withPseudoName("zone"),
    Options.withDescription("a scheduled mission's time zone, an IANA name such as Europe/Paris (default UTC)"),
    Options.optional
  ),
  catchUp: Options.text("catch-up").pipe(
    Options.withPseudoName("once|skip"),
    Options.withDescription("what a scheduled mission does with slots missed while nothing ran: once fires the latest of them, skip fires none (default once)"),
    Options.optional
  )
}

/** The flags' values, checked before the database is opened; absent ones stay absent. */
export const approvalOf = (given: { readonly timeZone: Option.Option<string>; readonly catchUp: Option.Option<string> }) =>
  Effect.gen(function*() {
    const timeZone = Option.getOrUndefined(given.timeZone)
    const catchUp = Option.getOrUndefined(given.catchUp)
    const zone = timeZone === undefined ? Either.right(undefined) : Recurrence.zoneOf(timeZone)
    if (Either.isLeft(zone)) return yield* new BadInput({ message: zone.left })
    const policy = catchUp === undefined ? Either.right(undefined) : Recurrence.catchUpOf(catchUp)
    if (Either.isLeft(policy)) return yield* new BadInput({ message: `--${policy.left}` })
    return { timeZone, catchUp }
  })

export * from "../missions/ScheduleView.js"
