import { Effect, Schema } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { BadInput } from "../domain/Errors.js"

/**
 * A chat fine-tuning JSONL file as a job sees it before upload: how many samples, and a content hash that
 * names this snapshot of it. Each line must at least be a sample (`{"messages": [{"role": …}, …]}`); the
 * curator checks the full format when it writes the file.
 */
export interface Snapshot {
  readonly samples: number
  readonly snapshot: string
}

const Sample = Schema.parseJson(Schema.Struct({
  messages: Schema.NonEmptyArray(Schema.Struct({ role: Schema.Literal("system", "user", "assistant", "tool") }))
}))
const decodeSample = Schema.decodeUnknownEither(Sample)

/** Reads the file a line at a time (datasets can be large): bad input naming the first line that is no sample. */
export const read = (file: string): Effect.Effect<Snapshot, BadInput> =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash("sha256")
      const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })
      let samples = 0
      let n = 0
      for await (const line of lines) {
        n++
        hash.update(`${line}\n`)
        if (line.trim() === "") continue
        const decoded = decodeSample(line)
        if (decoded._tag === "Left") {
          throw new BadInput({ message: `dataset ${file} line ${n} is not a chat fine-tuning sample: each line must be {"messages": [{"role": "system"|"user"|"assistant"|"tool", …}, …]}` })
        }
        samples++
      }
      if (samples === 0) throw new BadInput({ message: `dataset ${file} holds no samples: one {"messages": […]} JSON object per line` })
      return { samples, snapshot: `sha256:${hash.digest("hex")}` }
    },
    catch: (error) =>
      error instanceof BadInput
        ? error
        : new BadInput({ message: `dataset ${file} cannot be read: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}` })
  })

/** A snapshot kept where jobs train on it. */
export interface Kept extends Snapshot {
  readonly file: string
}

/** Where a dataset's snapshot is kept in `dir`: named for its content, so a later export never rewrites a file a job trains on. */
export const snapshotFile = (dir: string, datasetId: string, snapshot: string) =>
  path.join(dir, `${datasetId}-${snapshot.replace(/^sha256:/, "").slice(0, 16)}.jsonl`)

const fileSystem = <A>(what: string, f: () => A) =>
  Effect.try({ try: f, catch: (error) => new BadInput({ message: `${what}: ${error instanceof Error ? error.message : String(error)}` }) })

/**
 * Gives `written`, a file of the caller's own in `dir`, its snapshot's name once it is read and checked:
 * what a job trains on is what was hashed. A file that is no dataset is removed.
 */
export const settle = (dir: string, datasetId: string, written: string): Effect.Effect<Kept, BadInput> =>
  read(written).pipe(
    Effect.tapError(() => Effect.sync(() => fs.rmSync(written, { force: true }))),
    Effect.flatMap((snapshot) => {
      const file = snapshotFile(dir, datasetId, snapshot.snapshot)
      return Effect.as(fileSystem(`cannot keep ${file}`, () => fs.renameSync(written, file)), { ...snapshot, file })
    })
  )

/**
 * Copies a file of the user's into `dir` under its snapshot's name, as the training loop keeps its exports:
 * the user's file may be rewritten while the job trains, the kept one is not.
 */
export const keep = (dir: string, datasetId: string, source: string): Effect.Effect<Kept, BadInput> =>
  Effect.gen(function*() {
    yield* fileSystem(`cannot make ${dir}`, () => fs.mkdirSync(dir, { recursive: true }))
    const copy = path.join(dir, `${datasetId}.${process.pid}.${randomBytes(4).toString("hex")}.copy.jsonl`)
    yield* fileSystem(`cannot copy ${source} into ${dir}`, () => fs.copyFileSync(source, copy))
    return yield* settle(dir, datasetId, copy)
  })
