import MiniSearch from "minisearch"
import type { Blueprint } from "../domain/Blueprint.js"
import { distinctTerms, term } from "./Terms.js"

/**
 * The offline half of routing: a BM25+ index (minisearch) over each blueprint's text, and the features
 * that tell how well a goal fits a match, which `Calibration` turns into a probability.
 */

/** What a raw BM25 score cannot say by itself, each in a fixed range whatever the catalog's size. */
export interface Features {
  /**
   * 0–1: the share of the goal's terms that the blueprint's text contains, each term weighted by its
   * IDF (rare terms say more about a goal than common ones).
   */
  readonly coverage: number
  /**
   * -1–1: how far this match's BM25 score stands above (positive) or below (negative) the best other
   * match's, relative to the larger of the two; 1 when nothing else matches at all.
   */
  readonly margin: number
}

export interface Match {
  readonly blueprint: Blueprint
  readonly bm25: number
  readonly features: Features
}

export interface LocalIndex {
  readonly size: number
  /** The best `limit` matches of a goal's terms (`Terms.distinctTerms`), by BM25, ties by id. */
  readonly match: (terms: ReadonlyArray<string>, limit: number) => ReadonlyArray<Match>
  /**
   * Runs `f` on the index as if `id` were `replacement` (or absent when null), then restores it: how
   * calibration ranks a phrasing against the catalog without itself.
   */
  readonly without: <A>(id: string, replacement: Blueprint | null, f: () => A) => A
}

/**
 * What a goal is matched against, per field. Example goals are what users' goals resemble most, so they
 * weigh most; slot descriptions are a weak hint.
 */
const boost = { title: 2, description: 1, examples: 3, category: 1.5, slots: 0.5 }

interface Doc {
  readonly id: string
  readonly title: string
  readonly description: string
  readonly examples: string
  readonly category: string
  readonly slots: string
}

const docOf = (blueprint: Blueprint): Doc => ({
  id: blueprint.id,
  title: blueprint.title,
  description: blueprint.description,
  examples: blueprint.example_goals.join("\n"),
  category: blueprint.category.replace(/_/g, " "),
  slots: blueprint.slots.map((slot) => `${slot.name.replace(/_/g, " ")} ${slot.description}`).join("\n")
})

const textOf = (doc: Doc) => [doc.title, doc.description, doc.examples, doc.category, doc.slots].join("\n")

const processTerm = (word: string) => term(word)
const asIs = (t: string) => t

/** BM25's IDF, never negative. A term no blueprint has counts as rare as the rarest: a name or a value. */
const idfOf = (documents: number, df: number) => Math.log(1 + (documents - Math.max(df, 1) + 0.5) / (Math.max(df, 1) + 0.5))

const byScoreThenId = (a: { score: number; id: string }, b: { score: number; id: string }) =>
  b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

export const make = (blueprints: ReadonlyArray<Blueprint>): LocalIndex => {
  const search = new MiniSearch<Doc>({
    fields: ["title", "description", "examples", "category", "slots"],
    processTerm,
    searchOptions: { boost, processTerm: asIs, combineWith: "OR" },
    autoVacuum: false
  })
  const byId = new Map<string, { blueprint: Blueprint; doc: Doc; terms: ReadonlySet<string> }>()
  const df = new Map<string, number>()
  const count = (terms: ReadonlySet<string>, by: number) => {
    for (const t of terms) df.set(t, (df.get(t) ?? 0) + by)
  }
  const put = (blueprint: Blueprint) => {
    const doc = docOf(blueprint)
    const terms = new Set(distinctTerms(textOf(doc)))
    search.add(doc)
    count(terms, 1)
    byId.set(blueprint.id, { blueprint, doc, terms })
  }
  const drop = (id: string) => {
    const entry = byId.get(id)!
    search.remove(entry.doc)
    count(entry.terms, -1)
    byId.delete(id)
    return entry.blueprint
  }
  // A later blueprint with an id already seen replaces the earlier one, as a user's file replaces a built-in.
  for (const blueprint of blueprints) {
    if (byId.has(blueprint.id)) drop(blueprint.id)
    put(blueprint)
  }

  const match = (terms: ReadonlyArray<string>, limit: number): ReadonlyArray<Match> => {
    if (terms.length === 0 || limit <= 0) return []
    const hits = search.search(terms.join(" ")).map((hit) => ({ id: String(hit.id), score: hit.score }))
    hits.sort(byScoreThenId)
    const top = hits.slice(0, limit)
    const idf = terms.map((t) => idfOf(byId.size, df.get(t) ?? 0))
    const total = idf.reduce((sum, w) => sum + w, 0)
    return top.map((hit, i) => {
      const entry = byId.get(hit.id)!
      const covered = terms.reduce((sum, t, j) => (entry.terms.has(t) ? sum + idf[j]! : sum), 0)
      const other = i === 0 ? hits[1]?.score ?? 0 : hits[0]!.score
      return {
        blueprint: entry.blueprint,
        bm25: hit.score,
        features: { coverage: total > 0 ? covered / total : 0, margin: (hit.score - other) / Math.max(hit.score, other) }
      }
    })
  }

  const without = <A>(id: string, replacement: Blueprint | null, f: () => A): A => {
    const original = drop(id)
    if (replacement !== null) put(replacement)
    try {
      return f()
    } finally {
      if (replacement !== null) drop(id)
      put(original)
    }
  }

  return { get size() { return byId.size }, match, without }
}
