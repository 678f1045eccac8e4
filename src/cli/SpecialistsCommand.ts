import { Args, Command } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { plural } from "../domain/Quantity.js"
import { describeTools } from "../specialists/Specialist.js"
import * as Specialists from "../specialists/Specialists.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/**
 * The catalog: the built-ins and `$AUTOPILOT_HOME/specialists/*.json`, each bad file reported in one line
 * on stderr (not Console.error, which main silences while @effect/cli runs) and skipped.
 */
export const catalog = Effect.gen(function*() {
  const specialists = yield* Specialists.Specialists
  for (const problem of specialists.problems) process.stderr.write(`autopilot: warning: ${Specialists.describeProblem(problem)}\n`)
  return specialists
}).pipe(Effect.provide(Specialists.layer))

const entryJson = ({ file, specialist }: Specialists.Entry) => ({ ...specialist, file })

const listedText = (entries: ReadonlyArray<Specialists.Entry>) => {
  const rows = [["ID", "NAME", "CATEGORY", "TIER"], ...entries.map(({ specialist: s }) => [s.id, s.name, s.category, s.model_tier])]
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row, i) => {
    const file = i === 0 ? null : entries[i - 1]!.file
    const line = row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join("  ")
    return file === null ? line : `${line}  (${file})`
  }).join("\n")
}

const shownText = ({ file, specialist: s }: Specialists.Entry) =>
  [
    `${s.id}: ${s.name}`,
    `category: ${s.category} · model tier: ${s.model_tier} · tools: ${describeTools(s.allowed_tools)}`,
    `defined in: ${file ?? "the built-in catalog"}`,
    "",
    `role: ${s.role}`,
    `goal: ${s.goal}`,
    `background: ${s.background}`,
    "instructions:",
    ...s.instructions.map((line, i) => `  ${i + 1}. ${line}`)
  ].join("\n")

const show = Command.make(
  "show",
  { id: Args.text({ name: "id" }), format: jsonFormat },
  ({ format, id }) =>
    Effect.gen(function*() {
      const entry = yield* Effect.flatMap(catalog, (specialists) => specialists.get(id))
      yield* Console.log(format === "json" ? Render.json(entryJson(entry), 2) : shownText(entry))
    })
).pipe(Command.withDescription("Show one specialist: its role, goal, background, instructions, tools and model tier"))

export const specialists = Command.make(
  "specialists",
  {
    category: Flags.category("specialists"),
    format: jsonFormat
  },
  ({ category, format }) =>
    Effect.gen(function*() {
      const specialists = yield* catalog
      const listed = yield* specialists.list({ category: Option.getOrUndefined(category) })
      if (format === "json") return yield* Console.log(Render.json(listed.map(entryJson), 2))
      yield* Console.log(listedText(listed))
      yield* Console.log(
        `\n${plural(listed.length, "specialist")}. \`autopilot specialists show ID\` shows one; \`autopilot run … --specialist ID\` runs a mission as one.` +
          `\nYour own: ${specialists.directory}/*.json (one specialist per file; a file may replace a built-in by its id).`
      )
    })
).pipe(
  Command.withDescription("List the specialists a mission can run as: the built-in roles and your own from $AUTOPILOT_HOME/specialists"),
  Command.withSubcommands([show])
)
