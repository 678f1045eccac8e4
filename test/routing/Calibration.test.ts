import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import * as Calibration from "../../src/routing/Calibration.js"
import * as Catalog from "../../src/routing/Catalog.js"
import * as GoalRouter from "../../src/routing/GoalRouter.js"
import * as LocalIndex from "../../src/routing/LocalIndex.js"
import { distinctTerms, goalTerms } from "../../src/routing/Terms.js"
import { blueprints } from "./router-fixtures.js"
import { clear, heldOut, vague, withValues } from "./heldout.js"

/** The catalog that ships, and the one these tests write: the calibration must hold on both. */
const catalogs = [
  ["the built-in catalog", (await Effect.runPromise(Catalog.makeBuiltIn())).all.map((entry) => entry.blueprint)],
  ["the test catalog", blueprints]
] as const

const feature = fc.record({
  coverage: fc.double({ min: 0, max: 1, noNaN: true }),
  margin: fc.double({ min: -1, max: 1, noNaN: true }),
  evidence: fc.double({ min: 0, max: 10, noNaN: true })
})

describe("Terms", () => {
  it("stems, lowercases and drops stopwords, numbers and URL parts", () => {
    assert.deepStrictEqual(distinctTerms("Please REVIEW the 3 pull requests at https://www.example.com/reviews, reviewing carefully"), [
      "review",
      "pull",
      "request",
      "exampl",
      "carefulli"
    ])
  })

  it("a goal's terms leave out the values its slots take", () => {
    assert.deepStrictEqual(goalTerms("review PR https://github.com/acme/api/pull/42 at 8am, title=\"Fix it\" for security"), [
      "review",
      "pr",
      "titl",
      "secur"
    ])
  })
})

describe("LocalIndex", () => {
  const index = LocalIndex.make(blueprints)

  it("matches on any field, best first, with features in range", () => {
    const matches = index.match(distinctTerms("review the diff of this pull request for security vulnerabilities"), 3)
    assert.strictEqual(matches[0]?.blueprint.id, "code_review")
    for (const match of matches) {
      assert.isAtLeast(match.features.evidence, 0)
      assert.isAtLeast(match.features.coverage, 0)
      assert.isAtMost(match.features.coverage, 1)
      assert.isAtLeast(match.features.margin, -1)
      assert.isAtMost(match.features.margin, 1)
    }
    assert.isAbove(matches[0]!.features.margin, 0)
    assert.isBelow(matches[1]!.features.margin, 0)
  })

  it("a goal whose every word the catalog lacks matches nothing", () => {
    assert.deepStrictEqual(index.match(distinctTerms("bake sourdough bread"), 5), [])
    assert.deepStrictEqual(index.match([], 5), [])
  })

  it("scores exactly as minisearch's own BM25+ search does", () => {
    for (const [, catalog] of catalogs) {
      const reference = LocalIndex.minisearchOf(catalog)
      const ours = LocalIndex.make(catalog)
      for (const [goal] of heldOut) {
        const terms = distinctTerms(goal)
        const expected = terms.length === 0 ? [] : reference.search(terms.join(" ")).map((r) => [String(r.id), r.score] as const)
        const actual = ours.match(terms, 100).map((m) => [m.blueprint.id, m.bm25] as const)
        assert.strictEqual(actual.length, expected.length, goal)
        const byId = new Map(expected)
        for (const [id, score] of actual) assert.closeTo(score, byId.get(id)!, 1e-9, `${goal}: ${id}`)
      }
    }
  })

  it.prop("ranking against a changed catalog is ranking against a catalog built changed", [
    fc.integer({ min: 0, max: blueprints.length - 1 }),
    fc.constantFrom(...heldOut.map(([goal]) => goal)),
    fc.boolean()
  ], ([which, goal, remove]) => {
    const target = blueprints[which]!
    const [first, ...others] = target.example_goals.slice(1)
    const replacement = remove ? null : { ...target, example_goals: [first!, ...others] as const }
    const terms = distinctTerms(goal)
    const changed = index.match(terms, 12, { id: target.id, replacement })
    const rebuilt = LocalIndex.make(blueprints.flatMap((b) => (b.id !== target.id ? [b] : replacement === null ? [] : [replacement])))
    const expected = rebuilt.match(terms, 12)
    assert.deepStrictEqual(changed.map((m) => m.blueprint.id), expected.map((m) => m.blueprint.id))
    changed.forEach((m, i) => {
      assert.closeTo(m.bm25, expected[i]!.bm25, 1e-9)
      assert.closeTo(m.features.coverage, expected[i]!.features.coverage, 1e-12)
      assert.closeTo(m.features.margin, expected[i]!.features.margin, 1e-9)
      assert.closeTo(m.features.evidence, expected[i]!.features.evidence, 1e-9)
    })
  })

  it("evidence grows with the goal's words a blueprint has, coverage and margin need not", () => {
    const [terse] = index.match(distinctTerms("translate"), 1)
    const [full] = index.match(distinctTerms("translate the product documentation into German, French and Japanese"), 1)
    assert.strictEqual(terse?.blueprint.id, "translation")
    assert.strictEqual(full?.blueprint.id, "translation")
    // One word the blueprint has: the whole goal covered, yet the evidence of a single word.
    assert.strictEqual(terse!.features.coverage, 1)
    assert.isAtMost(terse!.features.evidence, 1)
    assert.isAbove(full!.features.evidence, 3 * terse!.features.evidence)
  })

  it("a later blueprint with the same id replaces the earlier one", () => {
    const renamed = { ...blueprints[0]!, title: "Kumquat harvest planner" }
    const replaced = LocalIndex.make([...blueprints, renamed])
    assert.strictEqual(replaced.size, blueprints.length)
    assert.strictEqual(replaced.match(distinctTerms("kumquat"), 1)[0]?.blueprint.title, "Kumquat harvest planner")
  })
})

describe("Calibration.fit", () => {
  it("without samples it is the prior", () => {
    const fitted = Calibration.fit([])
    assert.closeTo(fitted.bias, Calibration.prior.bias, 1e-9)
    assert.closeTo(fitted.coverage, Calibration.prior.coverage, 1e-9)
    assert.closeTo(fitted.margin, Calibration.prior.margin, 1e-9)
    assert.closeTo(fitted.evidence, Calibration.prior.evidence, 1e-9)
    assert.closeTo(fitted.backing, Calibration.prior.backing, 1e-9)
  })

  it.prop("is deterministic: the same samples in the same order give the same parameters", [
    fc.array(fc.record({ features: feature, positive: fc.boolean() }), { maxLength: 60 })
  ], ([samples]) => {
    assert.deepStrictEqual(Calibration.fit(samples), Calibration.fit(samples))
  })

  it.prop("learns the direction the data shows, and never claims certainty", [
    fc.array(feature, { minLength: 20, maxLength: 80 })
  ], ([features]) => {
    // Positives are the matches covering most of the goal: coverage must come to weigh more than the prior says.
    const samples = features.map((f) => ({ features: f, positive: f.coverage > 0.5 }))
    const fitted = Calibration.fit(samples)
    const probabilities = samples.map((s) => Calibration.probability(fitted, s.features))
    assert.isTrue(probabilities.every((p) => p > 0 && p < 1))
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1)
    const positives = probabilities.filter((_, i) => samples[i]!.positive)
    const negatives = probabilities.filter((_, i) => !samples[i]!.positive)
    if (positives.length > 0 && negatives.length > 0) assert.isAbove(mean(positives), mean(negatives))
  })

  it("is a fixed point: at the fit, the penalized gradient vanishes", () => {
    const index = LocalIndex.make(blueprints)
    const { samples } = Calibration.samplesOf(index, blueprints, 1000)
    const c = Calibration.fit(samples)
    const positives = samples.filter((s) => s.positive).length
    const high = (positives + 1) / (positives + 2)
    const low = 1 / (samples.length - positives + 2)
    const gradient = [
      c.bias - Calibration.prior.bias,
      c.coverage - Calibration.prior.coverage,
      c.margin - Calibration.prior.margin,
      c.evidence - Calibration.prior.evidence,
      c.backing - Calibration.prior.backing
    ]
    for (const s of samples) {
      const residual = Calibration.probability(c, s.features) - (s.positive ? high : low)
      gradient[0]! += residual
      gradient[1]! += residual * s.features.coverage
      gradient[2]! += residual * s.features.margin
      gradient[3]! += residual * s.features.evidence
      gradient[4]! += residual * s.features.margin * s.features.evidence
    }
    for (const g of gradient) assert.closeTo(g, 0, 1e-6)
  })
})

describe("Calibration.samplesOf", () => {
  it("leave-one-out: each phrasing and its terse version ranked without the phrasing, and again without its blueprint", () => {
    const index = LocalIndex.make(blueprints)
    const phrasings = blueprints.reduce((n, b) => n + b.example_goals.length, 0)
    const queries = blueprints.reduce((n, b) => n + b.example_goals.reduce((m, _, i) => m + Calibration.queriesOf(b, i).length, 0), 0)
    const { phrasings: used, samples } = Calibration.samplesOf(index, blueprints, 1000)
    assert.strictEqual(used, phrasings)
    assert.isAbove(queries, phrasings * 1.9)
    const positives = samples.filter((s) => s.positive).length
    // Most rephrasings still find their blueprint first; none of the "without its blueprint" ones can.
    assert.isAbove(positives, phrasings * 0.6)
    assert.isAtMost(positives, queries)
    assert.isAtLeast(samples.length - positives, queries - 10)
  })

  it("a phrasing's terse version is one to three of its terms, fewer than it has, in order, the same every time", () => {
    const sizes = new Set<number>()
    for (const b of blueprints) {
      b.example_goals.forEach((goal, i) => {
        const queries = Calibration.queriesOf(b, i)
        const terms = goalTerms(goal)
        assert.deepStrictEqual(queries[0], terms)
        assert.deepStrictEqual(Calibration.queriesOf(b, i), queries)
        if (terms.length < 2) return assert.strictEqual(queries.length, 1)
        const terse = queries[1]!
        assert.isAtLeast(terse.length, 1)
        assert.isAtMost(terse.length, Math.min(3, terms.length - 1))
        const at = terse.map((t) => terms.indexOf(t))
        assert.isTrue(at.every((p, k) => p >= 0 && (k === 0 || p > at[k - 1]!)), `${terse} of ${terms}`)
        sizes.add(terse.length)
      })
    }
    assert.deepStrictEqual([...sizes].sort(), [1, 2, 3])
  })

  it("subsamples a big catalog evenly, to at most the bound", () => {
    const index = LocalIndex.make(blueprints)
    const { phrasings } = Calibration.samplesOf(index, blueprints, 7)
    assert.strictEqual(phrasings, 7)
  })
})

describe.each(catalogs)("calibration on held-out goals, over %s", (_, catalog) => {
  // Goals written for the test, none an example goal of the catalog, ranked by a router fitted on the catalog.
  const router = GoalRouter.makeLocal(catalog)
  const ranked = heldOut.map(([goal, label]) => ({ goal, label, top: router.rank(goal, 5)[0] }))
  const exampleGoals = new Set(catalog.flatMap((b) => b.example_goals.map((g) => g.toLowerCase())))

  it("the held-out set is at least 40 goals, none a copy of an example goal, with off-topic ones", () => {
    assert.isAtLeast(heldOut.length, 40)
    for (const [goal] of heldOut) assert.isFalse(exampleGoals.has(goal.toLowerCase()), goal)
    assert.isAtLeast(heldOut.filter(([, label]) => label === "none").length, 8)
    const ids = new Set(catalog.map((b) => b.id))
    for (const [, label] of heldOut) assert.isTrue(label === "none" || ids.has(label), label)
  })

  it("every goal scoring 0.85 or more is routed to its blueprint, and a good share of goals do", () => {
    const sure = ranked.filter((r) => r.top !== undefined && r.top.score >= 0.85)
    for (const r of sure) assert.strictEqual(r.top!.blueprint.id, r.label, `${r.goal} scored ${r.top!.score}`)
    const served = ranked.filter((r) => r.label !== "none").length
    assert.isAtLeast(sure.length, served / 4, "the calibration is too timid to route anything by itself")
  })

  it("vague and terse goals are not routed by themselves, clear short ones still are", () => {
    for (const goal of vague) {
      assert.isFalse(exampleGoals.has(goal.toLowerCase()), goal)
      const top = router.rank(goal, 5)[0]
      assert.isBelow(top?.score ?? 0, 0.85, `${goal} scored ${top?.score} for ${top?.blueprint.id}`)
    }
    for (const [goal, label] of clear) {
      const top = router.rank(goal, 5)[0]
      assert.strictEqual(top?.blueprint.id, label, goal)
      assert.isAtLeast(top!.score, 0.85, `${goal} scored ${top!.score}`)
    }
  })

  it("more words backing a match that leads raise its score", () => {
    // The logit's derivative in evidence, for a match level with the runner-up and for one far ahead:
    // positive means the fit learned from the terse samples that a lead of few words deserves less trust.
    const c = router.fitted.calibration
    for (const margin of [0, 1]) assert.isAbove(c.evidence + c.backing * margin, 0, `margin ${margin}: ${JSON.stringify(c)}`)
  })

  it("goals carrying values (URLs, times, names, paths, quoted text) have their blueprint first", () => {
    for (const [goal, label] of withValues) {
      const top = router.rank(goal, 5)[0]
      assert.strictEqual(top?.blueprint.id, label, `${goal}: ${top?.blueprint.id} ${top?.score}`)
    }
  })

  // A name=value pair keeps its name (a slot's, which says something about the blueprint): not here.
  it.prop("a value put into a goal leaves its ranking as it was", [
    fc.constantFrom(...heldOut.map(([goal]) => goal)),
    fc.constantFrom(
      "https://github.com/acme/api/pull/42",
      "https://news.ycombinator.com",
      "at 8am",
      "by 17:30",
      "\"Why we moved to Postgres\"",
      "0 9 * * 1-5"
    ),
    fc.nat()
  ], ([goal, value, at]) => {
    const words = goal.split(" ")
    // Between words, and never inside a quoted title the goal already has: a quote within a quote is not one.
    const open = (i: number) => words.slice(0, i).join(" ").split(/["“”]/).length % 2 === 0
    const cuts = Array.from({ length: words.length + 1 }, (_, i) => i).filter((i) => !open(i))
    const cut = cuts[at % cuts.length]!
    const withValue = [...words.slice(0, cut), value, ...words.slice(cut)].join(" ")
    const scores = (text: string) => router.rank(text, 5).map((c) => `${c.blueprint.id} ${c.score.toFixed(9)}`)
    assert.deepStrictEqual(scores(withValue), scores(goal), withValue)
  })

  it("off-topic goals score below 0.65", () => {
    for (const r of ranked.filter((r) => r.label === "none")) {
      assert.isBelow(r.top?.score ?? 0, 0.65, `${r.goal} scored ${r.top?.score} for ${r.top?.blueprint.id}`)
    }
  })

  it("right top candidates score clearly higher than wrong ones", () => {
    const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1)
    const right = ranked.filter((r) => r.top !== undefined && r.top.blueprint.id === r.label).map((r) => r.top!.score)
    const wrong = ranked.filter((r) => r.top !== undefined && r.top.blueprint.id !== r.label).map((r) => r.top!.score)
    assert.isAtLeast(right.length, heldOut.filter(([, label]) => label !== "none").length * 0.75)
    assert.isAbove(mean(right) - mean(wrong), 0.3, `right ${mean(right)}, wrong ${mean(wrong)}`)
  })
})
