import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import * as Store from "../../src/store/EventStore.js"
import { EventStore } from "../../src/store/EventStore.js"
import { eachDatabase } from "../support/Databases.js"

const runId = () => `run-${randomBytes(6).toString("hex")}`

const numbered = (run_id: string, seq: number): AutopilotEvent => ({
  kind: "halt_requested",
  reason: `event ${seq}`,
  run_id,
  seq,
  at: "2026-12-02T00:00:00.000Z",
  remaining: { seconds: null, tool_calls: null, tokens: null, dollars: null, iterations: null }
}) as AutopilotEvent

const seqs = (page: Store.EventPage) => page.events.map((stored) => stored.event.seq)

eachDatabase("EventStore", (database) => {
  const store = Store.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("idAtSeq is where a run's log is read from to get its events after a seq, another run's rows between them", () =>
    Effect.gen(function*() {
      const events = yield* EventStore
      const [a, b] = [runId(), runId()]
      // Two runs written at once, their rows interleaved in the log.
      yield* events.append(Array.from({ length: 6 }, (_, i) => numbered(i % 2 === 0 ? a : b, Math.floor(i / 2))))
      yield* events.append([numbered(a, 3), numbered(a, 4)])
      assert.deepStrictEqual(seqs(yield* events.page(a, yield* events.idAtSeq(a, 1), 10)), [2, 3, 4])
      assert.deepStrictEqual(seqs(yield* events.page(a, yield* events.idAtSeq(a, 3), 10)), [4])
      assert.deepStrictEqual(seqs(yield* events.page(b, yield* events.idAtSeq(b, 0), 10)), [1, 2])
      // Its last event, or a seq beyond it (a client naming one the log never had): nothing after it.
      assert.deepStrictEqual(seqs(yield* events.page(a, yield* events.idAtSeq(a, 4), 10)), [])
      assert.deepStrictEqual(seqs(yield* events.page(a, yield* events.idAtSeq(a, 99), 10)), [])
      // No event up to the seq: the whole log, as from id 0.
      assert.strictEqual(yield* events.idAtSeq(runId(), 5), 0)
    }).pipe(Effect.provide(store)))
})
