import { assert, describe, it } from "@effect/vitest"
import { Cron, DateTime, Either, FastCheck, Option } from "effect"
import * as Recurrence from "../../src/missions/Recurrence.js"

const at = (iso: string) => DateTime.unsafeMake(iso)
const iso = (slot: DateTime.Utc) => DateTime.formatIso(slot)
const isos = (slots: ReadonlyArray<DateTime.Utc>) => slots.map(iso)

const recurrence = (cron: string, timeZone?: string, catchUp?: string) => Either.getOrThrow(Recurrence.make(cron, { timeZone, catchUp }))

const refusal = (cron: string, timeZone?: string, catchUp?: string) =>
  Either.match(Recurrence.make(cron, { timeZone, catchUp }), { onLeft: (message) => message, onRight: () => "accepted" })

describe("Recurrence.make", () => {
  it("reads a cron of 5 fields in a named zone, UTC and catch-up once by default; the zone's name is canonical", () => {
    const plain = recurrence("0  9 * * 1-5")
    assert.strictEqual(plain.expression, "0 9 * * 1-5")
    assert.strictEqual(plain.zone.id, "UTC")
    assert.strictEqual(plain.catchUp, "once")
    const paris = recurrence("30 2 * * *", "europe/paris", "skip")
    assert.strictEqual(paris.zone.id, "Europe/Paris")
    assert.strictEqual(paris.catchUp, "skip")
  })

  it("refuses a bad cron, an unknown zone, a bad catch-up and a cron no date matches, each in one line saying what is allowed", () => {
    const cron = /^cron "[^"]*" is not valid: give 5 fields \(minute hour day-of-month month day-of-week\), like "0 9 \* \* 1-5"$/
    assert.match(refusal("every day"), cron)
    assert.match(refusal("0 0 9 * * *"), cron)
    assert.match(refusal("61 9 * * *"), cron)
    assert.match(refusal(""), cron)
    assert.strictEqual(
      refusal("0 9 * * *", "Mars/Olympus"),
      'time zone "Mars/Olympus" is not known: give an IANA name such as UTC, Europe/Paris or America/New_York'
    )
    assert.strictEqual(
      refusal("0 9 * * *", "UTC", "twice"),
      'catch-up must be once or skip (once: the latest missed slot fires after downtime; skip: missed slots do not), got "twice"'
    )
    assert.strictEqual(refusal("0 0 30 2 *"), 'cron "0 0 30 2 *" never fires: no date matches it')
    assert.strictEqual(refusal("0 0 29 2 *"), "accepted")
  })
})

describe("Recurrence.next", () => {
  it("gives the next slots after a time, in order, never the time itself", () => {
    assert.deepStrictEqual(isos(Recurrence.next(recurrence("0 9 * * 1-5"), at("2025-03-07T09:00:00.000Z"), 3)), [
      "2025-03-10T09:00:00.000Z",
      "2025-03-11T09:00:00.000Z",
      "2025-03-12T09:00:00.000Z"
    ])
  })

  it("reads the cron in the mission's zone: 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer", () => {
    assert.deepStrictEqual(isos(Recurrence.next(recurrence("0 9 * * *", "Europe/Paris"), at("2025-03-28T12:00:00.000Z"), 3)), [
      "2025-03-29T08:00:00.000Z",
      "2025-03-30T07:00:00.000Z",
      "2025-03-31T07:00:00.000Z"
    ])
  })

  it("across the spring change, a slot in the skipped hour fires once, an hour later on the wall clock (03:30 CEST)", () => {
    const slots = Recurrence.next(recurrence("30 2 * * *", "Europe/Paris"), at("2025-03-28T12:00:00.000Z"), 4)
    assert.deepStrictEqual(isos(slots), [
      "2025-03-29T01:30:00.000Z", // 02:30 CET
      "2025-03-30T01:30:00.000Z", // 02:30 does not exist that night: 03:30 CEST
      "2025-03-31T00:30:00.000Z", // 02:30 CEST
      "2025-04-01T00:30:00.000Z"
    ])
  })

  it("across the autumn change, a slot in the repeated hour fires once, on its first pass", () => {
    const slots = Recurrence.next(recurrence("30 2 * * *", "Europe/Paris"), at("2025-10-24T12:00:00.000Z"), 3)
    assert.deepStrictEqual(isos(slots), [
      "2025-10-25T00:30:00.000Z", // 02:30 CEST
      "2025-10-26T00:30:00.000Z", // 02:30 CEST, the first of the two 02:30s
      "2025-10-27T01:30:00.000Z" // 02:30 CET
    ])
  })
})

describe("Recurrence.due", () => {
  const weekdays = (catchUp: "once" | "skip") => recurrence("0 9 * * 1-5", "UTC", catchUp)

  it("fires nothing before the first slot after the mission was armed, then that slot when it comes", () => {
    const armed = at("2025-03-10T09:00:30.000Z")
    assert.isTrue(Option.isNone(Recurrence.due(weekdays("once"), armed, at("2025-03-10T12:00:00.000Z"))))
    assert.isTrue(Option.isNone(Recurrence.due(weekdays("once"), armed, at("2025-03-11T08:59:59.999Z"))))
    assert.deepStrictEqual(Option.map(Recurrence.due(weekdays("once"), armed, at("2025-03-11T09:00:00.000Z")), iso), Option.some("2025-03-11T09:00:00.000Z"))
  })

  it("with once, fires the latest missed slot only, however many were missed; with skip, none of them", () => {
    const last = at("2025-03-03T09:00:00.000Z")
    const now = at("2025-03-14T15:00:00.000Z") // nine weekday slots missed
    assert.deepStrictEqual(Option.map(Recurrence.due(weekdays("once"), last, now), iso), Option.some("2025-03-14T09:00:00.000Z"))
    assert.isTrue(Option.isNone(Recurrence.due(weekdays("skip"), last, now)))
  })

  it("with skip, still fires a slot that came within the grace minute, and nothing after it", () => {
    const last = at("2025-03-13T09:00:00.000Z")
    const slot = Option.some("2025-03-14T09:00:00.000Z")
    assert.deepStrictEqual(Option.map(Recurrence.due(weekdays("skip"), last, at("2025-03-14T09:00:00.000Z")), iso), slot)
    assert.deepStrictEqual(Option.map(Recurrence.due(weekdays("skip"), last, at("2025-03-14T09:01:00.000Z")), iso), slot)
    assert.isTrue(Option.isNone(Recurrence.due(weekdays("skip"), last, at("2025-03-14T09:01:00.001Z"))))
  })

  it("never fires a slot already fired: once the latest slot is the last firing, nothing is due until the next", () => {
    const fired = at("2025-03-14T09:00:00.000Z")
    assert.isTrue(Option.isNone(Recurrence.due(weekdays("once"), fired, at("2025-03-17T08:59:00.000Z"))))
    assert.deepStrictEqual(Option.map(Recurrence.due(weekdays("once"), fired, at("2025-03-17T09:00:10.000Z")), iso), Option.some("2025-03-17T09:00:00.000Z"))
  })

  it("finds the latest slot of a yearly cron missed a year ago", () => {
    const yearly = recurrence("0 0 1 1 *")
    assert.deepStrictEqual(
      Option.map(Recurrence.due(yearly, at("2023-06-01T00:00:00.000Z"), at("2025-06-01T00:00:00.000Z")), iso),
      Option.some("2025-01-01T00:00:00.000Z")
    )
  })
})

describe("Recurrence laws (UTC, against every minute)", () => {
  const field = (values: ReadonlyArray<string>) => FastCheck.constantFrom(...values)
  const crons = FastCheck.tuple(
    field(["*", "0", "*/15", "5,35", "59"]),
    field(["*", "9", "0-6", "*/6", "23"]),
    field(["*", "1", "15", "28-31"]),
    field(["*", "1-6", "*/2"]),
    field(["*", "1-5", "0", "6"])
  ).map((fields) => fields.join(" "))
  const minute = 60_000
  const start = Date.UTC(2024, 0, 1)
  // A window of up to three days somewhere in two years, to the millisecond.
  const windows = FastCheck.tuple(FastCheck.integer({ min: 0, max: 2 * 365 * 24 * 60 * minute }), FastCheck.integer({ min: 0, max: 3 * 24 * 60 * minute }))
    .map(([offset, length]) => ({ since: start + offset, now: start + offset + length }))

  /** Every slot in (since, now], by asking `Cron.match` of every whole minute. */
  const everyMinute = (cron: Cron.Cron, since: number, now: number) => {
    const slots: Array<number> = []
    for (let t = Math.floor(since / minute) * minute + minute; t <= now; t += minute) if (Cron.match(cron, new Date(t))) slots.push(t)
    return slots
  }

  it.prop("latest is the last minute in (since, now] that the cron matches, or none", [crons, windows], ([expression, { now, since }]) => {
    const r = recurrence(expression)
    const expected = everyMinute(r.cron, since, now).at(-1)
    const found = Recurrence.latest(r, DateTime.unsafeMake(since), DateTime.unsafeMake(now))
    assert.deepStrictEqual(Option.map(found, DateTime.toEpochMillis), Option.fromNullable(expected))
  }, { fastCheck: { numRuns: 60 } })

  it.prop("next gives every matching minute after a time, in order, skipping none", [crons, windows], ([expression, { since }]) => {
    const r = recurrence(expression)
    const slots = Recurrence.next(r, DateTime.unsafeMake(since), 5).map(DateTime.toEpochMillis)
    assert.strictEqual(slots.length, 5)
    assert.isTrue(slots.every((slot, i) => slot > (slots[i - 1] ?? since) && Cron.match(r.cron, new Date(slot))))
    // Every minute is asked up to a week on (a sparse cron's fifth slot may be months away).
    const horizon = Math.min(slots.at(-1)!, since + 7 * 24 * 60 * minute)
    assert.deepStrictEqual(everyMinute(r.cron, since, horizon), slots.filter((slot) => slot <= horizon))
  }, { fastCheck: { numRuns: 60 } })

  it.prop("due: once fires the latest slot; skip fires it only within the grace minute; neither fires anything else", [crons, windows], ([expression, { now, since }]) => {
    const [s, n] = [DateTime.unsafeMake(since), DateTime.unsafeMake(now)]
    const latest = Recurrence.latest(recurrence(expression), s, n)
    assert.deepStrictEqual(Recurrence.due(recurrence(expression, "UTC", "once"), s, n), latest)
    const skipped = Recurrence.due(recurrence(expression, "UTC", "skip"), s, n)
    const within = Option.filter(latest, (slot) => now - DateTime.toEpochMillis(slot) <= 60_000)
    assert.deepStrictEqual(skipped, within)
  }, { fastCheck: { numRuns: 60 } })
})
