import type { SqlError } from "@effect/sql"
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Option, Queue, Ref, Schedule, Stream, Take } from "effect"
import * as Budget from "../budget/Budget.js"
import * as Pricing from "../budget/Pricing.js"
import { BudgetPolicy, BudgetUsage } from "../domain/Budget.js"
import { Checkpoint } from "../domain/Checkpoint.js"
import { BadInput, LlmError, RunAlreadyExists, RunInProgress, RunNotFound } from "../domain/Errors.js"
import type { AutopilotEvent, EventBody } from "../domain/Event.js"
import type { Goal } from "../domain/Goal.js"
import { type RunStatus, statusOf } from "../domain/RunStatus.js"
import { type ModelCall, Step, type ToolCallRecord, type Verdict } from "../domain/Step.js"
import { Llm, type LlmRequest, type LlmResponse } from "../llm/Llm.js"
import { CheckpointStore } from "../store/CheckpointStore.js"
import { Toolkit } from "../tools/Tool.js"
import { actMessages, judgeMessages, parseVerdict } from "./Prompts.js"
import { historyWindowOf, startingPoint } from "./StartingPoint.js"

export type PolicyOverrides = Partial<ConstructorParameters<typeof BudgetPolicy>[0]>

export interface MissionOptions {
  readonly runId: string
  /** Required for a new run; a resumed run keeps its own. */
  readonly goal?: Goal | undefined
  /** Caps for this session. A new run fills the rest with defaults; a resumed run keeps its earlier caps. */
  readonly policy?: PolicyOverrides | undefined
  readonly resume?: boolean | undefined
  /**
   * Resume even if the checkpoint's owner looks alive: for an owner that cannot be checked (another host,
   * a container that was replaced, a pid reused by another program). The caller vouches it is gone.
   */
  readonly takeOver?: boolean | undefined
  readonly model?: string | undefined
  /** Completes with a reason when the run should halt at its next iteration boundary, e.g. on a signal. */
  readonly halt?: Effect.Effect<string> | undefined
  /** How long the iteration in flight may go on after a halt request before it is interrupted. */
  readonly haltGrace?: Duration.DurationInput | undefined
  /** Completes when a requested halt must not wait out the grace period (a second signal). */
  readonly haltNow?: Effect.Effect<void> | undefined
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** How many earlier iterations the model sees. */
  readonly historyWindow?: number | undefined
  /** Receives every event once it is durable, in `seq` order. */
  readonly onEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
}

export interface MissionResult {
  readonly run_id: string
  readonly status: Exclude<RunStatus, "running">
  readonly halt_reason: string | null
  readonly iterations: number
  readonly usage: BudgetUsage
  readonly criteria_met: ReadonlyArray<boolean>
  readonly output: string
}

export type MissionError = BadInput | RunNotFound | RunAlreadyExists | RunInProgress | SqlError.SqlError

/** What one iteration produced before it is counted; an iteration cut short leaves nothing behind. */
interface Attempt {
  readonly response: LlmResponse
  readonly toolCalls: ReadonlyArray<ToolCallRecord>
  readonly verdict: Either.Either<Verdict, string>
  readonly calls: ReadonlyArray<ModelCall>
}

interface Outcome {
  readonly status: Exclude<RunStatus, "running">
  readonly reason: string | null
}

const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/**
 * Transient model failures are retried with backoff on the Effect Clock, five attempts in all, each
 * waiting at least as long as the provider asked (Retry-After).
 */
const maxAttempts = 5
const retrySchedule = Schedule.exponential("250 millis").pipe(
  Schedule.intersect(Schedule.recurs(maxAttempts - 1)),
  Schedule.intersect(Schedule.identity<LlmError | SqlError.SqlError>()),
  Schedule.modifyDelay(([, error], backoff) =>
    error._tag === "LlmError" && error.retry_after_ms !== undefined
      ? Duration.max(backoff, Duration.millis(error.retry_after_ms))
      : backoff)
)

/** The first line of prose in an answer, skipping markdown headings and fences. */
const summaryOf = (text: string) => {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  const line = lines.find((l) => !l.startsWith("#") && !l.startsWith("```")) ?? lines[0] ?? ""
  return line.length > 120 ? `${line.slice(0, 117)}...` : line
}

const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (error instanceof LlmError) return `model call failed: ${error.message}`
  return `unexpected error: ${error instanceof Error ? error.message : String(error)}`
}

/**
 * Runs a mission until every criterion is met, a budget axis trips, a halt is requested or the model
 * keeps failing. Every iteration ends in one transaction writing the step, its events and the checkpoint.
 */
export const run = (options: MissionOptions): Effect.Effect<MissionResult, MissionError, Llm | Toolkit | CheckpointStore> =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* CheckpointStore
    const llm = yield* Llm
    const toolkit = yield* Toolkit
    const runId = options.runId
    const onEvent = options.onEvent ?? (() => Effect.void)
    const window = historyWindowOf(options)

    const opened = yield* startingPoint(options, yield* isoNow)
    const goal = opened.checkpoint.goal
    const criteriaCount = goal.success_criteria.length
    const budget = yield* Budget.make(opened.checkpoint.policy, opened.checkpoint.usage)

    const seq = yield* Ref.make(yield* store.nextSeq(runId))
    const pending = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const criteriaMet = yield* Ref.make<ReadonlyArray<boolean>>(opened.checkpoint.criteria_met)
    const output = yield* Ref.make(opened.checkpoint.output)
    const history = yield* Ref.make<ReadonlyArray<Step>>(opened.history)
    const unpriced = new Set<string>()
    const haltRequested = yield* Deferred.make<string>()

    // An event is published only once it is durable, and numbering, writing and publishing are one step:
    // whoever watches, live or by replaying the log, sees the same events in the same order, and a seq
    // that was ever shown is never handed out again.
    const events = yield* Effect.makeSemaphore(1)
    const stamp = (body: EventBody) =>
      Effect.gen(function*() {
        // Field order is for people reading the JSONL: kind, run, seq and time first.
        return {
          kind: body.kind,
          run_id: runId,
          seq: yield* Ref.getAndUpdate(seq, (n) => n + 1),
          at: yield* isoNow,
          ...(body as Omit<EventBody, "kind">),
          remaining: yield* budget.remaining
        } as AutopilotEvent
      })
    const publish = (written: ReadonlyArray<AutopilotEvent>) => Effect.forEach(written, onEvent, { discard: true })
    /** Written and published now, on its own. */
    const emitNow = (body: EventBody) =>
      events.withPermits(1)(Effect.gen(function*() {
        const event = yield* stamp(body)
        yield* store.appendEvents([event])
        yield* onEvent(event)
      }))
    /** Written and published with the next checkpoint. */
    const emit = (body: EventBody) =>
      events.withPermits(1)(Effect.flatMap(stamp(body), (event) => Ref.update(pending, (es) => [...es, event])))

    const snapshot = (status: RunStatus, haltReason: string | null) =>
      Effect.gen(function*() {
        return new Checkpoint({
          ...opened.checkpoint,
          status,
          halt_reason: haltReason,
          usage: yield* budget.usage,
          criteria_met: yield* Ref.get(criteriaMet),
          output: yield* Ref.get(output),
          updated_at: yield* isoNow
        }, true)
      })

    const commit = (status: RunStatus, haltReason: string | null, step?: Step) =>
      events.withPermits(1)(Effect.gen(function*() {
        const written = yield* Ref.get(pending)
        yield* store.commit({ checkpoint: yield* snapshot(status, haltReason), step, events: written })
        yield* Ref.set(pending, [])
        yield* publish(written)
      }))

    const callModel = (request: Omit<LlmRequest, "metadata" | "model" | "maxOutputTokens">, iteration: number) =>
      Effect.gen(function*() {
        const attempts = yield* Ref.make(0)
        const remaining = yield* budget.remaining
        const [latency, response] = yield* llm.complete({
          ...request,
          model: options.model,
          maxOutputTokens: remaining.tokens ?? undefined,
          metadata: { run_id: runId, iteration, criteria: criteriaCount }
        }).pipe(
          Effect.timed,
          Effect.tapError((error) =>
            Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (attempt) =>
              error.transient && attempt < maxAttempts
                ? emitNow({ kind: "model_retry", iteration, attempt, error: error.message })
                : Effect.void)
          ),
          Effect.retry({ schedule: retrySchedule, while: (error) => error._tag === "LlmError" && error.transient })
        )
        const price = Pricing.priceOf(response.model)
        if (response.cost_usd === undefined && Option.isNone(price) && !unpriced.has(response.model)) {
          unpriced.add(response.model)
          yield* emitNow({ kind: "model_unpriced", model: response.model })
        }
        const cost = response.cost_usd ?? Option.match(price, { onNone: () => 0, onSome: (p) => Pricing.costOf(p, response.usage) })
        yield* budget.charge({ tokens: response.usage.input_tokens + response.usage.output_tokens, dollars: cost })
        const call: ModelCall = {
          purpose: request.purpose,
          model_used: response.model,
          input_tokens: response.usage.input_tokens,
          output_tokens: response.usage.output_tokens,
          cost_usd: cost,
          latency_ms: Duration.toMillis(latency),
          attempts: (yield* Ref.get(attempts)) + 1
        }
        return { response, call }
      })

    const runTools = (response: LlmResponse, iteration: number) =>
      Effect.forEach(response.tool_calls, (call) =>
        Effect.gen(function*() {
          // A call the budget has no room for is not run and not charged; the model is told why.
          const record: ToolCallRecord = (yield* budget.takeToolCall)
            ? { name: call.name, arguments: call.arguments, ...(yield* toolkit.call(call.name, call.arguments)) }
            : { name: call.name, arguments: call.arguments, ok: false, output: "not run: the tool-call budget is spent" }
          // Tool calls act on the world, so they are on record at once, even if the iteration is cut short.
          yield* emitNow({ kind: "tool_call", iteration, ...record })
          return record
        }))

    const attempt = (iteration: number) =>
      Effect.gen(function*() {
        const before = yield* Ref.get(criteriaMet)
        const { call: act, response } = yield* callModel({
          purpose: "act",
          messages: actMessages({ goal, iteration, criteriaMet: before, history: yield* Ref.get(history) }),
          tools: toolkit.specs
        }, iteration)
        const toolCalls = yield* runTools(response, iteration)
        const { call: judge, response: reply } = yield* callModel({
          purpose: "judge",
          messages: judgeMessages({
            goal,
            criteriaMet: before,
            answer: response.content,
            toolResults: toolCalls.map((c) => `${c.name}: ${c.output}`)
          }),
          tools: []
        }, iteration)
        return { response, toolCalls, verdict: parseVerdict(reply.content, criteriaCount), calls: [act, judge] } satisfies Attempt
      })

    /** Counts a finished attempt: the step, its events and the checkpoint go out in one transaction. */
    const record = (iteration: number, { calls, response, toolCalls, verdict }: Attempt) =>
      Effect.gen(function*() {
        const before = yield* Ref.get(criteriaMet)
        // A criterion once verified stays verified: a judge sees one iteration, not the whole run.
        const after = Either.match(verdict, {
          onLeft: () => before,
          onRight: (v) => before.map((met, i) => met || v.criteria_met[i] === true)
        })
        const newlyMet = goal.success_criteria.flatMap((criterion, index) => (after[index] && !before[index] ? [{ index, criterion }] : []))
        const usage = yield* budget.charge({ iterations: 1 })
        const step = new Step({
          iteration,
          at: yield* isoNow,
          model: response.model,
          answer: response.content,
          tool_calls: toolCalls,
          verdict: Either.match(verdict, { onLeft: (e) => e, onRight: (v) => v.notes }),
          usage,
          criteria_met: after,
          calls,
          history_window: window
        }, true)
        yield* Ref.set(criteriaMet, after)
        yield* Ref.set(output, response.content)
        yield* Ref.update(history, (h) => [...h, step].slice(-window))
        if (newlyMet.length > 0) yield* emit({ kind: "criteria_satisfied", iteration, newly_met: newlyMet, criteria_met: after })
        yield* emit({
          kind: "iteration",
          iteration,
          usage,
          criteria_met: after,
          summary: `${summaryOf(response.content)}${toolCalls.length > 0 ? ` (${toolCalls.length} tool calls)` : ""}`
        })
        yield* commit("running", null, step)
      })

    // Another process's stop request is looked for at most every 250 ms: a query per iteration would
    // cost more than the rest of a fast iteration, and no operator notices a quarter of a second.
    const lastStopCheck = yield* Ref.make(Number.NEGATIVE_INFINITY)
    const stopRequest = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (now - (yield* Ref.get(lastStopCheck)) < 250) return Option.none<string>()
      yield* Ref.set(lastStopCheck, now)
      return yield* store.pendingStop(runId)
    })

    /** Why the run must stop before its next iteration, if it must. */
    const boundary = Effect.gen(function*() {
      const met = yield* Ref.get(criteriaMet)
      if (met.every(Boolean)) return Option.some<Outcome>({ status: "completed", reason: null })
      const requested = yield* Deferred.poll(haltRequested)
      const reason = requested._tag === "Some" ? Option.some(yield* requested.value) : yield* stopRequest
      if (Option.isSome(reason)) return Option.some<Outcome>({ status: statusOf(met), reason: reason.value })
      const exceeded = yield* budget.exceeded
      if (Option.isSome(exceeded)) {
        const { axis, reason, usage } = exceeded.value
        yield* emit({ kind: "budget_exceeded", axis, reason, usage })
        return Option.some<Outcome>({ status: statusOf(met), reason })
      }
      return Option.none<Outcome>()
    })

    /** After a halt request, the iteration in flight gets the grace period, or none if told so. */
    const graceOver = Deferred.await(haltRequested).pipe(
      Effect.zipRight(Effect.race(Effect.sleep(options.haltGrace ?? "5 seconds"), options.haltNow ?? Effect.never)),
      Effect.as(Option.none<Attempt>())
    )

    const loop = Effect.gen(function*() {
      while (true) {
        const stop = yield* boundary
        if (Option.isSome(stop)) return stop.value
        const iteration = (yield* budget.usage).iterations + 1
        const work = attempt(iteration)
        // The wall-clock axis bounds the iteration in flight, not only the boundary after it.
        const bounded = Option.match(yield* budget.timeLeft, {
          onNone: () => Effect.asSome(work),
          onSome: (left) => Effect.timeoutOption(work, left)
        })
        const done = yield* (options.halt === undefined ? bounded : Effect.raceFirst(bounded, graceOver)).pipe(
          Effect.map(Either.right),
          Effect.catchIf((error) => error._tag === "LlmError" && error.budget_exhausted === true, (error) => Effect.succeed(Either.left(error)))
        )
        if (Either.isLeft(done)) {
          // A proxy's budget is the run's budget too: halting on it is a budget stop, not a failure.
          const reason = `dollar limit reached: ${done.left.message}`
          yield* emit({ kind: "budget_exceeded", axis: "dollars", reason, usage: yield* budget.usage })
          return { status: statusOf(yield* Ref.get(criteriaMet)), reason } satisfies Outcome
        }
        if (Option.isSome(done.right)) yield* record(iteration, done.right.value)
      }
    })

    const finish = (outcome: Outcome) =>
      Effect.gen(function*() {
        const usage = yield* budget.usage
        const result: MissionResult = {
          run_id: runId,
          status: outcome.status,
          halt_reason: outcome.reason,
          iterations: usage.iterations,
          usage,
          criteria_met: yield* Ref.get(criteriaMet),
          output: yield* Ref.get(output)
        }
        yield* emit({ kind: "result", ...result })
        yield* commit(outcome.status, outcome.reason)
        yield* store.clearStop(runId)
        return result
      }).pipe(Effect.uninterruptible)

    // The session starts by claiming the run: two processes racing for one run id cannot both win.
    yield* events.withPermits(1)(Effect.gen(function*() {
      const started = yield* stamp({
        kind: "run_started",
        goal,
        policy: budget.policy,
        resuming: options.resume === true,
        iterations: opened.checkpoint.usage.iterations,
        usage: opened.checkpoint.usage
      })
      const claim = yield* store.claim({
        checkpoint: yield* snapshot("running", null),
        expected: opened.expected,
        quarantine: opened.corrupt,
        events: [started]
      })
      if (claim._tag === "Conflict") {
        const now = yield* store.load(runId)
        const owner = now._tag === "Found" ? now.checkpoint.owner : null
        return yield* options.resume && owner !== null
          ? Effect.fail(new RunInProgress({ run_id: runId, pid: owner.pid, host: owner.host }))
          : Effect.fail(new RunAlreadyExists({ run_id: runId, status: now._tag === "Found" ? now.checkpoint.status : "just created" }))
      }
      yield* onEvent(started)
      if (opened.corrupt !== undefined) {
        yield* Effect.flatMap(stamp({
          kind: "checkpoint_quarantined",
          quarantine_id: claim.quarantineId ?? 0,
          error: opened.corrupt.error,
          recovered_from: opened.corrupt.recoveredFrom
        }), (event) => Effect.zipRight(store.appendEvents([event]), onEvent(event)))
      }
    }))

    // From here on the run is ours: however the session ends, it leaves a true checkpoint behind.
    const session = Effect.gen(function*() {
      yield* store.clearStop(runId)
      if (options.halt !== undefined) {
        yield* options.halt.pipe(
          Effect.flatMap((reason) => Effect.zipRight(Deferred.succeed(haltRequested, reason), emitNow({ kind: "halt_requested", reason }))),
          Effect.forkScoped
        )
      }
      const heartbeat = yield* Effect.gen(function*() {
        const usage = yield* budget.usage
        yield* emitNow({ kind: "heartbeat", iteration: usage.iterations + 1, usage, criteria_met: yield* Ref.get(criteriaMet) })
      }).pipe(Effect.repeat(Schedule.spaced(options.heartbeatInterval ?? "30 seconds")), Effect.forkScoped)
      return yield* loop.pipe(Effect.ensuring(Fiber.interrupt(heartbeat)))
    })

    const outcome = yield* session.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : Effect.succeed<Outcome>({ status: "failed", reason: describeFailure(cause) })
      ),
      // Interrupted from outside (by the embedding program): still leave a true checkpoint.
      Effect.onInterrupt(() =>
        Effect.flatMap(Ref.get(criteriaMet), (met) => finish({ status: statusOf(met), reason: "interrupted" })).pipe(Effect.ignore)
      )
    )
    return yield* finish(outcome)
  }))

/** The same mission as a stream of its events, ending with the `result` event. */
export const stream = (
  options: Omit<MissionOptions, "onEvent">
): Stream.Stream<AutopilotEvent, MissionError, Llm | Toolkit | CheckpointStore> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Take.Take<AutopilotEvent, MissionError>>()
    yield* run({ ...options, onEvent: (event) => Queue.offer(queue, Take.of(event)) }).pipe(
      Effect.exit,
      Effect.flatMap((exit) => Queue.offer(queue, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))),
      Effect.forkScoped
    )
    return Stream.flattenTake(Stream.fromQueue(queue))
  }))
