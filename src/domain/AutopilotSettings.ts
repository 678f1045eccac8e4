import { Schema } from "effect"

/**
 * How this instance may use a remote blueprint service, as the seed names the tiers: `anonymous` calls
 * it without a key, `free` with AUTOPILOT_BLUEPRINT_SERVICE_KEY, `skip` never calls one (the local
 * catalog and synthesis only). Not the model tier a specialist asks for (`Tier`).
 */
export const ServiceTiers = ["anonymous", "free", "skip"] as const
export const ServiceTier = Schema.Literal(...ServiceTiers)
export type ServiceTier = typeof ServiceTier.Type

/** The seed's `GET /autopilot/status`: whether goals are taken, the tier, and this instance's id. */
export class AutopilotStatus extends Schema.Class<AutopilotStatus>("AutopilotStatus")({
  enabled: Schema.Boolean,
  tier: ServiceTier,
  /** Random, made once per database: how a remote service tells instances apart without a key. */
  instance_id: Schema.String
}) {}

/** A new goal while autopilot is disabled; missions already made or running are not affected. */
export class AutopilotDisabled extends Schema.TaggedError<AutopilotDisabled>()("AutopilotDisabled", {}) {
  get message() {
    return "autopilot is disabled, so new goals are refused; `autopilot enable` turns it back on"
  }
}
