import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Settings } from "../../src/missions/Settings.js"
import * as SettingsService from "../../src/missions/Settings.js"
import { eachDatabase } from "../support/Databases.js"

eachDatabase("Settings", (database) => {
  const fresh = SettingsService.layer.pipe(Layer.provide(database.layer))

  it.effect("a new database starts enabled, tier anonymous, with a random instance id made once", () =>
    Effect.gen(function*() {
      const settings = yield* Settings
      const status = yield* settings.status()
      assert.strictEqual(status.enabled, true)
      assert.strictEqual(status.tier, "anonymous")
      assert.match(status.instance_id, /^[0-9a-f]{32}$/)
      assert.deepStrictEqual(yield* settings.status(), status)
      assert.deepStrictEqual(yield* settings.requireEnabled(), status)
    }).pipe(Effect.provide(fresh)))

  it.effect("disable refuses new goals with one line naming how to turn it back on; enable keeps the tier unless given one", () =>
    Effect.gen(function*() {
      const settings = yield* Settings
      const { instance_id } = yield* settings.enable("free")
      assert.deepStrictEqual({ ...(yield* settings.status()) }, { enabled: true, tier: "free", instance_id })
      assert.deepStrictEqual({ ...(yield* settings.disable()) }, { enabled: false, tier: "free", instance_id })
      const refused = yield* Effect.flip(settings.requireEnabled())
      assert.strictEqual(refused._tag, "AutopilotDisabled")
      assert.strictEqual(refused.message, "autopilot is disabled, so new goals are refused; `autopilot enable` turns it back on")
      assert.deepStrictEqual({ ...(yield* settings.enable()) }, { enabled: true, tier: "free", instance_id })
      assert.deepStrictEqual({ ...(yield* settings.enable("skip")) }, { enabled: true, tier: "skip", instance_id })
      assert.strictEqual((yield* settings.requireEnabled()).tier, "skip")
    }).pipe(Effect.provide(fresh)))

  it.scoped("the instance id and the settings outlive the process: another connection to the database reads the same", () =>
    Effect.gen(function*() {
      const connection = yield* database.shared
      const onDatabase = SettingsService.layer.pipe(Layer.provide(connection))
      const first = yield* Effect.flatMap(Settings, (s) => s.disable()).pipe(Effect.provide(onDatabase))
      const again = yield* Effect.flatMap(Settings, (s) => s.status()).pipe(Effect.provide(onDatabase))
      assert.deepStrictEqual(again, first)
      assert.isFalse(again.enabled)
    }))

  it.effect("two databases are two instances", () =>
    Effect.gen(function*() {
      const status = Effect.flatMap(Settings, (s) => s.status())
      const a = yield* Effect.provide(status, fresh)
      const b = yield* Effect.provide(status, fresh)
      assert.notStrictEqual(a.instance_id, b.instance_id)
    }))
})
