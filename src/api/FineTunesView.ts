import { Effect, Either, Option, Schema } from "effect"
import * as Dataset from "../curator/Dataset.js"
import { CostCurve, curveOf } from "../finetune/CostCurve.js"
import { EvaluationReport, Verdict } from "../finetune/EvaluationReport.js"
import { FineTuneJob, JobEvent } from "../finetune/FineTuneJob.js"
import * as ModelRoute from "../finetune/ModelRoute.js"
import { CuratorStore } from "../store/CuratorStore.js"
import { FineTuneStore } from "../store/FineTuneStore.js"
import { PromotionStore } from "../store/PromotionStore.js"

/**
 * Fine-tunes as the operator page reads them: every job with how its latest evaluation came out and
 * whether its model takes traffic now; one job with its log, its evaluations, its routes and the
 * cost-per-step curve of the scope it was trained for. Read only: promotions are the CLI's.
 */

/** A job's id as a path gives it: what `FineTunes` makes (`ft-…`) and a little room, nothing that is not an id. */
export const JobId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, {
  message: () => "a fine-tune job's id is 1-100 letters, digits, \".\", \"_\", \":\" or \"-\" (see GET /finetunes)"
}))

export const ListedFineTune = Schema.Struct({
  job: Schema.Struct(FineTuneJob.fields),
  /** Its latest evaluation's verdict; null when it has none. */
  verdict: Schema.NullOr(Verdict),
  evaluated_at: Schema.NullOr(Schema.String),
  /** Whether its model takes a scope's traffic now (it has an active route), and which scope. */
  takes_traffic: Schema.Boolean,
  traffic_scope: Schema.NullOr(Schema.String)
})
export type ListedFineTune = typeof ListedFineTune.Type

export const FineTuneDetail = Schema.Struct({
  job: Schema.Struct(FineTuneJob.fields),
  events: Schema.Array(Schema.Struct(JobEvent.fields)),
  /** Newest first, each the full report: both models' scores side by side, the verdict and why. */
  evaluations: Schema.Array(Schema.Struct(EvaluationReport.fields)),
  /** The routes its promotions wrote, newest first; `retired_at` null on the one active. */
  routes: Schema.Array(Schema.Struct(ModelRoute.ModelRoute.fields)),
  takes_traffic: Schema.Boolean,
  /** The scope the curve is of: its routes', else its evaluations', else its dataset's (`blueprint.X`, `specialist.X`). */
  scope: Schema.NullOr(Schema.String),
  /** Null when no scope is known: the dataset names no blueprint, node or specialist, and it was never evaluated. */
  curve: Schema.NullOr(CostCurve)
})
export type FineTuneDetail = typeof FineTuneDetail.Type

/** The scope a derived dataset's id names; a dataset of one's own names its scope once evaluated. */
const scopeOfDatasetId = (id: string): Option.Option<string> => {
  const [kind, ...rest] = id.split(".")
  const name = rest.join(".")
  if (name === "") return Option.none()
  const derived = kind === "blueprint" ? Dataset.forBlueprint(name) : kind === "specialist" ? Dataset.forSpecialist(name) : undefined
  // An id too long to derive a dataset from names no scope.
  return derived === undefined ? Option.none() : Option.flatMap(Either.getRight(derived), (d) => Option.map(ModelRoute.scopeOfDataset(d), ModelRoute.scopeText))
}

export const list = Effect.gen(function*() {
  const jobs = yield* FineTuneStore
  const promotions = yield* PromotionStore
  const active = yield* promotions.active
  return yield* Effect.forEach(yield* jobs.list(), (job) =>
    Effect.map(promotions.evaluations(job.id), (reports): ListedFineTune => {
      const route = active.find((r) => r.job_id === job.id)
      return {
        job,
        verdict: reports[0]?.verdict ?? null,
        evaluated_at: reports[0]?.evaluated_at ?? null,
        takes_traffic: route !== undefined,
        traffic_scope: route?.scope ?? null
      }
    }))
})

export const show = (id: string) =>
  Effect.gen(function*() {
    const jobs = yield* FineTuneStore
    const promotions = yield* PromotionStore
    const job = yield* jobs.require(id)
    const [events, evaluations, routes] = yield* Effect.all([jobs.events(id), promotions.evaluations(id), promotions.routes])
    const own = routes.filter((r) => r.job_id === id)
    const scope = own[0]?.scope ?? evaluations.find((e) => e.scope !== null)?.scope ?? Option.getOrNull(scopeOfDatasetId(job.dataset_id))
    const parsed = scope === null ? Either.left("no scope") : ModelRoute.parseScope(scope)
    const curve = Either.isLeft(parsed) ? null : curveOf({
      scope: scope!,
      model: job.fine_tuned_model,
      points: yield* (yield* CuratorStore).costs(keysOf(parsed.right)),
      routes: own.filter((r) => r.scope === scope)
    })
    return {
      job,
      events,
      evaluations,
      routes: own,
      takes_traffic: own.some((r) => r.retired_at === null),
      scope,
      curve
    } satisfies FineTuneDetail
  })

const keysOf = (scope: ModelRoute.Scope) =>
  scope.kind === "node" ? { blueprint: scope.blueprint, node: scope.node } : scope.kind === "blueprint" ? { blueprint: scope.blueprint } : { specialist: scope.specialist }
