import { Effect } from "effect"
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
