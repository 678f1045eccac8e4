import { assert, describe, it } from "@effect/vitest"
import { DateTime, Either, FastCheck } from "effect"
import { notBeforeOf, priorityProblem } from "../../src/domain/QueueEntry.js"

const now = DateTime.unsafeMake("2026-04-15T09:00:00.000Z")

const at = (raw: string) => Either.map(notBeforeOf(raw, now), DateTime.formatIso)

describe("QueueEntry", () => {
  it("reads a not-before as an ISO-8601 time with its zone, in UTC", () => {
    assert.deepStrictEqual(at("2026-05-01T09:00:00Z"), Either.right("2026-05-01T09:00:00.000Z"))
    assert.deepStrictEqual(at("2026-05-01T09:00Z"), Either.right("2026-05-01T09:00:00.000Z"))
    assert.deepStrictEqual(at("2026-05-01T11:00+02:00"), Either.right("2026-05-01T09:00:00.000Z"))
    assert.deepStrictEqual(at("2026-05-01T04:30:15.5-0430"), Either.right("2026-05-01T09:00:15.500Z"))
    assert.deepStrictEqual(at("2026-01-01T00:30:00+01:00"), Either.right("2025-12-31T23:30:00.000Z"))
    assert.deepStrictEqual(at("2028-02-29T12:00:00.123456Z"), Either.right("2028-02-29T12:00:00.123Z"))
  })

  it("reads a not-before as a duration from now", () => {
    assert.deepStrictEqual(at("10m"), Either.right("2026-04-15T09:10:00.000Z"))
    assert.deepStrictEqual(at("2 hours"), Either.right("2026-04-15T11:00:00.000Z"))
    assert.deepStrictEqual(at("90s"), Either.right("2026-04-15T09:01:30.000Z"))
    assert.deepStrictEqual(at("1.5d"), Either.right("2026-04-16T21:00:00.000Z"))
    assert.deepStrictEqual(at("1 week"), Either.right("2026-04-22T09:00:00.000Z"))
    assert.deepStrictEqual(at("0m"), Either.right("2026-04-15T09:00:00.000Z"))
    assert.deepStrictEqual(at("3660 days"), Either.right("2036-04-22T09:00:00.000Z"))
  })

  it("refuses anything else, naming both forms: no zone, a day or hour not on the calendar, an unknown unit, more than 10 years", () => {
    for (const raw of [
      "tomorrow",
      "2026-05-01T09:00:00",
      "2026-05-01",
      "2026-02-29T09:00Z",
      "2026-04-31T09:00Z",
      "2026-05-01T24:00Z",
      "2026-05-01T09:60Z",
      "2026-05-01T09:00+15:00",
      "10",
      "10 fortnights",
      "-10m",
      "3661 days",
      "9999-12-31T23:00-05:00"
    ]) {
      const parsed = notBeforeOf(raw, now)
      assert.isTrue(Either.isLeft(parsed), raw)
      if (Either.isLeft(parsed)) {
        assert.strictEqual(
          parsed.left,
          "must be an ISO-8601 time with a zone (2026-05-01T09:00:00Z, 2026-05-01T11:00+02:00) or a duration from now (90s, 10m, 2 hours, 1.5d; at most 10 years)"
        )
      }
    }
  })

  it.prop("any time written in UTC reads back as itself", [FastCheck.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true })], ([date]) => {
    assert.deepStrictEqual(at(date.toISOString()), Either.right(date.toISOString()))
  })

  it("a priority is a whole number from 0 to 100", () => {
    for (const ok of [0, 1, 50, 100]) assert.isUndefined(priorityProblem(ok))
    for (const bad of [-1, 101, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.strictEqual(priorityProblem(bad), "must be a whole number from 0 to 100 (higher is taken first)")
    }
  })
})
