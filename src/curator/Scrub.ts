/**
 * Secrets and e-mail addresses out of training data. A fine-tuned model repeats what it was trained on,
 * so a key a tool printed once must not be in any sample: each is replaced by a marker naming its kind,
 * before the sample is stored.
 */

interface Rule {
  readonly pattern: RegExp
  readonly marker: string
}

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
  // A value assigned to a name that says it is secret: `api_key = "…"`, `"password": "…"`, `SECRET=…`.
  {
    pattern: /((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd|client[_-]?secret)["']?\s*[:=]\s*["']?)([^\s"',;}{]{6,})/gi,
    marker: "$1[REDACTED_SECRET]"
  },
  // A password in a URL: scheme://user:password@host.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, marker: "$1[REDACTED_SECRET]@" },
  { pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g, marker: "[REDACTED_EMAIL]" }
]

/** A quick test before the rules: most text has none of these, and then costs one scan. */
const maybe = /-----BEGIN|bearer|authorization|sk-|rk-|pk-|apt_|ahk_|gh[pousr]_|github_pat_|glpat-|xox|AKIA|ASIA|AIza|_live_|_test_|hf_|eyJ|key|secret|passw|:\/\/|@/i

/** `text` with every secret and e-mail address replaced by a marker naming what it was. */
export const scrub = (text: string): string => {
  if (!maybe.test(text)) return text
  let out = text
  for (const rule of rules) out = out.replace(rule.pattern, rule.marker)
  return out
}
