import { createHash } from "node:crypto"
import type { ChatMessage } from "../llm/Llm.js"

/**
 * A sample's normalized hash: the same for exact duplicates and for near ones that differ only in case,
 * spacing, punctuation or numbers (an iteration number, a count, a date). It decides duplicates and the
 * split, so both are stable however the dataset grows.
 */

/** Text as compared: lower case, every number one 0, punctuation and runs of space one space. */
export const normalize = (text: string): string =>
  text.toLowerCase().replace(/\d+(?:[.,]\d+)*/g, "0").replace(/[^\p{L}\p{N}]+/gu, " ").trim()

/** 32 hex digits (128 bits) of SHA-256 over the normalized conversation. */
export const hashOf = (messages: ReadonlyArray<ChatMessage>): string => {
  const hash = createHash("sha256")
  for (const m of messages) {
    hash.update(`\u0000${m.role}\u0000${normalize(m.content)}`)
    for (const call of m.tool_calls ?? []) hash.update(`\u0001${call.function.name}\u0001${normalize(call.function.arguments)}`)
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
