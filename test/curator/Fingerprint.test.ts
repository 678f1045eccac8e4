import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { createHash } from "node:crypto"
import { hashOf, normalize, splitOf } from "../../src/curator/Fingerprint.js"
import type { ChatMessage } from "../../src/llm/Llm.js"

const conversation = (user: string, answer: string): ReadonlyArray<ChatMessage> => [
  { role: "system", content: "You are an agent." },
  { role: "user", content: user },
  { role: "assistant", content: answer }
]

describe("Fingerprint", () => {
  it("gives near duplicates one hash: case, spacing, punctuation and numbers do not count", () => {
    const a = hashOf(conversation("Explain 3 dict gotchas. This is iteration 1.", "Here they are:  one, two."))
    const b = hashOf(conversation("explain 4 DICT gotchas!  This is iteration 12", "here they are: one two"))
    assert.strictEqual(a, b)
    assert.strictEqual(normalize("  Hello,   WORLD 42.5! "), "hello world 0")
  })

  it("tells apart different words, different roles and different tool calls", () => {
    const base = hashOf(conversation("Explain dict gotchas", "one two"))
    assert.notStrictEqual(hashOf(conversation("Explain list gotchas", "one two")), base)
    assert.notStrictEqual(hashOf([{ role: "user", content: "You are an agent." }, ...conversation("Explain dict gotchas", "one two").slice(1)]), base)
    const call = (name: string): ReadonlyArray<ChatMessage> => [
      ...conversation("Explain dict gotchas", "one two").slice(0, 2),
      { role: "assistant", content: "one two", tool_calls: [{ id: "c1", type: "function", function: { name, arguments: "{}" } }] }
    ]
    assert.notStrictEqual(hashOf(call("echo")), hashOf(call("calculator")))
  })

  // The hash as first written: `normalize` over each whole text. Hashes are stored with samples and decide
  // duplicates and splits, so the byte-by-byte path for ASCII must give exactly these.
  const reference = (messages: ReadonlyArray<ChatMessage>) => {
    const hash = createHash("sha256")
    for (const m of messages) {
      hash.update(`\u0000${m.role}\u0000${normalize(m.content)}`)
      for (const call of m.tool_calls ?? []) hash.update(`\u0001${call.function.name}\u0001${normalize(call.function.arguments)}`)
    }
    return hash.digest("hex").slice(0, 32)
  }
  // Text made of what normalizing treats specially: digits, separators, punctuation, space, case; sometimes not ASCII.
  const text = FastCheck.oneof(
    FastCheck.stringMatching(/^[0-9.,;:!? \t\n\r\-_'"(){}\[\]/\\aAzZbqQ]{0,60}$/),
    FastCheck.string({ maxLength: 60 }),
    FastCheck.string({ unit: "grapheme", maxLength: 30 }),
    FastCheck.constantFrom("", " ", "1.5", "İstanbul 2.", "café, 3,000.50 €", "v1.2.3-rc.4", "a..1,,2. .3", "x\u00a0y", "²³ ½")
  )
  it.prop("hashes exactly as normalizing each whole text does, ASCII or not", [
    FastCheck.array(FastCheck.tuple(FastCheck.constantFrom<ChatMessage["role"]>("system", "user", "assistant"), text, FastCheck.array(text, { maxLength: 2 })), { maxLength: 4 })
  ], ([parts]) => {
    const messages: Array<ChatMessage> = parts.map(([role, content, args]) => ({
      role,
      content,
      ...(args.length === 0 ? {} : { tool_calls: args.map((a, i) => ({ id: `c${i}`, type: "function" as const, function: { name: "calculator", arguments: a } })) })
    }))
    assert.strictEqual(hashOf(messages), reference(messages))
  }, { fastCheck: { numRuns: 500 } })

  it("hashes a long prompt as normalizing it whole does", () => {
    const long = Array.from({ length: 4000 }, (_, i) => `Step ${i}: Owner-${i}@Example.com, 1,024.5 MB; ${i % 7 === 0 ? "\n\n```ts\nx()\n```" : "ok."}`).join(" ")
    const messages: ReadonlyArray<ChatMessage> = [{ role: "user", content: long }, { role: "assistant", content: long.toUpperCase() }]
    assert.strictEqual(hashOf(messages), reference(messages))
  })

  it.prop("the split is a function of the hash: none held out at 0, about the fraction asked for over many", [
    // Distinct hashes as real ones are: a generator's own hex strings lean towards "000…" and flaked.
    FastCheck.uniqueArray(FastCheck.integer(), { minLength: 400, maxLength: 400 }).map((seeds) =>
      seeds.map((n) => createHash("sha256").update(String(n)).digest("hex").slice(0, 32))
    ),
    FastCheck.double({ min: 0.05, max: 0.5, noNaN: true })
  ], ([hashes, fraction]) => {
    assert.isTrue(hashes.every((h) => splitOf(h, 0) === "train"))
    assert.isTrue(hashes.every((h) => splitOf(h, fraction) === splitOf(h, fraction)))
    // 400 uniform draws: the share held out is within 0.15 of the fraction by six standard deviations.
    const held = hashes.filter((h) => splitOf(h, fraction) === "eval").length / hashes.length
    assert.isBelow(Math.abs(held - fraction), 0.15)
  })

  it("holds out about the fraction asked for of real hashes", () => {
    const hashes = Array.from({ length: 10_000 }, (_, i) => hashOf(conversation(`task ${"abcdefghij"[i % 10]} ${i.toString(36)}x`, "answer")))
    const held = hashes.filter((h) => splitOf(h, 0.1) === "eval").length
    assert.isAbove(held, 900)
    assert.isBelow(held, 1100)
  })
})
