import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import { BadInput } from "../domain/Errors.js"
import * as Fanout from "../domain/Fanout.js"
import * as Flags from "./Flags.js"
import * as Run from "./RunCommand.js"

/** The largest `--max-items`: ten million children is more than one database should hold for one run. */
const MAX_ITEMS = 10_000_000

const wholeNumber = (flag: string, raw: string, max: number) =>
  /^\d{1,9}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= max
    ? Effect.succeed(Number(raw))
    : Effect.fail(new BadInput({ message: `${flag} must be a whole number from 1 to ${max}, got "${raw}"` }))

const itemsOf = (given: ReadonlyArray<string>, file: Option.Option<string>) =>
  Option.match(file, {
    onNone: () =>
      given.length > 0
        ? Effect.succeed(given)
        : Effect.fail(new BadInput({ message: "a fan-out needs items: --item A --item B ... or --items-file FILE" })),
    onSome: (path) =>
      Effect.gen(function*() {
        if (given.length > 0) return yield* new BadInput({ message: "give the items with --item or with --items-file, not both" })
        const text = yield* Effect.try(() => fs.readFileSync(path, "utf8")).pipe(
          Effect.mapError(() => new BadInput({ message: `--items-file ${path} cannot be read: it must be a readable text file, one item per line` }))
        )
        const items = Fanout.itemsOfText(text)
        return items.length > 0
          ? items
          : yield* new BadInput({ message: `--items-file ${path} has no items (blank lines and lines starting with # are skipped)` })
      })
  })

// Children's answers are not shown as they are generated: many at once would interleave.
const { deltas: _deltas, ...sessionFlags } = Run.sessionFlags

export const fanout = Command.make(
  "fanout",
  {
    template: Options.text("template").pipe(
      Options.withDescription("each child's objective, with {item} where its item goes, e.g. \"Research {item}\"")
    ),
    items: Options.text("item").pipe(Options.withDescription("an item, one child each; repeat for several"), Options.repeated),
    itemsFile: Options.text("items-file").pipe(
      Options.withPseudoName("file"),
      Options.withDescription("a file of items, one per line; blank lines and lines starting with # are skipped"),
      Options.optional
    ),
    criteria: Options.text("criterion").pipe(
      Options.withDescription("a success criterion of every child, {item} replaced by its item; repeat for several (default: each child's objective)"),
      Options.repeated
    ),
    maxParallel: Options.text("max-parallel").pipe(
      Options.withPseudoName("integer"),
      Options.withDescription(`how many children run at a time: a whole number from 1 to ${Fanout.MAX_PARALLEL} (default ${Fanout.defaults.maxParallel})`),
      Options.withDefault(String(Fanout.defaults.maxParallel))
    ),
    maxItems: Options.text("max-items").pipe(
      Options.withPseudoName("integer"),
      Options.withDescription(`refuse more items than this: a whole number from 1 to ${MAX_ITEMS} (default ${Fanout.defaults.maxItems})`),
      Options.withDefault(String(Fanout.defaults.maxItems))
    ),
    runId: Options.text("run-id").pipe(
      Options.withDescription("id for the fan-out (default: generated); child i is <id>.<i>-<item as letters, digits and ->"),
      Options.optional
    ),
    specialist: Run.specialistFlag,
    project: Flags.project(`the project the fan-out and its children belong to (default "default")`),
    ...sessionFlags
  },
  (input) =>
    Effect.gen(function*() {
      const project = yield* Flags.projectOf(input.project)
      const maxParallel = yield* wholeNumber("--max-parallel", input.maxParallel, Fanout.MAX_PARALLEL)
      const maxItems = yield* wholeNumber("--max-items", input.maxItems, MAX_ITEMS)
      const items = yield* itemsOf(input.items, input.itemsFile)
      if (items.length > maxItems) {
        return yield* new BadInput({ message: `${items.length} items is more than --max-items ${maxItems}` })
      }
      const runId = yield* Option.match(input.runId, { onNone: () => Run.newRunId("fanout"), onSome: Flags.runId })
      const criteria = input.criteria.length > 0 ? input.criteria : undefined
      // Checked here too, before the database is opened: bad input leaves nothing behind.
      yield* Fanout.check(runId, { template: input.template, items, max_parallel: maxParallel }, criteria, {
        maxItems,
        maxDepth: Fanout.defaults.maxDepth
      })
      const specialist = yield* Run.specialistOf(input.specialist)
      yield* Run.session(runId, undefined, false, { ...input, deltas: false }, false, specialist, (runs, options) =>
        runs.fanout({ ...options, template: input.template, items, criteria, maxParallel, maxItems, project }))
    })
).pipe(Command.withDescription("Run one mission per item, at most --max-parallel at a time, each within a slice of the fan-out's budget"))
