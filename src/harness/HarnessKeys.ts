import * as crypto from "node:crypto"
import { hashOf, prefixOf } from "../domain/Secret.js"

/** A harness API key: shown once when made; only its hash and prefix are kept. */
export interface GeneratedKey {
  readonly key: string
  readonly hash: string
  readonly prefix: string
  readonly id: string
}

const keyFormat = /^ahk_[A-Za-z0-9_-]{32}$/

// 192 random bits: kept as `Secret.hashOf` and `Secret.prefixOf`, as API tokens and sessions are.
export const generate = (): GeneratedKey => {
  const key = `ahk_${crypto.randomBytes(24).toString("base64url")}`
  return { key, hash: hashOf(key), prefix: prefixOf(key), id: `key_${crypto.randomBytes(6).toString("hex")}` }
}

/** A quick format check, to turn away garbage before touching the database. */
export const looksLikeKey = (s: string): boolean => keyFormat.test(s)
