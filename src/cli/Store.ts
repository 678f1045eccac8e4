import { Effect } from "effect"
import * as fs from "node:fs"
import { RunNotFound } from "../domain/Errors.js"
import { CheckpointStore } from "../store/CheckpointStore.js"

/**
 * For commands about an existing run: a database that does not exist yet is not created, so asking
 * about an unknown run writes nothing.
 */
export const withExistingStore = <A, E, R>(file: string, runId: string, effect: Effect.Effect<A, E, R>) =>
  fs.existsSync(file)
    ? Effect.provide(effect, CheckpointStore.layerSqlite(file))
    : Effect.fail(new RunNotFound({ run_id: runId }))
