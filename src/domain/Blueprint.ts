import { Array as Arr, Cron, Either, Schema } from "effect"
import { BudgetPolicy } from "./Budget.js"
import { HealingPolicy } from "./Healing.js"
import { Tier } from "./Tier.js"

/**
 * A blueprint: a reusable recipe that turns a goal into a mission. It names the inputs it needs (slots),
 * the agent graph that does the work, what "done" means, and what a run of it may spend. Built-in
 * blueprints, users' files and synthesized ones are all this Schema, and all pass `problems` below.
 */

const Text = Schema.String.pipe(Schema.filter((s) => s.trim() !== "", { message: () => "must be non-empty text" }))

/** snake_case, as the seed's ids are (`scheduled_research`): also what a slot or node is called. */
export const Identifier = Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_]{0,79}$/, {
  message: () => "must be snake_case: lowercase letters, digits and _, starting with a letter, at most 80 characters"
}))

/** How a mission of this blueprint runs: once, on a cron schedule, or once per item of a list slot. */
export const Mode = Schema.Literal("once", "scheduled", "batch")
export type Mode = typeof Mode.Type

export const SlotTypes = ["cron", "url", "url_list", "string_list", "integer", "enum", "text"] as const
export const SlotType = Schema.Literal(...SlotTypes)
export type SlotType = typeof SlotType.Type

/** An input a mission needs. `min`/`max` bound an `integer`; `values` lists an `enum`'s choices. */
export const Slot = Schema.Struct({
  name: Identifier,
  type: SlotType,
  required: Schema.Boolean,
  default: Schema.optionalWith(Schema.Unknown, { exact: true }),
  description: Text,
  min: Schema.optionalWith(Schema.Int, { exact: true }),
  max: Schema.optionalWith(Schema.Int, { exact: true }),
  values: Schema.optionalWith(Schema.NonEmptyArray(Text), { exact: true })
})
export type Slot = typeof Slot.Type

/** A slot's value once validated: text for cron, url, enum and text; a list for the lists; a number. */
export type SlotValue = string | number | ReadonlyArray<string>
export type SlotValues = Readonly<Record<string, SlotValue>>

export const ConditionOps = ["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "not_exists", "contains"] as const

/**
 * When a conditional edge is taken, judged by the runtime on the JSON output of the edge's `from` node:
 * `field` is a dotted path into it (`severity`, `ticket.priority`). Never free text for a model to read.
 */
export const Condition = Schema.Struct({
  field: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, {
    message: () => "must be a dotted path of field names, like severity or ticket.priority"
  })),
  op: Schema.Literal(...ConditionOps),
  value: Schema.optionalWith(Schema.Unknown, { exact: true })
})
export type Condition = typeof Condition.Type

/** A JSON Schema object, as a node's structured output is described to the model and checked. */
export const JsonSchema = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  message: () => "must be a JSON Schema object"
})

/**
 * One agent of the graph: who it is (a specialist's id, or a role in a sentence), what it is asked
 * (`prompt`, where `{slot}` is a slot's value and `{node.output}` an earlier node's answer), the tools it
 * may call, and the model tier it asks for.
 */
export const Node = Schema.Struct({
  id: Identifier,
  specialist: Schema.optionalWith(Schema.String, { exact: true }),
  role: Schema.optionalWith(Text, { exact: true }),
  prompt: Text,
  tools: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  model_tier: Tier,
  output_schema: Schema.optionalWith(JsonSchema, { exact: true })
})
export type Node = typeof Node.Type

export const Edge = Schema.Struct({
  from: Identifier,
  to: Identifier,
  when: Schema.optionalWith(Condition, { exact: true })
})
export type Edge = typeof Edge.Type

/** A directed acyclic graph of agents, run from `entry`. */
export const Graph = Schema.Struct({
  entry: Identifier,
  nodes: Schema.NonEmptyArray(Node),
  edges: Schema.Array(Edge)
})
export type Graph = typeof Graph.Type

/** What the curator (a later issue) keeps of a mission's answers as training data. */
export const Curation = Schema.Struct({
  /** Whether answers of this blueprint's missions become training samples at all. */
  capture: Schema.Boolean,
  /** The nodes whose answers are kept; every node when absent. */
  nodes: Schema.optionalWith(Schema.Array(Identifier), { exact: true }),
  /** Keep an answer only when the critic was at least this confident in it. */
  min_confidence: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { exact: true }),
  tags: Schema.optionalWith(Schema.Array(Text), { default: () => [] })
})
export type Curation = typeof Curation.Type

export const Blueprint = Schema.Struct({
  id: Identifier,
  version: Schema.Int.pipe(Schema.positive({ message: () => "must be a whole number from 1" })),
  title: Text,
  description: Text,
  category: Identifier,
  /** Several phrasings of goals this blueprint serves: what the router matches a goal against. */
  example_goals: Schema.NonEmptyArray(Text),
  mode: Mode,
  slots: Schema.Array(Slot),
  graph: Graph,
  success_criteria: Schema.NonEmptyArray(Text),
  budget: BudgetPolicy,
  curation: Curation,
  /** How its missions heal a failed node; the default policy (`Healing.defaultPolicy`) when absent. */
  healing: Schema.optionalWith(HealingPolicy, { exact: true })
})
export type Blueprint = typeof Blueprint.Type
export type BlueprintEncoded = typeof Blueprint.Encoded

/** The fields a blueprint has, for messages that name a misspelt one. */
export const fields = Object.keys(Blueprint.fields)

// ---------------------------------------------------------------------------------------------------------
// Slot values

const oneOf = (values: ReadonlyArray<string>) => values.map((v) => JSON.stringify(v)).join(", ")

const isUrl = (text: string) => {
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

/** What a slot of `slot.type` takes, for messages. */
export const describeSlotType = (slot: Slot): string => {
  switch (slot.type) {
    case "cron":
      return `a cron expression of 5 fields, like "0 9 * * 1-5"`
    case "url":
      return "an http(s) URL"
    case "url_list":
      return "a list of http(s) URLs"
    case "string_list":
      return "a list of non-empty strings"
    case "integer": {
      const bounds = slot.min !== undefined && slot.max !== undefined
        ? ` from ${slot.min} to ${slot.max}`
        : slot.min !== undefined
        ? ` of at least ${slot.min}`
        : slot.max !== undefined
        ? ` of at most ${slot.max}`
        : ""
      return `a whole number${bounds}`
    }
    case "enum":
      return `one of ${oneOf(slot.values ?? [])}`
    case "text":
      return "non-empty text"
  }
}

const listOf = (value: unknown): ReadonlyArray<unknown> | undefined =>
  Array.isArray(value) ? value : typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : undefined

/**
 * `value` as a valid value of `slot`, or one line saying what the slot takes. Text is accepted where a
 * person types it: a comma-separated list, a number written as digits, an enum value in any case.
 */
export const slotValue = (slot: Slot, value: unknown): Either.Either<SlotValue, string> => {
  const wrong = Either.left(`slot ${slot.name} must be ${describeSlotType(slot)}, got ${JSON.stringify(value) ?? String(value)}`)
  switch (slot.type) {
    case "cron": {
      if (typeof value !== "string") return wrong
      const text = value.trim().replace(/\s+/g, " ")
      return text.split(" ").length === 5 && Either.isRight(Cron.parse(text)) ? Either.right(text) : wrong
    }
    case "url":
      return typeof value === "string" && isUrl(value.trim()) ? Either.right(value.trim()) : wrong
    case "url_list":
    case "string_list": {
      const list = listOf(value)
      if (list === undefined || list.length === 0) return wrong
      const items = list.map((item) => (typeof item === "string" ? item.trim() : item))
      const valid = items.every((item) => typeof item === "string" && item !== "" && (slot.type === "string_list" || isUrl(item)))
      return valid ? Either.right(items as ReadonlyArray<string>) : wrong
    }
    case "integer": {
      const n = typeof value === "number" ? value : typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN
      const inBounds = Number.isSafeInteger(n) && (slot.min === undefined || n >= slot.min) && (slot.max === undefined || n <= slot.max)
      return inBounds ? Either.right(n) : wrong
    }
    case "enum": {
      if (typeof value !== "string") return wrong
      const found = (slot.values ?? []).find((v) => v.toLowerCase() === value.trim().toLowerCase())
      return found !== undefined ? Either.right(found) : wrong
    }
    case "text":
      return typeof value === "string" && value.trim() !== "" ? Either.right(value.trim()) : wrong
  }
}

/** The slot names a template refers to as `{name}`; `{node.output}` references are not slots. */
export const templateSlots = (template: string): ReadonlyArray<string> =>
  Arr.dedupe([...template.matchAll(/\{([a-z][a-z0-9_]*)\}/g)].map((m) => m[1]!))

/** The node ids a template refers to as `{node.output}`. */
export const templateOutputs = (template: string): ReadonlyArray<string> =>
  Arr.dedupe([...template.matchAll(/\{([a-z][a-z0-9_]*)\.output\}/g)].map((m) => m[1]!))

// ---------------------------------------------------------------------------------------------------------
// Structure: what a Schema cannot say about one field alone

/** A problem with a decoded blueprint, `field` the path to what is wrong (`graph.edges[2].to`). */
export interface Problem {
  readonly field: string
  readonly message: string
}

/** What the checks may consult beyond the blueprint itself. */
export interface Known {
  /** Specialist ids a node may name; unchecked when absent. */
  readonly specialists?: ReadonlyArray<string> | undefined
  /** Tool names a node may list; unchecked when absent. */
  readonly tools?: ReadonlyArray<string> | undefined
  /**
   * Per specialist id, the tools it may use (`"all"` or a list): a node that names a specialist may list
   * only those, since the run refuses any other call. Unchecked for a specialist not in it.
   */
  readonly allowedTools?: ReadonlyMap<string, "all" | ReadonlyArray<string>> | undefined
}

const duplicates = (names: ReadonlyArray<string>) => Arr.dedupe(names.filter((name, i) => names.indexOf(name) !== i))

/**
 * Every structural problem of `blueprint`, none when it can be routed to and run: unique slot and node
 * names, valid slot definitions and defaults, a graph that is acyclic with every node reachable from its
 * entry, templates that refer only to slots that exist and to nodes that run before them, conditions on
 * nodes that have a structured output, and a mode its slots can serve.
 */
export const problems = (blueprint: Blueprint, known: Known = {}): ReadonlyArray<Problem> => {
  const out: Array<Problem> = []
  const add = (field: string, message: string) => out.push({ field, message })
  const { graph, slots } = blueprint

  // Slots
  const slotNames = slots.map((s) => s.name)
  for (const name of duplicates(slotNames)) add("slots", `two slots are named ${name}`)
  slots.forEach((slot, i) => {
    const at = `slots[${i}]`
    if (slot.type === "enum" && slot.values === undefined) add(`${at}.values`, "an enum slot must list its values")
    if (slot.type !== "enum" && slot.values !== undefined) add(`${at}.values`, `only an enum slot has values (this one is ${slot.type})`)
    if (slot.type !== "integer" && (slot.min !== undefined || slot.max !== undefined)) {
      add(`${at}.${slot.min !== undefined ? "min" : "max"}`, `only an integer slot has bounds (this one is ${slot.type})`)
    }
    if (slot.min !== undefined && slot.max !== undefined && slot.min > slot.max) add(`${at}.min`, `must not exceed max (${slot.min} > ${slot.max})`)
    // An enum without values has no valid default: that is the problem already reported, not a second one.
    if (slot.default !== undefined && !(slot.type === "enum" && slot.values === undefined)) {
      const checked = slotValue(slot, slot.default)
      if (Either.isLeft(checked)) add(`${at}.default`, checked.left)
    }
  })

  // Mode
  if (blueprint.mode === "scheduled" && !slots.some((s) => s.type === "cron")) {
    add("mode", "a scheduled blueprint needs a slot of type cron")
  }
  if (blueprint.mode === "batch" && !slots.some((s) => s.type === "url_list" || s.type === "string_list")) {
    add("mode", "a batch blueprint needs a slot of type url_list or string_list to run over")
  }

  // Nodes
  const ids = graph.nodes.map((n) => n.id)
  for (const id of duplicates(ids)) add("graph.nodes", `two nodes have the id ${id}`)
  const nodeById = new Map(graph.nodes.map((n) => [n.id, n]))
  if (!nodeById.has(graph.entry)) add("graph.entry", `no node has the id ${graph.entry} (nodes: ${ids.join(", ")})`)
  graph.nodes.forEach((node, i) => {
    const at = `graph.nodes[${i}]`
    if ((node.specialist === undefined) === (node.role === undefined)) add(at, "a node names exactly one of specialist or role")
    if (node.specialist !== undefined && known.specialists !== undefined && !known.specialists.includes(node.specialist)) {
      add(`${at}.specialist`, `unknown specialist ${JSON.stringify(node.specialist)} (see \`autopilot specialists\`)`)
    }
    if (known.tools !== undefined) {
      for (const tool of node.tools) {
        if (!known.tools.includes(tool)) add(`${at}.tools`, `unknown tool ${JSON.stringify(tool)} (tools: ${known.tools.join(", ")})`)
      }
    }
    const allowed = node.specialist === undefined ? undefined : known.allowedTools?.get(node.specialist)
    if (allowed !== undefined && allowed !== "all") {
      for (const tool of node.tools) {
        if (!allowed.includes(tool) && (known.tools === undefined || known.tools.includes(tool))) {
          add(`${at}.tools`, `the ${node.specialist} specialist may not use ${JSON.stringify(tool)} (its tools: ${allowed.join(", ") || "none"})`)
        }
      }
    }
    for (const name of templateSlots(node.prompt)) {
      if (!slotNames.includes(name)) add(`${at}.prompt`, `refers to {${name}}, which is not a slot (slots: ${slotNames.join(", ") || "none"})`)
    }
  })

  // Edges
  const outgoing = new Map<string, Array<string>>(ids.map((id) => [id, []]))
  graph.edges.forEach((edge, i) => {
    const at = `graph.edges[${i}]`
    if (!nodeById.has(edge.from)) add(`${at}.from`, `no node has the id ${edge.from}`)
    if (!nodeById.has(edge.to)) add(`${at}.to`, `no node has the id ${edge.to}`)
    if (edge.from === edge.to) add(at, `an edge from ${edge.from} to itself is a cycle`)
    if (edge.to === graph.entry) add(`${at}.to`, `no edge may lead back to the entry node ${graph.entry}`)
    outgoing.get(edge.from)?.push(edge.to)
    if (edge.when !== undefined) {
      const from = nodeById.get(edge.from)
      if (from !== undefined && from.output_schema === undefined) {
        add(`${at}.when`, `a condition reads the structured output of ${edge.from}, which has no output_schema`)
      }
      const properties = from?.output_schema?.properties
      const head = edge.when.field.split(".")[0]!
      if (typeof properties === "object" && properties !== null && !(head in properties)) {
        add(`${at}.when.field`, `${head} is not a property of ${edge.from}'s output_schema (${Object.keys(properties).join(", ")})`)
      }
      const needsValue = edge.when.op !== "exists" && edge.when.op !== "not_exists"
      if (needsValue && edge.when.value === undefined) add(`${at}.when.value`, `the ${edge.when.op} condition needs a value`)
      if ((edge.when.op === "in" || edge.when.op === "not_in") && !Array.isArray(edge.when.value)) {
        add(`${at}.when.value`, `the ${edge.when.op} condition needs a list`)
      }
      if (["gt", "gte", "lt", "lte"].includes(edge.when.op) && typeof edge.when.value !== "number") {
        add(`${at}.when.value`, `the ${edge.when.op} condition needs a number`)
      }
    }
  })

  // Acyclic and reachable: a depth-first walk from the entry, colouring nodes as it goes.
  const state = new Map<string, "open" | "done">()
  const order: Array<string> = []
  let cycle: ReadonlyArray<string> | undefined
  const walk = (id: string, stack: Array<string>) => {
    if (cycle !== undefined) return
    const seen = state.get(id)
    if (seen === "done") return
    if (seen === "open") {
      cycle = [...stack.slice(stack.indexOf(id)), id]
      return
    }
    state.set(id, "open")
    stack.push(id)
    for (const next of outgoing.get(id) ?? []) walk(next, stack)
    stack.pop()
    state.set(id, "done")
    order.push(id)
  }
  if (nodeById.has(graph.entry)) walk(graph.entry, [])
  if (cycle !== undefined) add("graph.edges", `the graph has a cycle: ${cycle.join(" → ")}`)
  else if (nodeById.has(graph.entry)) {
    const unreachable = ids.filter((id) => !state.has(id))
    if (unreachable.length > 0) add("graph.nodes", `not reachable from ${graph.entry}: ${Arr.dedupe(unreachable).join(", ")}`)
    // A node's prompt may use only the outputs of nodes that always run before it: its ancestors.
    if (unreachable.length === 0) {
      const ancestors = ancestorsOf(graph)
      graph.nodes.forEach((node, i) => {
        for (const ref of templateOutputs(node.prompt)) {
          if (!nodeById.has(ref)) add(`graph.nodes[${i}].prompt`, `refers to {${ref}.output}, and no node has the id ${ref}`)
          else if (!ancestors.get(node.id)?.has(ref)) add(`graph.nodes[${i}].prompt`, `refers to {${ref}.output}, but ${ref} does not run before ${node.id}`)
        }
      })
    }
  }

  // Curation
  blueprint.curation.nodes?.forEach((id, i) => {
    if (!nodeById.has(id)) add(`curation.nodes[${i}]`, `no node has the id ${id}`)
  })
  return out
}

/** Per node, every node with a path to it. */
const ancestorsOf = (graph: Graph): Map<string, Set<string>> => {
  const parents = new Map<string, Array<string>>(graph.nodes.map((n) => [n.id, []]))
  for (const edge of graph.edges) parents.get(edge.to)?.push(edge.from)
  const memo = new Map<string, Set<string>>()
  const of = (id: string): Set<string> => {
    const known = memo.get(id)
    if (known !== undefined) return known
    const set = new Set<string>()
    memo.set(id, set)
    for (const parent of parents.get(id) ?? []) {
      set.add(parent)
      for (const a of of(parent)) set.add(a)
    }
    return set
  }
  for (const node of graph.nodes) of(node.id)
  return memo
}

/** One line for a person: every problem, field first. */
export const describeProblems = (list: ReadonlyArray<Problem>): string => list.map((p) => `${p.field}: ${p.message}`).join("; ")

// ---------------------------------------------------------------------------------------------------------
// Conditions

/** A JSON value in a message: short, since a node's output may be long. */
const shown = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length <= 60 ? text : `${text.slice(0, 59)}…`
}

/** What `path` reaches in `output`: a value, or nothing, with why (`ticket is "p1", not an object`). */
const lookup = (output: unknown, path: string): { readonly value: unknown } | { readonly missing: string } => {
  let value = output
  const keys = path.split(".")
  for (const [i, key] of keys.entries()) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      const holder = i === 0 ? "the output" : keys.slice(0, i).join(".")
      return { missing: `${holder} is ${shown(value)}, not an object with ${key}` }
    }
    if (!Object.hasOwn(value, key)) return { missing: `${keys.slice(0, i + 1).join(".")} is missing` }
    value = (value as Record<string, unknown>)[key]
  }
  return { value }
}

/** Equality of JSON values: structural, the order of an object's keys aside. */
const same = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => same(item, b[i]))
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && same((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
}

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)

/**
 * Whether `condition` holds of a node's JSON `output`: what decides a conditional edge. A condition that
 * cannot be judged is an error naming the field and why (`severity is "high", not a number`), never a
 * quiet false: a missing field, a field of the wrong kind for the operator, an `in` without a list.
 * `exists` and `not_exists` judge any output (a missing field, or null, does not exist); every other
 * operator needs the field to be there (null is a value that `equals` can compare).
 */
export const evaluate = (condition: Condition, output: unknown): Either.Either<boolean, string> => {
  const { field, op, value: expected } = condition
  const found = lookup(output, field)
  if (op === "exists" || op === "not_exists") {
    const exists = "value" in found && found.value !== undefined && found.value !== null
    return Either.right(op === "exists" ? exists : !exists)
  }
  if (!("value" in found)) return Either.left(`${found.missing}, so ${op} cannot be judged`)
  const value = found.value
  switch (op) {
    case "equals":
      return Either.right(same(value, expected))
    case "not_equals":
      return Either.right(!same(value, expected))
    case "in":
    case "not_in":
      if (!Array.isArray(expected)) return Either.left(`the ${op} condition on ${field} needs a list as its value, not ${shown(expected)}`)
      return Either.right(expected.some((e) => same(e, value)) === (op === "in"))
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      if (!isNumber(expected)) return Either.left(`the ${op} condition on ${field} needs a number as its value, not ${shown(expected)}`)
      if (!isNumber(value)) return Either.left(`${field} is ${shown(value)}, not a number`)
      return Either.right(op === "gt" ? value > expected : op === "gte" ? value >= expected : op === "lt" ? value < expected : value <= expected)
    }
    case "contains":
      if (typeof value === "string") {
        if (typeof expected !== "string") return Either.left(`${field} is text, and the contains condition's value ${shown(expected)} is not`)
        return Either.right(value.toLowerCase().includes(expected.toLowerCase()))
      }
      if (Array.isArray(value)) return Either.right(value.some((v) => same(v, expected)))
      return Either.left(`${field} is ${shown(value)}, not text or a list`)
  }
}

/** The blueprint as the JSON text the seed's shapes carry (`blueprint_json`). */
export const toJson = (blueprint: Blueprint): string => JSON.stringify(Schema.encodeSync(Blueprint)(blueprint))
