import type { SqlClient } from "@effect/sql"
import { Context, DateTime, Effect, Either, Layer, Option } from "effect"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { type Firing, type FiringRecord, type FiringRef, type FiringStatus, runIdOf } from "../domain/Firing.js"
import { checkProject, defaultProject, MissionNotFound, type MissionRecord } from "../domain/MissionRecord.js"
import * as FiringStore from "../store/FiringStore.js"
import * as MissionStore from "../store/MissionStore.js"
import * as Recurrence from "./Recurrence.js"

type Failure = MissionNotFound | BadInput | PersistenceError

/**
 * The firings of scheduled missions: which slots are due now (each claimed once, across every process
 * sharing the database), a firing by hand, the next slots, and how each firing run ended. A scheduled
 * mission stays `scheduled` while it is armed; each firing is a run of its own (`MissionRunner.run` with
 * `firing`). Firings of one mission never overlap: a slot that comes while one runs waits for it to end
 * (and then follows the catch-up policy like any missed slot).
 */
export class Firings extends Context.Tag("autopilot/Firings")<
  Firings,
  {
    /** Claims the slot due now of every armed scheduled mission of every project, and gives them to run. */
    readonly due: Effect.Effect<ReadonlyArray<Firing>, PersistenceError>
    /** Claims a firing of the mission now, by hand (`autopilot missions run ID`): its own run id, `<mission>.manual-<time>`. */
    readonly fire: (project: string, missionId: string) => Effect.Effect<Firing, Failure>
    /** The mission's next `n` slots after now; none for a mission that is not armed (a draft, a cancelled one, one that does not recur). */
    readonly next: (project: string, missionId: string, n: number) => Effect.Effect<ReadonlyArray<DateTime.Utc>, Failure>
    /** The mission's latest `n` firings (0 for all), latest first. */
    readonly recent: (project: string, missionId: string, n: number) => Effect.Effect<ReadonlyArray<FiringRecord>, Failure>
    /** A firing as it is kept; none if it was never claimed. */
    readonly get: (firing: Firing) => Effect.Effect<Option.Option<FiringRecord>, PersistenceError>
    /** Records how a firing run ended, and why (its halt reason). */
    readonly ended: (firing: Firing, status: Exclude<FiringStatus, "running">, reason?: string | null) => Effect.Effect<void, PersistenceError>
    /**
     * A firing refused before its run started (its graph cannot run, its model is missing a key): a
     * scheduled slot is recorded `failed` with why, and fires no more; a manual claim is forgotten.
     */
    readonly refused: (firing: Firing, reason: string) => Effect.Effect<void, PersistenceError>
    /**
     * Every scheduled firing claimed and not yet ended, across all projects: at most one per mission, as
     * firings never overlap. What a dispatcher that took over hands on again, in case the one before it
     * claimed a slot and was lost before it did.
     */
    readonly unfinished: Effect.Effect<ReadonlyArray<Firing>, PersistenceError>
    /** Records that a halted or partial firing runs again. */
    readonly resumed: (firing: Firing) => Effect.Effect<void, PersistenceError>
  }
>() {}

const projectFlag = (project: string) => (project === defaultProject ? "" : ` --project ${project}`)

/** When slots start counting: the approval that armed it (its last change, for a mission armed before schedules were kept). */
const armedAt = (mission: MissionRecord) => DateTime.unsafeMake(mission.schedule?.armed_at ?? mission.updated_at)

/** Why a mission cannot fire now, in one line; undefined when it can. */
export const refusal = (mission: MissionRecord): string | undefined => {
  const id = mission.mission_id
  if (!Recurrence.isRecurring(mission.blueprint)) {
    return `mission ${id} is not scheduled (its blueprint ${mission.blueprint.id} is mode ${mission.blueprint.mode}): it runs as a whole, not in firings`
  }
  switch (mission.status) {
    case "scheduled":
      return undefined
    case "draft":
    case "approved":
      return `mission ${id} is ${mission.status}: approve it first (\`autopilot approve ${id}${projectFlag(mission.project_id)}\`), which arms its schedule`
    case "cancelled":
      return `mission ${id} was cancelled: a cancelled mission does not fire`
    default:
      return `mission ${id} is ${mission.status} (run as a whole before it was kept as a schedule): only an armed scheduled mission fires`
  }
}

export const make = Effect.gen(function*() {
  const store = yield* FiringStore.FiringStore
  const missionStore = yield* MissionStore.MissionStore

  // As `Missions.get` (not used here: Missions runs missions through MissionRunner, which uses this).
  const find = (project: string, missionId: string) =>
    checkProject(project).pipe(
      Effect.zipRight(missionStore.get(project, missionId)),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new MissionNotFound({ mission_id: missionId, project_id: project })),
        onSome: Effect.succeed
      }))
    )

  const isoNow = Effect.map(DateTime.now, DateTime.formatIso)

  const claim = (mission: MissionRecord, slot: DateTime.Utc, kind: FiringRef["kind"]) =>
    Effect.gen(function*() {
      const ref: FiringRef = { slot: DateTime.formatIso(slot), run_id: runIdOf(mission.mission_id, slot, kind), kind }
      const claimed = yield* store.claim(mission.mission_id, ref, yield* isoNow)
      return Option.map(claimed, (): Firing => ({ project: mission.project_id, mission_id: mission.mission_id, ...ref }))
    })

  /** The slot due now of one mission, claimed; none when nothing is due or another claimer was first. */
  const dueOf = (mission: MissionRecord, now: DateTime.Utc) =>
    Effect.gen(function*() {
      const recurrence = Recurrence.ofMission(mission)
      if (Either.isLeft(recurrence)) {
        yield* Effect.logWarning(`scheduled mission ${mission.mission_id} does not fire: ${recurrence.left}`)
        return Option.none<Firing>()
      }
      const [last] = yield* store.recent(mission.mission_id, 1)
      if (last?.status === "running") return Option.none<Firing>()
      const slot = Recurrence.due(recurrence.right, last === undefined ? armedAt(mission) : DateTime.unsafeMake(last.slot), now)
      return Option.isNone(slot) ? Option.none<Firing>() : yield* claim(mission, slot.value, "scheduled")
    })

  const due = Effect.gen(function*() {
    const now = yield* DateTime.now
    const armed = yield* missionStore.listAll(["scheduled"])
    const claimed = yield* Effect.forEach(armed, (read) =>
      Either.match(read, {
        // One mission that no longer reads holds up no other.
        onLeft: (error) => Effect.as(Effect.logWarning(`a scheduled mission cannot be read: ${error.message}`), Option.none<Firing>()),
        onRight: (mission) => (Recurrence.isRecurring(mission.blueprint) ? dueOf(mission, now) : Effect.succeedNone)
      }))
    return claimed.flatMap(Option.toArray)
  })

  const unfinished = Effect.gen(function*() {
    const armed = yield* missionStore.listAll(["scheduled"])
    const running = yield* Effect.forEach(armed, (read) =>
      Either.isLeft(read) || !Recurrence.isRecurring(read.right.blueprint)
        ? Effect.succeedNone
        : Effect.map(store.recent(read.right.mission_id, 1), ([latest]) =>
          latest !== undefined && latest.status === "running" && latest.kind === "scheduled"
            ? Option.some<Firing>({ project: read.right.project_id, mission_id: latest.mission_id, slot: latest.slot, run_id: latest.run_id, kind: latest.kind })
            : Option.none()))
    return running.flatMap(Option.toArray)
  })

  const fire = (project: string, missionId: string) =>
    Effect.gen(function*() {
      const mission = yield* find(project, missionId)
      const refused = refusal(mission)
      if (refused !== undefined) return yield* new BadInput({ message: refused })
      // To the second, as its run id is.
      const now = DateTime.unsafeMake(Math.floor(DateTime.toEpochMillis(yield* DateTime.now) / 1000) * 1000)
      const claimed = yield* claim(mission, now, "manual")
      if (Option.isSome(claimed)) return claimed.value
      const [last] = yield* store.recent(missionId, 1)
      if (last?.status === "running") {
        return yield* new BadInput({
          message: `mission ${missionId}'s firing ${last.run_id} is still running, and firings of a mission do not overlap; wait for it to end (if its process is gone, \`autopilot resume ${last.run_id}\` continues it)`
        })
      }
      // The same second as another firing (a slot of its schedule, or another by hand).
      const taken = yield* store.get(missionId, DateTime.formatIso(now))
      return yield* new BadInput({
        message: `mission ${missionId} already has a firing at ${DateTime.formatIso(now)}${Option.match(taken, { onNone: () => "", onSome: (f) => ` (${f.run_id})` })}; fire it again in a second`
      })
    })

  const next = (project: string, missionId: string, n: number) =>
    Effect.gen(function*() {
      const mission = yield* find(project, missionId)
      const recurrence = Recurrence.ofMission(mission)
      if (refusal(mission) !== undefined || Either.isLeft(recurrence)) return []
      return Recurrence.next(recurrence.right, yield* DateTime.now, n)
    })

  const mark = (firing: Firing, status: FiringStatus, reason: string | null | undefined) =>
    Effect.flatMap(isoNow, (at) =>
      store.mark(firing.mission_id, firing.slot, status, status === "running" ? null : { at, reason: reason ?? null })).pipe(Effect.asVoid)

  return Firings.of({
    due,
    fire,
    next,
    recent: (project, missionId, n) => Effect.flatMap(find(project, missionId), () => store.recent(missionId, n)),
    get: (firing) => store.get(firing.mission_id, firing.slot),
    ended: (firing, status, reason) => mark(firing, status, reason),
    refused: (firing, reason) => (firing.kind === "manual" ? store.release(firing.mission_id, firing.slot) : mark(firing, "failed", reason)),
    resumed: (firing) => mark(firing, "running", null),
    unfinished
  })
})

/** Over whatever database is provided; migrates the firing and mission tables. */
export const layer: Layer.Layer<Firings, never, SqlClient.SqlClient> = Layer.effect(Firings, make).pipe(
  Layer.provide(Layer.merge(FiringStore.layer, MissionStore.layer))
)
