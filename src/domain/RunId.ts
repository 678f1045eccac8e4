import { DateTime, Effect, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { BadInput } from "./Errors.js"

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * A run id names a row and a workspace folder, so it may hold nothing that reads as a path: 1-128
 * letters, digits, ".", "_" or "-", starting with a letter or digit.
 */
export const check = (raw: string): Effect.Effect<string, BadInput> =>
  RUN_ID.test(raw)
    ? Effect.succeed(raw)
    : Effect.fail(new BadInput({
      message: `run id "${raw}" is not allowed: use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`
    }))

/** A run id as data: what `check` allows. */
export const RunId = Schema.String.pipe(Schema.pattern(RUN_ID, { message: () => "must be 1-128 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit" }))

/**
 * A new run id, `<prefix>-YYYYMMDD-HHMMSS-xxxxxx`: its time from the Clock, so ids sort by when they were
 * made; the suffix from node:crypto, as effect's Random is seeded with only 32 bits per process.
 */
export const fresh = (prefix: string): Effect.Effect<string> =>
  Effect.map(DateTime.now, (now) => {
    const stamp = DateTime.formatIso(now).replace(/[-:]/g, "").replace("T", "-").slice(0, 15)
    return `${prefix}-${stamp}-${randomBytes(3).toString("hex")}`
  })
