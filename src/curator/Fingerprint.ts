import { createHash, type Hash } from "node:crypto"
import type { ChatMessage } from "../llm/Llm.js"

/**
 * A sample's normalized hash: the same for exact duplicates and for near ones that differ only in case,
 * spacing, punctuation or numbers (an iteration number, a count, a date). It decides duplicates and the
 * split, so both are stable however the dataset grows.
 */

/** Text as compared: lower case, every number one 0, punctuation and runs of space one space. */
export const normalize = (text: string): string =>
  text.toLowerCase().replace(/\d+(?:[.,]\d+)*/g, "0").replace(/[^\p{L}\p{N}]+/gu, " ").trim()

// `normalize` copies a prompt four times (lower case, two replacements, the text hashed), ~60 KB of garbage a
// sample, most of what capture allocated. ASCII text (nearly all of it) is normalized byte by byte into one
// reused buffer instead: the same bytes, so the same hash.
let scratch = Buffer.allocUnsafe(1 << 16)
const isDigit = (c: number) => c >= 48 && c <= 57
const isLetterOrDigit = (c: number) => isDigit(c) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90)

/** `normalize(text)`'s UTF-8 bytes into the hash, for text that is all ASCII; false (nothing hashed) for other text. */
const updateAscii = (hash: Hash, text: string): boolean => {
  const n = text.length
  for (let i = 0; i < n; i++) if (text.charCodeAt(i) > 127) return false
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2))
  const out = scratch
  let length = 0
  // A run of punctuation or space is one space, written only once a letter or number follows it (so trimmed).
  let gap = false
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (!isLetterOrDigit(c)) {
      gap = length > 0
      i++
      continue
    }
    if (gap) {
      out[length++] = 32
      gap = false
    }
    if (isDigit(c)) {
      // A number with its separators (`1,024.5`) is one 0, as /\d+(?:[.,]\d+)*/ takes it.
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (isDigit(d)) i++
        else if ((d === 46 || d === 44) && i + 1 < n && isDigit(text.charCodeAt(i + 1))) i += 2
        else break
      }
      out[length++] = 48
    } else {
      out[length++] = c <= 90 ? c + 32 : c
      i++
    }
  }
  hash.update(out.subarray(0, length))
  return true
}

const updateNormalized = (hash: Hash, text: string) => {
  if (!updateAscii(hash, text)) hash.update(normalize(text))
}

/** 32 hex digits (128 bits) of SHA-256 over the normalized conversation. */
export const hashOf = (messages: ReadonlyArray<ChatMessage>): string => {
  const hash = createHash("sha256")
  // Hashed in pieces: SHA-256 of the pieces is that of their concatenation.
  for (const m of messages) {
    hash.update(`\u0000${m.role}\u0000`)
    updateNormalized(hash, m.content)
    for (const call of m.tool_calls ?? []) {
      hash.update(`\u0001${call.function.name}\u0001`)
      updateNormalized(hash, call.function.arguments)
    }
  }
  return hash.digest("hex").slice(0, 32)
}

export type Split = "train" | "eval"

/**
 * The held-out split a hash falls in: `eval` for the share `evalFraction` of hashes. By hash, not by order
 * or chance, so a sample never moves between splits as the dataset grows, near duplicates share one, and
 * every dataset holds out the same samples (a sample trained on by one is never another's evaluation).
 */
export const splitOf = (hash: string, evalFraction: number): Split =>
  Number.parseInt(hash.slice(0, 8), 16) / 0x1_0000_0000 < evalFraction ? "eval" : "train"
