import type { SqlClient } from "@effect/sql"
import { Array as Arr, Context, DateTime, Effect, Either, Layer, Option } from "effect"
import { randomBytes } from "node:crypto"
import * as Blueprint from "../domain/Blueprint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"
import { checkProject, MissionNotFound, MissionRecord, type Transition } from "../domain/MissionRecord.js"
import { type Action, type IllegalTransition, type MissionStatus, transition } from "../domain/MissionState.js"
import type { MissionSchedule } from "../domain/Schedule.js"
import * as Database from "../store/Database.js"
import * as MissionStore from "../store/MissionStore.js"
import * as Transaction from "../store/Transaction.js"
import * as MissionRunner from "./MissionRunner.js"
import { preview } from "./Preview.js"
import * as Recurrence from "./Recurrence.js"

/** What a new mission is made of: the router's choice of blueprint and the slot filler's values. */
export interface NewMission {
  readonly project: string
  readonly goal: string
  readonly blueprint: Blueprint.Blueprint
  /** Values by slot name; each is validated against the blueprint's slot. */
  readonly slots: Blueprint.SlotValues
  /**
   * Slots that must be given before approval (missing from the goal, or given there in a form their
   * validator refused). Required slots with neither a value nor a default are added; a slot with a value
   * in `slots` is not missing.
   */
  readonly missing: ReadonlyArray<string>
  /** Who made it (`cli:alice`) and why (`auto_routed at score 0.91`): the first transition of its history. */
  readonly actor: string
  readonly reason: string
}

export interface Approval {
  /** Slot values to set before approving, as a person types them (a list comma-separated) or already typed. */
  readonly slots?: Readonly<Record<string, string | number | ReadonlyArray<string>>> | undefined
  readonly actor: string
  readonly reason?: string | undefined
  /** A scheduled mission's time zone, an IANA name (default UTC); refused for any other mission. */
  readonly timeZone?: string | undefined
  /** A scheduled mission's catch-up policy, `once` (default) or `skip`; refused for any other mission. */
  readonly catchUp?: string | undefined
}

/** What `cancel` did: a mission that had already ended is left as it was, and `message` says so. */
export interface Cancellation {
  readonly cancelled: boolean
  readonly mission: MissionRecord
  readonly message: string
}

export interface Shown {
  readonly mission: MissionRecord
  readonly transitions: ReadonlyArray<Transition>
}

type Failure = MissionNotFound | BadInput | PersistenceError

/**
 * Missions of a project through their lifecycle (`MissionState`): made as drafts from goals, approved
 * (then scheduled) once every required slot has a value, cancelled. Every step is stored with who took
 * it, when and why, in the same transaction as the status it sets. Every call names the project: a
 * mission of another project is not found, exactly as an unknown id.
 */
export class Missions extends Context.Tag("autopilot/Missions")<
  Missions,
  {
    /** A draft; its preview is made from the blueprint and the slots. */
    readonly create: (input: NewMission) => Effect.Effect<MissionRecord, BadInput | PersistenceError>
    readonly get: (project: string, missionId: string) => Effect.Effect<MissionRecord, Failure>
    /** Newest first; with `status`, only those in any of the statuses given. */
    readonly list: (
      project: string,
      filter?: { readonly status?: ReadonlyArray<MissionStatus> | undefined }
    ) => Effect.Effect<ReadonlyArray<MissionRecord>, BadInput | PersistenceError>
    /** The mission and its every transition, in order. */
    readonly show: (project: string, missionId: string) => Effect.Effect<Shown, Failure>
    /**
     * Sets the slots given (each validated; a name the blueprint does not have is refused), then approves
     * the draft and, as it is ready, schedules it: two transitions. Refused, naming them, while required
     * slots are still missing. A scheduled mission (blueprint mode `scheduled`) is armed with its schedule:
     * its cron in `timeZone` (default UTC) with `catchUp` (default `once`), each checked first.
     */
    readonly approve: (project: string, missionId: string, approval: Approval) => Effect.Effect<MissionRecord, Failure | IllegalTransition>
    /** Cancels a mission that has not ended; one that has (or was cancelled) is left as it is, and the result says so. */
    readonly cancel: (project: string, missionId: string, actor: string, reason?: string) => Effect.Effect<Cancellation, Failure>
    /**
     * Takes one step of the lifecycle (`start`, then `complete`, `halt`…, as the mission's run goes), or
     * refuses an illegal one. `approve` goes through `approve` above, slot checks and scheduling included.
     */
    readonly advance: (
      project: string,
      missionId: string,
      action: Action,
      actor: string,
      reason: string
    ) => Effect.Effect<MissionRecord, Failure | IllegalTransition>
  }
>() {}

const now = Effect.map(DateTime.now, DateTime.formatIso)

/** `ms-` and 12 hex digits; from node:crypto, as effect's Random is seeded with only 32 bits per process. */
const newMissionId = Effect.sync(() => `ms-${randomBytes(6).toString("hex")}`)

const slotNames = (blueprint: Blueprint.Blueprint) =>
  blueprint.slots.length === 0 ? "it has no slots" : `slots: ${blueprint.slots.map((s) => s.name).join(", ")}`

const unknownSlots = (blueprint: Blueprint.Blueprint, names: ReadonlyArray<string>, whose: string): BadInput | undefined => {
  const unknown = names.filter((name) => !blueprint.slots.some((slot) => slot.name === name))
  return unknown.length === 0 ? undefined : new BadInput({
    message: `${whose} blueprint ${blueprint.id} has no slot ${unknown.map((n) => `"${n}"`).join(", ")} (${slotNames(blueprint)})`
  })
}

/** Each value checked by its slot's validator; the first that fails, in one line. */
const validated = (blueprint: Blueprint.Blueprint, given: Readonly<Record<string, unknown>>): Either.Either<Blueprint.SlotValues, string> => {
  const out: Record<string, Blueprint.SlotValue> = {}
  for (const [name, value] of Object.entries(given)) {
    const slot = blueprint.slots.find((s) => s.name === name)!
    const checked = Blueprint.slotValue(slot, value)
    if (Either.isLeft(checked)) return Either.left(checked.left)
    out[name] = checked.right
  }
  return Either.right(out)
}

/**
 * The schedule approval arms a scheduled mission with: its cron (the slot's value) read in the zone
 * given, with the catch-up policy given. A mission of another mode is refused a zone or a policy.
 */
const scheduleOf = (mission: MissionRecord, slots: Blueprint.SlotValues, approval: Approval, at: string): Either.Either<MissionSchedule | undefined, BadInput> => {
  const { blueprint } = mission
  if (!Recurrence.isRecurring(blueprint)) {
    return approval.timeZone === undefined && approval.catchUp === undefined ? Either.right(undefined) : Either.left(
      new BadInput({
        message: `--time-zone and --catch-up are for scheduled missions: mission ${mission.mission_id}'s blueprint ${blueprint.id} is not scheduled (mode ${blueprint.mode})`
      })
    )
  }
  const cron = slots[Recurrence.cronSlotOf(blueprint)?.name ?? ""]
  return Recurrence.make(typeof cron === "string" ? cron : "", { timeZone: approval.timeZone, catchUp: approval.catchUp }).pipe(
    Either.mapBoth({
      onLeft: (message) => new BadInput({ message: `mission ${mission.mission_id} cannot be armed: ${message} (nothing was changed)` }),
      onRight: (recurrence) => ({ time_zone: recurrence.zone.id, catch_up: recurrence.catchUp, armed_at: at })
    })
  )
}

const describeMissing = (blueprint: Blueprint.Blueprint, names: ReadonlyArray<string>) =>
  names.map((name) => {
    const slot = blueprint.slots.find((s) => s.name === name)
    return slot === undefined ? name : `${name} (${Blueprint.describeSlotType(slot)})`
  }).join(", ")

export const make = Effect.gen(function*() {
  const store = yield* MissionStore.MissionStore
  const inTransaction = yield* Transaction.Transaction

  const find = (project: string, missionId: string) =>
    checkProject(project).pipe(
      Effect.zipRight(store.get(project, missionId)),
      Effect.flatMap(Option.match({
        onNone: () => Effect.fail(new MissionNotFound({ mission_id: missionId, project_id: project })),
        onSome: Effect.succeed
      }))
    )

  /**
   * One step of the lifecycle: `decide` judges the mission as read and gives what to write (none: leave
   * it as it is). The write goes through only if nobody moved the mission meanwhile; if somebody did,
   * the step is judged again against where it is now. This ends: a write that beats ours moves the
   * mission forward, and the lifecycle has no cycles.
   */
  const step = <E>(
    project: string,
    missionId: string,
    decide: (mission: MissionRecord, at: string) => Effect.Effect<Option.Option<{ readonly next: MissionRecord; readonly steps: ReadonlyArray<MissionStore.NewTransition> }>, E>
  ): Effect.Effect<{ readonly mission: MissionRecord; readonly changed: boolean }, E | Failure> =>
    Effect.gen(function*() {
      for (;;) {
        const mission = yield* find(project, missionId)
        const decided = yield* decide(mission, yield* now)
        if (Option.isNone(decided)) return { mission, changed: false }
        const { next, steps } = decided.value
        // A mission's run writes while another process moves the mission (a cancel): a busy database is waited out.
        const written = yield* Database.retryBusy(inTransaction(store.advance(next, mission.status, steps)))
        if (Option.isSome(written)) return { mission: next, changed: true }
      }
    })

  const create = (input: NewMission) =>
    Effect.gen(function*() {
      const project = yield* checkProject(input.project)
      const { blueprint } = input
      if (input.goal.trim() === "") return yield* new BadInput({ message: "a mission needs a goal: non-empty text" })
      const problems = Blueprint.problems(blueprint)
      if (problems.length > 0) {
        return yield* new BadInput({ message: `blueprint ${blueprint.id} cannot make a mission: ${Blueprint.describeProblems(problems)}` })
      }
      const unknown = unknownSlots(blueprint, [...Object.keys(input.slots), ...input.missing], "the")
      if (unknown !== undefined) return yield* unknown
      const given = validated(blueprint, input.slots)
      if (Either.isLeft(given)) return yield* new BadInput({ message: given.left })
      // Defaults fill what was not given and is not missing (`problems` has checked them against their slots).
      const defaults = blueprint.slots.flatMap((slot) =>
        slot.name in given.right || input.missing.includes(slot.name) || slot.default === undefined
          ? []
          : Either.match(Blueprint.slotValue(slot, slot.default), { onLeft: () => [], onRight: (value) => [[slot.name, value] as const] })
      )
      const slots: Blueprint.SlotValues = { ...given.right, ...Object.fromEntries(defaults) }
      const missing = Arr.dedupe([
        ...input.missing.filter((name) => !(name in slots)),
        ...blueprint.slots.filter((slot) => slot.required && !(slot.name in slots)).map((slot) => slot.name)
      ])
      const at = yield* now
      const mission = new MissionRecord({
        mission_id: yield* newMissionId,
        project_id: project,
        goal: input.goal,
        blueprint,
        slots,
        missing_slots: missing,
        status: "draft",
        preview: preview(blueprint, slots, missing),
        created_at: at,
        updated_at: at
      })
      yield* Database.retryBusy(inTransaction(store.insert(mission, { from: null, to: "draft", actor: input.actor, at, reason: input.reason })))
      return mission
    })

  const approve = (project: string, missionId: string, approval: Approval) =>
    Effect.map(
      step(project, missionId, (mission, at) =>
        Effect.gen(function*() {
          const { blueprint } = mission
          const approved = transition(mission, "approve")
          if (Either.isLeft(approved)) return yield* approved.left
          const given = approval.slots ?? {}
          const unknown = unknownSlots(blueprint, Object.keys(given), `mission ${missionId}'s`)
          if (unknown !== undefined) return yield* unknown
          const values = validated(blueprint, given)
          if (Either.isLeft(values)) return yield* new BadInput({ message: values.left })
          const slots = { ...mission.slots, ...values.right }
          const missing = mission.missing_slots.filter((name) => !(name in values.right))
          if (missing.length > 0) {
            return yield* new BadInput({
              message: `mission ${missionId} cannot be approved while required slots are missing: ${describeMissing(blueprint, missing)}; ` +
                "give them with --slot name=value, all in one approve (nothing was changed)"
            })
          }
          const scheduled = transition({ ...mission, status: approved.right }, "schedule")
          if (Either.isLeft(scheduled)) return yield* scheduled.left
          const schedule = scheduleOf(mission, slots, approval, at)
          if (Either.isLeft(schedule)) return yield* schedule.left
          const armed = schedule.right
          const names = Object.keys(given)
          const reason = approval.reason ?? (names.length === 0 ? "approved" : `approved with ${names.join(", ")} given`)
          return Option.some({
            next: new MissionRecord({
              ...mission,
              slots,
              missing_slots: missing,
              status: scheduled.right,
              preview: preview(blueprint, slots, missing),
              updated_at: at,
              ...(armed === undefined ? {} : { schedule: armed })
            }),
            steps: [
              { from: mission.status, to: approved.right, actor: approval.actor, at, reason },
              {
                from: approved.right,
                to: scheduled.right,
                actor: approval.actor,
                at,
                reason: armed === undefined
                  ? "every required slot has a value: ready to run"
                  : `every required slot has a value: fires on ${slots[Recurrence.cronSlotOf(blueprint)!.name]} in ${armed.time_zone}, catch-up ${armed.catch_up}`
              }
            ]
          })
        })),
      ({ mission }) => mission
    )

  const advance = (project: string, missionId: string, action: Action, actor: string, reason: string) =>
    action === "approve"
      ? approve(project, missionId, { actor, reason })
      : Effect.map(
        step(project, missionId, (mission, at) =>
          Either.match(transition(mission, action), {
            onLeft: Effect.fail,
            onRight: (next) =>
              Effect.succeedSome({
                next: new MissionRecord({ ...mission, status: next, updated_at: at }),
                steps: [{ from: mission.status, to: next, actor, at, reason }]
              })
          })),
        ({ mission }) => mission
      )

  const cancel = (project: string, missionId: string, actor: string, reason?: string) =>
    Effect.map(
      step(project, missionId, (mission, at) =>
        // The lifecycle refuses to cancel exactly the missions that have ended: those are left as they are.
        Effect.succeed(Option.map(Either.getRight(transition(mission, "cancel")), (next) => ({
          next: new MissionRecord({ ...mission, status: next, updated_at: at }),
          steps: [{ from: mission.status, to: next, actor, at, reason: reason ?? `cancelled while ${mission.status}` }]
        })))),
      ({ changed, mission }): Cancellation => ({
        cancelled: changed,
        mission,
        message: changed
          ? `mission ${missionId} cancelled`
          : mission.status === "cancelled"
          ? `mission ${missionId} was already cancelled: nothing changed`
          : `mission ${missionId} has already ended (${mission.status}): cancelling it has no effect`
      })
    )

  return Missions.of({
    create,
    get: find,
    list: (project, filter = {}) => Effect.flatMap(checkProject(project), (p) => store.list(p, filter.status ?? [])),
    show: (project, missionId) =>
      Effect.gen(function*() {
        const mission = yield* find(project, missionId)
        return { mission, transitions: yield* store.transitions(mission.mission_id) }
      }),
    approve,
    cancel,
    advance
  })
})

/** Over whatever database is provided; migrates its tables. */
export const layer: Layer.Layer<Missions, never, SqlClient.SqlClient> = Layer.effect(Missions, make).pipe(
  Layer.provide(Layer.merge(MissionStore.layer, Transaction.layer))
)

/**
 * Runs an approved mission's agent graph to its end, or resumes one that was stopped or cut off: the
 * `MissionRunner` service, called as `Missions.run` in the library.
 */
export const run = (project: string, missionId: string, options: MissionRunner.RunOptions) =>
  Effect.flatMap(MissionRunner.MissionRunner, (runner) => runner.run(project, missionId, options))
