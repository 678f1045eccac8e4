import { Effect, Option, Ref, Stream } from "effect"
import type { LlmError } from "../domain/Errors.js"
import type { HealingPolicy } from "../domain/Healing.js"
import type { Llm, LlmRequest, OutputSchema } from "../llm/Llm.js"
import type { Breaker } from "./Breaker.js"
import { classify, NodeFailure } from "./Healing.js"

/**
 * The model a mission node attempt's child run talks to: the mission's `Llm` with the attempt's
 * parameters applied (healing's temperature, fallback model, output schema) and each call sent to the
 * primary provider or the fallback, as the attempt and the mission's circuit breaker say. The runtime
 * loop is untouched: the driver provides `llm` as the child run's `Llm`.
 */

/** A provider as the mission holds it. Its `name` is the breaker's key, so two providers need two names. */
export interface Provider {
  readonly name: string
  readonly llm: Llm["Type"]
  /**
   * The model asked of this provider in place of the request's: a fallback provider seldom serves the
   * primary's model names. Absent, requests keep theirs.
   */
  readonly model?: string | undefined
}

/** What a mission's node attempts share. */
export interface Providers {
  readonly primary: Provider
  readonly fallback: Option.Option<Provider>
  readonly breaker: Breaker
  readonly policy: HealingPolicy
}

/** One node attempt's model parameters; absent ones leave the request as the runtime made it. */
export interface AttemptParameters {
  readonly node: string
  /** The mission's blueprint, sent with the node's calls so a promoted route for it (or its node) applies. */
  readonly blueprint?: string | undefined
  readonly temperature?: number | undefined
  readonly model?: string | undefined
  readonly output_schema?: OutputSchema | undefined
  /** `fallback` once healing moved the node to the fallback provider (the primary when there is none). */
  readonly provider: "primary" | "fallback"
}

export interface NodeLlm {
  readonly llm: Llm["Type"]
  /** The error of the attempt's latest failed call, even if a retry then succeeded; None if none failed. */
  readonly lastError: Effect.Effect<Option.Option<LlmError>>
  /** The provider that answered the attempt's latest successful call; None before one did. */
  readonly providerUsed: Effect.Effect<Option.Option<string>>
}

/** The first attempt of a node: the request as the runtime made it, on the primary provider. */
export const first = (node: string, output_schema?: OutputSchema): AttemptParameters => ({
  node,
  provider: "primary",
  ...(output_schema === undefined ? {} : { output_schema })
})

/**
 * Per call: the fallback when the attempt asks for it or the primary's breaker is open, if there is a
 * fallback; else the primary. A failed call is classified as healing would classify it and counted on
 * the breaker of the provider that failed; so while the runtime retries a transient failure, the retry
 * after the one that opens the primary's breaker already goes to the fallback.
 */
export const make = (providers: Providers) => (attempt: AttemptParameters): Effect.Effect<NodeLlm> =>
  Effect.gen(function*() {
    const { breaker, fallback, policy, primary } = providers
    const lastError = yield* Ref.make(Option.none<LlmError>())
    const providerUsed = yield* Ref.make(Option.none<string>())

    const choose = Option.match(fallback, {
      onNone: () => Effect.succeed(primary),
      onSome: (fallback) =>
        attempt.provider === "fallback"
          ? Effect.succeed(fallback)
          : Effect.map(breaker.isOpen(primary.name), (open) => open ? fallback : primary)
    })

    // Only `act` does the node's work; the judge and the critic keep their own settings.
    const requestFor = (provider: Provider, request: LlmRequest): LlmRequest => {
      const act = request.purpose === "act"
      return {
        ...request,
        ...(act && attempt.temperature !== undefined ? { temperature: attempt.temperature } : {}),
        ...(act && attempt.output_schema !== undefined ? { output_schema: attempt.output_schema } : {}),
        model: provider.model ?? (act ? attempt.model : undefined) ?? request.model,
        metadata: { ...request.metadata, node: attempt.node, ...(attempt.blueprint === undefined ? {} : { blueprint: attempt.blueprint }) }
      }
    }

    const failed = (provider: Provider) => (error: LlmError) =>
      Effect.zipRight(
        Ref.set(lastError, Option.some(error)),
        Option.match(Option.fromNullable(classify(NodeFailure.ModelFailed({ node: attempt.node, error }), policy)), {
          onNone: () => Effect.void,
          onSome: (failureClass) => breaker.failure(provider.name, failureClass)
        })
      )
    const answered = (provider: Provider) => Ref.set(providerUsed, Option.some(provider.name))

    const llm: Llm["Type"] = {
      complete: (request) =>
        Effect.flatMap(choose, (provider) =>
          provider.llm.complete(requestFor(provider, request)).pipe(
            Effect.tapBoth({ onFailure: failed(provider), onSuccess: () => answered(provider) })
          )),
      stream: (request) =>
        Stream.unwrap(Effect.map(choose, (provider) =>
          provider.llm.stream(requestFor(provider, request)).pipe(
            Stream.tap((chunk) => chunk._tag === "Done" ? answered(provider) : Effect.void),
            Stream.tapError(failed(provider))
          )))
    }

    return { llm, lastError: Ref.get(lastError), providerUsed: Ref.get(providerUsed) }
  })
