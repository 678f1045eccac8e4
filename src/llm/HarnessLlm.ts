import { HttpApp } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Config, Effect, Layer, type Redacted } from "effect"
import type { BadInput } from "../domain/Errors.js"
import * as ModelRoute from "../finetune/ModelRoute.js"
import * as Gateway from "../harness/Gateway.js"
import type { HarnessConfig } from "../harness/HarnessConfig.js"
import { HarnessStore } from "../harness/HarnessStore.js"
import * as Server from "../harness/Server.js"
import { Llm, type LlmRequest } from "./Llm.js"
import * as OpenAiLlm from "./OpenAiLlm.js"

/** `auto` lets the harness choose the model by the request's tier; naming one works where policy allows. */
export const defaultModel = "auto"

export interface HarnessLlmConfig {
  /** A harness key (`autopilot harness key create`): it decides whose policy and budgets apply. */
  readonly key: Redacted.Redacted<string>
  readonly model?: string | undefined
}

/**
 * A work (`act`) call says where it comes from (its blueprint, node, specialist) in `x-autopilot-route`, so
 * the harness can send it to a promoted fine-tune (ModelRoute); judges, critics and routing calls do not.
 */
export const routeHeaders = (request: LlmRequest): Record<string, string> | undefined => {
  if (request.purpose !== "act") return undefined
  const header = ModelRoute.headerOf(request.metadata)
  return header === undefined ? undefined : { [ModelRoute.routeHeader]: header }
}

// The harness prices every answer with the pricing table the runtime shares, and reports it in
// `usage.cost_usd`; the runtime charges that figure, so both always agree on what a run cost.
const client = (config: HarnessLlmConfig, baseURL: string, fetch?: typeof globalThis.fetch) =>
  OpenAiLlm.make({
    baseURL,
    apiKey: config.key,
    model: config.model ?? defaultModel,
    costFromProvider: true,
    fetch,
    headers: routeHeaders
  }).pipe(Effect.map((llm) => {
    // A request that names no model but a tier (a specialist's), to a Layer given no model of its own, asks
    // the harness to route it at that tier.
    const routed = (request: LlmRequest): LlmRequest =>
      request.model === undefined && config.model === undefined && request.tier !== undefined
        ? { ...request, model: `auto:${request.tier}` }
        : request
    return { complete: (request) => llm.complete(routed(request)), stream: (request) => llm.stream(routed(request)) } satisfies Llm["Type"]
  }))

/** Through a harness served elsewhere (`autopilot harness serve`); `url` is its root, e.g. http://127.0.0.1:8790. */
export const layerHttp = (config: HarnessLlmConfig & { readonly url: string }): Layer.Layer<Llm> =>
  Layer.effect(Llm, client(config, `${config.url.replace(/\/+$/, "")}/v1`))

/**
 * The harness inside this process, on this process's database: the same routes, policy, budgets and
 * ledger as a served one, answered without a socket.
 */
export const layerInProcess = (
  config: HarnessLlmConfig & { readonly harness: HarnessConfig }
): Layer.Layer<Llm, BadInput, SqlClient.SqlClient> =>
  Layer.effect(
    Llm,
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<Gateway.Gateway | HarnessStore>()
      const handler = HttpApp.toWebHandlerRuntime(runtime)(Server.app)
      return yield* client(config, "http://harness.in-process/v1", (input, init) => handler(new Request(input, init)))
    })
  ).pipe(Layer.provide(Gateway.layerWithStore(config.harness)))

/**
 * `AUTOPILOT_HARNESS_KEY` (required) with `AUTOPILOT_HARNESS_URL` for a served harness; without a URL the
 * caller runs one in process from its config file.
 */
export const config = Config.all({
  key: Config.redacted("AUTOPILOT_HARNESS_KEY"),
  url: Config.option(Config.url("AUTOPILOT_HARNESS_URL").pipe(Config.map((url) => url.href)))
})

export const HarnessLlm = { defaultModel, layerHttp, layerInProcess, config, routeHeaders }
