import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import { type Action, Actions, allowed, endAction, Ends, isEnd, type MissionStatus, MissionStatuses, transition } from "../../src/domain/MissionState.js"

/** The lifecycle as the issue states it, written out again rather than imported. */
const forward: ReadonlyArray<readonly [MissionStatus, Action, MissionStatus]> = [
  ["draft", "approve", "approved"],
  ["approved", "schedule", "scheduled"],
  ["scheduled", "start", "running"],
  ["running", "complete", "completed"],
  ["running", "partially_complete", "partial"],
  ["running", "halt", "halted"],
  ["running", "fail", "failed"],
  // A mission that stopped (a stop, a signal, its budget) is resumed as its run is.
  ["halted", "start", "running"],
  ["partial", "start", "running"]
]
const beforeAnEnd: ReadonlyArray<MissionStatus> = ["draft", "approved", "scheduled", "running", "halted", "partial"]

const reference = (status: MissionStatus, action: Action): MissionStatus | undefined =>
  action === "cancel"
    ? (beforeAnEnd.includes(status) ? "cancelled" : undefined)
    : forward.find(([from, by]) => from === status && by === action)?.[2]

const status = FastCheck.constantFrom(...MissionStatuses)
const action = FastCheck.constantFrom(...Actions)

describe("MissionState", () => {
  it.prop("agrees with the lifecycle of the issue for every status and action", [status, action], ([from, by]) => {
    const next = transition({ mission_id: "ms-1", status: from }, by)
    const expected = reference(from, by)
    if (expected === undefined) {
      assert.isTrue(Either.isLeft(next))
      if (Either.isLeft(next)) {
        assert.deepStrictEqual([next.left.status, next.left.action, next.left.mission_id], [from, by, "ms-1"])
        assert.match(next.left.message, new RegExp(`^cannot ${by.replace("_", " ")} mission ms-1: it is ${from} \\(`))
      }
    } else {
      assert.deepStrictEqual(next, Either.right(expected))
    }
    assert.strictEqual(allowed(from).includes(by), expected !== undefined)
  })

  it.prop(
    "over any sequence of actions from a draft: only legal steps are taken, an end is final, only a resume goes back",
    [FastCheck.array(action, { maxLength: 40 })],
    ([actions]) => {
      let current: MissionStatus = "draft"
      const visited: Array<MissionStatus> = [current]
      for (const by of actions) {
        const next = transition({ mission_id: "ms-1", status: current }, by)
        const expected = reference(current, by)
        assert.strictEqual(Either.isRight(next) ? next.right : undefined, expected)
        if (isEnd(current)) assert.isTrue(Either.isLeft(next), `${by} after the end ${current}`)
        if (Either.isRight(next)) {
          if (by !== "start" || current === "scheduled") assert.notInclude(visited, next.right, "only a resume comes back to running")
          current = next.right
          visited.push(current)
        }
      }
      // Cancelling works from wherever the sequence stopped, unless that is an end.
      assert.strictEqual(Either.isRight(transition({ mission_id: "ms-1", status: current }, "cancel")), !isEnd(current))
    }
  )

  it("cancels from every status before an end, and from no end", () => {
    for (const from of MissionStatuses) {
      assert.deepStrictEqual(
        Either.getRight(transition({ mission_id: "m", status: from }, "cancel"))._tag,
        Ends.includes(from) ? "None" : "Some",
        from
      )
    }
    assert.deepStrictEqual([...Ends].sort(), ["cancelled", "completed", "failed"])
  })

  it("names the state and the transition when refusing, and what is allowed instead", () => {
    const refused = (from: MissionStatus, by: Action) => Either.flip(transition({ mission_id: "ms-0123456789ab", status: from }, by)).pipe(Either.getOrThrow)
    assert.strictEqual(
      refused("running", "approve").message,
      "cannot approve mission ms-0123456789ab: it is running (a running mission can only be completed, partially completed, halted, failed or cancelled)"
    )
    assert.strictEqual(refused("draft", "start").message, "cannot start mission ms-0123456789ab: it is draft (a draft mission can only be approved or cancelled)")
    assert.strictEqual(refused("completed", "cancel").message, "cannot cancel mission ms-0123456789ab: it is completed (it has ended, and nothing follows an end)")
  })

  it("ends a running mission the way its run ended", () => {
    for (const runStatus of ["completed", "partial", "halted", "failed"] as const) {
      assert.deepStrictEqual(transition({ mission_id: "m", status: "running" }, endAction(runStatus)), Either.right(runStatus))
    }
  })
})
