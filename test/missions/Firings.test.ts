import { assert, describe, it } from "@effect/vitest"
import { DateTime, type Duration, Effect, Fiber, Layer, Option, Ref, Schedule, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Firings } from "../../src/missions/Firings.js"
import * as FiringsModule from "../../src/missions/Firings.js"
import { Missions } from "../../src/missions/Missions.js"
import * as MissionsModule from "../../src/missions/Missions.js"
import * as Database from "../../src/store/Database.js"
import { digest, research, vendors } from "./fixtures.js"

/** The services over one SQLite file: building them again is a process restarting on the same database. */
const services = (file: string) => Layer.mergeAll(FiringsModule.layer, MissionsModule.layer).pipe(Layer.provideMerge(Database.layerSqlite(file)))

const databaseFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-firings-")), "autopilot.db")

const setTime = (iso: string) => TestClock.setTime(Date.parse(iso))

/** A scheduled mission of `cron`, approved (armed) now with the zone and policy given. */
const armed = (cron: string, schedule: { timeZone?: string; catchUp?: string } = {}, project = "acme") =>
  Effect.gen(function*() {
    const missions = yield* Missions
    const draft = yield* missions.create({
      project,
      goal: "research 3 vendors on a schedule",
      blueprint: research(),
      slots: { schedule: cron, vendors },
      missing: [],
      actor: "test",
      reason: "routed"
    })
    return yield* missions.approve(project, draft.mission_id, { actor: "test", ...schedule })
  })

/**
 * What a daemon does: every `every`, claim what is due and run it (here each firing ends at once,
 * completed). Every firing is logged as `slot run-id claimed-at`.
 */
const daemon = (log: Ref.Ref<ReadonlyArray<string>>, every: Duration.DurationInput) =>
  Effect.gen(function*() {
    const firings = yield* Firings
    const now = DateTime.formatIso(yield* DateTime.now)
    for (const firing of yield* firings.due) {
      yield* Ref.update(log, (lines) => [...lines, `${firing.slot} ${firing.run_id.split(".")[1]} ${now}`])
      yield* firings.ended(firing, "completed")
    }
  }).pipe(Effect.repeat(Schedule.spaced(every)))

/** Runs the daemon while the clock moves on by `span`: a tick every half hour meets every slot of these crons on time. */
const runFor = (span: Duration.DurationInput, every: Duration.DurationInput = "30 minutes") =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<string>>([])
    const fiber = yield* Effect.fork(daemon(log, every))
    yield* TestClock.adjust(span)
    yield* Fiber.interrupt(fiber)
    return yield* Ref.get(log)
  })

describe("Firings", () => {
  it.effect("fires a weekday cron once per slot across a week, nothing on the weekend; each firing its own run id", () =>
    Effect.gen(function*() {
      yield* setTime("2025-03-10T08:00:00.000Z") // a Monday
      const mission = yield* armed("0 9 * * 1-5")
      const log = yield* runFor("170 hours") // to Monday 10:00
      assert.deepStrictEqual(log, [
        "2025-03-10T09:00:00.000Z at-20250310t0900z 2025-03-10T09:00:00.000Z",
        "2025-03-11T09:00:00.000Z at-20250311t0900z 2025-03-11T09:00:00.000Z",
        "2025-03-12T09:00:00.000Z at-20250312t0900z 2025-03-12T09:00:00.000Z",
        "2025-03-13T09:00:00.000Z at-20250313t0900z 2025-03-13T09:00:00.000Z",
        "2025-03-14T09:00:00.000Z at-20250314t0900z 2025-03-14T09:00:00.000Z",
        "2025-03-17T09:00:00.000Z at-20250317t0900z 2025-03-17T09:00:00.000Z"
      ])
      const firings = yield* Firings
      const recent = yield* firings.recent("acme", mission.mission_id, 2)
      assert.deepStrictEqual(recent.map((f) => [f.run_id, f.kind, f.status, f.fired_at, f.ended_at]), [
        [`${mission.mission_id}.at-20250317t0900z`, "scheduled", "completed", "2025-03-17T09:00:00.000Z", "2025-03-17T09:00:00.000Z"],
        [`${mission.mission_id}.at-20250314t0900z`, "scheduled", "completed", "2025-03-14T09:00:00.000Z", "2025-03-14T09:00:00.000Z"]
      ])
      // The mission itself stays armed.
      assert.strictEqual((yield* (yield* Missions).get("acme", mission.mission_id)).status, "scheduled")
    }).pipe(Effect.provide(services(":memory:"))))

  it.effect("across the spring DST change in Paris, 30 2 * * * fires once a day: at 03:30 CEST the night 02:30 does not exist", () =>
    Effect.gen(function*() {
      yield* setTime("2025-03-28T12:00:00.000Z")
      yield* armed("30 2 * * *", { timeZone: "Europe/Paris" })
      assert.deepStrictEqual(yield* runFor("4 days"), [
        "2025-03-29T01:30:00.000Z at-20250329t0130z 2025-03-29T01:30:00.000Z",
        "2025-03-30T01:30:00.000Z at-20250330t0130z 2025-03-30T01:30:00.000Z",
        "2025-03-31T00:30:00.000Z at-20250331t0030z 2025-03-31T00:30:00.000Z",
        "2025-04-01T00:30:00.000Z at-20250401t0030z 2025-04-01T00:30:00.000Z"
      ])
    }).pipe(Effect.provide(services(":memory:"))))

  it.effect("across the autumn DST change in Paris, 30 2 * * * fires once the night 02:30 comes twice", () =>
    Effect.gen(function*() {
      yield* setTime("2025-10-24T12:00:00.000Z")
      yield* armed("30 2 * * *", { timeZone: "Europe/Paris" })
      assert.deepStrictEqual(yield* runFor("3 days"), [
        "2025-10-25T00:30:00.000Z at-20251025t0030z 2025-10-25T00:30:00.000Z",
        "2025-10-26T00:30:00.000Z at-20251026t0030z 2025-10-26T00:30:00.000Z",
        "2025-10-27T01:30:00.000Z at-20251027t0130z 2025-10-27T01:30:00.000Z"
      ])
    }).pipe(Effect.provide(services(":memory:"))))

  describe("after a restart, state read back from the database", () => {
    /** A day of firings, three days down, then a new process on the same file. */
    const restart = (catchUp: "once" | "skip") =>
      Effect.gen(function*() {
        const file = databaseFile()
        yield* setTime("2025-03-10T08:00:00.000Z")
        const before = yield* Effect.provide(Effect.zipRight(armed("0 9 * * *", { catchUp }), runFor("1 day")), services(file))
        yield* TestClock.adjust("3 days") // down: 2025-03-12 and 03-13 09:00 are missed
        const after = yield* Effect.provide(runFor("1 day"), services(file))
        return { before, after }
      })

    it.effect("catch-up once fires the latest missed slot once, late, then the schedule goes on", () =>
      Effect.gen(function*() {
        const { after, before } = yield* restart("once")
        assert.deepStrictEqual(before, ["2025-03-10T09:00:00.000Z at-20250310t0900z 2025-03-10T09:00:00.000Z"])
        assert.deepStrictEqual(after, [
          "2025-03-13T09:00:00.000Z at-20250313t0900z 2025-03-14T08:00:00.000Z",
          "2025-03-14T09:00:00.000Z at-20250314t0900z 2025-03-14T09:00:00.000Z"
        ])
      }))

    it.effect("catch-up skip fires none of the missed slots; the next slot fires on time", () =>
      Effect.gen(function*() {
        const { after, before } = yield* restart("skip")
        assert.deepStrictEqual(before, ["2025-03-10T09:00:00.000Z at-20250310t0900z 2025-03-10T09:00:00.000Z"])
        assert.deepStrictEqual(after, ["2025-03-14T09:00:00.000Z at-20250314t0900z 2025-03-14T09:00:00.000Z"])
      }))
  })

  it.effect("two processes calling due at once claim a slot once between them", () =>
    Effect.gen(function*() {
      const file = databaseFile()
      yield* setTime("2025-03-10T08:00:00.000Z")
      const [a, b] = yield* Effect.provide(Effect.all([armed("0 9 * * *"), armed("*/30 * * * *", {}, "beta")]), services(file))
      yield* TestClock.adjust("1 hour")
      const due = Effect.flatMap(Firings, (firings) => firings.due)
      // Two service instances, two connections: as two daemons on one database.
      const claims = yield* Effect.all(
        Array.from({ length: 4 }, () => Effect.provide(due, services(file))),
        { concurrency: "unbounded" }
      )
      const claimed = claims.flat().map((f) => `${f.project} ${f.mission_id} ${f.slot}`).sort()
      assert.deepStrictEqual(claimed, [`acme ${a.mission_id} 2025-03-10T09:00:00.000Z`, `beta ${b.mission_id} 2025-03-10T09:00:00.000Z`].sort())
    }))

  it.effect("does not fire a mission again while its firing runs: a slot that came meanwhile fires once it ends, by its catch-up", () =>
    Effect.gen(function*() {
      yield* setTime("2025-03-10T08:00:00.000Z")
      const hourly = yield* armed("0 * * * *")
      const firings = yield* Firings
      yield* TestClock.adjust("1 hour")
      const [first] = yield* firings.due
      assert.strictEqual(first?.run_id, `${hourly.mission_id}.at-20250310t0900z`)
      yield* TestClock.adjust("90 minutes") // 10:00 came while the 09:00 firing ran
      assert.deepStrictEqual(yield* firings.due, [])
      yield* firings.ended(first!, "partial")
      const late = yield* firings.due
      assert.deepStrictEqual(late.map((f) => f.slot), ["2025-03-10T10:00:00.000Z"])
      assert.deepStrictEqual(
        Option.map(yield* firings.get(first!), (f) => f.status),
        Option.some("partial")
      )
    }).pipe(Effect.provide(services(":memory:"))))

  it.effect("fires a scheduled mission by hand, its own run id; refused while a firing runs, and for a mission that does not fire", () =>
    Effect.gen(function*() {
      yield* setTime("2025-03-10T08:00:00.000Z")
      const mission = yield* armed("0 9 * * *")
      const firings = yield* Firings
      yield* TestClock.adjust("1234 millis")
      const manual = yield* firings.fire("acme", mission.mission_id)
      assert.deepStrictEqual(manual, {
        project: "acme",
        mission_id: mission.mission_id,
        slot: "2025-03-10T08:00:01.000Z",
        run_id: `${mission.mission_id}.manual-20250310t080001z`,
        kind: "manual"
      })
      const busy = yield* Effect.flip(firings.fire("acme", mission.mission_id))
      assert.strictEqual(
        busy.message,
        `mission ${mission.mission_id}'s firing ${manual.run_id} is still running, and firings of a mission do not overlap; wait for it to end (if its process is gone, \`autopilot resume ${manual.run_id}\` continues it)`
      )
      yield* firings.ended(manual, "completed")
      // A manual firing counts as the mission's latest: the 09:00 slot still comes after it.
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual((yield* firings.due).map((f) => f.kind), ["scheduled"])

      const missions = yield* Missions
      const once = yield* missions.create({ project: "acme", goal: "a digest", blueprint: digest, slots: {}, missing: [], actor: "t", reason: "r" })
      const refused = (id: string) => Effect.map(Effect.flip(firings.fire("acme", id)), (e) => e.message)
      assert.strictEqual(
        yield* refused(once.mission_id),
        `mission ${once.mission_id} is not scheduled (its blueprint daily_digest is mode once): it runs as a whole, not in firings`
      )
      const draft = yield* missions.create({
        project: "acme", goal: "research", blueprint: research(), slots: { schedule: "0 9 * * *" }, missing: [], actor: "t", reason: "r"
      })
      assert.match(yield* refused(draft.mission_id), /^mission ms-\w+ is draft: approve it first \(`autopilot approve ms-\w+ --project acme`\), which arms its schedule$/)
      yield* missions.cancel("acme", mission.mission_id, "test")
      assert.strictEqual(yield* refused(mission.mission_id), `mission ${mission.mission_id} was cancelled: a cancelled mission does not fire`)
      assert.strictEqual((yield* Effect.flip(firings.fire("acme", "ms-000000000000")))._tag, "MissionNotFound")
    }).pipe(Effect.provide(services(":memory:"))))

  it.effect("gives the next slots of an armed mission after now, in its zone; none once it is cancelled", () =>
    Effect.gen(function*() {
      yield* setTime("2025-03-29T12:00:00.000Z")
      const mission = yield* armed("0 9 * * *", { timeZone: "Europe/Paris" })
      const firings = yield* Firings
      const next = yield* firings.next("acme", mission.mission_id, 3)
      assert.deepStrictEqual(next.map(DateTime.formatIso), ["2025-03-30T07:00:00.000Z", "2025-03-31T07:00:00.000Z", "2025-04-01T07:00:00.000Z"])
      // The cancelled mission does not fire any more, and is not claimed by due.
      yield* (yield* Missions).cancel("acme", mission.mission_id, "test")
      assert.deepStrictEqual(yield* firings.next("acme", mission.mission_id, 3), [])
      yield* TestClock.adjust("1 day")
      assert.deepStrictEqual(yield* firings.due, [])
    }).pipe(Effect.provide(services(":memory:"))))
})
