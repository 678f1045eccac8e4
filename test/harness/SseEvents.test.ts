import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as SseEvents from "../../src/harness/SseEvents.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (raw: Uint8Array) => new TextDecoder().decode(raw)

/** Every event of `input` pushed in the pieces `cuts` makes (byte offsets), as text. */
const decodeIn = (input: string, cuts: ReadonlyArray<number>) => {
  const all = bytes(input)
  const decoder = SseEvents.decoder()
  const events: Array<{ raw: string; event: string | null; data: string | null }> = []
  let from = 0
  for (const cut of [...cuts.filter((c) => c > 0 && c < all.length)].sort((a, b) => a - b).concat(all.length)) {
    for (const e of decoder.push(all.subarray(from, cut))) events.push({ raw: text(e.raw), event: e.event, data: e.data })
    from = cut
  }
  return events
}

describe("SseEvents", () => {
  const stream = [
    `data: {"choices":[{"delta":{"content":"héllo 👋"}}]}\n\n`,
    `: a comment, no data\n\n`,
    `event: note\r\ndata: first line\r\ndata:second\r\n\r\n`,
    `id: 7\rdata: {"x":1}\r\r`,
    `data\n\n`,
    `data: [DONE]\n\n`
  ]

  it("cuts a stream into its events, each with its bytes as they came, its event name and its data", () => {
    assert.deepStrictEqual(decodeIn(stream.join(""), []), [
      { raw: stream[0]!, event: null, data: `{"choices":[{"delta":{"content":"héllo 👋"}}]}` },
      { raw: stream[1]!, event: null, data: null },
      { raw: stream[2]!, event: "note", data: "first line\nsecond" },
      { raw: stream[3]!, event: null, data: `{"x":1}` },
      { raw: stream[4]!, event: null, data: "" },
      { raw: stream[5]!, event: null, data: "[DONE]" }
    ])
  })

  it("keeps what follows the last blank line until more comes, and makes no event of it", () => {
    const decoder = SseEvents.decoder()
    assert.deepStrictEqual(decoder.push(bytes("data: a\n\ndata: b\n")).map((e) => e.data), ["a"])
    assert.deepStrictEqual(decoder.push(bytes("\n")).map((e) => [text(e.raw), e.data]), [["data: b\n\n", "b"]])
  })

  it.prop("finds the same events however the bytes are cut, multi-byte characters and CRLFs split included", [
    FastCheck.array(FastCheck.nat({ max: 200 }), { maxLength: 12 })
  ], ([cuts]) => {
    assert.deepStrictEqual(decodeIn(stream.join(""), cuts), decodeIn(stream.join(""), []))
  })
})
