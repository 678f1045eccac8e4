import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import { type CostPoint, CostCurve, curveOf, defaultMaxBuckets, widthFor } from "../../src/finetune/CostCurve.js"
import { ModelRoute } from "../../src/finetune/ModelRoute.js"

const hour = 3_600_000
const t0 = Date.parse("2025-03-10T00:00:00.000Z")
const iso = (ms: number) => new Date(ms).toISOString()

const route = (fields: { promoted: number; retired?: number; reason?: string; id?: string }) =>
  new ModelRoute({
    id: fields.id ?? "route-1",
    scope: "blueprint:triage",
    model: "ft:cheap",
    base_url: null,
    job_id: "ft-1",
    evaluation_id: "eval-1",
    baseline_model: null,
    replaces: null,
    promoted_at: iso(fields.promoted),
    retired_at: fields.retired === undefined ? null : iso(fields.retired),
    retired_reason: fields.retired === undefined ? null : fields.reason ?? "rolled back by an operator"
  })

const point = (at: number, model: string, steps: number, cost: number): CostPoint => ({ at: iso(at), model, steps, cost_usd: cost })

describe("CostCurve", () => {
  it("splits at the promotion: what a step cost before and after, in the finest width that fits, with the promotion and the rollback marked", () => {
    const points = [
      point(t0, "gpt-4o", 2, 0.02),
      point(t0 + hour, "gpt-4o", 1, 0.012),
      point(t0 + 2 * hour + 60_000, "ft:cheap", 4, 0.008),
      point(t0 + 3 * hour, "ft:cheap", 1, 0.002)
    ]
    const curve = curveOf({ scope: "blueprint:triage", model: "ft:cheap", points, routes: [route({ promoted: t0 + 2 * hour, retired: t0 + 3 * hour + 30 * 60_000 })], maxBuckets: 4 })
    assert.strictEqual(curve.bucket_seconds, 3600)
    assert.strictEqual(curve.promoted_at, iso(t0 + 2 * hour))
    assert.deepStrictEqual(curve.buckets.map((b) => [b.from, b.phase, b.steps, b.model_steps]), [
      [iso(t0), "before", 2, 0],
      [iso(t0 + hour), "before", 1, 0],
      [iso(t0 + 2 * hour), "after", 4, 4],
      [iso(t0 + 3 * hour), "after", 1, 1]
    ])
    assert.closeTo(curve.buckets[0]!.cost_per_step_usd, 0.01, 1e-12)
    assert.deepStrictEqual(curve.before, { steps: 3, cost_usd: 0.032, cost_per_step_usd: 0.032 / 3 })
    assert.strictEqual(curve.after.steps, 5)
    assert.closeTo(curve.after.cost_per_step_usd!, 0.002, 1e-12)
    assert.closeTo(curve.change!, 0.002 / (0.032 / 3) - 1, 1e-12)
    assert.deepStrictEqual(curve.markers.map((m) => [m.kind, m.at]), [["promoted", iso(t0 + 2 * hour)], ["rolled_back", iso(t0 + 3 * hour + 30 * 60_000)]])
    assert.doesNotThrow(() => Schema.encodeSync(CostCurve)(curve))
  })

  it("a bucket the promotion falls in is cut there: its steps before on one side, after on the other", () => {
    const promoted = t0 + 30 * 60_000
    const curve = curveOf({
      scope: "blueprint:triage",
      model: "ft:cheap",
      points: [point(t0 + 10 * 60_000, "gpt-4o", 1, 0.01), point(t0 + 50 * 60_000, "ft:cheap", 1, 0.001), point(t0 + 30 * hour, "ft:cheap", 1, 0.001)],
      routes: [route({ promoted })]
    })
    const [first, second] = curve.buckets
    assert.deepStrictEqual([first!.phase, first!.to, second!.phase, second!.from], ["before", iso(promoted), "after", iso(promoted)])
    assert.strictEqual(first!.from, iso(t0))
  })

  it("never promoted: every step is before, nothing marked, no change; a replacement is marked as such", () => {
    const plain = curveOf({ scope: "specialist:sorter", model: null, points: [point(t0, "gpt-4o", 3, 0.03)], routes: [] })
    assert.deepStrictEqual([plain.promoted_at, plain.markers, plain.after.cost_per_step_usd, plain.change], [null, [], null, null])
    assert.strictEqual(plain.buckets[0]!.model_steps, 0)
    const replaced = curveOf({ scope: "s", model: "ft:cheap", points: [], routes: [route({ promoted: t0, retired: t0 + hour, reason: "replaced by ft:other (fine-tune ft-2)" })] })
    assert.deepStrictEqual(replaced.markers.map((m) => m.kind), ["promoted", "replaced"])
    assert.deepStrictEqual(replaced.buckets, [])
    const empty = curveOf({ scope: "s", model: null, points: [], routes: [] })
    assert.deepStrictEqual([empty.buckets, empty.before.steps, empty.bucket_seconds], [[], 0, 60])
  })

  it("leaves out a point whose time does not parse or whose figures are not finite", () => {
    const curve = curveOf({
      scope: "s",
      model: null,
      points: [{ at: "not a time", model: "m", steps: 1, cost_usd: 1 }, { at: iso(t0), model: "m", steps: 1, cost_usd: Number.NaN }, point(t0, "m", 2, 0.5)],
      routes: []
    })
    assert.deepStrictEqual(curve.buckets.map((b) => b.steps), [2])
  })

  const pointArb = fc.record({
    at: fc.integer({ min: t0, max: t0 + 90 * 24 * hour }),
    model: fc.constantFrom("gpt-4o", "ft:cheap"),
    steps: fc.integer({ min: 1, max: 50 }),
    cost: fc.double({ min: 0, max: 5, noNaN: true })
  })
  // Now and then promoted at the very time of a step: that step is after it.
  const routeArb = fc.option(fc.record({
    promoted: fc.integer({ min: t0 - hour, max: t0 + 91 * 24 * hour }),
    onStep: fc.option(fc.nat()),
    after: fc.option(fc.integer({ min: 0, max: 30 * 24 * hour }))
  }))

  it.prop("every step lands in one bucket, on its side of the promotion, inside the bucket's span; at most the buckets asked for, oldest first", [
    fc.array(pointArb, { maxLength: 200 }),
    routeArb,
    fc.integer({ min: 1, max: 80 })
  ], ([raw, drawn, max]) => {
    const promotion = drawn === null ? null : { ...drawn, promoted: drawn.onStep === null || raw.length === 0 ? drawn.promoted : raw[drawn.onStep % raw.length]!.at }
    const points = raw.map((p) => point(p.at, p.model, p.steps, p.cost))
    const routes = promotion === null ? [] : [route({ promoted: promotion.promoted, ...(promotion.after === null ? {} : { retired: promotion.promoted + promotion.after }) })]
    const curve = curveOf({ scope: "s", model: "ft:cheap", points, routes, maxBuckets: max })
    const split = promotion === null ? Infinity : promotion.promoted
    const total = (f: (p: typeof raw[number]) => number) => raw.reduce((n, p) => n + f(p), 0)
    assert.strictEqual(curve.buckets.reduce((n, b) => n + b.steps, 0), total((p) => p.steps))
    assert.closeTo(curve.buckets.reduce((n, b) => n + b.cost_usd, 0), total((p) => p.cost), 1e-6)
    assert.strictEqual(curve.buckets.reduce((n, b) => n + b.model_steps, 0), total((p) => (p.model === "ft:cheap" ? p.steps : 0)))
    assert.strictEqual(curve.before.steps, total((p) => (p.at < split ? p.steps : 0)))
    assert.strictEqual(curve.after.steps, total((p) => (p.at >= split ? p.steps : 0)))
    const width = curve.bucket_seconds * 1000
    const slots = new Set(curve.buckets.map((b) => Math.floor(Date.parse(b.from) / width)))
    assert.isAtMost(slots.size, max)
    for (const p of raw) {
      const phase = p.at < split ? "before" : "after"
      const holding = curve.buckets.filter((b) => Date.parse(b.from) <= p.at && p.at < Date.parse(b.to))
      assert.deepStrictEqual(holding.map((b) => b.phase), [phase], `the point at ${iso(p.at)} is in exactly one bucket, ${phase}`)
    }
    for (const b of curve.buckets) {
      assert.isBelow(Date.parse(b.from), Date.parse(b.to))
      if (b.phase === "before") assert.isAtMost(Date.parse(b.to), split)
      else assert.isAtLeast(Date.parse(b.from), split)
    }
    const starts = curve.buckets.map((b) => Date.parse(b.from))
    assert.deepStrictEqual(starts, [...starts].sort((a, b) => a - b))
  })

  it.prop("the width is the finest that fits: one step finer would need more buckets than allowed", [
    fc.integer({ min: 0, max: 2 ** 40 }),
    fc.integer({ min: 0, max: 2 ** 36 }),
    fc.integer({ min: 1, max: 100 })
  ], ([start, span, max]) => {
    const w = widthFor(start, start + span, max)
    const count = (width: number) => Math.floor((start + span) / width) - Math.floor(start / width) + 1
    assert.isAtMost(count(w), max)
    if (w > 60_000 && w <= 7 * 24 * hour) {
      const finer = [60_000, 300_000, 900_000, 1_800_000, hour, 2 * hour, 3 * hour, 6 * hour, 12 * hour, 24 * hour, 48 * hour].filter((x) => x < w).at(-1)!
      assert.isAbove(count(finer), max)
    }
  })

  it("draws at most the default number of buckets over a year of steps", () => {
    const points = Array.from({ length: 365 }, (_, day) => point(t0 + day * 24 * hour, "gpt-4o", 1, 0.01))
    const curve = curveOf({ scope: "s", model: null, points, routes: [] })
    assert.isAtMost(curve.buckets.length, defaultMaxBuckets)
    assert.strictEqual(curve.bucket_seconds, 14 * 24 * 3600)
  })
})
