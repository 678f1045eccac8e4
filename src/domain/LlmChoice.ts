import { Effect, Schema } from "effect"
import { BadInput } from "./Errors.js"

/**
 * Which model Layer a run uses: the embedded mock (with its script, if any), any OpenAI-compatible
 * server, or the harness. Endpoints and keys come from the environment, never from here.
 */
export const LlmChoice = Schema.Struct({
  provider: Schema.Literal("mock", "openai", "harness"),
  /** The model name passed to the provider; the provider's default when absent. */
  model: Schema.optionalWith(Schema.String, { exact: true }),
  /** The mock's script file. */
  mock_script: Schema.optionalWith(Schema.String, { exact: true })
})
export type LlmChoice = typeof LlmChoice.Type

export const mock: LlmChoice = { provider: "mock" }

/** What a caller asks for; whatever it leaves out comes from the run's own choice, or the mock. */
export interface LlmRequested {
  readonly provider?: LlmChoice["provider"] | undefined
  readonly model?: string | undefined
  readonly mock_script?: string | undefined
}

/**
 * The choice a session runs on. Naming a provider starts afresh; otherwise a resumed run keeps the one
 * it was started with, so a resume never silently swaps the model, and a new run gets the mock.
 */
export const resolve = (recorded: LlmChoice | undefined, requested: LlmRequested): Effect.Effect<LlmChoice, BadInput> => {
  const base: LlmChoice = requested.provider !== undefined ? { provider: requested.provider } : recorded ?? mock
  const choice: LlmChoice = {
    provider: base.provider,
    ...withDefined("model", requested.model ?? (requested.provider === undefined ? base.model : undefined)),
    ...withDefined("mock_script", requested.mock_script ?? (requested.provider === undefined ? base.mock_script : undefined))
  }
  return requested.mock_script !== undefined && choice.provider !== "mock"
    ? Effect.fail(new BadInput({ message: `--mock-script is for the mock model, but this run uses --llm ${choice.provider}` }))
    : Effect.succeed(choice)
}

const withDefined = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value } as { [k in K]: V })

/** How `show` names it: `openai gpt-4o`, `mock (script /path/turns.json)`. */
export const describe = (choice: LlmChoice) =>
  [choice.provider, choice.model, choice.mock_script === undefined ? undefined : `(script ${choice.mock_script})`]
    .filter((part) => part !== undefined).join(" ")

