import { Option } from "effect"
import { roundDollars } from "../domain/Quantity.js"

/** US dollars per million tokens; `model` is the table key the requested id resolved to. */
export interface Price {
  readonly model: string
  readonly input_per_mtok: number
  readonly output_per_mtok: number
}

// Public list prices as of 2025, from each provider's pricing page: standard tier, no batch or cache
// discounts, and the short-prompt tier where long prompts cost more (Claude Sonnet 4/4.5 and Gemini 2.5 Pro
// above 200K input tokens). Dated and suffixed ids reach these rows by longest prefix, so a variant priced
// unlike its base (o3-pro against o3, opus 4.5 against opus 4) needs a row of its own.
const table: ReadonlyArray<readonly [model: string, input: number, output: number]> = [
  ["gpt-4o", 2.5, 10],
  ["gpt-4o-mini", 0.15, 0.6],
  ["gpt-4.1", 2, 8],
  ["gpt-4.1-mini", 0.4, 1.6],
  ["gpt-4.1-nano", 0.1, 0.4],
  ["o3", 2, 8],
  ["o3-pro", 20, 80],
  ["o3-mini", 1.1, 4.4],
  ["o4-mini", 1.1, 4.4],
  ["claude-opus-4", 15, 75],
  ["claude-opus-4-1", 15, 75],
  ["claude-opus-4-5", 5, 25],
  ["claude-sonnet-4", 3, 15],
  ["claude-sonnet-4-5", 3, 15],
  ["claude-haiku-4-5", 1, 5],
  ["claude-3-7-sonnet", 3, 15],
  ["claude-3-5-haiku", 0.8, 4],
  ["gemini-2.0-flash", 0.1, 0.4],
  ["gemini-2.0-flash-lite", 0.075, 0.3],
  ["gemini-2.5-pro", 1.25, 10],
  ["gemini-2.5-flash", 0.3, 2.5],
  ["gemini-2.5-flash-lite", 0.1, 0.4],
  // Meta sells no API of its own; Together AI's serverless price stands in for the hosts.
  ["llama-4-scout", 0.18, 0.59],
  ["llama-4-maverick", 0.27, 0.85]
]

// A Map, not an object literal, so "constructor" or "__proto__" can never resolve to a price.
const prices: ReadonlyMap<string, Price> = new Map(
  table.map(([model, input, output]) => [model, { model, input_per_mtok: input, output_per_mtok: output }])
)

const longestFirst = [...prices.values()].sort((a, b) => b.model.length - a.model.length)

export const knownModels: ReadonlyArray<string> = table.map(([model]) => model)

// Router paths (openrouter/openai/…, groq/meta-llama/…) and Bedrock's vendor and region prefixes
// (us.anthropic.…) name where the model is hosted, not which model it is.
const vendorPrefix = /^(?:(?:us|eu|apac|global|anthropic|meta|amazon|mistral)\.)+/

const canonical = (id: string): string => {
  const name = id.slice(id.lastIndexOf("/") + 1).replace(vendorPrefix, "")
  // OpenRouter writes Claude versions with dots (claude-3.7-sonnet); Bedrock and Fireworks write llama4-….
  return name.startsWith("claude-")
    ? name.replace(/(\d)\.(\d)/g, "$1-$2")
    : name.replace(/^llama-?4(?=-)/, "llama-4")
}

// A key only matches whole name parts, so a future "gpt-5" row could not swallow "gpt-5o".
export const isStemOf = (name: string, key: string): boolean =>
  name.startsWith(key) && !/[a-z0-9]/.test(name.charAt(key.length))

// OpenAI bills a fine-tuned model (`ft:<base>:<org>:<suffix>:<id>`) at its own inference price, per base
// model, from its pricing page (2025): dearer per token than the base, which is why a fine-tune only pays
// when it stands in for a bigger model.
const fineTuned: ReadonlyArray<readonly [base: string, input: number, output: number]> = [
  ["gpt-4o", 3.75, 15],
  ["gpt-4o-mini", 0.3, 1.2],
  ["gpt-4.1", 3, 12],
  ["gpt-4.1-mini", 0.8, 3.2],
  ["gpt-4.1-nano", 0.2, 0.8]
]
const fineTunedLongestFirst: ReadonlyArray<Price> = fineTuned
  .map(([base, input, output]) => ({ model: `ft:${base}`, input_per_mtok: input, output_per_mtok: output }))
  .sort((a, b) => b.model.length - a.model.length)

/**
 * Resolves an id as written by any provider or router: a fine-tuned model by its base, else the exact id,
 * then the id without its host prefixes, then the longest key it extends. Unknown models are `None`,
 * never a silent $0.
 */
export const priceOf = (model: string): Option.Option<Price> => {
  const id = model.toLowerCase()
  if (id.startsWith("ft:")) {
    const base = id.slice(3).split(":")[0]!
    return Option.fromNullable(fineTunedLongestFirst.find((price) => isStemOf(base, price.model.slice(3))))
  }
  const name = canonical(id)
  return Option.fromNullable(prices.get(id)).pipe(
    Option.orElse(() => Option.fromNullable(prices.get(name))),
    Option.orElse(() => Option.fromNullable(longestFirst.find((price) => isStemOf(name, price.model))))
  )
}

/** Dollars for one call's usage, without float noise, so what is stored and shown is what was spent. */
export const costOf = (
  price: Price,
  usage: { readonly input_tokens: number; readonly output_tokens: number }
): number => roundDollars((usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok) / 1_000_000)
