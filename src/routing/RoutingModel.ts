import { Effect } from "effect"
import type { LlmError } from "../domain/Errors.js"
import type { Tier } from "../domain/Tier.js"
import { type ChatMessage, Llm, type LlmResponse } from "../llm/Llm.js"
import { retrySchedule } from "../runtime/ModelCalls.js"

/** Stands in for a run id in the requests routing makes: they come before any mission or run exists. */
export const routingRunId = "routing"

/**
 * One model call made while turning a goal into a mission (filling slots, writing a blueprint): retried
 * while transient on the runtime's own schedule. No run exists yet, so no budget is charged; a layer that
 * routes by tier (the harness) is told which one the call wants.
 */
export const ask = (request: {
  readonly purpose: string
  readonly messages: ReadonlyArray<ChatMessage>
  readonly tier: Tier
}): Effect.Effect<LlmResponse, LlmError, Llm> =>
  Effect.flatMap(Llm, (llm) =>
    llm.complete({
      purpose: request.purpose,
      messages: request.messages,
      tools: [],
      tier: request.tier,
      metadata: { run_id: routingRunId, iteration: 0, criteria: 0 }
    }).pipe(Effect.retry({ schedule: retrySchedule, while: (error) => error.transient })))
