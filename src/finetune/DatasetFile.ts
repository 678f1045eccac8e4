import { Effect, Schema } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
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
