import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
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
