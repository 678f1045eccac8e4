import MiniSearch from "minisearch"
import { stemmer } from "stemmer"
import { withoutValues } from "./SlotRules.js"

/**
 * How goal and blueprint text become the terms the router matches: split on spaces and punctuation,
 * lowercased, stopwords and bare numbers dropped, then Porter-stemmed, so "reviews", "reviewing" and
 * "review" are one term. The index and the query go through the same function.
 */

/**
 * Common English function words, and the words people wrap a request in ("please", "I want", "help
 * me") or a URL is spelt with: none of them says what the goal is about.
 */
const stopwords = new Set(`
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just let me more most my myself
no nor not now of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under until up
us very was we were what when where which while who whom why will with would you your yours yourself
yourselves get got make want need needs like please help thanks thank could would should might must shall
may something anything everything someone anyone everyone thing things one ones lot lots bit really
http https www com org net
`.trim().split(/\s+/))

const tokenize = MiniSearch.getDefault("tokenize") as (text: string) => Array<string>

/**
 * Stemming is most of the cost of indexing a catalog, and a catalog repeats its words: each word is
 * stemmed once. Bounded, so goals read over a long life cannot grow it without end.
 */
const memo = new Map<string, string | null>()
const memoLimit = 100_000

/** One word as a term, or null when it carries no meaning for routing. */
export const term = (word: string): string | null => {
  const known = memo.get(word)
  if (known !== undefined) return known
  const lower = word.toLowerCase()
  const out = lower.length < 2 || stopwords.has(lower) || /^\d+$/.test(lower) ? null : stemmer(lower)
  if (memo.size >= memoLimit) memo.clear()
  memo.set(word, out)
  return out
}

/** Every term of `text`, in order, repeats kept (term frequency matters to BM25). */
export const termsOf = (text: string): Array<string> => {
  const out: Array<string> = []
  for (const word of tokenize(text)) {
    const t = term(word)
    if (t !== null) out.push(t)
  }
  return out
}

/** The distinct terms of `text`. */
export const distinctTerms = (text: string): Array<string> => [...new Set(termsOf(text))]

/**
 * The terms a goal is routed by: its distinct terms once the values slots take (URLs, `name=value`,
 * quoted text, times, cron expressions: `SlotRules.withoutValues`) are gone. A URL's host and path or a
 * time say what the goal is about no more than a number does, and would otherwise dilute its coverage.
 */
export const goalTerms = (goal: string): Array<string> => distinctTerms(withoutValues(goal))
