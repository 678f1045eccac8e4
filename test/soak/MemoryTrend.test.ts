import { assert, describe, it } from "@effect/vitest"
import { MemorySample, parseSamples, trendOf } from "../../src/soak/MemoryTrend.js"

const MiB = 2 ** 20
const sample = (t: number, rssMiB: number, heapMiB: number) =>
  new MemorySample({ t, rss: rssMiB * MiB, heap_used: heapMiB * MiB, heap_total: heapMiB * 2 * MiB, external: 0, array_buffers: 0 })

/** One sample a second for `seconds`, each measure given by a function of the second. */
const series = (seconds: number, rss: (s: number) => number, heap: (s: number) => number) =>
  Array.from({ length: seconds }, (_, s) => sample(1_000_000 + s * 1000, rss(s), heap(s)))

describe("MemoryTrend", () => {
  it("a saw-toothing heap over a flat RSS is flat, whatever its peaks", () => {
    const trend = trendOf(series(400, () => 120, (s) => 40 + (s % 10) * 3))!
    assert.isTrue(trend.flat)
    assert.isBelow(Math.abs(trend.heap_used.growth), 0.05)
  })

  it("the warm-up is not judged: a climb to a plateau in the first fifth is flat", () => {
    const trend = trendOf(series(500, (s) => Math.min(60 + s, 150), () => 50))!
    assert.isTrue(trend.flat)
    assert.strictEqual(trend.rss.growth, 0)
  })

  it("a leak of 0.1 MiB a second after warm-up is caught on the heap", () => {
    const trend = trendOf(series(1000, () => 150, (s) => 40 + s * 0.1))!
    assert.isFalse(trend.flat)
    assert.isAbove(trend.heap_used.growth, 0.1)
  })

  it("growth of RSS alone is caught too", () => {
    assert.isFalse(trendOf(series(1000, (s) => 100 + s * 0.05, () => 40))!.flat)
  })

  it("too few samples to judge is undefined, not a pass", () => {
    assert.isUndefined(trendOf(series(5, () => 100, () => 40)))
    assert.isUndefined(trendOf([]))
  })

  it("reads a probe's file, skipping a line cut short by a kill", () => {
    const lines = [sample(2000, 10, 5), sample(1000, 9, 4)].map((s) => JSON.stringify(s)).join("\n") + "\n{\"t\": 3000, \"rss\""
    const samples = parseSamples(lines)
    assert.deepStrictEqual(samples.map((s) => s.t), [1000, 2000])
  })
})
