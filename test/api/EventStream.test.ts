import * as Sse from "@effect/experimental/Sse"
import { assert, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, Queue, Ref, Scope, Stream, TestClock } from "effect"
import * as EventStream from "../../src/api/EventStream.js"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import { sqlite } from "../support/Databases.js"
import { environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { http, serve } from "./fixtures.js"

/** Reads an SSE response to its end (or `until` events), parsed by the platform's own parser. */
const read = (url: string, token: string, options: { readonly lastEventId?: string; readonly until?: number } = {}) =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` }
    if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId
    const response = await fetch(url, { headers })
    const events: Array<Sse.Event> = []
    const parser = Sse.makeParser((event) => {
      if (event._tag === "Event") events.push(event)
    })
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      parser.feed(decoder.decode(value, { stream: true }))
      if (options.until !== undefined && events.length >= options.until) {
        await reader.cancel()
        break
      }
    }
    return { status: response.status, contentType: response.headers.get("content-type"), events }
  })

const seqs = (events: ReadonlyArray<Sse.Event>) => events.filter((e) => e.id !== undefined).map((e) => Number(e.id))

it.scopedLive("replays a finished run's events, then ends after its result; Last-Event-ID resumes after that event", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { base, tokens } = yield* serve(db)
    yield* runMission({ runId: "r1", goal: goal(1) }, script([{}, { criteria_met: [true] }])).pipe(Effect.provide(environmentWith([], db)))
    const all = yield* read(`${base}/api/v1/autopilot/runs/r1/events`, tokens.admin)
    assert.strictEqual(all.status, 200)
    assert.match(all.contentType ?? "", /^text\/event-stream/)
    const numbered = seqs(all.events)
    assert.deepStrictEqual(numbered, numbered.map((_, i) => i), "every event once, in order, none missing, from run_started")
    assert.strictEqual(all.events[0]?.event, "run_started")
    assert.strictEqual(all.events.at(-1)?.event, "result")
    for (const event of all.events) assert.strictEqual((JSON.parse(event.data) as AutopilotEvent).kind, event.event)

    const rest = yield* read(`${base}/api/v1/autopilot/runs/r1/events`, tokens.admin, { lastEventId: "3" })
    assert.deepStrictEqual(seqs(rest.events), numbered.slice(4))
  }))

it.scopedLive("a run that is over answers 204 No Content to a client that has its every event, so an EventSource stops reconnecting", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { base, tokens } = yield* serve(db)
    yield* runMission({ runId: "over", goal: goal(1) }, script([{ criteria_met: [true] }])).pipe(Effect.provide(environmentWith([], db)))
    const url = `${base}/api/v1/autopilot/runs/over/events`
    const last = seqs((yield* read(url, tokens.admin)).events).at(-1)!
    const get = http(base)
    for (const path of ["/api/v1/autopilot/runs/over/events", "/api/v1/autopilot/runs/over/events?follow=false"]) {
      const done = yield* get("GET", path, { token: tokens.admin, headers: { "last-event-id": String(last) } })
      assert.strictEqual(done.status, 204, path)
      assert.strictEqual(done.text, "")
    }
    const before = yield* read(url, tokens.admin, { lastEventId: String(last - 1) })
    assert.strictEqual(before.status, 200)
    assert.deepStrictEqual(before.events.map((e) => [e.id, e.event]), [[String(last), "result"]])
    // Another project's client learns nothing, not even that the run is over.
    assert.strictEqual((yield* get("GET", "/api/v1/autopilot/runs/over/events", { token: tokens.p1, headers: { "last-event-id": String(last) } })).status, 404)
    // The OpenAPI document says so, beside the stream, for both routes of events.
    const openapi = yield* get("GET", "/api/v1/openapi.json")
    assert.strictEqual(openapi.status, 200)
    for (const path of ["/api/v1/autopilot/runs/{id}/events", "/api/v1/autopilot/missions/{id}/events"]) {
      const responses = openapi.json.paths[path]?.get?.responses
      assert.deepStrictEqual(Object.keys(responses?.["200"]?.content ?? {}), ["text/event-stream"], path)
      assert.isDefined(responses?.["204"], `${path} lists its 204`)
      assert.isUndefined(responses["204"].content, `${path}: a 204 has no body`)
      assert.match(responses["204"].description, /every event/)
    }
  }))

it.scopedLive("streams a running run's events live, as they are written, to its end", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { base, tokens } = yield* serve(db)
    const started = yield* Deferred.make<void>()
    const running = yield* Mission.run({
      runId: "live",
      goal: goal(1),
      policy: { max_iterations: 4 },
      onEvent: () => Deferred.succeed(started, undefined)
    }).pipe(
      Effect.provide(MockLlm.layer(script([{}], { latency_ms: 40 }))),
      Effect.provide(environmentWith([], db)),
      Effect.fork
    )
    yield* Deferred.await(started)
    const live = yield* read(`${base}/api/v1/autopilot/runs/live/events`, tokens.admin)
    yield* Fiber.join(running)
    const numbered = seqs(live.events)
    assert.deepStrictEqual(numbered, numbered.map((_, i) => i))
    assert.isAtLeast(live.events.filter((e) => e.event === "iteration").length, 4)
    assert.strictEqual(live.events.at(-1)?.event, "result")
  }))

it.scopedLive("the server's shutdown ends every open stream with a server_shutdown event", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const scope = yield* Scope.make()
    const { base, tokens } = yield* serve(db).pipe(Effect.provideService(Scope.Scope, scope))
    const started = yield* Deferred.make<void>()
    const running = yield* Mission.run({ runId: "slow", goal: goal(1), policy: { max_iterations: 1000 }, onEvent: () => Deferred.succeed(started, undefined) }).pipe(
      Effect.provide(MockLlm.layer(script([{}], { latency_ms: 200 }))),
      Effect.provide(environmentWith([], db)),
      Effect.fork
    )
    yield* Deferred.await(started)
    const clients = yield* Effect.forEach([1, 2, 3], () => Effect.fork(read(`${base}/api/v1/autopilot/runs/slow/events`, tokens.admin)))
    // Every client has its replay before the server goes.
    yield* Effect.forEach(clients, () => read(`${base}/api/v1/autopilot/runs/slow/events`, tokens.admin, { until: 1 }))
    yield* Scope.close(scope, Exit.void)
    for (const client of clients) {
      const { events } = yield* Fiber.join(client)
      assert.strictEqual(events.at(-1)?.event, "server_shutdown")
    }
    yield* Fiber.interrupt(running)
  }), 30_000)

it.scoped("a stream whose token or session has ended since it opened ends at the next keep-alive with an unauthorized event", () =>
  Effect.gen(function*() {
    const allowed = yield* Ref.make(true)
    const events = yield* Queue.unbounded<AutopilotEvent>()
    const frames = yield* EventStream.frames(Stream.fromQueue(events), undefined, undefined, Ref.get(allowed)).pipe(
      Effect.provideService(EventStream.ServerShutdown, yield* Deferred.make<void>()),
      Effect.provideService(EventStream.KeepAlive, Duration.seconds(15))
    )
    const collected = yield* Stream.runCollect(frames).pipe(Effect.fork)
    yield* TestClock.adjust("16 seconds")
    yield* Ref.set(allowed, false)
    yield* TestClock.adjust("15 seconds")
    const out = Chunk.toReadonlyArray(yield* Fiber.join(collected))
    assert.deepStrictEqual(out, [
      ": keep-alive\n\n",
      "event: unauthorized\ndata: {\"error\":{\"code\":\"unauthorized\",\"message\":\"the token or session this stream was opened with has ended\"}}\n\n"
    ])
  }))

it.scoped("an idle stream gets a keep-alive comment on the Clock, and a failed read ends it with an error event", () =>
  Effect.gen(function*() {
    const shutdown = yield* Deferred.make<void>()
    const events = yield* Queue.unbounded<AutopilotEvent>()
    const frames = yield* EventStream.frames(Stream.fromQueue(events), undefined).pipe(
      Effect.provideService(EventStream.ServerShutdown, shutdown),
      Effect.provideService(EventStream.KeepAlive, Duration.seconds(15))
    )
    const collected = yield* Stream.runCollect(frames).pipe(Effect.fork)
    yield* TestClock.adjust("31 seconds")
    yield* Deferred.succeed(shutdown, undefined)
    const out = Chunk.toReadonlyArray(yield* Fiber.join(collected))
    assert.deepStrictEqual(out.filter((f) => f.startsWith(":")), [": keep-alive\n\n", ": keep-alive\n\n"])
    assert.strictEqual(out.at(-1), "event: server_shutdown\ndata: {}\n\n")

    const failing = yield* EventStream.frames(Stream.fail({ _tag: "PersistenceError", message: "disk gone" }), undefined).pipe(
      Effect.provideService(EventStream.ServerShutdown, yield* Deferred.make<void>())
    )
    const ended = Chunk.toReadonlyArray(yield* Stream.runCollect(failing))
    assert.deepStrictEqual(ended, ["event: error\ndata: {\"error\":{\"code\":\"PersistenceError\",\"message\":\"disk gone\"}}\n\n"])
  }))

