import type { SqlClient } from "@effect/sql"
import { Layer } from "effect"
import type { DatabaseUnavailable } from "../domain/Errors.js"
import * as ArtifactStore from "./ArtifactStore.js"
import * as CuratorStore from "./CuratorStore.js"
import * as Database from "./Database.js"
import * as DeltaStore from "./DeltaStore.js"
import * as EventStore from "./EventStore.js"
import * as GroupCommit from "./GroupCommit.js"
import * as QuarantineStore from "./QuarantineStore.js"
import * as RunStore from "./RunStore.js"
import * as StepStore from "./StepStore.js"
import * as Transaction from "./Transaction.js"

export { Transaction } from "./Transaction.js"

/** Every store a run needs; the curator's too, since a run deleted or rolled back takes its training samples with it. */
export type Storage =
  | RunStore.RunStore
  | StepStore.StepStore
  | EventStore.EventStore
  | QuarantineStore.QuarantineStore
  | ArtifactStore.ArtifactStore
  | Transaction.Transaction
  | GroupCommit.GroupCommit
  | DeltaStore.DeltaStore
  | CuratorStore.CuratorStore

export type Options = GroupCommit.Options

/** The stores over whatever database is provided, with group commit tuned by `options`. */
export const layerWith = (options: Options): Layer.Layer<Storage, never, SqlClient.SqlClient> =>
  GroupCommit.layer(options).pipe(
    Layer.provideMerge(
      Layer.mergeAll(RunStore.layer, StepStore.layer, EventStore.layer, QuarantineStore.layer, ArtifactStore.layer, Transaction.layer, DeltaStore.layer, CuratorStore.layer)
    )
  )

/** The stores over whatever database is provided. */
export const layer: Layer.Layer<Storage, never, SqlClient.SqlClient> = layerWith({})

/** The stores on their own SQLite file (created, with its folders, if missing; ":memory:" for tests). */
export const layerSqlite = (filename: string, options: Options = {}): Layer.Layer<Storage | SqlClient.SqlClient> =>
  layerWith(options).pipe(Layer.provideMerge(Database.layerSqlite(filename)))

/** The stores on a Postgres database (`postgres://user:password@host:port/name`), its connection checked when built. */
export const layerPg = (url: string, options: Options = {}): Layer.Layer<Storage | SqlClient.SqlClient, DatabaseUnavailable> =>
  layerWith(options).pipe(Layer.provideMerge(Database.layerPg(url)))
