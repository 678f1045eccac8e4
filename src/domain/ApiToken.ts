import { Effect, Schema } from "effect"
import * as crypto from "node:crypto"
import { BadInput } from "./Errors.js"
import { checkProject } from "./MissionRecord.js"
import { hashOf, prefixOf } from "./Secret.js"

/**
 * A token for the HTTP API, scoped to one project: shown once when made; only its sha256 and its first
 * characters are kept. The admin token is not one of these: it is `AUTOPILOT_API_TOKEN`, never stored.
 */
export class TokenRecord extends Schema.Class<TokenRecord>("TokenRecord")({
  id: Schema.String,
  project: Schema.String,
  name: Schema.NullOr(Schema.String),
  /** The first 12 characters: enough to recognise a token in a listing, useless to authenticate with. */
  prefix: Schema.String,
  created_at: Schema.String,
  expires_at: Schema.NullOr(Schema.String),
  revoked_at: Schema.NullOr(Schema.String),
  /** When it last authenticated a request, to the minute (a request does not write every time). */
  last_used_at: Schema.NullOr(Schema.String)
}) {}

/** Who a request is: the admin (any project), or a project token's holder (its project only). */
export const Principal = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("admin") }),
  Schema.Struct({ kind: Schema.Literal("project"), project: Schema.String, tokenId: Schema.String })
)
export type Principal = typeof Principal.Type

/**
 * A request without a token that works. `missing`: none given; `invalid`: unknown or revoked (one reason
 * for both, so a revoked token tells its holder nothing a guess would not); `expired`. Never the token.
 */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  reason: Schema.Literal("missing", "invalid", "expired")
}) {
  get message() {
    switch (this.reason) {
      case "missing":
        return "no API token given"
      case "invalid":
        return "the API token is unknown or revoked"
      case "expired":
        return "the API token has expired"
    }
  }
}

/** No active token of that id: unknown, already revoked, or (for a project's caller) another project's. */
export class TokenNotFound extends Schema.TaggedError<TokenNotFound>()("TokenNotFound", {
  id: Schema.String
}) {
  get message() {
    return `no active API token "${this.id}" (see \`autopilot token list\`)`
  }
}

/** A token as made: the secret (shown once), and what is stored of it. */
export interface Generated {
  readonly token: string
  readonly id: string
  readonly hash: string
  readonly prefix: string
}

const tokenFormat = /^apt_[A-Za-z0-9_-]{32}$/

/** 192 random bits: nothing to brute-force, so a fast hash (`Secret.hashOf`, sha256) is enough. */
export const generate = (): Generated => {
  const token = `apt_${crypto.randomBytes(24).toString("base64url")}`
  return { token, id: `tok_${crypto.randomBytes(8).toString("hex")}`, hash: hashOf(token), prefix: prefixOf(token) }
}

export { hashOf }

/** A quick format check, to turn garbage away before touching the database. */
export const looksLikeToken = (s: string): boolean => tokenFormat.test(s)

/** What `create` is asked for. */
export interface NewToken {
  readonly project: string
  /** A label for people: who or what the token is for. */
  readonly name?: string | undefined
  /** Whole days until it stops working, 1 to 36500; never when absent. */
  readonly expiresInDays?: number | undefined
}

export const maxExpiryDays = 36_500

/** A new token's fields, checked: the one rule for the service and for the CLI, which checks before opening the database. */
export const check = (input: NewToken): Effect.Effect<{ readonly project: string; readonly name: string | null; readonly expiresInDays: number | null }, BadInput> =>
  Effect.gen(function*() {
    const project = yield* checkProject(input.project)
    const name = input.name ?? null
    if (name !== null && (name.trim() === "" || name.length > 100 || /[\u0000-\u001f\u007f]/.test(name))) {
      return yield* new BadInput({ message: `the token's name must be 1-100 characters on one line, got ${JSON.stringify(name.slice(0, 120))}` })
    }
    const days = input.expiresInDays ?? null
    if (days !== null && !(Number.isInteger(days) && days >= 1 && days <= maxExpiryDays)) {
      return yield* new BadInput({ message: `the expiry must be a whole number of days from 1 to ${maxExpiryDays}, got ${days}` })
    }
    return { project, name, expiresInDays: days }
  })
