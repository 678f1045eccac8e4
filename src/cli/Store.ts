import type { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { RunNotFound } from "../domain/Errors.js"
import type { MissionRef } from "../domain/MissionRun.js"
import * as RunArtifacts from "../runtime/RunArtifacts.js"
import * as Runs from "../runtime/Runs.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as RunStore from "../store/RunStore.js"
import * as Storage from "../store/Storage.js"

type Target = DatabaseTarget.DatabaseTarget

/** The Runs service (and RunArtifacts) over the database provided, each run's workspace under the target's root. */
const runsOver = (target: Target) =>
  Layer.unwrapEffect(Effect.map(DatabaseTarget.workspaceRoot(target), (workspaceRoot) =>
    Layer.merge(Runs.layer({ workspaceRoot }), RunArtifacts.layer).pipe(Layer.provideMerge(Storage.layer))))

/** The Runs service (and RunArtifacts) on the target, made with its tables if missing. */
export const runsLayer = (target: Target) => runsOver(target).pipe(Layer.provideMerge(DatabaseTarget.layer(target)))

/**
 * For commands about the runs there are: on a database that holds none (or does not exist), `absent`,
 * and nothing is created.
 */
export const withRuns = <A, E, R, A2, E2>(
  target: Target,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, R>
) =>
  DatabaseTarget.whenHolds(
    target,
    "checkpoints",
    absent,
    Effect.provide(effect, runsOver(target)) as Effect.Effect<
      A,
      E,
      Exclude<R, Storage.Storage | Runs.Runs | RunArtifacts.RunArtifacts> | SqlClient.SqlClient
    >
  )

/** For commands about an existing run: asking about an unknown run writes nothing. */
export const withExistingRuns = <A, E, R>(target: Target, runId: string, effect: Effect.Effect<A, E, R>) =>
  withRuns(target, Effect.fail(new RunNotFound({ run_id: runId })), effect)

/**
 * The mission whose run `runId` is, as its checkpoint records it; none for a plain run, an unknown one,
 * or a database that holds no runs (which is not created).
 */
export const recordedMission = (target: Target, runId: string) =>
  withRuns(
    target,
    Effect.succeed(Option.none<MissionRef>()),
    Effect.map(Effect.flatMap(RunStore.RunStore, (store) => store.load(runId)), (loaded) =>
      Option.fromNullable(loaded._tag === "Found" ? loaded.checkpoint.mission : undefined))
  )
