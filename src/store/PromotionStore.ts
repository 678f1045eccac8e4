import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import { EvaluationReport, ModelScore } from "../finetune/EvaluationReport.js"
import { ModelRoute } from "../finetune/ModelRoute.js"
import * as Database from "./Database.js"

// The partial unique index keeps one active route per scope, whoever promotes at once; both SQLite and
// Postgres have them. A model's scores are stored as JSON text: read whole, never queried into.
const migrations = {
  "0001_promotions": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const real = Database.doubleType(sql)
    yield* sql`CREATE TABLE IF NOT EXISTS finetune_evaluations (
      id TEXT PRIMARY KEY,
      job_id TEXT NOT NULL,
      dataset_id TEXT NOT NULL,
      scope TEXT NULL,
      candidate TEXT NOT NULL,
      baseline TEXT NOT NULL,
      baseline_route TEXT NULL,
      tolerance_points ${real} NOT NULL,
      verdict TEXT NOT NULL,
      reason TEXT NOT NULL,
      cost_usd ${real} NOT NULL,
      evaluated_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS finetune_evaluations_by_job ON finetune_evaluations (job_id, evaluated_at)`
    yield* sql`CREATE TABLE IF NOT EXISTS model_routes (
      id TEXT PRIMARY KEY,
      scope TEXT NOT NULL,
      model TEXT NOT NULL,
      base_url TEXT NULL,
      job_id TEXT NOT NULL,
      evaluation_id TEXT NOT NULL,
      baseline_model TEXT NULL,
      replaces TEXT NULL,
      promoted_at TEXT NOT NULL,
      retired_at TEXT NULL,
      retired_reason TEXT NULL
    )`
    yield* sql`CREATE UNIQUE INDEX IF NOT EXISTS model_routes_active ON model_routes (scope) WHERE retired_at IS NULL`
    yield* sql`CREATE INDEX IF NOT EXISTS model_routes_by_job ON model_routes (job_id)`
    // Who is evaluating a job now: one process at a time pays for it. A claim older than an hour belongs to a
    // process that died mid-review, and may be taken over.
    yield* sql`CREATE TABLE IF NOT EXISTS finetune_reviews (
      job_id TEXT PRIMARY KEY,
      claimed_at TEXT NOT NULL
    )`
  })
}

const routeColumns = "id, scope, model, base_url, job_id, evaluation_id, baseline_model, replaces, promoted_at, retired_at, retired_reason"
const evaluationColumns = "id, job_id, dataset_id, scope, candidate, baseline, baseline_route, tolerance_points, verdict, reason, cost_usd, evaluated_at"

const EvaluationRow = Schema.Struct({
  ...EvaluationReport.fields,
  candidate: Schema.parseJson(ModelScore),
  baseline: Schema.parseJson(ModelScore)
})
const decodeRoute = Schema.decodeUnknown(ModelRoute)
const decodeEvaluation = Schema.decodeUnknown(EvaluationRow)
const encodeScore = Schema.encodeSync(Schema.parseJson(ModelScore))

const undecodable = (what: string) => (error: Parameters<typeof Database.decodeError>[0]) =>
  new PersistenceError({ message: `${what} in the database does not decode: ${Database.decodeError(error)}`, busy: false })

// Decoded inside transactions, so a row that does not decode fails the same way as the driver's errors do.
const routeOf = (row: unknown) => Effect.mapError(decodeRoute(row), (error) => new SqlError({ cause: error, message: `a model route in the database does not decode: ${Database.decodeError(error)}` }))
const evaluationOf = (row: unknown) =>
  decodeEvaluation(row).pipe(Effect.map((fields) => new EvaluationReport(fields)), Effect.mapError(undecodable("a fine-tune evaluation")))

/** What a rollback did: the route retired, and the one it had replaced, active again if there was one. */
export interface RolledBack {
  readonly retired: ModelRoute
  readonly restored: Option.Option<ModelRoute>
}

/**
 * The evaluations of finished fine-tunes and the routing rules their promotions wrote: a promotion retires
 * the route active in its scope (remembering it) and inserts its own in one transaction; a rollback retires
 * it and brings the one it replaced back.
 */
export class PromotionStore extends Context.Tag("autopilot/PromotionStore")<
  PromotionStore,
  {
    readonly saveEvaluation: (report: EvaluationReport) => Effect.Effect<void, PersistenceError>
    /** A job's evaluations, newest first. */
    readonly evaluations: (jobId: string) => Effect.Effect<ReadonlyArray<EvaluationReport>, PersistenceError>
    /** Every route ever written, newest first; `retired_at` null on the active ones. */
    readonly routes: Effect.Effect<ReadonlyArray<ModelRoute>, PersistenceError>
    readonly active: Effect.Effect<ReadonlyArray<ModelRoute>, PersistenceError>
    /** Makes `route` its scope's active route, retiring the one there; the route as written (with `replaces`). */
    readonly promote: (route: ModelRoute) => Effect.Effect<ModelRoute, PersistenceError>
    /**
     * Claims the review of a job for this process: false when another holds it (claimed after `staleBefore`).
     * Released with `release` whatever the review came to; an evaluation saved is what marks it done.
     */
    readonly claimReview: (jobId: string, at: string, staleBefore: string) => Effect.Effect<boolean, PersistenceError>
    readonly releaseReview: (jobId: string) => Effect.Effect<void, PersistenceError>
    /** Retires the active route `id`; none when it is not active (never was, or retired already). */
    readonly rollback: (id: string, at: string, reason: string) => Effect.Effect<Option.Option<RolledBack>, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_promotion_migrations", migrations)

  const routesWhere = (where: ReturnType<typeof sql.literal>) =>
    sql`SELECT ${sql.literal(routeColumns)} FROM model_routes ${where} ORDER BY promoted_at DESC, id DESC`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, routeOf))
    )

  return PromotionStore.of({
    saveEvaluation: (report) =>
      sql`INSERT INTO finetune_evaluations ${
        sql.insert({ ...report, candidate: encodeScore(report.candidate), baseline: encodeScore(report.baseline) })
      }`.pipe(Database.refail, Effect.asVoid),
    evaluations: (jobId) =>
      sql`SELECT ${sql.literal(evaluationColumns)} FROM finetune_evaluations WHERE job_id = ${jobId} ORDER BY evaluated_at DESC, id DESC`.pipe(
        Database.refail,
        Effect.flatMap((rows) => Effect.forEach(rows, evaluationOf))
      ),
    routes: routesWhere(sql.literal("")).pipe(Database.refail),
    active: routesWhere(sql.literal("WHERE retired_at IS NULL")).pipe(Database.refail),
    promote: (route) =>
      sql.withTransaction(Effect.gen(function*() {
        // Two promotions into one scope at once: the second reads the first's route once it committed.
        yield* Database.lockUntilCommit(sql, `model_routes ${route.scope}`)
        const before = yield* sql`SELECT ${sql.literal(routeColumns)} FROM model_routes WHERE scope = ${route.scope} AND retired_at IS NULL`
        const replaced = before.length === 0 ? null : yield* routeOf(before[0])
        // The job's own route is there already (another process promoted it first): it stays, once.
        if (replaced !== null && replaced.job_id === route.job_id) return replaced
        if (replaced !== null) {
          yield* sql`UPDATE model_routes SET ${
            sql.update({ retired_at: route.promoted_at, retired_reason: `replaced by ${route.model} (fine-tune ${route.job_id})` })
          } WHERE id = ${replaced.id}`
        }
        const written = new ModelRoute({ ...route, replaces: replaced?.id ?? null })
        yield* sql`INSERT INTO model_routes ${sql.insert({ ...written })}`
        return written
      })).pipe(Database.refail, Database.retryBusy),
    claimReview: (jobId, at, staleBefore) =>
      sql`INSERT INTO finetune_reviews ${sql.insert({ job_id: jobId, claimed_at: at })}
        ON CONFLICT (job_id) DO UPDATE SET claimed_at = ${at} WHERE finetune_reviews.claimed_at < ${staleBefore}
        RETURNING job_id`.pipe(Effect.map((rows) => rows.length > 0), Database.refail),
    releaseReview: (jobId) => sql`DELETE FROM finetune_reviews WHERE job_id = ${jobId}`.pipe(Effect.asVoid, Database.refail),
    rollback: (id, at, reason) =>
      sql.withTransaction(Effect.gen(function*() {
        const scope = yield* sql`SELECT scope FROM model_routes WHERE id = ${id}`
        if (scope.length > 0) yield* Database.lockUntilCommit(sql, `model_routes ${String(scope[0]!.scope)}`)
        const rows = yield* sql`UPDATE model_routes SET ${sql.update({ retired_at: at, retired_reason: reason })}
          WHERE id = ${id} AND retired_at IS NULL RETURNING ${sql.literal(routeColumns)}`
        if (rows.length === 0) return Option.none<RolledBack>()
        const retired = yield* routeOf(rows[0])
        // The replaced route comes back only if nothing took the scope since, and its job was not itself rolled
        // back later (A, then B, then A again rolled back: rolling back B must not bring A back).
        const restored = retired.replaces === null ? [] : yield* sql`UPDATE model_routes SET retired_at = NULL, retired_reason = NULL
          WHERE id = ${retired.replaces} AND retired_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM model_routes other WHERE other.scope = ${retired.scope} AND other.retired_at IS NULL)
          AND NOT EXISTS (SELECT 1 FROM model_routes later WHERE later.job_id = model_routes.job_id AND later.promoted_at > model_routes.promoted_at
            AND later.retired_at IS NOT NULL AND later.retired_reason NOT LIKE ${"replaced by %"})
          RETURNING ${sql.literal(routeColumns)}`
        return Option.some<RolledBack>({
          retired,
          restored: restored.length === 0 ? Option.none() : Option.some(yield* routeOf(restored[0]))
        })
      })).pipe(Database.refail, Database.retryBusy)
  })
})

export const layer = Layer.effect(PromotionStore, make)
