import { Cause, Context, Effect, JSONSchema, Layer, ParseResult, Schema } from "effect"
import { ToolError } from "../domain/Errors.js"
import type { ToolSpec } from "../llm/Llm.js"

/** A capability the model may call: a name, a Schema for its arguments and a handler. */
export interface Tool {
  readonly spec: ToolSpec
  readonly run: (args: unknown) => Effect.Effect<string, ToolError>
}

export const make = <A, I>(options: {
  readonly name: string
  readonly description: string
  readonly parameters: Schema.Schema<A, I>
  readonly handler: (args: A) => Effect.Effect<string, ToolError>
}): Tool => {
  const decode = Schema.decodeUnknown(options.parameters)
  return {
    spec: { name: options.name, description: options.description, parameters: JSONSchema.make(options.parameters) },
    run: (args) =>
      decode(args).pipe(
        Effect.mapError((e) =>
          new ToolError({ message: `invalid arguments for ${options.name}: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })
        ),
        Effect.flatMap(options.handler)
      )
  }
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * What a tool returns goes into the prompt, the step and the event log: keep it bounded (about 25k
 * tokens; above read_file's own 64 KiB cap, so that tool's more precise note is what the model sees).
 */
export const maxOutputChars = 100_000
const capped = (output: string) =>
  output.length <= maxOutputChars
    ? output
    : `${output.slice(0, maxOutputChars)}\n[truncated: ${output.length - maxOutputChars} more characters]`

export interface ToolOutcome {
  readonly ok: boolean
  readonly output: string
  /** Not run: the tool is outside the run's allow-list. */
  readonly refused?: boolean
}

/** The tools a mission may use. Calls never fail: errors become results the model can read. */
export class Toolkit extends Context.Tag("autopilot/Toolkit")<
  Toolkit,
  {
    readonly specs: ReadonlyArray<ToolSpec>
    readonly call: (name: string, args: unknown) => Effect.Effect<ToolOutcome>
  }
>() {
  static readonly make = (tools: ReadonlyArray<Tool>): Toolkit["Type"] => {
    const byName = new Map(tools.map((tool) => [tool.spec.name, tool]))
    const known = [...byName.keys()].join(", ")
    return {
      specs: tools.map((tool) => tool.spec),
      call: (name, args) => {
        const tool = byName.get(name)
        if (tool === undefined) {
          return Effect.succeed({ ok: false, output: `unknown tool "${name}"; available tools: ${known || "none"}` })
        }
        return tool.run(args).pipe(
          Effect.map((output) => ({ ok: true, output: capped(output) })),
          // A handler that throws is a bad tool, not a bad run: the model gets the error like any other.
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.interrupt
              : Effect.succeed({ ok: false, output: errorMessage(Cause.squash(cause)) })
          )
        )
      }
    }
  }

  static readonly layer = (tools: ReadonlyArray<Tool>) => Layer.succeed(Toolkit, Toolkit.make(tools))
}
