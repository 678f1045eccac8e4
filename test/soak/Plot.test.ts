import { assert, describe, it } from "@effect/vitest"
import { downsample, elapsedLabel, svgOf, yTicksOf } from "../../src/soak/Plot.js"

/**
 * Why a text is not well-formed XML, or undefined: one root element, every tag closed in order, attributes
 * quoted and not repeated, `<` never raw in text or attribute values, `&` only as an entity, no control
 * characters. node has no XML parser and the project takes no dependency for one; this checks what XML 1.0
 * requires of the documents the plots are (no DTD, no CDATA).
 */
const notWellFormed = (xml: string): string | undefined => {
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.exec(xml)
  if (control !== null) return `control character at ${control.index}`
  const entityAt = (i: number) => /^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/.test(xml.slice(i, i + 12))
  const nameAt = (i: number) => /^[A-Za-z_:][\w:.-]*/.exec(xml.slice(i, i + 100))?.[0]
  const stack: Array<string> = []
  let roots = 0
  let i = 0
  const skipSpace = () => {
    while (/\s/.test(xml[i] ?? "")) i++
  }
  while (i < xml.length) {
    if (xml.startsWith("<?", i)) {
      if (i !== 0) return `processing instruction at ${i}`
      const end = xml.indexOf("?>", i)
      if (end === -1) return "unterminated prolog"
      i = end + 2
    } else if (xml.startsWith("<!--", i)) {
      const end = xml.indexOf("-->", i + 4)
      if (end === -1) return "unterminated comment"
      i = end + 3
    } else if (xml.startsWith("</", i)) {
      const name = nameAt(i + 2)
      if (name === undefined) return `bad closing tag at ${i}`
      i += 2 + name.length
      skipSpace()
      if (xml[i] !== ">") return `unterminated closing tag </${name} at ${i}`
      i++
      const open = stack.pop()
      if (open !== name) return `</${name}> closes <${open ?? "nothing"}>`
    } else if (xml[i] === "<") {
      const name = nameAt(i + 1)
      if (name === undefined) return `bad tag at ${i}`
      if (stack.length === 0 && ++roots > 1) return `second root <${name}>`
      i += 1 + name.length
      const attributes = new Set<string>()
      for (;;) {
        const before = i
        skipSpace()
        if (xml.startsWith("/>", i)) {
          i += 2
          break
        }
        if (xml[i] === ">") {
          i++
          stack.push(name)
          break
        }
        if (i === before) return `no space before an attribute of <${name}> at ${i}`
        const attribute = nameAt(i)
        if (attribute === undefined) return `bad attribute in <${name}> at ${i}`
        if (attributes.has(attribute)) return `repeated attribute ${attribute} in <${name}>`
        attributes.add(attribute)
        i += attribute.length
        skipSpace()
        if (xml[i] !== "=") return `attribute ${attribute} of <${name}> has no value`
        i++
        skipSpace()
        const quote = xml[i]
        if (quote !== "\"" && quote !== "'") return `attribute ${attribute} of <${name}> is not quoted`
        const end = xml.indexOf(quote, i + 1)
        if (end === -1) return `attribute ${attribute} of <${name}> is not closed`
        for (let j = i + 1; j < end; j++) {
          if (xml[j] === "<") return `raw < in attribute ${attribute} of <${name}>`
          if (xml[j] === "&" && !entityAt(j)) return `raw & in attribute ${attribute} of <${name}>`
        }
        i = end + 1
      }
    } else {
      const end = xml.indexOf("<", i) === -1 ? xml.length : xml.indexOf("<", i)
      const text = xml.slice(i, end)
      if (stack.length === 0 && text.trim() !== "") return `text outside the root at ${i}`
      if (text.includes("]]>")) return `]]> in text at ${i}`
      for (let j = i; j < end; j++) if (xml[j] === "&" && !entityAt(j)) return `raw & in text at ${j}`
      i = end
    }
  }
  if (stack.length > 0) return `<${stack.at(-1)}> is never closed`
  return roots === 1 ? undefined : "no root element"
}

/** The document is standalone SVG: well-formed, the SVG namespace, no number that went wrong, nothing fetched. */
const assertSound = (svg: string) => {
  assert.isUndefined(notWellFormed(svg))
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /)
  assert.notMatch(svg, /NaN|Infinity|undefined/)
  assert.notMatch(svg, /<script|href=|url\(|@import|<image|<foreignObject/i)
}

/** The `[x, y]` of every point of the series path named `name`. */
const pathOf = (svg: string, name: string): ReadonlyArray<readonly [number, number]> => {
  const d = new RegExp(`<path class="series" data-name="${name}" d="([^"]*)"`).exec(svg)?.[1]
  assert.isDefined(d, `a path for ${name}`)
  return d!.split(/ ?[ML]/).filter((p) => p !== "").map((p) => p.split(" ").map(Number) as unknown as readonly [number, number])
}

/** The x tick labels in order, each with the x of its grid line. */
const xTicksOf = (svg: string) =>
  [...svg.matchAll(/<line class="x-grid" x1="([\d.]+)"[^>]*\/>\n<text class="x-tick"[^>]*>([^<]*)<\/text>/g)].map((m) => ({ x: Number(m[1]), label: m[2]! }))

const yTickLabelsOf = (svg: string) => [...svg.matchAll(/<text class="y-tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!)

const markersOf = (svg: string) =>
  [...svg.matchAll(/<g class="marker" data-kind="([^"]*)">\n<line x1="([\d.]+)"[^>]*stroke="([^"]*)"[^>]*\/>\n<text x="[\d.]+" y="([\d.]+)"[^>]*>([^<]*)<\/text>/g)]
    .map((m) => ({ kind: m[1]!, x: Number(m[2]), color: m[3]!, y: Number(m[4]), label: m[5]! }))

const t0 = Date.UTC(2025, 5, 1, 12)
const minute = 60_000

describe("Plot", () => {
  it("the well-formedness check itself refuses what XML refuses", () => {
    assert.isUndefined(notWellFormed(`<svg a="1"><g><text x='2'>a &amp; b &#60;</text></g><line/></svg>`))
    for (
      const broken of [
        "<svg><g></svg>",
        "<svg></svg><svg></svg>",
        `<svg a="1" a="2"></svg>`,
        `<svg a="x<y"></svg>`,
        "<svg>a & b</svg>",
        "<svg>a < b</svg>",
        "<svg a=1></svg>",
        "<svg><g>",
        "<svg>\u0001</svg>"
      ]
    ) assert.isDefined(notWellFormed(broken), broken)
  })

  it("renders a standalone, well-formed SVG with its title, axis label, legend and lines", () => {
    const svg = svgOf({
      title: "RSS over the soak",
      yLabel: "MiB",
      series: [
        { name: "rss", points: Array.from({ length: 120 }, (_, i) => [t0 + i * minute, 100 + (i % 7)] as const) },
        { name: "heap", points: Array.from({ length: 120 }, (_, i) => [t0 + i * minute, 40 + (i % 5)] as const), color: "#123456" }
      ],
      markers: [{ at: t0 + 30 * minute, label: "kill -9 runner 1", kind: "kill" }]
    })
    assertSound(svg)
    assert.include(svg, `<title>RSS over the soak</title>`)
    assert.include(svg, `>RSS over the soak</text>`)
    assert.match(svg, /<text class="y-label"[^>]*>MiB<\/text>/)
    assert.match(svg, /<text x="[\d.]+" y="[\d.]+">rss<\/text>/)
    assert.match(svg, /<text x="[\d.]+" y="[\d.]+">heap<\/text>/)
    assert.strictEqual(pathOf(svg, "rss").length, 120)
    assert.include(svg, `data-name="heap" d="`)
    assert.match(svg, /data-name="heap" d="[^"]*" fill="none" stroke="#123456"/)
    assert.deepStrictEqual(yTickLabelsOf(svg), ["0", "25", "50", "75", "100", "125"])
  })

  it("escapes < & > \" ' in the title, the y label, series names, marker labels and kinds", () => {
    const nasty = `a <b> & "c" 'd'`
    const svg = svgOf({
      title: nasty,
      yLabel: nasty,
      series: [{ name: nasty, points: [[t0, 1], [t0 + minute, 2]] }],
      markers: [{ at: t0 + 30_000, label: nasty, kind: nasty }],
      yFormat: (v) => `<${v}&>`
    })
    assertSound(svg)
    const escaped = "a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;"
    assert.include(svg, `<title>${escaped}</title>`)
    assert.match(svg, new RegExp(`class="y-label"[^>]*>${escaped}</text>`))
    assert.include(svg, `data-name="${escaped}"`)
    assert.include(svg, `data-kind="${escaped}"`)
    assert.include(svg, "&lt;0&amp;&gt;")
    assert.notInclude(svg, nasty)
    assert.notInclude(svg, "<b>")
  })

  it("downsamples a 10,000-point series to at most two points a pixel column, and its one-point spike survives", () => {
    const points = Array.from({ length: 10_000 }, (_, i) => [t0 + i * 1000, i === 6_789 ? 100 : 10 + Math.sin(i / 50)] as const)
    const svg = svgOf({ title: "spike", yLabel: "v", series: [{ name: "s", points }], width: 960 })
    assertSound(svg)
    const drawn = pathOf(svg, "s")
    // 864 pixel columns between the axes of a 960-wide chart.
    assert.isAtMost(drawn.length, 2 * 864)
    assert.isAtLeast(drawn.length, 864)
    assert.deepStrictEqual(yTickLabelsOf(svg), ["0", "20", "40", "60", "80", "100"])
    // The spike reaches the top tick (100), at the x of its time.
    const top = Number(/<line class="y-grid" x1="[\d.]+" y1="([\d.]+)"[^>]*\/>\n<text class="y-tick"[^>]*>100</.exec(svg)![1])
    const highest = drawn.reduce((a, b) => (b[1] < a[1] ? b : a))
    assert.strictEqual(highest[1], top)
    const ticks = xTicksOf(svg)
    const xOf = (t: number) => ticks[0]!.x + ((t - t0) / (9_999 * 1000)) * 864
    assert.approximately(highest[0], xOf(t0 + 6_789 * 1000), 1)
    // Only one point is at the spike's height: the rest of its column is the sine.
    assert.strictEqual(drawn.filter(([, y]) => y < top + 50).length, 1)
  })

  it("keeps a series of up to 2,000 points whole", () => {
    const points = Array.from({ length: 2_000 }, (_, i) => [t0 + i * 1000, i % 3] as const)
    assert.strictEqual(pathOf(svgOf({ title: "t", yLabel: "v", series: [{ name: "s", points }] }), "s").length, 2_000)
  })

  it("downsample keeps each bucket's lowest and highest point in time order, so a dip survives as well as a spike", () => {
    const points = Array.from({ length: 10_000 }, (_, i) => [i, i === 1_234 ? -7 : i === 8_765 ? 9 : 1] as const)
    const kept = downsample(points, 100, 0, 9_999)
    assert.isAtMost(kept.length, 200)
    assert.deepInclude(kept, [1_234, -7])
    assert.deepInclude(kept, [8_765, 9])
    assert.deepStrictEqual(kept.map(([t]) => t), kept.map(([t]) => t).slice().sort((a, b) => a - b))
    // Fewer points than two a bucket are left as they are.
    assert.strictEqual(downsample(points.slice(0, 150), 100, 0, 149).length, 150)
  })

  it("places markers at the x of their elapsed time: on the 15 min grid line, and halfway to the next", () => {
    const svg = svgOf({
      title: "faults",
      yLabel: "runs",
      series: [{ name: "s", points: [[t0, 1], [t0 + 120 * minute, 2]] }],
      markers: [
        { at: t0 + 15 * minute, label: "kill -9", kind: "kill" },
        { at: t0 + 22.5 * minute, label: "SIGTERM", kind: "sigterm" },
        { at: t0 + 120 * minute, label: "lock held", kind: "lock" }
      ]
    })
    assertSound(svg)
    const ticks = xTicksOf(svg)
    assert.deepStrictEqual(ticks.map((t) => t.label), [
      "0 min",
      "15 min",
      "30 min",
      "45 min",
      "1 h",
      "1 h 15 min",
      "1 h 30 min",
      "1 h 45 min",
      "2 h"
    ])
    const at = (label: string) => ticks.find((t) => t.label === label)!.x
    const [kill, sigterm, lock] = markersOf(svg)
    assert.strictEqual(kill!.x, at("15 min"))
    assert.approximately(sigterm!.x, (at("15 min") + at("30 min")) / 2, 0.1)
    assert.strictEqual(lock!.x, at("2 h"))
    // Each kind has its own colour, in the lines and in the legend (as a dashed line).
    assert.strictEqual(new Set([kill!.color, sigterm!.color, lock!.color]).size, 3)
    for (const { color, kind } of [kill!, sigterm!, lock!]) {
      assert.match(svg, new RegExp(`<line [^>]*stroke="${color}" stroke-width="1" stroke-dasharray="4 3"/>\\n<text [^>]*>${kind}</text>`))
    }
  })

  it("measures time from `start` when given", () => {
    const svg = svgOf({
      title: "t",
      yLabel: "v",
      start: t0 - 15 * minute,
      series: [{ name: "s", points: [[t0, 1], [t0 + 105 * minute, 2]] }],
      markers: [{ at: t0, label: "soak began work" }]
    })
    assertSound(svg)
    const ticks = xTicksOf(svg)
    assert.strictEqual(ticks[0]!.label, "0 min")
    assert.strictEqual(markersOf(svg)[0]!.x, ticks.find((t) => t.label === "15 min")!.x)
    assert.strictEqual(pathOf(svg, "s")[0]![0], ticks.find((t) => t.label === "15 min")!.x)
  })

  it("staggers the labels of markers too close to read apart, and gives markers of one kind one colour", () => {
    const markers = [0, 1, 2, 3].map((k) => ({ at: t0 + 60 * minute + k * 1000, label: `kill ${k}`, kind: "kill" }))
    const svg = svgOf({ title: "t", yLabel: "v", series: [{ name: "s", points: [[t0, 1], [t0 + 120 * minute, 1]] }], markers })
    assertSound(svg)
    const drawn = markersOf(svg)
    assert.strictEqual(drawn.length, 4)
    assert.strictEqual(new Set(drawn.slice(0, 3).map((m) => m.y)).size, 3)
    assert.strictEqual(new Set(drawn.map((m) => m.color)).size, 1)
    // A lone marker's label is not cut short; crowded ones are, to their level.
    const lone = markersOf(svgOf({ title: "t", yLabel: "v", series: [], markers: [{ at: t0, label: "a rather long label of a lone fault" }] }))
    assert.strictEqual(lone[0]!.label, "a rather long label of a lone fault")
  })

  it("renders flat, empty and one-point series, and a chart of none, without NaN or Infinity", () => {
    const flat = svgOf({ title: "flat", yLabel: "v", series: [{ name: "s", points: [[t0, 5], [t0 + minute, 5], [t0 + 2 * minute, 5]] }] })
    assertSound(flat)
    assert.deepStrictEqual(yTickLabelsOf(flat), ["0", "1", "2", "3", "4", "5"])
    const zero = svgOf({ title: "zero", yLabel: "v", series: [{ name: "s", points: [[t0, 0], [t0 + minute, 0]] }] })
    assertSound(zero)
    assert.deepStrictEqual(yTickLabelsOf(zero), ["0", "0.2", "0.4", "0.6", "0.8", "1"])
    const one = svgOf({ title: "one", yLabel: "v", series: [{ name: "s", points: [[t0, 3]] }] })
    assertSound(one)
    assert.match(one, /<circle class="series" data-name="s" cx="72" cy="[\d.]+" r="2.5"/)
    const empty = svgOf({ title: "empty", yLabel: "v", series: [{ name: "s", points: [] }, { name: "bad", points: [[NaN, 1], [t0, Infinity]] }] })
    assertSound(empty)
    assert.include(empty, ">s (no data)</text>")
    assert.include(empty, ">bad (no data)</text>")
    assert.include(empty, ">no data</text>")
    const none = svgOf({ title: "none", yLabel: "v", series: [], width: NaN, height: -5 })
    assertSound(none)
    assert.include(none, `width="960" height="200"`)
    const negative = svgOf({ title: "neg", yLabel: "v", series: [{ name: "s", points: [[t0, -3], [t0 + minute, 7]] }] })
    assertSound(negative)
    assert.deepStrictEqual(yTickLabelsOf(negative), ["-4", "-2", "0", "2", "4", "6", "8"])
  })

  it("labels elapsed time in seconds, minutes and hours, and picks round y ticks", () => {
    assert.deepStrictEqual(
      [elapsedLabel(0, 1000), elapsedLabel(0), elapsedLabel(30_000), elapsedLabel(15 * minute), elapsedLabel(60 * minute), elapsedLabel(90 * minute), elapsedLabel(24 * 60 * minute)],
      ["0 s", "0 min", "30 s", "15 min", "1 h", "1 h 30 min", "24 h"]
    )
    const day = svgOf({ title: "t", yLabel: "v", series: [{ name: "s", points: [[t0, 1], [t0 + 24 * 60 * minute, 1]] }] })
    assert.deepStrictEqual(xTicksOf(day).map((t) => t.label), ["0 min", "3 h", "6 h", "9 h", "12 h", "15 h", "18 h", "21 h", "24 h"])
    const short = svgOf({ title: "t", yLabel: "v", series: [{ name: "s", points: [[t0, 1], [t0 + 40_000, 1]] }] })
    assert.deepStrictEqual(xTicksOf(short).map((t) => t.label), ["0 s", "5 s", "10 s", "15 s", "20 s", "25 s", "30 s", "35 s", "40 s"])
    assert.deepStrictEqual(yTicksOf(0, 137), [0, 50, 100, 150])
    assert.deepStrictEqual(yTicksOf(0, 0.3), [0, 0.1, 0.2, 0.3])
    assert.deepStrictEqual(yTicksOf(-3, 7), [-4, -2, 0, 2, 4, 6, 8])
    assert.deepStrictEqual(yTicksOf(0, 1e9), [0, 2e8, 4e8, 6e8, 8e8, 1e9])
  })
})
