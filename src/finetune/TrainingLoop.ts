import { Config, Duration, Effect, Option, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Curator } from "../curator/Curator.js"
import { BadInput } from "../domain/Errors.js"
import * as DatasetFile from "./DatasetFile.js"
import { FineTunes } from "./FineTunes.js"

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
}

export const variable = "AUTOPILOT_FINETUNE_DATASETS"

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

    const consider = (id: string, samples: number) =>
      Effect.gen(function*() {
        if (samples < options.threshold || exportedAt.get(id) === samples) return
        yield* Effect.sync(() => fs.mkdirSync(options.dir, { recursive: true }))
        const written = path.join(options.dir, `${id}.export.jsonl`)
        yield* curator.export(id, { out: written, split: "train" })
        const snapshot = yield* DatasetFile.read(written)
        // Named for its content: a later export never rewrites the file a job was started from.
        const file = path.join(options.dir, `${id}-${snapshot.snapshot.replace(/^sha256:/, "").slice(0, 16)}.jsonl`)
        yield* Effect.sync(() => fs.renameSync(written, file))
        exportedAt.set(id, samples)
        const considered = yield* finetunes.consider({ id, samples: snapshot.samples, snapshot: snapshot.snapshot, file })
        if (considered._tag === "Started") yield* options.say(`fine-tune ${considered.job.id} started on ${id} (${snapshot.samples} samples)`)
      })

    const round = Effect.gen(function*() {
      yield* curator.capture
      const summaries = yield* curator.datasets
      for (const id of options.datasets) {
        const summary = summaries.find((d) => d.definition.id === id)
        if (summary !== undefined) yield* consider(id, summary.samples)
      }
      yield* finetunes.pollOnce
    })

    return {
      round,
      /** Rounds every `every`, for as long as the daemon runs. */
      run: round.pipe(
        Effect.catchAll((error) => options.say(`training loop: ${error.message}; trying again next round`)),
        Effect.repeat(Schedule.spaced(options.every)),
        Effect.asVoid
      )
    }
  })
