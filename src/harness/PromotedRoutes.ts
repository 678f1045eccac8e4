import { Context, Duration, Effect, Either, Layer, Option } from "effect"
import { isStemOf, type Price, priceOf } from "../budget/Pricing.js"
import type { ModelRoute } from "../finetune/ModelRoute.js"
import { refreshEvery } from "../finetune/RoutedLlm.js"
import * as PromotionStore from "../store/PromotionStore.js"
import { type HarnessConfig, type ModelEntry, modelPrice } from "./HarnessConfig.js"
import { type EffectivePolicy, refusalOf, type Route } from "./Policy.js"

/**
 * The harness's side of promotion: the routes promoted fine-tunes take (ModelRoute), read from the database
 * the runs write them to, and what the harness does with a request that names its blueprint, node or
 * specialist in `x-autopilot-route`. The gateway decides on a copy kept in memory, never a query per
 * request: a copy older than `RoutedLlm.refreshEvery` is read again before a request that names a route
 * is decided, so a promotion or rollback reaches the harness within that period, as it reaches a run.
 *
 * Read when asked, not on a timer: a fiber waking every 5 s would keep the database busy for a harness
 * nobody calls, and a TestClock moved across days would run every one of its periods.
 */
export class PromotedRoutes extends Context.Tag("autopilot/harness/PromotedRoutes")<PromotedRoutes, {
  /** The active routes as last read, if that read is younger than `refreshEvery` at `now` (ms); else undefined: ask `fresh`. */
  readonly current: (now: number) => ReadonlyArray<ModelRoute> | undefined
  /**
   * The active routes, read again first if the copy is older than `refreshEvery` (one read for everyone
   * asking at once). Never fails: a read that fails keeps the last copy for another period, said once.
   */
  readonly fresh: Effect.Effect<ReadonlyArray<ModelRoute>>
}>() {}

export const make = Effect.gen(function*() {
  const store = yield* PromotionStore.PromotionStore
  const clock = yield* Effect.clock
  const period = Duration.toMillis(refreshEvery)
  let routes: ReadonlyArray<ModelRoute> = []
  let readAt = Number.NEGATIVE_INFINITY
  let failing = false
  const current = (now: number) => (now - readAt < period ? routes : undefined)
  const read = Effect.suspend(() => {
    const at = clock.unsafeCurrentTimeMillis()
    return store.active.pipe(
      Effect.map((active) => {
        routes = active
        failing = false
      }),
      Effect.catchAll((error) =>
        failing ? Effect.void : Effect.zipRight(
          Effect.sync(() => {
            failing = true
          }),
          Effect.logWarning(`promoted routes cannot be read, the last ones read stand: ${error.message}`)
        )
      ),
      // Failed or not, the copy stands for a period: a database that is down is not asked per request.
      Effect.zipRight(Effect.sync(() => {
        readAt = at
      }))
    )
  })
  const lock = yield* Effect.makeSemaphore(1)
  const fresh = Effect.suspend(() => {
    const known = current(clock.unsafeCurrentTimeMillis())
    if (known !== undefined) return Effect.succeed(known)
    // Whoever waited for the lock finds the copy the read before it made.
    return lock.withPermits(1)(Effect.suspend(() => current(clock.unsafeCurrentTimeMillis()) === undefined ? read : Effect.void)).pipe(
      Effect.map(() => routes)
    )
  })
  // Read at the start, so a harness serves the routes promoted before it from its first request on.
  yield* read
  return PromotedRoutes.of({ current, fresh })
})

/** The routes on the harness's database (its promotion tables made if need be). */
export const layer = Layer.effect(PromotedRoutes, make).pipe(Layer.provide(PromotionStore.layer))

/** How the harness reaches a route's model: the entry it forwards as, its price, and the catalog model policy judges it as. */
export interface Served {
  readonly entry: ModelEntry
  readonly price: Price
  /** The catalog model's id: the route's own, or the base a fine-tune was trained from. */
  readonly judgedAs: string
}

const normalUrl = (url: string) => (URL.canParse(url) ? new URL(url).href : url).replace(/\/+$/, "")
/** Where a route's endpoint is, without anything but its host: a URL may carry credentials, and the ledger is read by admins. */
const hostOf = (url: string) => (URL.canParse(url) ? new URL(url).host : "its own endpoint")

/** The base model of an OpenAI fine-tune id (`ft:<base>:<org>:<suffix>:<id>`), lowercased; undefined for another id. */
const fineTuneBase = (model: string) => {
  const id = model.toLowerCase()
  return id.startsWith("ft:") ? id.slice(3).split(":")[0] || undefined : undefined
}

/**
 * Which upstream of this harness serves a route's model, or why none does: the catalog entry of that id
 * (on the upstream at the route's `base_url`, when it names one); else, for an OpenAI fine-tune, the
 * upstream of the catalog model it was trained from (the longest whose name its base extends, as prices
 * match), asked for the fine-tune's id and priced at its rates. Nothing else is reached: a route's own
 * endpoint (a trainer's server) is not a host the operator gave this harness.
 */
export const servedBy = (config: HarnessConfig, route: ModelRoute): Either.Either<Served, string> => {
  const listed = config.models.find((entry) => entry.id === route.model)
  if (route.base_url !== null) {
    const at = normalUrl(route.base_url)
    if (listed !== undefined && normalUrl(config.upstreams[listed.upstream]!.base_url) === at) {
      return Either.right({ entry: listed, price: Option.getOrThrow(modelPrice(listed)), judgedAs: listed.id })
    }
    return Either.left(`${route.model} is served at ${hostOf(route.base_url)}, which is not where this harness's upstreams serve it`)
  }
  if (listed !== undefined) return Either.right({ entry: listed, price: Option.getOrThrow(modelPrice(listed)), judgedAs: listed.id })
  const base = fineTuneBase(route.model)
  const from = base === undefined ? undefined : config.models
    .map((entry) => ({ entry, name: (entry.upstream_model ?? entry.id).toLowerCase() }))
    .filter(({ name }) => isStemOf(base, name))
    // Longest first, catalog order among equals: gpt-4o-mini-… is gpt-4o-mini's, not gpt-4o's.
    .reduce<{ entry: ModelEntry; name: string } | undefined>((best, next) => best === undefined || next.name.length > best.name.length ? next : best, undefined)
  if (from === undefined) {
    return Either.left(`no upstream of this harness serves ${route.model} (it is not in models${base === undefined ? "" : `, nor is its base ${base}`})`)
  }
  return Option.match(priceOf(route.model), {
    onNone: () => Either.left(`no price is known for ${route.model}; list it in models with input_per_mtok and output_per_mtok`),
    onSome: (price) =>
      Either.right({ entry: { id: route.model, upstream: from.entry.upstream, upstream_model: route.model }, price, judgedAs: from.entry.id })
  })
}

/**
 * What a request the policy routed (`routed`) does with the promoted route its keys match. Only a request
 * the harness chooses the model of (routed by tier: `auto`, `auto:<tier>`, or a client's model that policy
 * does not give it) follows one, and only to a model policy permits and an upstream serves; a forced model,
 * a budget's downgrade and a client's permitted choice stand. A route not followed is noted, with why.
 */
export const apply = (input: {
  readonly routed: Route
  readonly promoted: ModelRoute
  readonly served: Either.Either<Served, string>
  readonly policy: EffectivePolicy
  readonly tiers: HarnessConfig["tiers"]
}): { readonly route: Route; readonly served: Option.Option<Served> } => {
  const { promoted, routed } = input
  const skipped = (why: string) => ({
    route: { ...routed, notes: [...routed.notes, `promotion ${promoted.id} (${promoted.scope}) not followed: ${why}`] },
    served: Option.none<Served>()
  })
  if (routed.via === "forced") return skipped(`the model is forced`)
  if (routed.via === "downgrade") return skipped(`a budget downgraded the request`)
  if (routed.via === "client") return skipped(`the client named ${routed.model}`)
  if (Either.isLeft(input.served)) return skipped(input.served.left)
  const served = input.served.right
  const refusal = refusalOf(input.policy, input.tiers, served.judgedAs)
  if (refusal !== null) {
    return skipped(`${promoted.model}${served.judgedAs === promoted.model ? "" : ` (a fine-tune of ${served.judgedAs})`} is ${refusal}`)
  }
  return { route: { model: promoted.model, tier: routed.tier, via: "promoted", notes: routed.notes }, served: Option.some(served) }
}
