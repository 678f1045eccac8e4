import { Config, Duration, Effect, Option, Redacted, Stream } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import type { Llm, LlmRequest } from "../llm/Llm.js"
import * as ModelRoute from "./ModelRoute.js"

/**
 * The runtime's side of promotion: a work (`act`) call that names no model of its own, from a blueprint,
 * node or specialist with an active route, is sent to the route's model, on the endpoint serving it when
 * the route names one (see `Serving`). Judges, critics and routing keep the provider's default, and a run started with
 * an explicit model keeps it: an operator's choice beats a rule's.
 */

/** How long a process trusts its copy of the routes: a promotion or rollback elsewhere reaches it within this. */
export const refreshEvery = Duration.seconds(5)

/**
 * Where a provider can send a route's calls. The mock serves any model name itself (`endpoints: false`);
 * an OpenAI-compatible provider sends a route to its own client when the route is served where the
 * provider is (`own`, its base URL), else to a client of the route's endpoint (a trainer's server, or the
 * fine-tune provider's), with `key` (AUTOPILOT_FINETUNE_SERVING_API_KEY) or none: the runs' key never
 * travels to an endpoint it was not configured for.
 */
export interface Serving {
  readonly endpoints: boolean
  readonly own?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
}

export const servingKeyVariable = "AUTOPILOT_FINETUNE_SERVING_API_KEY"

/** `AUTOPILOT_FINETUNE_SERVING_API_KEY`, when set. */
export const servingKey: Effect.Effect<Redacted.Redacted<string> | undefined> = Config.option(Config.redacted(servingKeyVariable)).pipe(
  Effect.orElseSucceed(() => Option.none()),
  Effect.map(Option.getOrUndefined)
)

const sameEndpoint = (a: string, b: string) => a.replace(/\/+$/, "") === b.replace(/\/+$/, "")

/** The client for a route's (or a job's) model: `inner` where it serves it, else one for its endpoint. */
export const clientFor = (
  inner: Llm["Type"],
  serving: Serving,
  route: { readonly model: string; readonly base_url: string | null }
): Effect.Effect<Llm["Type"]> =>
  !serving.endpoints || route.base_url === null || (serving.own !== undefined && sameEndpoint(serving.own, route.base_url))
    ? Effect.succeed(inner)
    : servingAt(route.base_url, route.model, serving.key)

/** A client for a model's own endpoint. */
export const servingAt = (baseURL: string, model: string, key?: Redacted.Redacted<string>): Effect.Effect<Llm["Type"]> =>
  // Loaded when a route needs it, as LlmLayer loads the openai SDK: not on every start of the CLI.
  Effect.flatMap(Effect.promise(() => import("../llm/OpenAiLlm.js")), ({ make }) => make({ baseURL, apiKey: key ?? Redacted.make("none"), model }))

/** The route a request takes, if any. */
export const routeFor = (routes: ReadonlyArray<ModelRoute.ModelRoute>, request: LlmRequest): Option.Option<ModelRoute.ModelRoute> =>
  request.purpose !== "act" || request.model !== undefined ? Option.none() : ModelRoute.resolve(routes, request.metadata)

/**
 * `inner` with routes applied. `routes` is read at most every `refreshEvery`; when it cannot be read the
 * last copy stands (a call is never failed for a routing table).
 */
export const make = (options: {
  readonly inner: Llm["Type"]
  readonly routes: Effect.Effect<ReadonlyArray<ModelRoute.ModelRoute>, PersistenceError>
  readonly serving: Serving
}): Effect.Effect<Llm["Type"]> =>
  Effect.gen(function*() {
    let known: ReadonlyArray<ModelRoute.ModelRoute> = []
    const current = yield* Effect.cachedWithTTL(
      Effect.tap(Effect.orElseSucceed(options.routes, () => known), (routes) => {
        known = routes
      }),
      refreshEvery
    )
    const clients = new Map<string, Llm["Type"]>()
    const clientOf = (route: ModelRoute.ModelRoute): Effect.Effect<Llm["Type"]> => {
      const key = `${route.base_url} ${route.model}`
      const found = clients.get(key)
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.tap(clientFor(options.inner, options.serving, route), (client) => Effect.sync(() => clients.set(key, client)))
    }
    const choose = (request: LlmRequest) =>
      Effect.flatMap(current, (routes) =>
        Option.match(routeFor(routes, request), {
          onNone: () => Effect.succeed([options.inner, request] as const),
          onSome: (route) => Effect.map(clientOf(route), (client) => [client, { ...request, model: route.model }] as const)
        }))
    return {
      complete: (request) => Effect.flatMap(choose(request), ([llm, routed]) => llm.complete(routed)),
      stream: (request) => Stream.unwrap(Effect.map(choose(request), ([llm, routed]) => llm.stream(routed)))
    }
  })
