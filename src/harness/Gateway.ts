import { HttpServerResponse } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { Clock, Context, Duration, Effect, Either, FiberRef, Layer, Option, type Scope, Stream } from "effect"
import { costOf } from "../budget/Pricing.js"
import type { BadInput } from "../domain/Errors.js"
import * as ModelRoute from "../finetune/ModelRoute.js"
import * as OpenAiCompat from "../llm/OpenAiCompat.js"
import { applicableBudgets, type BudgetVerdict, periodKey, periodStart, verdict } from "./BudgetRules.js"
import { type ChatRequest, validate } from "./ChatRequest.js"
import { type ClassifiableRequest, classify } from "./Classifier.js"
import { type BudgetRule, type HarnessConfig, type ModelEntry, modelPrice, type Tier, Tiers } from "./HarnessConfig.js"
import { HarnessError, toResponse } from "./HarnessError.js"
import { type KeyRecord, type LedgerEntry, HarnessStore } from "./HarnessStore.js"
import * as KeyCache from "./KeyCache.js"
import * as LedgerWriter from "./LedgerWriter.js"
import { effectivePolicy, type Identity, refusalOf, route } from "./Policy.js"
import * as PromotedRoutes from "./PromotedRoutes.js"
import * as RateLimit from "./RateLimit.js"
import * as RequestLog from "./RequestLog.js"
import * as ResponseItems from "./ResponseItems.js"
import * as Responses from "./Responses.js"
import * as ResponsesAnswer from "./ResponsesAnswer.js"
import * as ResponsesRelay from "./ResponsesRelay.js"
import * as Upstreams from "./Upstreams.js"

/**
 * What the harness does with a request once it knows who sent it: rate limit, classify, apply policy and
 * budgets, forward to the routed model, price the answer and write it to the ledger. The HTTP server is a
 * thin shell around this.
 */
export class Gateway extends Context.Tag("autopilot/harness/Gateway")<Gateway, {
  readonly config: HarnessConfig
  /** The key behind an `Authorization: Bearer …` header, counted against its rate limit. */
  readonly authenticate: (authorization: string | undefined) => Effect.Effect<KeyRecord, HarnessError>
  /** `route`: the request's `x-autopilot-route` header, naming what a promoted route may match (PromotedRoutes). */
  readonly chat: (key: KeyRecord, body: unknown, route?: string | undefined) => Effect.Effect<HttpServerResponse.HttpServerResponse, HarnessError>
  /** `POST /v1/responses`: the same gate and ledger as `chat`, forwarded or translated per upstream (Responses.ts). */
  readonly responses: (key: KeyRecord, body: unknown, route?: string | undefined) => Effect.Effect<HttpServerResponse.HttpServerResponse, HarnessError>
  /** The models this key may name: `auto` and every catalog model its policy permits. */
  readonly models: (key: KeyRecord) => ReadonlyArray<string>
  /**
   * The steps of `authenticate` and a plain `chat` without an Effect, for the plain-completion fast path
   * (PlainChat.ts): each is the same step, or undefined where only the Effect path can take it.
   */
  readonly unsafe: {
    /** `authenticate` at `now`; undefined when the key is not in the KeyCache (the store must be asked). */
    readonly authenticate: (authorization: string | undefined, now: number) => Either.Either<KeyRecord, HarnessError> | undefined
    /**
     * `chat`'s admission of a valid, plain request; undefined when it is not the common case: a stream, a
     * model not in the catalog, budgets to check, the ledger failing, a request the policy refuses, or one
     * naming a route (`route`, its `x-autopilot-route`) while the promoted routes are out of date.
     */
    readonly admit: (
      key: KeyRecord,
      request: ChatRequest,
      startedAt: number,
      facts: RequestLog.Facts | undefined,
      route: string | undefined
    ) => Admission | undefined
    /** `chat`'s call to the upstream for an admitted plain request; the function returned cancels it. */
    readonly complete: (
      admission: Admission,
      body: unknown,
      done: (outcome: Either.Either<Either.Either<PlainAnswer, Upstreams.NotACompletion>, HarnessError>) => void
    ) => () => void
  }
}>() {}

const identityOf = (key: KeyRecord): Identity => ({ key_id: key.id, user: key.user, team: key.team, project: key.project })

/** What the gate reads of a request, whichever API it came by. */
export interface Admissible extends ClassifiableRequest {
  readonly model: string
  readonly stream?: boolean | null | undefined
}

type Fields = Partial<LedgerEntry> & Pick<LedgerEntry, "status">
type Priced = Pick<LedgerEntry, "input_tokens" | "output_tokens" | "cost_usd">

/**
 * A request the gate let through (key, budgets, policy): the model it goes to, the headers its answer
 * carries, and how its one ledger row is written however the answer ends.
 */
export interface Admission {
  readonly target: ModelEntry
  readonly streaming: boolean
  /** The ledger fields routing decided: model used, tier, policy action. */
  readonly decided: Pick<LedgerEntry, "model_used" | "tier" | "policy_action">
  readonly headers: Record<string, string>
  /** Writes the request's ledger row. */
  readonly recorded: (fields: Fields) => Effect.Effect<void, HarnessError>
  /** Writes the row of a refused request and fails with `error`. */
  readonly refuse: (error: HarnessError, fields?: Partial<LedgerEntry>) => Effect.Effect<never, HarnessError>
  readonly price: (usage: OpenAiCompat.Usage) => Priced
  /** What a call is charged when its upstream never said: about four characters a token. */
  readonly estimated: (outputChars: number, why: string) => Priced & { readonly error: string }
  /**
   * A plain (not streamed) call to the upstream, its row written however it ends: the answer priced and
   * relayed with its cost, a body that is no answer refused (charged only the usage it reports), a client
   * gone before the answer recorded as 499.
   */
  readonly recordAnswer: (call: Effect.Effect<Either.Either<PlainAnswer, Upstreams.NotACompletion>, HarnessError>) => Effect.Effect<
    HttpServerResponse.HttpServerResponse,
    HarnessError
  >
  /** What `recordAnswer` does with an answer, without an Effect: the row queued, the response to send. */
  readonly answerNow: (answer: PlainAnswer) => HttpServerResponse.HttpServerResponse
}

/** An upstream's plain answer, as `recordAnswer` prices and relays it, whichever API it came by. */
export interface PlainAnswer {
  readonly body: unknown
  readonly usage: Option.Option<OpenAiCompat.Usage>
  /** How many characters its output holds: what is charged by estimate when it reports no usage. */
  readonly outputChars: () => number
  /** The body with `cost_usd` beside its usage. */
  readonly withCost: (cost_usd: number) => unknown
}

const encoder = new TextEncoder()
const sse = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`)
const done = encoder.encode("data: [DONE]\n\n")

/**
 * Model ids and budget names may be any non-blank text, but a header value that is not printable ASCII
 * makes Node throw while answering: the client would get a 500 for a request already forwarded and paid.
 */
const headerSafe = (value: string) =>
  value.replace(/[^\x20-\x7e]/gu, (c) => Array.from(Buffer.from(c, "utf8"), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""))

/**
 * `auto:simple`, `auto:medium`, `auto:complex`: routed like `auto`, at the tier the client names instead
 * of the one the request's content suggests (a mission run as a specialist asks for the specialist's).
 * Policy still caps it (`max_tier`), and a budget may still downgrade it.
 */
const tierAsked = (model: string): Tier | undefined => {
  const tier = /^auto:(.+)$/.exec(model)?.[1]
  return Tiers.find((known) => known === tier)
}

export const make = (
  config: HarnessConfig
): Effect.Effect<Gateway["Type"], BadInput, HarnessStore | LedgerWriter.LedgerWriter | PromotedRoutes.PromotedRoutes | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* HarnessStore
    const ledger = yield* LedgerWriter.LedgerWriter
    // Without the cache (a store provided bare), every key is looked up and the fast path never applies.
    const cache = yield* Effect.serviceOption(KeyCache.KeyCache)
    const limiter = RateLimit.make()
    const clock = yield* Effect.clock
    const upstreams = yield* Upstreams.make(config)
    const catalog = new Map(config.models.map((m) => [m.id, m]))
    const prices = new Map(config.models.map((m) => [m.id, Option.getOrThrow(modelPrice(m))]))
    const promotions = yield* PromotedRoutes.PromotedRoutes
    // How each route's model is reached depends on the config alone: worked out once per route.
    const servedBy = new Map<string, ReturnType<typeof PromotedRoutes.servedBy>>()
    const servedOf = (promoted: ModelRoute.ModelRoute) => {
      const known = servedBy.get(promoted.id)
      if (known !== undefined) return known
      const served = PromotedRoutes.servedBy(config, promoted)
      servedBy.set(promoted.id, served)
      return served
    }
    /** The active route a request's `x-autopilot-route` header matches among `routes`. */
    const promotedFor = (header: string | undefined, routes: ReadonlyArray<ModelRoute.ModelRoute>) =>
      header === undefined || routes.length === 0 ? Option.none() : ModelRoute.resolve(routes, ModelRoute.keysOfHeader(header))

    // Spend per scope and period, read from the ledger once and then kept in step with it, so a budget
    // check costs a map lookup and a read of the rows written since the last one: by this process or by
    // any other on the same database (another harness, a mission running one in process). `seen` is the
    // last ledger id counted; one lock orders the checks, so no cost is counted twice or lost.
    const spent = new Map<string, number>()
    let seen: number | undefined
    let currentDay = ""
    const lock = yield* Effect.makeSemaphore(1)
    const counterOf = (rule: BudgetRule, now: Date) => `${rule.scope}\u0000${rule.id}\u0000${periodKey(rule.period, now)}`

    const catchUp = Effect.gen(function*() {
      if (seen === undefined) {
        seen = yield* store.lastId()
        return
      }
      for (const charge of yield* store.charges(seen)) {
        seen = charge.id
        const at = new Date(charge.at)
        // A set: two rules on one scope and period share a counter, which a cost must reach once.
        const counters = new Set(applicableBudgets(config.budgets, charge).map((rule) => counterOf(rule, at)))
        for (const counter of counters) {
          const total = spent.get(counter)
          if (total !== undefined) spent.set(counter, total + charge.cost_usd)
        }
      }
    })

    const budgetFor = (identity: Identity, now: Date): Effect.Effect<BudgetVerdict, HarnessError> =>
      // No budgets, nothing to count: no need to take the lock, on every request.
      config.budgets.length === 0 ? Effect.succeed(verdict([], identity, () => 0)) : Effect.gen(function*() {
        // Counters of ended periods are never read again: a new day starts from an empty map.
        const today = periodKey("daily", now)
        if (today !== currentDay) {
          spent.clear()
          currentDay = today
        }
        // The store's reads first write the rows still queued (LedgerWriter.readsAfterWrites): this process's
        // spend is counted like any other's.
        yield* catchUp
        const rules = applicableBudgets(config.budgets, identity)
        for (const rule of rules) {
          const counter = counterOf(rule, now)
          if (spent.has(counter)) continue
          const total = yield* store.spend({
            scope: rule.scope,
            id: rule.id,
            from_day: periodStart(rule.period, now),
            through_id: seen
          })
          spent.set(counter, total)
        }
        return verdict(rules, identity, (rule) => spent.get(counterOf(rule, now)) ?? 0)
      }).pipe(lock.withPermits(1), Effect.mapError(HarnessError.ledgerUnavailable))

    // Written behind the answer; counted by the next check's catch-up, like any other process's rows.
    const record = (entry: LedgerEntry) => ledger.record(entry)

    const bearer = (authorization: string | undefined) => authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1]

    /** A key found (or not), counted against its rate limit at `now`. */
    const counted = (found: Option.Option<KeyRecord>, now: number): Either.Either<KeyRecord, HarnessError> => {
      if (Option.isNone(found)) return Either.left(HarnessError.wrongKey())
      const limit = found.value.requests_per_minute ?? config.requests_per_minute
      const retryAfter = limiter.consume(found.value.id, limit, now)
      return retryAfter === undefined ? Either.right(found.value) : Either.left(HarnessError.rateLimited(retryAfter, limit))
    }

    const authenticateNow = (authorization: string | undefined, now: number) => {
      const key = bearer(authorization)
      if (key === undefined) return Either.left(HarnessError.missingKey())
      const found = Option.isSome(cache) ? cache.value.known(key, now) : undefined
      return found === undefined ? undefined : counted(found, now)
    }

    const authenticate = (authorization: string | undefined): Effect.Effect<KeyRecord, HarnessError> =>
      Effect.suspend(() => {
        const known = authenticateNow(authorization, clock.unsafeCurrentTimeMillis())
        if (known !== undefined) return known
        return store.authenticate(bearer(authorization)!).pipe(
          Effect.mapError(HarnessError.ledgerUnavailable),
          Effect.flatMap((found) => counted(found, clock.unsafeCurrentTimeMillis()))
        )
      })

    const models = (key: KeyRecord) => {
      const policy = effectivePolicy(config.policy, identityOf(key))
      const usable = (id: string) => policy.forced_model === id || refusalOf(policy, config.tiers, id) === null
      return ["auto", ...config.models.map((m) => m.id).filter(usable)]
    }

    /** Whether `request` names a model this harness knows: `auto`, `auto:<tier>`, or one in its catalog. */
    const knownModel = (request: Admissible) => request.model === "auto" || tierAsked(request.model) !== undefined || catalog.has(request.model)

    /**
     * What the gate decides once the key, the ledger, the model and the budget are checked: the request let
     * through, or refused with its row. No Effect: the fast path takes it as it is.
     */
    const decide = (
      key: KeyRecord,
      request: Admissible,
      startedAt: number,
      budget: BudgetVerdict,
      facts: RequestLog.Facts | undefined,
      /** The request's `x-autopilot-route`, and the active routes it may match (PromotedRoutes). */
      routeHeader: string | undefined,
      routes: ReadonlyArray<ModelRoute.ModelRoute>
    ): Either.Either<Admission, Effect.Effect<never, HarnessError>> => {
      const asked = tierAsked(request.model)
      const identity = identityOf(key)
      const now = new Date(startedAt)
      const classification = asked === undefined
        ? classify(request, config.classification)
        : { tier: asked, confidence: 1 }
      const streaming = request.stream === true
      const entryAt = (fields: Fields, end: number): LedgerEntry => ({
        at: now.toISOString(),
        key_id: key.id,
        user: key.user,
        team: key.team,
        project: key.project,
        model_requested: request.model,
        model_used: null,
        tier: classification.tier,
        confidence: classification.confidence,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0,
        latency_ms: end - startedAt,
        stream: streaming,
        policy_action: null,
        budget_action: budget.action === "none" ? null : `${budget.action}: ${budget.message}`,
        error: null,
        ...fields
      })
      // The log line of a logged server tells what the ledger row says; the row of a stream is written at its
      // end, after the request's own fiber is gone, so the request's facts are taken at admission.
      const rowOf = (fields: Fields) => {
        const row = entryAt(fields, clock.unsafeCurrentTimeMillis())
        if (facts !== undefined) facts.entry = row
        return row
      }
      const recorded = (fields: Fields) => Effect.suspend(() => record(rowOf(fields)))
      const refuse = (error: HarnessError, fields: Partial<LedgerEntry> = {}) =>
        Effect.zipRight(recorded({ status: error.status, error: error.message, ...fields }), Effect.fail(error))

      if (budget.action === "stop") return Either.left(refuse(HarnessError.budgetSpent(budget.message!)))
      const policy = effectivePolicy(config.policy, identity)
      const routed = route({
        policy,
        tiers: config.tiers,
        tier: classification.tier,
        requested: asked === undefined ? request.model : "auto",
        downgrade: budget.action === "downgrade"
      })
      if (Either.isLeft(routed)) return Either.left(refuse(HarnessError.refused(routed.left.message)))
      const promoted = promotedFor(routeHeader, routes)
      const chosen = Option.isNone(promoted)
        ? { route: routed.right, served: Option.none<PromotedRoutes.Served>() }
        : PromotedRoutes.apply({ routed: routed.right, promoted: promoted.value, served: servedOf(promoted.value), policy, tiers: config.tiers })
      const { model, notes, tier, via } = chosen.route
      const target = Option.isSome(chosen.served) ? chosen.served.value.entry : catalog.get(model)!
      const rate = Option.isSome(chosen.served) ? chosen.served.value.price : prices.get(model)!
      const action = via === "promoted" && Option.isSome(promoted)
        ? `routed by promotion ${promoted.value.id} (${promoted.value.scope})`
        : `routed by ${via}`
      const decided = {
        model_used: model,
        tier,
        policy_action: [action, ...notes].join("; ")
      } satisfies Partial<LedgerEntry>
      const headers = {
        "x-autopilot-model": headerSafe(model),
        "x-autopilot-tier": tier,
        "x-autopilot-confidence": classification.confidence.toFixed(2),
        ...(budget.action === "none" ? {} : { "x-autopilot-budget": headerSafe(`${budget.action}: ${budget.message}`) })
      }
      const price = (usage: OpenAiCompat.Usage) => ({
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.completion_tokens,
        cost_usd: costOf(rate, { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens })
      })
      // An upstream that never said what a call used (no usage, a stream cut short, a client gone) was
      // still asked, and most bill all the same: about four characters a token stands in, so budgets see it.
      const estimated = (outputChars: number, why: string) => ({
        ...price({ prompt_tokens: Math.ceil(JSON.stringify(request.messages).length / 4), completion_tokens: Math.ceil(outputChars / 4) }),
        error: `${why}; tokens estimated from characters`
      })
      /** An answer's row and the response relaying it. */
      const answered = (answer: PlainAnswer) => {
        if (Option.isNone(answer.usage)) {
          // The client is not told a made-up cost; only the ledger, which budgets read, carries the estimate.
          return {
            fields: { status: 200, ...decided, ...estimated(answer.outputChars(), "upstream reported no usage") },
            response: HttpServerResponse.unsafeJson(answer.body, { headers })
          }
        }
        const cost = price(answer.usage.value)
        return {
          fields: { status: 200, ...decided, ...cost },
          response: HttpServerResponse.unsafeJson(answer.withCost(cost.cost_usd), {
            headers: { ...headers, "x-autopilot-cost-usd": String(cost.cost_usd) }
          })
        }
      }
      const answerNow = (answer: PlainAnswer) => {
        const { fields, response } = answered(answer)
        const failed = ledger.recordNow(rowOf(fields))
        return failed === undefined ? response : toResponse(failed)
      }
      const recordAnswer = (call: Effect.Effect<Either.Either<PlainAnswer, Upstreams.NotACompletion>, HarnessError>) => {
        // A client that goes away interrupts this fiber; the upstream was asked all the same, so the request
        // still gets its row (status 499, as proxies log a client that closed), and an answer once in is recorded.
        const abandoned = Effect.suspend(() => recorded({ status: 499, ...decided, ...estimated(0, "the client went away before the answer") })).pipe(
          Effect.catchAll((error) => Effect.logError(`an abandoned request went unrecorded: ${error.message}`))
        )
        return Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const outcome = yield* restore(call).pipe(
              Effect.onInterrupt(() => abandoned),
              Effect.catchAll((error) => refuse(error, decided))
            )
            if (Either.isLeft(outcome)) {
              // Not an answer the client can use, so not one it pays for by estimate: a proxy's page ran no
              // model. Only usage the body itself reports, if any, is charged, as the upstream will bill it.
              return yield* refuse(outcome.left.error, {
                ...decided,
                ...Option.match(outcome.left.usage, { onNone: () => ({}), onSome: price })
              })
            }
            const { fields, response } = answered(outcome.right)
            yield* recorded(fields)
            return response
          })
        )
      }
      return Either.right({ target, streaming, decided, headers, recorded, refuse, price, estimated, recordAnswer, answerNow })
    }

    const admit = (key: KeyRecord, request: Admissible, startedAt: number, routeHeader: string | undefined) =>
      Effect.gen(function*() {
        yield* ledger.ready
        if (!knownModel(request)) return yield* HarnessError.unknownModel(request.model, models(key))
        const budget = yield* budgetFor(identityOf(key), new Date(startedAt))
        // Only a request that names a route waits for a read of them, and only when the copy is out of date.
        const routes = routeHeader === undefined ? [] : yield* promotions.fresh
        const decision = decide(key, request, startedAt, budget, yield* FiberRef.get(RequestLog.current), routeHeader, routes)
        return Either.isRight(decision) ? decision.right : yield* decision.left
      })

    const admitNow = (
      key: KeyRecord,
      request: ChatRequest,
      startedAt: number,
      facts: RequestLog.Facts | undefined,
      routeHeader: string | undefined
    ) => {
      if (request.stream === true || config.budgets.length > 0 || !ledger.isReady() || !knownModel(request)) return undefined
      // Routes out of date are read again on the Effect path.
      const routes = routeHeader === undefined ? [] : promotions.current(startedAt)
      if (routes === undefined) return undefined
      return Either.getOrUndefined(decide(key, request, startedAt, verdict([], identityOf(key), () => 0), facts, routeHeader, routes))
    }

    /** The client's body as the routed model's upstream gets it. */
    const forwardedBody = ({ target }: Admission, body: unknown) => ({ ...(body as object), model: target.upstream_model ?? target.id })

    const plainAnswer = ({ body: answer, completion }: Upstreams.Completion): PlainAnswer => {
      const usage = OpenAiCompat.usageOf(completion.usage)
      return {
        body: answer,
        usage,
        outputChars: () => completion.choices.map((c) => JSON.stringify(c.message)).join("").length,
        withCost: (cost_usd) => Object.assign({}, answer, { usage: { ...Option.getOrThrow(usage), cost_usd } })
      }
    }

    const completeNow = (
      admission: Admission,
      body: unknown,
      done: (outcome: Either.Either<Either.Either<PlainAnswer, Upstreams.NotACompletion>, HarnessError>) => void
    ) => upstreams.completeNow(admission.target, forwardedBody(admission, body), (outcome) => done(Either.map(outcome, Either.map(plainAnswer))))

    const forwardChat = (admission: Admission, request: ChatRequest, body: unknown) =>
      Effect.gen(function*() {
        const { decided, estimated, headers, price, recordAnswer, recorded, refuse, streaming, target } = admission
        const forwarded = forwardedBody(admission, body)

        if (!streaming) return yield* recordAnswer(Effect.map(upstreams.complete(target, forwarded), Either.map(plainAnswer)))

        const wantsUsage = request.stream_options?.include_usage === true
        const chunks = yield* upstreams.stream(target, {
          ...forwarded,
          stream: true,
          stream_options: { ...request.stream_options, include_usage: true }
        }).pipe(Effect.catchAll((error) => refuse(error, decided)))
        // What the stream said, for the ledger row written when it ends, however it ends.
        let cost: ReturnType<typeof price> | undefined
        let failed: string | null = null
        let finished = false
        let streamedChars = 0
        const body$ = chunks.pipe(
          Stream.mapConcat(({ chunk, raw }) => {
            for (const choice of chunk.choices) {
              streamedChars += (choice.delta?.content?.length ?? 0) +
                (choice.delta?.tool_calls ?? []).reduce((n, call) => n + (call.function?.arguments?.length ?? 0), 0)
              if (choice.finish_reason) finished = true
            }
            const usage = chunk.usage == null ? undefined : Option.getOrUndefined(OpenAiCompat.usageOf(chunk.usage))
            if (usage !== undefined) cost = price(usage)
            // Usage rides on a chunk of its own with no choices; a client that did not ask for it gets none.
            if (chunk.usage != null && chunk.choices.length === 0 && !wantsUsage) return []
            // Every chunk but the one priced goes on as the upstream's bytes.
            return [usage === undefined ? raw : sse({ ...chunk, usage: { ...usage, cost_usd: cost!.cost_usd } })]
          }),
          Stream.concat(Stream.sync(() => done)),
          Stream.catchAll((error) => {
            failed = error.message
            return Stream.make(sse({ error: { message: error.message, type: error.type, param: null, code: error.code } }))
          }),
          Stream.ensuring(Effect.suspend(() =>
            recorded({
              status: 200,
              ...decided,
              ...(cost ?? estimated(streamedChars, failed ?? (finished ? "upstream reported no usage" : "the stream ended early"))),
              ...(failed !== null && cost !== undefined ? { error: failed } : {})
            }).pipe(Effect.catchAll((error) => Effect.logError(`a streamed answer went unrecorded: ${error.message}`)))
          ))
        )
        return HttpServerResponse.stream(body$, {
          contentType: "text/event-stream",
          headers: { ...headers, "cache-control": "no-cache" }
        })
      })

    const chat = (key: KeyRecord, body: unknown, routeHeader?: string | undefined) =>
      Effect.gen(function*() {
        const startedAt = yield* Clock.currentTimeMillis
        const request = yield* validate(body)
        return yield* forwardChat(yield* admit(key, request, startedAt, routeHeader), request, body)
      })

    // Earlier translated answers' items, for requests that name them by id (item_reference).
    const items = ResponseItems.make()
    const responses = (key: KeyRecord, body: unknown, routeHeader?: string | undefined) =>
      Effect.gen(function*() {
        const startedAt = yield* Clock.currentTimeMillis
        const request = yield* Responses.validate(body)
        const asked = { ...Responses.classifiable(request, items), model: request.model, stream: request.stream }
        const admission = yield* admit(key, asked, startedAt, routeHeader)
        const upstream = admission.target.upstream
        if (config.upstreams[upstream]!.responses === "native") return yield* ResponsesRelay.relay(upstreams, admission, body as object)
        // Put to the upstream as chat, through the chat forward itself: priced and recorded as chat is.
        const translated = yield* Responses.toChat(body, { upstream, items })
        const echo = {
          request: translated.request,
          model: admission.target.id,
          id: ResponsesAnswer.newId("resp"),
          created_at: Math.floor(startedAt / 1000)
        }
        const answer = yield* forwardChat(admission, yield* validate(translated.chat), translated.chat)
        return yield* ResponsesAnswer.fromChat(echo, items)(answer)
      })

    return {
      config,
      authenticate,
      chat,
      responses,
      models,
      unsafe: { authenticate: authenticateNow, admit: admitNow, complete: completeNow }
    } satisfies Gateway["Type"]
  })

export const layer = (
  config: HarnessConfig
): Layer.Layer<Gateway, BadInput, HarnessStore | LedgerWriter.LedgerWriter | PromotedRoutes.PromotedRoutes> => Layer.scoped(Gateway, make(config))

/**
 * The store the gateway and the admin routes use: key lookups cached for at most a second (KeyCache),
 * ledger rows written behind the answers in batches (LedgerWriter), reads seeing every row queued before them.
 */
const storeLayer = (config: HarnessConfig) => {
  const writer = LedgerWriter.layer({ within: Duration.millis(config.ledger_batch_ms) }).pipe(Layer.provide(HarnessStore.layer))
  const store = KeyCache.layer.pipe(Layer.provide(LedgerWriter.readsAfterWrites), Layer.provide(Layer.merge(HarnessStore.layer, writer)))
  return Layer.merge(store, writer)
}

/** The gateway, the ledger it writes and the promoted routes it follows, on an open database. */
export const layerWithStore = (config: HarnessConfig): Layer.Layer<Gateway | HarnessStore, BadInput, SqlClient.SqlClient> =>
  layer(config).pipe(Layer.provide(PromotedRoutes.layer), Layer.provideMerge(storeLayer(config)))
