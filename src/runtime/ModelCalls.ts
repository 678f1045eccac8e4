import { Duration, Effect, Option, Ref, Schedule, Stream } from "effect"
import type { Budget } from "../budget/Budget.js"
import * as Pricing from "../budget/Pricing.js"
import { LlmError, type PersistenceError } from "../domain/Errors.js"
import type { ModelCall } from "../domain/Step.js"
import type { Tier } from "../domain/Tier.js"
import { Llm, type LlmRequest, type LlmResponse } from "../llm/Llm.js"
import type { Journal } from "./Journal.js"

/** What a caller asks; the run fills in the model, the token bound and the metadata. */
export type ModelRequest = Omit<LlmRequest, "metadata" | "model" | "tier" | "maxOutputTokens">

/** Text of a model's answer as it is generated: shown live, never stored. */
export interface Delta {
  readonly iteration: number
  readonly purpose: string
  readonly text: string
}

export interface ModelCalls {
  /**
   * One model call, retried while transient, priced and charged to the run; with its telemetry. With
   * `live`, the answer is streamed to the run's delta consumer as it is generated.
   */
  readonly call: (
    request: ModelRequest,
    iteration: number,
    options?: { readonly live?: boolean }
  ) => Effect.Effect<{ readonly response: LlmResponse; readonly call: ModelCall }, LlmError | PersistenceError>
  /** The calls charged since the last `stepped`: those of the iteration in flight, in no step yet. */
  readonly unstepped: Effect.Effect<ReadonlyArray<ModelCall>>
  /** The iteration's step was written: its calls are itemized there. */
  readonly stepped: Effect.Effect<void>
}

/**
 * Transient model failures are retried with backoff on the Effect Clock, five attempts in all, each
 * waiting at least as long as the provider asked (Retry-After). Routing's own calls (slots, synthesis) use
 * the same schedule.
 */
export const maxAttempts = 5
/** The first wait; each next one doubles (mission healing continues the same doubling past these calls). */
export const backoffBase = Duration.millis(250)
export const retrySchedule = Schedule.exponential(backoffBase).pipe(
  Schedule.intersect(Schedule.recurs(maxAttempts - 1)),
  Schedule.intersect(Schedule.identity<LlmError | PersistenceError>()),
  Schedule.modifyDelay(([, error], backoff) =>
    error._tag === "LlmError" && error.retry_after_ms !== undefined
      ? Duration.max(backoff, Duration.millis(error.retry_after_ms))
      : backoff)
)

export const make = (options: {
  readonly runId: string
  readonly criteria: number
  readonly model: string | undefined
  /** The run's model tier, passed on with every request (see `LlmRequest.tier`). */
  readonly tier?: Tier | undefined
  /** The run's specialist, passed on in every request's metadata (a promoted route may be for it). */
  readonly specialist?: string | undefined
  readonly budget: Budget
  readonly journal: Journal
  /** Receives the text of live calls as it is generated; without it every call is a plain completion. */
  readonly onDelta?: ((delta: Delta) => Effect.Effect<void>) | undefined
}): Effect.Effect<ModelCalls, never, Llm> =>
  Effect.gen(function*() {
    const llm = yield* Llm
    const { budget, journal } = options
    // A model missing from the pricing table is reported once per session, not silently priced at $0.
    const unpriced = new Set<string>()
    const pending = yield* Ref.make<ReadonlyArray<ModelCall>>([])

    const streamed = (request: LlmRequest, onDelta: (delta: Delta) => Effect.Effect<void>) =>
      llm.stream(request).pipe(
        Stream.runFoldEffect(Option.none<LlmResponse>(), (done, chunk) =>
          chunk._tag === "Done"
            ? Effect.succeed(Option.some(chunk.response))
            : Effect.as(onDelta({ iteration: request.metadata.iteration, purpose: request.purpose, text: chunk.text }), done)),
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(new LlmError({ message: "the model's stream ended without its response", transient: true })),
          onSome: Effect.succeed
        }))
      )

    const call = (request: ModelRequest, iteration: number, how?: { readonly live?: boolean }) =>
      Effect.gen(function*() {
        const attempts = yield* Ref.make(0)
        const remaining = yield* budget.remaining
        const full: LlmRequest = {
          ...request,
          model: options.model,
          ...(options.tier === undefined ? {} : { tier: options.tier }),
          maxOutputTokens: remaining.tokens ?? undefined,
          metadata: { run_id: options.runId, iteration, criteria: options.criteria, ...(options.specialist === undefined ? {} : { specialist: options.specialist }) }
        }
        const onDelta = how?.live === true ? options.onDelta : undefined
        const [latency, response] = yield* (onDelta === undefined ? llm.complete(full) : streamed(full, onDelta)).pipe(
          Effect.timed,
          Effect.tapError((error) =>
            Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (attempt) =>
              error.transient && attempt < maxAttempts
                ? journal.emitNow({ kind: "model_retry", iteration, attempt, error: error.message })
                : Effect.void)
          ),
          Effect.retry({ schedule: retrySchedule, while: (error) => error._tag === "LlmError" && error.transient })
        )
        const price = Pricing.priceOf(response.model)
        if (response.cost_usd === undefined && Option.isNone(price) && !unpriced.has(response.model)) {
          unpriced.add(response.model)
          yield* journal.emitNow({ kind: "model_unpriced", model: response.model })
        }
        const cost = response.cost_usd ?? Option.match(price, { onNone: () => 0, onSome: (p) => Pricing.costOf(p, response.usage) })
        yield* budget.charge({ tokens: response.usage.input_tokens + response.usage.output_tokens, dollars: cost })
        const call: ModelCall = {
          purpose: request.purpose,
          model_used: response.model,
          input_tokens: response.usage.input_tokens,
          output_tokens: response.usage.output_tokens,
          cost_usd: cost,
          latency_ms: Duration.toMillis(latency),
          attempts: (yield* Ref.get(attempts)) + 1
        }
        yield* Ref.update(pending, (calls) => [...calls, call])
        return { response, call }
      })

    return { call, unstepped: Ref.get(pending), stepped: Ref.set(pending, []) }
  })
