import { Effect, Option } from "effect"
import type { TrainingSample } from "../../src/curator/Sample.js"
import { EvaluationReport, type ModelScore, verdictOf } from "../../src/finetune/EvaluationReport.js"
import { FineTuneJob, type Status } from "../../src/finetune/FineTuneJob.js"
import { ModelRoute } from "../../src/finetune/ModelRoute.js"
import { CuratorStore } from "../../src/store/CuratorStore.js"
import { FineTuneStore } from "../../src/store/FineTuneStore.js"
import { PromotionStore } from "../../src/store/PromotionStore.js"

/**
 * Fine-tunes as the stores hold them once the training loop and an operator have done their work: three
 * jobs (one evaluated and left a candidate, one promoted, rolled back and promoted again, one still
 * running), their evaluations and routes, and the curator's samples of the promoted one's scope, cheaper
 * after its promotion. Written through the stores, as the daemon and the CLI write them.
 */

export const day = "2025-03-10"
const at = (time: string) => `${day}T${time}:00.000Z`

export const ids = { candidate: "ft-00000000000a", promoted: "ft-00000000000b", running: "ft-00000000000c" } as const
export const tunedModel = "ft:gpt-4o-mini-2024-07-18:acme::classify"
export const promotedScope = "node:triage/classify"

const job = (id: string, dataset: string, status: Status, created: string, model: string | null) =>
  new FineTuneJob({
    id,
    dataset_id: dataset,
    snapshot: `sha256-${id}`,
    samples: 120,
    file: `/tmp/${dataset}.jsonl`,
    provider: "mock",
    provider_job_id: `mock-${id}`,
    base_model: "gpt-4o-mini-2024-07-18",
    status,
    fine_tuned_model: model,
    base_url: null,
    error: null,
    created_at: at(created),
    updated_at: at(created),
    finished_at: status === "succeeded" ? at(created) : null
  })

const score = (model: string, passed: number, cost: number, latency: number, errors = 0): ModelScore => ({
  model,
  samples: 20,
  passed,
  pass_rate: passed / 20,
  cost_per_step_usd: cost,
  latency_per_step_ms: latency,
  errors,
  first_error: null
})

const report = (id: string, jobId: string, dataset: string, scope: string, candidate: ModelScore, baseline: ModelScore, evaluated: string) =>
  new EvaluationReport({
    id,
    job_id: jobId,
    dataset_id: dataset,
    scope,
    candidate,
    baseline,
    tolerance_points: 2,
    ...verdictOf({ candidate, baseline, scope }, 2),
    cost_usd: 0.42,
    evaluated_at: at(evaluated)
  })

/** The promoted job's report: 18 of 20 against 18 of 20, $0.0021 a step against $0.0125. */
export const promotedReport = report(
  "eval-b",
  ids.promoted,
  "triage-classify",
  promotedScope,
  score(tunedModel, 18, 0.0021, 410),
  score("gpt-4o", 18, 0.0125, 980),
  "11:50"
)

const route = (id: string, promoted: string) =>
  new ModelRoute({
    id,
    scope: promotedScope,
    model: tunedModel,
    base_url: null,
    job_id: ids.promoted,
    evaluation_id: promotedReport.id,
    baseline_model: null,
    replaces: null,
    promoted_at: at(promoted),
    retired_at: null,
    retired_reason: null
  })

const sample = (n: number, fields: Partial<TrainingSample["metadata"]>): TrainingSample => ({
  messages: [{ role: "user", content: `sort ticket ${n}` }, { role: "assistant", content: "billing" }],
  tools: [],
  metadata: {
    source: "node",
    run_id: `ms-seed.classify.${n}`,
    iteration: 1,
    run_status: "completed",
    model: "gpt-4o",
    cost_usd: 0.0125,
    latency_ms: 900,
    tokens: 30,
    hash: `seed${n}`.padEnd(32, "0"),
    captured_at: at("10:00"),
    ...fields
  }
})

/**
 * The classify node's steps: 4 on gpt-4o before the promotion at 12:00 ($0.012 a step), 4 on the tuned
 * model after it ($0.002), and the specialist `sorter`'s 2 steps for the running job's dataset.
 */
const samples: ReadonlyArray<TrainingSample> = [
  sample(1, { blueprint: "triage", node: "classify", captured_at: at("10:00"), cost_usd: 0.012 }),
  sample(2, { blueprint: "triage", node: "classify", captured_at: at("10:00"), cost_usd: 0.012 }),
  sample(3, { blueprint: "triage", node: "2.classify", captured_at: at("11:00"), cost_usd: 0.012 }),
  sample(4, { blueprint: "triage", node: "classify", captured_at: at("11:00"), cost_usd: 0.012 }),
  sample(5, { blueprint: "triage", node: "classify", captured_at: at("12:30"), cost_usd: 0.002, model: tunedModel }),
  sample(6, { blueprint: "triage", node: "classify", captured_at: at("12:30"), cost_usd: 0.002, model: tunedModel }),
  sample(7, { blueprint: "triage", node: "classify", captured_at: at("14:30"), cost_usd: 0.002, model: tunedModel }),
  sample(8, { blueprint: "triage", node: "classify", captured_at: at("14:30"), cost_usd: 0.002, model: tunedModel }),
  sample(9, { source: "run", specialist: "sorter", captured_at: at("10:00"), cost_usd: 0.004 }),
  sample(10, { source: "run", specialist: "sorter", captured_at: at("13:00"), cost_usd: 0.006 })
]

export const seedFineTunes = Effect.gen(function*() {
  const jobs = yield* FineTuneStore
  const promotions = yield* PromotionStore
  const curator = yield* CuratorStore
  yield* curator.record({ run_id: "ms-seed", updated_at: at("15:00"), size: 1, run_status: "completed", samples })
  for (const made of [
    job(ids.candidate, "blueprint.triage", "succeeded", "09:00", "ft:gpt-4o-mini-2024-07-18:acme::triage"),
    job(ids.promoted, "triage-classify", "succeeded", "10:00", tunedModel),
    job(ids.running, "specialist.sorter", "running", "11:00", null)
  ]) {
    yield* jobs.claim(made)
    yield* jobs.append(made.id, { kind: "finetune_started", at: made.created_at, status: "validating_files", message: `started on ${made.samples} samples`, ref: null })
  }
  yield* promotions.saveEvaluation(report(
    "eval-a",
    ids.candidate,
    "blueprint.triage",
    "blueprint:triage",
    score("ft:gpt-4o-mini-2024-07-18:acme::triage", 12, 0.002, 400),
    score("gpt-4o", 18, 0.0125, 950),
    "09:30"
  ))
  yield* promotions.saveEvaluation(promotedReport)
  const first = yield* promotions.promote(route("route-b1", "12:00"))
  yield* promotions.rollback(first.id, at("13:30"), "rolled back by an operator").pipe(Effect.map(Option.getOrThrow))
  yield* promotions.promote(route("route-b2", "14:00"))
  yield* jobs.append(ids.promoted, { kind: "finetune_promoted", at: at("14:00"), status: "succeeded", message: `${tunedModel} takes the traffic of ${promotedScope}`, ref: null })
})
