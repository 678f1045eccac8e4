import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect, Option } from "effect"
import { type Axis, Axes, AxisLimits, capProblem } from "../domain/Budget.js"
import { BadInput } from "../domain/Errors.js"
import { checkProject } from "../domain/MissionRecord.js"
import * as RunId from "../domain/RunId.js"
import type { PolicyOverrides } from "../runtime/Mission.js"
import { type RunState, RunStates } from "../runtime/Runs.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"

/** Budget caps arrive as text so that a bad value gets our one-line message, not a parser's. */
const capFlag = (axis: Axis) => {
  const { flag, integer, max } = AxisLimits[axis]
  return Options.text(flag.slice(2)).pipe(
    Options.withPseudoName(integer ? "integer" : "number"),
    Options.withDescription(`cap on ${axis.replace("_", " ")}: ${integer ? "a whole number" : "a number"} from 0 to ${max}; 0 disables the axis`),
    Options.optional
  )
}

export const budgetFlags = {
  seconds: capFlag("seconds"),
  tool_calls: capFlag("tool_calls"),
  tokens: capFlag("tokens"),
  dollars: capFlag("dollars"),
  iterations: capFlag("iterations")
}

export type BudgetFlags = { readonly [K in Axis]: Option.Option<string> }

/** Plain decimal notation, exponent allowed (`2e6`); `Number()` alone would also take " 2 ", "0x2" and "". */
export const DECIMAL = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/

const parseCap = (axis: Axis, raw: string): Effect.Effect<number, BadInput> => {
  const value = DECIMAL.test(raw) ? Number(raw) : Number.NaN
  const problem = capProblem(axis, value)
  return problem === undefined
    ? Effect.succeed(value)
    : Effect.fail(new BadInput({ message: `${AxisLimits[axis].flag} ${problem}, got "${raw}"` }))
}

/** The caps given on the command line; axes not given are left to the run's defaults or earlier caps. */
export const policyOverrides = (flags: BudgetFlags): Effect.Effect<PolicyOverrides, BadInput> =>
  Effect.reduce(Axes, {} as Record<string, number>, (overrides, axis) =>
    Option.match(flags[axis], {
      onNone: () => Effect.succeed(overrides),
      onSome: (raw) => Effect.map(parseCap(axis, raw), (value) => ({ ...overrides, [AxisLimits[axis].field]: value }))
    }))

export const seconds = (flag: string, raw: string, min: number, max: number): Effect.Effect<number, BadInput> => {
  const value = DECIMAL.test(raw) ? Number(raw) : Number.NaN
  return Number.isFinite(value) && value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.fail(new BadInput({ message: `${flag} must be a number of seconds from ${min} to ${max}, got "${raw}"` }))
}

/**
 * Where the data is: `--db FILE` (SQLite) or `--database URL` (Postgres), one of the two; each command
 * turns them into its database with `target`.
 */
export const db = Options.all({
  file: Options.file("db").pipe(
    Options.withDescription("SQLite file (default: $AUTOPILOT_DB, else $AUTOPILOT_HOME/autopilot.db, AUTOPILOT_HOME defaulting to ~/.autopilot)"),
    Options.optional
  ),
  url: Options.text("database").pipe(
    Options.withPseudoName("url"),
    Options.withDescription("a Postgres database instead of a SQLite file: postgres://user:password@host:5432/name (default: $AUTOPILOT_DATABASE_URL)"),
    Options.optional
  )
})

export type DatabaseFlags = { readonly file: Option.Option<string>; readonly url: Option.Option<string> }

/** --database, else --db, else $AUTOPILOT_DATABASE_URL, else $AUTOPILOT_DB, else $AUTOPILOT_HOME/autopilot.db. */
export const target = (flags: DatabaseFlags) => DatabaseTarget.fromConfig(flags)

/**
 * A flag with a fixed set of values, checked by us so that a wrong value gets a line naming the flag
 * (@effect/cli's own message names only the allowed values).
 */
export const oneOf = <const A extends ReadonlyArray<string>>(name: string, values: A, description: string) => {
  const flag = Options.text(name).pipe(
    Options.withPseudoName(values.join("|")),
    Options.withDescription(`${description} (${values.join(" or ")}; default ${values[0]})`),
    Options.withDefault(values[0]!)
  )
  return Options.mapEffect(flag, (raw) =>
    values.includes(raw)
      ? Effect.succeed(raw as A[number])
      : Effect.fail(invalid(`--${name} must be ${values.join(" or ")}, got "${raw}"`)))
}

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/**
 * A count: 0 for all, else a positive whole number. Read as text so that a bad value gets a line naming
 * the flag and what it takes (@effect/cli's own says only `'abc' is not a integer`).
 */
export const count = (name: string, description: string, defaultValue: number) =>
  Options.text(name).pipe(
    Options.withPseudoName("integer"),
    Options.withDescription(description),
    Options.withDefault(String(defaultValue)),
    Options.mapEffect((raw) =>
      /^\d{1,15}$/.test(raw)
        ? Effect.succeed(Number(raw))
        : Effect.fail(invalid(`--${name} must be 0 (all) or a positive whole number, got "${raw}"`)))
  )

/** `--status S[,S...]`: the runs in any of these states. */
export const states = Options.text("status").pipe(
  Options.withPseudoName("state[,state]"),
  Options.withDescription(`only runs in these states, comma-separated (${RunStates.join(", ")}); interrupted: running, but its process is gone`),
  Options.optional,
  Options.mapEffect(Option.match({
    onNone: () => Effect.succeed<ReadonlyArray<RunState>>([]),
    onSome: (raw) => {
      const given = raw.split(",").map((s) => s.trim())
      const unknown = given.find((s) => !(RunStates as ReadonlyArray<string>).includes(s))
      return unknown === undefined
        ? Effect.succeed(given as ReadonlyArray<RunState>)
        : Effect.fail(invalid(`--status must be one or more of ${RunStates.join(", ")} (comma-separated), got "${unknown}"`))
    }
  }))
)

/** `--older-than DAYS`: a number of days, fractions allowed. */
export const olderThan = Options.text("older-than").pipe(
  Options.withPseudoName("days"),
  Options.withDescription("only runs last updated more than this many days ago (fractions allowed: 0.5 is 12 hours; 0 is any time before now)"),
  Options.mapEffect((raw) => {
    const days = DECIMAL.test(raw) ? Number(raw) : Number.NaN
    return days <= 100 * 366
      ? Effect.succeed(days)
      : Effect.fail(invalid(`--older-than must be a number of days from 0 to ${100 * 366}, got "${raw}"`))
  })
)

export const format = oneOf("format", ["text", "jsonl"], "text for people, jsonl for one JSON event per line")

export const runId = RunId.check

/** `--category C`: only the catalog entries (`specialists`, `blueprints`) of one category. */
export const category = (entries: string) =>
  Options.text("category").pipe(
    Options.withPseudoName("category"),
    Options.withDescription(`only the ${entries} of this category`),
    Options.optional
  )

/** `--project P`: a new run's or queued entry's project, or a listing's; checked with `projectOf` before anything is opened. */
export const project = (description: string) =>
  Options.text("project").pipe(
    Options.withPseudoName("project"),
    Options.withDescription(`${description}: 1-64 letters, digits, ".", "_" or "-"`),
    Options.optional
  )

export const projectOf = (flag: Option.Option<string>): Effect.Effect<string | undefined, BadInput> =>
  Option.match(flag, { onNone: () => Effect.succeed(undefined), onSome: checkProject })
