import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { type Axis, Axes, AxisLimits, capProblem } from "../domain/Budget.js"
import { BadInput } from "../domain/Errors.js"
import type { PolicyOverrides } from "../runtime/Mission.js"

/** Budget caps arrive as text so that a bad value gets our one-line message, not a parser's. */
const capFlag = (axis: Axis) => {
  const { flag, integer, max } = AxisLimits[axis]
  return Options.text(flag.slice(2)).pipe(
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

export const db = Options.file("db").pipe(
  Options.withDescription("SQLite file (default: $AUTOPILOT_DB, else $AUTOPILOT_HOME/autopilot.db, AUTOPILOT_HOME defaulting to ~/.autopilot)"),
  Options.optional
)

/** --db, else $AUTOPILOT_DB, else $AUTOPILOT_HOME/autopilot.db. */
export const databasePath = (flag: Option.Option<string>) =>
  Option.match(flag, {
    onSome: (file) => Effect.succeed(path.resolve(file)),
    onNone: () =>
      Effect.gen(function*() {
        const explicit = yield* Config.option(Config.string("AUTOPILOT_DB"))
        if (Option.isSome(explicit) && explicit.value !== "") return path.resolve(explicit.value)
        const home = yield* Config.string("AUTOPILOT_HOME").pipe(Config.withDefault(path.join(os.homedir(), ".autopilot")))
        return path.resolve(home, "autopilot.db")
      }).pipe(Effect.orDie)
  })

/**
 * A flag with a fixed set of values, checked by us so that a wrong value gets a line naming the flag
 * (@effect/cli's own message names only the allowed values).
 */
export const oneOf = <const A extends ReadonlyArray<string>>(name: string, values: A, description: string) => {
  const flag = Options.text(name).pipe(Options.withDescription(`${description} (${values.join(" or ")})`), Options.withDefault(values[0]!))
  return Options.mapEffect(flag, (raw) =>
    values.includes(raw)
      ? Effect.succeed(raw as A[number])
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be ${values.join(" or ")}, got "${raw}"`))))
}

export const format = oneOf("format", ["text", "jsonl"], "text for people, jsonl for one JSON event per line")

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const runId = (raw: string): Effect.Effect<string, BadInput> =>
  RUN_ID.test(raw)
    ? Effect.succeed(raw)
    : Effect.fail(new BadInput({
      message: `run id "${raw}" is not allowed: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`
    }))
