import { HttpApiSchema } from "@effect/platform"
import { assert, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as ApiError from "../../src/api/ApiError.js"
import { TokenNotFound } from "../../src/domain/ApiToken.js"
import { AutopilotDisabled } from "../../src/domain/AutopilotSettings.js"
import { BadInput, CorruptCheckpoint, LlmError, PersistenceError, RunAlreadyExists, RunInProgress, RunInterrupted, RunNotFound } from "../../src/domain/Errors.js"
import { MissionNotFound } from "../../src/domain/MissionRecord.js"
import { IllegalTransition } from "../../src/domain/MissionState.js"
import { QueueEntryNotFound, RunIdTaken } from "../../src/domain/QueueEntry.js"
import { SynthesisFailed } from "../../src/routing/Synthesis.js"

const classes = [
  [ApiError.BadRequest, ApiError.BadRequestJson],
  [ApiError.Unauthorized, ApiError.UnauthorizedJson],
  [ApiError.Forbidden, ApiError.ForbiddenJson],
  [ApiError.NotFound, ApiError.NotFoundJson],
  [ApiError.MethodNotAllowed, ApiError.MethodNotAllowedJson],
  [ApiError.Conflict, ApiError.ConflictJson],
  [ApiError.PayloadTooLarge, ApiError.PayloadTooLargeJson],
  [ApiError.Unavailable, ApiError.UnavailableJson]
] as const

it("each error's status and code are one fact: HttpApi's status, statusOf and the wire body agree", () => {
  for (const [Class, Json] of classes) {
    const error = new Class({ message: "m" })
    const encoded = Schema.encodeSync(Json as Schema.Schema<ApiError.ApiError, { error: { code: string; message: string } }>)(error)
    assert.deepStrictEqual(encoded, ApiError.bodyOf(error), error._tag)
    assert.strictEqual(HttpApiSchema.getStatusError(Json), ApiError.statusOf(error), error._tag)
  }
  assert.deepStrictEqual(classes.map(([Class]) => ApiError.statusOf(new Class({ message: "" }))), [400, 401, 403, 404, 405, 409, 413, 503])
})

it("every service error has its own answer, none falls through to a 503", () => {
  const cases: ReadonlyArray<readonly [ApiError.ServiceError, number]> = [
    [new BadInput({ message: "x" }), 400],
    [new MissionNotFound({ mission_id: "ms-1", project_id: "p1" }), 404],
    [new RunNotFound({ run_id: "r" }), 404],
    [new QueueEntryNotFound({ id: "q" }), 404],
    [new IllegalTransition({ mission_id: "ms-1", status: "completed", action: "approve" }), 409],
    [new AutopilotDisabled(), 409],
    [new RunInProgress({ run_id: "r", pid: 1, host: "h" }), 409],
    [new RunAlreadyExists({ run_id: "r", status: "completed" }), 409],
    [new RunIdTaken({ run_id: "r", detail: "run id \"r\" is already a run (status completed)" }), 409],
    [new CorruptCheckpoint({ run_id: "r", error: "e" }), 409],
    [new RunInterrupted({ run_id: "r", pid: null, host: null }), 409],
    [new SynthesisFailed({ goal: "g", problems: ["p"] }), 409],
    [new PersistenceError({ message: "gone", busy: false }), 503],
    [new LlmError({ message: "down", transient: false }), 503]
  ]
  for (const [error, status] of cases) assert.strictEqual(ApiError.statusOf(ApiError.fromService(error)), status, error._tag)
  // A taken run id answers without the status the service's message names: it may be another project's run.
  const taken = ApiError.fromService(new RunIdTaken({ run_id: "r", detail: "run id \"r\" is already a run (status completed)" }))
  assert.notMatch(taken.message, /completed|status/)
})

it.effect("a service error the table does not answer is refused by the compiler, not mapped to 503 at run time", () =>
  Effect.gen(function*() {
    // @ts-expect-error TokenNotFound is not a ServiceError: the API must say what it means before it can meet it
    const mapped = ApiError.mapService(Effect.fail(new TokenNotFound({ id: "tok_1" })))
    // @ts-expect-error an unknown tag has no answer
    const unknown = () => ApiError.fromService({ _tag: "SomethingNew", message: "?" })
    assert.isFunction(unknown)
    assert.isDefined(mapped)
  }))
