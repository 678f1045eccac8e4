import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { AutopilotStatus, ServiceTier } from "../domain/AutopilotSettings.js"
import { GoalOutcome } from "../domain/GoalOutcome.js"
import { MissionStatus } from "../domain/MissionState.js"
import { BadRequestJson, ConflictJson, ForbiddenJson, MethodNotAllowedJson, NotFoundJson, PayloadTooLargeJson, UnauthorizedJson, UnavailableJson } from "./ApiError.js"
import { Authorization } from "./Authorization.js"
import * as FineTunesView from "./FineTunesView.js"

/**
 * The HTTP API as data: every route, its input and output schemas and its errors. The server implements
 * it (ApiHandlers), the CLI and the tests call it through the client derived from it, and the OpenAPI
 * document is made from it. Under `/api/v1/autopilot`, the seed's routes and shapes, then what operators
 * need beyond them; `/v1/blueprints/*` is the blueprint-service protocol that `BlueprintService` speaks.
 */

export const prefix = "/api/v1/autopilot"

/** A JSON object whose shape is the CLI's `--format json` of the same thing (documented there). */
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const Ok = Schema.Struct({ ok: Schema.Literal(true) })
const Id = Schema.Struct({ id: Schema.String })

/** Query flags as text: `?steps=true`. */
const Flag = Schema.optional(Schema.Literal("true", "false"))

/** `text/event-stream`: `id` the event's seq, `event` its kind, `data` the event as JSON. */
const EventStream = Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/event-stream" }))

/** What a client that already has every event of a run that is over gets (see EventStream.ended): an EventSource stops on it. */
const EventsEnded = HttpApiSchema.Empty(204).annotations({
  description: "The run is over and the client has its every event (Last-Event-ID its last): no body, and an EventSource stops reconnecting"
})

// ---------------------------------------------------------------------------------------------------------
// The seed's routes

export const MissionSummary = Schema.Struct({
  mission_id: Schema.String,
  blueprint_id: Schema.String,
  blueprint_version: Schema.Number,
  status: MissionStatus,
  project_id: Schema.String,
  created_at: Schema.String,
  updated_at: Schema.String,
  goal: Schema.String,
  slots: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  missing_slots: Schema.Array(Schema.String)
})

export const GoalRequest = Schema.Struct({
  goal: Schema.String,
  /** Make the mission from the Nth (1-based) candidate the goal lists. */
  pick: Schema.optional(Schema.Int),
  /** Write a new blueprint for the goal and route to it. */
  synthesize: Schema.optional(Schema.Boolean)
})

export const Approval = Schema.Struct({
  slots: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number, Schema.Array(Schema.String)) })),
  time_zone: Schema.optional(Schema.String),
  catch_up: Schema.optional(Schema.String),
  /** Kept in the mission's history, as `approve --reason`. */
  reason: Schema.optional(Schema.String)
})

export const Reason = Schema.Struct({ reason: Schema.optional(Schema.String) })

export const Stopped = Schema.Struct({ run_id: Schema.String, stop_requested: Schema.Literal(true), reason: Schema.String })

export const AutopilotGroup = HttpApiGroup.make("autopilot")
  .add(HttpApiEndpoint.get("status", "/status").addSuccess(AutopilotStatus))
  .add(HttpApiEndpoint.post("enable", "/enable").setPayload(Schema.Struct({ tier: Schema.optional(ServiceTier) })).addSuccess(Ok))
  .add(HttpApiEndpoint.post("disable", "/disable").addSuccess(Ok))
  .add(HttpApiEndpoint.post("goal", "/goal").setPayload(GoalRequest).addSuccess(GoalOutcome))
  .annotate(OpenApi.Description, "The seed's routes: the instance's settings and routing a goal to a draft mission")
  .prefix(prefix)
  .middleware(Authorization)


export const MissionsGroup = HttpApiGroup.make("missions")
  .add(
    HttpApiEndpoint.get("list", "/missions")
      .setUrlParams(Schema.Struct({ status: Schema.optional(Schema.Array(MissionStatus)) }))
      .addSuccess(Schema.Array(MissionSummary))
  )
  .add(
    HttpApiEndpoint.get("show", "/missions/:id")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ steps: Flag, messages: Flag }))
      .addSuccess(JsonObject)
      .annotate(OpenApi.Description, "The mission, its transitions, its run and what was healed; ?steps=true every node's attempts")
  )
  .add(HttpApiEndpoint.post("approve", "/missions/:id/approve").setPath(Id).setPayload(Approval).addSuccess(MissionSummary))
  .add(
    HttpApiEndpoint.del("cancel", "/missions/:id")
      .setPath(Id)
      .setUrlParams(Reason)
      .addSuccess(Schema.Struct({ cancelled: Schema.Boolean, status: MissionStatus, message: Schema.String }))
  )
  .add(HttpApiEndpoint.post("stop", "/missions/:id/stop").setPath(Id).setPayload(Reason).addSuccess(Stopped))
  .add(
    HttpApiEndpoint.get("events", "/missions/:id/events")
      .setPath(Id)
      .addSuccess(EventStream)
      .addSuccess(EventsEnded)
      .annotate(OpenApi.Description, "The mission's run's events as Server-Sent Events: replayed after Last-Event-ID, then live until its result")
  )
  .prefix(prefix)
  .middleware(Authorization)


// ---------------------------------------------------------------------------------------------------------
// Runs, the queue, the catalog

export const RunsQuery = Schema.Struct({
  status: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000)))
})

export const RunsGroup = HttpApiGroup.make("runs")
  .add(HttpApiEndpoint.get("list", "/runs").setUrlParams(RunsQuery).addSuccess(Schema.Array(JsonObject)))
  .add(
    HttpApiEndpoint.get("show", "/runs/:id")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ steps: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())), messages: Flag }))
      .addSuccess(JsonObject)
      .annotate(OpenApi.Description, "The run as of its latest checkpoint, with its latest ?steps=N steps (0 for all, the default)")
  )
  .add(HttpApiEndpoint.post("stop", "/runs/:id/stop").setPath(Id).setPayload(Reason).addSuccess(Stopped))
  .add(
    HttpApiEndpoint.get("events", "/runs/:id/events")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ follow: Flag, deltas: Flag }))
      .addSuccess(EventStream)
      .addSuccess(EventsEnded)
      .annotate(
        OpenApi.Description,
        "The run's events as Server-Sent Events: replayed after Last-Event-ID, then live until its result; ?follow=false only those written so far. While the run is live, `delta` frames (no id) carry its answer as it is written; ?deltas=false leaves them out"
      )
  )
  .add(HttpApiEndpoint.get("artifacts", "/runs/:id/artifacts").setPath(Id).addSuccess(Schema.Array(JsonObject)))
  .add(
    HttpApiEndpoint.get("artifact", "/runs/:id/artifact")
      .setPath(Id)
      .setUrlParams(Schema.Struct({ name: Schema.String, version: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive())) }))
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "application/octet-stream" })))
      .annotate(OpenApi.Description, "One artifact's content (its latest version, or ?version=N), as a download")
  )
  .prefix(prefix)
  .middleware(Authorization)


export const QueueAdd = Schema.Struct({
  objective: Schema.String,
  criteria: Schema.optional(Schema.Array(Schema.String)),
  run_id: Schema.optional(Schema.String),
  priority: Schema.optional(Schema.Number),
  not_before: Schema.optional(Schema.String),
  specialist: Schema.optional(Schema.String),
  max_seconds: Schema.optional(Schema.Number),
  max_tool_calls: Schema.optional(Schema.Number),
  max_tokens: Schema.optional(Schema.Number),
  max_dollars: Schema.optional(Schema.Number),
  max_iterations: Schema.optional(Schema.Number)
})

export const QueueGroup = HttpApiGroup.make("queue")
  .add(HttpApiEndpoint.get("list", "/queue").addSuccess(Schema.Array(JsonObject)))
  .add(HttpApiEndpoint.post("add", "/queue").setPayload(QueueAdd).addSuccess(JsonObject, { status: 201 }))
  .add(HttpApiEndpoint.del("remove", "/queue/:id").setPath(Id).addSuccess(Schema.Struct({ removed: Schema.Literal(true), id: Schema.String })))
  .prefix(prefix)
  .middleware(Authorization)


export const CatalogGroup = HttpApiGroup.make("catalog")
  .add(HttpApiEndpoint.get("blueprints", "/blueprints").setUrlParams(Schema.Struct({ category: Schema.optional(Schema.String) })).addSuccess(Schema.Array(JsonObject)))
  .add(HttpApiEndpoint.get("blueprint", "/blueprints/:id").setPath(Id).addSuccess(JsonObject))
  .add(HttpApiEndpoint.get("specialists", "/specialists").setUrlParams(Schema.Struct({ category: Schema.optional(Schema.String) })).addSuccess(Schema.Array(JsonObject)))
  .add(HttpApiEndpoint.get("specialist", "/specialists/:id").setPath(Id).addSuccess(JsonObject))
  .prefix(prefix)
  .middleware(Authorization)


// ---------------------------------------------------------------------------------------------------------
// What a project has spent, for the operator page's charts (src/api/Spend.ts)

export const SpendReport = Schema.Struct({
  runs: Schema.Array(Schema.Struct({
    run_id: Schema.String,
    status: Schema.String,
    kind: Schema.Literal("run", "mission", "fanout"),
    created_at: Schema.String,
    cost_usd: Schema.Number
  })),
  models: Schema.Array(Schema.Struct({
    model: Schema.String,
    calls: Schema.Number,
    input_tokens: Schema.Number,
    output_tokens: Schema.Number,
    cost_usd: Schema.Number
  }))
})

export const SpendGroup = HttpApiGroup.make("spend")
  .add(
    HttpApiEndpoint.get("spend", "/spend")
      .setUrlParams(Schema.Struct({ limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))) }))
      .addSuccess(SpendReport)
      .annotate(
        OpenApi.Description,
        "The project's newest ?limit=N runs (200 by default): each run's cost, oldest first (a mission's node runs and a fan-out's children inside the run above them), and the spend per model over every call they made"
      )
  )
  .prefix(prefix)
  .middleware(Authorization)


// ---------------------------------------------------------------------------------------------------------
// Fine-tunes, their evaluations and what their promotion did to the cost of a step (src/api/FineTunesView.ts)

export const FineTunesGroup = HttpApiGroup.make("finetunes")
  .add(
    HttpApiEndpoint.get("list", "/finetunes")
      .addSuccess(Schema.Array(FineTunesView.ListedFineTune))
      .annotate(OpenApi.Description, "Every fine-tune job, newest first, with its latest evaluation's verdict and whether its model takes traffic now. The admin's only: datasets are made from every project's work")
  )
  .add(
    HttpApiEndpoint.get("show", "/finetunes/:id")
      .setPath(Id)
      .addSuccess(FineTunesView.FineTuneDetail)
      .annotate(OpenApi.Description, "One fine-tune job: its log, its evaluation reports (candidate and baseline side by side), its routes, and its scope's cost per step over time, split at the promotion")
  )
  .prefix(prefix)
  .middleware(Authorization)


// ---------------------------------------------------------------------------------------------------------
// Signing in with a cookie, for the operator page

export const Session = Schema.Struct({
  /** Sent back as `X-CSRF-Token` on every state-changing request signed in by the cookie; absent for a Bearer token (no session). */
  csrf_token: Schema.optional(Schema.String),
  admin: Schema.Boolean,
  project: Schema.String,
  /** When the session ends (ISO, UTC), however much it is used; absent for a Bearer token. */
  expires_at: Schema.optional(Schema.String)
})

/** Signing in checks the token itself: it is the one route without the Authorization middleware. */
export const SignInGroup = HttpApiGroup.make("signIn")
  .add(HttpApiEndpoint.post("signIn", "/api/v1/session").setPayload(Schema.Struct({ token: Schema.String })).addSuccess(Session))
  .addError(UnauthorizedJson)


export const SessionGroup = HttpApiGroup.make("session")
  .add(HttpApiEndpoint.get("current", "/api/v1/session").addSuccess(Session))
  .add(HttpApiEndpoint.del("signOut", "/api/v1/session").addSuccess(Ok))
  .middleware(Authorization)


// ---------------------------------------------------------------------------------------------------------
// The blueprint-service protocol (BlueprintService is its client)

export const WireCandidate = Schema.Struct({ blueprint_json: Schema.String, score: Schema.Number })

export const BlueprintServiceGroup = HttpApiGroup.make("blueprintService")
  .add(
    HttpApiEndpoint.post("retrieve", "/v1/blueprints/retrieve")
      .setPayload(Schema.Struct({ goal: Schema.String, k: Schema.optional(Schema.Int.pipe(Schema.between(1, 50))) }))
      .addSuccess(Schema.Struct({ candidates: Schema.Array(WireCandidate) }))
  )
  .add(
    HttpApiEndpoint.post("synthesize", "/v1/blueprints/synthesize")
      .setPayload(Schema.Struct({ goal: Schema.String }))
      .addSuccess(Schema.Struct({ blueprint_json: Schema.String }))
  )
  .annotate(OpenApi.Description, "The blueprint-service protocol, so that this instance can serve blueprints to others")
  .middleware(Authorization)


export const AutopilotApi = HttpApi.make("autopilot")
  .add(AutopilotGroup)
  .add(MissionsGroup)
  .add(RunsGroup)
  .add(QueueGroup)
  .add(CatalogGroup)
  .add(SpendGroup)
  .add(FineTunesGroup)
  .add(SessionGroup)
  .add(BlueprintServiceGroup)
  .add(SignInGroup)
  .addError(BadRequestJson)
  .addError(ConflictJson)
  .addError(UnauthorizedJson)
  .addError(NotFoundJson)
  .addError(MethodNotAllowedJson)
  .addError(PayloadTooLargeJson)
  .addError(ForbiddenJson)
  .addError(UnavailableJson)
  .annotate(OpenApi.Title, "autopilot")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "Every route but signing in needs `Authorization: Bearer <token>` or the `autopilot_auth` cookie; `X-Project-ID` scopes a request to a project. Errors are `{\"error\": {\"code\", \"message\"}}`."
  )

