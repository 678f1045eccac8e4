import { Cause, Config, Duration, Effect, Option, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Curator } from "../curator/Curator.js"
import type { DatasetDefinition } from "../curator/Dataset.js"
import { BadInput } from "../domain/Errors.js"
import * as DatasetFile from "./DatasetFile.js"
import { isFinished } from "./FineTuneJob.js"
import { FineTunes } from "./FineTunes.js"
import { Promotions } from "./Promotions.js"

/**
 * The loop closing itself, as a daemon runs it: what ended since the last round is captured, each dataset
 * named in `AUTOPILOT_FINETUNE_DATASETS` that holds at least the threshold is exported (its train split, to
 * a file named for its content) and handed to `FineTunes.consider`, which starts one job per snapshot, ever;
 * then every unfinished job is polled. A round that fails is said and the next one tries again: the daemon's
 * runs never wait on it.
 */
export interface Options {
  /** The datasets to train on, by curator id. */
  readonly datasets: ReadonlyArray<string>
  /** Where exported snapshots are kept (a job's trainer may read its file for hours). */
  readonly dir: string
  /** Samples a dataset needs (FineTunes' threshold): below it, nothing is exported. */
  readonly threshold: number
  readonly every: Duration.DurationInput
  readonly say: (line: string) => Effect.Effect<void>
  /** `auto` (the default): a job whose evaluation earns it takes traffic at once; `manual`: an operator promotes it. */
  readonly promote?: "auto" | "manual" | undefined
}

export const variable = "AUTOPILOT_FINETUNE_DATASETS"

/** `AUTOPILOT_FINETUNE_PROMOTE`: `auto` (the default) or `manual`; anything else is one line. */
export const promoteFromConfig: Effect.Effect<"auto" | "manual", BadInput> = Config.option(Config.string("AUTOPILOT_FINETUNE_PROMOTE")).pipe(
  Effect.orDie,
  Effect.flatMap(Option.match({
    onNone: () => Effect.succeed("auto" as const),
    onSome: (raw) =>
      raw.trim() === "" || raw.trim() === "auto"
        ? Effect.succeed("auto" as const)
        : raw.trim() === "manual"
        ? Effect.succeed("manual" as const)
        : Effect.fail(new BadInput({ message: `AUTOPILOT_FINETUNE_PROMOTE must be auto or manual, got "${raw}"` }))
  }))
)

/** `AUTOPILOT_FINETUNE_DATASETS` as dataset ids (comma-separated); none when unset: the loop is off. */
export const datasetsFromConfig: Effect.Effect<ReadonlyArray<string>, BadInput> = Config.option(Config.string(variable)).pipe(
  Effect.orDie,
  Effect.flatMap(Option.match({
    onNone: () => Effect.succeed([]),
    onSome: (text) => {
      const ids = text.split(",").map((id) => id.trim()).filter((id) => id !== "")
      const bad = ids.find((id) => !/^[a-z0-9][a-z0-9._-]{0,99}$/.test(id))
      return bad === undefined ? Effect.succeed(ids) : Effect.fail(new BadInput({
        message: `${variable} takes dataset ids separated by commas (a-z 0-9 . _ -, like all,blueprint.support_triage); got "${bad}"`
      }))
    }
  }))
)

export const make = (options: Options) =>
  Effect.gen(function*() {
    const curator = yield* Curator
    const finetunes = yield* FineTunes
    // The sample count each dataset was last exported at: a dataset that did not grow is not exported again.
    const exportedAt = new Map<string, number>()

    const fileSystem = <A>(what: string, f: () => A) =>
      Effect.try({ try: f, catch: (error) => new BadInput({ message: `${what}: ${error instanceof Error ? error.message : String(error)}` }) })

    const consider = (definition: DatasetDefinition, samples: number) =>
      Effect.gen(function*() {
        const id = definition.id
        // A dataset's own threshold and base model, where its definition sets them, win.
        const threshold = definition.threshold ?? options.threshold
        if (samples < threshold || exportedAt.get(id) === samples) return
        // One job at a time per dataset: while one trains, nothing is exported (nor remembered, so the dataset is
        // looked at again once it ends).
        if ((yield* finetunes.list()).some((job) => job.dataset_id === id && !isFinished(job.status))) return
        yield* fileSystem(`cannot make ${options.dir}`, () => fs.mkdirSync(options.dir, { recursive: true }))
        // This process's own: daemons sharing AUTOPILOT_HOME never rename each other's export away.
        const written = path.join(options.dir, `${id}.${process.pid}.export.jsonl`)
        yield* curator.export(id, { out: written, split: "train" })
        // Named for its content: a later export never rewrites the file a job was started from.
        const { file, ...snapshot } = yield* DatasetFile.settle(options.dir, id, written)
        const considered = yield* finetunes.consider({
          id,
          samples: snapshot.samples,
          snapshot: snapshot.snapshot,
          file,
          threshold: definition.threshold,
          base_model: definition.base_model
        })
        // Only once considered: a provider that could not be asked is asked again next round.
        exportedAt.set(id, samples)
        if (considered._tag === "Started") yield* options.say(`fine-tune ${considered.job.id} started on ${id} (${snapshot.samples} samples)`)
      })

    // With Promotions given, each job of these datasets that succeeded is evaluated once (a failed evaluation
    // is tried again next round), and promoted when its report earns it, unless promotion is manual.
    const promotions = yield* Effect.serviceOption(Promotions)
    const review = (p: Promotions["Type"]) =>
      Effect.gen(function*() {
        const done = (yield* finetunes.list()).filter((job) => job.status === "succeeded" && options.datasets.includes(job.dataset_id))
        for (const job of done) {
          if ((yield* p.evaluations(job.id)).length > 0) continue
          const reviewed = yield* p.review(job.id, { promote: options.promote !== "manual" }).pipe(
            Effect.catchAll((error) => Effect.as(said(`evaluating ${job.id}`)(error), Option.none()))
          )
          if (Option.isNone(reviewed)) continue
          const { report, route } = reviewed.value
          yield* options.say(Option.match(route, {
            onNone: () => `fine-tune ${job.id} evaluated: ${report.verdict === "promotable" ? "promotable (promotion is manual)" : "stays a candidate"}: ${report.reason}`,
            onSome: (r) => `fine-tune ${job.id} promoted: ${r.model} takes the traffic of ${r.scope}: ${report.reason}`
          }))
        }
      })

    const said = (what: string) => (error: { readonly message: string }) => options.say(`training loop: ${what}: ${error.message}; trying again next round`)

    // Each dataset on its own, and the poll whatever happened to them: one failure holds up nothing else.
    const round = Effect.gen(function*() {
      yield* curator.capture.pipe(Effect.catchAll(said("capture")))
      const summaries = yield* curator.datasets.pipe(Effect.catchAll((error) => Effect.as(said("datasets")(error), [])))
      for (const id of options.datasets) {
        const summary = summaries.find((d) => d.definition.id === id)
        if (summary !== undefined) yield* consider(summary.definition, summary.samples).pipe(Effect.catchAll(said(id)))
      }
      yield* finetunes.pollOnce.pipe(Effect.catchAll(said("poll")))
      if (Option.isSome(promotions)) yield* review(promotions.value).pipe(Effect.catchAll(said("review")))
    })

    return {
      round,
      /** Rounds every `every`, for as long as the daemon runs. */
      run: round.pipe(
        // Not even a defect ends the loop in silence: said, and the next round goes on.
        Effect.catchAllCause((cause) => options.say(`training loop: ${Cause.pretty(cause).split("\n")[0]}; trying again next round`)),
        Effect.repeat(Schedule.spaced(options.every)),
        Effect.asVoid
      )
    }
  })
