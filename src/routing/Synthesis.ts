import { Context, Effect, Either, JSONSchema, Layer, Ref, Schema } from "effect"
import { Blueprint, ConditionOps, describeProblems, type Known, problems } from "../domain/Blueprint.js"
import type { BadInput, LlmError, PersistenceError } from "../domain/Errors.js"
import { slug } from "../domain/Slug.js"
import type { ChatMessage, Llm } from "../llm/Llm.js"
import { clip, unfenced } from "../runtime/Prompts.js"
import { Specialists } from "../specialists/Specialists.js"
import { defaultToolNames } from "../tools/Defaults.js"
import { Blueprints, type Entry } from "./Blueprints.js"
import { decodeText } from "./Catalog.js"
import { ask } from "./RoutingModel.js"

/** The model could not write a blueprint that validates, in two attempts. */
export class SynthesisFailed extends Schema.TaggedError<SynthesisFailed>()("SynthesisFailed", {
  goal: Schema.String,
  /** What was wrong with the last attempt, one line each. */
  problems: Schema.Array(Schema.String)
}) {
  get message() {
    const shown = this.problems.slice(0, 5).map((p) => clip(p.replace(/\s+/g, " "), 200))
    const more = this.problems.length > 5 ? `; and ${this.problems.length - 5} more` : ""
    return `no valid blueprint could be written for this goal (two attempts); the last one: ${shown.join("; ")}${more}`
  }
}

/**
 * Writes a new blueprint for a goal no blueprint of the catalog serves, keeps it as the user's own
 * (`Blueprints.add`) and returns it, to be routed to. The model's answer is accepted only when it decodes
 * as a Blueprint and passes every structural check (`problems`) against the specialists and tools that
 * exist; otherwise the model is asked once more, with the problems.
 */
export class Synthesis extends Context.Tag("autopilot/Synthesis")<
  Synthesis,
  {
    /**
     * `draft`: a `blueprint_json` the remote blueprint service wrote. Accepted as is when valid (no model
     * call); otherwise the model is shown it with its problems, to correct or replace.
     */
    readonly synthesize: (
      goal: string,
      options?: { readonly draft?: string | undefined }
    ) => Effect.Effect<Entry, SynthesisFailed | LlmError | BadInput | PersistenceError>
  }
>() {}

/**
 * The blueprint in a model's answer (a markdown fence tolerated), or every reason it cannot be used: read
 * as `blueprints add` reads a file (a misspelt field is an error, not dropped), then checked as it checks.
 */
export const check = (answer: string, known: Known): Either.Either<Blueprint, ReadonlyArray<string>> =>
  decodeText(unfenced(answer)).pipe(
    Either.mapLeft((problem) => problem.split("; ")),
    Either.flatMap((blueprint) => {
      const found = problems(blueprint, known)
      return found.length === 0 ? Either.right(blueprint) : Either.left(found.map((p) => describeProblems([p])))
    })
  )

const schemaText = JSON.stringify(JSONSchema.make(Blueprint))

/** What the model is told: the Schema, the rules `problems` enforces, and the specialists and tools there are. */
export const systemPrompt = (known: { readonly specialists: ReadonlyArray<string>; readonly tools: ReadonlyArray<string> }): string =>
  [
    "You design blueprints: reusable recipes that turn a goal into a mission done by a graph of AI agents. " +
    "Write one blueprint for the user's goal, as one JSON object that matches this JSON Schema:",
    schemaText,
    "",
    "Rules it must follow:",
    "- ids (of the blueprint, its category, slots and nodes) are snake_case.",
    "- The graph is acyclic: no edge from a node to itself, none back to the entry, no cycle; every node is reachable from `entry`.",
    "- Each node names exactly one of `specialist` (an id from the list below) or `role` (a sentence saying who the agent is).",
    `- A node's \`tools\` come only from: ${known.tools.join(", ")}; a node naming a specialist lists only tools that specialist allows (a role node may list any).`,
    "- A prompt may use `{slot_name}` for the value of a slot the blueprint declares (no other), and `{node_id.output}` for the answer of a node that always runs before it.",
    `- A conditional edge's \`when\` reads a field of the JSON output of its \`from\` node, which must declare that field in an \`output_schema\` (a JSON Schema with \`properties\`); ops: ${
      ConditionOps.join(", ")
    }; gt, gte, lt and lte take a number, in and not_in a list, exists and not_exists no value. Never a condition in words.`,
    "- Slots are the inputs the goal gives (a schedule, URLs, names, counts): an enum slot lists `values`, only an integer slot has `min`/`max`, a `default` must be a valid value.",
    "- `mode`: `once`; `scheduled` needs a slot of type cron; `batch` needs a url_list or string_list slot to run over.",
    "- `success_criteria`: concrete, checkable statements of what done means for this goal.",
    "",
    `Specialists: ${known.specialists.join(", ")}.`,
    "",
    "Reply with the JSON object only."
  ].join("\n")

const rejected = (list: ReadonlyArray<string>) => list.map((p) => `- ${p}`).join("\n")

/** The id the blueprint is kept under: its own, unless taken; then `synthetic_<goal>`, numbered if need be. */
export const freshId = (blueprintId: string, goal: string, taken: ReadonlySet<string>): string => {
  if (!taken.has(blueprintId)) return blueprintId
  const base = `synthetic_${slug(goal, 60).replace(/-/g, "_") || "goal"}`
  if (!taken.has(base)) return base
  for (let n = 2;; n++) {
    const id = `${base}_${n}`
    if (!taken.has(id)) return id
  }
}

export const make = (options: { readonly tools?: ReadonlyArray<string> } = {}): Effect.Effect<
  Synthesis["Type"],
  never,
  Llm | Blueprints | Specialists
> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Llm>()
    const blueprints = yield* Blueprints
    const roles = (yield* Specialists).all.map((entry) => entry.specialist)
    const specialists = roles.map((role) => role.id)
    const tools = options.tools ?? defaultToolNames
    // The same checks `Blueprints.add` makes, allow-lists included, so a blueprint it would refuse is retried.
    const known: Known = { specialists, tools, allowedTools: new Map(roles.map((role) => [role.id, role.allowed_tools])) }
    const system: ChatMessage = { role: "system", content: systemPrompt({ specialists, tools }) }
    // This catalog's `all` does not grow with `add`: the ids kept since are remembered here.
    const taken = yield* Ref.make<ReadonlySet<string>>(new Set(blueprints.all.map((entry) => entry.blueprint.id)))

    const keep = (goal: string, blueprint: Blueprint) =>
      Effect.gen(function*() {
        // A file that did not load still holds its name, so the catalog is asked, not only its `all`.
        let ids = yield* Ref.get(taken)
        let id = freshId(blueprint.id, goal, ids)
        while (yield* blueprints.isTaken(id)) {
          ids = new Set([...ids, id])
          id = freshId(blueprint.id, goal, ids)
        }
        yield* Ref.update(taken, (kept) => new Set([...kept, id]))
        return yield* blueprints.add({ ...blueprint, id })
      })

    const attempt = (messages: ReadonlyArray<ChatMessage>) =>
      ask({ purpose: "synthesis", messages, tier: "complex" }).pipe(
        Effect.map((response) => ({ content: response.content, checked: check(response.content, known) })),
        Effect.provide(context)
      )

    const synthesize = (goal: string, how: { readonly draft?: string | undefined } = {}) =>
      Effect.gen(function*() {
        const opening: Array<ChatMessage> = [system, { role: "user", content: goal }]
        if (how.draft !== undefined) {
          const draft = check(how.draft, known)
          if (Either.isRight(draft)) return yield* keep(goal, draft.right)
          opening.push({
            role: "user",
            content: `A blueprint service proposed this draft:\n${clip(how.draft, 20_000)}\n\nIt cannot be used as it is:\n${
              rejected(draft.left)
            }\n\nWrite a blueprint for the goal that follows every rule: correct the draft, or replace it.`
          })
        }
        const first = yield* attempt(opening)
        if (Either.isRight(first.checked)) return yield* keep(goal, first.checked.right)
        const second = yield* attempt([
          ...opening,
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: `That blueprint was rejected:\n${rejected(first.checked.left)}\n\nReply with the corrected blueprint, the JSON object only.`
          }
        ])
        if (Either.isRight(second.checked)) return yield* keep(goal, second.checked.right)
        return yield* new SynthesisFailed({ goal, problems: second.checked.left })
      })

    return Synthesis.of({ synthesize })
  })

/** Synthesis over the model, the catalog and the specialists; nodes may list the default tools. */
export const layer: Layer.Layer<Synthesis, never, Llm | Blueprints | Specialists> = Layer.effect(Synthesis, make())
