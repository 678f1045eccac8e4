/**
 * Time-series line charts as standalone SVG files, for the soak's report: a person opens them in a browser,
 * nothing else is needed (no script, no external font, no stylesheet).
 */

/** One line of a chart: `[epoch ms, value]` points, in any order; points that are not finite are left out. */
export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly color?: string
}

/** A moment to mark with a thin vertical dashed line (a fault, say); markers of one `kind` share a colour. */
export interface Marker {
  readonly at: number
  readonly label: string
  readonly kind?: string
}

export interface Chart {
  readonly title: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  readonly markers?: ReadonlyArray<Marker>
  /** Pixels; 960 by 400 unless said, never less than 320 by 200. */
  readonly width?: number
  readonly height?: number
  /**
   * How a y tick reads; by default a number with at most three decimals (and k, M, G). Ticks are round in
   * the values' own unit, so give values in the unit a person reads (MiB, not bytes).
   */
  readonly yFormat?: (value: number) => string
  /** Time zero of the x axis (epoch ms); the earliest point by default. */
  readonly start?: number
}

/** A series longer than this is downsampled to the minimum and maximum of each pixel column. */
export const maxPoints = 2_000

const seriesColors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
const markerColors = ["#e6550d", "#6a51a3", "#31a354", "#b3003b", "#3182bd", "#636363"]
const defaultKind = "fault"

/** Text and attribute values as XML needs them: the five characters XML reserves, as entities. */
export const escapeXml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&apos;"))
    // Control characters other than tab and newlines are not allowed in XML 1.0 at all, even escaped.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")

/** Coordinates with one decimal: sharp enough on screen, and a 24-hour series stays small. */
const px = (value: number) => (Math.round(value * 10) / 10).toString()

const minute = 60_000
const hour = 60 * minute
/** x tick spacings, the smallest that gives at most eight ticks is used. */
const timeSteps = [1, 2, 5, 10, 15, 30].map((s) => s * 1000).concat(
  [1, 2, 5, 10, 15, 30].map((m) => m * minute),
  [1, 2, 3, 6, 12, 24, 48, 96, 168].map((h) => h * hour)
)

/** Elapsed time as an x tick reads: `0 min`, `30 s`, `15 min`, `1 h`, `1 h 30 min`, `24 h`. */
export const elapsedLabel = (ms: number, step: number = minute): string => {
  if (ms === 0) return step < minute ? "0 s" : "0 min"
  if (ms % minute !== 0) return `${Math.round(ms / 1000)} s`
  const hours = Math.floor(ms / hour)
  const minutes = Math.round((ms - hours * hour) / minute)
  return hours === 0 ? `${minutes} min` : minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`
}

/** Round y ticks from `lo` to `hi`: at most five intervals (a little more when rounding out), each 1, 2, 2.5 or 5 times a power of ten. */
export const yTicksOf = (lo: number, hi: number): ReadonlyArray<number> => {
  const raw = (hi - lo) / 5
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * magnitude
  const first = Math.floor(lo / step + 1e-9)
  const last = Math.ceil(hi / step - 1e-9)
  // Multiplying, not adding, so 0.1 steps do not drift into 0.30000000000000004.
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)))
}

const defaultFormat = (value: number): string => {
  const abs = Math.abs(value)
  const [div, unit] = abs >= 1e9 ? [1e9, "G"] : abs >= 1e6 ? [1e6, "M"] : abs >= 1e4 ? [1e3, "k"] : [1, ""]
  return `${Number((value / div).toFixed(3))}${unit}`
}

/**
 * At most two points per bucket of `buckets` equal time slices over `[from, to]`: the lowest and the
 * highest, in time order, so a spike or a dip of a single point survives. Points must be sorted by time.
 */
export const downsample = (
  points: ReadonlyArray<readonly [number, number]>,
  buckets: number,
  from: number,
  to: number
): ReadonlyArray<readonly [number, number]> => {
  const span = to - from
  if (points.length <= 2 * buckets || span <= 0) return points
  const kept: Array<readonly [number, number]> = []
  let bucket = -1
  let low: readonly [number, number] | undefined
  let high: readonly [number, number] | undefined
  const flush = () => {
    if (low === undefined || high === undefined) return
    if (low === high) kept.push(low)
    else if (low[0] <= high[0]) kept.push(low, high)
    else kept.push(high, low)
  }
  for (const point of points) {
    const b = Math.min(buckets - 1, Math.floor(((point[0] - from) / span) * buckets))
    if (b !== bucket) {
      flush()
      bucket = b
      low = point
      high = point
    } else {
      if (point[1] < low![1]) low = point
      if (point[1] > high![1]) high = point
    }
  }
  flush()
  return kept
}

/** A rough width of text in the 12px sans-serif the chart uses: enough to lay out the legend. */
const textWidth = (text: string, size = 12) => text.length * size * 0.55

const truncate = (text: string, chars: number) => (text.length <= chars ? text : `${text.slice(0, Math.max(1, chars - 1))}…`)

const finite = (points: ReadonlyArray<readonly [number, number]>) =>
  points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v)).sort((a, b) => a[0] - b[0])

interface LegendItem {
  readonly label: string
  readonly color: string
  readonly dashed: boolean
}

/**
 * The chart as a standalone SVG document. Time runs along x as elapsed time since `start`; y runs from 0
 * (or the lowest value, when negative) to a round value above the highest. Series longer than
 * `maxPoints` are downsampled per pixel column, keeping each column's minimum and maximum.
 */
export const svgOf = (chart: Chart): string => {
  const width = Math.max(320, Number.isFinite(chart.width) ? Math.round(chart.width!) : 960)
  const height = Math.max(200, Number.isFinite(chart.height) ? Math.round(chart.height!) : 400)
  const format = chart.yFormat ?? defaultFormat
  const given = chart.series.map((s, i) => ({ name: s.name, color: s.color ?? seriesColors[i % seriesColors.length]!, points: finite(s.points) }))
  const markers = (chart.markers ?? []).filter((m) => Number.isFinite(m.at)).slice().sort((a, b) => a.at - b.at)
  const kinds = [...new Set(markers.map((m) => m.kind ?? defaultKind))]
  const kindColor = (kind: string) => markerColors[kinds.indexOf(kind) % markerColors.length]!

  // Time: from `start` (else the first point, else the first marker) to the last point or marker. Loops, not
  // Math.min(...spread): a day of one-second samples is more arguments than a call may take.
  const earliest = given.reduce((min, s) => Math.min(min, s.points[0]?.[0] ?? Infinity), Infinity)
  const start = Number.isFinite(chart.start) ? chart.start! : Number.isFinite(earliest) ? earliest : markers[0]?.at ?? 0
  const series = given.map((s) => ({ ...s, points: s.points[0] !== undefined && s.points[0][0] < start ? s.points.filter(([t]) => t >= start) : s.points }))
  const latest = Math.max(
    start,
    series.reduce((max, s) => Math.max(max, s.points[s.points.length - 1]?.[0] ?? -Infinity), -Infinity),
    markers[markers.length - 1]?.at ?? -Infinity
  )
  const span = latest > start ? latest - start : minute
  const timeStep = timeSteps.find((s) => span / s <= 8) ?? Math.ceil(span / 8 / hour) * hour

  // Values: from 0 (or the lowest, when negative) to a round value at or above the highest.
  let dataLo = 0
  let dataHi = 0
  let any = false
  for (const s of series) {
    for (const [, v] of s.points) {
      any = true
      if (v < dataLo) dataLo = v
      if (v > dataHi) dataHi = v
    }
  }
  const ticks = yTicksOf(dataLo, dataHi > dataLo ? dataHi : dataLo + 1)
  const yLo = ticks[0]!
  const yHi = ticks[ticks.length - 1]!

  // The legend: the series, then the kinds of markers, wrapped into rows under the title.
  const legend: ReadonlyArray<LegendItem> = [
    ...series.map((s) => ({ label: s.points.length === 0 ? `${s.name} (no data)` : s.name, color: s.color, dashed: false })),
    ...kinds.map((kind) => ({ label: kind, color: kindColor(kind), dashed: true }))
  ]
  const rows: Array<Array<{ item: LegendItem; x: number }>> = [[]]
  let cursor = 0
  for (const item of legend) {
    const w = 28 + textWidth(item.label)
    if (cursor > 0 && 72 + cursor + w > width - 24) {
      rows.push([])
      cursor = 0
    }
    rows[rows.length - 1]!.push({ item, x: 72 + cursor })
    cursor += w + 16
  }

  const left = 72
  const right = width - 24
  const top = 34 + rows.length * 18 + 8
  const bottom = height - 44
  const plotWidth = right - left
  const plotHeight = Math.max(1, bottom - top)
  const xOf = (t: number) => left + ((t - start) / span) * plotWidth
  const yOf = (v: number) => bottom - ((v - yLo) / (yHi - yLo)) * plotHeight

  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${px(width / 2)}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`
  )
  rows.forEach((row, r) => {
    const y = 34 + r * 18 + 8
    for (const { item, x } of row) {
      out.push(
        `<g class="legend">`,
        `<line x1="${px(x)}" y1="${px(y - 4)}" x2="${px(x + 22)}" y2="${px(y - 4)}" stroke="${escapeXml(item.color)}" stroke-width="${item.dashed ? 1 : 2}"${item.dashed ? " stroke-dasharray=\"4 3\"" : ""}/>`,
        `<text x="${px(x + 28)}" y="${px(y)}">${escapeXml(item.label)}</text>`,
        `</g>`
      )
    }
  })

  // Grid and axes.
  for (const tick of ticks) {
    const y = yOf(tick)
    out.push(
      `<line class="y-grid" x1="${left}" y1="${px(y)}" x2="${right}" y2="${px(y)}" stroke="#e5e5e5" stroke-width="1"/>`,
      `<text class="y-tick" x="${left - 6}" y="${px(y + 4)}" text-anchor="end">${escapeXml(format(tick))}</text>`
    )
  }
  for (let t = 0; t <= span + 1e-6; t += timeStep) {
    const x = xOf(start + t)
    out.push(
      `<line class="x-grid" x1="${px(x)}" y1="${px(top)}" x2="${px(x)}" y2="${px(bottom)}" stroke="#f0f0f0" stroke-width="1"/>`,
      `<text class="x-tick" x="${px(x)}" y="${px(bottom + 16)}" text-anchor="middle">${escapeXml(elapsedLabel(t, timeStep))}</text>`
    )
  }
  out.push(
    `<line class="axis" x1="${left}" y1="${px(bottom)}" x2="${right}" y2="${px(bottom)}" stroke="#333333" stroke-width="1"/>`,
    `<line class="axis" x1="${left}" y1="${px(top)}" x2="${left}" y2="${px(bottom)}" stroke="#333333" stroke-width="1"/>`,
    `<text class="x-label" x="${px((left + right) / 2)}" y="${height - 8}" text-anchor="middle">elapsed time</text>`,
    `<text class="y-label" x="16" y="${px((top + bottom) / 2)}" text-anchor="middle" transform="rotate(-90 16 ${px((top + bottom) / 2)})">${
      escapeXml(chart.yLabel)
    }</text>`
  )
  if (!any) {
    out.push(`<text class="no-data" x="${px((left + right) / 2)}" y="${px((top + bottom) / 2)}" text-anchor="middle" fill="#888888">no data</text>`)
  }

  // The lines, under the markers.
  for (const s of series) {
    const points = s.points.length > maxPoints ? downsample(s.points, Math.max(1, Math.floor(plotWidth)), start, start + span) : s.points
    if (points.length === 1) {
      const [[t, v]] = points as [readonly [number, number]]
      out.push(`<circle class="series" data-name="${escapeXml(s.name)}" cx="${px(xOf(t))}" cy="${px(yOf(v))}" r="2.5" fill="${escapeXml(s.color)}"/>`)
    } else if (points.length > 1) {
      const d = points.map(([t, v], i) => `${i === 0 ? "M" : "L"}${px(xOf(t))} ${px(yOf(v))}`).join(" ")
      out.push(
        `<path class="series" data-name="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="1.5" stroke-linejoin="round"/>`
      )
    }
  }

  // Markers: a dashed line each, its label written down along it. Labels of markers closer than a line of
  // text go to the next of three levels down the plot, so a burst of faults stays readable; a label runs
  // down to the bottom unless a neighbour's label sits below it.
  const levels = 3
  const levelHeight = plotHeight / levels
  const near = 13
  const placed: Array<{ readonly marker: Marker; readonly x: number; readonly level: number }> = []
  const lastAt: Array<number> = Array.from({ length: levels }, () => -Infinity)
  for (const marker of markers) {
    if (marker.at < start) continue
    const x = xOf(marker.at)
    const free = lastAt.findIndex((last) => x - last >= near)
    const level = free !== -1 ? free : lastAt.indexOf(Math.min(...lastAt))
    lastAt[level] = x
    placed.push({ marker, x, level })
  }
  for (const { level, marker, x } of placed) {
    const crowded = placed.some((other) => other.level > level && Math.abs(other.x - x) < near)
    const room = crowded ? levelHeight : plotHeight - level * levelHeight
    const kind = marker.kind ?? defaultKind
    const color = escapeXml(kindColor(kind))
    const y = top + 4 + level * levelHeight
    out.push(
      `<g class="marker" data-kind="${escapeXml(kind)}">`,
      `<line x1="${px(x)}" y1="${px(top)}" x2="${px(x)}" y2="${px(bottom)}" stroke="${color}" stroke-width="1" stroke-dasharray="4 3"/>`,
      `<text x="${px(x + 3)}" y="${px(y)}" font-size="10" fill="${color}" transform="rotate(90 ${px(x + 3)} ${px(y)})">${
        escapeXml(truncate(marker.label, Math.max(4, Math.floor((room - 8) / 6))))
      }</text>`,
      `</g>`
    )
  }
  out.push("</svg>")
  return out.join("\n") + "\n"
}
