import MiniSearch from "minisearch"
import type { Blueprint } from "../domain/Blueprint.js"
import { term } from "./Terms.js"

/**
 * The offline half of routing: a BM25+ index over each blueprint's text, and the features that tell how
 * well a goal fits a match, which `Calibration` turns into a probability.
 *
 * minisearch builds the index (fields, terms, per-field frequencies and lengths) once; it is then read,
 * through its documented serialization (`toJSON`), into flat arrays that are scored with minisearch's
 * own BM25+ (the same formula, parameters, per-field IDF and boosts, and the sum multiplied by the
 * number of the goal's terms matched; a test holds the two to the same scores). minisearch's `search`
 * allocates a result for every matching document: with 10,000 blueprints sharing a vocabulary that is
 * about 20 ms of CPU per goal (p99 over 80 ms), against half a millisecond here (bench:router). Owning
 * the scoring also lets calibration rank a goal as if one blueprint were changed or gone, without
 * rebuilding.
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
   * match's, `(s − s') / (s + s')`: the ratio of the two scores (BM25+ here multiplies by the number of
   * terms matched, so scores compare as ratios) bounded, tanh(½ ln(s / s')). 1 when nothing else
   * matches at all; 0.5 for three times the runner-up's score, 0.9 for nineteen times.
   */
  readonly margin: number
  /**
   * 0 and up: how much of the goal the blueprint's text accounts for as an amount, not a share: the
   * sum, over the goal's terms it contains, of each term's IDF relative to that of a term only one
   * blueprint has. A rare word counts about 1, a word half the catalog uses 0.3 (in a catalog of 14; less in a bigger one). Coverage and
   * margin are ratios, as high for "research" as for a sentence about competitive research: this is
   * what tells a one-word goal from a described one.
   */
  readonly evidence: number
}

export interface Match {
  readonly blueprint: Blueprint
  readonly bm25: number
  readonly features: Features
}

/** The catalog as if blueprint `id` were `replacement`, or absent when it is null. */
export interface Change {
  readonly id: string
  readonly replacement: Blueprint | null
}

export interface LocalIndex {
  readonly size: number
  /**
   * The best `limit` matches of a goal's distinct terms (`Terms.goalTerms`), by BM25, ties by id;
   * against the catalog as `change` makes it, when given (how calibration leaves a phrasing out).
   */
  readonly match: (terms: ReadonlyArray<string>, limit: number, change?: Change) => ReadonlyArray<Match>
}

/**
 * What a goal is matched against, per field. Example goals are what users' goals resemble most, so they
 * weigh most; slot descriptions are a weak hint.
 */
export const fields = ["title", "description", "examples", "category", "slots"] as const
const boosts = [2, 1, 3, 1.5, 0.5]
/** minisearch's BM25+ defaults. */
const bm25 = { k: 1.2, b: 0.7, d: 0.5 }

export type Doc = { readonly id: string } & { readonly [F in typeof fields[number]]: string }

const docOf = (blueprint: Blueprint): Doc => ({
  id: blueprint.id,
  title: blueprint.title,
  description: blueprint.description,
  examples: blueprint.example_goals.join("\n"),
  category: blueprint.category.replace(/_/g, " "),
  slots: blueprint.slots.map((slot) => `${slot.name.replace(/_/g, " ")} ${slot.description}`).join("\n")
})

const tokenize = MiniSearch.getDefault("tokenize") as (text: string) => Array<string>

/**
 * minisearch over `blueprints`, configured as the router's index: what `make` reads, and what the tests
 * and the benchmark compare its scores and speed with (`search(terms.join(" "))`).
 */
export const minisearchOf = (blueprints: ReadonlyArray<Blueprint>): MiniSearch<Doc> => {
  const search = new MiniSearch<Doc>({
    fields: [...fields],
    processTerm: (word: string) => term(word),
    searchOptions: { boost: Object.fromEntries(fields.map((field, f) => [field, boosts[f]!])), processTerm: (t: string) => t }
  })
  search.addAll(blueprints.map(docOf))
  return search
}

/** One document's per-field term frequencies and lengths, as minisearch computes them when it adds it. */
interface Counted {
  readonly doc: Doc
  readonly tf: ReadonlyArray<ReadonlyMap<string, number>>
  readonly length: ReadonlyArray<number>
  readonly terms: ReadonlySet<string>
}

/** Counts `blueprint`'s fields, reusing those of `like` whose text is the same (a phrasing left out changes one). */
const count = (blueprint: Blueprint, like?: Counted): Counted => {
  const doc = docOf(blueprint)
  const tf: Array<ReadonlyMap<string, number>> = []
  const length: Array<number> = []
  fields.forEach((field, f) => {
    if (like !== undefined && like.doc[field] === doc[field]) {
      tf.push(like.tf[f]!)
      length.push(like.length[f]!)
      return
    }
    const tokens = tokenize(doc[field])
    const map = new Map<string, number>()
    for (const token of tokens) {
      const t = term(token)
      if (t !== null) map.set(t, (map.get(t) ?? 0) + 1)
    }
    tf.push(map)
    // minisearch's field length counts distinct tokens before term processing.
    length.push(new Set(tokens).size)
  })
  return { doc, tf, length, terms: new Set(tf.flatMap((m) => [...m.keys()])) }
}

const idf = (documents: number, matching: number) => Math.log(1 + (documents - matching + 0.5) / (matching + 0.5))

const bm25Plus = (tf: number, length: number, average: number) =>
  bm25.d + (tf * (bm25.k + 1)) / (tf + bm25.k * (1 - bm25.b + (bm25.b * length) / average))

/**
 * BM25's IDF for coverage, never negative. A term no blueprint has counts as rare as the rarest. Values
 * (URLs, times, quoted text) never get here (`Terms.goalTerms`); what does is a name or a word the
 * catalog does not know, and the calibration, fitted on leave-one-out rankings full of such terms (a
 * phrasing's own names, a left-out blueprint's words), learns what they are worth. Weighing them as the
 * goal's mean term or as nothing was tried: the first changed scores by 0.01–0.02, the second let
 * off-topic goals reach 0.48 and auto-routed a wrong one.
 */
const coverageIdf = (documents: number, df: number) => Math.log(1 + (documents - Math.max(df, 1) + 0.5) / (Math.max(df, 1) + 0.5))

interface Postings {
  readonly docs: Int32Array
  readonly tfs: Float64Array
}

export const make = (input: ReadonlyArray<Blueprint>): LocalIndex => {
  // A later blueprint with an id already seen replaces the earlier one, as a user's file replaces a built-in.
  const blueprints = [...new Map(input.map((b) => [b.id, b])).values()]
  const snapshot = minisearchOf(blueprints).toJSON()

  const n = blueprints.length
  const F = fields.length
  const fieldIdOf = fields.map((field) => snapshot.fieldIds[field]!)
  const indexOfShort = new Map<string, number>()
  const byId = new Map(blueprints.map((b, i) => [b.id, i]))
  for (const [short, id] of Object.entries(snapshot.documentIds)) indexOfShort.set(short, byId.get(String(id))!)
  /** Per document and field, its length: `lengths[doc * F + f]`. */
  const lengths = new Float64Array(n * F)
  for (const [short, perField] of Object.entries(snapshot.fieldLength)) {
    const doc = indexOfShort.get(short)!
    for (let f = 0; f < F; f++) lengths[doc * F + f] = perField[fieldIdOf[f]!] ?? 0
  }
  const averages = fieldIdOf.map((id) => snapshot.averageFieldLength[id] ?? 0)
  /** Per term, per field: who has it and how often. */
  const postings = new Map<string, ReadonlyArray<Postings | undefined>>()
  for (const [t, perField] of snapshot.index) {
    postings.set(t, fieldIdOf.map((id) => {
      const freqs = perField[String(id)]
      if (freqs === undefined) return undefined
      const entries = Object.entries(freqs)
      const docs = new Int32Array(entries.length)
      const tfs = new Float64Array(entries.length)
      entries.forEach(([short, tf], i) => {
        docs[i] = indexOfShort.get(short)!
        tfs[i] = tf
      })
      return { docs, tfs }
    }))
  }
  /** Per document, its distinct terms (coverage), and per term how many documents have it anywhere. */
  const docTerms = blueprints.map(() => new Set<string>())
  const df = new Map<string, number>()
  for (const [t, lists] of postings) {
    for (const list of lists) for (const doc of list?.docs ?? []) docTerms[doc]!.add(t)
  }
  for (const terms of docTerms) for (const t of terms) df.set(t, (df.get(t) ?? 0) + 1)

  /** Per document, its counts, made the first time calibration changes it. */
  const counted: Array<Counted | undefined> = []
  /** Replacements already counted: calibration ranks a phrasing and its terse version against the same one. */
  const replacements = new WeakMap<Blueprint, { readonly like: Counted; readonly counted: Counted }>()
  const scores = new Float64Array(n)
  /** Per document, how many of the goal's terms it has, and the last term counted. */
  const matched = new Int32Array(n)
  const lastTerm = new Int32Array(n)
  const touched = new Int32Array(n)
  const seen = new Uint8Array(n)

  const countReplacement = (blueprint: Blueprint, old: Counted) => {
    const known = replacements.get(blueprint)
    if (known !== undefined && known.like === old) return known.counted
    const fresh = count(blueprint, old)
    replacements.set(blueprint, { like: old, counted: fresh })
    return fresh
  }

  const match = (terms: ReadonlyArray<string>, limit: number, change?: Change): ReadonlyArray<Match> => {
    if (terms.length === 0 || limit <= 0) return []
    const changed = change === undefined ? -1 : byId.get(change.id) ?? -1
    const old = changed >= 0 ? (counted[changed] ??= count(blueprints[changed]!)) : undefined
    const replacement = change?.replacement != null && changed >= 0 ? countReplacement(change.replacement, old!) : undefined
    const documents = changed >= 0 && replacement === undefined ? n - 1 : n
    const average = averages.map((avg, f) => {
      if (old === undefined) return avg
      const total = avg * n - old.length[f]! + (replacement?.length[f] ?? 0)
      return documents > 0 ? total / documents : 0
    })

    let touchedCount = 0
    let replacementScore = 0
    let replacementMatched = 0
    for (let ti = 0; ti < terms.length; ti++) {
      const t = terms[ti]!
      const lists = postings.get(t)
      if (replacement?.terms.has(t) === true) replacementMatched++
      for (let f = 0; f < F; f++) {
        const list = lists?.[f]
        const had = old !== undefined && (old.tf[f]!.get(t) ?? 0) > 0 ? 1 : 0
        const has = replacement !== undefined && (replacement.tf[f]!.get(t) ?? 0) > 0 ? 1 : 0
        const matching = (list?.docs.length ?? 0) - had + has
        if (matching === 0) continue
        const weight = boosts[f]! * idf(documents, matching)
        if (has === 1) replacementScore += weight * bm25Plus(replacement!.tf[f]!.get(t)!, replacement!.length[f]!, average[f]!)
        if (list === undefined) continue
        const avg = average[f]!
        for (let i = 0; i < list.docs.length; i++) {
          const doc = list.docs[i]!
          if (doc === changed) continue
          if (seen[doc] === 0) {
            seen[doc] = 1
            scores[doc] = 0
            matched[doc] = 0
            lastTerm[doc] = -1
            touched[touchedCount++] = doc
          }
          if (lastTerm[doc] !== ti) {
            lastTerm[doc] = ti
            matched[doc] = matched[doc]! + 1
          }
          scores[doc]! += weight * bm25Plus(list.tfs[i]!, lengths[doc * F + f]!, avg)
        }
      }
    }

    // The best few, by score then id, without sorting every document touched; two at least, for the margin.
    const keep = Math.max(limit, 2)
    const best: Array<{ doc: number; score: number }> = []
    const before = (a: { doc: number; score: number }, b: { doc: number; score: number }) =>
      a.score > b.score || (a.score === b.score && blueprints[a.doc]!.id < blueprints[b.doc]!.id)
    const offer = (entry: { doc: number; score: number }) => {
      if (best.length === keep && !before(entry, best[keep - 1]!)) return
      let at = best.length === keep ? keep - 1 : best.length
      if (best.length < keep) best.push(entry)
      while (at > 0 && before(entry, best[at - 1]!)) {
        best[at] = best[at - 1]!
        at--
      }
      best[at] = entry
    }
    for (let i = 0; i < touchedCount; i++) {
      const doc = touched[i]!
      seen[doc] = 0
      offer({ doc, score: scores[doc]! * matched[doc]! })
    }
    if (replacement !== undefined && replacementScore > 0) offer({ doc: changed, score: replacementScore * replacementMatched })

    const weights = terms.map((t) => {
      const had = old?.terms.has(t) === true ? 1 : 0
      const has = replacement?.terms.has(t) === true ? 1 : 0
      return coverageIdf(documents, (df.get(t) ?? 0) - had + has)
    })
    const total = weights.reduce((sum, w) => sum + w, 0)
    const rarest = coverageIdf(documents, 1)
    return best.slice(0, limit).map((entry, i): Match => {
      const own = entry.doc === changed ? replacement!.terms : docTerms[entry.doc]!
      const covered = terms.reduce((sum, t, j) => (own.has(t) ? sum + weights[j]! : sum), 0)
      const other = i === 0 ? best[1]?.score ?? 0 : best[0]!.score
      return {
        blueprint: entry.doc === changed ? change!.replacement! : blueprints[entry.doc]!,
        bm25: entry.score,
        features: {
          coverage: total > 0 ? covered / total : 0,
          margin: (entry.score - other) / (entry.score + other),
          evidence: rarest > 0 ? covered / rarest : 0
        }
      }
    })
  }

  return { size: n, match }
}
