import { Config, Duration, Effect, Option, Redacted, Stream } from "effect"
import type { LlmError, PersistenceError } from "../domain/Errors.js"
import type { Llm, LlmRequest } from "../llm/Llm.js"
import * as ModelRoute from "./ModelRoute.js"

/**
 * The runtime's side of promotion: a work (`act`) call that names no model of its own, from a blueprint,
 * node or specialist with an active route, is sent to the route's model, on the endpoint serving it when
 * the route names one (see `Serving`). Judges, critics and routing keep the provider's default, and a call
 * naming another model than the one the route was measured against keeps it: an operator's choice beats a rule's.
 */

/** How long a process trusts its copy of the routes: a promotion or rollback elsewhere reaches it within this. */
export const refreshEvery = Duration.seconds(5)

/**
 * Where a provider can send a route's calls. The mock serves any model name itself (`endpoints: false`);
 * an OpenAI-compatible provider sends a route to its own client when the route is served where the
 * provider is (`own`, its base URL), else to a client of the route's endpoint (a trainer's server, or the
 * fine-tune provider's), with `key` (AUTOPILOT_FINETUNE_SERVING_API_KEY) where it is served from that
 * key's origin, else none: no key travels to an endpoint it was not configured for.
 */
export interface Serving {
  readonly endpoints: boolean
  readonly own?: string | undefined
  /** Sent only to endpoints at `origin` (scheme, host and port): a key is for the host it was configured for. */
  readonly key?: { readonly value: Redacted.Redacted<string>; readonly origin: string } | undefined
}

export const servingKeyVariable = "AUTOPILOT_FINETUNE_SERVING_API_KEY"

const originOf = (url: string): string | undefined => (URL.canParse(url) ? new URL(url).origin : undefined)

/**
 * `AUTOPILOT_FINETUNE_SERVING_API_KEY`, for the origin where fine-tuned models are served
 * (`AUTOPILOT_FINETUNE_SERVING_URL`, else `AUTOPILOT_FINETUNE_BASE_URL`); none without both.
 */
export const servingKey: Effect.Effect<Serving["key"]> = Effect.gen(function*() {
  const text = (name: string) => Config.option(Config.string(name)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
  const value = yield* Config.option(Config.redacted(servingKeyVariable)).pipe(Effect.orElseSucceed(() => Option.none()))
  const at = Option.orElse(yield* text("AUTOPILOT_FINETUNE_SERVING_URL"), () => Option.none<string>())
  const origin = Option.flatMapNullable(Option.isSome(at) ? at : yield* text("AUTOPILOT_FINETUNE_BASE_URL"), originOf)
  return Option.isSome(value) && Option.isSome(origin) ? { value: value.value, origin: origin.value } : undefined
})

const sameEndpoint = (a: string, b: string) => a.replace(/\/+$/, "") === b.replace(/\/+$/, "")

/** The client for a route's (or a job's) model: `inner` where it serves it, else one for its endpoint. */
export const clientFor = (
  inner: Llm["Type"],
  serving: Serving,
  route: { readonly model: string; readonly base_url: string | null }
): Effect.Effect<Llm["Type"]> =>
  !serving.endpoints || route.base_url === null || (serving.own !== undefined && sameEndpoint(serving.own, route.base_url))
    ? Effect.succeed(inner)
    : servingAt(route.base_url, route.model, serving.key !== undefined && originOf(route.base_url) === serving.key.origin ? serving.key.value : undefined)

/**
 * A client for a model's own endpoint. What it says a call cost (`usage.cost_usd`) is taken: the endpoint
 * is the user's trainer or fine-tune provider, and a model of its own has no row in the pricing table.
 */
export const servingAt = (baseURL: string, model: string, key?: Redacted.Redacted<string>): Effect.Effect<Llm["Type"]> =>
  // Loaded when a route needs it, as LlmLayer loads the openai SDK: not on every start of the CLI.
  Effect.flatMap(
    Effect.promise(() => import("../llm/OpenAiLlm.js")),
    ({ make }) => make({ baseURL, apiKey: key ?? Redacted.make("none"), model, costFromProvider: true })
  )

/** The route a request takes, if any. */
export const routeFor = (routes: ReadonlyArray<ModelRoute.ModelRoute>, request: LlmRequest): Option.Option<ModelRoute.ModelRoute> =>
  request.purpose !== "act"
    ? Option.none()
    : Option.filter(
      ModelRoute.resolve(routes, request.metadata),
      // A call naming a model keeps it, unless that is the model the route was measured against and beat (a
      // daemon's --model): that traffic is what it proved it can take.
      (route) => request.model === undefined || request.model === route.baseline_model
    )

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
    // A routed model that refuses for good (deleted at the provider, a key it does not take) leaves its scope
    // to the provider's default for that call rather than failing the work until someone rolls it back.
    const refused = (error: LlmError) => !error.transient && error.budget_exhausted !== true
    const fallBack = (routed: LlmRequest, error: LlmError) =>
      Effect.logWarning(`routed model ${routed.model} refused (${error.message}); this call goes to the provider's default`)
    return {
      complete: (request) =>
        Effect.flatMap(choose(request), ([llm, routed]) =>
          routed === request
            ? llm.complete(request)
            : llm.complete(routed).pipe(Effect.catchIf(refused, (error) => Effect.zipRight(fallBack(routed, error), options.inner.complete(request))))),
      stream: (request) =>
        Stream.unwrap(Effect.map(choose(request), ([llm, routed]) =>
          routed === request
            ? llm.stream(request)
            : llm.stream(routed).pipe(
              Stream.catchAll((error) => refused(error) ? Stream.unwrap(Effect.as(fallBack(routed, error), options.inner.stream(request))) : Stream.fail(error))
            )))
    }
  })
