import { assert, describe, it } from "@effect/vitest"
import { Cron, Either, FastCheck as fc, Option } from "effect"
import { type Slot, slotValue } from "../../src/domain/Blueprint.js"
import * as SlotRules from "../../src/routing/SlotRules.js"
import { sameOption } from "../assertOption.js"

const slot = (fields: Partial<Slot> & Pick<Slot, "name" | "type">): Slot => ({ required: true, description: "an input", ...fields })

const schedule = slot({ name: "schedule", type: "cron", description: "when the research runs" })
const vendorCount = slot({ name: "vendor_count", type: "integer", min: 1, max: 20, description: "how many vendors to compare" })
const tone = slot({ name: "tone", type: "enum", values: ["formal", "casual", "playful"], description: "the voice of the post" })

describe("cadence", () => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ["Summarize the news daily", "0 9 * * *"],
    ["every day, summarize my inbox", "0 9 * * *"],
    ["once a day check the status page", "0 9 * * *"],
    ["Post the digest every weekday at 9", "0 9 * * 1-5"],
    ["on weekdays at 8:15", "15 8 * * 1-5"],
    ["every business day at noon", "0 12 * * 1-5"],
    ["Research the market every Monday at 8am", "0 8 * * 1"],
    ["check prices hourly", "0 * * * *"],
    ["every hour on weekdays", "0 * * * 1-5"],
    ["a weekly roundup", "0 9 * * 1"],
    ["a weekly roundup on Fridays at 4pm", "0 16 * * 5"],
    ["monthly spend report", "0 9 1 * *"],
    ["a report on the 15th of every month", "0 9 15 * *"],
    ["poll the feed every 15 minutes", "*/15 * * * *"],
    ["every minute", "* * * * *"],
    ["every half hour", "*/30 * * * *"],
    ["every 6 hours", "0 */6 * * *"],
    ["twice a day", "0 9,17 * * *"],
    ["send it daily at 5:30pm", "30 17 * * *"],
    ["send it daily at 17:30", "30 17 * * *"],
    ["daily at 12am", "0 0 * * *"],
    ["daily at 12 p.m.", "0 12 * * *"],
    ["on Mondays and Thursdays", "0 9 * * 1,4"],
    ["every Tuesday and Friday at 7:45 am", "45 7 * * 2,5"],
    ["Monday to Friday at 6pm", "0 18 * * 1-5"],
    ["every weekend at 10am", "0 10 * * 0,6"],
    ["nightly backups", "0 0 * * *"],
    ["every evening", "0 18 * * *"],
    ["every afternoon", "0 14 * * *"],
    ["every other day", "0 9 */2 * *"],
    ["every 3 days at 6:00", "0 6 */3 * *"],
    // A sentence's full stop or comma after a bare hour still ends the hour.
    ["Summarize the news every day at 8.", "0 8 * * *"],
    ["Send it daily at 8, then archive it", "0 8 * * *"],
    ["every day at 9.30", "30 9 * * *"],
    ["every day at 9.30pm", "30 21 * * *"],
    ["twice a day at 8am and 8pm", "0 8,20 * * *"],
    ["every day at 8am and 8pm", "0 8,20 * * *"],
    ["every weekday at 8am and 5pm", "0 8,17 * * 1-5"],
    ["every Monday at 8am and every Thursday at 8am", "0 8 * * 1,4"],
    // A range runs forward through the week, across the weekend when it must.
    ["Friday to Monday every week", "0 9 * * 0,1,5,6"],
    ["Thursday to Sunday at 7pm", "0 19 * * 0,4-6"],
    ["on weekdays and Sundays at 7", "0 7 * * 0-5"],
    ["no more than 5 vendors every morning", "0 9 * * *"]
  ]
  for (const [goal, cron] of table) {
    it(`reads "${goal}" as ${cron}`, () => {
      sameOption(SlotRules.cadence(goal), Option.some(cron))
      assert.isTrue(Either.isRight(Cron.parse(cron)), cron)
    })
  }

  for (const goal of ["Review the Monday report", "answer within one business day", "research 3 vendors", "meet at 9 tomorrow", "triage tickets"]) {
    it(`finds no cadence in "${goal}"`, () => sameOption(SlotRules.cadence(goal), Option.none()))
  }

  // Cadences one cron would misstate: the rule gives nothing, and the model fills the slot.
  const unsure: ReadonlyArray<readonly [string, string]> = [
    ["every day at noon except weekends", "a negation"],
    ["daily, but not on Mondays", "a negation"],
    ["every weekday at 9pm except Friday", "a negation"],
    ["post daily excluding holidays", "a negation"],
    ["every day other than Sundays", "a negation"],
    ["daily, don't run on weekends", "a negation"],
    ["every Monday at 8am and every Thursday at 3pm", "different times on different days"],
    ["weekdays at 8am and weekends at 10am", "different times on different days"],
    ["every day at 8am and 8:30pm", "times whose minutes differ"],
    ["twice a day at 8am", "one time for two runs"],
    ["every day from 9am to 5pm", "a window"],
    ["every day 9am to 5pm", "a window"],
    ["daily before 9am", "a deadline"],
    ["every 15 minutes between 9 and 17", "a window"],
    ["hourly during business hours", "a window"],
    ["every 2 hours at 8am", "a time for a cadence under a day"]
  ]
  for (const [goal, why] of unsure) {
    it(`gives nothing for "${goal}" (${why})`, () => sameOption(SlotRules.cadence(goal), Option.none()))
  }

  it.prop("reads every time of day on the 12-hour clock, daily", [fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 59 }), fc.constantFrom("am", "pm")], ([hour, minute, half]) => {
    const mm = String(minute).padStart(2, "0")
    const expected = (hour % 12) + (half === "pm" ? 12 : 0)
    sameOption(SlotRules.cadence(`every day at ${hour}:${mm}${half}`), Option.some(`${minute} ${expected} * * *`))
  })

  const punctuation = fc.constantFrom("", ".", ",", "!", "?", ";", ". Thanks", ", then report")

  it.prop(
    "reads every time of day on the 24-hour clock, H:MM or H.MM, before a sentence's punctuation",
    [fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.constantFrom(":", "."), punctuation],
    ([hour, minute, separator, end]) => {
      const text = `every day at ${hour}${separator}${String(minute).padStart(2, "0")}${end}`
      sameOption(SlotRules.cadence(text), Option.some(`${minute} ${hour} * * *`), text)
    }
  )

  it.prop("reads a bare hour before a sentence's punctuation", [fc.integer({ min: 0, max: 23 }), punctuation], ([hour, end]) => {
    sameOption(SlotRules.cadence(`Summarize the news every day at ${hour}${end}`), Option.some(`0 ${hour} * * *`))
  })

  it.prop(
    "gives nothing for a number after \"at\" it cannot read as a time, rather than 09:00",
    [fc.integer({ min: 0, max: 99 }), fc.constantFrom(".5", ",000", "%", "")],
    ([n, tail]) => {
      fc.pre(tail !== "" || n > 23)
      sameOption(SlotRules.cadence(`every day at ${n}${tail}`), Option.none())
    }
  )

  const weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

  it.prop(
    "runs a range of days forward through the week, wrapping past Saturday",
    [fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.constantFrom("to", "through", "-")],
    ([from, to, joiner]) => {
      const cron = Option.getOrThrow(SlotRules.cadence(`${weekdayNames[from]} ${joiner} ${weekdayNames[to]} every week`))
      const expected = new Set(Array.from({ length: ((to - from + 7) % 7) + 1 }, (_, i) => (from + i) % 7))
      const parsed = Either.getOrThrow(Cron.parse(cron))
      // Cron reads an empty weekday set as every day.
      assert.deepStrictEqual(parsed.weekdays.size === 0 ? new Set([0, 1, 2, 3, 4, 5, 6]) : new Set(parsed.weekdays), expected, cron)
    }
  )

  it.prop(
    "gives nothing for any cadence with a negation about days",
    [
      fc.constantFrom(...table.map(([goal]) => goal)),
      fc.constantFrom("except weekends", "but not on Mondays", "excluding Fridays", "other than Sundays", "not on holidays", "except on the 1st", "unless it is a holiday")
    ],
    ([goal, negation]) => sameOption(SlotRules.cadence(`${goal}, ${negation}`), Option.none())
  )

  it.prop(
    "uses the hours it is given, twice a day, when they share their minute",
    [fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })],
    ([a, b, minute]) => {
      fc.pre(a !== b)
      const mm = String(minute).padStart(2, "0")
      const hours = [a, b].sort((x, y) => x - y).join(",")
      sameOption(SlotRules.cadence(`twice a day at ${a}:${mm} and ${b}:${mm}`), Option.some(`${minute} ${hours} * * *`))
    }
  )
})

describe("cronLiteral", () => {
  it("finds a cron expression written out in the goal", () => {
    sameOption(SlotRules.cronLiteral("run it on 30 6 * * 1-5 please"), Option.some("30 6 * * 1-5"))
  })
  it("ignores five numbers without a star", () => sameOption(SlotRules.cronLiteral("scores 1 2 3 4 5"), Option.none()))
})

describe("pairFor", () => {
  const value = (text: string, s: Slot) => Option.map(SlotRules.pairFor(text, s), (pair) => pair.value)

  it("reads key=value and key: value, the name in any case and with - for _", () => {
    sameOption(value("compare vendor_count=5 of them", vendorCount), Option.some("5"))
    sameOption(value("Vendor-Count: 7.", vendorCount), Option.some("7"))
    sameOption(value("tone = casual", tone), Option.some("casual"))
  })

  it("takes quoted text whole", () => {
    const topic = slot({ name: "topic", type: "text" })
    sameOption(value(`write about topic="pricing pages" soon`, topic), Option.some("pricing pages"))
    sameOption(value(`write about topic='pricing pages' soon`, topic), Option.some("pricing pages"))
  })

  it("runs a list or a text to the end of its clause after a colon", () => {
    const vendors = slot({ name: "vendors", type: "string_list" })
    const audience = slot({ name: "audience", type: "text" })
    sameOption(value("Track vendors: Acme, Globex and Initech. Weekly.", vendors), Option.some("Acme, Globex, Initech"))
    sameOption(value("vendors=Acme,Globex then report", vendors), Option.some("Acme, Globex"))
    sameOption(value("audience: senior engineers, mostly backend; be brief", audience), Option.some("senior engineers, mostly backend"))
  })

  it("reads a cron slot's value as a cron expression or a cadence in words", () => {
    sameOption(value("schedule=0 9 * * 1-5 and report", schedule), Option.some("0 9 * * 1-5"))
    sameOption(value("schedule: every Monday at 8am.", schedule), Option.some("0 8 * * 1"))
  })

  it("takes the first pair in the text, whichever its separator", () => {
    sameOption(value("vendor_count: 4, or rather vendor_count=6", vendorCount), Option.some("4"))
    sameOption(value("vendor_count=6, or rather vendor_count: 4", vendorCount), Option.some("6"))
  })

  it("splits a quoted list on commas alone", () => {
    const vendors = slot({ name: "vendors", type: "string_list" })
    sameOption(value(`vendors: "Procter and Gamble, Acme"`, vendors), Option.some("Procter and Gamble, Acme"))
  })

  it("does not read a longer name or a name inside a word", () => {
    sameOption(value("max_vendor_count=5", vendorCount), Option.none())
    sameOption(value("the vendor count is 5", vendorCount), Option.none())
  })
})

describe("urls", () => {
  it("finds every http(s) URL once, in order, without sentence punctuation", () => {
    assert.deepStrictEqual(
      SlotRules.urls("Watch https://a.example/x?q=1, http://b.example. And (https://c.example/path) and https://a.example/x?q=1!"),
      ["https://a.example/x?q=1", "http://b.example", "https://c.example/path"]
    )
  })
  it("ignores other schemes", () => assert.deepStrictEqual(SlotRules.urls("ftp://a.example and mailto:x@y.z"), []))
})

describe("withoutValues", () => {
  const squeeze = (text: string) => SlotRules.withoutValues(text).replace(/\s+/g, " ").trim()

  it("blanks what the rules read as values: URLs, a name=value's value, quoted text, times, cron expressions", () => {
    assert.strictEqual(squeeze("review PR https://github.com/acme/api/pull/42 for security"), "review PR for security")
    assert.strictEqual(squeeze("every Monday at 8AM and at 5:30 pm, or 17:45"), "every Monday at and at , or")
    assert.strictEqual(squeeze("compare vendor_count=3 vendors, topic=\"pricing pages\""), "compare vendor_count vendors, topic")
    assert.strictEqual(squeeze("a post titled \"Why we moved\" or 'Rust at scale' or “Q3”"), "a post titled or or")
    assert.strictEqual(squeeze("run on 0 9 * * 1-5 please"), "run on please")
  })

  it("leaves words alone: apostrophes inside words, a colon in a sentence, bare numbers", () => {
    for (const text of ["Here's last year's notes and the team's plan", "Is this safe: review it", "find 30 CTOs in Texas"]) {
      assert.strictEqual(SlotRules.withoutValues(text), text)
    }
  })

  it.prop("finds again, after them, no value the rules would read", [
    fc.constantFrom("https://x.example/a/b?c=d", "7:30am", "17:05", "\"quoted words\"", "k=v", "*/5 * * * *"),
    fc.constantFrom("summarize the news", "review the diff", "translate the guide")
  ], ([value, words]) => {
    const rest = SlotRules.withoutValues(`${words} ${value} ${words}`)
    assert.deepStrictEqual(SlotRules.urls(rest), [])
    assert.isTrue(Option.isNone(SlotRules.timeOf(rest)), rest)
    assert.isTrue(Option.isNone(SlotRules.cronLiteral(rest)), rest)
    assert.isFalse(/["=]/.test(rest), rest)
    assert.strictEqual(rest.replace(/\s+/g, " ").replace(/ k /, " ").trim(), `${words} ${words}`)
  })
})

describe("count", () => {
  const table: ReadonlyArray<readonly [string, Slot, number | undefined]> = [
    ["Compare 3 vendors every week", vendorCount, 3],
    ["compare three SaaS vendors", vendorCount, 3],
    ["compare 4 of our vendors", vendorCount, 4],
    ["compare a vendor or 2", vendorCount, undefined],
    ["Find the top 5 competitors", slot({ name: "competitor_count", type: "integer" }), 5],
    ["Enrich 40 companies from the list", slot({ name: "limit", type: "integer", description: "How many companies to enrich" }), 40],
    ["at 9 vendors meet", vendorCount, undefined],
    ["send it at 8 am to 2 channels", slot({ name: "channels", type: "integer" }), 2],
    ["3 reports about vendors", vendorCount, undefined],
    ["three vendors and five topics", slot({ name: "topic_count", type: "integer" }), 5],
    ["a dozen vendors", vendorCount, 12]
  ]
  for (const [goal, s, n] of table) {
    it(`reads "${goal}" for ${s.name} as ${n ?? "nothing"}`, () => sameOption(SlotRules.count(goal, s), Option.fromNullable(n)))
  }

  it("prefers a noun of the slot's name to one of its description", () => {
    const pages = slot({ name: "page_count", type: "integer", description: "how many pages per vendor" })
    sameOption(SlotRules.count("2 vendors, 10 pages each", pages), Option.some(10))
  })
})

describe("enumValue", () => {
  it("finds the one value the goal names, whole words, any case", () => {
    sameOption(SlotRules.enumValue("Write it in a Casual voice", tone), Option.some("casual"))
    sameOption(SlotRules.enumValue("informal notes", tone), Option.none())
    sameOption(SlotRules.enumValue("casually", tone), Option.none())
  })

  it("gives nothing when the goal names several values", () => {
    sameOption(SlotRules.enumValue("formal or casual, you pick", tone), Option.none())
  })

  it("reads _, - and spaces alike and counts a value inside a longer one once", () => {
    const plan = slot({ name: "plan", type: "enum", values: ["pro", "pro_plus", "free"] })
    sameOption(SlotRules.enumValue("upgrade us to Pro Plus", plan), Option.some("pro_plus"))
    sameOption(SlotRules.enumValue("upgrade us to pro-plus", plan), Option.some("pro_plus"))
    sameOption(SlotRules.enumValue("upgrade us to pro", plan), Option.some("pro"))
  })
})

describe("apply", () => {
  const research = [
    schedule,
    vendorCount,
    slot({ name: "homepage", type: "url" }),
    slot({ name: "sources", type: "url_list" }),
    slot({ name: "vendors", type: "string_list" }),
    tone,
    slot({ name: "notes", type: "text", required: false })
  ]

  it("fills each slot type from one goal", () => {
    const filled = SlotRules.apply(
      "Every Monday at 8am, compare 3 vendors (vendors: Acme, Globex and Initech) from https://a.example/x and https://b.example, https://c.example. Keep it casual.",
      research
    )
    assert.deepStrictEqual(filled.values, {
      vendors: ["Acme", "Globex", "Initech"],
      schedule: "0 8 * * 1",
      vendor_count: 3,
      homepage: "https://a.example/x",
      tone: "casual",
      sources: ["https://b.example", "https://c.example"]
    })
    assert.deepStrictEqual(filled.invalid, [])
  })

  it("lets a key=value win over the other rules, which do not read its text again", () => {
    const filled = SlotRules.apply("vendor_count=5 of the 3 vendors; homepage=https://x.example, see https://y.example", [vendorCount, research[2]!, research[3]!])
    assert.deepStrictEqual(filled.values, { vendor_count: 5, homepage: "https://x.example", sources: ["https://y.example"] })
  })

  it("reports a key=value the slot does not take, and uses nothing else for it", () => {
    const filled = SlotRules.apply("vendor_count=50 for 3 vendors", [vendorCount])
    assert.deepStrictEqual(filled.values, {})
    assert.deepStrictEqual(filled.invalid, [{ slot: "vendor_count", message: `slot vendor_count must be a whole number from 1 to 20, got "50"` }])
  })

  it("drops what a rule finds when the slot does not take it", () => {
    assert.deepStrictEqual(SlotRules.apply("compare 30 vendors", [vendorCount]).values, {})
    const narrow = slot({ name: "mode", type: "enum", values: ["fast"] })
    assert.deepStrictEqual(SlotRules.apply("fast and loose", [narrow]).values, { mode: "fast" })
  })

  it("leaves text and lists without a key to the model", () => {
    assert.deepStrictEqual(SlotRules.apply("write about pricing for Acme and Globex", [research[4]!, research[6]!]).values, {})
  })

  it.prop(
    "takes any key=value for an integer slot within its bounds",
    [fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 1000 }), fc.constantFrom("=", " = ", ": ")],
    ([a, b, offset, separator]) => {
      const [min, max] = a <= b ? [a, b] : [b, a]
      const n = min + (offset % (max - min + 1))
      const s = slot({ name: "batch_size", type: "integer", min, max })
      const filled = SlotRules.apply(`process the queue with batch_size${separator}${n} today`, [s])
      assert.deepStrictEqual(filled.values, { batch_size: n })
    }
  )

  it.prop(
    "never fills a value its slot would refuse",
    [fc.string({ maxLength: 80 }), fc.integer({ min: 0, max: 50 })],
    ([text, n]) => {
      const filled = SlotRules.apply(`${text} ${n} vendors ${text}`, research)
      for (const [name, value] of Object.entries(filled.values)) {
        const s = research.find((r) => r.name === name)!
        assert.isTrue(Either.isRight(slotValue(s, value)), `${name}: ${JSON.stringify(value)}`)
      }
    }
  )
})
