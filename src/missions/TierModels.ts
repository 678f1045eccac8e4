import { Config, ConfigError, Effect, Either, Option } from "effect"
import * as Pricing from "../budget/Pricing.js"
import { BadInput } from "../domain/Errors.js"
import { type Tier, Tiers } from "../domain/Tier.js"

/**
 * The models of each tier, for healing's `fallback_model` rung: a node whose model keeps failing is
 * re-run on another model of its tier, so it asks for as much capability at about the same price.
 */
export type TierModels = { readonly [T in Tier]: ReadonlyArray<string> }

export const variable = "AUTOPILOT_TIER_MODELS"

/**
 * From the pricing table, all OpenAI models: the default provider is OpenAI-compatible (its default
 * model is gpt-4o-mini), and a fallback model must be one the same endpoint serves; moving to another
 * vendor is the fallback provider's job. Per tier, models of about the same price and kind: small ones
 * for `simple` (at most $0.40 per million input tokens), general flagships for `medium` ($2–2.50), and
 * for `complex` the reasoning models first (o3, then the cheaper o4-mini), then gpt-4.1 for a reasoning
 * deployment that is down altogether.
 */
export const defaults: TierModels = {
  simple: ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano"],
  medium: ["gpt-4.1", "gpt-4o"],
  complex: ["o3", "o4-mini", "gpt-4.1"]
}

const form = `tier=model,model;… with tiers ${Tiers.join(", ")} (e.g. simple=gpt-4o-mini,gpt-4.1-mini;medium=gpt-4.1,gpt-4o)`

/** `simple=a,b;medium=c`: the tiers named replace their defaults, the others keep them. What is wrong, else. */
export const parse = (text: string): Either.Either<TierModels, string> => {
  const models: Partial<Record<Tier, ReadonlyArray<string>>> = {}
  for (const part of text.split(";").map((p) => p.trim()).filter((p) => p !== "")) {
    const [name, list, ...rest] = part.split("=").map((s) => s.trim())
    const tier = Tiers.find((t) => t === name)
    if (list === undefined || rest.length > 0) return Either.left(`has ${JSON.stringify(part)}, not tier=models`)
    if (tier === undefined) return Either.left(`names tier ${JSON.stringify(name)}`)
    if (models[tier] !== undefined) return Either.left(`names tier ${tier} twice`)
    const names = list.split(",").map((m) => m.trim())
    if (names.some((m) => m === "" || /\s/.test(m))) return Either.left(`has a blank or spaced model name in ${JSON.stringify(part)}`)
    models[tier] = names
  }
  return Object.keys(models).length === 0 ? Either.left("names no tier") : Either.right({ ...defaults, ...models })
}

/** `$AUTOPILOT_TIER_MODELS`, or the defaults when it is not set. */
export const config: Config.Config<TierModels> = Config.string(variable).pipe(
  Config.mapOrFail((text) => Either.mapLeft(parse(text), (problem) => ConfigError.InvalidData([], problem))),
  Config.withDefault(defaults)
)

/** The configured models; a malformed variable is bad input in one line, naming what is allowed. */
export const load: Effect.Effect<TierModels, BadInput> = Effect.mapError(config, (error) =>
  new BadInput({
    message: `${variable} ${ConfigError.isInvalidData(error) ? error.message : String(error).replace(/\s+/g, " ")}; allowed: ${form}`
  }))

/**
 * A provider answers with dated ids (gpt-4o-2024-08-06 for gpt-4o): a model is the current one when the
 * names are equal or resolve to the same row of the pricing table.
 */
const same = (a: string, b: string) =>
  a === b || Option.getOrElse(Option.zipWith(Pricing.priceOf(a), Pricing.priceOf(b), (x, y) => x.model === y.model), () => false)

/**
 * The model to retry a node of `tier` on: the one after `current` (the model the failed attempt used,
 * as its telemetry says) in the tier's list, wrapping around, skipping any that is `current` again; the
 * list's first when `current` is unknown or not in it. None when the tier has no other model.
 */
export const fallbackModel = (tier: Tier, current: string | undefined, models: TierModels = defaults): Option.Option<string> => {
  const list = models[tier]
  const at = current === undefined ? -1 : list.findIndex((m) => same(m, current))
  const order = [...list.slice(at + 1), ...list.slice(0, at + 1)]
  return Option.fromNullable(order.find((m) => current === undefined || !same(m, current)))
}
