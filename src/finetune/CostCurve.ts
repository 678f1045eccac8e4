import { DateTime, Duration, Option, Schema } from "effect"
import type { CostPoint } from "../store/CuratorStore.js"
import type { ModelRoute } from "./ModelRoute.js"

/**
 * What a scope's accepted steps cost over time, before and after a fine-tune took its traffic: the
 * seed's "measure exactly how much cheaper each step gets", from the curator's samples (each one accepted
 * unit of work, with its act call's model and cost). Pure: the store hands over the points, the routes say
 * when the model was promoted and retired.
 */

/** Steps of one model captured at one time, summed: the store groups its samples so. */
export type { CostPoint }

export const Phase = Schema.Literal("before", "after")
export type Phase = typeof Phase.Type

export const Bucket = Schema.Struct({
  /** The bucket's span, cut at the promotion: a bucket holds steps of one side of it only. */
  from: Schema.String,
  to: Schema.String,
  phase: Phase,
  steps: Schema.Int,
  cost_usd: Schema.Number,
  cost_per_step_usd: Schema.Number,
  /** Of its steps, those the fine-tuned model answered. */
  model_steps: Schema.Int
})
export type Bucket = typeof Bucket.Type

export const Marker = Schema.Struct({
  /** `replaced`: another promotion took the scope; `rolled_back`: any other retirement (an operator's). */
  kind: Schema.Literal("promoted", "rolled_back", "replaced"),
  at: Schema.String,
  route_id: Schema.String,
  reason: Schema.NullOr(Schema.String)
})
export type Marker = typeof Marker.Type

export const Side = Schema.Struct({
  steps: Schema.Int,
  cost_usd: Schema.Number,
  /** Null without steps. */
  cost_per_step_usd: Schema.NullOr(Schema.Number)
})
export type Side = typeof Side.Type

export const CostCurve = Schema.Struct({
  scope: Schema.String,
  /** The fine-tuned model whose steps `model_steps` counts. */
  model: Schema.NullOr(Schema.String),
  /** The first promotion: steps captured before it are `before`, from it on `after`. Null: never promoted. */
  promoted_at: Schema.NullOr(Schema.String),
  bucket_seconds: Schema.Int,
  buckets: Schema.Array(Bucket),
  markers: Schema.Array(Marker),
  before: Side,
  after: Side,
  /** after's cost per step against before's, as a fraction (-0.4: 40% cheaper); null when a side has no steps. */
  change: Schema.NullOr(Schema.Number)
})
export type CostCurve = typeof CostCurve.Type

/** Bucket widths, finest first: the curve takes the finest that spans its time in at most `maxBuckets`. */
const widths = [
  Duration.minutes(1),
  Duration.minutes(5),
  Duration.minutes(15),
  Duration.minutes(30),
  Duration.hours(1),
  Duration.hours(2),
  Duration.hours(3),
  Duration.hours(6),
  Duration.hours(12),
  Duration.days(1),
  Duration.days(2),
  Duration.weeks(1)
].map(Duration.toMillis)

export const defaultMaxBuckets = 50

const millisOf = (iso: string): number => Option.match(DateTime.make(iso), { onNone: () => Number.NaN, onSome: DateTime.toEpochMillis })
const isoOf = (millis: number): string => DateTime.formatIso(DateTime.unsafeMake(millis))

/** The finest width (aligned to the epoch) over which `[t0, t1]` takes at most `max` buckets. */
export const widthFor = (t0: number, t1: number, max: number): number => {
  const fits = (w: number) => Math.floor(t1 / w) - Math.floor(t0 / w) + 1 <= max
  const nice = widths.find(fits)
  if (nice !== undefined) return nice
  let w = widths.at(-1)!
  while (!fits(w)) w *= 2
  return w
}

const sideOf = (steps: number, cost: number): Side => ({ steps, cost_usd: cost, cost_per_step_usd: steps === 0 ? null : cost / steps })

/**
 * The curve of `points` for `scope`, split at the first of `routes`' promotions (the routes of one job in
 * that scope) and marked at each promotion and retirement. Points whose time does not parse, or whose
 * figures are not finite, are left out.
 */
export const curveOf = (input: {
  readonly scope: string
  readonly model: string | null
  readonly points: ReadonlyArray<CostPoint>
  readonly routes: ReadonlyArray<ModelRoute>
  readonly maxBuckets?: number | undefined
}): CostCurve => {
  const points = input.points
    .map((p) => ({ ...p, t: millisOf(p.at) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.cost_usd) && Number.isInteger(p.steps) && p.steps > 0)
  const markers: Array<Marker> = input.routes.flatMap((r): Array<Marker> => [
    { kind: "promoted", at: r.promoted_at, route_id: r.id, reason: null },
    ...(r.retired_at === null ? [] : [{
      kind: r.retired_reason?.startsWith("replaced by") === true ? "replaced" as const : "rolled_back" as const,
      at: r.retired_at,
      route_id: r.id,
      reason: r.retired_reason
    }])
  ]).filter((m) => Number.isFinite(millisOf(m.at)))
    .sort((a, b) => millisOf(a.at) - millisOf(b.at) || (a.kind === "promoted" ? 1 : 0) - (b.kind === "promoted" ? 1 : 0))
  const promotions = markers.filter((m) => m.kind === "promoted").map((m) => millisOf(m.at))
  const split = promotions.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...promotions)
  const times = [...points.map((p) => p.t), ...markers.map((m) => millisOf(m.at))]
  const width = times.length === 0 ? widths[0]! : widthFor(Math.min(...times), Math.max(...times), Math.max(1, input.maxBuckets ?? defaultMaxBuckets))

  const buckets = new Map<string, { index: number; phase: Phase; steps: number; cost: number; model: number }>()
  const sides = { before: { steps: 0, cost: 0 }, after: { steps: 0, cost: 0 } }
  for (const p of points) {
    const phase: Phase = p.t < split ? "before" : "after"
    const index = Math.floor(p.t / width)
    const key = `${index}:${phase}`
    const bucket = buckets.get(key) ?? { index, phase, steps: 0, cost: 0, model: 0 }
    bucket.steps += p.steps
    bucket.cost += p.cost_usd
    if (input.model !== null && p.model === input.model) bucket.model += p.steps
    buckets.set(key, bucket)
    sides[phase].steps += p.steps
    sides[phase].cost += p.cost_usd
  }
  const before = sideOf(sides.before.steps, sides.before.cost)
  const after = sideOf(sides.after.steps, sides.after.cost)
  return {
    scope: input.scope,
    model: input.model,
    promoted_at: Number.isFinite(split) ? isoOf(split) : null,
    bucket_seconds: Math.round(width / 1000),
    buckets: [...buckets.values()]
      .sort((a, b) => a.index - b.index || (a.phase === "before" ? -1 : 1))
      .map((b): Bucket => {
        const start = b.index * width
        const end = start + width
        return {
          from: isoOf(b.phase === "after" ? Math.max(start, split) : start),
          to: isoOf(b.phase === "before" ? Math.min(end, split) : end),
          phase: b.phase,
          steps: b.steps,
          cost_usd: b.cost,
          cost_per_step_usd: b.cost / b.steps,
          model_steps: b.model
        }
      }),
    markers,
    before,
    after,
    change: before.cost_per_step_usd === null || after.cost_per_step_usd === null || before.cost_per_step_usd === 0
      ? null
      : after.cost_per_step_usd / before.cost_per_step_usd - 1
  }
}
