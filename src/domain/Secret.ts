import * as crypto from "node:crypto"

/**
 * What is kept of a bearer secret shown once (a harness key, an API token, a session id): its hash to find it
 * by, and its first characters to recognise it by; never the secret itself.
 */

// Each such secret is at least 192 random bits, so there is nothing to brute-force: a fast hash is enough, no bcrypt needed.
export const hashOf = (secret: string): string => crypto.createHash("sha256").update(secret, "utf8").digest("hex")

/** The first 12 characters, enough to recognise a secret in a listing and useless to authenticate with. */
export const prefixOf = (secret: string): string => secret.slice(0, 12)
