import { type Blueprint, describeSlotType, type Graph, type Slot, type SlotValue, type SlotValues } from "../domain/Blueprint.js"
import { type BudgetPolicy } from "../domain/Budget.js"
import { dollarCap, plural } from "../domain/Quantity.js"

/**
 * What a mission will do, in a few lines a person reads before approving it (the seed's `preview`):
 *
 *   Scheduled research (scheduled_research v1, scheduled)
 *   Schedule: 0 9 * * 1-5
 *   Vendors: 3 URLs (https://a.example, https://b.example, https://c.example)
 *   Depth: missing (a whole number from 1 to 5)
 *   Agents: collect → analyze, compare → report
 *   Success criteria: 3
 *   Budget: 1800s · 100 tool calls · 2,000,000 tokens · $5.00 · 200 iterations
 */
export const preview = (blueprint: Blueprint, slots: SlotValues, missing: ReadonlyArray<string>): string =>
  [
    `${blueprint.title} (${blueprint.id} v${blueprint.version}, ${blueprint.mode})`,
    ...blueprint.slots.map((slot) => `${label(slot.name)}: ${slotText(slot, slots[slot.name], missing.includes(slot.name))}`),
    `Agents: ${stages(blueprint.graph).map((stage) => stage.join(", ")).join(" → ")}`,
    `Success criteria: ${blueprint.success_criteria.length}`,
    `Budget: ${budgetText(blueprint.budget)}`
  ].join("\n")

/** `max_items` → `Max items`. */
const label = (name: string) => {
  const words = name.replaceAll("_", " ")
  return words.charAt(0).toUpperCase() + words.slice(1)
}

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

/** At most this many items of a list are named; the rest are counted. */
const SHOWN = 3

const slotText = (slot: Slot, value: SlotValue | undefined, isMissing: boolean): string => {
  if (isMissing || value === undefined) {
    return isMissing || slot.required ? `missing (${describeSlotType(slot)})` : "not set"
  }
  if (typeof value === "number") return String(value)
  if (typeof value === "string") return clip(value.replace(/\s+/g, " "), 80)
  const noun = slot.type === "url_list" ? "URL" : "item"
  const named = value.slice(0, SHOWN).map((item) => clip(item, 40))
  const more = value.length > SHOWN ? `, +${value.length - SHOWN} more` : ""
  return `${plural(value.length, noun)} (${named.join(", ")}${more})`
}

/**
 * The graph's nodes in the order they run: each stage holds the nodes whose longest path from the entry
 * has the same length, in the order the blueprint lists them.
 */
export const stages = (graph: Graph): ReadonlyArray<ReadonlyArray<string>> => {
  const ids = graph.nodes.map((node) => node.id)
  const depth = new Map<string, number>([[graph.entry, 0]])
  // Longest paths by relaxation: a blueprint's graph is acyclic (`problems`), so |nodes| rounds settle it;
  // the bound also keeps a cyclic graph from looping.
  for (let round = 0; round < ids.length; round++) {
    let changed = false
    for (const edge of graph.edges) {
      const from = depth.get(edge.from)
      if (from !== undefined && (depth.get(edge.to) ?? -1) < from + 1) {
        depth.set(edge.to, from + 1)
        changed = true
      }
    }
    if (!changed) break
  }
  const last = Math.max(...depth.values())
  const byStage = Array.from({ length: last + 1 }, (_, d) => ids.filter((id) => depth.get(id) === d))
  const unreachable = ids.filter((id) => !depth.has(id))
  return [...byStage, ...(unreachable.length === 0 ? [] : [unreachable])].filter((stage) => stage.length > 0)
}

const budgetText = (b: BudgetPolicy): string =>
  [
    b.max_seconds > 0 ? `${b.max_seconds}s` : undefined,
    b.max_tool_calls > 0 ? plural(b.max_tool_calls, "tool call", b.max_tool_calls.toLocaleString("en-US")) : undefined,
    b.max_tokens > 0 ? plural(b.max_tokens, "token", b.max_tokens.toLocaleString("en-US")) : undefined,
    b.max_dollars > 0 ? dollarCap(b.max_dollars) : undefined,
    b.max_iterations > 0 ? plural(b.max_iterations, "iteration", b.max_iterations.toLocaleString("en-US")) : undefined
  ].filter((part) => part !== undefined).join(" · ") || "unlimited"
