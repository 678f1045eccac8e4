import { Effect, Either, ParseResult, Schema } from "effect"
import { BadInput } from "../domain/Errors.js"
import { SampleSource } from "./Sample.js"

/**
 * A dataset is a definition, not a copy: filters over the captured samples, applied when it is counted or
 * exported. `all`, one per blueprint (`blueprint.<id>`) and one per specialist (`specialist.<id>`) are
 * derived from what was captured; a file of definitions adds others or replaces these.
 */
export const DatasetId = Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9._-]{0,99}$/, {
  message: () => "must be 1-100 lower-case letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"
}))

export const DatasetDefinition = Schema.Struct({
  id: DatasetId,
  description: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Only run iterations, or only mission nodes; both when absent. */
  source: Schema.optionalWith(SampleSource, { exact: true }),
  blueprint: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  /** A node id: its samples in every instance of a batch. */
  node: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  specialist: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  /** Only samples of runs (for a node, of mission runs) that completed: every criterion met. */
  completed_only: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Only samples a critic reviewed with at least this confidence (so none without a critic). */
  min_critic_confidence: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { exact: true }),
  /** The largest sample kept, in tokens (estimated at four characters a token). */
  max_tokens: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 32_768 }),
  /** Exact and near duplicates (one normalized hash) kept once, the first captured. */
  dedup: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** The share of samples held out for evaluation, by hash. */
  eval_fraction: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 0.5)), { default: () => 0.1 }),
  /** Samples this dataset needs before a fine-tune, instead of AUTOPILOT_FINETUNE_THRESHOLD. */
  threshold: Schema.optionalWith(
    Schema.Int.pipe(Schema.between(1, 1_000_000_000, { message: () => "must be a whole number of samples from 1 to 1000000000" })),
    { exact: true }
  ),
  /** The model this dataset fine-tunes, instead of AUTOPILOT_FINETUNE_BASE_MODEL. */
  base_model: Schema.optionalWith(Schema.NonEmptyTrimmedString, { exact: true })
})
export type DatasetDefinition = typeof DatasetDefinition.Type
export type DatasetDefinitionEncoded = typeof DatasetDefinition.Encoded

const decodeDefinition = Schema.decodeEither(DatasetDefinition)

/** A derived dataset, or why its id cannot name one (a specialist's id may be longer than a dataset id can be). */
const derive = (fields: DatasetDefinitionEncoded, of: string): Either.Either<DatasetDefinition, BadInput> =>
  Either.mapLeft(decodeDefinition(fields), (error) =>
    new BadInput({
      message: `no dataset can be derived for ${of}: its id "${fields.id}" ${
        ParseResult.ArrayFormatter.formatErrorSync(error)[0]?.message ?? "is not a dataset id"
      }; define one with a shorter id in the definitions file`
    }))

export const all: DatasetDefinition = Either.getOrThrow(derive({ id: "all", description: "every captured sample" }, "every sample"))

export const forBlueprint = (blueprint: string) =>
  derive({ id: `blueprint.${blueprint}`, description: `the nodes of missions of blueprint ${blueprint}`, blueprint }, `blueprint ${blueprint}`)

export const forSpecialist = (specialist: string) =>
  derive({ id: `specialist.${specialist}`, description: `the work of the ${specialist} specialist`, specialist }, `specialist ${specialist}`)

/** The filters a definition sets, in one line. */
export const filtersText = (d: DatasetDefinition): string =>
  [
    d.source === undefined ? undefined : `source ${d.source}`,
    d.blueprint === undefined ? undefined : `blueprint ${d.blueprint}`,
    d.node === undefined ? undefined : `node ${d.node}`,
    d.specialist === undefined ? undefined : `specialist ${d.specialist}`,
    d.completed_only ? "completed runs only" : "runs of any end",
    d.min_critic_confidence === undefined ? undefined : `critic confidence >= ${d.min_critic_confidence}`,
    `<= ${d.max_tokens} tokens`,
    d.dedup ? "deduplicated" : "duplicates kept",
    `${Math.round(d.eval_fraction * 1000) / 10}% held out`
  ].filter((part) => part !== undefined).join(", ")

const decodeFile = Schema.decodeUnknown(Schema.parseJson(Schema.Array(DatasetDefinition)), { onExcessProperty: "error" })

/**
 * Definitions from a JSON file's text (an array of definitions), named `from` in messages: a definition
 * that does not decode, or an id defined twice, is one line of bad input.
 */
export const parseDefinitions = (text: string, from: string): Effect.Effect<ReadonlyArray<DatasetDefinition>, BadInput> =>
  decodeFile(text).pipe(
    Effect.mapError((error) =>
      new BadInput({
        message: `${from} is not a JSON array of dataset definitions: ${
          ParseResult.ArrayFormatter.formatErrorSync(error).slice(0, 1).map((i) => `${i.path.join(".") || "the file"}: ${i.message}`).join("")
        } (fields: id, description, source run|node, blueprint, node, specialist, completed_only, min_critic_confidence 0-1, max_tokens, dedup, eval_fraction 0-0.5, threshold 1-1000000000, base_model)`
      })
    ),
    Effect.filterOrFail(
      (definitions) => new Set(definitions.map((d) => d.id)).size === definitions.length,
      (definitions) => {
        const twice = definitions.find((d, i) => definitions.findIndex((e) => e.id === d.id) !== i)!.id
        return new BadInput({ message: `${from} defines dataset "${twice}" twice: each id once` })
      }
    )
  )
