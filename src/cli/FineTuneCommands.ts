import { Args, Command, Options } from "@effect/cli"
import type { SqlClient } from "@effect/sql"
import { Console, Effect, Layer, Logger, Option, Schema } from "effect"
import * as Curator from "../curator/Curator.js"
import * as Dataset from "../curator/Dataset.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as DatasetFile from "../finetune/DatasetFile.js"
import { EvaluationReport, type ModelScore } from "../finetune/EvaluationReport.js"
import { ModelRoute } from "../finetune/ModelRoute.js"
import * as Promotions from "../finetune/Promotions.js"
import { FineTuneJob, FineTuneJobNotFound, type JobEvent } from "../finetune/FineTuneJob.js"
import * as FineTunes from "../finetune/FineTunes.js"
import * as Providers from "../finetune/Providers.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import * as Database from "../store/Database.js"
import * as FineTuneStore from "../store/FineTuneStore.js"
import * as PromotionStore from "../store/PromotionStore.js"
import * as CuratorCommands from "./CuratorCommands.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import * as Run from "./RunCommand.js"

/**
 * The curator's definition of dataset `id`, or one line naming the known ones: a job is named for a dataset
 * the curator knows (its own `threshold` and `base_model` apply). A database without runs knows `all` and
 * the datasets defined (`--datasets`, AUTOPILOT_DATASETS); nothing is created to find that out.
 */
const knownDataset = (target: DatabaseTarget.DatabaseTarget, definitionsFile: Option.Option<string>, id: string) =>
  Effect.gen(function*() {
    const own = yield* CuratorCommands.definitionsOf(definitionsFile)
    const curator = yield* CuratorCommands.curatorLayer(target, definitionsFile)
    const withoutRuns = Effect.suspend(() => {
      const known = [...(own.some((d) => d.id === Dataset.all.id) ? [] : [Dataset.all]), ...own]
      const found = known.find((d) => d.id === id)
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.fail(new BadInput({ message: `unknown dataset "${id}": known datasets are ${known.map((d) => d.id).join(", ")} (see \`autopilot curator datasets\`)` }))
    })
    return yield* DatabaseTarget.whenHolds(
      target,
      "checkpoints",
      withoutRuns,
      Effect.provide(Effect.map(Effect.flatMap(Curator.Curator, (c) => c.show(id)), (report) => report.definition), curator)
    )
  })

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** The jobs of the database, unless it has never held any: then `absent`, and nothing is created. */
const withStore = <A, E, A2, E2>(
  db: Flags.DatabaseFlags,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, FineTuneStore.FineTuneStore | SqlClient.SqlClient>
) =>
  Effect.flatMap(Flags.target(db), (target) => DatabaseTarget.whenHolds(target, "finetune_jobs", absent, Effect.provide(effect, FineTuneStore.layer)))

/** FineTunes over the provider the environment chooses; every variable is checked before the database opens. */
export const fineTunesLayer = (target: DatabaseTarget.DatabaseTarget) =>
  Effect.map(Effect.all([FineTunes.config, Layer.build(Providers.layerConfig).pipe(Effect.scoped)]), ([config]) =>
    FineTunes.layer(config).pipe(
      Layer.provide(Providers.layerConfig),
      Layer.provide(FineTuneStore.layer),
      Layer.provide(DatabaseTarget.layer(target))
    ))

const withFineTunes = <A, E>(db: Flags.DatabaseFlags, effect: Effect.Effect<A, E, FineTunes.FineTunes>) =>
  Effect.gen(function*() {
    const target = yield* Flags.target(db)
    return yield* Effect.provide(effect, yield* fineTunesLayer(target))
  })

/**
 * Promotions on the run's provider as the flags choose it (the judge, and the baseline's default model),
 * the curator's datasets (`--datasets` or AUTOPILOT_DATASETS), every variable checked before the database opens.
 */
export const promotionsLayer = (
  target: DatabaseTarget.DatabaseTarget,
  flags: {
    readonly llm: LlmChoice.LlmChoice["provider"] | undefined
    readonly model: Option.Option<string>
    readonly mockScript: Option.Option<string>
    readonly definitions: Option.Option<string>
  }
) =>
  Effect.gen(function*() {
    const config = yield* Promotions.config
    const choice = yield* LlmChoice.resolve(undefined, Run.llmRequested({ llm: flags.llm, model: Option.none(), mockScript: flags.mockScript }, false))
    const llm = yield* LlmLayer.layerOf(choice)
    const curator = yield* CuratorCommands.curatorLayer(target, flags.definitions)
    return Promotions.layer(config, yield* LlmLayer.servingOf(choice), Option.getOrUndefined(flags.model)).pipe(
      Layer.provide(Layer.mergeAll(FineTuneStore.layer, PromotionStore.layer, curator, llm)),
      Layer.provide(DatabaseTarget.layer(target))
    )
  })

/** What promotions hold, read without making their tables in a database that has none yet: `absent` then. */
const promotionsRead = <A>(absent: A, read: (store: PromotionStore.PromotionStore["Type"]) => Effect.Effect<A, PersistenceError>) =>
  Effect.flatMap(Database.hasTable("model_routes"), (has): Effect.Effect<A, PersistenceError, SqlClient.SqlClient> =>
    has ? Effect.provide(Effect.flatMap(PromotionStore.PromotionStore, read), PromotionStore.layer) : Effect.succeed(absent))

const encode = Schema.encodeSync(FineTuneJob)

const tableOf = (jobs: ReadonlyArray<FineTuneJob>) => {
  const rows = [
    ["ID", "DATASET", "SAMPLES", "PROVIDER", "STATUS", "MODEL", "CREATED"],
    ...jobs.map((j) => [j.id, j.dataset_id, String(j.samples), j.provider, j.status, j.fine_tuned_model ?? "", j.created_at])
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => (column < row.length - 1 ? cell.padEnd(widths[column]!) : cell)).join("  ").trimEnd()).join("\n")
}

const jobText = (job: FineTuneJob, events: ReadonlyArray<JobEvent>) =>
  [
    `${job.id}  ${job.status}`,
    `dataset     ${job.dataset_id} (${job.samples} samples, ${job.snapshot})`,
    `file        ${job.file}`,
    `provider    ${job.provider}${job.provider_job_id === null ? "" : ` job ${job.provider_job_id}`}`,
    `base model  ${job.base_model}`,
    ...(job.fine_tuned_model === null ? [] : [`model       ${job.fine_tuned_model}${job.base_url === null ? "" : ` at ${job.base_url}`}`]),
    ...(job.error === null ? [] : [`error       ${job.error}`]),
    `created     ${job.created_at}${job.finished_at === null ? "" : `, ended ${job.finished_at}`}`,
    "",
    ...events.map((e) => `${e.at}  ${e.kind}  ${e.message ?? e.status}`)
  ].join("\n")

const list = Command.make("list", { db: Flags.db, format: jsonFormat }, ({ db, format }) =>
  Effect.gen(function*() {
    const jobs = yield* withStore(db, Effect.succeed([]), Effect.flatMap(FineTuneStore.FineTuneStore, (store) => store.list()))
    if (format === "json") return yield* Console.log(Render.json(jobs.map((job) => encode(job)), 2))
    if (jobs.length === 0) return yield* Console.log("no fine-tune jobs yet (`autopilot finetune start --dataset ID --file FILE` starts one)")
    yield* Console.log(tableOf(jobs))
  })).pipe(Command.withDescription("List fine-tune jobs, newest first"))

const show = Command.make("show", { id: Args.text({ name: "job-id" }), db: Flags.db, format: jsonFormat }, ({ db, format, id }) =>
  Effect.gen(function*() {
    const [job, events, evaluations, routes] = yield* withStore(
      db,
      Effect.fail(new FineTuneJobNotFound({ id })),
      Effect.gen(function*() {
        const store = yield* FineTuneStore.FineTuneStore
        const found = yield* store.require(id)
        const [evaluations, routes] = yield* promotionsRead<readonly [ReadonlyArray<EvaluationReport>, ReadonlyArray<ModelRoute>]>([[], []], (promotions) =>
          Effect.all([promotions.evaluations(id), Effect.map(promotions.routes, (all) => all.filter((r) => r.job_id === id))]))
        return [found, yield* store.events(id), evaluations, routes] as const
      })
    )
    if (format === "json") {
      return yield* Console.log(Render.json({
        ...encode(job),
        events: events.map((e) => ({ seq: e.seq, kind: e.kind, at: e.at, status: e.status, message: e.message })),
        evaluations: evaluations.map((e) => encodeReport(e)),
        routes: routes.map((r) => encodeRoute(r))
      }, 2))
    }
    yield* Console.log(jobText(job, events))
    if (evaluations.length > 0) yield* Console.log(`\n${reportText(evaluations[0]!)}`)
    for (const route of routes) yield* Console.log(`\n${routeText(route)}`)
  })).pipe(Command.withDescription("Show a fine-tune job, its log, its latest evaluation and its routes"))

const cancel = Command.make("cancel", { id: Args.text({ name: "job-id" }), db: Flags.db }, ({ db, id }) =>
  Effect.gen(function*() {
    // An unknown job is said before the provider's variables are read.
    yield* withStore(db, Effect.fail(new FineTuneJobNotFound({ id })), Effect.flatMap(FineTuneStore.FineTuneStore, (store) => store.require(id)))
    const job = yield* withFineTunes(db, Effect.flatMap(FineTunes.FineTunes, (fineTunes) => fineTunes.cancel(id)))
    yield* Console.log(`${job.id} ${job.status}`)
  })).pipe(Command.withDescription("Cancel a fine-tune job at its provider"))

const start = Command.make(
  "start",
  {
    dataset: Options.text("dataset").pipe(Options.withDescription("the dataset's id: one job per content of it, ever")),
    file: Options.file("file").pipe(Options.withDescription("its chat fine-tuning JSONL file (copied under $AUTOPILOT_HOME/finetune/datasets, named for its content)")),
    baseModel: Options.text("base-model").pipe(Options.withDescription("the model to tune (default $AUTOPILOT_FINETUNE_BASE_MODEL, else gpt-4o-mini-2024-07-18)"), Options.optional),
    threshold: Options.text("threshold").pipe(Options.withDescription("samples needed for this dataset (default $AUTOPILOT_FINETUNE_THRESHOLD, else 100)"), Options.optional),
    definitions: CuratorCommands.definitionsFlag,
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const threshold = yield* Option.match(input.threshold, { onNone: () => Effect.succeed(undefined), onSome: (raw) => FineTunes.thresholdOf("--threshold", raw) })
      yield* DatasetFile.read(input.file)
      const target = yield* Flags.target(input.db)
      const fineTunes = yield* fineTunesLayer(target)
      const definition = yield* knownDataset(target, input.definitions, input.dataset)
      // The job trains on a copy named for its content: the user's file, or a later export, may change meanwhile.
      const kept = yield* DatasetFile.keep((yield* FineTunes.config).snapshots, definition.id, input.file)
      const considered = yield* Effect.provide(
        Effect.flatMap(FineTunes.FineTunes, (f) =>
          f.consider({
            id: definition.id,
            ...kept,
            threshold: threshold ?? definition.threshold,
            base_model: Option.getOrUndefined(input.baseModel) ?? definition.base_model
          })),
        fineTunes
      )
      if (input.format === "json") {
        return yield* Console.log(Render.json(FineTunes.Considered.$match(considered, {
          Started: ({ job }) => ({ started: true, job: encode(job) }),
          Exists: ({ job }) => ({ started: false, job: encode(job) }),
          Training: ({ job }) => ({ started: false, job: encode(job) }),
          BelowThreshold: ({ samples, since, threshold }) => ({ started: false, samples, since, threshold })
        }), 2))
      }
      yield* Console.log(FineTunes.Considered.$match(considered, {
        Started: ({ job }) => `${job.id} started (${job.status}) on ${job.samples} samples`,
        Exists: ({ job }) => `${job.id} exists for this content of ${job.dataset_id} (${job.status}): nothing started`,
        Training: ({ job }) => `${job.id} of ${job.dataset_id} is still ${job.status}: nothing started until it ends`,
        BelowThreshold: ({ samples, since, threshold }) =>
          since === 0
            ? `${samples} samples, below the threshold of ${threshold}: nothing started`
            : `${samples} samples, ${samples - since} since the last job's ${since}, below the threshold of ${threshold}: nothing started`
      }))
    })
).pipe(Command.withDescription("Start a fine-tune job on a dataset file if it has enough samples and its content has none yet"))

/** A provider that cannot be asked now is said on stderr, one line each poll; stdout stays the command's answer. */
const warnings = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => {
  process.stderr.write(`autopilot: ${Array.isArray(message) ? message.join(" ") : String(message)}\n`)
}))

const poll = Command.make("poll", { db: Flags.db }, ({ db }) =>
  Effect.gen(function*() {
    yield* withFineTunes(db, Effect.flatMap(FineTunes.FineTunes, (fineTunes) => fineTunes.untilDone)).pipe(Effect.provide(warnings))
    const jobs = yield* withStore(db, Effect.succeed([]), Effect.flatMap(FineTuneStore.FineTuneStore, (store) => store.list()))
    yield* Console.log(jobs.length === 0 ? "no fine-tune jobs" : tableOf(jobs))
  })).pipe(Command.withDescription("Poll the provider's unfinished jobs every $AUTOPILOT_FINETUNE_POLL_SECONDS (default 30) until all have ended"))

const encodeReport = Schema.encodeSync(EvaluationReport)
const encodeRoute = Schema.encodeSync(ModelRoute)

const money = (usd: number | null) => (usd === null ? "no price" : `$${usd.toPrecision(3)}`)
const scoreCells = (s: ModelScore) => [
  s.model,
  `${Math.round(s.pass_rate * 1000) / 10}% (${s.passed}/${s.samples})`,
  money(s.cost_per_step_usd),
  `${Math.round(s.latency_per_step_ms)} ms`,
  String(s.errors)
]

/** A report as people read it: the two models side by side, then the verdict and why. */
export const reportText = (r: EvaluationReport) => {
  const labels = ["", "model", "pass rate", "cost per step", "latency per step", "errors"]
  const candidate = ["candidate", ...scoreCells(r.candidate)]
  const baseline = ["baseline", ...scoreCells(r.baseline)]
  const width = (column: ReadonlyArray<string>) => Math.max(...column.map((c) => c.length))
  return [
    `evaluation ${r.id}  ${r.verdict}  ${r.evaluated_at}`,
    ...labels.map((label, i) => `${label.padEnd(width(labels))}  ${candidate[i]!.padEnd(width(candidate))}  ${baseline[i]}`.trimEnd()),
    `tolerance ${r.tolerance_points} points; scope ${r.scope ?? "(none)"}; the evaluation cost ${money(r.cost_usd)}`,
    `${r.verdict === "promotable" ? "promotable" : "stays a candidate"}: ${r.reason}`
  ].join("\n")
}

const routeText = (r: ModelRoute) =>
  `route ${r.id}  ${r.scope} -> ${r.model}${r.base_url === null ? "" : ` at ${r.base_url}`}  promoted ${r.promoted_at}${
    r.retired_at === null ? "  (active)" : `, retired ${r.retired_at}: ${r.retired_reason ?? ""}`
  }`

const promotionFlags = {
  db: Flags.db,
  llm: Run.sessionFlags.llm,
  model: Options.text("model").pipe(
    Options.withDescription("the model the traffic gets when no route is in force, if not the provider's default (a daemon's --model): the baseline"),
    Options.optional
  ),
  mockScript: Run.sessionFlags.mockScript,
  definitions: CuratorCommands.definitionsFlag,
  format: jsonFormat
}

const withPromotions = <A, E>(
  flags: {
    readonly db: Flags.DatabaseFlags
    readonly llm: LlmChoice.LlmChoice["provider"] | undefined
    readonly model: Option.Option<string>
    readonly mockScript: Option.Option<string>
    readonly definitions: Option.Option<string>
  },
  id: string,
  effect: (promotions: Promotions.Promotions["Type"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    // An unknown job is said before any provider variable is read or any table made.
    yield* withStore(flags.db, Effect.fail(new FineTuneJobNotFound({ id })), Effect.flatMap(FineTuneStore.FineTuneStore, (store) => store.require(id)))
    const layer = yield* promotionsLayer(yield* Flags.target(flags.db), flags)
    return yield* Effect.provide(Effect.flatMap(Promotions.Promotions, effect), layer)
  })

const evaluate = Command.make("evaluate", { id: Args.text({ name: "job-id" }), ...promotionFlags }, (input) =>
  Effect.gen(function*() {
    const report = yield* withPromotions(input, input.id, (p) => p.evaluate(input.id))
    yield* Console.log(input.format === "json" ? Render.json(encodeReport(report), 2) : reportText(report))
  })).pipe(Command.withDescription(
    "Replay the dataset's held-out samples on a succeeded job's model and on the one its scope uses now, have the judge grade both, and say whether it may take the traffic"
  ))

const promote = Command.make("promote", { id: Args.text({ name: "job-id" }), ...promotionFlags }, (input) =>
  Effect.gen(function*() {
    const route = yield* withPromotions(input, input.id, (p) => p.promote(input.id))
    yield* Console.log(input.format === "json" ? Render.json(encodeRoute(route), 2) : `${route.model} takes the traffic of ${route.scope} (route ${route.id}${route.replaces === null ? "" : `, replacing ${route.replaces}`})`)
  })).pipe(Command.withDescription(
    "Route the work of the job's dataset's blueprint, node or specialist to its model: only if its latest evaluation earned it (evaluated first if it has none)"
  ))

const rollback = Command.make("rollback", { id: Args.text({ name: "job-id" }), db: Flags.db, format: jsonFormat }, (input) =>
  Effect.gen(function*() {
    // No provider, no curator: a rollback only retires a route.
    const rolled = yield* withStore(input.db, Effect.fail(new FineTuneJobNotFound({ id: input.id })), Promotions.rollback(input.id).pipe(Effect.provide(PromotionStore.layer)))
    if (input.format === "json") return yield* Console.log(Render.json({ retired: encodeRoute(rolled.retired), restored: Option.getOrNull(Option.map(rolled.restored, encodeRoute)) }, 2))
    yield* Console.log(`${rolled.retired.model} no longer takes the traffic of ${rolled.retired.scope}; ${
      Option.match(rolled.restored, { onNone: () => "it goes to the provider's default again", onSome: (r) => `${r.model} takes it again (route ${r.id})` })
    }`)
  })).pipe(Command.withDescription("Retire the job's route: its scope's traffic goes back to the route it replaced, else to the provider's default"))

const routes = Command.make("routes", { db: Flags.db, format: jsonFormat, all: Options.boolean("all").pipe(Options.withDescription("retired routes too")) }, (input) =>
  Effect.gen(function*() {
    const found = yield* withStore(input.db, Effect.succeed([]), promotionsRead<ReadonlyArray<ModelRoute>>([], (store) => store.routes))
    const shown = input.all ? found : found.filter((r) => r.retired_at === null)
    if (input.format === "json") return yield* Console.log(Render.json(shown.map((r) => encodeRoute(r)), 2))
    if (shown.length === 0) return yield* Console.log(input.all ? "no routes yet" : "no active routes: every call goes to its provider's default model")
    for (const route of shown) yield* Console.log(routeText(route))
  })).pipe(Command.withDescription("List the routes promoted fine-tunes take: scope, model, since when"))

export const finetune = Command.make("finetune").pipe(
  Command.withDescription("Fine-tune jobs: started once per dataset content when it reaches its threshold, polled until they end, evaluated, promoted to traffic"),
  Command.withSubcommands([list, show, cancel, start, poll, evaluate, promote, rollback, routes])
)
