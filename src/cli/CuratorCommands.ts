import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Config, Console, Effect, Layer, Option } from "effect"
import * as Curator from "../curator/Curator.js"
import * as Dataset from "../curator/Dataset.js"
import { BadInput } from "../domain/Errors.js"
import { plural } from "../domain/Quantity.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as MissionStore from "../store/MissionStore.js"
import * as Storage from "../store/Storage.js"
import { defaultTools } from "../tools/Defaults.js"
import { Toolkit } from "../tools/Tool.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

export const definitionsFlag = Options.file("datasets").pipe(
  Options.withPseudoName("file"),
  Options.withDescription("a JSON array of dataset definitions of your own (default: $AUTOPILOT_DATASETS); see README, \"The curator\""),
  Options.optional
)

/** The definitions file given, else $AUTOPILOT_DATASETS, read and checked before the database is opened. */
export const definitionsOf = (flag: Option.Option<string>) =>
  Effect.gen(function*() {
    const fromEnv = yield* Config.option(Config.string("AUTOPILOT_DATASETS")).pipe(Effect.orDie, Effect.map(Option.filter((v) => v !== "")))
    const file = Option.orElse(flag, () => fromEnv)
    if (Option.isNone(file)) return []
    const from = Option.isSome(flag) ? `--datasets ${file.value}` : `AUTOPILOT_DATASETS (${file.value})`
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file.value).pipe(
      Effect.mapError((error) => new BadInput({ message: `${from} cannot be read: ${error.message}` }))
    )
    return yield* Dataset.parseDefinitions(text, from)
  })

/**
 * The curator on the target's database, offered the tools runs are given. A database that holds no runs
 * (or does not exist) is not created: `absent` instead.
 */
const withCurator = <A, E, A2, E2>(
  db: Flags.DatabaseFlags,
  definitionsFile: Option.Option<string>,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, Curator.Curator>
) =>
  Effect.gen(function*() {
    const target = yield* Flags.target(db)
    const curator = yield* curatorLayer(target, definitionsFile)
    return yield* DatabaseTarget.whenHolds(target, "checkpoints", absent, Effect.provide(effect, curator))
  })

/** The curator as the CLI and the daemon have it: its definitions (`--datasets` or AUTOPILOT_DATASETS), the tools runs get. */
export const curatorLayer = (target: DatabaseTarget.DatabaseTarget, definitionsFile: Option.Option<string> = Option.none()) =>
  Effect.gen(function*() {
    const definitions = yield* definitionsOf(definitionsFile)
    const tools = yield* defaultTools(yield* DatabaseTarget.workspaceRoot(target))
    return Curator.layer({ definitions }).pipe(
      Layer.provide(Layer.mergeAll(MissionStore.layer, Storage.layer, Toolkit.layer(tools)))
    )
  })

const noRuns = (db: Flags.DatabaseFlags) =>
  Effect.flatMap(Flags.target(db), (target) =>
    Effect.fail(new BadInput({ message: `${DatabaseTarget.describe(target)} holds no runs: there is nothing to curate yet` })))

const datasets = Command.make(
  "datasets",
  { db: Flags.db, definitions: definitionsFlag, format: jsonFormat },
  ({ db, definitions, format }) =>
    Effect.gen(function*() {
      const listed = yield* withCurator(db, definitions, Effect.succeed([]), Effect.flatMap(Curator.Curator, (c) => c.datasets))
      if (format === "json") return yield* Console.log(Render.json(listed, 2))
      if (listed.length === 0) return yield* Console.log("no runs yet: nothing captured")
      const rows = [["ID", "SAMPLES", "FILTERS"], ...listed.map((d) => [d.definition.id, String(d.samples), Dataset.filtersText(d.definition)])]
      const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
      for (const row of rows) yield* Console.log([row[0]!.padEnd(widths[0]!), row[1]!.padStart(widths[1]!), row[2]].join("  "))
    })
).pipe(Command.withDescription("The datasets of captured training samples (captures what ended since the last look): all, per blueprint, per specialist, and your own"))

const show = Command.make(
  "show",
  { id: Args.text({ name: "dataset" }), db: Flags.db, definitions: definitionsFlag, format: jsonFormat },
  ({ db, definitions, format, id }) =>
    Effect.gen(function*() {
      const report = yield* withCurator(db, definitions, noRuns(db), Effect.flatMap(Curator.Curator, (c) => c.show(id)))
      if (format === "json") return yield* Console.log(Render.json(report, 2))
      const d = report.definition
      yield* Console.log(`dataset ${d.id}${d.description === "" ? "" : `: ${d.description}`}`)
      yield* Console.log(`filters: ${Dataset.filtersText(d)}`)
      yield* Console.log(`samples: ${report.samples} (${plural(report.duplicates, "duplicate")} dropped)`)
      yield* Console.log(`train: ${report.train} · eval: ${report.eval}`)
    })
).pipe(Command.withDescription("A dataset's filters, and how many samples it holds now: duplicates dropped, train and eval"))

const exportCommand = Command.make(
  "export",
  {
    id: Args.text({ name: "dataset" }),
    out: Options.text("out").pipe(Options.withPseudoName("file"), Options.withDescription("the JSONL file to write (replaced, once complete, if it exists)")),
    split: Flags.oneOf("split", Curator.Splits, "which split to write: train, or the held-out eval split"),
    db: Flags.db,
    definitions: definitionsFlag,
    format: jsonFormat
  },
  ({ db, definitions, format, id, out, split }) =>
    Effect.gen(function*() {
      const report = yield* withCurator(db, definitions, noRuns(db), Effect.flatMap(Curator.Curator, (c) => c.export(id, { out, split })))
      if (format === "json") return yield* Console.log(Render.json(report, 2))
      yield* Console.log(
        `wrote ${plural(report.written, `${split} sample`)} of dataset ${report.dataset} to ${report.file} (${report.bytes.toLocaleString("en-US")} bytes); ` +
          `left out ${plural(report.duplicates, "duplicate")} and ${report.other_split} of the ${split === "train" ? "eval" : "train"} split`
      )
      if (report.invalid > 0) yield* Console.log(`left out ${plural(report.invalid, "sample")} that do not fit the fine-tuning format; the first: ${report.first_problem}`)
    })
).pipe(Command.withDescription("Write a dataset's train (or eval) split as OpenAI chat fine-tuning JSONL, every line checked against the format"))

export const curator = Command.make("curator").pipe(
  Command.withDescription("Training data from successful work: accepted run iterations and succeeded mission nodes, as fine-tuning JSONL"),
  Command.withSubcommands([datasets, show, exportCommand])
)
