import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { scrub, scrubArguments } from "../../src/curator/Scrub.js"

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

  it("takes an AWS secret key, a token, and a quoted password with spaces; leaves counts of tokens alone", () => {
    assert.strictEqual(
      scrub("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
      "export AWS_SECRET_ACCESS_KEY=[REDACTED_SECRET]"
    )
    assert.strictEqual(scrub("token: 9f8e7d6c5b4a39281706"), "token: [REDACTED_TOKEN]")
    assert.strictEqual(scrub("GITHUB_TOKEN='abc 123'"), "GITHUB_TOKEN='[REDACTED_TOKEN]'")
    assert.strictEqual(scrub(`password: "correct horse battery"`), `password: "[REDACTED_SECRET]"`)
    assert.strictEqual(scrub(`{"db_password": "say \\"friend\\" and enter"}`), `{"db_password": "[REDACTED_SECRET]"}`)
    for (const text of ["max_tokens: 32768", "tokens: 123456789", "const token = next()", "the tokenizer: 12345678a"]) assert.strictEqual(scrub(text), text)
  })

  it("scrubs tool-call arguments as JSON: each string, and whole values of keys that name a secret; unchanged ones stay byte for byte", () => {
    const args = JSON.stringify({ password: "correct horse", nested: [{ note: `use password: "a b c" and mail bob@example.com` }], api_key: 12345678, n: 1 })
    assert.deepStrictEqual(JSON.parse(scrubArguments(args)), {
      password: "[REDACTED_SECRET]",
      nested: [{ note: `use password: "[REDACTED_SECRET]" and mail [REDACTED_EMAIL]` }],
      api_key: "[REDACTED_SECRET]",
      n: 1
    })
    // Scrubbed as text, an escaped quote ends the secret early and breaks the JSON.
    const quoted = JSON.stringify({ secret: `abcdef"x` })
    assert.strictEqual(scrubArguments(quoted), JSON.stringify({ secret: "[REDACTED_SECRET]" }))
    const plain = `{ "expression" : "6*7", "big": 12345678901234567890 }`
    assert.strictEqual(scrubArguments(plain), plain)
    assert.strictEqual(scrubArguments("not json sk-proj-AbCdEf0123456789AbCdEf"), "not json [REDACTED_API_KEY]")
  })

  /** A secret and the text that plants it; what must not survive is the secret. */
  const word = FastCheck.stringMatching(/^[a-z]{3,8}$/)
  const planted = FastCheck.oneof(
    FastCheck.stringMatching(/^[A-Za-z0-9/+]{40}$/).map((key) => ({ secret: key, text: `AWS_SECRET_ACCESS_KEY=${key}` })),
    FastCheck.stringMatching(/^[A-Za-z0-9]{15}[0-9]$/).map((token) => ({ secret: token, text: `token: ${token}` })),
    FastCheck.array(word, { minLength: 2, maxLength: 4 }).map((words) => words.join(" ")).map((phrase) => ({ secret: phrase, text: `password: "${phrase}"` })),
    FastCheck.tuple(FastCheck.stringMatching(/^[a-z][a-z0-9.]{0,11}$/), FastCheck.constantFrom("example.com", "mail.example.org")).map(([user, host]) => ({
      secret: `${user}@${host}`,
      text: `write to ${user}@${host}`
    })),
    FastCheck.stringMatching(/^[A-Za-z0-9]{24}$/).map((body) => ({ secret: `sk-proj-${body}`, text: `sk-proj-${body}` }))
  )
  const secretKeys = FastCheck.constantFrom("password", "AWS_SECRET_ACCESS_KEY", "api_key", "client_secret", "access_token", "token")

  it.prop("no planted secret survives, in text or anywhere in JSON arguments", [
    FastCheck.string(),
    planted,
    FastCheck.string(),
    secretKeys,
    FastCheck.array(word, { minLength: 2, maxLength: 4 }).map((words) => words.join(" "))
  ], ([before, { secret, text }, after, key, phrase]) => {
    assert.notInclude(scrub(`${before} ${text} ${after}`), secret)
    const args = scrubArguments(JSON.stringify({ [before]: [after, `${before} ${text} ${after}`], [key]: phrase }))
    assert.notInclude(args, secret)
    assert.notInclude(args, phrase)
  })

  it.prop("scrubbed JSON arguments are still JSON, and keep every value that holds no secret", [
    FastCheck.jsonValue({ maxDepth: 3 }),
    planted,
    secretKeys,
    FastCheck.stringMatching(/^[A-Za-z0-9 "'\\:=,{}]{1,30}$/)
  ], ([value, { text }, key, odd]) => {
    const args = JSON.stringify({ value, note: text, [key]: odd, [`${key}_note`]: `${key}: "${odd}" ${odd}` })
    const out = scrubArguments(args)
    const parsed = JSON.parse(out)
    assert.strictEqual(parsed[key], "[REDACTED_SECRET]")
    if (!/key|secret|passw|token|credential|@|sk-|:\/\//i.test(JSON.stringify(value))) assert.deepStrictEqual(parsed.value, JSON.parse(JSON.stringify(value)))
  })
})
