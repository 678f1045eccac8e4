import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { AutopilotDisabled, type AutopilotStatus, type ServiceTier } from "../domain/AutopilotSettings.js"
import type { PersistenceError } from "../domain/Errors.js"
import * as SettingsStore from "../store/SettingsStore.js"

/**
 * Whether autopilot takes new goals, and its blueprint service tier (the seed's `status`, `enable`,
 * `disable`). Disabling refuses new goals only: missions already made, scheduled or running go on.
 */
export class Settings extends Context.Tag("autopilot/Settings")<
  Settings,
  {
    /** `{ enabled, tier, instance_id }`; a new database starts enabled, tier anonymous. */
    readonly status: () => Effect.Effect<AutopilotStatus, PersistenceError>
    /** Enables; with a tier, also sets it (without one, the tier stays as it was). */
    readonly enable: (tier?: ServiceTier) => Effect.Effect<AutopilotStatus, PersistenceError>
    readonly disable: () => Effect.Effect<AutopilotStatus, PersistenceError>
    /** The settings, if autopilot is enabled: what a new goal checks first. */
    readonly requireEnabled: () => Effect.Effect<AutopilotStatus, AutopilotDisabled | PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const store = yield* SettingsStore.SettingsStore
  return Settings.of({
    status: store.load,
    enable: (tier) => Effect.flatMap(store.load(), (current) => store.save({ enabled: true, tier: tier ?? current.tier })),
    disable: () => Effect.flatMap(store.load(), (current) => store.save({ enabled: false, tier: current.tier })),
    requireEnabled: () => Effect.filterOrFail(store.load(), (status) => status.enabled, () => new AutopilotDisabled())
  })
})

/** Over whatever database is provided; migrates its table. */
export const layer: Layer.Layer<Settings, never, SqlClient.SqlClient> = Layer.effect(Settings, make).pipe(Layer.provide(SettingsStore.layer))
