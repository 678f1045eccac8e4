import { Either, Schema } from "effect"

/**
 * A mission's lifecycle, as the seed's controller has it: made as a `draft` from a goal, `approved` by a
 * person, `scheduled`, `running`, and ended as a run ends; `cancelled` at any point before an end. Pure,
 * so the store, the service and the property tests share one definition of what may follow what. Not to
 * be confused with `runtime/Mission.ts`, the loop that runs one mission's work.
 */

export const MissionStatuses = ["draft", "approved", "scheduled", "running", "completed", "partial", "halted", "failed", "cancelled"] as const
export const MissionStatus = Schema.Literal(...MissionStatuses)
export type MissionStatus = typeof MissionStatus.Type

/**
 * The statuses nothing follows: completed, failed and cancelled. A halted or partial mission has stopped
 * (a stop request, a signal, its budget) and may be resumed or cancelled.
 */
export const Ends: ReadonlyArray<MissionStatus> = ["completed", "failed", "cancelled"]

export const isEnd = (status: MissionStatus): boolean => Ends.includes(status)

export const Actions = ["approve", "schedule", "start", "complete", "partially_complete", "halt", "fail", "cancel"] as const
export const Action = Schema.Literal(...Actions)
export type Action = typeof Action.Type

/** Every legal step: from a status, by an action, to the next. Anything not listed is refused. */
const steps: Record<MissionStatus, Partial<Record<Action, MissionStatus>>> = {
  draft: { approve: "approved", cancel: "cancelled" },
  approved: { schedule: "scheduled", cancel: "cancelled" },
  scheduled: { start: "running", cancel: "cancelled" },
  running: { complete: "completed", partially_complete: "partial", halt: "halted", fail: "failed", cancel: "cancelled" },
  completed: {},
  // A halted or partial mission (a stop, a signal, its budget) is resumed by running it again, or cancelled.
  partial: { start: "running", cancel: "cancelled" },
  halted: { start: "running", cancel: "cancelled" },
  failed: {},
  cancelled: {}
}

/** The actions `status` allows, in the order of `Actions`. */
export const allowed = (status: MissionStatus): ReadonlyArray<Action> => Actions.filter((action) => steps[status][action] !== undefined)

/** The action that ends a running mission the way its run ended. */
export const endAction = (status: "completed" | "partial" | "halted" | "failed"): Action =>
  ({ completed: "complete", partial: "partially_complete", halted: "halt", failed: "fail" } as const)[status]

const participles: Record<Action, string> = {
  approve: "approved",
  schedule: "scheduled",
  start: "started",
  complete: "completed",
  partially_complete: "partially completed",
  halt: "halted",
  fail: "failed",
  cancel: "cancelled"
}

const verb = (action: Action) => action.replace("_", " ")

const orList = (words: ReadonlyArray<string>) =>
  words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`

/** An action the mission's status does not allow; says what is allowed instead. */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  mission_id: Schema.String,
  status: MissionStatus,
  action: Action
}) {
  get message() {
    const next = allowed(this.status)
    const instead = next.length === 0
      ? "it has ended, and nothing follows an end"
      : `a ${this.status} mission can only be ${orList(next.map((a) => participles[a]))}`
    return `cannot ${verb(this.action)} mission ${this.mission_id}: it is ${this.status} (${instead})`
  }
}

/** The status `action` leads to from `state`, or why it may not be taken. */
export const transition = (
  state: { readonly mission_id: string; readonly status: MissionStatus },
  action: Action
): Either.Either<MissionStatus, IllegalTransition> => {
  const next = steps[state.status][action]
  return next === undefined
    ? Either.left(new IllegalTransition({ mission_id: state.mission_id, status: state.status, action }))
    : Either.right(next)
}
