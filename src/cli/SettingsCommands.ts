import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { type AutopilotStatus, type ServiceTier, ServiceTiers } from "../domain/AutopilotSettings.js"
import * as Settings from "../missions/Settings.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import type { RemoteApi } from "./Remote.js"
import * as Server from "./Server.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** The settings are the database's: made, with the database, on first use. */
const withSettings = <A, E>(db: Flags.DatabaseFlags, f: (settings: Settings.Settings["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(Flags.target(db), (target) =>
    Effect.flatMap(Settings.Settings, f).pipe(Effect.provide(Settings.layer.pipe(Layer.provide(DatabaseTarget.layer(target))))))

const flags = { db: Flags.db, format: jsonFormat, ...Server.flags }

/** The settings here, or a server's (whose changes only its admin token may make). */
const settingsOf = <A, E, E2>(
  given: Server.ServerFlags & { readonly db: Flags.DatabaseFlags },
  local: (settings: Settings.Settings["Type"]) => Effect.Effect<A, E>,
  remote: (api: RemoteApi["Type"]) => Effect.Effect<A, E2>
) => Server.either(given, { refused: Server.databaseFlags(given.db), local: withSettings(given.db, local), remote })

const tierMeaning: Record<ServiceTier, string> = {
  anonymous: "a remote blueprint service, when one is configured, is called without a key",
  free: "a remote blueprint service is called with AUTOPILOT_BLUEPRINT_SERVICE_KEY",
  skip: "no remote service is called: the local catalog and synthesis only"
}

const statusText = (s: AutopilotStatus) =>
  [
    s.enabled ? "enabled: new goals are taken" : "disabled: new goals are refused until `autopilot enable`; missions already made go on",
    `tier: ${s.tier} (${tierMeaning[s.tier]})`,
    `instance: ${s.instance_id}`
  ].join("\n")

const statusJson = (s: AutopilotStatus) => ({ enabled: s.enabled, tier: s.tier, instance_id: s.instance_id })

export const status = Command.make("status", flags, ({ format, ...given }) =>
  Effect.gen(function*() {
    const current = yield* settingsOf(given, (settings) => settings.status(), (api) => api.ask(api.client.autopilot.status()))
    yield* Console.log(format === "json" ? Render.json(statusJson(current)) : statusText(current))
  })).pipe(Command.withDescription("Whether autopilot takes new goals, its blueprint service tier, and this instance's id"))

/** Optional, and checked by us so that a wrong value gets a line naming the flag and the tiers there are. */
const tierFlag = Options.text("tier").pipe(
  Options.withPseudoName(ServiceTiers.join("|")),
  Options.withDescription(`the blueprint service tier: ${ServiceTiers.map((t) => `${t} (${tierMeaning[t]})`).join("; ")}. Default: as it was (anonymous at first)`),
  Options.optional,
  Options.mapEffect(Option.match({
    onNone: () => Effect.succeed(undefined),
    onSome: (raw) =>
      (ServiceTiers as ReadonlyArray<string>).includes(raw)
        ? Effect.succeed(raw as ServiceTier)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--tier must be ${ServiceTiers.join(" or ")}, got "${raw}"`)))
  }))
)

const ok = (format: "text" | "json", text: string) => Console.log(format === "json" ? Render.json({ ok: true }) : text)

export const enable = Command.make("enable", { tier: tierFlag, ...flags }, ({ format, tier, ...given }) =>
  Effect.gen(function*() {
    const now = yield* settingsOf(
      given,
      (settings) => settings.enable(tier),
      (api) => Effect.zipRight(api.ask(api.client.autopilot.enable({ payload: { tier } })), api.ask(api.client.autopilot.status()))
    )
    yield* ok(format, `ok: autopilot is enabled, tier ${now.tier} (${tierMeaning[now.tier]})`)
  })).pipe(Command.withDescription("Take new goals again, optionally with another blueprint service tier"))

export const disable = Command.make("disable", flags, ({ format, ...given }) =>
  Effect.gen(function*() {
    yield* settingsOf(given, (settings) => Effect.asVoid(settings.disable()), (api) => Effect.asVoid(api.ask(api.client.autopilot.disable())))
    yield* ok(format, "ok: autopilot is disabled; new goals are refused until `autopilot enable`, missions already made go on")
  })).pipe(Command.withDescription("Refuse new goals; missions already made, scheduled or running are not affected"))
