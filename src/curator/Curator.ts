import { FileSystem, Path } from "@effect/platform"
import { Chunk, Context, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import { CheckpointJson } from "../domain/Checkpoint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import type { ToolSpec } from "../llm/Llm.js"
import * as Journal from "../runtime/Journal.js"
import { EventStore } from "../store/EventStore.js"
import { CuratorStore, type Filter } from "../store/CuratorStore.js"
import { MissionStore } from "../store/MissionStore.js"
import { RunStore } from "../store/RunStore.js"
import { StepStore } from "../store/StepStore.js"
import { Toolkit } from "../tools/Tool.js"
import * as Capture from "./Capture.js"
import * as Dataset from "./Dataset.js"
import type { DatasetDefinition } from "./Dataset.js"
import { type Split, splitOf } from "./Fingerprint.js"
import * as FineTuneFormat from "./FineTuneFormat.js"
import type { TrainingSample } from "./Sample.js"

/** What one scan of the runs found. */
export interface CaptureReport {
  /** Runs looked at: new, or changed since they were last curated, and ended. */
  readonly runs: number
  /** Samples captured for the first time. */
  readonly samples: number
}

/** A dataset and how many captured samples pass its filters (before duplicates are dropped). */
export interface DatasetSummary {
  readonly definition: DatasetDefinition
  readonly samples: number
}

/** A dataset as it would be exported now. */
export interface DatasetReport extends DatasetSummary {
  /** Dropped as exact or near duplicates of an earlier sample. */
  readonly duplicates: number
  readonly train: number
  readonly eval: number
}

export interface ExportReport {
  readonly dataset: string
  readonly split: Split
  readonly file: string
  /** Lines written, each checked against the fine-tuning format. */
  readonly written: number
  readonly bytes: number
  readonly duplicates: number
  /** Samples of the other split, left out of this file. */
  readonly other_split: number
  /** Samples that did not fit the format and were left out, with the first one's problem. */
  readonly invalid: number
  readonly first_problem?: string | undefined
}

export const Splits = ["train", "eval"] as const

/**
 * Turns successful work into fine-tuning data: `capture` finds what ended since it last looked and stores
 * each accepted unit of work once; a dataset (a definition of filters) is counted with `show` and written
 * with `export` as OpenAI's chat fine-tuning JSONL, a page at a time.
 */
export class Curator extends Context.Tag("autopilot/Curator")<
  Curator,
  {
    readonly capture: Effect.Effect<CaptureReport, PersistenceError>
    /** Every dataset, after a capture: `all`, one per blueprint and per specialist seen, and those defined. */
    readonly datasets: Effect.Effect<ReadonlyArray<DatasetSummary>, PersistenceError>
    readonly show: (id: string) => Effect.Effect<DatasetReport, BadInput | PersistenceError>
    /** The dataset's lines of one split, checked, without their newlines: for a caller's own upload. */
    readonly lines: (id: string, split: Split) => Stream.Stream<string, BadInput | PersistenceError>
    /** Writes one split to `out` (a new file replacing any there, only once it is complete). */
    readonly export: (id: string, options: { readonly out: string; readonly split: Split }) => Effect.Effect<ExportReport, BadInput | PersistenceError>
  }
>() {}

export interface Options {
  /** Definitions of datasets of one's own; one with the id of a derived dataset replaces it. */
  readonly definitions?: ReadonlyArray<DatasetDefinition> | undefined
}

const decodeCheckpoint = Schema.decodeUnknownEither(CheckpointJson)
/**
 * Runs (at capture) and samples (at export) read at a time. Small on purpose: a page outlives several young-
 * generation collections, so all it holds is promoted and lies in the old generation as garbage until a full
 * collection (see BENCHMARKS.md, "The curator"); 100 at a time rather than 500 costs no measurable throughput.
 */
const page = 100
/** Hashes read at a time to count a dataset: small rows, so more of them. */
const hashPage = 1_000

const filterOf = (d: DatasetDefinition): Filter => ({
  ...(d.source === undefined ? {} : { source: d.source }),
  ...(d.blueprint === undefined ? {} : { blueprint: d.blueprint }),
  ...(d.node === undefined ? {} : { node: d.node }),
  ...(d.specialist === undefined ? {} : { specialist: d.specialist }),
  completed_only: d.completed_only,
  ...(d.min_critic_confidence === undefined ? {} : { min_critic_confidence: d.min_critic_confidence }),
  max_tokens: d.max_tokens
})

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const store = yield* CuratorStore
    const runs = yield* RunStore
    const steps = yield* StepStore
    const events = yield* EventStore
    const missions = yield* MissionStore
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    // The tools runs are offered are the toolkit's: the curator is given the same one.
    const specs: ReadonlyArray<ToolSpec> = Option.match(yield* Effect.serviceOption(Toolkit), { onNone: () => [], onSome: (t) => t.specs })

    /**
     * Whether a run is a node attempt of a mission's run: its samples are that mission's to capture. What
     * was learnt of each parent (`missionRuns`) is kept for one capture only: kept for the process, it grew
     * with every parent a long-lived daemon's training loop ever saw, and went stale when an id was freed
     * (a run deleted or pruned) and taken again by another kind of run.
     */
    const isNodeRun = (runId: string, missionRuns: Map<string, boolean>) => {
      const isMissionRun = (parent: string) =>
        missionRuns.has(parent)
          ? Effect.succeed(missionRuns.get(parent)!)
          : Effect.map(runs.load(parent), (loaded) => {
            const is = loaded._tag === "Found" && loaded.checkpoint.mission !== undefined
            missionRuns.set(parent, is)
            return is
          })
      const parts = runId.split(".")
      return Effect.exists(parts.slice(1).map((_, i) => parts.slice(0, i + 1).join(".")), isMissionRun)
    }

    const nodeSamples = (checkpoint: Schema.Schema.Type<typeof CheckpointJson>, capturedAt: string) =>
      Effect.gen(function*() {
        const ref = checkpoint.mission!
        const mission = yield* missions.get(ref.project_id, ref.mission_id).pipe(Effect.catchTag("BadInput", () => Effect.succeedNone))
        const blueprint = Option.getOrUndefined(mission)?.blueprint
        if (blueprint !== undefined && !blueprint.curation.capture) return []
        const succeeded = (yield* events.after(checkpoint.run_id, 0)).flatMap(({ event }) =>
          event.kind === "node_ended" && event.status === "succeeded" && event.child_run_id !== null
            ? [{ node: event.node, child_run_id: event.child_run_id }]
            : []
        )
        const samples: Array<TrainingSample> = []
        for (const ended of succeeded) {
          const nodeId = ended.node.replace(/^\d+\./, "")
          if (blueprint?.curation.nodes !== undefined && !blueprint.curation.nodes.includes(nodeId)) continue
          const child = yield* runs.load(ended.child_run_id)
          if (child._tag !== "Found") continue
          samples.push(...Capture.samplesOf(child.checkpoint, yield* steps.recent(ended.child_run_id, -1), specs, {
            source: "node",
            run_status: checkpoint.status,
            captured_at: capturedAt,
            mission: {
              mission_id: ref.mission_id,
              mission_run_id: checkpoint.run_id,
              node: ended.node,
              blueprint: blueprint?.id,
              blueprint_version: blueprint?.version,
              tags: blueprint?.curation.tags,
              min_confidence: blueprint?.curation.min_confidence
            }
          }))
        }
        return samples
      })

    const capture = Effect.gen(function*() {
      let after = ""
      let looked = 0
      let captured = 0
      const capturedAt = yield* Journal.isoNow
      const missionRuns = new Map<string, boolean>()
      // A run deleted where its samples were not removed with it (by an older version) loses them here.
      yield* store.forgetOrphans
      while (true) {
        const pending = yield* store.pending(after, page)
        for (const row of pending) {
          const decoded = decodeCheckpoint(row.state)
          // A corrupt checkpoint is the runtime's to quarantine; a run still going is looked at once it ends.
          if (Either.isLeft(decoded) || decoded.right.status === "running") continue
          const checkpoint = decoded.right
          looked++
          const samples = checkpoint.mission !== undefined
            ? yield* nodeSamples(checkpoint, capturedAt)
            : (yield* isNodeRun(checkpoint.run_id, missionRuns)) || !checkpoint.criteria_met.some(Boolean)
            ? []
            : Capture.samplesOf(checkpoint, yield* steps.recent(checkpoint.run_id, -1), specs, {
              source: "run",
              run_status: checkpoint.status,
              captured_at: capturedAt
            })
          captured += yield* store.record({ run_id: row.run_id, updated_at: row.updated_at, size: row.size, run_status: checkpoint.status, samples })
        }
        if (pending.length < page) return { runs: looked, samples: captured } satisfies CaptureReport
        after = pending.at(-1)!.run_id
      }
    })

    const definitions = Effect.map(store.facets, (facets) => {
      // One whose name would be too long to be an id is not derived: a definition with its own id covers it.
      const derived = [
        Dataset.all,
        ...[...facets.blueprints.map(Dataset.forBlueprint), ...facets.specialists.map(Dataset.forSpecialist)].flatMap((d) => Either.isRight(d) ? [d.right] : [])
      ]
      const own = options.definitions ?? []
      return [...derived.filter((d) => !own.some((o) => o.id === d.id)), ...own]
    })

    const resolve = (id: string) =>
      Effect.flatMap(definitions, (known) => {
        const found = known.find((d) => d.id === id)
        if (found !== undefined) return Effect.succeed(found)
        // A specialist whose dataset id would be too long: say so, rather than that the dataset is unknown.
        const underived = id.startsWith("specialist.") ? Either.getLeft(Dataset.forSpecialist(id.slice("specialist.".length))) : Option.none()
        if (Option.isSome(underived)) return Effect.fail(underived.value)
        const ids = known.map((d) => d.id)
        return Effect.fail(
          new BadInput({
            message: `unknown dataset "${id}": known datasets are ${ids.slice(0, 12).join(", ")}${ids.length > 12 ? `, and ${ids.length - 12} more` : ""} (see \`autopilot curator datasets\`)`
          })
        )
      })

    const datasets = Effect.zipRight(
      capture,
      Effect.flatMap(definitions, (known) =>
        Effect.forEach(known, (definition) => Effect.map(store.count(filterOf(definition)), (samples): DatasetSummary => ({ definition, samples }))))
    )

    /** Every id and hash of a dataset, a page at a time. */
    const hashes = (filter: Filter) =>
      Stream.paginateChunkEffect(0, (afterId) =>
        Effect.map(store.hashes(filter, afterId, hashPage), (rows) =>
          [Chunk.unsafeFromArray(rows.map((r) => r.hash)), rows.length < hashPage ? Option.none() : Option.some(rows.at(-1)!.id)] as const))

    const show = (id: string) =>
      Effect.gen(function*() {
        yield* capture
        const definition = yield* resolve(id)
        const seen = new Set<string>()
        const counts = { samples: 0, duplicates: 0, train: 0, eval: 0 }
        yield* Stream.runForEach(hashes(filterOf(definition)), (hash) =>
          Effect.sync(() => {
            counts.samples++
            if (definition.dedup && seen.has(hash)) return void counts.duplicates++
            seen.add(hash)
            counts[splitOf(hash, definition.eval_fraction)]++
          }))
        return { definition, ...counts } satisfies DatasetReport
      })

    interface Tally {
      written: number
      duplicates: number
      other_split: number
      invalid: number
      first_problem?: string | undefined
    }

    /** The checked lines of one split; `tally` counts what was left out and why. */
    const linesOf = (definition: DatasetDefinition, split: Split, tally: Tally) =>
      Stream.suspend(() => {
        const seen = new Set<string>()
        return Stream.paginateChunkEffect(0, (afterId) =>
          Effect.map(store.page(filterOf(definition), afterId, page), (rows) =>
            [Chunk.unsafeFromArray(rows), rows.length < page ? Option.none() : Option.some(rows.at(-1)!.id)] as const)
        ).pipe(
          Stream.filterMap((row) => {
            if (definition.dedup) {
              if (seen.has(row.hash)) return (tally.duplicates++, Option.none())
              seen.add(row.hash)
            }
            if (splitOf(row.hash, definition.eval_fraction) !== split) return (tally.other_split++, Option.none())
            const line = FineTuneFormat.lineOf(row.sample)
            if (Either.isLeft(line)) {
              tally.invalid++
              tally.first_problem ??= `${row.sample.metadata.run_id} iteration ${row.sample.metadata.iteration}: ${line.left}`
              return Option.none()
            }
            tally.written++
            return Option.some(line.right)
          })
        )
      })

    const lines = (id: string, split: Split) =>
      Stream.unwrap(Effect.map(Effect.zipRight(capture, resolve(id)), (definition) =>
        linesOf(definition, split, { written: 0, duplicates: 0, other_split: 0, invalid: 0 })))

    /** `out` may be written: its folder exists and is writable, and it is not itself a folder. */
    const writable = (out: string) =>
      Effect.gen(function*() {
        const file = path.resolve(out)
        const folder = path.dirname(file)
        const unusable = (why: string) => new BadInput({ message: `--out ${out} cannot be written: ${why} (give a file in an existing, writable folder)` })
        const folderInfo = yield* Effect.option(fs.stat(folder))
        if (Option.isNone(folderInfo) || folderInfo.value.type !== "Directory") return yield* unusable(`no folder ${folder}`)
        if (yield* Effect.isFailure(fs.access(folder, { writable: true }))) return yield* unusable(`folder ${folder} is not writable`)
        const fileInfo = yield* Effect.option(fs.stat(file))
        if (Option.isSome(fileInfo) && fileInfo.value.type === "Directory") return yield* unusable("it is a folder")
        if (Option.isSome(fileInfo) && (yield* Effect.isFailure(fs.access(file, { writable: true })))) return yield* unusable("the file is not writable")
        return file
      })

    const exportTo = (id: string, options: { readonly out: string; readonly split: Split }) =>
      Effect.gen(function*() {
        const file = yield* writable(options.out)
        yield* capture
        const definition = yield* resolve(id)
        const tally: Tally = { written: 0, duplicates: 0, other_split: 0, invalid: 0 }
        // Written beside the target and renamed over it once whole: a failed export leaves no half file.
        const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
        const failed = (error: { readonly message: string }) => new BadInput({ message: `--out ${options.out} could not be written: ${error.message}` })
        // One write per page of lines, each page encoded into one buffer used again for the next: neither a
        // page's text (a large string, allocated straight into the old generation) nor its bytes (memory
        // outside the heap, freed only once a collection finds its owner dead) is made anew per page.
        // Buffer's `write` at an offset, not TextEncoder's `encodeInto`, which needs a new view of it per line.
        let buffer = Buffer.allocUnsafe(1 << 20)
        let bytes = 0
        const encodePage = (lines: Chunk.Chunk<string>) => {
          let used = 0
          for (const line of lines) {
            // UTF-8 takes at most 3 bytes per UTF-16 unit, and 1 for the newline.
            if (buffer.length - used < line.length * 3 + 1) {
              const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, used + line.length * 3 + 1))
              buffer.copy(grown, 0, 0, used)
              buffer = grown
            }
            used += buffer.write(line, used, "utf8")
            buffer[used++] = 10
          }
          bytes += used
          return buffer.subarray(0, used)
        }
        yield* Effect.scoped(Effect.flatMap(fs.open(temp, { flag: "w" }), (handle) =>
          Stream.runForEach(Stream.chunks(linesOf(definition, options.split, tally)), (lines) =>
            // Written whole before the next page is encoded into the same buffer.
            Chunk.isEmpty(lines) ? Effect.void : handle.writeAll(encodePage(lines))))).pipe(
            Effect.catchTag("SystemError", "BadArgument", (error) => Effect.fail(failed(error))),
            Effect.zipRight(Effect.mapError(fs.rename(temp, file), failed)),
            Effect.onError(() => Effect.ignore(fs.remove(temp)))
          )
        return { dataset: definition.id, split: options.split, file, bytes, ...tally } satisfies ExportReport
      })

    return Curator.of({ capture, datasets, show, lines, export: exportTo })
  })

/** The curator over the stores provided, with the toolkit runs use (when one is provided) as the tools offered. */
export const layer = (options: Options = {}) => Layer.effect(Curator, make(options))
