import { Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { defaultSettings } from "../domain/Critic.js"
import { BadInput } from "../domain/Errors.js"
import type * as Critic from "../runtime/Critic.js"
import { DECIMAL } from "./Flags.js"

export const flags = {
  critic: Options.boolean("critic").pipe(
    Options.withDescription(
      "after each iteration a strict reviewer model checks the work; when confident enough, its verdict overrules the judge's, and its suggestions feed the next iteration (a resumed run keeps its own critic)"
    )
  ),
  criticThreshold: Options.text("critic-threshold").pipe(
    Options.withPseudoName("number"),
    Options.withDescription(
      `confidence from 0 to 1 at which the critic overrules the judge (default ${defaultSettings.threshold}, or a resumed run's own); implies --critic`
    ),
    Options.optional
  )
}

/**
 * The critic the flags ask for, or undefined when they ask for none (a resumed run then keeps its own).
 * `--critic-threshold` alone turns the critic on: asking for a threshold means wanting a critic.
 */
export const requested = (given: { readonly critic: boolean; readonly criticThreshold: Option.Option<string> }) =>
  Option.match(given.criticThreshold, {
    onNone: () => Effect.succeed<Critic.Options | undefined>(given.critic ? {} : undefined),
    onSome: (raw) => {
      const threshold = DECIMAL.test(raw) ? Number(raw) : Number.NaN
      return threshold <= 1
        ? Effect.succeed<Critic.Options | undefined>({ threshold })
        : Effect.fail(new BadInput({ message: `--critic-threshold must be a number from 0 to 1, got "${raw}"` }))
    }
  })
