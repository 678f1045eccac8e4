import type { FileSystem } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Config, ConfigProvider, Context, Effect, Layer, Option, type Scope } from "effect"
import { BadInput } from "../domain/Errors.js"
import type { LlmChoice } from "../domain/LlmChoice.js"
import * as RoutedLlm from "../finetune/RoutedLlm.js"
import * as PromotionStore from "../store/PromotionStore.js"
import { Llm } from "./Llm.js"
import { MockLlm } from "./MockLlm.js"

const oneLine = (error: unknown) => String(error).replace(/\s+/g, " ")

/** Where a provider's variables come from: the run's own (`AUTOPILOT_LLM_*`) or its fallback's. */
type Role = "primary" | "fallback"

const prefix = { primary: "AUTOPILOT_LLM_", fallback: "AUTOPILOT_FALLBACK_LLM_" } as const
const asked = { primary: "--llm", fallback: "the fallback provider" } as const

/**
 * Read before anything is written, so a missing variable is bad input that leaves no trace. The module
 * (and the openai SDK under it) is loaded only for runs that use it, not on every start of the CLI. A
 * fallback reads the same settings under `AUTOPILOT_FALLBACK_LLM_*` (one config, its names renamed),
 * so the two providers can be different servers with different keys.
 */
const openAi = (role: Role) =>
  Effect.promise(() => import("./OpenAiLlm.js")).pipe(Effect.flatMap(({ OpenAiLlm }) =>
    Effect.configProviderWith((provider) =>
      OpenAiLlm.config.pipe(
        Effect.withConfigProvider(ConfigProvider.mapInputPath(provider, (name) => name.replace(prefix.primary, prefix[role])))
      )
    ).pipe(
      Effect.mapError((error) =>
        new BadInput({
          message: `${asked[role]} openai needs ${prefix[role]}BASE_URL (an OpenAI-compatible base URL such as http://localhost:4000/v1) and ${
            prefix[role]
          }API_KEY (any placeholder for a server without keys): ${oneLine(error)}`
        })
      ),
      Effect.map(OpenAiLlm.layer)
    )
  ))

/**
 * Through a served harness, or one run in this process on the run's own database, so its ledger sits
 * beside the run. The config is read and checked before anything is written.
 */
const harness = Effect.gen(function*() {
  const [{ HarnessLlm }, HarnessConfig, Upstreams] = yield* Effect.promise(() =>
    Promise.all([import("./HarnessLlm.js"), import("../harness/HarnessConfig.js"), import("../harness/Upstreams.js")])
  )
  const needs =
    "--llm harness needs AUTOPILOT_HARNESS_KEY (from `autopilot harness key create`) and either AUTOPILOT_HARNESS_URL (a served harness, e.g. http://127.0.0.1:8790) or AUTOPILOT_HARNESS_CONFIG (its config file, to run it in this process)"
  const { key, url } = yield* HarnessLlm.config.pipe(Effect.mapError((error) => new BadInput({ message: `${needs}: ${oneLine(error)}` })))
  if (Option.isSome(url)) return HarnessLlm.layerHttp({ key, url: url.value })
  const file = yield* Config.string("AUTOPILOT_HARNESS_CONFIG").pipe(Effect.mapError(() => new BadInput({ message: needs })))
  const config = yield* HarnessConfig.load(file)
  // Checks the upstreams' keys are set; their connections close at once.
  yield* Effect.scoped(Upstreams.make(config))
  return HarnessLlm.layerInProcess({ key, harness: config })
})

const layerFor = (
  role: Role,
  choice: LlmChoice
): Effect.Effect<Layer.Layer<Llm, BadInput, SqlClient.SqlClient>, BadInput, FileSystem.FileSystem> => {
  switch (choice.provider) {
    case "openai":
      return openAi(role)
    case "harness":
      return harness
    case "mock":
      return choice.mock_script === undefined
        ? Effect.succeed(MockLlm.layer())
        : Effect.map(MockLlm.loadScript(choice.mock_script), (script) => MockLlm.layer(script))
  }
}

/**
 * Promoted fine-tunes take their traffic here (`RoutedLlm`), on the run's own provider: the mock serves
 * any model name; an OpenAI-compatible server reaches a route's own endpoint when it names one. The
 * harness reads the same routes itself, and a fallback provider (another vendor) never takes them.
 */
const routed = (choice: LlmChoice) => <E>(inner: Layer.Layer<Llm, E, SqlClient.SqlClient>): Layer.Layer<Llm, E, SqlClient.SqlClient> =>
  choice.provider === "harness" ? inner : Layer.effect(
    Llm,
    Effect.gen(function*() {
      const store = yield* PromotionStore.PromotionStore
      return yield* RoutedLlm.make({ inner: yield* Llm, routes: store.active, serving: yield* servingOf(choice) })
    })
  ).pipe(Layer.provide(Layer.merge(inner, PromotionStore.layer)))

/** Where the primary provider of a choice can send a route's calls (`RoutedLlm.Serving`). */
export const servingOf = (choice: LlmChoice): Effect.Effect<RoutedLlm.Serving> =>
  choice.provider !== "openai" ? Effect.succeed({ endpoints: false }) : Effect.gen(function*() {
    const own = yield* Config.option(Config.string(`${prefix.primary}BASE_URL`)).pipe(Effect.orElseSucceed(() => Option.none()))
    return { endpoints: true, own: Option.getOrUndefined(own), key: yield* RoutedLlm.servingKey }
  })

/** The Layer for a choice, checked now: a missing key, file or variable is bad input before the run starts. */
export const layerOf = (choice: LlmChoice) => Effect.map(layerFor("primary", choice), routed(choice))

/**
 * The Layer of a mission's fallback provider (another Layer configuration, for healing's
 * `fallback_provider` rung and the circuit breaker), checked now as `layerOf` checks: `openai` reads
 * `AUTOPILOT_FALLBACK_LLM_BASE_URL`, `AUTOPILOT_FALLBACK_LLM_API_KEY` and `AUTOPILOT_FALLBACK_LLM_MODEL`;
 * `mock` runs its own script; `harness` is configured as the run's is.
 */
export const fallbackLayerOf = (choice: LlmChoice) => layerFor("fallback", choice)

/**
 * The model a Layer provides, built in the current scope: a mission driver holds its primary and its
 * fallback at once, each built from its own Layer, and releases both with the scope.
 */
export const serviceOf = <E, R>(layer: Layer.Layer<Llm, E, R>): Effect.Effect<Llm["Type"], E, R | Scope.Scope> =>
  Effect.map(Layer.build(layer), Context.get(Llm))

/** Checks a choice without running anything: for callers that must refuse bad input before opening a database. */
export const validate = (choice: LlmChoice): Effect.Effect<void, BadInput, FileSystem.FileSystem> => Effect.asVoid(layerOf(choice))
