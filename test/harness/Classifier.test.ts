import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { type ClassifiableRequest, classify } from "../../src/harness/Classifier.js"
import { ClassificationSettings as Settings } from "../../src/harness/HarnessConfig.js"

const defaults = Schema.decodeSync(Settings)({})
const noEscalation = { ...defaults, escalate_below: 0 }

const ask = (text: string): ClassifiableRequest => ({ messages: [{ role: "user", content: text }] })

const prose = (tokens: number) => "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(tokens * 4 / 45))

const designRequest: ClassifiableRequest = {
  messages: [
    { role: "system", content: "You are a senior engineer." },
    { role: "user", content: prose(1500) },
    { role: "assistant", content: "Here is the current module:\n```ts\nexport const f = () => 1\n```" },
    { role: "user", content: prose(1500) },
    { role: "assistant", content: null },
    { role: "tool", content: prose(1500) },
    { role: "assistant", content: "Noted." },
    {
      role: "user",
      content: "Design a sharded cache for this service and weigh the trade-offs against the current approach:\n" +
        "```ts\nclass Cache { get(k: string) { return this.m.get(k) } }\n```"
    }
  ],
  tools: [{ type: "function" }, { type: "function" }, { type: "function" }],
  max_tokens: 4000
}

describe("Classifier", () => {
  it("calls a one-line question simple, and is sure of it", () => {
    const c = classify(ask("What is the capital of France?"), defaults)
    assert.strictEqual(c.tier, "simple")
    assert.isAbove(c.confidence, 0.9)
    assert.isBelow(c.score, 0.05)
  })

  it("calls a long multi-turn request with tools and code that asks for a design complex", () => {
    const c = classify(designRequest, defaults)
    assert.strictEqual(c.tier, "complex")
    assert.isAtLeast(c.score, defaults.complex_at)
    for (const reason of ["7 turns", "3 tools", "code (2 blocks)", "asks to design, weigh trade-offs", "up to 4000 output tokens"]) {
      assert.include(c.reasons, reason)
    }
    assert.isTrue(c.reasons.some((r) => /^~\d+ prompt tokens$/.test(r)), c.reasons.join("; "))
  })

  it("calls a code refactor of moderate size medium", () => {
    const c = classify(ask(`Refactor this:\n\`\`\`ts\n${prose(1500)}\n\`\`\``), noEscalation)
    assert.strictEqual(c.tier, "medium")
    assert.deepStrictEqual(c.reasons.slice(1), ["code", "asks to refactor"])
    assert.match(c.reasons[0] ?? "", /^~15\d\d prompt tokens$/)
  })

  it("lists only the features that added to the score", () => {
    assert.deepStrictEqual(classify(ask("hi"), defaults).reasons, ["~1 prompt tokens"])
    assert.deepStrictEqual(classify({ messages: [] }, defaults), { tier: "simple", confidence: 1, score: 0, reasons: [] })
  })

  it("reads reasoning cues from the last user message only", () => {
    const earlier = classify({
      messages: [
        { role: "user", content: "Prove it step by step" },
        { role: "assistant", content: "ok" },
        { role: "user", content: "thanks" }
      ]
    }, defaults)
    assert.isFalse(earlier.reasons.some((r) => r.startsWith("asks to")))
    assert.include(
      classify(ask("Please analyze and optimize this, step-by-step"), defaults).reasons,
      "asks to analyse, optimise, think step by step"
    )
  })

  it("counts text in content parts, and nothing in other parts", () => {
    const text = prose(2000)
    const asString = classify(ask(text), defaults)
    const asParts = classify({
      messages: [{
        role: "user",
        content: [{ type: "text", text }, { type: "image_url", image_url: { url: "https://example.com/cat.png" } }]
      }]
    }, defaults)
    assert.strictEqual(asParts.score, asString.score)
    assert.deepStrictEqual(asParts.reasons, asString.reasons)
  })

  it("prefers max_completion_tokens over max_tokens as the output cap", () => {
    const c = classify({ ...ask("hi"), max_tokens: 100, max_completion_tokens: 8000 }, defaults)
    assert.include(c.reasons, "up to 8000 output tokens")
  })

  it("escalates a request right on a threshold one tier up, saying so", () => {
    const { score } = classify(designRequest, defaults)
    const onMedium = classify(designRequest, { medium_at: score, complex_at: 0.99, escalate_below: 0.55 })
    assert.strictEqual(onMedium.confidence, 0.5)
    assert.strictEqual(onMedium.tier, "complex")
    assert.include(onMedium.reasons, "escalated from medium to complex: confidence 0.50 is below 0.55")

    const belowMedium = classify(designRequest, { medium_at: score + 0.01, complex_at: 0.99, escalate_below: 0.55 })
    assert.strictEqual(belowMedium.tier, "medium")
  })

  it("does not escalate when confident enough, nor past complex", () => {
    const { score } = classify(designRequest, defaults)
    const confident = classify(designRequest, { medium_at: score, complex_at: 0.99, escalate_below: 0.5 })
    assert.strictEqual(confident.tier, "medium")
    assert.isFalse(confident.reasons.some((r) => r.startsWith("escalated")))

    const onComplex = classify(designRequest, { medium_at: 0.1, complex_at: score, escalate_below: 1 })
    assert.strictEqual(onComplex.tier, "complex")
    assert.strictEqual(onComplex.confidence, 0.5)
    assert.isFalse(onComplex.reasons.some((r) => r.startsWith("escalated")))
  })

  it("is most confident in the middle of the medium band", () => {
    const { score } = classify(designRequest, defaults)
    const c = classify(designRequest, { medium_at: score - 0.1, complex_at: score + 0.1, escalate_below: 0 })
    assert.closeTo(c.confidence, 1, 1e-9)
  })

  const text = fc.string({ maxLength: 400 })
  const part = fc.oneof(text, fc.constantFrom("```", "design ", "step by step ", "trade-off "))
  const content = fc.oneof(
    fc.array(part, { maxLength: 4 }).map((ps) => ps.join("")),
    fc.array(part.map((t) => ({ type: "text", text: t })), { maxLength: 3 }),
    fc.constant(null)
  )
  const request = fc.record({
    messages: fc.array(fc.record({ role: fc.constantFrom("system", "user", "assistant", "tool"), content }), {
      minLength: 1,
      maxLength: 8
    }),
    tools: fc.array(fc.constant({ type: "function" }), { maxLength: 6 }),
    max_tokens: fc.option(fc.nat({ max: 20_000 }), { nil: null })
  })
  const settings = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }))
    .filter(([a, b]) => a < b)
    .chain(([medium_at, complex_at]) =>
      fc.double({ min: 0, max: 1, noNaN: true }).map((escalate_below) => ({ medium_at, complex_at, escalate_below }))
    )

  it.prop("never scores lower for more text in any message", [request, fc.nat(), part], ([req, i, more]) => {
    const at = i % req.messages.length
    const longer = {
      ...req,
      messages: req.messages.map((m, j) =>
        j !== at ? m : {
          ...m,
          content: Array.isArray(m.content) ? [...m.content, { type: "text", text: more }] : (m.content ?? "") + more
        }
      )
    }
    assert.isAtLeast(classify(longer, defaults).score, classify(req, defaults).score)
  })

  it.prop("scores within [0, 1] and is confident within [0.5, 1]", [request, settings], ([req, s]) => {
    const c = classify(req, s)
    assert.isTrue(c.score >= 0 && c.score <= 1, `score ${c.score}`)
    assert.isTrue(c.confidence >= 0.5 && c.confidence <= 1, `confidence ${c.confidence}`)
  })

  it.prop("picks the tier the thresholds give, one up only when unsure", [request, settings], ([req, s]) => {
    const c = classify(req, s)
    const base = c.score >= s.complex_at ? "complex" : c.score >= s.medium_at ? "medium" : "simple"
    const expected = c.confidence < s.escalate_below ? { simple: "medium", medium: "complex", complex: "complex" }[base] : base
    assert.strictEqual(c.tier, expected)
  })

  it.prop("is deterministic", [request], ([req]) => {
    assert.deepStrictEqual(classify(req, defaults), classify(structuredClone(req), defaults))
  })
})
