import * as Sse from "@effect/experimental/Sse"
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as LiveText from "../../src/runtime/LiveText.js"
import * as Mission from "../../src/runtime/Mission.js"
import { sqlite } from "../support/Databases.js"
import { environmentWith, goal, script } from "../runtime/fixtures.js"
import { serve } from "./fixtures.js"

/** An SSE response read to its end, every frame parsed by the platform's own parser. */
const read = (url: string, token: string, lastEventId?: string) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId
    const response = await fetch(url, { headers })
    const frames: Array<Sse.Event> = []
    const parser = Sse.makeParser((event) => {
      if (event._tag === "Event") frames.push(event)
    })
    const decoder = new TextDecoder()
    for await (const chunk of response.body!) parser.feed(decoder.decode(chunk, { stream: true }))
    return frames
  })

const seqs = (frames: ReadonlyArray<Sse.Event>) => frames.filter((f) => f.event !== "delta").map((f) => Number(f.id))
const deltasOf = (frames: ReadonlyArray<Sse.Event>) => frames.filter((f) => f.event === "delta")

const answer = Array.from({ length: 16 }, (_, i) => `word${i}`).join(" ")

it.scopedLive("a live run's stream carries its answer as delta frames without ids; ?deltas=false and an ended run's replay have none", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { base, tokens } = yield* serve(db)
    const started = yield* Deferred.make<void>()
    const running = yield* Mission.run({
      runId: "streaming",
      goal: goal(1),
      onEvent: (event) => (event.kind === "run_started" ? Deferred.succeed(started, undefined) : Effect.void)
    }).pipe(
      Effect.provide(LiveText.layer()),
      Effect.provide(MockLlm.layer(script([{ content: answer, delta_ms: 40 }, { content: answer, delta_ms: 40, criteria_met: [true] }]))),
      Effect.provide(environmentWith([], db)),
      Effect.fork
    )
    yield* Deferred.await(started)
    const url = `${base}/api/v1/autopilot/runs/streaming/events`
    const [live, without] = yield* Effect.all([read(url, tokens.admin), read(`${url}?deltas=false`, tokens.admin)], { concurrency: 2 })
    yield* Fiber.join(running)

    const numbered = seqs(live)
    assert.deepStrictEqual(numbered, numbered.map((_, i) => i), "every event once, in order, the deltas between them")
    assert.strictEqual(live.at(-1)?.event, "result")
    const deltas = deltasOf(live)
    assert.isAbove(deltas.length, 0, "the answer came as it was written")
    for (const frame of deltas) {
      assert.strictEqual(frame.id, undefined, "a delta names no event: Last-Event-ID keeps naming the last real one")
      assert.deepStrictEqual(Object.keys(JSON.parse(frame.data)), ["iteration", "purpose", "text"])
    }
    for (const iteration of [1, 2]) {
      const text = deltas.map((f) => JSON.parse(f.data)).filter((d) => d.iteration === iteration && d.purpose === "act").map((d) => d.text).join("")
      assert.isTrue(answer.startsWith(text), `iteration ${iteration}'s live text is its answer as written so far: ${JSON.stringify(text)}`)
    }
    assert.deepStrictEqual(deltasOf(without), [])
    assert.deepStrictEqual(seqs(without), numbered)

    // Reconnecting after an event: the events after it, as before; the run has ended, so no live text.
    const rest = yield* read(url, tokens.admin, "3")
    assert.deepStrictEqual(seqs(rest), numbered.slice(4))
    assert.deepStrictEqual(deltasOf(rest), [])
  }))
