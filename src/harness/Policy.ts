import { Data, Either } from "effect"
import { type HarnessConfig, type PolicyRule, Scopes, type Tier, Tiers } from "./HarnessConfig.js"

/** Who is asking: the API key and the user, team and project it belongs to. */
export interface Identity {
  readonly key_id: string
  readonly user: string
  readonly team: string | null
  readonly project: string
}

const fields = ["allowed_models", "blocked_models", "max_tier", "forced_model", "allow_client_model"] as const
type Field = typeof fields[number]

export interface EffectivePolicy {
  /** null: every catalog model. */
  readonly allowed_models: ReadonlyArray<string> | null
  readonly blocked_models: ReadonlyArray<string>
  readonly max_tier: Tier
  readonly forced_model: string | null
  /** Off by default: the harness routes. */
  readonly allow_client_model: boolean
  /** For each field that some rule set: which rule decided it, as "org", "team:research", "project:p1", "user:alice". */
  readonly decided_by: Partial<Record<Field, string>>
}

const applies = (rule: PolicyRule, identity: Identity) =>
  rule.scope === "org" || rule.id === identity[rule.scope]

const label = (rule: PolicyRule) => rule.scope === "org" ? "org" : `${rule.scope}:${rule.id}`

/** Per field, the most specific applicable rule setting it wins; among equally specific ones, the later. */
export const effectivePolicy = (rules: ReadonlyArray<PolicyRule>, identity: Identity): EffectivePolicy => {
  // Array sort is stable, so same-scope rules keep their order and the later one comes last.
  const ordered = rules.filter((rule) => applies(rule, identity))
    .sort((a, b) => Scopes.indexOf(a.scope) - Scopes.indexOf(b.scope))
  const winner = (field: Field) =>
    ordered.reduce<PolicyRule | undefined>((won, rule) => rule[field] === undefined ? won : rule, undefined)
  const decided_by: Partial<Record<Field, string>> = {}
  for (const field of fields) {
    const rule = winner(field)
    if (rule !== undefined) decided_by[field] = label(rule)
  }
  return {
    allowed_models: winner("allowed_models")?.allowed_models ?? null,
    blocked_models: winner("blocked_models")?.blocked_models ?? [],
    max_tier: winner("max_tier")?.max_tier ?? "complex",
    forced_model: winner("forced_model")?.forced_model ?? null,
    allow_client_model: winner("allow_client_model")?.allow_client_model ?? false,
    decided_by
  }
}

export interface Route {
  readonly model: string
  readonly tier: Tier
  /** `promoted`: a promoted fine-tune's route (PromotedRoutes.apply), never chosen by `route` itself. */
  readonly via: "forced" | "client" | "tier" | "downgrade" | "promoted"
  readonly notes: ReadonlyArray<string>
}

/** A request the policy forbids; `message` names the model, the rule that forbids it and what is allowed. */
export class PolicyRefusal extends Data.TaggedError("PolicyRefusal")<{ readonly message: string }> {}

const decider = (policy: EffectivePolicy) => (field: Field) => policy.decided_by[field] ?? "default"

/**
 * Why `model` may not be used under `policy`, or null if it may: blocked, not allowed, or a tier's model
 * above `max_tier` (else naming the model would lift the cap). A forced model is not checked: it is the rule.
 */
export const refusalOf = (policy: EffectivePolicy, tiers: HarnessConfig["tiers"], model: string): string | null => {
  const by = decider(policy)
  const serves = Tiers.filter((t) => tiers[t] === model)
  return policy.blocked_models.includes(model)
    ? `blocked by ${by("blocked_models")}`
    : policy.allowed_models !== null && !policy.allowed_models.includes(model)
    ? `not allowed by ${by("allowed_models")}`
    : serves.length > 0 && serves.every((t) => Tiers.indexOf(t) > Tiers.indexOf(policy.max_tier))
    ? `above the max_tier ${policy.max_tier} set by ${by("max_tier")}`
    : null
}

export const route = (input: {
  readonly policy: EffectivePolicy
  readonly tiers: HarnessConfig["tiers"]
  readonly tier: Tier
  /** "auto", or a catalog model id. */
  readonly requested: string
  /** A budget asked for the simple tier's model. */
  readonly downgrade: boolean
}): Either.Either<Route, PolicyRefusal> => {
  const { policy, requested, tiers } = input
  const by = decider(policy)
  const refusal = (model: string) => refusalOf(policy, tiers, model)
  const permitted = (model: string) => refusal(model) === null
  const allowed = policy.allowed_models === null
    ? policy.blocked_models.length === 0
      ? "any model"
      : `any model but ${policy.blocked_models.join(", ")}`
    : policy.allowed_models.filter(permitted).join(", ") || "none"
  const capped = Tiers.indexOf(input.tier) > Tiers.indexOf(policy.max_tier) ? policy.max_tier : input.tier
  const tierOfModel = (model: string) =>
    tiers[capped] === model ? capped : Tiers.find((t) => tiers[t] === model) ?? capped
  const notes: Array<string> = capped === input.tier ? [] : [`tier capped at ${capped} by ${by("max_tier")}`]

  if (policy.forced_model !== null) {
    const model = policy.forced_model
    const note = `model forced by ${by("forced_model")}`
    return Either.right({ model, tier: tierOfModel(model), via: "forced", notes: [...notes, note] })
  }
  if (input.downgrade) {
    const reason = refusal(tiers.simple)
    if (reason === null) {
      const note = "downgraded to the simple tier by a budget"
      return Either.right({ model: tiers.simple, tier: "simple", via: "downgrade", notes: [...notes, note] })
    }
    notes.push(`budget downgrade skipped: ${tiers.simple} is ${reason}`)
  }
  if (requested !== "auto") {
    if (policy.allow_client_model) {
      const reason = refusal(requested)
      return reason === null
        ? Either.right({ model: requested, tier: tierOfModel(requested), via: "client", notes })
        : Either.left(new PolicyRefusal({ message: `model ${requested} is ${reason}; allowed: ${allowed}` }))
    }
    notes.push(`client asked for ${requested}; routed by tier (allow_client_model is off)`)
  }
  const candidates = Tiers.slice(0, Tiers.indexOf(capped) + 1).reverse()
  const tier = candidates.find((t) => permitted(tiers[t]))
  if (tier === undefined) {
    const refused = candidates.map((t) => `${t} ${tiers[t]} is ${refusal(tiers[t])}`).join(", ")
    return Either.left(new PolicyRefusal({ message: `no tier model is permitted (${refused}); allowed: ${allowed}` }))
  }
  if (tier !== capped) {
    notes.push(`${tiers[capped]} (${capped}) is ${refusal(tiers[capped])}; fell back to ${tiers[tier]} (${tier})`)
  }
  return Either.right({ model: tiers[tier], tier, via: "tier", notes })
}
