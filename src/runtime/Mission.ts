import type { SqlError } from "@effect/sql"
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Option, Queue, Ref, Schedule, Stream, Take } from "effect"
import { Budget } from "../budget/Budget.js"
import * as Pricing from "../budget/Pricing.js"
import { BudgetPolicy, BudgetUsage } from "../domain/Budget.js"
import { Checkpoint } from "../domain/Checkpoint.js"
import { BadInput, LlmError, RunAlreadyExists, RunInProgress, RunNotFound } from "../domain/Errors.js"
import type { AutopilotEvent, EventBody } from "../domain/Event.js"
import type { Goal } from "../domain/Goal.js"
import { Owner } from "../domain/Owner.js"
import { type RunStatus, statusOf } from "../domain/RunStatus.js"
import { Step, type ToolCallRecord } from "../domain/Step.js"
import { Llm, type LlmRequest, type LlmResponse } from "../llm/Llm.js"
import { CheckpointStore } from "../store/CheckpointStore.js"
import { Toolkit } from "../tools/Tool.js"
import { actMessages, judgeMessages, parseVerdict } from "./Prompts.js"

export type PolicyOverrides = Partial<ConstructorParameters<typeof BudgetPolicy>[0]>

export interface MissionOptions {
  readonly runId: string
  /** Required for a new run; a resumed run keeps its own. */
  readonly goal?: Goal | undefined
  /** Caps for this session. A new run fills the rest with defaults; a resumed run keeps its earlier caps. */
  readonly policy?: PolicyOverrides | undefined
  readonly resume?: boolean | undefined
  readonly model?: string | undefined
  /** Completes with a reason when the run should halt, e.g. on a signal. */
  readonly halt?: Effect.Effect<string> | undefined
  /** How long an in-flight iteration may go on after a halt request before it is interrupted. */
  readonly haltGrace?: Duration.DurationInput | undefined
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** How many earlier iterations the model sees. */
  readonly historyWindow?: number | undefined
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

interface Opened {
  readonly checkpoint: Checkpoint
  readonly history: ReadonlyArray<Step>
  readonly quarantined?: { readonly id: number; readonly error: string; readonly recoveredFrom: string }
}

interface Outcome {
  readonly status: Exclude<RunStatus, "running">
  readonly reason: string | null
}

const isoNow = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

/** Transient model failures are retried with backoff on the Effect Clock, five attempts in all. */
const maxAttempts = 5
const retrySchedule = Schedule.exponential("250 millis").pipe(Schedule.intersect(Schedule.recurs(maxAttempts - 1)))

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

/** Loads the run to continue, or makes a new one; a checkpoint that does not decode is quarantined. */
const open = (options: MissionOptions, now: string) =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const runId = options.runId
    const loaded = yield* store.load(runId)
    if (!options.resume) {
      if (loaded._tag !== "Missing") {
        return yield* new RunAlreadyExists({
          run_id: runId,
          status: loaded._tag === "Found" ? loaded.checkpoint.status : "corrupt checkpoint"
        })
      }
      if (options.goal === undefined) return yield* new BadInput({ message: "a new run needs a goal: an objective and at least one criterion" })
      const checkpoint = new Checkpoint({
        version: 1,
        run_id: runId,
        goal: options.goal,
        policy: new BudgetPolicy(options.policy ?? {}),
        status: "running",
        halt_reason: null,
        usage: BudgetUsage.zero,
        criteria_met: options.goal.success_criteria.map(() => false),
        output: "",
        owner: Owner.current,
        created_at: now,
        updated_at: now
      })
      return { checkpoint, history: [] } satisfies Opened
    }
    if (loaded._tag === "Found") {
      const { owner, status } = loaded.checkpoint
      if (status === "running" && owner !== null && owner.isAlive) {
        return yield* new RunInProgress({ run_id: runId, pid: owner.pid, host: owner.host })
      }
      const checkpoint = new Checkpoint({
        ...loaded.checkpoint,
        policy: new BudgetPolicy({ ...loaded.checkpoint.policy, ...options.policy }),
        status: "running",
        halt_reason: null,
        owner: Owner.current
      })
      return { checkpoint, history: yield* store.recentSteps(runId, options.historyWindow ?? 6) } satisfies Opened
    }
    // The checkpoint is corrupt or gone: rebuild the run from its append-only history.
    const sessions = (yield* store.sessions(runId)).flatMap((e) => (e.kind === "run_started" ? [e] : []))
    const first = sessions[0]
    const latest = sessions[sessions.length - 1]
    if (first === undefined || latest === undefined) {
      if (loaded._tag === "Missing") return yield* new RunNotFound({ run_id: runId })
      return yield* new BadInput({ message: `run "${runId}" has a corrupt checkpoint and no history to rebuild it from` })
    }
    const quarantineId = loaded._tag === "Corrupt" ? yield* store.quarantine(runId, loaded.error, now) : 0
    const last = yield* store.lastStep(runId)
    const checkpoint = new Checkpoint({
      version: 1,
      run_id: runId,
      goal: latest.goal,
      policy: new BudgetPolicy({ ...latest.policy, ...options.policy }),
      status: "running",
      halt_reason: null,
      usage: Option.match(last, { onNone: () => BudgetUsage.zero, onSome: (step) => step.usage }),
      criteria_met: Option.match(last, {
        onNone: () => latest.goal.success_criteria.map(() => false),
        onSome: (step) => step.criteria_met
      }),
      output: Option.match(last, { onNone: () => "", onSome: (step) => step.answer }),
      owner: Owner.current,
      created_at: first.at,
      updated_at: now
    })
    return {
      checkpoint,
      history: yield* store.recentSteps(runId, options.historyWindow ?? 6),
      ...(loaded._tag === "Corrupt"
        ? {
          quarantined: {
            id: quarantineId,
            error: loaded.error,
            recoveredFrom: Option.match(last, { onNone: () => "start", onSome: (step) => `iteration ${step.iteration}` })
          }
        }
        : {})
    } satisfies Opened
  })

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

    const opened = yield* open(options, yield* isoNow)
    const goal = opened.checkpoint.goal
    const criteriaCount = goal.success_criteria.length
    const budget = yield* Budget.make(opened.checkpoint.policy, opened.checkpoint.usage)
    const policy = budget.policy

    const seq = yield* Ref.make(yield* store.nextSeq(runId))
    const pending = yield* Ref.make<Array<AutopilotEvent>>([])
    const criteriaMet = yield* Ref.make<ReadonlyArray<boolean>>(opened.checkpoint.criteria_met)
    const output = yield* Ref.make(opened.checkpoint.output)
    const history = yield* Ref.make<ReadonlyArray<Step>>(opened.history)
    const unpriced = new Set<string>()
    const haltRequested = yield* Deferred.make<string>()

    // The heartbeat and halt fibers emit alongside the loop: numbering, publishing and queueing an event
    // is one step, so consumers and the log see seq in order.
    const publishing = yield* Effect.makeSemaphore(1)
    const publish = <E>(body: EventBody, durably: (event: AutopilotEvent) => Effect.Effect<void, E>) =>
      publishing.withPermits(1)(Effect.gen(function*() {
        // Field order is for people reading the JSONL: kind, run, seq and time first.
        const event = {
          kind: body.kind,
          run_id: runId,
          seq: yield* Ref.getAndUpdate(seq, (n) => n + 1),
          at: yield* isoNow,
          ...(body as Omit<EventBody, "kind">),
          remaining: yield* budget.remaining
        } as AutopilotEvent
        yield* onEvent(event)
        yield* durably(event)
      }))
    /** Published now, made durable with the next commit. */
    const emit = (body: EventBody) => publish(body, (event) => Ref.update(pending, (es) => [...es, event]))
    /** Published and made durable now, outside any iteration's transaction. */
    const emitDurable = (body: EventBody) => publish(body, (event) => store.appendEvents([event]))

    const commit = (status: RunStatus, haltReason: string | null, step?: Step) =>
      Effect.gen(function*() {
        const checkpoint = new Checkpoint({
          ...opened.checkpoint,
          status,
          halt_reason: haltReason,
          usage: yield* budget.usage,
          criteria_met: yield* Ref.get(criteriaMet),
          output: yield* Ref.get(output),
          updated_at: yield* isoNow
        })
        yield* store.commit({ checkpoint, step, events: yield* Ref.getAndSet(pending, []) })
      })

    const callModel = (request: Omit<LlmRequest, "metadata" | "model" | "maxOutputTokens">, iteration: number) =>
      Effect.gen(function*() {
        const attempts = yield* Ref.make(0)
        const remaining = yield* budget.remaining
        const response: LlmResponse = yield* llm.complete({
          ...request,
          model: options.model,
          maxOutputTokens: remaining.tokens ?? undefined,
          metadata: { run_id: runId, iteration, criteria: criteriaCount }
        }).pipe(
          Effect.tapError((error) =>
            Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (attempt) =>
              error.transient && attempt < maxAttempts
                ? emit({ kind: "model_retry", iteration, attempt, error: error.message })
                : Effect.void)
          ),
          Effect.retry({ schedule: retrySchedule, while: (error) => error.transient })
        )
        const tokens = response.usage.input_tokens + response.usage.output_tokens
        const price = Pricing.priceOf(response.model)
        if (response.cost_usd === undefined && Option.isNone(price) && !unpriced.has(response.model)) {
          unpriced.add(response.model)
          yield* emit({ kind: "model_unpriced", model: response.model })
        }
        const dollars = response.cost_usd ??
          Option.match(price, { onNone: () => 0, onSome: (p) => Pricing.costOf(p, response.usage) })
        yield* budget.charge({ tokens, dollars })
        return response
      })

    const runTools = (response: LlmResponse, iteration: number) =>
      Effect.gen(function*() {
        const records: Array<ToolCallRecord> = []
        for (const call of response.tool_calls) {
          // A call the budget has no room for is not run and not charged; the model is told why.
          const record: ToolCallRecord = (yield* budget.takeToolCall)
            ? { name: call.name, arguments: call.arguments, ...(yield* toolkit.call(call.name, call.arguments)) }
            : { name: call.name, arguments: call.arguments, ok: false, output: "not run: the tool-call budget is spent" }
          records.push(record)
          yield* emit({ kind: "tool_call", iteration, ...record })
        }
        return records
      })

    const iterate = (iteration: number) =>
      Effect.gen(function*() {
        const before = yield* Ref.get(criteriaMet)
        const response = yield* callModel({
          purpose: "act",
          messages: actMessages({ goal, iteration, criteriaMet: before, history: yield* Ref.get(history) }),
          tools: toolkit.specs
        }, iteration)
        const toolCalls = yield* runTools(response, iteration)
        const reply = yield* callModel({
          purpose: "judge",
          messages: judgeMessages({
            goal,
            criteriaMet: before,
            answer: response.content,
            toolResults: toolCalls.map((c) => `${c.name}: ${c.output}`)
          }),
          tools: []
        }, iteration)
        const verdict = parseVerdict(reply.content, criteriaCount)
        // A criterion once verified stays verified: judges see one iteration, not the whole run.
        const after = Either.match(verdict, {
          onLeft: () => before,
          onRight: (v) => before.map((met, i) => met || v.criteria_met[i] === true)
        })
        const newlyMet = goal.success_criteria.flatMap((criterion, index) =>
          after[index] && !before[index] ? [{ index, criterion }] : []
        )
        if (newlyMet.length > 0) yield* emit({ kind: "criteria_satisfied", iteration, newly_met: newlyMet, criteria_met: after })
        const usage = yield* budget.charge({ iterations: 1 })
        return new Step({
          iteration,
          at: yield* isoNow,
          model: response.model,
          answer: response.content,
          tool_calls: toolCalls,
          verdict: Either.match(verdict, { onLeft: (e) => e, onRight: (v) => v.notes }),
          usage,
          criteria_met: after
        })
      })

    /** Why the run must stop before its next iteration, if it must. */
    const boundary = Effect.gen(function*() {
      const met = yield* Ref.get(criteriaMet)
      if (met.every(Boolean)) return Option.some<Outcome>({ status: "completed", reason: null })
      const requested = yield* Deferred.poll(haltRequested)
      const reason = requested._tag === "Some" ? Option.some(yield* requested.value) : yield* store.pendingStop(runId)
      if (Option.isSome(reason)) return Option.some<Outcome>({ status: statusOf(met), reason: reason.value })
      const exceeded = yield* budget.exceeded
      if (Option.isSome(exceeded)) {
        const { axis, reason, usage } = exceeded.value
        yield* emit({ kind: "budget_exceeded", axis, reason, usage })
        return Option.some<Outcome>({ status: statusOf(met), reason })
      }
      return Option.none<Outcome>()
    })

    const haltGrace = Deferred.await(haltRequested).pipe(
      Effect.zipRight(Effect.sleep(options.haltGrace ?? "5 seconds")),
      Effect.as(Option.none<Step>())
    )

    const loop = Effect.gen(function*() {
      while (true) {
        const stop = yield* boundary
        if (Option.isSome(stop)) return stop.value
        const iteration = (yield* budget.usage).iterations + 1
        const work = iterate(iteration)
        // The wall-clock axis bounds the iteration in flight, not only the boundary after it.
        const bounded = Option.match(yield* budget.timeLeft, {
          onNone: () => Effect.asSome(work),
          onSome: (left) => Effect.timeoutOption(work, left)
        })
        const step = yield* Effect.raceFirst(bounded, haltGrace)
        if (Option.isNone(step)) continue
        yield* Ref.set(criteriaMet, step.value.criteria_met)
        yield* Ref.set(output, step.value.answer)
        yield* Ref.update(history, (h) => [...h, step.value].slice(-(options.historyWindow ?? 6)))
        yield* emit({
          kind: "iteration",
          iteration,
          usage: step.value.usage,
          criteria_met: step.value.criteria_met,
          summary: `${summaryOf(step.value.answer)}${step.value.tool_calls.length > 0 ? ` (${step.value.tool_calls.length} tool calls)` : ""}`
        })
        yield* commit("running", null, step.value)
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

    yield* store.clearStop(runId)
    yield* emit({
      kind: "run_started",
      goal,
      policy,
      resuming: options.resume === true,
      iterations: opened.checkpoint.usage.iterations,
      usage: opened.checkpoint.usage
    })
    if (opened.quarantined !== undefined) {
      yield* emit({
        kind: "checkpoint_quarantined",
        quarantine_id: opened.quarantined.id,
        error: opened.quarantined.error,
        recovered_from: opened.quarantined.recoveredFrom
      })
    }
    yield* commit("running", null)

    if (options.halt !== undefined) {
      yield* options.halt.pipe(
        Effect.flatMap((reason) =>
          Deferred.succeed(haltRequested, reason).pipe(Effect.zipRight(emit({ kind: "halt_requested", reason })))
        ),
        Effect.forkScoped
      )
    }
    const heartbeat = yield* Effect.gen(function*() {
      const usage = yield* budget.usage
      yield* emitDurable({ kind: "heartbeat", iteration: usage.iterations + 1, usage, criteria_met: yield* Ref.get(criteriaMet) })
    }).pipe(Effect.repeat(Schedule.spaced(options.heartbeatInterval ?? "30 seconds")), Effect.forkScoped)

    const outcome = yield* loop.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : Effect.succeed<Outcome>({ status: "failed", reason: describeFailure(cause) })
      ),
      // Interrupted from outside (the embedding program, a second signal): still leave a true checkpoint.
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          yield* Fiber.interrupt(heartbeat)
          const met = yield* Ref.get(criteriaMet)
          yield* finish({ status: statusOf(met), reason: "interrupted" })
        }).pipe(Effect.ignore)
      )
    )
    yield* Fiber.interrupt(heartbeat)
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
