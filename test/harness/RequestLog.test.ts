import { assert, describe, it } from "@effect/vitest"
import { DateTime, FastCheck as fc } from "effect"
import type { LedgerEntry } from "../../src/harness/HarnessStore.js"
import * as RequestLog from "../../src/harness/RequestLog.js"

const entry: LedgerEntry = {
  at: "2026-03-01T10:00:00.000Z",
  key_id: "key_0a1b2c",
  user: "ana",
  team: null,
  project: "docs",
  model_requested: "auto",
  model_used: "gpt-4o-mini",
  tier: "medium",
  confidence: 0.9,
  input_tokens: 1200,
  output_tokens: 300,
  cost_usd: 0.00036,
  latency_ms: 41,
  status: 200,
  stream: false,
  policy_action: "routed by tier",
  budget_action: null,
  error: null
}

const request = (facts: RequestLog.Facts, path = "/v1/chat/completions") => ({
  at: DateTime.unsafeMake("2026-03-01T10:00:00.041Z"),
  method: "POST",
  path,
  status: 200,
  latency_ms: 41,
  facts
})

/** Reads a logfmt line back: bare tokens, or JSON strings where quoted. */
const parse = (line: string): Record<string, string> =>
  Object.fromEntries(
    Array.from(line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g), ([, k, v]) => [k!, v!.startsWith("\"") ? JSON.parse(v!) : v!])
  )

describe("RequestLog.line", () => {
  it("names the request, its key id, the models, tokens, cost and latency, in logfmt", () => {
    assert.strictEqual(
      RequestLog.line(request({ entry })),
      "at=2026-03-01T10:00:00.041Z method=POST path=/v1/chat/completions status=200 key_id=key_0a1b2c model=auto model_used=gpt-4o-mini input_tokens=1200 output_tokens=300 cost_usd=0.00036 latency_ms=41"
    )
  })

  it("leaves out what a request never reached: the key before authentication, the models before the ledger", () => {
    assert.strictEqual(
      RequestLog.line(request({ key_id: "key_0a1b2c" }, "/admin/keys")),
      "at=2026-03-01T10:00:00.041Z method=POST path=/admin/keys status=200 key_id=key_0a1b2c latency_ms=41"
    )
    assert.strictEqual(RequestLog.line(request({}, "/nowhere")), "at=2026-03-01T10:00:00.041Z method=POST path=/nowhere status=200 latency_ms=41")
    assert.include(RequestLog.line(request({ entry: { ...entry, model_used: null } })), " model_used=- ")
  })

  it.prop("stays one line that reads back to the same values, whatever the text in it", [fc.string(), fc.string()], ([model, path]) => {
    const line = RequestLog.line(request({ entry: { ...entry, model_requested: model, model_used: model } }, path))
    assert.notMatch(line, /[\n\r]/)
    const fields = parse(line)
    assert.strictEqual(fields["model"], model)
    assert.strictEqual(fields["model_used"], model)
    assert.strictEqual(fields["path"], path)
    assert.strictEqual(fields["status"], "200")
  })
})
