import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"
import type { LlmError } from "../domain/Errors.js"
import type { Tier } from "../domain/Tier.js"

/** A tool call as an assistant message carries it on the wire (OpenAI's chat shape): arguments as JSON text. */
export const ChatToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
export type ChatToolCall = typeof ChatToolCall.Type

/**
 * One message of a conversation, in OpenAI's chat shape: an assistant turn may carry the tool calls it made,
 * and a `tool` message answers one of them by `tool_call_id`. Both fields are absent on older records.
 */
export const ChatMessage = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.String,
  tool_calls: Schema.optionalWith(Schema.Array(ChatToolCall), { exact: true }),
  tool_call_id: Schema.optionalWith(Schema.String, { exact: true })
})
export type ChatMessage = typeof ChatMessage.Type

/** A tool as the model sees it: name, description and a JSON Schema for the arguments. */
export interface ToolSpec {
  readonly name: string
  readonly description: string
  readonly parameters: object
}

export interface ToolCallRequest {
  readonly id: string
  readonly name: string
  readonly arguments: unknown
}

/** Token counts as the provider reported them. */
export interface LlmUsage {
  readonly input_tokens: number
  readonly output_tokens: number
}

export interface LlmRequest {
  readonly messages: ReadonlyArray<ChatMessage>
  readonly tools: ReadonlyArray<ToolSpec>
  /**
   * Why the runtime calls: `act` asks for the next step of work, `judge` for a JSON verdict on the
   * criteria; later parts add their own (a critic, graph nodes, routing). Layers may route on it.
   */
  readonly purpose: string
  readonly model?: string | undefined
  /**
   * The model tier the run asks for (its specialist's), for a Layer that routes by tier: the harness does
   * when no model is named; the others leave the choice to `model` and their own default.
   */
  readonly tier?: Tier | undefined
  /** An upper bound the runtime derives from the remaining token budget. */
  readonly maxOutputTokens?: number | undefined
  /** Sampling temperature from 0 to 2; the provider's default when absent. Healing lowers it. */
  readonly temperature?: number | undefined
  /**
   * A JSON Schema the answer must match (a mission node's `output_schema`): sent as structured output
   * where the provider supports it (OpenAI's `response_format` of type `json_schema`); the mock answers
   * with an instance of it. The runtime checks the answer against it either way.
   */
  readonly output_schema?: OutputSchema | undefined
  /**
   * Passed through to providers that record it (run id, iteration, number of criteria, and for a mission
   * node's calls, the node's id).
   */
  readonly metadata: {
    readonly run_id: string
    readonly iteration: number
    readonly criteria: number
    readonly node?: string | undefined
    /** The blueprint of a mission node's calls, and the specialist of a run's: what a promoted route matches. */
    readonly blueprint?: string | undefined
    readonly specialist?: string | undefined
  }
}

/** A named JSON Schema, as structured output asks for one. */
export interface OutputSchema {
  readonly name: string
  readonly schema: Readonly<Record<string, unknown>>
}

export interface LlmResponse {
  readonly content: string
  readonly tool_calls: ReadonlyArray<ToolCallRequest>
  readonly usage: LlmUsage
  /** The model that actually answered, which a router may have chosen. */
  readonly model: string
  /** A cost the provider computed itself; when absent the runtime prices the usage. */
  readonly cost_usd?: number | undefined
}

export type LlmChunk =
  | { readonly _tag: "Delta"; readonly text: string }
  | { readonly _tag: "Done"; readonly response: LlmResponse }

/** A chat model. Layers: `MockLlm.layer` here; the OpenAI-compatible and harness Layers plug in the same way. */
export class Llm extends Context.Tag("autopilot/Llm")<
  Llm,
  {
    readonly complete: (request: LlmRequest) => Effect.Effect<LlmResponse, LlmError>
    /** Text as it is produced, ending with exactly one `Done` chunk carrying the whole response. */
    readonly stream: (request: LlmRequest) => Stream.Stream<LlmChunk, LlmError>
  }
>() {}
