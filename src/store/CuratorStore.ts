import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import { RunStatus } from "../domain/RunStatus.js"
import type { DatasetDefinition } from "../curator/Dataset.js"
import { type TrainingSample, TrainingSampleJson } from "../curator/Sample.js"
import * as Database from "./Database.js"

const migrations = {
  // One row per unit of work, unique by (run_id, iteration): capturing a run twice adds nothing. The
  // columns datasets filter on sit beside the sample's JSON, so a dataset is one indexed scan.
  "0001_curator": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS curator_samples (
      id ${Database.serialKey(sql)},
      run_id TEXT NOT NULL,
      iteration INTEGER NOT NULL,
      source_run TEXT NOT NULL,
      source TEXT NOT NULL,
      run_status TEXT NOT NULL,
      blueprint TEXT NULL,
      node TEXT NULL,
      specialist TEXT NULL,
      model TEXT NOT NULL,
      critic_confidence ${Database.doubleType(sql)} NULL,
      tokens INTEGER NOT NULL,
      hash TEXT NOT NULL,
      captured_at TEXT NOT NULL,
      body TEXT NOT NULL,
      UNIQUE (run_id, iteration)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS curator_samples_by_source_run ON curator_samples (source_run)`
    // The checkpoint each run was last curated at: a run is looked at again only once it has changed.
    // Its length beside its time: two writes in one millisecond (or on a clock that stands still) differ in it.
    yield* sql`CREATE TABLE IF NOT EXISTS curator_runs (
      run_id TEXT PRIMARY KEY,
      updated_at TEXT NOT NULL,
      size INTEGER NOT NULL
    )`
  })
}

/** A run whose checkpoint changed since it was last curated (or never was). */
export interface Pending {
  readonly run_id: string
  readonly state: string
  readonly updated_at: string
  /** The checkpoint's length as the database counts it. */
  readonly size: number
}

/** What a look at one run found: its samples, and the status its samples (a mission run's: its nodes') now have. */
export interface Curated {
  readonly run_id: string
  readonly updated_at: string
  readonly size: number
  readonly run_status: RunStatus
  readonly samples: ReadonlyArray<TrainingSample>
}

/** The filters of a dataset the database applies. */
export type Filter = Pick<DatasetDefinition, "source" | "blueprint" | "node" | "specialist" | "completed_only" | "min_critic_confidence" | "max_tokens">

export interface StoredSample {
  readonly id: number
  readonly hash: string
  readonly sample: TrainingSample
}

/** What has been captured, for the datasets derived from it. */
export interface Facets {
  readonly blueprints: ReadonlyArray<string>
  readonly specialists: ReadonlyArray<string>
}

const decodeSample = Schema.decodeUnknown(TrainingSampleJson)
/** Its Schema has no transformations, so its encoded form is itself: stored as it is, read back through the Schema. */
const encodeSample = (sample: TrainingSample) => JSON.stringify(sample)

const Row = Schema.Struct({ id: Database.Int, hash: Schema.String, run_status: RunStatus, body: Schema.String })
const decodeRows = Schema.decodeUnknown(Schema.Array(Row))
const HashRow = Schema.Struct({ id: Database.Int, hash: Schema.String })
const decodeHashRows = Schema.decodeUnknown(Schema.Array(HashRow))

// A checkpoint's state is TEXT; a driver may still hand it over as bytes.
const PendingRow = Schema.Struct({
  run_id: Schema.String,
  state: Schema.Union(Schema.String, Schema.Uint8ArrayFromSelf),
  updated_at: Schema.String,
  size: Database.Int
})
const decodePendingRows = Schema.decodeUnknown(Schema.Array(PendingRow))
const FacetRow = Schema.Struct({ v: Schema.String })
const decodeFacetRows = Schema.decodeUnknown(Schema.Array(FacetRow))

const undecodable = (what: string) => (error: Parameters<typeof Database.decodeError>[0]) =>
  new PersistenceError({ message: `${what} in the database does not decode: ${Database.decodeError(error)}`, busy: false })

/**
 * The curator's samples and where its scan of the runs stands. It reads `checkpoints` (the RunStore's)
 * but writes only its own tables.
 */
export class CuratorStore extends Context.Tag("autopilot/CuratorStore")<
  CuratorStore,
  {
    /** Runs after `after` (by id) whose checkpoint changed since it was last curated, at most `limit`. */
    readonly pending: (after: string, limit: number) => Effect.Effect<ReadonlyArray<Pending>, PersistenceError>
    /**
     * In one transaction: the samples not captured before, the status of every sample the run gave, and the
     * checkpoint it was curated at. How many samples were new.
     */
    readonly record: (curated: Curated) => Effect.Effect<number, PersistenceError>
    /** At most `limit` samples after `afterId` that pass `filter`, in capture order. */
    readonly page: (filter: Filter, afterId: number, limit: number) => Effect.Effect<ReadonlyArray<StoredSample>, PersistenceError>
    /** The same, only ids and hashes: what counting a dataset's splits needs. */
    readonly hashes: (filter: Filter, afterId: number, limit: number) => Effect.Effect<ReadonlyArray<{ readonly id: number; readonly hash: string }>, PersistenceError>
    readonly count: (filter: Filter) => Effect.Effect<number, PersistenceError>
    readonly facets: Effect.Effect<Facets, PersistenceError>
    /**
     * Everything kept for a run that is deleted, inside the caller's transaction: the samples it gave (its
     * own, and for a mission run its nodes') and where its scan stood. A run id used again captures afresh.
     */
    readonly remove: (runId: string) => Effect.Effect<void, PersistenceError>
    /** A run's samples of iterations after `iteration`: work a rollback moved aside, which the run will do again. */
    readonly removeAfter: (runId: string, iteration: number) => Effect.Effect<void, PersistenceError>
    /**
     * Samples and scan marks of runs whose checkpoint is gone: deleted by a process that did not remove them
     * (a version before deletes did). How many samples went.
     */
    readonly forgetOrphans: Effect.Effect<number, PersistenceError>
    /**
     * The act calls' cost of the samples of one routing scope (every status, duplicates too: it is traffic,
     * not training data), summed per capture time and model, oldest first: a fine-tune's cost-per-step curve.
     */
    readonly costs: (scope: CostScope) => Effect.Effect<ReadonlyArray<CostPoint>, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_curator_migrations", migrations)

  const where = (filter: Filter, afterId: number) => {
    const parts = [sql`id > ${afterId}`, sql`tokens <= ${filter.max_tokens}`]
    if (filter.source !== undefined) parts.push(sql`source = ${filter.source}`)
    if (filter.blueprint !== undefined) parts.push(sql`blueprint = ${filter.blueprint}`)
    if (filter.node !== undefined) parts.push(sql`node = ${filter.node}`)
    if (filter.specialist !== undefined) parts.push(sql`specialist = ${filter.specialist}`)
    if (filter.completed_only) parts.push(sql`run_status = 'completed'`)
    if (filter.min_critic_confidence !== undefined) parts.push(sql`critic_confidence >= ${filter.min_critic_confidence}`)
    return sql.and(parts)
  }

  const rowOf = (sourceRun: string, status: RunStatus) => (sample: TrainingSample) => {
    const m = sample.metadata
    return {
      run_id: m.run_id,
      iteration: m.iteration,
      source_run: sourceRun,
      source: m.source,
      run_status: status,
      blueprint: m.blueprint ?? null,
      // The node's id: a batch's instances (`2.classify`) are one node to a dataset.
      node: m.node === undefined ? null : m.node.replace(/^\d+\./, ""),
      specialist: m.specialist ?? null,
      model: m.model,
      critic_confidence: m.critic_confidence ?? null,
      tokens: m.tokens,
      hash: m.hash,
      captured_at: m.captured_at,
      body: encodeSample(sample)
    }
  }

  return CuratorStore.of({
    pending: (after, limit) =>
      sql`
        SELECT c.run_id, c.state, c.updated_at, LENGTH(c.state) AS size FROM checkpoints c
        LEFT JOIN curator_runs s ON s.run_id = c.run_id
        WHERE c.run_id > ${after} AND (s.run_id IS NULL OR s.updated_at <> c.updated_at OR s.size <> LENGTH(c.state))
        ORDER BY c.run_id LIMIT ${limit}
      `.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.mapError(decodePendingRows(rows), undecodable("a checkpoint row"))),
        Effect.map((rows) =>
          rows.map((row): Pending => ({
            ...row,
            state: typeof row.state === "string" ? row.state : Buffer.from(row.state).toString("utf8")
          }))
        )
      ),
    record: (curated) =>
      sql.withTransaction(Effect.gen(function*() {
        const rows = curated.samples.map(rowOf(curated.run_id, curated.run_status))
        const inserted = yield* Database.inSlices(rows, (slice) =>
          sql`INSERT INTO curator_samples ${sql.insert(slice)} ON CONFLICT (run_id, iteration) DO NOTHING RETURNING id`)
        yield* sql`UPDATE curator_samples SET run_status = ${curated.run_status} WHERE source_run = ${curated.run_id} AND run_status <> ${curated.run_status}`
        yield* sql`INSERT INTO curator_runs ${sql.insert({ run_id: curated.run_id, updated_at: curated.updated_at, size: curated.size })}
          ON CONFLICT (run_id) DO UPDATE SET updated_at = excluded.updated_at, size = excluded.size`
        return inserted.length
      })).pipe(Database.refail),
    page: (filter, afterId, limit) =>
      sql`SELECT id, hash, run_status, body FROM curator_samples WHERE ${where(filter, afterId)} ORDER BY id LIMIT ${limit}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.mapError(decodeRows(rows), undecodable("a curator sample row"))),
        Effect.flatMap((rows) =>
          Effect.forEach(rows, (row) =>
            decodeSample(row.body).pipe(
              Effect.mapError(undecodable(`curator sample ${row.id}`)),
              // The status column is the current one: a run resumed to completion after it was captured.
              Effect.map((sample): StoredSample => ({
                id: row.id,
                hash: row.hash,
                sample: { ...sample, metadata: { ...sample.metadata, run_status: row.run_status } }
              }))
            )))
      ),
    hashes: (filter, afterId, limit) =>
      sql`SELECT id, hash FROM curator_samples WHERE ${where(filter, afterId)} ORDER BY id LIMIT ${limit}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.mapError(decodeHashRows(rows), undecodable("a curator sample row")))
      ),
    count: (filter) =>
      sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM curator_samples WHERE ${where(filter, 0)}`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.mapError(Schema.decodeUnknown(Database.Int)(rows[0]?.n ?? 0), undecodable("a sample count")))
      ),
    facets: Effect.all({
      blueprints: sql`SELECT DISTINCT blueprint AS v FROM curator_samples WHERE blueprint IS NOT NULL ORDER BY v`,
      specialists: sql`SELECT DISTINCT specialist AS v FROM curator_samples WHERE specialist IS NOT NULL ORDER BY v`
    }).pipe(
      Database.refail,
      Effect.flatMap((rows) => Effect.mapError(Effect.all({ blueprints: decodeFacetRows(rows.blueprints), specialists: decodeFacetRows(rows.specialists) }), undecodable("a facet row"))),
      Effect.map(({ blueprints, specialists }) => ({ blueprints: blueprints.map((r) => r.v), specialists: specialists.map((r) => r.v) }))
    ),
    remove: (runId) =>
      Effect.gen(function*() {
        yield* sql`DELETE FROM curator_samples WHERE run_id = ${runId} OR source_run = ${runId}`
        yield* sql`DELETE FROM curator_runs WHERE run_id = ${runId}`
      }).pipe(Database.refail),
    removeAfter: (runId, iteration) =>
      sql`DELETE FROM curator_samples WHERE run_id = ${runId} AND iteration > ${iteration}`.pipe(Effect.asVoid, Database.refail),
    forgetOrphans: sql.withTransaction(Effect.gen(function*() {
      const gone = sql`SELECT s.run_id FROM curator_runs s WHERE NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.run_id = s.run_id)`
      const removed = yield* sql`DELETE FROM curator_samples WHERE source_run IN (${gone}) RETURNING id`
      yield* sql`DELETE FROM curator_runs WHERE run_id IN (${gone})`
      return removed.length
    })).pipe(Database.refail),
    costs: (scope) => {
      // The cost is only in the sample's JSON; each dialect reads it there (it is never filtered on). A sample
      // without one is not a step of known cost: counting it would understate the cost per step.
      const cost = sql.onDialectOrElse({
        pg: () => sql.literal("CAST(CAST(body AS json) -> 'metadata' ->> 'cost_usd' AS DOUBLE PRECISION)"),
        orElse: () => sql.literal("json_extract(body, '$.metadata.cost_usd')")
      })
      const parts = [sql`1 = 1`]
      if (scope.blueprint !== undefined) parts.push(sql`blueprint = ${scope.blueprint}`)
      if (scope.node !== undefined) parts.push(sql`node = ${scope.node}`)
      if (scope.specialist !== undefined) parts.push(sql`specialist = ${scope.specialist}`)
      return sql`SELECT captured_at AS at, model, COUNT(${cost}) AS steps, SUM(${cost}) AS cost_usd FROM curator_samples
        WHERE ${sql.and(parts)} GROUP BY captured_at, model ORDER BY captured_at, model`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.mapError(decodeCostRows(rows), undecodable("a curator cost row")))
      )
    }
  })
})

export const layer = Layer.effect(CuratorStore, make)

/** A routing scope's filter: a node of a blueprint, a blueprint, or a specialist. */
export interface CostScope {
  readonly blueprint?: string | undefined
  readonly node?: string | undefined
  readonly specialist?: string | undefined
}

/** Steps of one model captured at one time, and what their act calls cost together. */
export interface CostPoint {
  readonly at: string
  readonly model: string
  readonly steps: number
  readonly cost_usd: number
}

const decodeCostRows = Schema.decodeUnknown(Schema.Array(Schema.Struct({
  at: Schema.String,
  model: Schema.String,
  steps: Database.Int,
  // A sum of nothing but nulls (samples without a cost) is null: nothing spent.
  cost_usd: Schema.transform(Schema.NullOr(Database.Int), Schema.Number, { strict: true, decode: (n) => n ?? 0, encode: (n) => n })
})))
