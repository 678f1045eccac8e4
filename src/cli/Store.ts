import { Context, Effect, Layer, Ref } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { RunNotFound } from "../domain/Errors.js"
import * as Runs from "../runtime/Runs.js"
import * as Storage from "../store/Storage.js"

/**
 * A run says which database it writes as it starts, so nobody has to guess which file `--db`,
 * $AUTOPILOT_DB and $AUTOPILOT_HOME chose. On stderr: with --format jsonl, stdout is JSON lines only.
 */
const announcingDatabase = (file: string) => (runs: Runs.Runs["Type"]): Runs.Runs["Type"] => ({
  ...runs,
  start: (options) =>
    Effect.flatMap(Ref.make(false), (announced) =>
      runs.start({
        ...options,
        onEvent: (event) =>
          Effect.zipRight(
            Effect.whenEffect(
              // Not Console.error, which main silences while @effect/cli runs so that its errors are ours.
              Effect.sync(() => process.stderr.write(`database: ${file}\n`)),
              Effect.map(Ref.getAndSet(announced, true), (done) => !done)
            ),
            options.onEvent?.(event) ?? Effect.void
          )
      }))
})

/** The Runs service on one SQLite file, each run's workspace beside it. */
export const runsLayer = (file: string) =>
  Layer.map(
    Runs.layer({ workspaceRoot: path.dirname(file) }),
    (context) => Context.add(context, Runs.Runs, announcingDatabase(file)(Context.get(context, Runs.Runs)))
  ).pipe(Layer.provideMerge(Storage.layerSqlite(file)))

/**
 * For commands about an existing run: a database that does not exist yet is not created, so asking
 * about an unknown run writes nothing.
 */
export const withExistingRuns = <A, E, R>(file: string, runId: string, effect: Effect.Effect<A, E, R>) =>
  fs.existsSync(file)
    ? Effect.provide(effect, runsLayer(file))
    : Effect.fail(new RunNotFound({ run_id: runId }))
