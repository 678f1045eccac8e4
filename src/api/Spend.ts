import { Effect } from "effect"
import type { Checkpoint } from "../domain/Checkpoint.js"
import * as Runs from "../runtime/Runs.js"
import { StepStore } from "../store/StepStore.js"

/**
 * What a project has spent, for the operator page's charts: each run's cost over time, and the spend per
 * model summed over every model call the runs' steps recorded. A mission's node runs and a fan-out's
 * children are drawn as part of the run above them (whose cost already holds theirs), but their calls
 * count towards the models: a mission's or a fan-out's own run makes no model call, so nothing counts twice.
 */

export interface RunCost {
  readonly run_id: string
  readonly status: string
  readonly kind: "run" | "mission" | "fanout"
  readonly created_at: string
  readonly cost_usd: number
}

export interface ModelSpend {
  readonly model: string
  readonly calls: number
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cost_usd: number
}

const kindOf = (checkpoint: Checkpoint): RunCost["kind"] =>
  checkpoint.mission !== undefined ? "mission" : checkpoint.fanout !== undefined ? "fanout" : "run"

/** Whether a run is below another of `parents` (ids of missions' and fan-outs' runs): `p.node`, `p.node.2`, `p.3`. */
const isBelow = (runId: string, parents: ReadonlySet<string>) => {
  for (let dot = runId.lastIndexOf("."); dot > 0; dot = runId.lastIndexOf(".", dot - 1)) {
    if (parents.has(runId.slice(0, dot))) return true
  }
  return false
}

/** The newest `limit` runs of `project` (oldest first, for a chart over time) and their spend per model, costliest first. */
export const of = (project: string, limit: number) =>
  Effect.gen(function*() {
    const runs = yield* Runs.Runs
    const steps = yield* StepStore
    const listed = (yield* runs.list({ limit, project })).flatMap((run) => (run._tag === "Found" ? [run.checkpoint] : []))
    const parents = new Set(listed.filter((c) => kindOf(c) !== "run").map((c) => c.run_id))
    const costs: Array<RunCost> = listed
      .filter((c) => !isBelow(c.run_id, parents))
      .map((c) => ({ run_id: c.run_id, status: c.status, kind: kindOf(c), created_at: c.created_at, cost_usd: c.usage.dollars }))
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
    const models = new Map<string, { calls: number; input_tokens: number; output_tokens: number; cost_usd: number }>()
    for (const checkpoint of listed) {
      for (const step of yield* steps.recent(checkpoint.run_id, -1)) {
        for (const call of step.calls) {
          const sum = models.get(call.model_used) ?? { calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 }
          models.set(call.model_used, {
            calls: sum.calls + 1,
            input_tokens: sum.input_tokens + call.input_tokens,
            output_tokens: sum.output_tokens + call.output_tokens,
            cost_usd: sum.cost_usd + call.cost_usd
          })
        }
      }
    }
    const byModel: Array<ModelSpend> = [...models].map(([model, sum]) => ({ model, ...sum })).sort((a, b) => b.cost_usd - a.cost_usd)
    return { runs: costs, models: byModel }
  })
