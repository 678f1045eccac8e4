/**
 * Goal routing: latency of `GoalRouter.rank` over a few hundred goals, against the built-in catalog and
 * against 10,000 generated blueprints, and the time to load such a catalog. Run with `npm run bench:router`.
 *
 *   node --import tsx scripts/bench-router.ts [--blueprints=10000] [--goals=300] [--rounds=5] [--seed=9]
 *
 * Catalogs: the built-in one, and `--blueprints` made from word lists with a seeded generator (the same
 * catalog for the same seed): each with a title, a description, four example goals, a category of 24 and
 * one to three slots, from ~60 verbs, ~90 objects, ~40 domains and ~1,500 made-up product names, so that
 * common words are shared by thousands of blueprints (long posting lists) and rare ones by a few.
 *
 * Load time (10,000): encoding is left out; decoding every blueprint's JSON text with the Blueprint Schema,
 * building the index, and fitting the calibration are each timed, and the whole `GoalRouter.layer` build
 * from decoded blueprints too. Goals: the 60 held-out goals of test/routing/heldout.ts, and `--goals` minus
 * 60 more made from the generator's word lists (they match many generated blueprints, the costly case).
 * Each goal is ranked `--rounds` times after one warm-up pass, through the service as a caller uses it
 * (`Effect.runSync(router.rank(goal, { tier: "skip" }))`, k = 5, no remote service). p50 and p99 are of
 * every measured call. Target: p99 < 20 ms at 10,000 blueprints.
 *
 * A table goes to stdout, then the figures as JSON, also written to bench-out/bench-router.json.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Blueprint, toJson } from "../src/domain/Blueprint.js"
import * as BlueprintService from "../src/routing/BlueprintService.js"
import { Blueprints, fromEntries } from "../src/routing/Blueprints.js"
import * as Calibration from "../src/routing/Calibration.js"
import * as GoalRouter from "../src/routing/GoalRouter.js"
import * as LocalIndex from "../src/routing/LocalIndex.js"
import { goalTerms } from "../src/routing/Terms.js"
import { heldOut } from "../test/routing/heldout.js"
import * as Catalog from "../src/routing/Catalog.js"
import { machine, option, r2, root } from "./bench-common.js"

const BLUEPRINTS = Number(option("blueprints", "10000"))
const GOALS = Number(option("goals", "300"))
const ROUNDS = Number(option("rounds", "5"))
const SEED = Number(option("seed", "9"))
const TARGET_P99_MS = 20

// ------------------------------------------------------------------------------------------ generator

/** mulberry32: a small seeded generator, so the catalog is the same on every run. */
const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const verbs = `analyze summarize draft review translate monitor extract classify research compile audit forecast plan
schedule triage enrich optimize benchmark curate reconcile score tag transcribe outline proofread localize
validate deduplicate cluster rank compare track report prioritize escalate visualize index archive migrate
moderate qualify estimate budget negotiate survey interview onboard recruit screen rewrite publish announce
verify test debug document`.split(/\s+/)
const objects = `invoices contracts tickets pull-requests sales-figures customer-feedback news-articles job-applications
marketing-campaigns inventory-levels server-logs survey-responses competitor-pricing research-papers
podcast-transcripts product-reviews expense-reports security-alerts social-media-mentions supplier-quotes
support-emails meeting-recordings release-changelogs patient-records insurance-claims lease-agreements
purchase-orders shipping-manifests tax-filings grant-proposals press-releases blog-drafts sprint-boards
incident-timelines uptime-metrics churn-cohorts ad-spend web-traffic app-store-reviews legal-briefs
board-minutes investor-updates pitch-decks sales-leads crm-accounts partner-agreements vendor-risk-forms
training-materials onboarding-guides api-docs error-reports feature-requests bug-reports test-results
code-diffs dependency-updates cloud-costs energy-usage fleet-telematics crop-yields weather-feeds
property-listings mortgage-applications loan-portfolios trade-confirmations kyc-documents fraud-signals
clinical-trials lab-results prescriptions course-syllabi student-essays exam-papers recipes menus
hotel-bookings flight-schedules event-registrations donor-lists volunteer-rosters election-data
census-tables patent-filings court-rulings regulatory-notices esg-disclosures earnings-calls analyst-notes
price-alerts product-catalogs warehouse-slots returns-requests`.split(/\s+/).map((o) => o.replace(/-/g, " "))
const domains = `healthcare fintech retail logistics education real-estate legal insurance gaming energy travel
agriculture manufacturing media telecom government nonprofit hospitality automotive aerospace biotech
pharma construction mining shipping banking cybersecurity ecommerce saas marketplaces publishing sports
fashion food-delivery cleantech defense utilities recruiting consulting`.split(/\s+/).map((d) => d.replace(/-/g, " "))
const outputs = `into-a-weekly-report with-action-items for-the-leadership-team as-a-spreadsheet with-charts
in-plain-language as-a-slack-summary with-a-risk-score as-a-dashboard with-citations as-a-one-page-brief
with-next-steps`.split(/\s+/).map((o) => o.replace(/-/g, " "))
const cadences = ["every morning", "every Monday", "daily", "weekly", "each month", "every hour", "at the end of each quarter", "once"]
const categories = `research support productivity engineering data marketing sales language finance legal operations
security hr compliance media education health commerce logistics energy public-sector travel science
partnerships`.split(/\s+/).map((c) => c.replace(/-/g, "_"))
const syllables = `ka ro ve lin tar mo qui sen dra pex ul zor bri fen gal hom ist jax kel mun nor ost pli rav sul
tem vor wex yal zen`.split(/\s+/)

const pick = <A>(next: () => number, xs: ReadonlyArray<A>): A => xs[Math.floor(next() * xs.length)]!

const generate = (count: number, seed: number): ReadonlyArray<Blueprint> => {
  const next = random(seed)
  const names = Array.from({ length: 1500 }, () => Array.from({ length: 2 + Math.floor(next() * 2) }, () => pick(next, syllables)).join(""))
  return Array.from({ length: count }, (_, i) => {
    const verb = pick(next, verbs)
    const object = pick(next, objects)
    const domain = pick(next, domains)
    const name = pick(next, names)
    const other = pick(next, objects)
    const goal = () => `${pick(next, cadences)} ${pick(next, verbs)} the ${pick(next, [object, other])} of our ${domain} team ${pick(next, outputs)}`
    const slotKinds = [
      { name: "sources", type: "url_list", required: true, description: `Where the ${object} come from` },
      { name: "schedule", type: "cron", required: false, description: `When to ${verb} them` },
      { name: "audience", type: "text", required: false, description: `Who reads the ${pick(next, outputs)}` },
      { name: "limit", type: "integer", required: false, min: 1, max: 500, description: `How many ${other} at most` }
    ]
    const slots = slotKinds.slice(0, 1 + Math.floor(next() * 3))
    return Schema.decodeUnknownSync(Blueprint)({
      id: `gen_${i}`,
      version: 1,
      title: `${verb[0]!.toUpperCase()}${verb.slice(1)} ${object} for ${domain} (${name})`,
      description: `${name} helps ${domain} teams ${verb} ${object} and ${pick(next, verbs)} ${other}, then reports ${pick(next, outputs)}.`,
      category: pick(next, categories),
      example_goals: [goal(), goal(), `${verb} ${object} with ${name}`, goal()],
      mode: "once",
      slots,
      graph: {
        entry: "work",
        nodes: [{ id: "work", role: `A ${domain} analyst`, prompt: `${verb} the ${object} from {sources}`, model_tier: "medium" }],
        edges: []
      },
      success_criteria: [`the ${object} are ${verb}d`],
      budget: {},
      curation: { capture: false }
    })
  })
}

/** Goals in the generator's words: each matches many generated blueprints, as a vague goal does. */
const generatedGoals = (count: number, seed: number): ReadonlyArray<string> => {
  const next = random(seed + 1)
  return Array.from({ length: count }, () =>
    `${pick(next, ["Please", "Can you", "I need you to", "Help me", ""])} ${pick(next, verbs)} the ${pick(next, objects)} for our ${
      pick(next, domains)
    } business ${pick(next, outputs)} ${pick(next, cadences)}`.trim())
}

// ------------------------------------------------------------------------------------------ measuring

const now = () => performance.now()

const time = <A>(f: () => A): { value: A; ms: number } => {
  const start = now()
  const value = f()
  return { value, ms: now() - start }
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const routerOf = (catalog: Blueprints["Type"]) =>
  Effect.runSync(GoalRouter.make.pipe(Effect.provideService(Blueprints, catalog), Effect.provideService(BlueprintService.BlueprintService, BlueprintService.none)))

const latency = (catalog: Blueprints["Type"], goals: ReadonlyArray<string>) => {
  const build = time(() => routerOf(catalog))
  const router = build.value
  const rank = (goal: string) => Effect.runSync(router.rank(goal, { tier: "skip" }))
  for (const goal of goals) rank(goal)
  const samples: Array<number> = []
  let candidates = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (const goal of goals) {
      const { ms, value } = time(() => rank(goal))
      samples.push(ms)
      candidates += value.candidates.length
    }
  }
  samples.sort((a, b) => a - b)
  return {
    blueprints: catalog.all.length,
    goals: goals.length,
    calls: samples.length,
    router_build_ms: r2(build.ms),
    p50_ms: r2(percentile(samples, 50)),
    p99_ms: r2(percentile(samples, 99)),
    max_ms: r2(samples[samples.length - 1]!),
    mean_candidates: r2(candidates / samples.length),
    calibration: router.fitted
  }
}

const main = async () => {
  const builtIn = await Effect.runPromise(Catalog.makeBuiltIn())
  const goals = [...heldOut.map(([goal]) => goal), ...generatedGoals(Math.max(0, GOALS - heldOut.length), SEED)]

  const generated = generate(BLUEPRINTS, SEED)
  const texts = generated.map(toJson)
  const decode = Schema.decodeUnknownSync(Schema.parseJson(Blueprint))
  const decoded = time(() => texts.map((text) => decode(text)))
  const index = time(() => LocalIndex.make(decoded.value))
  const calibration = time(() => Calibration.calibrate(index.value, decoded.value, GoalRouter.maxPhrasings))
  const load = {
    blueprints: BLUEPRINTS,
    json_mb: r2(texts.reduce((n, t) => n + t.length, 0) / 2 ** 20),
    decode_ms: r2(decoded.ms),
    index_ms: r2(index.ms),
    calibration_ms: r2(calibration.ms),
    total_ms: r2(decoded.ms + index.ms + calibration.ms),
    phrasings_fitted: calibration.value.phrasings
  }

  // minisearch's own search over the same index, for the same goals: what scoring it in flat arrays saves.
  const reference = LocalIndex.minisearchOf(decoded.value)
  const queries = goals.map((goal) => goalTerms(goal).join(" ")).filter((q) => q !== "")
  for (const query of queries.slice(0, 20)) reference.search(query)
  const referenceSamples: Array<number> = []
  const cpuStart = process.cpuUsage()
  for (const query of queries) referenceSamples.push(time(() => reference.search(query)).ms)
  const cpu = process.cpuUsage(cpuStart)
  referenceSamples.sort((a, b) => a - b)
  const minisearchSearch = {
    blueprints: BLUEPRINTS,
    calls: referenceSamples.length,
    p50_ms: r2(percentile(referenceSamples, 50)),
    p99_ms: r2(percentile(referenceSamples, 99)),
    cpu_ms_per_call: r2((cpu.user + cpu.system) / 1000 / referenceSamples.length)
  }

  const small = latency(builtIn, goals)
  const large = latency(fromEntries(decoded.value.map((blueprint) => ({ blueprint, file: null }))), goals)
  const figures = {
    machine: machine(),
    options: { blueprints: BLUEPRINTS, goals: goals.length, rounds: ROUNDS, seed: SEED },
    load,
    latency: [small, large],
    minisearch_search: minisearchSearch,
    target: { p99_ms_at_10000: TARGET_P99_MS, met: large.p99_ms < TARGET_P99_MS },
    rss_mb: r2(process.memoryUsage().rss / 2 ** 20)
  }

  console.log(`catalog load, ${BLUEPRINTS} blueprints (${load.json_mb} MB of JSON):`)
  console.log(`  decode ${load.decode_ms} ms · index ${load.index_ms} ms · calibration ${load.calibration_ms} ms (${load.phrasings_fitted} phrasings) · total ${load.total_ms} ms`)
  console.log(`routing latency, ${goals.length} goals × ${ROUNDS} rounds, k = 5:`)
  console.log(`  blueprints   router build   p50       p99       max`)
  for (const row of [small, large]) {
    console.log(`  ${String(row.blueprints).padEnd(12)} ${`${row.router_build_ms} ms`.padEnd(14)} ${`${row.p50_ms} ms`.padEnd(9)} ${`${row.p99_ms} ms`.padEnd(9)} ${row.max_ms} ms`)
  }
  console.log(`  minisearch's own search, ${minisearchSearch.calls} goals once: p50 ${minisearchSearch.p50_ms} ms, p99 ${minisearchSearch.p99_ms} ms, CPU ${minisearchSearch.cpu_ms_per_call} ms a goal`)
  console.log(`target p99 < ${TARGET_P99_MS} ms at ${BLUEPRINTS}: ${figures.target.met ? "met" : "NOT met"}`)
  const out = path.join(root, "bench-out")
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, "bench-router.json"), `${JSON.stringify(figures, null, 2)}\n`)
  console.log(JSON.stringify(figures))
}

await main()
