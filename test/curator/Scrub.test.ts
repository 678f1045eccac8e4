import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { scrub } from "../../src/curator/Scrub.js"

const secrets: ReadonlyArray<readonly [string, string]> = [
  ["sk-proj-AbCdEf0123456789AbCdEf0123456789", "[REDACTED_API_KEY]"],
  ["sk-ant-api03-AbCdEf0123456789AbCdEf0123", "[REDACTED_API_KEY]"],
  ["apt_Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkw", "[REDACTED_API_KEY]"],
  ["ahk_Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkw", "[REDACTED_API_KEY]"],
  ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED_API_KEY]"],
  ["AKIAIOSFODNN7EXAMPLE", "[REDACTED_API_KEY]"],
  ["AIzaSyA-abcdefghijklmnopqrstuvwxyz0123456", "[REDACTED_API_KEY]"],
  ["xoxb-123456789012-abcdefghijkl", "[REDACTED_API_KEY]"],
  ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "[REDACTED_TOKEN]"],
  ["alice.smith+ml@example.co.uk", "[REDACTED_EMAIL]"]
]

describe("Scrub", () => {
  it("replaces each kind of secret, and e-mail addresses, with a marker naming it", () => {
    for (const [secret, marker] of secrets) {
      const out = scrub(`before ${secret} after`)
      assert.notInclude(out, secret, secret)
      assert.include(out, marker, secret)
      assert.match(out, /^before .* after$/)
    }
  })

  it("takes a whole private key block, a bearer token, an Authorization header, a secret assignment and a URL password", () => {
    const key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1\nabc\n-----END RSA PRIVATE KEY-----"
    assert.strictEqual(scrub(`key:\n${key}\nend`), "key:\n[REDACTED_PRIVATE_KEY]\nend")
    assert.strictEqual(scrub("curl -H 'Authorization: Bearer abc123def456ghi789'"), "curl -H 'Authorization: Bearer [REDACTED_TOKEN]'")
    assert.strictEqual(scrub("send Bearer 9f8e7d6c5b4a39281706 along"), "send Bearer [REDACTED_TOKEN] along")
    assert.strictEqual(scrub(`{"api_key": "hunter2hunter2"}`), `{"api_key": "[REDACTED_SECRET]"}`)
    assert.strictEqual(scrub("PASSWORD=correct-horse-battery"), "PASSWORD=[REDACTED_SECRET]")
    assert.strictEqual(scrub("postgres://app:s3cr3t@db.internal:5432/x"), "postgres://app:[REDACTED_SECRET]@db.internal:5432/x")
  })

  it("leaves ordinary prose and code alone", () => {
    const text = "The bearer of bad news checked the task-management board; `const token = next()` and 3 @decorators."
    assert.strictEqual(scrub(text), text)
  })

  it.prop("no generated key survives in any text around it, and scrubbing twice changes nothing more", [
    FastCheck.string(),
    FastCheck.stringMatching(/^[A-Za-z0-9]{24,40}$/),
    FastCheck.constantFrom("sk-", "sk-proj-", "apt_", "ahk_", "ghp_"),
    FastCheck.string()
  ], ([before, body, prefix, after]) => {
    const secret = `${prefix}${body}`
    const once = scrub(`${before} ${secret} ${after}`)
    assert.notInclude(once, secret)
    assert.strictEqual(scrub(once), once)
  })
})
