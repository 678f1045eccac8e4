import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Clock, Effect, Either, FastCheck, TestClock } from "effect"
import type { MissionRecord } from "../../src/domain/MissionRecord.js"
import { Actions, type MissionStatus, transition } from "../../src/domain/MissionState.js"
import { Missions } from "../../src/missions/Missions.js"
import { eachDatabase, sharedLayer } from "../support/Databases.js"
import { digest, layerOn, research, vendors } from "./fixtures.js"

const draft = (fields: { project?: string; slots?: Record<string, string | number | ReadonlyArray<string>>; missing?: ReadonlyArray<string> } = {}) =>
  Effect.flatMap(Missions, (missions) =>
    missions.create({
      project: fields.project ?? "acme",
      goal: "run daily competitive research on 3 vendors",
      blueprint: research(),
      slots: fields.slots ?? { schedule: "0 9 * * 1-5" },
      missing: fields.missing ?? ["vendors"],
      actor: "test:router",
      reason: "auto_routed at score 0.91"
    }))

/** Everything a read can see of a mission, to compare before and after a refused call. */
const everything = (project: string, id: string) =>
  Effect.flatMap(Missions, (missions) => missions.show(project, id))

const history = (project: string, id: string) =>
  Effect.map(everything(project, id), ({ transitions }) => transitions.map((t) => `${t.from ?? "(new)"}→${t.to} ${t.actor} ${t.at} ${t.reason}`))

/** Takes a mission from a draft to `status` by legal steps. */
const bring = (mission: MissionRecord, status: "running" | "completed" | "partial" | "halted" | "failed") =>
  Effect.gen(function*() {
    const missions = yield* Missions
    yield* missions.approve(mission.project_id, mission.mission_id, { slots: { vendors: vendors.join(",") }, actor: "test" })
    yield* missions.advance(mission.project_id, mission.mission_id, "start", "test:driver", "its schedule came")
    if (status === "running") return
    const end = ({ completed: "complete", partial: "partially_complete", halted: "halt", failed: "fail" } as const)[status]
    yield* missions.advance(mission.project_id, mission.mission_id, end, "test:driver", "its run ended")
  })

eachDatabase("Missions", (database) => {
  const fresh = layerOn(database.layer)

  it.effect("creates a draft: a snapshot of the blueprint, validated slots with defaults, missing slots, a preview and its first transition", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("90 minutes")
      const mission = yield* draft()
      assert.match(mission.mission_id, /^ms-[0-9a-f]{12}$/)
      assert.strictEqual(mission.status, "draft")
      assert.strictEqual(mission.project_id, "acme")
      assert.deepStrictEqual(mission.blueprint, research())
      assert.deepStrictEqual(mission.slots, { schedule: "0 9 * * 1-5", depth: 2 })
      assert.deepStrictEqual(mission.missing_slots, ["vendors"])
      assert.strictEqual(mission.created_at, "1970-01-01T01:30:00.000Z")
      assert.include(mission.preview, "Vendors: missing (a list of http(s) URLs)")
      assert.include(mission.preview, "Schedule: 0 9 * * 1-5")

      const missions = yield* Missions
      assert.deepStrictEqual(yield* missions.get("acme", mission.mission_id), mission)
      assert.deepStrictEqual(yield* history("acme", mission.mission_id), [
        "(new)→draft test:router 1970-01-01T01:30:00.000Z auto_routed at score 0.91"
      ])
      const other = yield* draft({ slots: { schedule: "0 9 * * *", vendors }, missing: [] })
      assert.notStrictEqual(other.mission_id, mission.mission_id)
      assert.deepStrictEqual(other.missing_slots, [])
    }).pipe(Effect.provide(fresh)))

  it.effect("adds required slots given neither a value nor a default to the missing ones, and a given value is not missing", () =>
    Effect.gen(function*() {
      const none = yield* draft({ slots: {}, missing: [] })
      assert.deepStrictEqual(none.missing_slots, ["schedule", "vendors"])
      const given = yield* draft({ slots: { schedule: "0 0 * * *", vendors }, missing: ["vendors", "tone"] })
      assert.deepStrictEqual(given.missing_slots, ["tone"])
      assert.deepStrictEqual(given.slots.vendors, vendors)
    }).pipe(Effect.provide(fresh)))

  it.effect("refuses to create from bad input, writing nothing", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const refused = (fields: Parameters<typeof draft>[0]) => Effect.map(Effect.flip(draft(fields)), (e) => `${e._tag}: ${e.message}`)
      assert.strictEqual(yield* refused({ slots: { colour: "red" } }), 'BadInput: the blueprint scheduled_research has no slot "colour" (slots: schedule, vendors, depth, tone)')
      assert.strictEqual(yield* refused({ missing: ["colour"] }), 'BadInput: the blueprint scheduled_research has no slot "colour" (slots: schedule, vendors, depth, tone)')
      assert.strictEqual(yield* refused({ slots: { schedule: "every day" } }), 'BadInput: slot schedule must be a cron expression of 5 fields, like "0 9 * * 1-5", got "every day"')
      assert.strictEqual(
        yield* refused({ project: "acme/prod" }),
        'BadInput: project "acme/prod" is not allowed: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'
      )
      const blank = yield* Effect.flip(missions.create({ project: "acme", goal: "  ", blueprint: digest, slots: {}, missing: [], actor: "t", reason: "r" }))
      assert.strictEqual(blank.message, "a mission needs a goal: non-empty text")
      const cyclic = research({
        graph: { ...research().graph, edges: [...research().graph.edges, { from: "report", to: "analyze" }] }
      })
      const broken = yield* Effect.flip(missions.create({ project: "acme", goal: "g", blueprint: cyclic, slots: {}, missing: [], actor: "t", reason: "r" }))
      assert.match(broken.message, /^blueprint scheduled_research cannot make a mission: graph\.edges: the graph has a cycle/)
      assert.deepStrictEqual(yield* missions.list("acme"), [])
    }).pipe(Effect.provide(fresh)))

  it.effect("a mission of another project is not found, exactly like an unknown id, and nothing of it changes", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft()
      const before = yield* everything("acme", mission.mission_id)
      const id = mission.mission_id
      const notFound = (effect: Effect.Effect<unknown, { readonly _tag: string; readonly message: string }>) =>
        Effect.map(Effect.flip(effect), (e) => `${e._tag}: ${e.message}`)
      const expected = `MissionNotFound: no mission "${id}" in project "beta" (see \`autopilot missions --project beta\`)`
      assert.strictEqual(yield* notFound(missions.get("beta", id)), expected)
      assert.strictEqual(yield* notFound(missions.show("beta", id)), expected)
      assert.strictEqual(yield* notFound(missions.approve("beta", id, { slots: { vendors: vendors[0]! }, actor: "x" })), expected)
      assert.strictEqual(yield* notFound(missions.cancel("beta", id, "x")), expected)
      assert.strictEqual(yield* notFound(missions.advance("beta", id, "cancel", "x", "y")), expected)
      assert.strictEqual(
        yield* notFound(missions.get("beta", "ms-000000000000")),
        'MissionNotFound: no mission "ms-000000000000" in project "beta" (see `autopilot missions --project beta`)'
      )
      assert.strictEqual(
        yield* notFound(missions.get("default", id)),
        `MissionNotFound: no mission "${id}" in project "default" (see \`autopilot missions\`)`
      )
      assert.deepStrictEqual(yield* missions.list("beta"), [])
      assert.deepStrictEqual(yield* everything("acme", id), before)
    }).pipe(Effect.provide(fresh)))

  it.effect("approving with the missing slots stores them and advances through approved to scheduled: two transitions, who, when and why", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft()
      yield* TestClock.adjust("1 hour")
      const approved = yield* missions.approve("acme", mission.mission_id, {
        slots: { vendors: vendors.join(", "), tone: "Critical" },
        actor: "cli:alice",
        reason: "looks right"
      })
      assert.strictEqual(approved.status, "scheduled")
      assert.deepStrictEqual(approved.slots, { schedule: "0 9 * * 1-5", depth: 2, vendors, tone: "critical" })
      assert.deepStrictEqual(approved.missing_slots, [])
      assert.include(approved.preview, "Vendors: 3 URLs (https://a.example, https://b.example, https://c.example)")
      assert.strictEqual(approved.updated_at, "1970-01-01T01:00:00.000Z")
      assert.deepStrictEqual(yield* missions.get("acme", mission.mission_id), approved)
      assert.deepStrictEqual(yield* history("acme", mission.mission_id), [
        "(new)→draft test:router 1970-01-01T00:00:00.000Z auto_routed at score 0.91",
        "draft→approved cli:alice 1970-01-01T01:00:00.000Z looks right",
        "approved→scheduled cli:alice 1970-01-01T01:00:00.000Z every required slot has a value: fires on 0 9 * * 1-5 in UTC, catch-up once"
      ])
      const seqs = (yield* everything("acme", mission.mission_id)).transitions.map((t) => t.seq)
      assert.deepStrictEqual(seqs, [1, 2, 3])
      // A scheduled mission is armed: its zone and catch-up policy (the defaults here), from the approval's time.
      assert.deepStrictEqual(approved.schedule, { time_zone: "UTC", catch_up: "once", armed_at: "1970-01-01T01:00:00.000Z" })
    }).pipe(Effect.provide(fresh)))

  it.effect("arms a scheduled mission with the time zone (canonical name) and catch-up policy given; another mission has no schedule", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft({ slots: { schedule: "30 2 * * *", vendors }, missing: [] })
      const approved = yield* missions.approve("acme", mission.mission_id, { actor: "cli:alice", timeZone: "europe/paris", catchUp: "skip" })
      assert.deepStrictEqual(approved.schedule, { time_zone: "Europe/Paris", catch_up: "skip", armed_at: "1970-01-01T00:00:00.000Z" })
      assert.match((yield* history("acme", mission.mission_id))[2]!, /every required slot has a value: fires on 30 2 \* \* \* in Europe\/Paris, catch-up skip$/)
      const once = yield* missions.create({ project: "acme", goal: "a digest", blueprint: digest, slots: {}, missing: [], actor: "t", reason: "picked" })
      assert.isUndefined((yield* missions.approve("acme", once.mission_id, { actor: "cli:bob" })).schedule)
    }).pipe(Effect.provide(fresh)))

  it.effect("refuses an unknown time zone, a bad catch-up, a cron no date matches, and a schedule for a mission that is not scheduled; nothing changes", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft({ slots: { schedule: "0 9 * * *", vendors }, missing: [] })
      const id = mission.mission_id
      const before = yield* everything("acme", id)
      const refused = (approval: { timeZone?: string; catchUp?: string; slots?: Record<string, string> }) =>
        Effect.map(Effect.flip(missions.approve("acme", id, { actor: "x", ...approval })), (e) => `${e._tag}: ${e.message}`)
      assert.strictEqual(
        yield* refused({ timeZone: "Mars/Olympus" }),
        `BadInput: mission ${id} cannot be armed: time zone "Mars/Olympus" is not known: give an IANA name such as UTC, Europe/Paris or America/New_York (nothing was changed)`
      )
      assert.strictEqual(
        yield* refused({ catchUp: "all" }),
        `BadInput: mission ${id} cannot be armed: catch-up must be once or skip (once: the latest missed slot fires after downtime; skip: missed slots do not), got "all" (nothing was changed)`
      )
      assert.strictEqual(
        yield* refused({ slots: { schedule: "0 0 30 2 *" } }),
        `BadInput: mission ${id} cannot be armed: cron "0 0 30 2 *" never fires: no date matches it (nothing was changed)`
      )
      assert.deepStrictEqual(yield* everything("acme", id), before)
      const once = yield* missions.create({ project: "acme", goal: "a digest", blueprint: digest, slots: {}, missing: [], actor: "t", reason: "picked" })
      const wrong = yield* Effect.flip(missions.approve("acme", once.mission_id, { actor: "x", catchUp: "once" }))
      assert.strictEqual(
        wrong.message,
        `--time-zone and --catch-up are for scheduled missions: mission ${once.mission_id}'s blueprint daily_digest is not scheduled (mode once)`
      )
      assert.strictEqual((yield* missions.get("acme", once.mission_id)).status, "draft")
    }).pipe(Effect.provide(fresh)))

  it.effect("approves a ready draft as it is, and may change a slot that was not missing", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const ready = yield* missions.create({ project: "acme", goal: "a digest", blueprint: digest, slots: {}, missing: [], actor: "t", reason: "picked" })
      assert.strictEqual((yield* missions.approve("acme", ready.mission_id, { actor: "cli:bob" })).status, "scheduled")
      assert.deepStrictEqual((yield* history("acme", ready.mission_id)).slice(1).map((line) => line.split(" ").slice(0, 2).join(" ")), [
        "draft→approved cli:bob",
        "approved→scheduled cli:bob"
      ])
      const full = yield* draft({ slots: { schedule: "0 9 * * 1-5", vendors }, missing: [] })
      const changed = yield* missions.approve("acme", full.mission_id, { slots: { depth: "4" }, actor: "cli:bob" })
      assert.strictEqual(changed.slots.depth, 4)
      assert.match((yield* history("acme", full.mission_id))[1]!, /draft→approved cli:bob .* approved with depth given$/)
    }).pipe(Effect.provide(fresh)))

  it.effect("refuses an approval with a slot failing its validator, an unknown slot, or slots still missing; nothing changes", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft({ slots: {}, missing: [] })
      const id = mission.mission_id
      const before = yield* everything("acme", id)
      const refused = (slots: Record<string, string>) => Effect.map(Effect.flip(missions.approve("acme", id, { slots, actor: "x" })), (e) => `${e._tag}: ${e.message}`)
      assert.strictEqual(
        yield* refused({ schedule: "0 9 * * 1-5", vendors: "ftp://a.example" }),
        'BadInput: slot vendors must be a list of http(s) URLs, got "ftp://a.example"'
      )
      assert.strictEqual(yield* refused({ depth: "9", schedule: "0 9 * * 1-5", vendors: vendors[0]! }), 'BadInput: slot depth must be a whole number from 1 to 5, got "9"')
      assert.strictEqual(
        yield* refused({ vendor: vendors[0]!, colour: "red" }),
        `BadInput: mission ${id}'s blueprint scheduled_research has no slot "vendor", "colour" (slots: schedule, vendors, depth, tone)`
      )
      assert.strictEqual(
        yield* refused({ schedule: "0 9 * * 1-5" }),
        `BadInput: mission ${id} cannot be approved while required slots are missing: vendors (a list of http(s) URLs); give them with --slot name=value, all in one approve (nothing was changed)`
      )
      assert.strictEqual(
        yield* refused({}),
        `BadInput: mission ${id} cannot be approved while required slots are missing: schedule (a cron expression of 5 fields, like "0 9 * * 1-5"), vendors (a list of http(s) URLs); give them with --slot name=value, all in one approve (nothing was changed)`
      )
      assert.deepStrictEqual(yield* everything("acme", id), before)
    }).pipe(Effect.provide(fresh)))

  it.effect("refuses an illegal transition, naming the state and the transition, and changes nothing", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const mission = yield* draft()
      const id = mission.mission_id
      const early = yield* Effect.flip(missions.advance("acme", id, "start", "x", "y"))
      assert.strictEqual(early._tag, "IllegalTransition")
      assert.strictEqual(early.message, `cannot start mission ${id}: it is draft (a draft mission can only be approved or cancelled)`)
      yield* bring(mission, "running")
      const before = yield* everything("acme", id)
      const again = yield* Effect.flip(missions.approve("acme", id, { slots: { tone: "neutral" }, actor: "x" }))
      assert.strictEqual(
        again.message,
        `cannot approve mission ${id}: it is running (a running mission can only be completed, partially completed, halted, failed or cancelled)`
      )
      assert.deepStrictEqual(yield* everything("acme", id), before)
    }).pipe(Effect.provide(fresh)))

  it.effect("cancels a mission that has not ended; one that has ended, or was cancelled, is left as it is and the result says so", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const fresh = yield* draft()
      const cancelled = yield* missions.cancel("acme", fresh.mission_id, "cli:carol", "wrong vendors")
      assert.isTrue(cancelled.cancelled)
      assert.strictEqual(cancelled.mission.status, "cancelled")
      assert.strictEqual(cancelled.message, `mission ${fresh.mission_id} cancelled`)
      assert.strictEqual((yield* history("acme", fresh.mission_id))[1], "draft→cancelled cli:carol 1970-01-01T00:00:00.000Z wrong vendors")

      const twice = yield* missions.cancel("acme", fresh.mission_id, "cli:carol")
      assert.isFalse(twice.cancelled)
      assert.strictEqual(twice.message, `mission ${fresh.mission_id} was already cancelled: nothing changed`)
      assert.lengthOf((yield* everything("acme", fresh.mission_id)).transitions, 2)

      const running = yield* draft()
      yield* bring(running, "running")
      const stopped = yield* missions.cancel("acme", running.mission_id, "cli:carol")
      assert.isTrue(stopped.cancelled)
      assert.match((yield* history("acme", running.mission_id)).at(-1)!, /^running→cancelled cli:carol .* cancelled while running$/)

      // A halted or partial mission has only stopped (it may be resumed), so it can still be cancelled.
      for (const stoppedAt of ["partial", "halted"] as const) {
        const mission = yield* draft()
        yield* bring(mission, stoppedAt)
        assert.isTrue((yield* missions.cancel("acme", mission.mission_id, "cli:carol")).cancelled)
      }

      for (const end of ["completed", "failed"] as const) {
        const mission = yield* draft()
        yield* bring(mission, end)
        const before = yield* everything("acme", mission.mission_id)
        const result = yield* missions.cancel("acme", mission.mission_id, "cli:carol")
        assert.isFalse(result.cancelled)
        assert.strictEqual(result.mission.status, end)
        assert.strictEqual(result.message, `mission ${mission.mission_id} has already ended (${end}): cancelling it has no effect`)
        assert.deepStrictEqual(yield* everything("acme", mission.mission_id), before)
      }
    }).pipe(Effect.provide(fresh)))

  it.effect("lists a project's missions newest first, filtered by any of the statuses given", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const first = yield* draft()
      yield* TestClock.adjust("1 minute")
      const second = yield* draft({ slots: { schedule: "0 9 * * *", vendors }, missing: [] })
      yield* TestClock.adjust("1 minute")
      const third = yield* draft()
      yield* draft({ project: "beta" })
      yield* missions.approve("acme", second.mission_id, { actor: "x" })
      yield* missions.cancel("acme", third.mission_id, "x")
      const ids = (list: ReadonlyArray<MissionRecord>) => list.map((m) => m.mission_id)
      assert.deepStrictEqual(ids(yield* missions.list("acme")), [third.mission_id, second.mission_id, first.mission_id])
      assert.deepStrictEqual(ids(yield* missions.list("acme", { status: ["draft"] })), [first.mission_id])
      assert.deepStrictEqual(ids(yield* missions.list("acme", { status: ["scheduled", "cancelled"] })), [third.mission_id, second.mission_id])
      assert.deepStrictEqual(yield* missions.list("acme", { status: ["running"] }), [])
      assert.lengthOf(yield* missions.list("beta"), 1)
    }).pipe(Effect.provide(fresh)))

  it.effect("a transition and the status it sets are one write: when the history cannot be appended, the status stays", () =>
    Effect.gen(function*() {
      const missions = yield* Missions
      const sql = yield* SqlClient.SqlClient
      const mission = yield* draft()
      yield* sql.onDialectOrElse({
        pg: () =>
          Effect.zipRight(
            sql`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN IF NEW.reason = ''boom'' THEN RAISE EXCEPTION ''boom''; END IF; RETURN NEW; END'`,
            sql`CREATE TRIGGER refuse BEFORE INSERT ON mission_transitions FOR EACH ROW EXECUTE FUNCTION refuse()`
          ),
        orElse: () => sql`CREATE TRIGGER refuse BEFORE INSERT ON mission_transitions WHEN NEW.reason = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`
      })
      const failed = yield* Effect.flip(missions.cancel("acme", mission.mission_id, "x", "boom"))
      assert.strictEqual(failed._tag, "PersistenceError")
      assert.strictEqual((yield* missions.get("acme", mission.mission_id)).status, "draft")
      assert.lengthOf((yield* everything("acme", mission.mission_id)).transitions, 1)
    }).pipe(Effect.provide(fresh)))

  const step = FastCheck.record({ action: FastCheck.constantFrom(...Actions), withSlots: FastCheck.boolean(), minutes: FastCheck.nat(90) })

  // One database for every run: each run makes a mission of its own, and a database each would cost more
  // on Postgres than the runs themselves.
  const onOneDatabase = sharedLayer(fresh)

  it.effect.prop(
    "over any sequence of actions: the service agrees with the lifecycle, and records every accepted transition exactly once, in order",
    [FastCheck.array(step, { maxLength: 14 })],
    ([steps]) =>
      Effect.gen(function*() {
        const missions = yield* Missions
        const mission = yield* draft()
        const id = mission.mission_id
        let status: MissionStatus = "draft"
        const expected: Array<string> = ["(new)→draft"]
        for (const { action, minutes, withSlots } of steps) {
          yield* TestClock.adjust(`${minutes} minutes`)
          const at = new Date(yield* Clock.currentTimeMillis).toISOString()
          const call: Effect.Effect<unknown, unknown> = action === "approve"
            ? missions.approve("acme", id, { actor: "p", ...(withSlots ? { slots: { vendors: vendors.join(",") } } : {}) })
            : action === "cancel"
            ? missions.cancel("acme", id, "p", "why")
            : missions.advance("acme", id, action, "p", "why")
          const result = yield* Effect.either(call)
          const next = transition({ mission_id: id, status }, action)
          // Approving also needs the missing vendors: the draft was made without them.
          if (Either.isRight(next) && (action !== "approve" || withSlots)) {
            assert.isTrue(Either.isRight(result), `${action} from ${status}`)
            expected.push(`${status}→${next.right} ${at}`)
            status = next.right
            if (action === "approve") {
              expected.push(`approved→scheduled ${at}`)
              status = "scheduled"
            }
          } else if (action === "cancel") {
            // An ended mission: no error, and the result says nothing was cancelled.
            assert.deepStrictEqual(Either.map(result, (r) => (r as { cancelled: boolean }).cancelled), Either.right(false))
          } else {
            assert.isTrue(Either.isLeft(result), `${action} from ${status} was refused`)
          }
          assert.strictEqual((yield* missions.get("acme", id)).status, status)
        }
        const { transitions } = yield* everything("acme", id)
        assert.deepStrictEqual(transitions.map((t) => t.seq), transitions.map((_, i) => i + 1))
        assert.deepStrictEqual(transitions.map((t) => (t.from === null ? "(new)→draft" : `${t.from}→${t.to} ${t.at}`)), expected)
      }).pipe(onOneDatabase),
    { fastCheck: { numRuns: 60 } }
  )
})
