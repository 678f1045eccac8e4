import { Config, Effect, Layer, Option } from "effect"
import { BadInput } from "../domain/Errors.js"
import * as CommandFineTune from "./CommandFineTune.js"
import type { FineTune } from "./FineTune.js"
import * as OpenAiFineTune from "./OpenAiFineTune.js"

export const names = ["openai", "command"] as const

/**
 * The provider the environment chooses: `AUTOPILOT_FINETUNE_PROVIDER` is `openai` (the default: OpenAI or
 * any server speaking its fine-tuning API, at AUTOPILOT_FINETUNE_BASE_URL) or `command` (a trainer on this
 * machine, AUTOPILOT_FINETUNE_COMMAND). Anything missing or malformed is one line naming the variable.
 */
export const layerConfig: Layer.Layer<FineTune, BadInput> = Layer.unwrapEffect(Effect.gen(function*() {
  const chosen = yield* Config.option(Config.string("AUTOPILOT_FINETUNE_PROVIDER")).pipe(Effect.orDie)
  const name = Option.getOrElse(Option.filter(chosen, (value) => value !== ""), () => "openai")
  if (name === "command") return CommandFineTune.layerCommand(yield* CommandFineTune.config)
  if (name !== "openai") return yield* new BadInput({ message: `AUTOPILOT_FINETUNE_PROVIDER must be one of ${names.join(", ")}, got "${name}"` })
  const url = yield* Config.option(Config.string("AUTOPILOT_FINETUNE_BASE_URL")).pipe(Effect.orDie)
  const config = yield* OpenAiFineTune.config.pipe(Effect.mapError(() =>
    new BadInput({
      message: Option.isNone(url)
        ? "AUTOPILOT_FINETUNE_BASE_URL must be set to the fine-tune endpoint, e.g. https://api.openai.com/v1 (and AUTOPILOT_FINETUNE_API_KEY to its key)"
        : "AUTOPILOT_FINETUNE_BASE_URL must be an http(s) URL and AUTOPILOT_FINETUNE_API_KEY set (AUTOPILOT_FINETUNE_SERVING_URL, if given, a URL too)"
    })
  ))
  return OpenAiFineTune.layerOpenAi({ ...config, uploadTimeout: yield* OpenAiFineTune.uploadTimeoutConfig })
}))
