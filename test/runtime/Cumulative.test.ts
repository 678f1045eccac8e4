import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck, Fiber, TestClock } from "effect"
import { Axes } from "../../src/domain/Budget.js"
import { RunStore } from "../../src/store/RunStore.js"
import { echo, environmentWith, goal, runMission, script } from "./fixtures.js"

/** One process's life: it runs some more iterations, and either ends by itself or is cut short. */
const Session = FastCheck.record({
  more: FastCheck.integer({ min: 1, max: 4 }),
  crashAfterMs: FastCheck.option(FastCheck.integer({ min: 0, max: 5000 }), { nil: undefined })
})

const mock = script([{
  tool_calls: [{ name: "echo", arguments: { text: "hi" } }],
  criteria_met: [false, false]
}], { latency_ms: 700 })

describe("cumulative usage", () => {
  it.effect.prop(
    "never decreases on any axis across any sequence of runs, crashes and resumes",
    [FastCheck.array(Session, { minLength: 1, maxLength: 6 })],
    ([sessions]) =>
      Effect.gen(function*() {
        const store = yield* RunStore
        let previous: Record<string, number> | undefined
        let done = 0
        for (const session of sessions) {
          const fiber = yield* runMission({
            runId: "r",
            resume: previous !== undefined,
            ...(previous === undefined ? { goal: goal() } : {}),
            policy: { max_iterations: done + session.more }
          }, mock).pipe(Effect.fork)
          if (session.crashAfterMs === undefined) {
            yield* TestClock.adjust(`${session.more} seconds`)
            yield* Fiber.join(fiber)
          } else {
            yield* TestClock.adjust(`${session.crashAfterMs} millis`)
            yield* Fiber.interrupt(fiber)
          }
          const loaded = yield* store.load("r")
          assert.strictEqual(loaded._tag, "Found")
          if (loaded._tag !== "Found") return
          const usage = loaded.checkpoint.usage
          for (const axis of Axes) {
            if (previous !== undefined) assert.isAtLeast(usage[axis], previous[axis]!, axis)
          }
          // One tool call and 1,200 tokens per finished iteration: nothing counted twice, nothing lost.
          assert.strictEqual(usage.tool_calls, usage.iterations)
          assert.strictEqual(usage.tokens, usage.iterations * 1200)
          previous = { ...usage }
          done = usage.iterations
        }
      }).pipe(Effect.provide(environmentWith([echo]))),
    { fastCheck: { numRuns: 40 } }
  )
})
