import { Schema } from "effect"

/** One line of `scripts/lib/memory-probe.mjs`: a process's memory at an instant, bytes. */
export class MemorySample extends Schema.Class<MemorySample>("MemorySample")({
  t: Schema.Number,
  rss: Schema.Number,
  heap_used: Schema.Number,
  heap_total: Schema.Number,
  external: Schema.Number,
  array_buffers: Schema.Number
}) {}

const decodeLine = Schema.decodeUnknownOption(Schema.parseJson(MemorySample))

/** The samples of a probe's file, in time order; a line cut short by a kill is skipped. */
export const parseSamples = (text: string): ReadonlyArray<MemorySample> =>
  text.split("\n").flatMap((line) => {
    const sample = line === "" ? undefined : decodeLine(line)
    return sample !== undefined && sample._tag === "Some" ? [sample.value] : []
  }).sort((a, b) => a.t - b.t)

/** How one measure (RSS or the used heap) moved between the first and the last quarter after warm-up. */
export interface Drift {
  /** Mean of the first quarter after warm-up, bytes. */
  readonly first: number
  /** Mean of the last quarter, bytes. */
  readonly last: number
  /** `last / first - 1`: 0.04 is 4 % more. */
  readonly growth: number
}

export interface Trend {
  readonly samples: number
  /** When the warm-up ended (epoch ms): samples before it are not judged. */
  readonly warm_from: number
  readonly rss: Drift
  readonly heap_used: Drift
  /** Whether both stayed within the tolerance: the last quarter at most `tolerance` above the first. */
  readonly flat: boolean
}

export interface TrendOptions {
  /** The share of the span taken as warm-up (default 0.2): caches fill and the JIT settles there. */
  readonly warmup?: number
  /** How far above the first quarter the last may be (default 0.10, the 10 %). */
  readonly tolerance?: number
}

const mean = (values: ReadonlyArray<number>) => values.reduce((sum, v) => sum + v, 0) / values.length

/**
 * "Memory flat over time": after the warm-up, the rest of the span is cut in four by time, and the mean of
 * the last quarter may be at most `tolerance` above the mean of the first, for RSS and for the used heap.
 * Means, not peaks: the heap saw-tooths between collections, and a single sample at a peak says nothing of
 * growth. Undefined with fewer than 8 samples after warm-up: too few to tell a trend from noise.
 */
export const trendOf = (samples: ReadonlyArray<MemorySample>, options: TrendOptions = {}): Trend | undefined => {
  if (samples.length === 0) return undefined
  const warmup = options.warmup ?? 0.2
  const tolerance = options.tolerance ?? 0.1
  const start = samples[0]!.t
  const end = samples[samples.length - 1]!.t
  const warmFrom = start + (end - start) * warmup
  const warm = samples.filter((s) => s.t >= warmFrom)
  if (warm.length < 8) return undefined
  const quarter = (end - warmFrom) / 4
  const firstQuarter = warm.filter((s) => s.t <= warmFrom + quarter)
  const lastQuarter = warm.filter((s) => s.t >= end - quarter)
  const drift = (pick: (s: MemorySample) => number): Drift => {
    const first = mean(firstQuarter.map(pick))
    const last = mean(lastQuarter.map(pick))
    return { first, last, growth: last / first - 1 }
  }
  const rss = drift((s) => s.rss)
  const heap_used = drift((s) => s.heap_used)
  return { samples: samples.length, warm_from: warmFrom, rss, heap_used, flat: rss.growth <= tolerance && heap_used.growth <= tolerance }
}
