import * as Http from "node:http"
import { HttpApi, HttpServerRequest } from "@effect/platform"
import { assert, it } from "@effect/vitest"
import { Context, Effect, FastCheck as fc, Layer, TestClock } from "effect"
import { AutopilotApi } from "../../src/api/Api.js"
import { maxBodyBytes } from "../../src/api/ApiServer.js"
import { Authorization, type Caller, layer as authorization } from "../../src/api/Authorization.js"
import * as ApiSessions from "../../src/auth/ApiSessions.js"
import { ApiTokens } from "../../src/auth/ApiTokens.js"
import * as Database from "../../src/store/Database.js"
import { sqlite } from "../support/Databases.js"
import { environmentWith, goal, runMission, script } from "../runtime/fixtures.js"
import { http, serve } from "./fixtures.js"

const releaseGoal = "write release notes for v2.1 from the changelog"

/** Every route of the API as a request with made-up ids, but signing in (the one route without a token). */
const everyRoute = (() => {
  const out: Array<{ method: string; path: string }> = []
  HttpApi.reflect(AutopilotApi, {
    onGroup: () => {},
    onEndpoint: ({ endpoint, group }) => {
      if (group.identifier !== "signIn") out.push({ method: endpoint.method, path: endpoint.path.replace(/:[^/]+/g, "x-1") })
    }
  })
  return out
})()

const errorShape = (response: { readonly json: any }, code: string) => {
  assert.deepStrictEqual(Object.keys(response.json ?? {}), ["error"], JSON.stringify(response.json))
  assert.strictEqual(response.json.error.code, code)
  assert.isString(response.json.error.message)
  assert.notMatch(response.json.error.message, /\n|at .*\.ts:\d+/, "one line, no stack")
}

/** A server on SQLite in memory, on the test's clock. */
const setup = Effect.map(serve(Database.layerSqlite(":memory:")), (served) => ({ ...served, call: http(served.base) }))

it.scoped("every route but signing in refuses a request without a token, or with one that is not a token, with a 401", () =>
  Effect.gen(function*() {
    const { call } = yield* setup
    assert.isAtLeast(everyRoute.length, 25)
    for (const route of everyRoute) {
      const none = yield* call(route.method, route.path, route.method === "GET" || route.method === "DELETE" ? {} : { body: {} })
      assert.strictEqual(none.status, 401, `${route.method} ${route.path}`)
      errorShape(none, "unauthorized")
      const wrong = yield* call(route.method, route.path, { token: "not-a-token" })
      assert.strictEqual(wrong.status, 401, `${route.method} ${route.path}`)
    }
    const basic = yield* call("GET", "/api/v1/autopilot/status", { headers: { authorization: "Basic abc" } })
    assert.strictEqual(basic.status, 401)
    assert.match(basic.json.error.message, /Bearer/)
  }))

it.scoped("a caller's stillAllowed (what an open event stream asks at each keep-alive) turns false once its token is revoked", () =>
  Effect.gen(function*() {
    const { context, tokens } = yield* setup
    const middleware = yield* Effect.provide(
      Authorization,
      authorization.pipe(Layer.provide(ApiSessions.layer), Layer.provide(Layer.succeedContext(context)))
    )
    const request = HttpServerRequest.fromWeb(new Request("http://autopilot/api/v1/autopilot/runs", { headers: { authorization: `Bearer ${tokens.p1}` } }))
    // The middleware reads only the request; its type names every route context it may be run in.
    const caller = yield* (middleware as unknown as Effect.Effect<Caller, unknown, HttpServerRequest.HttpServerRequest>).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request),
      Effect.orDie
    )
    assert.isTrue(yield* caller.stillAllowed)
    const service = Context.get(context, ApiTokens)
    const [record] = yield* service.list({ project: "p1" })
    yield* service.revoke(record!.id)
    assert.isFalse(yield* caller.stillAllowed, "a revoked token no longer holds")
  }))

it.scoped("a revoked token is refused at once, an expired one once its time has passed", () =>
  Effect.gen(function*() {
    const { call, context, tokens } = yield* setup
    const service = Context.get(context, ApiTokens)
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.p1 })).status, 200)
    const [record] = yield* service.list({ project: "p1" })
    yield* service.revoke(record!.id)
    const revoked = yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.p1 })
    assert.strictEqual(revoked.status, 401)
    errorShape(revoked, "unauthorized")

    const { token: shortLived } = yield* service.create({ project: "p3", expiresInDays: 1 })
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/missions", { token: shortLived })).status, 200)
    yield* TestClock.adjust("25 hours")
    const expired = yield* call("GET", "/api/v1/autopilot/missions", { token: shortLived })
    assert.strictEqual(expired.status, 401)
    assert.match(expired.json.error.message, /expired/)
  }))

it.scoped("a project token cannot see or touch another project's missions, runs or queue: 404, as if absent", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { call, context, tokens } = yield* Effect.map(serve(db), (served) => ({ ...served, call: http(served.base) }))
    const service = Context.get(context, ApiTokens)
    const projects = ["p1", "p2", "p3"] as const
    const tokenOf: Record<string, string> = {}
    for (const project of projects) tokenOf[project] = (yield* service.create({ project })).token
    // One draft mission and one queued run in each project, made by that project's own token.
    const missionOf: Record<string, string> = {}
    const entryOf: Record<string, string> = {}
    for (const project of projects) {
      yield* runMission({ runId: `run-of-${project}`, goal: goal(1), project }, script([{ criteria_met: [true] }])).pipe(
        Effect.provide(environmentWith([], db))
      )
      const made = yield* call("POST", "/api/v1/autopilot/goal", { token: tokenOf[project]!, body: { goal: releaseGoal } })
      assert.strictEqual(made.status, 200)
      missionOf[project] = made.json.mission_id
      const queued = yield* call("POST", "/api/v1/autopilot/queue", { token: tokenOf[project]!, body: { objective: `work for ${project}` } })
      assert.strictEqual(queued.status, 201)
      entryOf[project] = queued.json.id
    }
    // Every request about one project's mission or run; the last, which cancels, is left out of the property.
    const requests: ReadonlyArray<(owner: string) => readonly [string, string, object | undefined]> = [
      (owner) => ["GET", `/api/v1/autopilot/missions/${missionOf[owner]}`, undefined],
      (owner) => ["POST", `/api/v1/autopilot/missions/${missionOf[owner]}/approve`, { slots: { changes: "x", version: "1" } }],
      (owner) => ["POST", `/api/v1/autopilot/missions/${missionOf[owner]}/stop`, {}],
      (owner) => ["GET", `/api/v1/autopilot/missions/${missionOf[owner]}/events`, undefined],
      (owner) => ["GET", `/api/v1/autopilot/runs/run-of-${owner}`, undefined],
      (owner) => ["GET", `/api/v1/autopilot/runs/run-of-${owner}/events`, undefined],
      (owner) => ["GET", `/api/v1/autopilot/runs/run-of-${owner}/artifacts`, undefined],
      (owner) => ["GET", `/api/v1/autopilot/runs/run-of-${owner}/artifact?name=x`, undefined],
      (owner) => ["POST", `/api/v1/autopilot/runs/run-of-${owner}/stop`, {}],
      (owner) => ["DELETE", `/api/v1/autopilot/missions/${missionOf[owner]}`, undefined]
    ]
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...projects),
          fc.constantFrom(...projects),
          fc.integer({ min: 0, max: requests.length - 2 }),
          fc.boolean(),
          async (asker, owner, which, viaHeader) => {
            const [method, path, body] = requests[which]!(owner)
            const headers: Record<string, string> = viaHeader ? { "x-project-id": owner } : {}
            const answer = await Effect.runPromise(call(method, path, { token: tokenOf[asker]!, headers, ...(body === undefined ? {} : { body }) }))
            if (asker !== owner) {
              assert.strictEqual(answer.status, 404, `${asker} asking ${method} ${path} of ${owner}`)
              errorShape(answer, "not_found")
            } else if (!path.includes("artifact?")) assert.notStrictEqual(answer.status, 404, `${asker} asking for its own ${method} ${path}: ${answer.text}`)
            const listed = await Effect.runPromise(call("GET", "/api/v1/autopilot/missions", { token: tokenOf[asker]!, headers }))
            if (asker !== owner && viaHeader) assert.strictEqual(listed.status, 404)
            else assert.deepStrictEqual(listed.json.map((m: { mission_id: string }) => m.mission_id), [missionOf[asker]])
            const runs = await Effect.runPromise(call("GET", "/api/v1/autopilot/runs", { token: tokenOf[asker]! }))
            assert.deepStrictEqual(runs.json.map((r: { run_id: string }) => r.run_id), [`run-of-${asker}`])
            const removed = await Effect.runPromise(call("DELETE", `/api/v1/autopilot/queue/${entryOf[owner]}`, { token: tokenOf[asker]!, headers: {} }))
            if (asker !== owner) assert.strictEqual(removed.status, 404)
            else {
              assert.strictEqual(removed.status, 200)
              // Queued again for the runs that follow.
              const queued = await Effect.runPromise(call("POST", "/api/v1/autopilot/queue", { token: tokenOf[owner]!, body: { objective: `work for ${owner}` } }))
              entryOf[owner] = queued.json.id
            }
          }
        ),
        { numRuns: 60 }
      )
    )
    // The admin sees every project through X-Project-ID, and the default project without it.
    for (const project of projects) {
      const listed = yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.admin, headers: { "x-project-id": project } })
      assert.deepStrictEqual(listed.json.map((m: { mission_id: string }) => m.mission_id), [missionOf[project]])
    }
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.admin })).json, [])
  }), 120_000)

it.scoped("signing in sets an HttpOnly, SameSite=Strict cookie; changes made with it need the CSRF token", () =>
  Effect.gen(function*() {
    const { call, tokens } = yield* setup
    // A form another site could post (a sign-in CSRF) is refused before it is read, and sets no cookie.
    const form = yield* call("POST", "/api/v1/session", { body: `token=${tokens.p1}`, headers: { "content-type": "application/x-www-form-urlencoded" } })
    assert.strictEqual(form.status, 400)
    assert.match(form.json.error.message, /must be application\/json/)
    assert.isNull(form.headers.get("set-cookie"))
    const refused = yield* call("POST", "/api/v1/session", { body: { token: "nope" } })
    assert.strictEqual(refused.status, 401)
    errorShape(refused, "unauthorized")
    const signedIn = yield* call("POST", "/api/v1/session", { body: { token: tokens.p1 } })
    assert.strictEqual(signedIn.status, 200)
    assert.deepStrictEqual([signedIn.json.admin, signedIn.json.project], [false, "p1"])
    const setCookie = signedIn.headers.get("set-cookie") ?? ""
    assert.match(setCookie, /^autopilot_auth=/)
    assert.match(setCookie, /HttpOnly/i)
    assert.match(setCookie, /SameSite=Strict/i)
    assert.match(setCookie, /Path=\//)
    const cookie = { cookie: setCookie.split(";")[0]! }

    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/missions", { headers: cookie })).status, 200)
    const again = yield* call("GET", "/api/v1/session", { headers: cookie })
    assert.strictEqual(again.json.csrf_token, signedIn.json.csrf_token)
    const noCsrf = yield* call("POST", "/api/v1/autopilot/goal", { headers: cookie, body: { goal: releaseGoal } })
    assert.strictEqual(noCsrf.status, 403)
    errorShape(noCsrf, "forbidden")
    const wrongCsrf = yield* call("POST", "/api/v1/autopilot/goal", { headers: { ...cookie, "x-csrf-token": "0".repeat(64) }, body: { goal: releaseGoal } })
    assert.strictEqual(wrongCsrf.status, 403)
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/missions", { headers: cookie })).json, [], "nothing was made")
    const withCsrf = yield* call("POST", "/api/v1/autopilot/goal", {
      headers: { ...cookie, "x-csrf-token": signedIn.json.csrf_token },
      body: { goal: releaseGoal }
    })
    assert.strictEqual(withCsrf.status, 200)
    const out = yield* call("DELETE", "/api/v1/session", { headers: { ...cookie, "x-csrf-token": signedIn.json.csrf_token } })
    assert.strictEqual(out.status, 200)
    assert.match(out.headers.get("set-cookie") ?? "", /autopilot_auth=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i)
  }))

it.scoped("the cookie names a server-side session, not the token: signing out, 12 hours or revoking the token ends it", () =>
  Effect.gen(function*() {
    const { call, context, tokens } = yield* setup
    const signIn = (token: string, headers: Record<string, string> = {}) =>
      Effect.map(call("POST", "/api/v1/session", { body: { token }, headers }), (answer) => {
        assert.strictEqual(answer.status, 200, answer.text)
        const setCookie = answer.headers.get("set-cookie") ?? ""
        return { json: answer.json, setCookie, cookie: { cookie: setCookie.split(";")[0]! } }
      })
    const missions = (cookie: Record<string, string>) => Effect.map(call("GET", "/api/v1/autopilot/missions", { headers: cookie }), (a) => a.status)

    const first = yield* signIn(tokens.p1)
    const value = first.cookie.cookie.slice("autopilot_auth=".length)
    assert.match(value, /^aps_[A-Za-z0-9_-]{43}$/)
    assert.notInclude(first.setCookie, tokens.p1)
    assert.match(first.setCookie, /Max-Age=43200/)
    assert.notMatch(first.setCookie, /Secure/i, "plain HTTP, no --secure-cookie")
    assert.deepStrictEqual([first.json.admin, first.json.project], [false, "p1"])
    assert.strictEqual(first.json.expires_at, "1970-01-01T12:00:00.000Z", "12 hours on the server's clock")
    // The token itself is no cookie: only a session id is.
    assert.strictEqual(yield* missions({ cookie: `autopilot_auth=${tokens.p1}` }), 401)

    // Each session its own CSRF token: another session's does not do.
    const second = yield* signIn(tokens.p1)
    assert.notStrictEqual(second.json.csrf_token, first.json.csrf_token)
    const crossed = yield* call("POST", "/api/v1/autopilot/goal", { headers: { ...first.cookie, "x-csrf-token": second.json.csrf_token }, body: { goal: releaseGoal } })
    assert.strictEqual(crossed.status, 403)
    // GET /session reads the caller's session; with a Bearer token there is none, only who it is.
    assert.deepStrictEqual((yield* call("GET", "/api/v1/session", { headers: first.cookie })).json, first.json)
    assert.deepStrictEqual((yield* call("GET", "/api/v1/session", { token: tokens.p1 })).json, { admin: false, project: "p1" })

    // Signing out ends the session on the server: a copy of the cookie kept is refused from then on.
    const out = yield* call("DELETE", "/api/v1/session", { headers: { ...first.cookie, "x-csrf-token": first.json.csrf_token } })
    assert.strictEqual(out.status, 200)
    const after = yield* call("GET", "/api/v1/autopilot/missions", { headers: first.cookie })
    assert.strictEqual(after.status, 401)
    assert.match(after.json.error.message, /session has ended/)
    assert.strictEqual(yield* missions(second.cookie), 200, "the other session is not ended")

    // Signing in again from the same browser replaces its session.
    const third = yield* signIn(tokens.p1, second.cookie)
    assert.strictEqual(yield* missions(second.cookie), 401)
    assert.strictEqual(yield* missions(third.cookie), 200)

    // Revoking the token ends its sessions.
    const service = Context.get(context, ApiTokens)
    const [record] = yield* service.list({ project: "p1" })
    yield* service.revoke(record!.id)
    assert.strictEqual(yield* missions(third.cookie), 401)

    // 12 hours from signing in, however much it is used.
    const admin = yield* signIn(tokens.admin)
    yield* TestClock.adjust("11 hours")
    assert.strictEqual(yield* missions(admin.cookie), 200)
    yield* TestClock.adjust("1 hour")
    assert.strictEqual(yield* missions(admin.cookie), 401)
  }))

it.scoped("only the admin token changes the instance's settings; X-Project-ID is checked", () =>
  Effect.gen(function*() {
    const { call, tokens } = yield* setup
    const forbidden = yield* call("POST", "/api/v1/autopilot/disable", { token: tokens.p1 })
    assert.strictEqual(forbidden.status, 403)
    errorShape(forbidden, "forbidden")
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/status", { token: tokens.p1 })).json.enabled, true, "nothing changed")
    assert.strictEqual((yield* call("POST", "/api/v1/autopilot/disable", { token: tokens.admin })).status, 200)
    const bad = yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.admin, headers: { "x-project-id": "no spaces allowed" } })
    assert.strictEqual(bad.status, 400)
    assert.match(bad.json.error.message, /X-Project-ID/)
  }))

it.scoped("bad input gets the right 4xx in the one error shape, and writes nothing", () =>
  Effect.gen(function*() {
    const { call, tokens } = yield* setup
    const token = tokens.admin
    const cases = [
      [yield* call("POST", "/api/v1/autopilot/goal", { token, body: "{not json" }), 400, /not valid JSON/],
      [yield* call("POST", "/api/v1/autopilot/goal", { token, body: { goal: 5 } }), 400, /goal: Expected string/],
      [yield* call("POST", "/api/v1/autopilot/goal", { token, body: { goal: "" } }), 400, /goal/],
      [yield* call("POST", "/api/v1/autopilot/goal", { token, body: { goal: "x".repeat(maxBodyBytes + 1) } }), 413, /over the limit/],
      [yield* call("POST", "/api/v1/autopilot/enable", { token, body: { tier: "platinum" } }), 400, /tier/],
      [yield* call("POST", "/api/v1/autopilot/queue", { token, body: { objective: "x", priority: 101 } }), 400, /priority/],
      [yield* call("GET", "/api/v1/autopilot/runs?limit=0", { token }), 400, /limit/],
      [yield* call("GET", "/api/v1/autopilot/nothing", { token }), 404, /no route GET/],
      [yield* call("PATCH", "/api/v1/autopilot/missions/ms-1", { token }), 405, /takes GET, DELETE/],
      [yield* call("GET", "/api/v1/autopilot/missions/ms-nope", { token }), 404, /no mission "ms-nope"/],
      [yield* call("POST", "/api/v1/autopilot/missions/ms-nope/approve", { token, body: {} }), 404, /no mission/]
    ] as const
    for (const [response, status, message] of cases) {
      assert.strictEqual(response.status, status, response.text)
      assert.match(response.json.error.message, message)
      assert.deepStrictEqual(Object.keys(response.json), ["error"])
    }
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/missions", { token })).json, [])
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/queue", { token })).json, [])
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/status", { token })).json.tier, "anonymous")
  }))

it.scoped("POST /queue with a run_id taken in another project tells nothing of that project: the same 409 as any taken id", () =>
  Effect.gen(function*() {
    const db = yield* sqlite.shared
    const { call, tokens } = yield* Effect.map(serve(db), (served) => ({ ...served, call: http(served.base) }))
    yield* runMission({ runId: "p1-done", goal: goal(1), project: "p1" }, script([{ criteria_met: [true] }])).pipe(Effect.provide(environmentWith([], db)))
    yield* runMission({ runId: "p2-done", goal: goal(1), project: "p2" }, script([{ criteria_met: [true] }])).pipe(Effect.provide(environmentWith([], db)))
    assert.strictEqual((yield* call("POST", "/api/v1/autopilot/queue", { token: tokens.p1, body: { objective: "x", run_id: "p1-queued" } })).status, 201)
    const answers = []
    for (const runId of ["p1-done", "p1-queued", "p2-done"]) {
      const answer = yield* call("POST", "/api/v1/autopilot/queue", { token: tokens.p2, body: { objective: "y", run_id: runId } })
      assert.strictEqual(answer.status, 409, answer.text)
      errorShape(answer, "conflict")
      answers.push(answer.json.error.message.replace(runId, "ID"))
    }
    // Another project's finished run, its queued entry and p2's own run: one answer, no status, no project.
    assert.strictEqual(new Set(answers).size, 1, answers.join(" | "))
    assert.notMatch(answers[0]!, /completed|queued|status|p1/)
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/queue", { token: tokens.p2 })).json, [], "nothing was queued")
  }))

it.scoped("a body over the limit is a 413 whether it says its length or comes chunked; POST / is a 405 that names GET, as any known path", () =>
  Effect.gen(function*() {
    const { base, call, tokens } = yield* setup
    const chunked = (size: number) =>
      Effect.promise(async () => {
        // A goal, then blanks (JSON allows them) in pieces until the size is reached.
        const piece = new TextEncoder().encode(" ".repeat(16 * 1024))
        let sent = 0
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(JSON.stringify({ goal: releaseGoal })))
          },
          pull(controller) {
            if (sent >= size) return controller.close()
            sent += piece.length
            controller.enqueue(piece)
          }
        })
        const response = await fetch(`${base}/api/v1/autopilot/goal`, {
          method: "POST",
          headers: { authorization: `Bearer ${tokens.admin}`, "content-type": "application/json" },
          body,
          duplex: "half"
        } as RequestInit)
        return { status: response.status, json: await response.json() as any }
      })
    const over = yield* chunked(maxBodyBytes + 64 * 1024)
    assert.strictEqual(over.status, 413, JSON.stringify(over.json))
    errorShape(over, "payload_too_large")
    assert.match(over.json.error.message, /over the limit of 262144 bytes/)
    // Under the limit, chunked is read as any body.
    const under = yield* chunked(64 * 1024)
    assert.strictEqual(under.status, 200, JSON.stringify(under.json))
    assert.strictEqual(under.json.kind, "auto_routed")

    const post = yield* call("POST", "/", { body: {} })
    assert.strictEqual(post.status, 405, post.text)
    errorShape(post, "method_not_allowed")
    assert.strictEqual(post.headers.get("allow"), "GET")
    const patch = yield* call("PATCH", "/api/v1/autopilot/missions/ms-1", { token: tokens.admin })
    assert.strictEqual(patch.headers.get("allow"), "GET, DELETE")
  }))

it.scoped("a chunked GET and a body without a Content-Type are 400s, and the server is still there after them", () =>
  Effect.gen(function*() {
    const { base, call, tokens } = yield* setup
    // What no fetch sends: a GET whose body comes chunked, and a POST body with no type, written by hand.
    const raw = (method: string, path: string, headers: Record<string, string>, body: string) =>
      Effect.async<{ status: number; json: any }>((resume) => {
        const request = Http.request(`${base}${path}`, { method, headers: { authorization: `Bearer ${tokens.admin}`, ...headers } }, (response) => {
          let text = ""
          response.on("data", (chunk) => (text += chunk))
          response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, json: JSON.parse(text) })))
        })
        request.on("error", (error) => resume(Effect.die(error)))
        request.end(body)
      })
    const get = yield* raw("GET", "/api/v1/autopilot/status", { "transfer-encoding": "chunked", "content-type": "application/json" }, "{}")
    assert.strictEqual(get.status, 400, JSON.stringify(get.json))
    assert.strictEqual(get.json.error.message, "a GET request takes no body")
    const untyped = yield* raw("POST", "/api/v1/autopilot/goal", { "content-length": "2" }, "{}")
    assert.strictEqual(untyped.status, 400, JSON.stringify(untyped.json))
    assert.strictEqual(untyped.json.error.message, "the request body must be application/json, not a body without a Content-Type")
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/status", { token: tokens.admin })).status, 200)
  }))

it.scoped("only the admin token synthesizes: a blueprint written joins the catalog of every project", () =>
  Effect.gen(function*() {
    const { call, tokens } = yield* setup
    const before = (yield* call("GET", "/api/v1/autopilot/blueprints", { token: tokens.p1 })).json.length
    const goal = { goal: "plan our team offsite in Lisbon", synthesize: true }
    const viaGoal = yield* call("POST", "/api/v1/autopilot/goal", { token: tokens.p1, body: goal })
    assert.strictEqual(viaGoal.status, 403, viaGoal.text)
    errorShape(viaGoal, "forbidden")
    assert.match(viaGoal.json.error.message, /only the admin token .* may synthesize blueprints/)
    const viaService = yield* call("POST", "/v1/blueprints/synthesize", { token: tokens.p1, body: { goal: goal.goal } })
    assert.strictEqual(viaService.status, 403, viaService.text)
    assert.strictEqual((yield* call("GET", "/api/v1/autopilot/blueprints", { token: tokens.p1 })).json.length, before, "nothing was written")
    assert.deepStrictEqual((yield* call("GET", "/api/v1/autopilot/missions", { token: tokens.p1 })).json, [])
    // Routing without synthesis stays the project's to do; the admin may synthesize.
    assert.strictEqual((yield* call("POST", "/api/v1/autopilot/goal", { token: tokens.p1, body: { goal: releaseGoal } })).status, 200)
    const admin = yield* call("POST", "/api/v1/autopilot/goal", { token: tokens.admin, body: goal })
    assert.strictEqual(admin.status, 200, admin.text)
    assert.strictEqual(admin.json.kind, "auto_routed")
  }))

it.scoped("the cookie is Secure with --secure-cookie, or when a trusted proxy says HTTPS; X-Forwarded-Proto from anyone else is not believed", () =>
  Effect.gen(function*() {
    const signIn = (cookies: Parameters<typeof serve>[1], headers: Record<string, string>) =>
      Effect.gen(function*() {
        const { call, tokens } = yield* Effect.map(serve(Database.layerSqlite(":memory:"), cookies), (served) => ({ ...served, call: http(served.base) }))
        const answer = yield* call("POST", "/api/v1/session", { body: { token: tokens.p1 }, headers })
        assert.strictEqual(answer.status, 200)
        const out = yield* call("DELETE", "/api/v1/session", { headers: { ...headers, cookie: answer.headers.get("set-cookie")!.split(";")[0]!, "x-csrf-token": answer.json.csrf_token } })
        return [/;\s*Secure/i.test(answer.headers.get("set-cookie") ?? ""), /;\s*Secure/i.test(out.headers.get("set-cookie") ?? "")]
      })
    const https = { "x-forwarded-proto": "https" }
    assert.deepStrictEqual(yield* signIn({}, https), [false, false], "no proxy trusted: the header is anyone's to send")
    assert.deepStrictEqual(yield* signIn({ trustedProxies: ["10.0.0.1"] }, https), [false, false], "a proxy, but not this peer")
    assert.deepStrictEqual(yield* signIn({ trustedProxies: ["127.0.0.1"] }, https), [true, true])
    assert.deepStrictEqual(yield* signIn({ trustedProxies: ["127.0.0.1"] }, { "x-forwarded-proto": "http" }), [false, false])
    assert.deepStrictEqual(yield* signIn({ secureCookie: true }, {}), [true, true])
  }))
