/**
 * Secrets and e-mail addresses out of training data. A fine-tuned model repeats what it was trained on,
 * so a key a tool printed once must not be in any sample: each is replaced by a marker naming its kind,
 * before the sample is stored.
 */

interface Rule {
  readonly pattern: RegExp
  readonly marker: string | ((match: string, ...groups: Array<string>) => string)
}

// Names that say their value is secret: a secret word with what commonly comes around it. Bounded, so a long
// run of word characters costs a few steps, not a scan of the rest of it.
const secretName = /[\w.-]{0,60}?(?:secret|passw(?:or)?d|passphrase|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)(?:[_-]?(?:access[_-]?)?key|[_-]?token)?/
const tokenName = /[\w.-]{0,60}?token/
const quotedValue = `"(?:[^"\\\\\\n]|\\\\.)+"|'(?:[^'\\\\\\n]|\\\\.)+'`

/** A secret value replaced by `marker`, its quotes kept: JSON and code around it stay as they were. */
const redactValue = (marker: string) => (_match: string, name: string, value: string) =>
  value.startsWith("\"") || value.startsWith("'") ? `${name}${value[0]}${marker}${value[0]}` : `${name}${marker}`

// Order matters: a private key block before anything inside it, a bearer token before a bare token.
const rules: ReadonlyArray<Rule> = [
  { pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g, marker: "[REDACTED_PRIVATE_KEY]" },
  { pattern: /(Authorization["']?\s*[:=]\s*["']?(?:Basic|Bearer|Token)?\s*)[A-Za-z0-9\-._~+/]{8,}=*/gi, marker: "$1[REDACTED_TOKEN]" },
  // Prose says "bearer" too: a token has a digit in it and is long.
  { pattern: /\bBearer\s+(?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{16,}=*/g, marker: "Bearer [REDACTED_TOKEN]" },
  // Provider keys by their well-known shapes: OpenAI and Anthropic (sk-, sk-proj-, sk-ant-), this project's
  // own (apt_, ahk_), GitHub, GitLab, Slack, AWS, Google, Stripe, Hugging Face.
  { pattern: /\b(?:sk|rk|pk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_-]{16,}/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\b(?:apt|ahk)_[A-Za-z0-9_-]{16,}/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,})/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\bAIza[0-9A-Za-z_-]{30,}/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}/g, marker: "[REDACTED_API_KEY]" },
  { pattern: /\bhf_[A-Za-z0-9]{30,}/g, marker: "[REDACTED_API_KEY]" },
  // A JSON Web Token: three base64url parts, the first two JSON objects.
  { pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, marker: "[REDACTED_TOKEN]" },
  // A value assigned to a name that says it is secret (`AWS_SECRET_ACCESS_KEY=…`, `"password": "two words"`,
  // `api-key: …`): a quoted value whole, spaces and escaped quotes included, else one word.
  {
    pattern: new RegExp(`(?<![\\w.-])(${secretName.source}["']?\\s*[:=]\\s*)(${quotedValue}|[^\\s"',;}{]{4,})`, "gi"),
    marker: redactValue("[REDACTED_SECRET]")
  },
  // A token: `token: …`, `GITHUB_TOKEN=…`. Code says `token = next()` too: unquoted, only what looks issued.
  {
    pattern: new RegExp(`(?<![\\w.-])(${tokenName.source}["']?\\s*[:=]\\s*)(${quotedValue}|(?=[A-Za-z0-9\\-._~+/]*\\d)[A-Za-z0-9\\-._~+/]{8,}=*(?![\\w(]))`, "gi"),
    marker: redactValue("[REDACTED_TOKEN]")
  },
  // A password in a URL: scheme://user:password@host.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, marker: "$1[REDACTED_SECRET]@" },
  { pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g, marker: "[REDACTED_EMAIL]" }
]

/** A quick test before the rules: most text has none of these, and then costs one scan. */
const maybe = /-----BEGIN|bearer|authorization|sk-|rk-|pk-|apt_|ahk_|gh[pousr]_|github_pat_|glpat-|xox|AKIA|ASIA|AIza|_live_|_test_|hf_|eyJ|key|secret|passw|passphrase|token|credential|:\/\/|@/i

/** `text` with every secret and e-mail address replaced by a marker naming what it was. */
export const scrub = (text: string): string => {
  if (!maybe.test(text)) return text
  let out = text
  // Two calls: `replace` takes a string marker and a function marker through different overloads.
  for (const rule of rules) out = typeof rule.marker === "string" ? out.replace(rule.pattern, rule.marker) : out.replace(rule.pattern, rule.marker)
  return out
}

const secretKey = new RegExp(`^(?:${secretName.source}|${tokenName.source})$`, "i")

/**
 * A tool call's arguments (JSON text) scrubbed as JSON: each string scrubbed on its own, and the value of a
 * key that names a secret (`{"password": "two words"}`) replaced whole, then written again, so the result is
 * still the JSON it was. Text that is not JSON is scrubbed as text. Unchanged arguments come back as they were.
 */
export const scrubArguments = (text: string): string => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return scrub(text)
  }
  let changed = false
  const redacted = () => {
    changed = true
    return "[REDACTED_SECRET]"
  }
  const walk = (value: unknown, key: string | undefined): unknown => {
    if (key !== undefined && secretKey.test(key) && (typeof value === "number" || (typeof value === "string" && value !== ""))) return redacted()
    if (typeof value === "string") {
      const out = scrub(value)
      if (out !== value) changed = true
      return out
    }
    if (Array.isArray(value)) return value.map((item) => walk(item, undefined))
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => {
        const name = scrub(k)
        if (name !== k) changed = true
        return [name, walk(v, k)]
      }))
    }
    return value
  }
  const out = walk(parsed, undefined)
  return changed ? JSON.stringify(out) : text
}
