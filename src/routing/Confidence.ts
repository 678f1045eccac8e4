import { Config, Context, Effect, Layer, Option } from "effect"
import { BadInput } from "../domain/Errors.js"

/**
 * The confidence gate: how sure the router must be of its best blueprint to make a mission from it
 * alone, and to offer a choice instead of writing a new blueprint. Both are calibrated probabilities
 * (`GoalRouter` scores), compared inclusively.
 */
export interface Thresholds {
  /** At or above: the best candidate is routed to without asking. */
  readonly auto_route_threshold: number
  /** At or above (and below the other): a person picks from the candidates. Below: synthesis. */
  readonly picker_threshold: number
}

export class ConfidenceConfig extends Context.Tag("autopilot/ConfidenceConfig")<ConfidenceConfig, Thresholds>() {}

export const defaults: Thresholds = { auto_route_threshold: 0.85, picker_threshold: 0.65 }

export const variables = {
  auto_route_threshold: "AUTOPILOT_AUTO_ROUTE_THRESHOLD",
  picker_threshold: "AUTOPILOT_PICKER_THRESHOLD"
} as const

const inRange = (value: number) => Number.isFinite(value) && value >= 0 && value <= 1

/** The thresholds if they are usable: each from 0 to 1, and auto-routing no easier than the picker. */
export const make = (values: Partial<Thresholds> = {}): Effect.Effect<Thresholds, BadInput> =>
  Effect.suspend(() => {
    const thresholds = { ...defaults, ...values }
    for (const name of ["auto_route_threshold", "picker_threshold"] as const) {
      if (!inRange(thresholds[name])) {
        return new BadInput({ message: `${variables[name]} must be a number from 0 to 1, got ${thresholds[name]}` })
      }
    }
    const { auto_route_threshold: auto, picker_threshold: picker } = thresholds
    return auto >= picker ? Effect.succeed(thresholds) : new BadInput({
      message: `${variables.auto_route_threshold} (${auto}) must not be below ${variables.picker_threshold} (${picker}): a goal sure enough to route by itself is always sure enough to offer`
    })
  })

export const layer = (values: Partial<Thresholds> = {}): Layer.Layer<ConfidenceConfig, BadInput> =>
  Layer.effect(ConfidenceConfig, make(values))

/** A variable's number, or bad input naming it; unset means the default. */
const threshold = (name: keyof Thresholds) =>
  Config.option(Config.string(variables[name])).pipe(
    Effect.orDie,
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(defaults[name]),
      onSome: (text) => {
        const value = text.trim() === "" ? Number.NaN : Number(text)
        return inRange(value)
          ? Effect.succeed(value)
          : new BadInput({ message: `${variables[name]} must be a number from 0 to 1, got ${JSON.stringify(text)}` })
      }
    }))
  )

/** From `AUTOPILOT_AUTO_ROUTE_THRESHOLD` (0.85) and `AUTOPILOT_PICKER_THRESHOLD` (0.65). */
export const fromConfig: Effect.Effect<Thresholds, BadInput> = Effect.gen(function*() {
  const auto_route_threshold = yield* threshold("auto_route_threshold")
  const picker_threshold = yield* threshold("picker_threshold")
  return yield* make({ auto_route_threshold, picker_threshold })
})

export const layerConfig: Layer.Layer<ConfidenceConfig, BadInput> = Layer.effect(ConfidenceConfig, fromConfig)

export type Outcome = "auto_routed" | "picker_needed" | "synthesis_needed"

/** What a best candidate's score leads to. A score on a threshold counts as reaching it. */
export const gate = (config: Thresholds, score: number): Outcome =>
  score >= config.auto_route_threshold
    ? "auto_routed"
    : score >= config.picker_threshold
    ? "picker_needed"
    : "synthesis_needed"
