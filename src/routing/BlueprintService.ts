import { HttpClient, type HttpClientError, HttpClientRequest, HttpClientResponse } from "@effect/platform"
import {
  Cause,
  Clock,
  Config,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  ParseResult,
  Redacted,
  Schedule,
  Schema
} from "effect"
import { ServiceTier } from "../domain/AutopilotSettings.js"
import type { Blueprint } from "../domain/Blueprint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { oneLine } from "../catalog/CatalogFiles.js"
import { BlueprintCacheStore, type Key } from "../store/BlueprintCacheStore.js"
import { decodeText } from "./Catalog.js"

/**
 * A remote blueprint service, when one is configured: more candidates for a goal than the local catalog
 * has, and blueprints written for a goal. Its answers are cached in the database for a while, and used
 * from there, however old, when the service cannot be reached.
 *
 *   POST {url}/v1/blueprints/retrieve   {goal, k}  → {candidates: [{blueprint_json, score}]}
 *   POST {url}/v1/blueprints/synthesize {goal}     → {blueprint_json}
 */

// One list of tiers for the settings that store it and the service that obeys it.
export { ServiceTier, ServiceTiers } from "../domain/AutopilotSettings.js"

/**
 * What became of the question to the service: `ok` answered now; `cached` answered from the cache
 * within its lifetime, without a call; `stale` the service failed and an expired cached answer was
 * used; `down` the service failed and nothing was cached; `skipped` the tier is `skip`; `unconfigured`
 * no service URL is set.
 */
export type RemoteStatus = "ok" | "cached" | "stale" | "down" | "skipped" | "unconfigured"

/** A remote candidate that decoded and passed the structural checks. */
export interface RemoteCandidate {
  readonly blueprint: Blueprint
  readonly score: number
}

export interface Retrieval {
  readonly remote: RemoteStatus
  readonly candidates: ReadonlyArray<RemoteCandidate>
  /** Candidates the service sent that were not blueprints (did not decode, or failed `problems`). */
  readonly dropped: number
  /** Why the service could not be used (for `stale` and `down`), or why candidates were dropped. */
  readonly note: string | null
}

export interface Synthesized {
  readonly remote: RemoteStatus
  readonly blueprint_json: Option.Option<string>
  /** Why the service could not be used (for `stale` and `down`); null otherwise. */
  readonly note: string | null
}

export class BlueprintService extends Context.Tag("autopilot/BlueprintService")<
  BlueprintService,
  {
    /** The service's URL, or null when none is configured (then nothing is ever called). */
    readonly url: string | null
    /** Up to `k` blueprints for `goal` as the service ranks them, with its scores (0–1). */
    readonly retrieve: (
      goal: string,
      options: { readonly k: number; readonly tier: ServiceTier }
    ) => Effect.Effect<Retrieval, BadInput | PersistenceError>
    /**
     * A blueprint the service wrote for `goal`, as the JSON text it sent (the caller validates it), or
     * none when the tier is `skip`, no service is configured, or it is down with nothing cached; with what
     * became of the question, as for `retrieve`.
     */
    readonly synthesize: (goal: string, tier: ServiceTier) => Effect.Effect<Synthesized, BadInput | PersistenceError>
  }
>() {}

export interface Settings {
  /** The service's root, e.g. https://blueprints.example.com (the protocol's paths are added to it). */
  readonly url: string
  readonly key: Option.Option<Redacted.Redacted<string>>
  /** How long an answer is used from the cache without asking again. */
  readonly ttl: Duration.DurationInput
  /** How long one attempt may take, answer included: 10 seconds unless given. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Attempts after the first, for failures worth retrying (network, timeout, 408, 429, 5xx): 2 unless given. */
  readonly retries?: number | undefined
  /** The wait before the first retry, doubling after each: 250 ms unless given. */
  readonly backoff?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------------------
// The protocol

const RetrieveAnswer = Schema.Struct({ candidates: Schema.Array(Schema.Unknown) })
const SynthesizeAnswer = Schema.Struct({ blueprint_json: Schema.String })

/** One candidate as the protocol sends it: a blueprint as JSON text, and a score from 0 to 1. */
const WireCandidate = Schema.Struct({
  blueprint_json: Schema.String,
  score: Schema.Number.pipe(Schema.between(0, 1))
})
const decodeCandidate = Schema.decodeUnknownEither(WireCandidate)

/**
 * The candidates that are blueprints, read as a user's file is, and a count and first reason of those
 * that are not. Whether one may be routed to is the catalog's to say (`Blueprints.problemsOf`).
 */
const usable = (raw: ReadonlyArray<unknown>) => {
  const candidates: Array<RemoteCandidate> = []
  const reasons: Array<string> = []
  raw.forEach((item, i) => {
    const decoded = Either.flatMap(
      Either.mapLeft(decodeCandidate(item), (error) => oneLine(ParseResult.TreeFormatter.formatErrorSync(error))),
      ({ blueprint_json, score }) => Either.map(decodeText(blueprint_json), (blueprint) => ({ blueprint, score }))
    )
    if (Either.isLeft(decoded)) reasons.push(`candidate ${i}: ${decoded.left}`)
    else candidates.push(decoded.right)
  })
  return { candidates, dropped: reasons.length, reason: reasons[0] ?? null }
}

type CallError = HttpClientError.HttpClientError | ParseResult.ParseError | Cause.TimeoutException

const causeOf = (error: { readonly cause?: unknown }) => oneLine(error.cause instanceof Error ? error.cause.message : String(error.cause))

/** The message for a failed call: what the service did, in a line. */
const describeFailure = (error: CallError, timeout: Duration.Duration): string => {
  switch (error._tag) {
    case "TimeoutException":
      return `no answer within ${Duration.format(timeout)}`
    case "ResponseError":
      return error.reason === "StatusCode" ? `it answered HTTP ${error.response.status}` : `its answer could not be read (${causeOf(error)})`
    case "RequestError":
      return `it could not be reached (${causeOf(error)})`
    case "ParseError":
      return `its answer is not the protocol's: ${oneLine(ParseResult.TreeFormatter.formatErrorSync(error))}`
  }
}

/** Worth another try: the network, a timeout, or a status that says "later". */
const transient = (error: CallError) =>
  error._tag === "TimeoutException" ||
  (error._tag === "RequestError" && error.reason === "Transport") ||
  (error._tag === "ResponseError" && [408, 429, 500, 502, 503, 504].includes(error.response.status))

const keyMissing = new BadInput({
  message: "tier free calls the blueprint service with a key, and AUTOPILOT_BLUEPRINT_SERVICE_KEY is not set; set it, or use tier anonymous or skip"
})

// ---------------------------------------------------------------------------------------------------------

/** Nothing configured: every call answers `unconfigured` (or `skipped`) and reaches no host. */
export const none: BlueprintService["Type"] = BlueprintService.of({
  url: null,
  retrieve: (_goal, { tier }) =>
    Effect.succeed({ remote: tier === "skip" ? "skipped" : "unconfigured", candidates: [], dropped: 0, note: null }),
  synthesize: (_goal, tier) => Effect.succeed({ remote: tier === "skip" ? "skipped" : "unconfigured", blueprint_json: Option.none(), note: null })
})

export const make = (settings: Settings): Effect.Effect<BlueprintService["Type"], never, HttpClient.HttpClient | BlueprintCacheStore> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const cache = yield* BlueprintCacheStore
    const url = settings.url.replace(/\/+$/, "")
    const ttl = Duration.toMillis(settings.ttl)
    const timeout = Duration.decode(settings.timeout ?? "10 seconds")
    const retry = Schedule.exponential(settings.backoff ?? "250 millis").pipe(Schedule.intersect(Schedule.recurs(settings.retries ?? 2)))

    const call = <A, I>(path: string, body: unknown, tier: "anonymous" | "free", answer: Schema.Schema<A, I>) =>
      Effect.gen(function*() {
        let request = HttpClientRequest.post(`${url}${path}`).pipe(HttpClientRequest.bodyUnsafeJson(body), HttpClientRequest.acceptJson)
        if (tier === "free") request = HttpClientRequest.bearerToken(request, Option.getOrThrow(settings.key))
        return yield* client.execute(request).pipe(
          Effect.flatMap(HttpClientResponse.filterStatusOk),
          Effect.flatMap((response) => response.text),
          Effect.flatMap((text) => Effect.as(Schema.decodeUnknown(Schema.parseJson(answer))(text), text)),
          Effect.scoped,
          Effect.timeout(timeout),
          Effect.retry({ schedule: retry, while: transient })
        )
      }).pipe(Effect.mapError((error) => describeFailure(error, timeout)), Effect.either)

    /**
     * The answer to `key` as JSON text: from the cache while it is fresh, else from the service (then
     * cached), else from the cache however old. None when neither has one.
     */
    const answer = <A, I>(key: Key, path: string, body: unknown, tier: ServiceTier, schema: Schema.Schema<A, I>) =>
      Effect.gen(function*() {
        if (tier === "skip") return { remote: "skipped" as const, body: Option.none<A>(), note: null }
        if (tier === "free" && Option.isNone(settings.key)) return yield* keyMissing
        const decode = (text: string) => Option.getRight(Schema.decodeUnknownEither(Schema.parseJson(schema))(text))
        const cached = Option.flatMap(yield* cache.get(key), (row) => Option.map(decode(row.body), (value) => ({ value, at: row.fetched_at })))
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(cached) && now - cached.value.at < ttl) {
          return { remote: "cached" as const, body: Option.some(cached.value.value), note: null }
        }
        const fetched = yield* call(path, body, tier, schema)
        if (Either.isRight(fetched)) {
          yield* cache.put(key, { body: fetched.right, fetched_at: yield* Clock.currentTimeMillis })
          return { remote: "ok" as const, body: decode(fetched.right), note: null }
        }
        const note = `the blueprint service at ${url} failed: ${fetched.left}`
        return Option.isSome(cached)
          ? { remote: "stale" as const, body: Option.some(cached.value.value), note }
          : { remote: "down" as const, body: Option.none<A>(), note }
      })

    return BlueprintService.of({
      url,
      retrieve: (goal, { k, tier }) =>
        answer({ service: url, kind: "retrieve", goal, k, keyed: tier === "free" }, "/v1/blueprints/retrieve", { goal, k }, tier, RetrieveAnswer).pipe(
          Effect.map(({ body, note, remote }) => {
            const { candidates, dropped, reason } = usable(Option.match(body, { onNone: () => [], onSome: (b) => b.candidates }))
            const why = reason === null ? null : `dropped ${dropped} candidate${dropped === 1 ? "" : "s"} of the blueprint service: ${reason}`
            return { remote, candidates: candidates.slice(0, k), dropped, note: note ?? why }
          })
        ),
      synthesize: (goal, tier) =>
        answer({ service: url, kind: "synthesize", goal, k: 0, keyed: tier === "free" }, "/v1/blueprints/synthesize", { goal }, tier, SynthesizeAnswer).pipe(
          Effect.map(({ body, note, remote }) => ({ remote, blueprint_json: Option.map(body, (b) => b.blueprint_json), note }))
        )
    })
  })

export const layer = (settings: Settings): Layer.Layer<BlueprintService, never, HttpClient.HttpClient | BlueprintCacheStore> =>
  Layer.effect(BlueprintService, make(settings))

export const layerNone: Layer.Layer<BlueprintService> = Layer.succeed(BlueprintService, none)

const variable = (name: string) => Config.option(Config.string(name)).pipe(Effect.orDie, Effect.map(Option.filter((s) => s.trim() !== "")))

/**
 * `AUTOPILOT_BLUEPRINT_SERVICE_URL` (unset: no service), `AUTOPILOT_BLUEPRINT_SERVICE_KEY` (for tier
 * free) and `AUTOPILOT_CACHE_TTL` (seconds, 3600), checked before anything is called.
 */
export const settingsFromConfig: Effect.Effect<Option.Option<Settings>, BadInput> = Effect.gen(function*() {
  const url = yield* variable("AUTOPILOT_BLUEPRINT_SERVICE_URL")
  const key = yield* variable("AUTOPILOT_BLUEPRINT_SERVICE_KEY")
  const ttlText = yield* variable("AUTOPILOT_CACHE_TTL")
  const ttl = Option.isNone(ttlText) ? 3600 : /^\s*\d+\s*$/.test(ttlText.value) ? Number(ttlText.value) : Number.NaN
  if (!Number.isSafeInteger(ttl)) {
    return yield* new BadInput({ message: `AUTOPILOT_CACHE_TTL must be a whole number of seconds (0 or more), got ${JSON.stringify(Option.getOrElse(ttlText, () => ""))}` })
  }
  if (Option.isNone(url)) return Option.none()
  const valid = URL.canParse(url.value) && /^https?:$/.test(new URL(url.value).protocol)
  if (!valid) {
    return yield* new BadInput({ message: `AUTOPILOT_BLUEPRINT_SERVICE_URL must be an http(s) URL such as https://blueprints.example.com, got ${JSON.stringify(url.value)}` })
  }
  return Option.some({ url: url.value, key: Option.map(key, Redacted.make), ttl: Duration.seconds(ttl) })
})

/** The service the environment configures, or `none`. */
export const layerConfig: Layer.Layer<BlueprintService, BadInput, HttpClient.HttpClient | BlueprintCacheStore> = Layer.unwrapEffect(
  Effect.map(settingsFromConfig, Option.match({ onNone: () => layerNone, onSome: layer }))
)
