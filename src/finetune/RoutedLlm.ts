import { Duration, Effect, Option, Redacted, Stream } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import type { Llm, LlmRequest } from "../llm/Llm.js"
import * as ModelRoute from "./ModelRoute.js"

/**
 * The runtime's side of promotion: a work (`act`) call that names no model of its own, from a blueprint,
 * node or specialist with an active route, is sent to the route's model, on the endpoint serving it when
 * the route names one. Judges, critics and routing keep the provider's default, and a run started with
 * an explicit model keeps it: an operator's choice beats a rule's.
 */

/** How long a process trusts its copy of the routes: a promotion or rollback elsewhere reaches it within this. */
export const refreshEvery = Duration.seconds(5)

/** A client for a route's own endpoint (a trainer's server): no key of the user's is sent to it. */
export const servingAt = (baseURL: string, model: string): Effect.Effect<Llm["Type"]> =>
  // Loaded when a route needs it, as LlmLayer loads the openai SDK: not on every start of the CLI.
  Effect.flatMap(Effect.promise(() => import("../llm/OpenAiLlm.js")), ({ make }) => make({ baseURL, apiKey: Redacted.make("unused"), model }))

/** The route a request takes, if any. */
export const routeFor = (routes: ReadonlyArray<ModelRoute.ModelRoute>, request: LlmRequest): Option.Option<ModelRoute.ModelRoute> =>
  request.purpose !== "act" || request.model !== undefined ? Option.none() : ModelRoute.resolve(routes, request.metadata)

/**
 * `inner` with routes applied. `routes` is read at most every `refreshEvery`; when it cannot be read the
 * last copy stands (a call is never failed for a routing table). `endpoints: false` (the mock, which
 * serves any model name) sends routed calls to `inner` whatever endpoint the route names.
 */
export const make = (options: {
  readonly inner: Llm["Type"]
  readonly routes: Effect.Effect<ReadonlyArray<ModelRoute.ModelRoute>, PersistenceError>
  readonly endpoints: boolean
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
      if (!options.endpoints || route.base_url === null) return Effect.succeed(options.inner)
      const key = `${route.base_url} ${route.model}`
      const found = clients.get(key)
      return found !== undefined ? Effect.succeed(found) : Effect.tap(servingAt(route.base_url, route.model), (client) => Effect.sync(() => clients.set(key, client)))
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
