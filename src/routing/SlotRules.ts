import { Either, Option } from "effect"
import { stemmer } from "stemmer"
import { type Slot, type SlotValue, slotValue } from "../domain/Blueprint.js"

/**
 * Slot values read from a goal's text without a model: each rule is a pure function, and everything a
 * rule finds still has to pass the slot's validator (`slotValue`) to be used.
 */

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const trailing = /[.,;:!?)\]}'"]+$/

// ---------------------------------------------------------------------------------------------------------
// key=value and key: value

/** A value the goal states for a slot by name (`vendor_count=3`, `topic: "pricing pages"`). */
export interface Pair {
  readonly slot: string
  readonly value: string
  /** Where the pair sits in the goal, so that other rules do not read it again. */
  readonly start: number
  readonly end: number
}

const isList = (slot: Slot) => slot.type === "url_list" || slot.type === "string_list"

/** Up to the end of its clause: a sentence's end, a semicolon, a line's end or a closing bracket. */
const clause = String.raw`[^\n;)\]]+?(?=[.!?](?:\s|$)|[\n;)\]]|$)`

/**
 * What a value may look like after the separator: quoted text always; a cron slot's value runs to the
 * end of its clause (five fields, or a cadence in words); after a colon, so do a list's and a text's
 * (`vendors: Acme, Globex and Initech.`); anything else is one word.
 */
const valuePattern = (slot: Slot, separator: "=" | ":") =>
  slot.type === "cron" || (separator === ":" && (isList(slot) || slot.type === "text")) ? clause : String.raw`\S+`

const quoted = String.raw`"([^"\n]*)"|'([^'\n]*)'|“([^”\n]*)”`

/** `name` (a pattern), `separator`, then a quoted value (groups 1–3) or one matching `value` (group 4). */
const pairPattern = (name: string, separator: "=" | ":", value: string) =>
  String.raw`(?<![\w-])${name}[ \t]*${separator}[ \t]*(?:${quoted}|(${value}))`

/** The first `name=value` or `name: value` for `slot` in `text`: its name in any case, `-` for `_`. */
export const pairFor = (text: string, slot: Slot): Option.Option<Pair> => {
  const name = slot.name.split("_").map(escape).join("[_-]")
  const [match] = (["=", ":"] as const)
    .map((separator) => new RegExp(pairPattern(name, separator, valuePattern(slot, separator)), "i").exec(text))
    .filter((m) => m !== null)
    .sort((a, b) => a.index - b.index)
  if (match === undefined) return Option.none()
  const raw = match[1] ?? match[2] ?? match[3] ?? match[4]!
  const value = slot.type === "cron"
    ? Option.getOrElse(Option.orElse(cronLiteral(raw), () => cadence(raw)), () => raw.trim())
    : match[4] === undefined
    ? raw
    : raw.replace(trailing, "")
  // Quoted, a list is split on commas alone: "Procter and Gamble" stays one item.
  const listed = isList(slot) && match[4] !== undefined ? listText(value) : value
  return Option.some({ slot: slot.name, value: listed, start: match.index, end: match.index + match[0].length })
}

/** "a, b and c" as "a, b, c": what `slotValue` splits a list on. */
const listText = (text: string) => text.split(/\s*,\s*(?:and\s+)?|\s+and\s+/).join(", ")

// ---------------------------------------------------------------------------------------------------------
// URLs

const url = /https?:\/\/[^\s<>"'`{}|\\^[\]]+/gi

/** Every http(s) URL in `text`, in order, once each, without the punctuation that ends a sentence. */
export const urls = (text: string): ReadonlyArray<string> => {
  const found = [...text.matchAll(url)].map((m) => m[0].replace(trailing, ""))
  return [...new Set(found)]
}

// ---------------------------------------------------------------------------------------------------------
// Cadences into cron

interface Time {
  readonly hour: number
  readonly minute: number
}

/** A found time and the text it took, so that no later pattern reads "8:30" inside "8:30am" again. */
interface Found extends Time {
  readonly start: number
  readonly end: number
}

/**
 * After a bare number, what lets it be an hour: sentence punctuation ("at 8." "at 8, then") but not a
 * decimal, a thousands separator, a percentage or more digits ("at 8.5", "at 8,000", "at 8%").
 */
const hourEnd = String.raw`(?![\d:%]|[.,]\d)`

/** Every match of a rule's pattern, in any case (`timeOf` lowercases the text before it reads a time). */
const everywhere = (pattern: RegExp) => new RegExp(pattern.source, "gi")

// The times `withoutValues` also blanks: one pattern each, for both.
const twelveHour = /(?<![\d:.])(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?m\b\.?/
const clockTime = /(?<![\d:.])(\d{1,2}):(\d{2})(?![\d:])/

/** Patterns for a time of day, most specific first; a number they take is not read by the next ones. */
const timePatterns: ReadonlyArray<readonly [RegExp, (m: RegExpMatchArray) => Time | undefined]> = [
  [everywhere(twelveHour), (m) => {
    const hour = Number(m[1])
    const minute = Number(m[2] ?? 0)
    return hour >= 1 && hour <= 12 && minute <= 59 ? { hour: (hour % 12) + (m[3] === "p" ? 12 : 0), minute } : undefined
  }],
  [everywhere(clockTime), (m) => (Number(m[1]) <= 23 && Number(m[2]) <= 59 ? { hour: Number(m[1]), minute: Number(m[2]) } : undefined)],
  // "at 9.30": H.MM only after "at", where it cannot be a price or a version.
  [new RegExp(String.raw`\bat\s+(\d{1,2})\.(\d{2})${hourEnd}`, "g"), (m) =>
    Number(m[1]) <= 23 && Number(m[2]) <= 59 ? { hour: Number(m[1]), minute: Number(m[2]) } : undefined],
  [/\b(?:noon|midday)\b/g, () => ({ hour: 12, minute: 0 })],
  [/\bmidnight\b/g, () => ({ hour: 0, minute: 0 })],
  [new RegExp(String.raw`\bat\s+(\d{1,2})${hourEnd}(?:\s*o'?clock)?`, "g"), (m) => (Number(m[1]) <= 23 ? { hour: Number(m[1]), minute: 0 } : undefined)]
]

const foundTimes = (text: string): ReadonlyArray<Found> => {
  let rest = text.toLowerCase()
  const found: Array<Found> = []
  for (const [pattern, read] of timePatterns) {
    for (const m of [...rest.matchAll(pattern)]) {
      const time = read(m)
      if (time === undefined) continue
      found.push({ ...time, start: m.index, end: m.index + m[0].length })
      rest = rest.slice(0, m.index) + " ".repeat(m[0].length) + rest.slice(m.index + m[0].length)
    }
  }
  return found.sort((a, b) => a.start - b.start)
}

/**
 * The times of day `text` names, in order, each once: 5:30pm, 8 am, 9.30pm, 17:30, noon, midnight, or a
 * bare hour after "at" (24-hour clock: "at 9", "at 9.30", "at 8." at a sentence's end).
 */
export const timesOf = (text: string): ReadonlyArray<Time> => {
  const distinct = new Map(foundTimes(text).map(({ hour, minute }) => [hour * 60 + minute, { hour, minute }] as const))
  return [...distinct.values()]
}

/** The first time of day `text` names. */
export const timeOf = (text: string): Option.Option<Time> => Option.fromNullable(timesOf(text)[0])

/** "at" and a number that is no time ("at 8.5", "at 25", "at 8,000"): a time the rules cannot read. */
const unreadTime = (t: string) => {
  let rest = t
  for (const time of foundTimes(t)) rest = rest.slice(0, time.start) + " ".repeat(time.end - time.start) + rest.slice(time.end)
  return /\bat\s+\d/.test(rest)
}

/** Two times joined as a window ("9am to 5pm", "8:00-17:00"): hours to run within, not at. */
const isWindow = (t: string) => {
  const found = foundTimes(t)
  return found.some((time, i) => {
    const next = found[i + 1]
    return next !== undefined && /^\s*(?:to|until|till|through|thru|-|–)\s*$/.test(t.slice(time.end, next.start))
  })
}

const timeLike = String.raw`(?:\d{1,2}(?:[:.]\d{2})?\s*(?:[ap]\.?m\b|o'?clock)|\d{1,2}:\d{2}|noon|midday|midnight)`

/** Hours to run within or by, not at: "before 9am", "from noon", "between 9 and 17", "office hours". */
const withinHours = new RegExp(
  String.raw`\b(?:between|from|until|till|before|after|by)\s+${timeLike}|\bbetween\s+\d{1,2}\s+and\s+\d{1,2}\b|\b(?:business|office|working|work)\s+hours\b`
)

/** The time a cadence runs at when the goal names none: the part of the day it names, else 09:00. */
const defaultTime = (t: string): Time =>
  /\b(?:nightly|night|nights)\b/.test(t)
    ? { hour: 0, minute: 0 }
    : /\bevenings?\b/.test(t)
    ? { hour: 18, minute: 0 }
    : /\bafternoons?\b/.test(t)
    ? { hour: 14, minute: 0 }
    : { hour: 9, minute: 0 }

/**
 * Cron's minute and hour fields for the times `t` names (the default time when it names none): several
 * times only when they share their minute ("at 8am and 8pm" is `0 8,20`); none otherwise, since one
 * cron cannot run at 08:00 and 20:30 alone.
 */
const clockFields = (t: string, fallback: ReadonlyArray<Time>): Option.Option<{ readonly minute: number; readonly hours: string }> => {
  const times = timesOf(t)
  const chosen = times.length === 0 ? fallback : times
  const [first] = chosen
  if (first === undefined || chosen.some((time) => time.minute !== first.minute)) return Option.none()
  return Option.some({ minute: first.minute, hours: chosen.map((time) => time.hour).sort((a, b) => a - b).join(",") })
}

const days = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const
const dayPattern = String.raw`(sunday|monday|tuesday|wednesday|thursday|friday|saturday)(s)?(?!['’\w])`
const dayIndex = (name: string | undefined) => days.indexOf(name as typeof days[number])

/** Cron's day-of-week field for a set of days: ranges for three or more days in a row, `*` for all. */
const dowField = (set: ReadonlySet<number>): string => {
  const sorted = [...set].sort((a, b) => a - b)
  if (sorted.length === 7) return "*"
  const runs: Array<Array<number>> = []
  for (const day of sorted) {
    const last = runs.at(-1)
    if (last !== undefined && last.at(-1) === day - 1) last.push(day)
    else runs.push([day])
  }
  return runs.map((run) => (run.length >= 3 ? `${run[0]}-${run.at(-1)}` : run.join(","))).join(",")
}

interface Weekdays {
  readonly field: string
  /** How many separate day phrases gave it ("weekdays … weekends" is two), to tell apart per-day times. */
  readonly phrases: number
}

const dayPhrases = (text: string): Option.Option<Weekdays> => {
  let t = text.toLowerCase()
  const set = new Set<number>()
  let phrases = 0
  // Each phrase is read once: its text is blanked for the patterns after it.
  const take = (m: RegExpExecArray | RegExpMatchArray, dayNumbers: ReadonlyArray<number>) => {
    dayNumbers.forEach((d) => set.add(d))
    phrases++
    t = t.slice(0, m.index) + " ".repeat(m[0].length) + t.slice(m.index! + m[0].length)
  }
  const takeAll = (pattern: RegExp, dayNumbers: ReadonlyArray<number>) => [...t.matchAll(pattern)].forEach((m) => take(m, dayNumbers))
  const workdays = String.raw`(?:weekday|business day|work ?day|working day)`
  takeAll(new RegExp(String.raw`\b(?:every|each|on)\s+${workdays}s?\b|\bweekdays\b|\bweekday\s+(?:mornings|afternoons|evenings|nights)\b`, "g"), [1, 2, 3, 4, 5])
  takeAll(/\bweekends\b|\b(?:every|each|on)\s+weekend\b/g, [0, 6])
  // A range runs forward through the week: "Friday to Monday" is Friday, Saturday, Sunday and Monday.
  for (const m of [...t.matchAll(new RegExp(String.raw`\b${dayPattern}\s*(?:to|through|thru|until|-|–)\s*${dayPattern}`, "g"))]) {
    const from = dayIndex(m[1])
    const to = dayIndex(m[3])
    take(m, Array.from({ length: ((to - from + 7) % 7) + 1 }, (_, i) => (from + i) % 7))
  }
  const mentions = [...t.matchAll(new RegExp(String.raw`(\b(?:every|each)\s+)?\b${dayPattern}`, "g"))]
  const scheduled = mentions.some((m) => m[1] !== undefined || m[3] !== undefined) || /\b(?:weekly|every week|each week|once a week)\b/.test(t)
  if (scheduled) {
    mentions.forEach((m) => set.add(dayIndex(m[2])))
    phrases += mentions.length
  }
  return set.size === 0 ? Option.none() : Option.some({ field: dowField(set), phrases })
}

/**
 * The days of the week a cadence names, as cron's fifth field: weekdays (and business days, Monday to
 * Friday), weekends, ranges ("Monday to Friday", "Friday to Monday" across the weekend), or named days
 * when they read as a cadence: plural ("on Mondays and Thursdays"), after "every" or "each", or with
 * "weekly". All the phrases together: "weekdays and Sundays" is `0-5`.
 */
export const weekdaysOf = (text: string): Option.Option<string> => Option.map(dayPhrases(text), (d) => d.field)

/**
 * Words that make a cadence conditional ("except weekends", "not on Mondays", "unless it is a holiday"):
 * the rule does not guess what remains and leaves the slot to the model.
 */
const negation = new RegExp(
  String.raw`\b(?:except|excepting|excluding|exclude|other\s+than|apart\s+from|aside\s+from|save\s+for|unless|but\s+not|not\s+(?:on|at|during))\b|` +
    String.raw`(?:\b(?:not|never|no|without|skip|skipping)|n't)\s+(?:\w+\s+){0,2}?` +
    String.raw`(?:(?:sun|mon|tues|wednes|thurs|fri|satur)days?|weekdays?|weekends?|holidays?|mornings?|afternoons?|evenings?|nights?|noon|midnight)\b`
)

const numberWords: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  dozen: 12,
  fifteen: 15,
  twenty: 20,
  thirty: 30
}
const numberWord = Object.keys(numberWords).join("|")

/** "every other day" is every 2 days. */
const amount = (word: string) => (/^\d+$/.test(word) ? Number(word) : word === "other" ? 2 : numberWords[word])
const amountPattern = String.raw`(\d{1,3}|other|${numberWord})`

const dayOfMonth = (t: string): number => {
  const ordinal = /\b(?:on\s+the\s+)?(\d{1,2})(?:st|nd|rd|th)\b/.exec(t)
  return ordinal !== null && Number(ordinal[1]) >= 1 && Number(ordinal[1]) <= 31 ? Number(ordinal[1]) : 1
}

/**
 * A cadence in plain English as a 5-field cron expression: "every 15 minutes", "hourly", "twice a day",
 * "daily at 5:30pm", "every weekday at 9", "every Monday at 8am", "on Mondays and Thursdays", "weekly",
 * "monthly on the 15th", "every 2 days". A cadence without a time runs at 09:00 (00:00 for nightly,
 * 14:00 in the afternoon, 18:00 in the evening), weekly on Mondays, monthly on the 1st; twice a day is
 * 09:00 and 17:00 unless it names its two times. Text without a cadence gives nothing, and so does one
 * whose time the rules cannot read ("at 8.5") or that one cron would misstate: a negation ("except
 * weekends", "but not on Mondays"), times whose minutes differ, different times on different days
 * ("Mondays at 8am and Thursdays at 3pm"), hours to run within or by ("from 9am to 5pm", "before 9am",
 * "during office hours"), or a time of day for a cadence under a day ("every 15 minutes at 9am").
 */
export const cadence = (text: string): Option.Option<string> => {
  const t = text.toLowerCase()
  if (negation.test(t)) return Option.none()
  const named = dayPhrases(t)
  const dow = Option.match(named, { onNone: () => "*", onSome: (d) => d.field })
  const times = timesOf(t)
  if (withinHours.test(t) || unreadTime(t) || (times.length > 1 && (isWindow(t) || Option.exists(named, (d) => d.phrases > 1)))) return Option.none()
  const at = clockFields(t, [defaultTime(t)])
  // With a day of the month, cron would run on it *or* on the weekdays: the weekdays are left out.
  const atTimes = (dayOfMonthField: string, fields: Option.Option<{ readonly minute: number; readonly hours: string }>) =>
    Option.map(fields, ({ hours, minute }) => `${minute} ${hours} ${dayOfMonthField} * ${dayOfMonthField === "*" ? dow : "*"}`)

  // `*/15 * * * *` runs around the clock: a time of day it names would be lost.
  const subDaily = (cron: string) => (times.length > 0 ? Option.none() : Option.some(cron))
  if (/\b(?:every\s+half[\s-]hour|half[\s-]hourly)\b/.test(t)) return subDaily(`*/30 * * * ${dow}`)
  if (/\bevery\s+minute\b/.test(t)) return subDaily(`* * * * ${dow}`)
  const minutes = new RegExp(String.raw`\bevery\s+${amountPattern}\s*(?:minutes?|mins?)\b`).exec(t)
  if (minutes !== null) {
    const n = amount(minutes[1]!)
    if (n !== undefined && n >= 1 && n <= 59) return subDaily(`${n === 1 ? "*" : `*/${n}`} * * * ${dow}`)
  }
  if (/\b(?:hourly|every\s+hour|each\s+hour|once\s+an\s+hour)\b/.test(t)) return subDaily(`0 * * * ${dow}`)
  const hours = new RegExp(String.raw`\bevery\s+${amountPattern}\s*(?:hours?|hrs?)\b`).exec(t)
  if (hours !== null) {
    const n = amount(hours[1]!)
    if (n !== undefined && n >= 1 && n <= 23) return subDaily(`0 ${n === 1 ? "*" : `*/${n}`} * * ${dow}`)
  }
  if (/\btwice\s+(?:a|per|each)\s+day\b|\btwice\s+daily\b/.test(t)) {
    return times.length === 0 || times.length === 2 ? atTimes("*", clockFields(t, [{ hour: 9, minute: 0 }, { hour: 17, minute: 0 }])) : Option.none()
  }
  const everyDays = new RegExp(String.raw`\bevery\s+${amountPattern}\s*days?\b`).exec(t)
  if (everyDays !== null) {
    const n = amount(everyDays[1]!)
    if (n !== undefined && n >= 2 && n <= 31) return atTimes(`*/${n}`, at)
  }
  if (/\b(?:monthly|every\s+month|each\s+month|once\s+a\s+month)\b|\bof\s+(?:the|each|every)\s+month\b/.test(t)) {
    return atTimes(String(dayOfMonth(t)), at)
  }
  if (Option.isSome(named)) return atTimes("*", at)
  if (/\b(?:weekly|every\s+week|each\s+week|once\s+a\s+week)\b/.test(t)) return Option.map(at, ({ hours, minute }) => `${minute} ${hours} * * 1`)
  if (
    /\b(?:daily|nightly|every\s+day|each\s+day|once\s+a\s+day|every\s+(?:morning|afternoon|evening|night)|each\s+(?:morning|afternoon|evening|night))\b/
      .test(t)
  ) return atTimes("*", at)
  return Option.none()
}

const cronFields = /(?<!\S)([\d*/,-]+(?:[ \t]+[\d*/,-]+){4})(?!\S)/

/** A cron expression written out in the goal (five fields, at least one `*`). */
export const cronLiteral = (text: string): Option.Option<string> =>
  Option.fromNullable(cronFields.exec(text)?.[1]).pipe(Option.filter((cron) => cron.includes("*")))

// ---------------------------------------------------------------------------------------------------------
// Counts

const stopwords = new Set(
  ("a an and are as at be by for from how in into is it its many max maximum min minimum most least number count " +
    "of on or per the their this to total up with each every our your my limit amount about than").split(" ")
)
/** Words that may stand between a number and its noun: "3 of our vendors", "top 5 of the competitors". */
const determiners = new Set(["of", "the", "our", "your", "my", "their", "these", "those"])

const wordsOf = (text: string) => text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== "")

const stems = (text: string) => new Set(wordsOf(text).filter((w) => !stopwords.has(w) && !/^\d+$/.test(w)).map((w) => stemmer(w)))

/**
 * Each number in `text` with the stems of the (at most two) words it counts; times and "at 9" excluded.
 * The words are read ahead, not taken, so that "three vendors and five topics" gives both counts.
 */
export const counts = (text: string): ReadonlyArray<{ readonly n: number; readonly nouns: ReadonlySet<string> }> => {
  const pattern = new RegExp(String.raw`(?<![\w:./-])(\d{1,9}|${numberWord})(?![\w:./%,-])(?=((?:\s+[a-z][a-z-]*){1,4}))`, "gi")
  return [...text.matchAll(pattern)].flatMap((m) => {
    if (/\bat\s*$/i.test(text.slice(0, m.index))) return []
    if (/^\s*(?:[ap]\.?m\b|o'?clock\b)/i.test(text.slice(m.index + m[1]!.length))) return []
    const following = wordsOf(m[2]!)
    const nouns: Array<string> = []
    for (const word of following) {
      if (nouns.length === 0 && determiners.has(word)) continue
      if (stopwords.has(word) || nouns.length === 2) break
      nouns.push(stemmer(word))
    }
    const word = m[1]!.toLowerCase()
    return nouns.length === 0 ? [] : [{ n: amount(word)!, nouns: new Set(nouns) }]
  })
}

/**
 * The count the goal gives for an integer slot: the first number whose noun is a word of the slot's
 * name ("3 vendors" for `vendor_count`), else of its description, compared stemmed.
 */
export const count = (text: string, slot: Slot): Option.Option<number> => {
  const found = counts(text)
  const byName = stems(slot.name.replace(/_/g, " "))
  const byDescription = stems(slot.description)
  const matching = (keys: ReadonlySet<string>) => found.find((c) => [...c.nouns].some((noun) => keys.has(noun)))
  return Option.fromNullable(matching(byName) ?? matching(byDescription)).pipe(Option.map((c) => c.n))
}

// ---------------------------------------------------------------------------------------------------------
// Enum values

const mentions = (value: string) =>
  new RegExp(String.raw`(?<![A-Za-z0-9])${value.trim().split(/[\s_-]+/).map(escape).join(String.raw`[\s_-]+`)}(?![A-Za-z0-9])`, "gi")

/**
 * The one value of an enum slot the goal names (whole words, any case, `_`, `-` and spaces alike); none
 * when it names several. A value inside a longer one the goal names ("pro" in "pro plus") does not count.
 */
export const enumValue = (text: string, slot: Slot): Option.Option<string> => {
  const values = [...(slot.values ?? [])].sort((a, b) => b.length - a.length)
  let rest = text
  const named: Array<string> = []
  for (const value of values) {
    const pattern = mentions(value)
    if (rest.search(pattern) !== -1) {
      named.push(value)
      rest = rest.replace(pattern, (m) => " ".repeat(m.length))
    }
  }
  return named.length === 1 ? Option.some(named[0]!) : Option.none()
}

// ---------------------------------------------------------------------------------------------------------
// Values as opposed to words


/**
 * What the rules above read as values, found without knowing the slots: URLs, `name=value` pairs (the
 * value only: the name is a slot's), quoted text standing alone (not an apostrophe inside a word), times
 * of day and cron expressions. `key: value` is left alone: without the slot's name it cannot be told
 * from a colon in a sentence. Bare numbers the router drops by itself.
 */
const valuePatterns: ReadonlyArray<readonly [RegExp, (match: string, ...groups: Array<string | undefined>) => string]> = [
  [everywhere(url), () => " "],
  [new RegExp(pairPattern(String.raw`([A-Za-z][\w-]*)`, "=", String.raw`\S+`), "g"), (_, name) => ` ${name} `],
  [new RegExp(String.raw`(?<!\w)(?:${quoted})(?!\w)`, "g"), () => " "],
  [everywhere(cronFields), () => " "],
  [everywhere(twelveHour), () => " "],
  [everywhere(clockTime), () => " "]
]

/**
 * `text` without the values a goal carries for its slots (above), each replaced by a space: a URL's
 * host and path, a time or a quoted title say which *values* the goal has, not which blueprint it is for.
 */
export const withoutValues = (text: string): string =>
  valuePatterns.reduce((rest, [pattern, replace]) => rest.replace(pattern, replace), text)

// ---------------------------------------------------------------------------------------------------------
// All rules together

export interface RuleFill {
  readonly values: Readonly<Record<string, SlotValue>>
  /** Values the goal stated for a slot by name (`key=value`) that the slot does not take. */
  readonly invalid: ReadonlyArray<{ readonly slot: string; readonly message: string }>
}

/**
 * Every value the rules find for `slots` in `goal`. A `key=value` for a slot comes first, and the text it
 * takes up is not read again by the other rules; then per type: a cron from a cron expression or a
 * cadence, URLs in order to `url` slots and the rest to `url_list` ones, counts to integers, named values
 * to enums. A candidate that fails the slot's validator is dropped (reported when the goal named the slot).
 */
export const apply = (goal: string, slots: ReadonlyArray<Slot>): RuleFill => {
  const values: Record<string, SlotValue> = {}
  const invalid: Array<{ slot: string; message: string }> = []
  let free = goal
  for (const slot of slots) {
    Option.map(pairFor(goal, slot), (pair) => {
      free = free.slice(0, pair.start) + " ".repeat(pair.end - pair.start) + free.slice(pair.end)
      Either.match(slotValue(slot, pair.value), {
        onLeft: (message) => invalid.push({ slot: slot.name, message }),
        onRight: (value) => (values[slot.name] = value)
      })
    })
  }
  const take = (slot: Slot, candidates: ReadonlyArray<Option.Option<unknown>>) => {
    for (const candidate of candidates) {
      if (Option.isNone(candidate)) continue
      const checked = slotValue(slot, candidate.value)
      if (Either.isRight(checked)) {
        values[slot.name] = checked.right
        return true
      }
    }
    return false
  }
  const found = urls(free)
  const used = new Set<string>()
  for (const slot of slots.filter((s) => !(s.name in values) && !invalid.some((i) => i.slot === s.name))) {
    switch (slot.type) {
      case "cron":
        take(slot, [cronLiteral(free), cadence(free)])
        break
      case "url": {
        const next = found.find((url) => !used.has(url))
        if (next !== undefined && take(slot, [Option.some(next)])) used.add(next)
        break
      }
      case "integer":
        take(slot, [count(free, slot)])
        break
      case "enum":
        take(slot, [enumValue(free, slot)])
        break
      default:
        break
    }
  }
  // Lists last, so that they get what the single-URL slots left.
  for (const slot of slots.filter((s) => s.type === "url_list" && !(s.name in values) && !invalid.some((i) => i.slot === s.name))) {
    const rest = found.filter((url) => !used.has(url))
    if (rest.length > 0) take(slot, [Option.some(rest)])
  }
  return { values, invalid }
}
