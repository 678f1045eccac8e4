import { Schema } from "effect"
import * as crypto from "node:crypto"
import { hashOf } from "./Secret.js"

/**
 * A sign-in session of the operator page: made from a token by `POST /api/v1/session`, named by a random id
 * that only the browser's HttpOnly cookie holds. Stored are the id's sha256, the token it was made from,
 * its project, its times and its own CSRF secret; never the id, never the token.
 */
export class SessionRecord extends Schema.Class<SessionRecord>("SessionRecord")({
  /** The token's id (`tok_…`), or `admin:` and a fingerprint of the admin token, so that changing it ends its sessions. */
  token_id: Schema.String,
  project: Schema.String,
  /** Random, the session's own: its CSRF token is derived from it (`csrfOf`). */
  csrf_secret: Schema.String,
  created_at: Schema.String,
  expires_at: Schema.String
}) {}

/** A cookie that names no live session: unknown, signed out, expired, or its token revoked (one reason for all). */
export class SessionEnded extends Schema.TaggedError<SessionEnded>()("SessionEnded", {}) {
  get message() {
    return "the session has ended (signed out, expired, or its token revoked): sign in again"
  }
}

const idFormat = /^aps_[A-Za-z0-9_-]{43}$/

/** 256 random bits for the id, as many for the CSRF secret: nothing to guess, so sha256 is enough to store the id. */
export const generate = () => ({
  id: `aps_${crypto.randomBytes(32).toString("base64url")}`,
  csrfSecret: crypto.randomBytes(32).toString("hex")
})

export { hashOf }

/** A quick format check, to turn garbage away before touching the database. */
export const looksLikeId = (s: string): boolean => idFormat.test(s)

/** The `X-CSRF-Token` of a session: only the session's own secret makes it, so an old or stolen token's does not. */
export const csrfOf = (secret: string): string => crypto.createHmac("sha256", secret).update("autopilot-csrf").digest("hex")

/** The `token_id` of a session made with the admin token, as of that token. */
export const adminTokenId = (fingerprint: string) => `admin:${fingerprint}`
