import { FileSystem } from "@effect/platform"
import { Effect, Option, ParseResult, Schema } from "effect"
import { priceOf } from "../budget/Pricing.js"
import { BadInput } from "../domain/Errors.js"
import { Tier, Tiers } from "../domain/Tier.js"

/** Request tiers, cheapest first: the order `max_tier` and downgrades rely on. */
export { Tier, Tiers }

/** Policy scopes, least specific first: a later scope's setting wins over an earlier one's. */
export const Scopes = ["org", "team", "project", "user"] as const
export const Scope = Schema.Literal(...Scopes)
export type Scope = typeof Scope.Type

/** An id as policy and budget rules name it, and keys are made for. */
export const Name = Schema.String.pipe(Schema.minLength(1), Schema.pattern(/^\S+$/, { message: () => "must be non-empty with no spaces" }))
const Dollars = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const Fraction = Schema.Number.pipe(Schema.between(0, 1))

export const Upstream = Schema.Struct({
  /** Where `/chat/completions` lives, e.g. https://api.openai.com/v1. */
  base_url: Schema.String.pipe(Schema.filter((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), {
    message: () => "must be an http(s) URL"
  })),
  /** The environment variable holding the upstream's API key: keys never live in the config file. */
  api_key_env: Schema.optional(Name),
  /** How long an answer may take to start, and a stream may go quiet, before the client gets a 504. */
  timeout_seconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive(), Schema.lessThanOrEqualTo(3600)), { default: () => 300 }),
  /**
   * How `POST /v1/responses` reaches this upstream: `native` forwards it to the upstream's own
   * `/responses`; `translate` (most OpenAI-compatible servers have only chat completions) turns it into one.
   */
  responses: Schema.optionalWith(Schema.Literal("native", "translate"), { default: () => "translate" as const })
})
export type Upstream = typeof Upstream.Type

/** A model clients may be routed to, and the upstream that serves it. */
export const ModelEntry = Schema.Struct({
  id: Name,
  upstream: Name,
  /** The upstream's name for it, when that differs from `id`. */
  upstream_model: Schema.optional(Name),
  /** Dollars per million tokens, for models the shared pricing table does not know. */
  input_per_mtok: Schema.optional(Dollars),
  output_per_mtok: Schema.optional(Dollars)
})
export type ModelEntry = typeof ModelEntry.Type

export const PolicyRule = Schema.Struct({
  scope: Scope,
  /** The team, project or user the rule is for; an org rule has none. */
  id: Schema.optional(Name),
  allowed_models: Schema.optional(Schema.Array(Name)),
  blocked_models: Schema.optional(Schema.Array(Name)),
  max_tier: Schema.optional(Tier),
  forced_model: Schema.optional(Name),
  /** Whether a request naming a model gets it (if allowed), or is routed by its tier like `auto`. */
  allow_client_model: Schema.optional(Schema.Boolean)
})
export type PolicyRule = typeof PolicyRule.Type

export const BudgetAction = Schema.Literal("warn", "downgrade", "stop")
export type BudgetAction = typeof BudgetAction.Type

export const BudgetRule = Schema.Struct({
  scope: Schema.Literal("user", "team", "project"),
  id: Name,
  period: Schema.Literal("daily", "monthly"),
  limit_usd: Dollars,
  action: BudgetAction
})
export type BudgetRule = typeof BudgetRule.Type

export const ClassificationSettings = Schema.Struct({
  /** Scores (0..1) at and above which a request is medium, and complex. */
  medium_at: Schema.optionalWith(Fraction, { default: () => 0.3 }),
  complex_at: Schema.optionalWith(Fraction, { default: () => 0.65 }),
  /** A request classified with less confidence than this (0.5 to 1; 0.5 is a score on a threshold) goes one tier up: better to overpay than fail. */
  escalate_below: Schema.optionalWith(Fraction, { default: () => 0.55 })
})
export type ClassificationSettings = typeof ClassificationSettings.Type

export const HarnessConfig = Schema.Struct({
  org: Schema.optionalWith(Name, { default: () => "default" }),
  upstreams: Schema.Record({ key: Name, value: Upstream }),
  models: Schema.NonEmptyArray(ModelEntry),
  tiers: Schema.Struct({ simple: Name, medium: Name, complex: Name }),
  classification: Schema.optionalWith(ClassificationSettings, { default: () => Schema.decodeSync(ClassificationSettings)({}) }),
  policy: Schema.optionalWith(Schema.Array(PolicyRule), { default: () => [] }),
  budgets: Schema.optionalWith(Schema.Array(BudgetRule), { default: () => [] }),
  /** Per key, unless the key was created with its own limit. */
  requests_per_minute: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 600 }),
  max_request_bytes: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1_048_576 }),
  /**
   * How long a request's ledger row may wait for others before they are written together in one INSERT
   * (0: at the end of the event loop's turn). A SIGTERM writes what waits; a kill -9 loses at most this much.
   */
  ledger_batch_ms: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 60_000)), { default: () => 10 })
})
export type HarnessConfig = typeof HarnessConfig.Type

/** The price of a catalog model: its own override, else the shared table the runtime uses too. */
export const modelPrice = (entry: ModelEntry) =>
  entry.input_per_mtok !== undefined && entry.output_per_mtok !== undefined
    ? Option.some({ model: entry.id, input_per_mtok: entry.input_per_mtok, output_per_mtok: entry.output_per_mtok })
    : priceOf(entry.upstream_model ?? entry.id)

/** What the Schema cannot say: every name a config uses must point at something it defines. */
export const problems = (config: HarnessConfig): ReadonlyArray<string> => {
  const ids = new Set(config.models.map((m) => m.id))
  const found: Array<string> = []
  const known = (where: string, id: string) => {
    if (!ids.has(id)) found.push(`${where}: model "${id}" is not in models`)
  }
  if (ids.size !== config.models.length) found.push("models: ids must be unique")
  if (ids.has("auto")) found.push(`models: "auto" is reserved for routing by tier`)
  for (const model of config.models) {
    if (config.upstreams[model.upstream] === undefined) {
      found.push(`models.${model.id}: upstream "${model.upstream}" is not in upstreams`)
    }
    if ((model.input_per_mtok === undefined) !== (model.output_per_mtok === undefined)) {
      found.push(`models.${model.id}: give both input_per_mtok and output_per_mtok, or neither`)
    } else if (Option.isNone(modelPrice(model))) {
      found.push(`models.${model.id}: no price known; give input_per_mtok and output_per_mtok`)
    }
  }
  for (const tier of Tiers) known(`tiers.${tier}`, config.tiers[tier])
  config.policy.forEach((rule, i) => {
    if ((rule.scope === "org") !== (rule.id === undefined)) {
      found.push(`policy[${i}]: ${rule.scope === "org" ? "an org rule takes no id" : `a ${rule.scope} rule needs an id`}`)
    }
    for (const id of [...(rule.allowed_models ?? []), ...(rule.blocked_models ?? [])]) known(`policy[${i}]`, id)
    if (rule.forced_model !== undefined) known(`policy[${i}].forced_model`, rule.forced_model)
  })
  if (config.classification.medium_at >= config.classification.complex_at) {
    found.push("classification: medium_at must be below complex_at")
  }
  return found
}

const decode = Schema.decodeUnknown(Schema.parseJson(HarnessConfig), { onExcessProperty: "error" })

/** Parses a config's text; every problem comes back as one line naming where it is. */
export const parse = (text: string, source: string): Effect.Effect<HarnessConfig, BadInput> =>
  decode(text).pipe(
    Effect.mapError((e) =>
      new BadInput({
        message: `harness config ${source} is malformed: ${
          ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")
            .replace(/\s+/g, " ")
        }`
      })
    ),
    Effect.filterOrElse(
      (config) => problems(config).length === 0,
      (config) => Effect.fail(new BadInput({ message: `harness config ${source} is inconsistent: ${problems(config).join("; ")}` }))
    )
  )

export const load = (path: string): Effect.Effect<HarnessConfig, BadInput, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError(() => new BadInput({ message: `harness config ${path} cannot be read: it must be an existing JSON file` }))
    )
    return yield* parse(text, path)
  })
