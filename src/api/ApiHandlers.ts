import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, DateTime, type Duration, Effect, Layer, Option, ParseResult, Schema } from "effect"
import { ApiSessions, lifetime, type Session } from "../auth/ApiSessions.js"
import { type Axis, Axes, AxisLimits, capProblem } from "../domain/Budget.js"
import { Blueprint, toJson } from "../domain/Blueprint.js"
import { BadInput, RunNotFound } from "../domain/Errors.js"
import type * as LlmChoice from "../domain/LlmChoice.js"
import * as QueueEntry from "../domain/QueueEntry.js"
import { defaultProject, summaryJson } from "../domain/MissionRecord.js"
import { Specialist } from "../specialists/Specialist.js"
import * as MissionJson from "../missions/MissionJson.js"
import * as Schedules from "../missions/ScheduleView.js"
import { MissionRunner } from "../missions/MissionRunner.js"
import { Missions } from "../missions/Missions.js"
import { Settings } from "../missions/Settings.js"
import * as GoalQueue from "../queue/GoalQueue.js"
import { Blueprints } from "../routing/Blueprints.js"
import { Goals, shown } from "../routing/Goals.js"
import { GoalRouter } from "../routing/GoalRouter.js"
import { Synthesis } from "../routing/Synthesis.js"
import { RunArtifacts } from "../runtime/RunArtifacts.js"
import * as Runs from "../runtime/Runs.js"
import { Specialists } from "../specialists/Specialists.js"
import { ArtifactStore } from "../store/ArtifactStore.js"
import { FiringStore } from "../store/FiringStore.js"
import { AutopilotApi } from "./Api.js"
import { BadRequest, Conflict, fromService, mapService, NotFound, Unauthorized, Unavailable } from "./ApiError.js"
import { changeSettings, cookieName, CookiePolicy, CurrentCaller, requireAdmin, secureCookie, seeFineTunes, synthesizeBlueprints } from "./Authorization.js"
import { DeltaFeed } from "./DeltaFeed.js"
import { EventHub } from "./EventHub.js"
import * as EventStream from "./EventStream.js"
import * as FineTunesView from "./FineTunesView.js"
import * as Spend from "./Spend.js"

/** The model runs queued through the API, and synthesis, are given: `autopilot serve`'s `--llm`/`--model`. */
export class ServeModel extends Context.Tag("autopilot/api/ServeModel")<ServeModel, LlmChoice.LlmRequested>() {}

const caller = CurrentCaller

/**
 * Fails unless the caller's project owns the run: another project's run is not found, exactly as an unknown
 * id. A mission's run belongs to the mission's project. One read, of the run's project only: what follows
 * (its events, its artifacts, a stop) needs no more, and another project's run is not even decoded.
 */
const ownRun = (runId: string) =>
  Effect.gen(function*() {
    const { project } = yield* caller
    const runs = yield* Runs.Runs
    if ((yield* mapService(runs.project(runId))) !== project) return yield* new NotFound({ message: new RunNotFound({ run_id: runId }).message })
  })

/** The run as `show` gives it, if the caller's project owns it. */
const ownedRun = (runId: string, options: { readonly steps: number; readonly messages: boolean }) =>
  Effect.zipRight(ownRun(runId), Effect.flatMap(Runs.Runs, (runs) => mapService(runs.show(runId, options))))

const events = (runId: string, follow = true, deltas = false) =>
  Effect.gen(function*() {
    // Only whose it is: 200 clients joining a run at once should not each decode its checkpoint and last step.
    yield* ownRun(runId)
    const request = yield* HttpServerRequest.HttpServerRequest
    const after = EventStream.lastEventId(request.headers["last-event-id"])
    const hub = yield* EventHub
    // Without a Last-Event-ID the client has nothing yet: only a reconnecting one can have every event.
    if (after !== undefined && (yield* mapService(hub.ended(runId, after)))) return EventStream.ended
    // Followed live, through the run's one follower; the events so far, straight from the log.
    const events = follow ? hub.follow(runId, after) : (yield* Runs.Runs).events(runId, { follow: false, after })
    // The answer as it is written merged in while the events go on (an ended run has none left: its rows go
    // when its session ends, and its stream ends with its replay).
    const live = follow && deltas ? (yield* DeltaFeed).follow(runId) : undefined
    return yield* EventStream.response(events, after, live, (yield* caller).stillAllowed)
  })

const AutopilotLive = HttpApiBuilder.group(AutopilotApi, "autopilot", (handlers) =>
  handlers
    .handle("status", () => Effect.flatMap(Settings, (settings) => mapService(settings.status())))
    .handle("enable", ({ payload }) =>
      Effect.zipRight(requireAdmin(changeSettings), Effect.flatMap(Settings, (settings) => mapService(settings.enable(payload.tier)))).pipe(
        Effect.as({ ok: true as const })
      ))
    .handle("disable", () =>
      Effect.zipRight(requireAdmin(changeSettings), Effect.flatMap(Settings, (settings) => mapService(settings.disable()))).pipe(Effect.as({ ok: true as const })))
    .handle("goal", ({ payload }) =>
      Effect.gen(function*() {
        const { actor, project } = yield* caller
        if (payload.synthesize === true) yield* requireAdmin(synthesizeBlueprints)
        const request = { goal: payload.goal, project, actor, pick: payload.pick, synthesize: payload.synthesize }
        const goals = yield* Goals
        const routed = yield* mapService(goals.submit(request))
        // About this server's own blueprint service (down, stale): its operator's to read, not the caller's.
        if (routed.note !== null) yield* Effect.logWarning(`autopilot serve: note: ${routed.note}`)
        return routed.outcome
      }))
)

const MissionsLive = HttpApiBuilder.group(AutopilotApi, "missions", (handlers) =>
  handlers
    .handle("list", ({ urlParams }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const missions = yield* Missions
        const listed = yield* mapService(missions.list(project, { status: urlParams.status }))
        return listed.map(summaryJson)
      }))
    .handle("show", ({ path, urlParams }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const view = { steps: urlParams.steps === "true", messages: urlParams.messages === "true" }
        if (view.messages && !view.steps) return yield* new BadRequest({ message: "messages=true shows the conversations of steps=true: give steps=true too" })
        const { mission, transitions } = yield* mapService(Effect.flatMap(Missions, (missions) => missions.show(project, path.id)))
        const results = yield* mapService(Effect.flatMap(MissionRunner, (runner) => runner.steps(project, path.id)))
        const firings = yield* mapService(Effect.flatMap(FiringStore, (store) => store.recent(mission.mission_id, 10)))
        const schedule = Schedules.viewOf(mission, firings, yield* DateTime.now)
        return MissionJson.showJson(mission, transitions, results, view, Schedules.json(schedule))
      }))
    .handle("approve", ({ path, payload }) =>
      Effect.gen(function*() {
        const { actor, project } = yield* caller
        const missions = yield* Missions
        const approved = yield* mapService(missions.approve(project, path.id, {
          slots: payload.slots,
          actor,
          timeZone: payload.time_zone,
          catchUp: payload.catch_up,
          reason: payload.reason
        }))
        return summaryJson(approved)
      }))
    .handle("cancel", ({ path, urlParams }) =>
      Effect.gen(function*() {
        const { actor, project } = yield* caller
        const missions = yield* Missions
        const cancelled = yield* mapService(missions.cancel(project, path.id, actor, urlParams.reason))
        return { cancelled: cancelled.cancelled, status: cancelled.mission.status, message: cancelled.message }
      }))
    .handle("stop", ({ path, payload }) =>
      Effect.gen(function*() {
        const { actor, project } = yield* caller
        const mission = yield* mapService(Effect.flatMap(Missions, (missions) => missions.get(project, path.id)))
        const steps = yield* mapService(Effect.flatMap(MissionRunner, (runner) => runner.steps(project, path.id)))
        if (steps.run === null) {
          return yield* mapService(Effect.fail(new BadInput({ message: `mission ${mission.mission_id} has no run to stop (status ${mission.status})` })))
        }
        const reason = payload.reason ?? `stopped by ${actor}`
        yield* mapService(Effect.flatMap(Runs.Runs, (runs) => runs.stop(steps.run!.run_id, reason)))
        return { run_id: steps.run.run_id, stop_requested: true as const, reason }
      }))
    .handle("events", ({ path }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const steps = yield* mapService(Effect.flatMap(MissionRunner, (runner) => runner.steps(project, path.id)))
        if (steps.run === null) return yield* new Conflict({ message: `mission ${path.id} has not started a run yet: its events begin once a daemon starts it` })
        return yield* events(steps.run.run_id)
      }))
)

const RunsLive = HttpApiBuilder.group(AutopilotApi, "runs", (handlers) =>
  handlers
    .handle("list", ({ urlParams }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const states = urlParams.status === undefined ? [] : urlParams.status.split(",").map((s) => s.trim())
        const unknown = states.find((s) => !(Runs.RunStates as ReadonlyArray<string>).includes(s))
        if (unknown !== undefined) {
          return yield* new BadRequest({ message: `status must be one or more of ${Runs.RunStates.join(", ")} (comma-separated), got "${unknown}"` })
        }
        const runs = yield* Runs.Runs
        const listed = yield* mapService(runs.list({ states: states as ReadonlyArray<Runs.RunState>, limit: urlParams.limit, project }))
        return listed.map(Runs.listedJson)
      }))
    .handle("show", ({ path, urlParams }) =>
      Effect.map(ownedRun(path.id, { steps: urlParams.steps ?? 0, messages: urlParams.messages === "true" }), Runs.viewJson))
    .handle("stop", ({ path, payload }) =>
      Effect.gen(function*() {
        const { actor } = yield* caller
        yield* ownRun(path.id)
        const reason = payload.reason ?? `stopped by ${actor}`
        yield* mapService(Effect.flatMap(Runs.Runs, (runs) => runs.stop(path.id, reason)))
        return { run_id: path.id, stop_requested: true as const, reason }
      }))
    .handle("events", ({ path, urlParams }) => events(path.id, urlParams.follow !== "false", urlParams.deltas !== "false"))
    .handle("artifacts", ({ path }) =>
      Effect.gen(function*() {
        yield* ownRun(path.id)
        const listed = yield* mapService(Effect.flatMap(RunArtifacts, (artifacts) => artifacts.list(path.id)))
        return listed.map((a) => ({ name: a.name, latest: a.latest, versions: a.versions.length }))
      }))
    .handle("artifact", ({ path, urlParams }) =>
      Effect.gen(function*() {
        yield* ownRun(path.id)
        const store = yield* ArtifactStore
        const found = yield* mapService(store.content(path.id, urlParams.name, urlParams.version))
        if (Option.isNone(found)) {
          return yield* new NotFound({ message: `run ${path.id} has no artifact "${urlParams.name}"${urlParams.version === undefined ? "" : ` version ${urlParams.version}`}` })
        }
        const file = urlParams.name.split("/").pop()!.replace(/[^A-Za-z0-9._-]/g, "_")
        return HttpServerResponse.uint8Array(found.value, {
          contentType: "application/octet-stream",
          headers: { "content-disposition": `attachment; filename="${file}"`, "x-content-type-options": "nosniff" }
        })
      }))
)

/** Caps as numbers, checked as the CLI checks its flags, named as the API names them. */
const policyOf = (payload: typeof import("./Api.js").QueueAdd.Type) =>
  Effect.reduce(Axes, {} as Record<string, number>, (overrides, axis: Axis) => {
    const field = `max_${axis}` as const
    const value = payload[field]
    if (value === undefined) return Effect.succeed(overrides)
    const problem = capProblem(axis, value)
    return problem === undefined
      ? Effect.succeed({ ...overrides, [AxisLimits[axis].field]: value })
      : Effect.fail(new BadRequest({ message: `${field} ${problem}, got ${value}` }))
  })

const QueueLive = HttpApiBuilder.group(AutopilotApi, "queue", (handlers) =>
  handlers
    .handle("list", () =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const queue = yield* GoalQueue.GoalQueue
        return (yield* mapService(queue.list({ project }))).map(GoalQueue.listedJson)
      }))
    .handle("add", ({ payload }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const queue = yield* GoalQueue.GoalQueue
        const llm = yield* ServeModel
        const specialist = payload.specialist === undefined
          ? undefined
          : (yield* mapService(Effect.flatMap(Specialists, (specialists) => specialists.get(payload.specialist!)))).specialist
        const entry = yield* mapService(queue.add({
          objective: payload.objective,
          criteria: payload.criteria,
          runId: payload.run_id,
          policy: yield* policyOf(payload),
          priority: payload.priority,
          notBefore: payload.not_before,
          specialist,
          llm,
          project
        }))
        return GoalQueue.listedJson({ entry, ready: QueueEntry.isReady(entry, yield* DateTime.now), run: null })
      }))
    .handle("remove", ({ path }) =>
      Effect.gen(function*() {
        const { project } = yield* caller
        const queue = yield* GoalQueue.GoalQueue
        yield* mapService(queue.remove(path.id, { project }))
        return { removed: true as const, id: path.id }
      }))
)

const encodeBlueprint = Schema.encodeSync(Blueprint)
const encodeSpecialist = Schema.encodeSync(Specialist)

const CatalogLive = HttpApiBuilder.group(AutopilotApi, "catalog", (handlers) =>
  handlers
    .handle("blueprints", ({ urlParams }) =>
      Effect.flatMap(Blueprints, (blueprints) => mapService(blueprints.list(urlParams))).pipe(
        Effect.map((entries) => entries.map((entry) => encodeBlueprint(entry.blueprint)))
      ))
    .handle("blueprint", ({ path }) =>
      Effect.flatMap(Blueprints, (blueprints) => Effect.mapError(blueprints.get(path.id), (e) => new NotFound({ message: e.message }))).pipe(
        Effect.map((entry) => encodeBlueprint(entry.blueprint))
      ))
    .handle("specialists", ({ urlParams }) =>
      Effect.flatMap(Specialists, (specialists) => mapService(specialists.list(urlParams))).pipe(
        Effect.map((entries) => entries.map((entry) => encodeSpecialist(entry.specialist)))
      ))
    .handle("specialist", ({ path }) =>
      Effect.flatMap(Specialists, (specialists) => Effect.mapError(specialists.get(path.id), (e) => new NotFound({ message: e.message }))).pipe(
        Effect.map((entry) => encodeSpecialist(entry.specialist))
      ))
)

/**
 * The cookie holds the session's id: readable by no script (HttpOnly), sent to no other site
 * (SameSite=Strict), Secure as the server's CookiePolicy says, and dropped by the browser when the session ends.
 */
const cookieOptions = (secure: boolean, maxAge: Duration.DurationInput) => ({ httpOnly: true, sameSite: "strict" as const, path: "/", secure, maxAge })

const sessionJson = (session: Session) => ({
  csrf_token: session.csrfToken,
  admin: session.principal.kind === "admin",
  project: session.principal.kind === "admin" ? defaultProject : session.principal.project,
  expires_at: session.expiresAt
})

const SignInLive = HttpApiBuilder.group(AutopilotApi, "signIn", (handlers) =>
  handlers.handle("signIn", ({ payload, request }) =>
    Effect.gen(function*() {
      const sessions = yield* ApiSessions
      const policy = yield* CookiePolicy
      // A database out of reach stays a 503: the token may be good, and the client should try again.
      const made = yield* sessions.create(payload.token).pipe(
        Effect.catchTags({
          Unauthenticated: (error) => Effect.fail(new Unauthorized({ message: error.message })),
          PersistenceError: (error) => Effect.fail(new Unavailable({ message: `tokens could not be checked: ${error.message}` }))
        })
      )
      // Signing in again replaces the session the browser had.
      const previous = request.cookies[cookieName]
      if (previous !== undefined) yield* Effect.ignore(sessions.end(previous))
      return yield* HttpServerResponse.json(sessionJson(made.session)).pipe(
        Effect.flatMap(HttpServerResponse.setCookie(cookieName, made.id, cookieOptions(secureCookie(policy, request), lifetime))),
        Effect.orDie
      )
    }))
)

const SessionLive = HttpApiBuilder.group(AutopilotApi, "session", (handlers) =>
  handlers
    // Who the caller is; with the cookie, its session's CSRF token and end too (a Bearer token has no session).
    .handle("current", () =>
      Effect.map(caller, ({ principal, session }) =>
        Option.match(session, {
          onSome: sessionJson,
          onNone: () => ({ admin: principal.kind === "admin", project: principal.kind === "admin" ? defaultProject : principal.project })
        })))
    .handle("signOut", ({ request }) =>
      Effect.gen(function*() {
        const { session } = yield* caller
        // Ended here, not only forgotten by the browser: a copy of the cookie is no use afterwards.
        if (Option.isSome(session)) yield* mapService(Effect.flatMap(ApiSessions, (sessions) => sessions.end(session.value.id)))
        const policy = yield* CookiePolicy
        return yield* HttpServerResponse.json({ ok: true }).pipe(
          Effect.flatMap(HttpServerResponse.expireCookie(cookieName, cookieOptions(secureCookie(policy, request), 0))),
          Effect.orDie
        )
      }))
)

const BlueprintServiceLive = HttpApiBuilder.group(AutopilotApi, "blueprintService", (handlers) =>
  handlers
    .handle("retrieve", ({ payload }) =>
      Effect.gen(function*() {
        const router = yield* GoalRouter
        // This instance's own catalog only: a service that asked its own remote service could loop.
        const ranking = yield* mapService(router.rank(payload.goal, { k: payload.k ?? shown, tier: "skip" }))
        return { candidates: ranking.candidates.map((c) => ({ blueprint_json: toJson(c.blueprint), score: Math.round(c.score * 1000) / 1000 })) }
      }))
    .handle("synthesize", ({ payload }) =>
      Effect.gen(function*() {
        yield* requireAdmin(synthesizeBlueprints)
        const synthesis = yield* Synthesis
        const { blueprint } = yield* mapService(synthesis.synthesize(payload.goal))
        return { blueprint_json: toJson(blueprint) }
      }))
)

const SpendLive = HttpApiBuilder.group(AutopilotApi, "spend", (handlers) =>
  handlers.handle("spend", ({ urlParams }) =>
    Effect.flatMap(caller, ({ project }) => mapService(Spend.of(project, urlParams.limit ?? 200)))))

const FineTunesLive = HttpApiBuilder.group(AutopilotApi, "finetunes", (handlers) =>
  handlers
    .handle("list", () => Effect.zipRight(requireAdmin(seeFineTunes), mapService(FineTunesView.list)))
    .handle("show", ({ path }) =>
      Effect.zipRight(
        requireAdmin(seeFineTunes),
        // Checked here, not by the path's schema: a path that does not decode is answered as a route not found.
        Effect.flatMap(
          Effect.mapError(Schema.decodeUnknown(FineTunesView.JobId)(path.id), (e) => new BadRequest({ message: `id: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
          (id) => Effect.mapError(FineTunesView.show(id), (e) => e._tag === "FineTuneJobNotFound" ? new NotFound({ message: e.message }) : fromService(e))
        )
      )))

/** Every group's handlers, needing the services they call. */
export const layer = Layer.mergeAll(
  AutopilotLive,
  MissionsLive,
  RunsLive,
  QueueLive,
  CatalogLive,
  SpendLive,
  FineTunesLive,
  SignInLive,
  SessionLive,
  BlueprintServiceLive
)

