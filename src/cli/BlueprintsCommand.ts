import { Args, Command } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Either, Option, Schema } from "effect"
import { Blueprint, type Condition, type Slot } from "../domain/Blueprint.js"
import { type BudgetPolicy } from "../domain/Budget.js"
import { BadInput } from "../domain/Errors.js"
import { describePolicy, policyOf } from "../domain/Healing.js"
import { dollarCap, plural } from "../domain/Quantity.js"
import type { Entry } from "../routing/Blueprints.js"
import { Blueprints } from "../routing/Blueprints.js"
import * as Catalog from "../routing/Catalog.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/**
 * The catalog: the built-ins and `$AUTOPILOT_HOME/blueprints/*.json`, each bad file reported in one line
 * on stderr (not Console.error, which main silences while @effect/cli runs) and skipped.
 */
export const catalog = Effect.gen(function*() {
  const blueprints = yield* Blueprints
  for (const problem of blueprints.problems) process.stderr.write(`autopilot: warning: ${Catalog.describeProblem(problem)}\n`)
  return blueprints
}).pipe(Effect.provide(Catalog.layer))

/** A blueprint as its file holds it, so that what `show --format json` prints can be saved as one. */
const encoded = (entry: Entry) => Schema.encodeSync(Blueprint)(entry.blueprint)

const listedText = (entries: ReadonlyArray<Entry>) => {
  const width = (f: (entry: Entry) => string) => Math.max(...entries.map((entry) => f(entry).length))
  const idWidth = width((e) => e.blueprint.id)
  const modeWidth = width((e) => e.blueprint.mode)
  const slotsWidth = width((e) => plural(e.blueprint.slots.length, "slot"))
  const lines: Array<string> = []
  entries.forEach((entry, i) => {
    const { category, id, mode, slots, title } = entry.blueprint
    if (i === 0 || entries[i - 1]!.blueprint.category !== category) {
      if (lines.length > 0) lines.push("")
      lines.push(category)
    }
    const row = `  ${id.padEnd(idWidth)}  ${mode.padEnd(modeWidth)}  ${plural(slots.length, "slot").padEnd(slotsWidth)}  ${title}`
    lines.push(entry.file === null ? row : `${row}  (${entry.file})`)
  })
  return lines.join("\n")
}

const slotText = (slot: Slot) => {
  const type = slot.type === "integer" && (slot.min !== undefined || slot.max !== undefined)
    ? `integer ${slot.min ?? ""}–${slot.max ?? ""}`
    : slot.type === "enum"
    ? `enum (${(slot.values ?? []).join(", ")})`
    : slot.type
  const facts = [type, slot.required ? "required" : "optional", ...(slot.default === undefined ? [] : [`default ${JSON.stringify(slot.default)}`])]
  return [`  ${slot.name}: ${facts.join(", ")}`, `      ${slot.description}`]
}

const ops: Record<Condition["op"], string> = {
  equals: "=",
  not_equals: "≠",
  in: "in",
  not_in: "not in",
  gt: ">",
  gte: "≥",
  lt: "<",
  lte: "≤",
  exists: "exists",
  not_exists: "does not exist",
  contains: "contains"
}

const conditionText = (condition: Condition) =>
  `${condition.field} ${ops[condition.op]}${condition.value === undefined ? "" : ` ${JSON.stringify(condition.value)}`}`

const indented = (text: string, by: string) => text.split("\n").map((line) => `${by}${line}`).join("\n")

const budgetText = (budget: BudgetPolicy) => {
  const cap = (value: number, shown: string) => (value === 0 ? null : shown)
  const caps = [
    cap(budget.max_seconds, `${budget.max_seconds} s`),
    cap(budget.max_tool_calls, plural(budget.max_tool_calls, "tool call")),
    cap(budget.max_tokens, plural(budget.max_tokens, "token", budget.max_tokens.toLocaleString("en-US"))),
    cap(budget.max_dollars, dollarCap(budget.max_dollars)),
    cap(budget.max_iterations, plural(budget.max_iterations, "iteration"))
  ].filter((c) => c !== null)
  return caps.length === 0 ? "no limits" : caps.join(" · ")
}

const shownText = ({ blueprint: b, file }: Entry) => {
  const listSlot = b.slots.find((s) => s.type === "url_list" || s.type === "string_list")
  const mode = b.mode === "batch" && listSlot !== undefined
    ? `batch (one run per item of ${listSlot.name})`
    : b.mode === "scheduled"
    ? `scheduled (on the cron of ${b.slots.find((s) => s.type === "cron")?.name})`
    : b.mode
  const properties = (schema: Record<string, unknown> | undefined) => {
    const found = schema?.properties
    return typeof found === "object" && found !== null ? Object.keys(found) : []
  }
  const nodeLines = b.graph.nodes.flatMap((node) => {
    const who = node.specialist !== undefined ? `specialist ${node.specialist}` : `role: ${node.role}`
    const output = properties(node.output_schema)
    const facts = [
      who,
      `model tier ${node.model_tier}`,
      `tools: ${node.tools.length === 0 ? "none" : node.tools.join(", ")}`,
      ...(node.output_schema === undefined ? [] : [`output: ${output.length === 0 ? "JSON" : `{${output.join(", ")}}`}`])
    ]
    return [`  ${node.id}${node.id === b.graph.entry ? " (entry)" : ""}: ${facts.join(" · ")}`, indented(node.prompt, "      ")]
  })
  const edgeLines = b.graph.edges.map((edge) => `  ${edge.from} → ${edge.to}${edge.when === undefined ? "" : `  when ${conditionText(edge.when)}`}`)
  const curation = b.curation.capture
    ? [
      "kept as training data",
      ...(b.curation.nodes === undefined ? [] : [`from ${b.curation.nodes.join(", ")}`]),
      ...(b.curation.min_confidence === undefined ? [] : [`when the critic is at least ${b.curation.min_confidence} confident`]),
      ...(b.curation.tags.length === 0 ? [] : [`tagged ${b.curation.tags.join(", ")}`])
    ].join(", ")
    : "not kept as training data"
  return [
    `${b.id}: ${b.title}`,
    `category: ${b.category} · mode: ${mode} · version ${b.version}`,
    `defined in: ${file ?? "the built-in catalog"}`,
    "",
    b.description,
    "",
    "slots:",
    ...(b.slots.length === 0 ? ["  none"] : b.slots.flatMap(slotText)),
    "",
    "nodes:",
    ...nodeLines,
    "",
    "edges:",
    ...(edgeLines.length === 0 ? ["  none"] : edgeLines),
    "",
    "success criteria:",
    ...b.success_criteria.map((criterion, i) => `  ${i + 1}. ${criterion}`),
    "",
    `budget: ${budgetText(b.budget)}`,
    `curation: ${curation}`,
    `healing${b.healing === undefined ? " (the default policy)" : ""}: ${describePolicy(policyOf(b))}`,
    "",
    "example goals:",
    ...b.example_goals.map((goal) => `  - ${goal}`)
  ].join("\n")
}

const show = Command.make(
  "show",
  { id: Args.text({ name: "id" }), format: jsonFormat },
  ({ format, id }) =>
    Effect.gen(function*() {
      const entry = yield* Effect.flatMap(catalog, (blueprints) => blueprints.get(id))
      yield* Console.log(format === "json" ? Render.json(encoded(entry), 2) : shownText(entry))
    })
).pipe(Command.withDescription("Show one blueprint: its slots, agent graph, success criteria, budget and example goals"))

const add = Command.make(
  "add",
  { file: Args.file({ name: "file", exists: "yes" }), format: jsonFormat },
  ({ file, format }) =>
    Effect.gen(function*() {
      const text = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
        Effect.mapError((error) => new BadInput({ message: `blueprint file ${file} cannot be read: ${error.message}` }))
      )
      const blueprint = yield* Either.match(Catalog.decodeText(text), {
        onLeft: (problem) => Effect.fail(new BadInput({ message: `blueprint file ${file}: ${problem}` })),
        onRight: Effect.succeed
      })
      const entry = yield* Effect.flatMap(catalog, (blueprints) => blueprints.add(blueprint))
      yield* Console.log(
        format === "json"
          ? Render.json({ ok: true, id: entry.blueprint.id, file: entry.file })
          : `ok: blueprint ${entry.blueprint.id} kept as ${entry.file}; goals can be routed to it now`
      )
    })
).pipe(Command.withDescription("Check a blueprint file and keep it as your own in $AUTOPILOT_HOME/blueprints (never over another)"))

export const blueprints = Command.make(
  "blueprints",
  {
    category: Flags.category("blueprints"),
    format: jsonFormat
  },
  ({ category, format }) =>
    Effect.gen(function*() {
      const blueprints = yield* catalog
      const listed = yield* blueprints.list({ category: Option.getOrUndefined(category) })
      if (format === "json") return yield* Console.log(Render.json(listed.map(encoded), 2))
      yield* Console.log(listedText(listed))
      const categories = new Set(listed.map((entry) => entry.blueprint.category)).size
      yield* Console.log(
        `\n${plural(listed.length, "blueprint")} in ${categories} ${categories === 1 ? "category" : "categories"}. ` +
          "`autopilot blueprints show ID` shows one." +
          `\nYour own: ${blueprints.directory}/*.json (one blueprint per file; a file may replace a built-in by its id).`
      )
    })
).pipe(
  Command.withDescription("List the blueprints goals are routed to: the built-in catalog and your own from $AUTOPILOT_HOME/blueprints"),
  Command.withSubcommands([show, add])
)
