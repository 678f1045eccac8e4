import * as crypto from "node:crypto"

/** A harness API key: shown once when made; only its hash and prefix are kept. */
export interface GeneratedKey {
  readonly key: string
  readonly hash: string
  readonly prefix: string
  readonly id: string
}

const keyFormat = /^ahk_[A-Za-z0-9_-]{32}$/

// Keys are 192 random bits, so there is nothing to brute-force: a fast hash is enough, no bcrypt needed.
export const hashOf = (key: string): string => crypto.createHash("sha256").update(key, "utf8").digest("hex")

/** The first 12 characters, enough to recognise a key in a listing and useless to authenticate with. */
export const prefixOf = (key: string): string => key.slice(0, 12)

export const generate = (): GeneratedKey => {
  const key = `ahk_${crypto.randomBytes(24).toString("base64url")}`
  return { key, hash: hashOf(key), prefix: prefixOf(key), id: `key_${crypto.randomBytes(6).toString("hex")}` }
}

/** A quick format check, to turn away garbage before touching the database. */
export const looksLikeKey = (s: string): boolean => keyFormat.test(s)
