import { Either } from "effect"
import type * as Blueprint from "../domain/Blueprint.js"
import { Goal } from "../domain/Goal.js"
import type { Adjustment } from "../domain/Healing.js"
import type { NodeTelemetry } from "../domain/MissionRun.js"
import type { Step } from "../domain/Step.js"
import type { Specialist } from "../specialists/Specialist.js"
import * as OutputSchema from "./OutputSchema.js"

/**
 * What one node of a mission's graph is asked and how its answer is judged, as pure functions: the
 * driver (`Driver.ts`) runs it. A unit is one node of one graph instance: a `once` or `scheduled`
 * mission has one instance; a `batch` mission one per item of its list slot.
 */

/** One node of one instance: `key` names it in events and run ids (`classify`, or `2.classify` for item 2). */
export interface Unit {
  readonly key: string
  readonly node: Blueprint.Node
  /** The instance: 0 for a mission that is not a batch, else the item's number from 1. */
  readonly instance: number
}

/** The key of `node` in `instance`. */
export const keyOf = (node: string, instance: number) => (instance === 0 ? node : `${instance}.${node}`)

/** The child run of a unit's attempt: `<mission run>.<key>`, then `.2`, `.3`… for healing attempts. */
export const runIdOf = (missionRunId: string, key: string, attempt: number) =>
  attempt <= 1 ? `${missionRunId}.${key}` : `${missionRunId}.${key}.${attempt}`

/** The list slot a batch mission runs over: the first list slot its entry node's prompt names, else its first list slot. */
export const batchSlot = (blueprint: Blueprint.Blueprint): Blueprint.Slot | undefined => {
  if (blueprint.mode !== "batch") return undefined
  const lists = blueprint.slots.filter((s) => s.type === "url_list" || s.type === "string_list")
  const entry = blueprint.graph.nodes.find((n) => n.id === blueprint.graph.entry)
  return lists.find((s) => entry?.prompt.includes(`{${s.name}}`) === true) ?? lists[0]
}

/** The graph instances of a mission: one, or one per item of a batch's list slot, with the slot values each sees. */
export const instancesOf = (
  blueprint: Blueprint.Blueprint,
  slots: Blueprint.SlotValues
): ReadonlyArray<{ readonly instance: number; readonly slots: Blueprint.SlotValues }> => {
  const slot = batchSlot(blueprint)
  const items = slot === undefined ? undefined : slots[slot.name]
  if (slot === undefined || !Array.isArray(items)) return [{ instance: 0, slots }]
  return items.map((item, i) => ({ instance: i + 1, slots: { ...slots, [slot.name]: item } }))
}

const slotText = (value: Blueprint.SlotValue) => (Array.isArray(value) ? value.join(", ") : String(value))

/** Keeps the newest `keep` part of a text (the end: where the latest of an input is), marking the cut. */
const trimmed = (text: string, keep: number) => {
  const kept = Math.ceil(text.length * keep)
  return kept >= text.length ? text : `[… ${text.length - kept} earlier characters trimmed]${text.slice(text.length - kept)}`
}

/**
 * The node's task: its prompt with `{slot}` replaced by the slot's value and `{node.output}` by that
 * node's full output, then, under "Inputs", the full output of every predecessor whose edge is taken and
 * that the prompt does not quote already. `keep` (a `trim_context` adjustment) trims each quoted output.
 */
export const taskOf = (
  node: Blueprint.Node,
  slots: Blueprint.SlotValues,
  outputs: Readonly<Record<string, string>>,
  inputs: ReadonlyArray<string>,
  keep = 1
): string => {
  const quote = (text: string) => (keep < 1 ? trimmed(text, keep) : text)
  const prompt = node.prompt
    .replace(/\{([a-z][a-z0-9_]*)\.output\}/g, (whole, id: string) => (id in outputs ? quote(outputs[id]!) : whole))
    .replace(/\{([a-z][a-z0-9_]*)\}/g, (whole, name: string) => (name in slots ? slotText(slots[name]!) : whole))
  const unquoted = inputs.filter((id) => !node.prompt.includes(`{${id}.output}`) && id in outputs)
  if (unquoted.length === 0) return prompt
  return `${prompt}\n\nInputs:\n${unquoted.map((id) => `### From ${id}\n${quote(outputs[id]!)}`).join("\n\n")}`
}

/**
 * The goal of a node attempt's run. With an output Schema, the objective ends asking for exactly that
 * JSON; a `stricter_output` adjustment adds what was wrong with the last answer, word for word.
 */
export const goalOf = (node: Blueprint.Node, task: string, adjustment: Adjustment | undefined): Goal => {
  const parts = [task]
  if (node.output_schema !== undefined) parts.push(OutputSchema.instruction(node.output_schema))
  if (adjustment?.kind === "stricter_output") {
    parts.push(
      `Your previous answer to this task was rejected: ${adjustment.validation_error}. ` +
        (node.output_schema === undefined
          ? "Answer the task itself, in full; an empty answer or a refusal is not an answer."
          : "Answer again with only the JSON object, exactly as the schema requires.")
    )
  }
  return new Goal({
    objective: parts.join("\n\n"),
    success_criteria: [
      node.output_schema === undefined
        ? `The answer does what the ${node.id} task asks, in full.`
        : `The answer is one JSON object matching the ${node.id} output schema, and does what the task asks.`
    ]
  })
}

/**
 * Who runs the node: the specialist it names (limited to the tools the node lists, at the node's tier), or
 * a role made from its one-sentence `role`.
 */
export const specialistOf = (node: Blueprint.Node, known: ReadonlyMap<string, Specialist>, missionGoal: string): Specialist | undefined => {
  if (node.specialist !== undefined) {
    const found = known.get(node.specialist)
    if (found === undefined) return undefined
    return { ...found, allowed_tools: node.tools.length > 0 ? node.tools : found.allowed_tools, model_tier: node.model_tier }
  }
  return {
    // A specialist's id is dash-separated words: `draft__reply_` becomes `draft-reply`.
    id: node.id.split("_").filter((word) => word !== "").join("-"),
    name: node.id.replace(/_/g, " "),
    category: "mission",
    role: node.role ?? node.id,
    goal: `Do this step of the mission "${missionGoal.replace(/\s+/g, " ").slice(0, 200)}" well, so the steps after it can build on it.`,
    background: "One agent of a mission's graph: earlier agents' outputs are given in the task.",
    instructions: ["Do exactly what the task asks, and answer with the result itself."],
    allowed_tools: node.tools,
    model_tier: node.model_tier
  }
}

/**
 * What an answer gives the nodes after it: the decoded JSON when the node has an output Schema (a
 * mismatch is the error), else the answer text.
 */
export const outputOf = (node: Blueprint.Node, answer: string): Either.Either<unknown, string> =>
  node.output_schema === undefined ? Either.right(answer) : OutputSchema.check(node.output_schema, answer)

/** The output as text for prompts: JSON as JSON, text as it is. */
export const outputText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value, null, 2))

/** A node attempt's telemetry: its steps' model calls, summed; `model_used` the act models in order. */
export const telemetryOf = (steps: ReadonlyArray<Step>): NodeTelemetry => {
  const calls = steps.flatMap((s) => s.calls)
  const models = [...new Set(calls.filter((c) => c.purpose === "act").map((c) => c.model_used))]
  return {
    model_used: models.join(", "),
    input_tokens: calls.reduce((n, c) => n + c.input_tokens, 0),
    output_tokens: calls.reduce((n, c) => n + c.output_tokens, 0),
    cost_usd: calls.reduce((n, c) => n + c.cost_usd, 0),
    latency_ms: calls.reduce((n, c) => n + c.latency_ms, 0)
  }
}

/** Telemetries added up: a unit over its attempts, a mission over its units. */
export const sumTelemetry = (all: ReadonlyArray<NodeTelemetry>): NodeTelemetry => ({
  model_used: [...new Set(all.flatMap((t) => (t.model_used === "" ? [] : t.model_used.split(", "))))].join(", "),
  input_tokens: all.reduce((n, t) => n + t.input_tokens, 0),
  output_tokens: all.reduce((n, t) => n + t.output_tokens, 0),
  cost_usd: all.reduce((n, t) => n + t.cost_usd, 0),
  latency_ms: all.reduce((n, t) => n + t.latency_ms, 0)
})
