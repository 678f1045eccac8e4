import { Schema } from "effect"

/**
 * Model tiers, cheapest first: how the harness sorts requests and names the model for each, and what a
 * specialist asks for. One list, so a tier a specialist names is one the harness routes by.
 */
export const Tiers = ["simple", "medium", "complex"] as const
export const Tier = Schema.Literal(...Tiers)
export type Tier = typeof Tier.Type
