import { Effect } from "effect"
import type { Toolkit } from "../tools/Tool.js"
import { allows, type Specialist } from "./Specialist.js"

/**
 * The toolkit as a specialist has it: the model is offered only the tools the allow-list names, and a call
 * to any other (a model may call a tool it was never offered) is refused without running, and on record
 * as refused.
 */
export const restrict = (toolkit: Toolkit["Type"], specialist: Specialist | undefined): Toolkit["Type"] => {
  if (specialist === undefined || specialist.allowed_tools === "all") return toolkit
  const specs = toolkit.specs.filter((spec) => allows(specialist, spec.name))
  const offered = specs.map((spec) => spec.name).join(", ") || "none"
  return {
    specs,
    call: (name, args) =>
      allows(specialist, name)
        ? toolkit.call(name, args)
        : Effect.succeed({
          ok: false,
          refused: true,
          output: `refused: the ${specialist.id} specialist may not use "${name}"; its tools: ${offered}`
        })
  }
}
