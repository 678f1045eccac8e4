import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { RunNotFound } from "../domain/Errors.js"
import type { MissionRef } from "../domain/MissionRun.js"
import * as RunArtifacts from "../runtime/RunArtifacts.js"
import * as Runs from "../runtime/Runs.js"
import * as RunStore from "../store/RunStore.js"
import * as Storage from "../store/Storage.js"

/** The Runs service (and RunArtifacts) on one SQLite file, each run's workspace beside it. */
export const runsLayer = (file: string) =>
  Layer.merge(Runs.layer({ workspaceRoot: path.dirname(file) }), RunArtifacts.layer).pipe(Layer.provideMerge(Storage.layerSqlite(file)))

/**
 * For commands about an existing run: a database that does not exist yet is not created, so asking
 * about an unknown run writes nothing.
 */
export const withExistingRuns = <A, E, R>(file: string, runId: string, effect: Effect.Effect<A, E, R>) =>
  fs.existsSync(file)
    ? Effect.provide(effect, runsLayer(file))
    : Effect.fail(new RunNotFound({ run_id: runId }))

/**
 * The mission whose run `runId` is, as its checkpoint records it; none for a plain run, an unknown one,
 * or a database that does not exist (which is not created).
 */
export const recordedMission = (file: string, runId: string) =>
  fs.existsSync(file)
    ? Effect.map(Effect.flatMap(RunStore.RunStore, (store) => store.load(runId)), (loaded) =>
      Option.fromNullable(loaded._tag === "Found" ? loaded.checkpoint.mission : undefined)).pipe(Effect.provide(Storage.layerSqlite(file)))
    : Effect.succeed(Option.none<MissionRef>())
