import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Option } from "effect"
import { costOf, knownModels, priceOf } from "../../src/budget/Pricing.js"

const resolved = (id: string): string | undefined => Option.getOrUndefined(Option.map(priceOf(id), (p) => p.model))

const priced = (id: string) => {
  const price = priceOf(id)
  assert.isTrue(Option.isSome(price), `${id} should be priced`)
  return Option.getOrThrow(price)
}

const expectResolves = (cases: ReadonlyArray<readonly [id: string, key: string]>) => {
  for (const [id, key] of cases) assert.strictEqual(resolved(id), key, id)
}

describe("Pricing", () => {
  it("prices every known model by its exact id, never at $0", () => {
    for (const model of knownModels) {
      const price = priced(model)
      assert.strictEqual(price.model, model)
      assert.isAbove(price.input_per_mtok, 0, model)
      assert.isAbove(price.output_per_mtok, 0, model)
    }
  })

  it("holds the required families", () => {
    for (
      const model of [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o3-mini", "o4-mini",
        "claude-opus-4", "claude-opus-4-1", "claude-sonnet-4", "claude-sonnet-4-5", "claude-haiku-4-5",
        "gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
        "llama-4-scout", "llama-4-maverick"
      ]
    ) assert.include(knownModels, model)
  })

  it("quotes list prices per million tokens", () => {
    const gpt4oMini = priced("gpt-4o-mini")
    assert.strictEqual(gpt4oMini.input_per_mtok, 0.15)
    assert.strictEqual(gpt4oMini.output_per_mtok, 0.6)
    const sonnet = priced("claude-sonnet-4")
    assert.strictEqual(sonnet.input_per_mtok, 3)
    assert.strictEqual(sonnet.output_per_mtok, 15)
  })

  it("ignores case", () => {
    expectResolves([
      ["GPT-4o-Mini", "gpt-4o-mini"],
      ["Claude-Sonnet-4", "claude-sonnet-4"],
      ["GEMINI-2.5-PRO", "gemini-2.5-pro"],
      ["OpenRouter/OpenAI/GPT-4O-MINI-2024-07-18", "gpt-4o-mini"]
    ])
  })

  it("strips router paths and vendor or region dot-prefixes", () => {
    expectResolves([
      ["openrouter/openai/gpt-4o-mini", "gpt-4o-mini"],
      ["openai/o4-mini", "o4-mini"],
      ["azure/gpt-4.1", "gpt-4.1"],
      ["bedrock/anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"],
      ["anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"],
      ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"],
      ["eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"],
      ["apac.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"],
      ["global.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"],
      ["vertex_ai/gemini-2.5-pro", "gemini-2.5-pro"],
      ["vertex_ai/claude-opus-4@20250514", "claude-opus-4"],
      ["gemini/gemini-2.5-flash-lite", "gemini-2.5-flash-lite"],
      ["models/gemini-2.0-flash-001", "gemini-2.0-flash"],
      ["meta.llama4-scout-17b-instruct-v1:0", "llama-4-scout"],
      ["us.meta.llama4-maverick-17b-instruct-v1:0", "llama-4-maverick"],
      ["meta-llama/Llama-4-Scout-17B-16E-Instruct", "llama-4-scout"],
      ["groq/meta-llama/llama-4-maverick-17b-128e-instruct", "llama-4-maverick"],
      ["together_ai/meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", "llama-4-maverick"],
      ["fireworks_ai/accounts/fireworks/models/llama4-scout-instruct-basic", "llama-4-scout"],
      ["openrouter/meta-llama/llama-4-scout:free", "llama-4-scout"],
      ["openrouter/anthropic/claude-3.7-sonnet:thinking", "claude-3-7-sonnet"],
      ["anthropic/claude-haiku-4.5", "claude-haiku-4-5"],
      ["anthropic/claude-opus-4.1", "claude-opus-4-1"]
    ])
  })

  it("resolves a dated or suffixed id to the longest key it extends", () => {
    expectResolves([
      ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"],
      ["gpt-4o-2024-08-06", "gpt-4o"],
      ["gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"],
      ["gpt-4.1-2025-04-14", "gpt-4.1"],
      ["o3-mini-high", "o3-mini"],
      ["o3-2025-04-16", "o3"],
      ["o3-pro-2025-06-10", "o3-pro"],
      ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
      ["claude-sonnet-4-20250514", "claude-sonnet-4"],
      ["claude-sonnet-4-7", "claude-sonnet-4"],
      ["claude-opus-4-1-20250805", "claude-opus-4-1"],
      ["claude-opus-4-5-20251101", "claude-opus-4-5"],
      ["claude-3-5-haiku-latest", "claude-3-5-haiku"],
      ["gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"],
      ["gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"],
      ["gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"],
      ["gpt-4o-minix", "gpt-4o"],
      ["o3-minimal", "o3"]
    ])
  })

  it("prices a fine-tuned model at its base's fine-tuned rate, not the base's own", () => {
    const price = (id: string) => Option.getOrUndefined(priceOf(id))
    assert.deepStrictEqual(price("ft:gpt-4o-mini-2024-07-18:acme:support:9a8b7c"), { model: "ft:gpt-4o-mini", input_per_mtok: 0.3, output_per_mtok: 1.2 })
    assert.deepStrictEqual(price("ft:gpt-4o-2024-08-06:acme::x1"), { model: "ft:gpt-4o", input_per_mtok: 3.75, output_per_mtok: 15 })
    assert.strictEqual(price("FT:gpt-4.1-nano-2025-04-14:acme:s:1")?.model, "ft:gpt-4.1-nano")
    // A base OpenAI does not fine-tune, or none at all, has no price: never the base's, never $0.
    for (const id of ["ft:o3:acme:s:1", "ft:", "ft:llama-3:me:s:1"]) assert.isUndefined(price(id), id)
  })

  it("leaves unknown models unpriced", () => {
    for (
      const id of [
        "",
        "gpt",
        "gpt-4",
        "gpt-5",
        "gpt-4omni",
        "o1",
        "o3pro",
        "claude-2.1",
        "claude-haiku-4",
        "mistral-large-latest",
        "llama-3.3-70b",
        "openrouter/some-lab/some-model",
        "azure/",
        "constructor",
        "__proto__",
        "toString"
      ]
    ) assert.isTrue(Option.isNone(priceOf(id)), id)
  })

  it("costs usage in dollars", () => {
    const gpt4oMini = priced("gpt-4o-mini")
    assert.strictEqual(costOf(gpt4oMini, { input_tokens: 1_000_000, output_tokens: 0 }), gpt4oMini.input_per_mtok)
    assert.strictEqual(costOf(gpt4oMini, { input_tokens: 0, output_tokens: 1_000_000 }), gpt4oMini.output_per_mtok)
    assert.strictEqual(costOf(gpt4oMini, { input_tokens: 0, output_tokens: 0 }), 0)
    assert.closeTo(costOf(priced("claude-sonnet-4"), { input_tokens: 200_000, output_tokens: 50_000 }), 1.35, 1e-12)
    assert.closeTo(costOf(priced("gemini-2.5-pro"), { input_tokens: 1_234, output_tokens: 567 }), 0.0072125, 1e-12)
  })

  const key = fc.constantFrom(...knownModels)
  const suffix = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9]{1,12}$/).map((s) => `-${s}`),
    // Suffixes that turn one key into another (gpt-4o + -mini) or nearly so (gpt-4o + -minix).
    fc.constantFrom("-mini", "-minix", "-lite", "-pro", "-1", "-5", "-nano", "-20250514", "-Mini-2024")
  )

  it.prop("a suffixed key resolves to the longest whole-part key it extends", [key, suffix], ([k, s]) => {
    const id = (k + s).toLowerCase()
    const model = resolved(id)
    assert.isDefined(model)
    if (model === undefined) return
    assert.isTrue(id.startsWith(model), `${model} is a prefix of ${id}`)
    assert.isAtLeast(model.length, k.length)
    assert.notMatch(id.charAt(model.length), /[a-z0-9]/, `${model} ends at a part boundary of ${id}`)
    for (const other of knownModels) {
      if (other.length > model.length && id.startsWith(other)) {
        assert.match(id.charAt(other.length), /[a-z0-9]/, `${other} is a longer whole-part key of ${id}`)
      }
    }
  }, { fastCheck: { numRuns: 2000 } })

  const hostPrefix = fc.constantFrom(
    "openrouter/openai/",
    "OpenRouter/Anthropic/",
    "openai/",
    "anthropic/",
    "google/",
    "azure/",
    "gemini/",
    "models/",
    "vertex_ai/",
    "groq/",
    "groq/meta-llama/",
    "meta-llama/",
    "together_ai/meta-llama/",
    "fireworks_ai/accounts/fireworks/models/",
    "bedrock/",
    "bedrock/anthropic.",
    "bedrock/converse/us.anthropic.",
    "anthropic.",
    "us.anthropic.",
    "eu.anthropic.",
    "apac.anthropic.",
    "global.anthropic.",
    "meta.",
    "us.meta.",
    "amazon.",
    "mistral."
  )

  it.prop("a host prefix does not change the price", [hostPrefix, key, fc.option(suffix, { nil: "" })], ([p, k, s]) => {
    assert.strictEqual(resolved(p + k), k)
    assert.strictEqual(Option.getOrUndefined(priceOf(p + k + s)), Option.getOrUndefined(priceOf(k + s)))
  })
})
