import { DateTime, Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import * as path from "node:path"
import type { PolicyOverrides } from "../runtime/Mission.js"
import { Specialist } from "../specialists/Specialist.js"
import { BudgetPolicy } from "./Budget.js"
import { BadInput } from "./Errors.js"
import { fromText, Goal } from "./Goal.js"
import * as LlmChoice from "./LlmChoice.js"
import { checkProject, defaultProject } from "./MissionRecord.js"
import * as RunId from "./RunId.js"

/** `queued` until a daemon takes it; `dispatched` once one has, for good: its run is then the run's own to follow. */
export const QueueStatuses = ["queued", "dispatched"] as const
export const QueueStatus = Schema.Literal(...QueueStatuses)
export type QueueStatus = typeof QueueStatus.Type

export const defaultPriority = 50

/** Why `value` cannot be a priority, or undefined if it can: one rule for the Schema, the service and the CLI. */
export const priorityProblem = (value: number): string | undefined =>
  Number.isInteger(value) && value >= 0 && value <= 100 ? undefined : "must be a whole number from 0 to 100 (higher is taken first)"

const Priority = Schema.Number.pipe(Schema.filter((n) => priorityProblem(n) === undefined, { message: () => priorityProblem(Number.NaN)! }))

/** A time as ISO-8601 text in UTC, as every store keeps times. */
const UtcTime = Schema.String.pipe(Schema.filter((s) => Option.isSome(DateTime.make(s)), { message: () => "must be an ISO-8601 time" }))

/**
 * A run waiting in the goal queue: everything `autopilot run` would be given, fixed when it was queued
 * (the specialist as the catalog defined it then, the mock's script by its full path), so whichever
 * daemon takes it, wherever, runs what was asked. Its id is the id its run will have.
 */
export class QueueEntry extends Schema.Class<QueueEntry>("QueueEntry")({
  id: RunId.RunId,
  objective: Goal.fields.objective,
  criteria: Goal.fields.success_criteria,
  policy: BudgetPolicy,
  specialist: Schema.NullOr(Specialist),
  llm: LlmChoice.LlmChoice,
  priority: Priority,
  /** UTC, ISO-8601; no daemon takes the entry before then. */
  not_before: Schema.NullOr(UtcTime),
  status: QueueStatus,
  created_at: Schema.String,
  dispatched_at: Schema.NullOr(Schema.String),
  /** The project its run will belong to; an entry from before projects is the default project's. */
  project: Schema.optionalWith(Schema.String, { default: () => defaultProject })
}) {
  get goal(): Goal {
    return new Goal({ objective: this.objective, success_criteria: this.criteria })
  }
}

/** Whether a daemon may take the entry at `now`. */
export const isReady = (entry: QueueEntry, now: DateTime.DateTime): boolean =>
  entry.status === "queued" && (entry.not_before === null || DateTime.lessThanOrEqualTo(DateTime.unsafeMake(entry.not_before), now))

export class QueueEntryNotFound extends Schema.TaggedError<QueueEntryNotFound>()("QueueEntryNotFound", {
  id: Schema.String
}) {
  get message() {
    return `no queued entry "${this.id}" (see \`autopilot queue list\`)`
  }
}

/** A run id asked for that is already queued, or already a run; `detail` says which, for the CLI's user. */
export class RunIdTaken extends Schema.TaggedError<RunIdTaken>()("RunIdTaken", {
  run_id: Schema.String,
  detail: Schema.String
}) {
  get message() {
    return this.detail
  }
}

/** A run to queue, as a caller gives it; what is left out is what `autopilot run` would choose. */
export interface NewEntry {
  readonly objective: string
  /** With none, the objective itself is the one criterion, as for `autopilot run`. */
  readonly criteria?: ReadonlyArray<string> | undefined
  /** The id its run will have; a fresh `run-…` id when absent. */
  readonly runId?: string | undefined
  /** Caps; the axes left out get the defaults. */
  readonly policy?: PolicyOverrides | undefined
  readonly specialist?: Specialist | undefined
  /** The model, as for `Runs.start` on a new run: the mock when absent. */
  readonly llm?: LlmChoice.LlmRequested | undefined
  /** 0-100, higher first; 50 when absent. */
  readonly priority?: number | undefined
  /** A time, or text as `--not-before` takes it (see `notBeforeOf`). */
  readonly notBefore?: DateTime.DateTime | string | undefined
  /** The project its run will belong to; "default" when absent. */
  readonly project?: string | undefined
}

const notBeforeForms =
  "must be an ISO-8601 time with a zone (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00) or a duration from now (90s, 10m, 2 hours, 1.5d; at most 10 years)"

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):?(\d{2}))$/i

const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$/i

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 }

const longest = Duration.days(3_660)

/** The first of year 10000: later times would not sort as ISO text. */
const endOfTime = DateTime.unsafeMake("9999-12-31T23:59:59.999Z")

/**
 * Written out by hand because `Date` quietly rolls 2026-02-30 over to March 2: every field is checked
 * against the calendar, then the offset applied.
 */
const isoTime = (raw: string): DateTime.Utc | undefined => {
  const m = ISO_TIME.exec(raw)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [number, number, number, number, number, number]
  const millis = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3))
  const [offsetHours, offsetMinutes] = [Number(m[9] ?? 0), Number(m[10] ?? 0)]
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 14 || offsetMinutes > 59) return undefined
  const local = new Date(0)
  local.setUTCFullYear(year, month - 1, day)
  local.setUTCHours(hour, minute, second, millis)
  if (local.getUTCFullYear() !== year || local.getUTCMonth() !== month - 1 || local.getUTCDate() !== day) return undefined
  const offset = (m[8] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000
  return DateTime.unsafeMake(local.getTime() - offset)
}

const durationFromNow = (raw: string, now: DateTime.Utc): DateTime.Utc | undefined => {
  const m = DURATION.exec(raw.trim())
  if (m === null) return undefined
  const length = Duration.seconds(Number(m[1]) * unitSeconds[m[2]!.toLowerCase()[0]!]!)
  return Duration.greaterThan(length, longest) ? undefined : DateTime.addDuration(now, length)
}

/**
 * `--not-before` as a time in UTC: an ISO-8601 time with its zone or `Z`, or a duration from `now`
 * (`90s`, `10m`, `2 hours`, `1.5d`, `1w`). Left, the problem, naming both forms.
 */
export const notBeforeOf = (raw: string, now: DateTime.Utc): Either.Either<DateTime.Utc, string> => {
  const at = isoTime(raw.trim()) ?? durationFromNow(raw, now)
  return at === undefined || DateTime.greaterThan(at, endOfTime) ? Either.left(notBeforeForms) : Either.right(at)
}

const decodePolicy = Schema.decodeUnknown(BudgetPolicy)

const firstIssue = (error: ParseResult.ParseError) => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return issue === undefined ? "is not valid" : `${issue.path.join(".")} ${issue.message}`
}

/**
 * A new entry, `queued`, checked as `autopilot run` checks its input: anything wrong is `BadInput`
 * naming what was wrong and what is allowed. Its times are the Clock's.
 */
export const make = (input: NewEntry): Effect.Effect<QueueEntry, BadInput> =>
  Effect.gen(function*() {
    const goal = yield* fromText(input.objective, input.criteria ?? [])
    const id = input.runId === undefined ? yield* RunId.fresh("run") : yield* RunId.check(input.runId)
    const policy = yield* decodePolicy(input.policy ?? {}).pipe(
      Effect.mapError((error) => new BadInput({ message: `the budget's ${firstIssue(error)}` }))
    )
    const priority = input.priority ?? defaultPriority
    const problem = priorityProblem(priority)
    if (problem !== undefined) return yield* new BadInput({ message: `the priority ${problem}, got ${priority}` })
    const choice = yield* LlmChoice.resolve(undefined, input.llm ?? {})
    // A daemon runs it from another folder, perhaps much later: the script is kept by its full path.
    const llm = choice.mock_script === undefined ? choice : { ...choice, mock_script: path.resolve(choice.mock_script) }
    const now = yield* DateTime.now
    const notBefore = yield* notBeforeGiven(input.notBefore, now)
    const project = yield* checkProject(input.project ?? defaultProject)
    return new QueueEntry({
      id,
      objective: goal.objective,
      criteria: goal.success_criteria,
      policy,
      specialist: input.specialist ?? null,
      llm,
      priority,
      not_before: notBefore === undefined ? null : DateTime.formatIso(notBefore),
      status: "queued",
      created_at: DateTime.formatIso(now),
      dispatched_at: null,
      project
    })
  })

const notBeforeGiven = (given: NewEntry["notBefore"], now: DateTime.Utc): Effect.Effect<DateTime.Utc | undefined, BadInput> => {
  if (given === undefined) return Effect.succeed(undefined)
  if (typeof given !== "string") {
    return DateTime.greaterThan(given, endOfTime)
      ? Effect.fail(new BadInput({ message: `not before must be a time before the year 10000, got ${DateTime.formatIso(DateTime.toUtc(given))}` }))
      : Effect.succeed(DateTime.toUtc(given))
  }
  return Either.match(notBeforeOf(given, now), {
    onLeft: (problem) => Effect.fail(new BadInput({ message: `not before ${problem}, got "${given}"` })),
    onRight: Effect.succeed
  })
}
