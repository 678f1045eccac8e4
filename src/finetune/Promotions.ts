import { Chunk, Config, Context, DateTime, Effect, Either, Layer, Option, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { Curator } from "../curator/Curator.js"
import { BadInput, type LlmError, type PersistenceError } from "../domain/Errors.js"
import { Llm } from "../llm/Llm.js"
import { FineTuneStore } from "../store/FineTuneStore.js"
import { PromotionStore, type RolledBack } from "../store/PromotionStore.js"
import * as Evaluation from "./Evaluation.js"
import { defaultTolerancePoints, EvaluationReport, verdictOf } from "./EvaluationReport.js"
import { type FineTuneJob, FineTuneJobNotFound } from "./FineTuneJob.js"
import * as ModelRoute from "./ModelRoute.js"
import * as RoutedLlm from "./RoutedLlm.js"

/** What a review of a finished job came to: its report, and its route when it was promoted. */
export interface Reviewed {
  readonly report: EvaluationReport
  readonly route: Option.Option<ModelRoute.ModelRoute>
}

/**
 * From a finished fine-tune to traffic: `evaluate` replays the dataset's held-out samples on the new
 * model and on the one its scope uses now and has the judge grade both; `promote` writes the routing rule,
 * only for a model whose latest evaluation earned it; `rollback` retires it, restoring what it replaced.
 */
export class Promotions extends Context.Tag("autopilot/Promotions")<
  Promotions,
  {
    readonly evaluate: (jobId: string) => Effect.Effect<EvaluationReport, FineTuneJobNotFound | BadInput | LlmError | PersistenceError>
    /** Evaluates first when the job has no evaluation yet: no model takes traffic unevaluated. */
    readonly promote: (jobId: string) => Effect.Effect<ModelRoute.ModelRoute, FineTuneJobNotFound | BadInput | LlmError | PersistenceError>
    readonly rollback: (jobId: string) => Effect.Effect<RolledBack, FineTuneJobNotFound | BadInput | PersistenceError>
    /**
     * Evaluates a job never evaluated, and promotes it when the report says so (unless `promote: false`): what
     * the daemon does with each job that succeeds. None when it was evaluated already, or another process is
     * reviewing it now.
     */
    readonly review: (jobId: string, options?: { readonly promote?: boolean }) => Effect.Effect<Option.Option<Reviewed>, FineTuneJobNotFound | BadInput | LlmError | PersistenceError>
    readonly evaluations: (jobId: string) => Effect.Effect<ReadonlyArray<EvaluationReport>, FineTuneJobNotFound | PersistenceError>
    readonly routes: Effect.Effect<ReadonlyArray<ModelRoute.ModelRoute>, PersistenceError>
  }
>() {}

export interface PromotionsConfig {
  /** How many points (of 100) below the baseline's pass rate a candidate may pass. */
  readonly tolerancePoints: number
  /** At most this many held-out samples are replayed (each costs two calls per model). */
  readonly maxSamples: number
}

export const defaultMaxSamples = 50

/**
 * `serving`: where the evaluating provider sends a model served elsewhere (the mock serves every model
 * itself); `defaultModel`: the model the traffic gets when it is named for a whole process (a daemon's
 * `--model`), the baseline where no route is in force; the provider's own default when absent.
 */
export const make = (config: PromotionsConfig, serving: RoutedLlm.Serving, defaultModel?: string | undefined) =>
  Effect.gen(function*() {
    const jobs = yield* FineTuneStore
    const store = yield* PromotionStore
    const curator = yield* Curator
    const llm = yield* Llm
    const now = Effect.map(DateTime.now, DateTime.formatIso)


    const finished = (job: FineTuneJob) =>
      job.status === "succeeded" && job.fine_tuned_model !== null
        ? Effect.succeed(job.fine_tuned_model)
        : Effect.fail(new BadInput({ message: `fine-tune job ${job.id} is ${job.status}${job.status === "succeeded" ? " without a model" : ""}: only a succeeded job's model can be evaluated or promoted` }))

    const log = (job: FineTuneJob, kind: "finetune_evaluated" | "finetune_promoted" | "finetune_rolled_back", message: string) =>
      Effect.flatMap(now, (at) => jobs.append(job.id, { kind, at, status: job.status, message, ref: null }))

    /** The route the scope's traffic takes now, other than the job's own: what a candidate must beat. */
    const baselineRoute = (job: FineTuneJob, scope: string | null) =>
      scope === null
        ? Effect.succeedNone
        : Effect.map(store.active, (active) =>
          Option.flatMap(Either.getRight(ModelRoute.parseScope(scope)), (s) => ModelRoute.resolve(active.filter((r) => r.job_id !== job.id), ModelRoute.keysOfScope(s))))

    const evaluate = (jobId: string) =>
      Effect.gen(function*() {
        const job = yield* jobs.require(jobId)
        const model = yield* finished(job)
        const { definition } = yield* curator.show(job.dataset_id)
        const scope = Option.getOrNull(Option.map(ModelRoute.scopeOfDataset(definition), ModelRoute.scopeText))
        const lines = yield* Stream.runCollect(Stream.take(curator.lines(job.dataset_id, "eval"), config.maxSamples))
        const cases = Chunk.toReadonlyArray(lines).flatMap((line) => Either.getRight(Evaluation.caseOf(line)).pipe(Option.toArray))
        // The baseline is what the scope's traffic gets now: its active route (another job's), else the provider's default.
        const current = yield* baselineRoute(job, scope)
        const id = `eval-${randomBytes(6).toString("hex")}`
        const on = (route: { readonly base_url: string | null; readonly model: string }) => RoutedLlm.clientFor(llm, serving, route)
        const candidate = yield* Evaluation.replay({ cases, model, replayWith: yield* on({ base_url: job.base_url, model }), judge: llm, id })
        const baselineModel = Option.match(current, { onNone: () => defaultModel, onSome: (r) => r.model })
        const baseline = yield* Evaluation.replay({
          cases,
          model: baselineModel,
          replayWith: yield* Option.match(current, { onNone: () => Effect.succeed(llm), onSome: on }),
          judge: llm,
          id
        })
        const scores = {
          candidate: Evaluation.scoreOf(model, candidate),
          baseline: Evaluation.scoreOf(baselineModel ?? "(provider default)", baseline),
          scope
        }
        const { reason, verdict } = verdictOf(scores, config.tolerancePoints)
        const report = new EvaluationReport({
          id,
          job_id: job.id,
          dataset_id: job.dataset_id,
          ...scores,
          baseline_route: Option.getOrNull(Option.map(current, (r) => r.id)),
          tolerance_points: config.tolerancePoints,
          verdict,
          reason,
          cost_usd: [...candidate, ...baseline].reduce((sum, o) => sum + o.spent_usd, 0),
          evaluated_at: yield* now
        })
        yield* store.saveEvaluation(report)
        yield* log(job, "finetune_evaluated", `${verdict}: ${reason}`)
        return report
      })

    const promoteWith = (job: FineTuneJob, report: EvaluationReport) =>
      Effect.gen(function*() {
        const model = yield* finished(job)
        if (report.verdict !== "promotable" || report.scope === null) {
          return yield* new BadInput({ message: `fine-tune job ${job.id} stays a candidate: ${report.reason} (evaluation ${report.id}; \`autopilot finetune evaluate ${job.id}\` evaluates it again)` })
        }
        const active = (yield* store.active).find((r) => r.scope === report.scope)
        if (active?.job_id === job.id) return yield* new BadInput({ message: `fine-tune job ${job.id} takes the traffic of ${report.scope} already (route ${active.id})` })
        // Measured against what the scope had then: if its traffic moved since, the comparison is stale.
        const inForce = Option.getOrNull(Option.map(yield* baselineRoute(job, report.scope), (r) => r.id))
        if (inForce !== report.baseline_route) {
          return yield* new BadInput({
            message: `fine-tune job ${job.id} was evaluated against ${report.baseline_route ?? "the provider's default"}, but ${report.scope} goes to ${
              inForce ?? "the provider's default"
            } now: evaluate it again (\`autopilot finetune evaluate ${job.id}\`)`
          })
        }
        const route = yield* store.promote(
          new ModelRoute.ModelRoute({
            id: `route-${randomBytes(6).toString("hex")}`,
            scope: report.scope,
            model,
            base_url: job.base_url,
            job_id: job.id,
            evaluation_id: report.id,
            baseline_model: report.baseline_route === null ? defaultModel ?? null : report.baseline.model,
            replaces: null,
            promoted_at: yield* now,
            retired_at: null,
            retired_reason: null
          })
        )
        yield* log(job, "finetune_promoted", `${model} takes the traffic of ${route.scope}${route.replaces === null ? "" : ` (replacing route ${route.replaces})`}`)
        return route
      })

    const latestOrNew = (job: FineTuneJob) =>
      Effect.flatMap(store.evaluations(job.id), (reports) => reports.length > 0 ? Effect.succeed(reports[0]!) : evaluate(job.id))

    return Promotions.of({
      evaluate,
      promote: (jobId) => Effect.flatMap(jobs.require(jobId), (job) => Effect.flatMap(latestOrNew(job), (report) => promoteWith(job, report))),
      rollback: (jobId) => rollback(jobId).pipe(Effect.provideService(FineTuneStore, jobs), Effect.provideService(PromotionStore, store)),
      review: (jobId, options) =>
        Effect.gen(function*() {
          const job = yield* jobs.require(jobId)
          // One process pays for a job's evaluation: another reviewing it, or one that has, leaves it be.
          const at = yield* DateTime.now
          const claimed = yield* store.claimReview(job.id, DateTime.formatIso(at), DateTime.formatIso(DateTime.subtract(at, { hours: 1 })))
          if (!claimed) return Option.none()
          return yield* Effect.gen(function*() {
            if ((yield* store.evaluations(job.id)).length > 0) return Option.none()
            const report = yield* evaluate(jobId)
            if (report.verdict !== "promotable" || options?.promote === false) return Option.some({ report, route: Option.none() })
            return Option.some({ report, route: Option.some(yield* promoteWith(job, report)) })
          }).pipe(Effect.ensuring(Effect.ignore(store.releaseReview(job.id))))
        }),
      evaluations: (jobId) => Effect.zipRight(jobs.require(jobId), store.evaluations(jobId)),
      routes: store.routes
    })
  })

/**
 * Retires the job's active route, restoring the one it replaced, and logs it on the job: an operator's
 * undo, which needs neither a provider nor the curator.
 */
export const rollback = (jobId: string): Effect.Effect<RolledBack, FineTuneJobNotFound | BadInput | PersistenceError, FineTuneStore | PromotionStore> =>
  Effect.gen(function*() {
    const jobs = yield* FineTuneStore
    const store = yield* PromotionStore
    const job = yield* jobs.require(jobId)
    const route = (yield* store.active).find((r) => r.job_id === job.id)
    if (route === undefined) return yield* new BadInput({ message: `fine-tune job ${job.id} takes no traffic: nothing to roll back (see \`autopilot finetune routes\`)` })
    const at = DateTime.formatIso(yield* DateTime.now)
    const rolled = yield* store.rollback(route.id, at, "rolled back by an operator")
    if (Option.isNone(rolled)) return yield* new BadInput({ message: `route ${route.id} of fine-tune job ${job.id} was retired meanwhile` })
    const message = `${route.model} no longer takes the traffic of ${route.scope}; ${
      Option.match(rolled.value.restored, { onNone: () => "it goes to the provider's default", onSome: (r) => `${r.model} takes it again (route ${r.id})` })
    }`
    yield* jobs.append(job.id, { kind: "finetune_rolled_back", at, status: job.status, message, ref: null })
    return rolled.value
  })

export const layer = (
  config: PromotionsConfig,
  serving: RoutedLlm.Serving,
  defaultModel?: string | undefined
): Layer.Layer<Promotions, never, FineTuneStore | PromotionStore | Curator | Llm> => Layer.effect(Promotions, make(config, serving, defaultModel))

/**
 * `AUTOPILOT_FINETUNE_TOLERANCE_POINTS` (default 2: a candidate may pass at most 2 points less often than
 * the baseline) and `AUTOPILOT_FINETUNE_EVAL_SAMPLES` (default 50); a bad value is one line.
 */
export const config: Effect.Effect<PromotionsConfig, BadInput> = Effect.gen(function*() {
  const text = (name: string) => Config.option(Config.string(name)).pipe(Effect.orDie, Effect.map(Option.filter((value) => value.trim() !== "")))
  const number = (name: string, fallback: number, ok: (n: number) => boolean, allowed: string) =>
    Effect.flatMap(text(name), Option.match({
      onNone: () => Effect.succeed(fallback),
      onSome: (raw) => {
        const value = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN
        return ok(value) ? Effect.succeed(value) : Effect.fail(new BadInput({ message: `${name} must be ${allowed}, got "${raw}"` }))
      }
    }))
  return {
    tolerancePoints: yield* number("AUTOPILOT_FINETUNE_TOLERANCE_POINTS", defaultTolerancePoints, (n) => n >= 0 && n <= 100, "a number of points from 0 to 100"),
    maxSamples: yield* number("AUTOPILOT_FINETUNE_EVAL_SAMPLES", defaultMaxSamples, (n) => Number.isInteger(n) && n >= 1 && n <= 100_000, "a whole number of samples from 1 to 100000")
  }
})

export const layerConfig = (serving: RoutedLlm.Serving, defaultModel?: string | undefined): Layer.Layer<Promotions, BadInput, FineTuneStore | PromotionStore | Curator | Llm> =>
  Layer.unwrapEffect(Effect.map(config, (c) => layer(c, serving, defaultModel)))
