import { SqlClient, SqlError } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import * as ArtifactStore from "./ArtifactStore.js"
import * as Database from "./Database.js"
import * as EventStore from "./EventStore.js"
import * as QuarantineStore from "./QuarantineStore.js"
import * as RunStore from "./RunStore.js"
import * as StepStore from "./StepStore.js"

/**
 * Makes the writes of several stores one transaction: all or nothing. Nothing may wait on a model call
 * inside it, since one SQLite connection serializes all SQL.
 */
export class Transaction extends Context.Tag("autopilot/Transaction")<
  Transaction,
  <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PersistenceError, R>
>() {}

const transaction = Layer.effect(
  Transaction,
  Effect.map(SqlClient.SqlClient, (sql) => (effect) =>
    sql.withTransaction(effect).pipe(
      Effect.catchIf((e): e is SqlError.SqlError => e instanceof SqlError.SqlError, (e) => Database.refail(Effect.fail(e)))
    ))
)

/** Every store a run needs. */
export type Storage =
  | RunStore.RunStore
  | StepStore.StepStore
  | EventStore.EventStore
  | QuarantineStore.QuarantineStore
  | ArtifactStore.ArtifactStore
  | Transaction

/** The stores over whatever database is provided. */
export const layer: Layer.Layer<Storage, never, SqlClient.SqlClient> = Layer.mergeAll(
  RunStore.layer,
  StepStore.layer,
  EventStore.layer,
  QuarantineStore.layer,
  ArtifactStore.layer,
  transaction
)

/** The stores on their own SQLite file (created, with its folders, if missing; ":memory:" for tests). */
export const layerSqlite = (filename: string): Layer.Layer<Storage | SqlClient.SqlClient> =>
  layer.pipe(Layer.provideMerge(Database.layerSqlite(filename)))
