import { Cause, Deferred, Effect, Either, Exit, Option, Ref } from "effect"
import * as Slices from "../budget/Slices.js"
import { type Axis, BudgetUsage, haltReasonFor } from "../domain/Budget.js"
import { BadInput } from "../domain/Errors.js"
import type { AutopilotEvent, EventBody } from "../domain/Event.js"
import * as Fanout from "../domain/Fanout.js"
import type { Goal } from "../domain/Goal.js"
import { EventStore } from "../store/EventStore.js"
import { type Loaded, RunStore } from "../store/RunStore.js"
import * as Critic from "./Critic.js"
import * as HaltControl from "./HaltControl.js"
import * as Mission from "./Mission.js"
import * as Session from "./Session.js"

/** An item as a library caller gives it: text, or a child that fans out in turn over its own items. */
export type FanoutItemInput = string | {
  readonly item: string
  readonly template: string
  readonly items: ReadonlyArray<FanoutItemInput>
  readonly criteria?: ReadonlyArray<string> | undefined
  readonly maxParallel?: number | undefined
}

export interface FanoutOptions extends Omit<Mission.MissionOptions, "goal" | "onDelta"> {
  /** Each child's objective, with `{item}` where its item goes. Required for a new fan-out; a resume keeps its own. */
  readonly template?: string | undefined
  readonly items?: ReadonlyArray<FanoutItemInput> | undefined
  /** Each child's criteria, `{item}` replaced; by default a child's objective is its one criterion. */
  readonly criteria?: ReadonlyArray<string> | undefined
  /** How many children run at a time (default 4). */
  readonly maxParallel?: number | undefined
  /** The most items a fan-out may have (default 100,000), at every level. */
  readonly maxItems?: number | undefined
  /** How many levels of fan-out may nest, this one included (default 3). */
  readonly maxDepth?: number | undefined
  /** Receives every child's events once durable (the fan-out's own go to `onEvent`). */
  readonly onChildEvent?: ((event: AutopilotEvent) => Effect.Effect<void>) | undefined
}

/** How one child ended, in the order of the items. */
export interface ChildResult {
  readonly index: number
  readonly run_id: string
  readonly item: string
  readonly status: Fanout.ChildStatus
  readonly halt_reason: string | null
  readonly iterations: number
  readonly usage: BudgetUsage
  readonly criteria_met: ReadonlyArray<boolean>
}

export interface FanoutResult extends Mission.MissionResult {
  readonly children: ReadonlyArray<ChildResult>
  readonly rollup: Fanout.Rollup
}

/** Where a child stands as a session of its fan-out starts. */
type Standing =
  | { readonly _tag: "Final"; readonly result: ChildResult }
  | { readonly _tag: "Unfinished"; readonly spent: BudgetUsage; readonly resume: boolean }

const fresh: Standing = { _tag: "Unfinished", spent: BudgetUsage.zero, resume: false }

/** How a child ended, in its fan-out's terms. */
const resultOf = (child: Fanout.Child, ended: Pick<ChildResult, "status" | "halt_reason" | "usage" | "criteria_met">): ChildResult => ({
  index: child.index,
  run_id: child.run_id,
  item: Fanout.itemText(child.item),
  status: ended.status,
  halt_reason: ended.halt_reason,
  iterations: ended.usage.iterations,
  usage: ended.usage,
  criteria_met: ended.criteria_met
})

/**
 * A child that ended completed or failed, or halted or partial for a reason of its own (its budget, a
 * stop of its own), is final and never runs again. One never started, interrupted (its process died),
 * or halted by a halt of the fan-out (`stops`: its signals and stop requests, or an interruption) is
 * unfinished, and a resume of the fan-out continues it.
 */
const standingOf = (child: Fanout.Child, loaded: Loaded, stops: ReadonlySet<string>): Standing => {
  if (loaded._tag === "Missing") return fresh
  if (loaded._tag === "Corrupt") return { _tag: "Unfinished", spent: BudgetUsage.zero, resume: true }
  const { criteria_met, halt_reason, status, usage } = loaded.checkpoint
  const haltedByUs = (status === "halted" || status === "partial") && halt_reason !== null && stops.has(halt_reason)
  if (status === "running" || haltedByUs) return { _tag: "Unfinished", spent: usage, resume: true }
  return { _tag: "Final", result: resultOf(child, { status, halt_reason, usage, criteria_met }) }
}

const toItem = (input: FanoutItemInput): Fanout.FanoutItem =>
  typeof input === "string"
    ? input
    : {
      item: input.item,
      template: input.template,
      items: input.items.map(toItem),
      ...(input.criteria === undefined ? {} : { criteria: input.criteria }),
      max_parallel: input.maxParallel ?? Fanout.defaults.maxParallel
    }

/** A child's end as its fan-out's `fanout_child` event. */
const reportOf = (r: ChildResult): EventBody => ({
  kind: "fanout_child",
  index: r.index,
  child_run_id: r.run_id,
  status: r.status === "not_started" ? "halted" : r.status,
  halt_reason: r.halt_reason,
  usage: r.usage
})

/** The result's output: the roll-up, then one line per child in the order of the items. */
const outputOf = (children: ReadonlyArray<ChildResult>, rollup: Fanout.Rollup) =>
  [
    `${children.length} children: ${Fanout.describeRollup(rollup)}`,
    ...children.map((c) => `[${c.index}] ${c.run_id} ${c.status.replace("_", " ")}${c.halt_reason === null ? "" : ` (${c.halt_reason})`}`)
  ].join("\n")

/**
 * A fan-out's criterion counts as met when every child met it (a child fanning out in turn, with
 * criteria of its own, by completing).
 */
const criteriaOf = (goal: Goal, children: ReadonlyArray<ChildResult>) =>
  goal.success_criteria.map((_, i) =>
    children.every((c) => c.status === "completed" || (c.criteria_met.length === goal.success_criteria.length && c.criteria_met[i] === true)))

interface SpecOptions extends Omit<FanoutOptions, "template" | "items" | "criteria" | "maxParallel" | "maxItems" | "maxDepth"> {
  readonly goal?: Goal | undefined
  readonly spec?: Fanout.FanoutSpec | undefined
}

/** A fan-out run whose spec is already checked: a new one, a resumed one, or a nested child. */
const runSpec = (options: SpecOptions): Effect.Effect<FanoutResult, Mission.MissionError, Mission.MissionContext> =>
  Effect.scoped(Effect.gen(function*() {
    // The fan-out's critic and specialist, recorded with it, go to every child it starts, on a resume too.
    const { critic, session } = yield* Mission.open({ ...options, fanout: { spec: options.spec } })
    const { budget, goal, journal, progress, runId } = session
    // Opening checked that the run is a fan-out, so its spec is on record.
    const spec = session.fanout!
    const children = Fanout.childrenOf(runId, spec)
    const results = yield* Ref.make<ReadonlyArray<ChildResult>>([])

    const work = Effect.gen(function*() {
      const runs = yield* RunStore
      const events = yield* EventStore
      // A new fan-out's children cannot have run yet; a resumed one's are looked up, with the log of
      // which halts were the fan-out's own and which child endings it already reported.
      const logged = options.resume ? (yield* events.after(runId, 0)).map((stored) => stored.event) : []
      const stops = new Set(["interrupted", ...logged.flatMap((e) => (e.kind === "halt_requested" ? [e.reason] : []))])
      const reported = new Map(logged.flatMap((e) => (e.kind === "fanout_child" ? [[e.index, `${e.status} ${e.halt_reason}`] as const] : [])))
      const standings = options.resume
        ? yield* Effect.forEach(children, (child) => Effect.map(runs.load(child.run_id), (loaded) => standingOf(child, loaded, stops)))
        : children.map(() => fresh)

      // The fan-out's use is its own wall clock plus what its children spent, as their checkpoints say.
      yield* Slices.chargeChildren(budget, standings.map((s) => (s._tag === "Final" ? s.result.usage : s.spent)))

      const finals = standings.flatMap((s) => (s._tag === "Final" ? [s.result] : []))
      yield* journal.emit({
        kind: "fanout_started",
        template: spec.template,
        max_parallel: spec.max_parallel,
        children: children.map((c) => ({ index: c.index, run_id: c.run_id, item: Fanout.itemText(c.item) })),
        finished: finals.map((r) => r.index)
      })
      // A child that ended while its fan-out's process was being killed is reported now.
      for (const r of finals) {
        if (reported.get(r.index) !== `${r.status} ${r.halt_reason}`) yield* journal.emit(reportOf(r))
      }
      yield* journal.commit(events.append)
      // As for a mission: after a kill -9, a resume takes the fan-out's own wall clock from its last heartbeat.
      yield* Effect.forkScoped(Session.heartbeat(session, options.heartbeatInterval ?? "30 seconds"))

      const slices = yield* Slices.make(budget, standings.filter((s) => s._tag === "Unfinished").length)
      const halt = yield* HaltControl.forParent({ runId, journal, halt: options.halt })
      const skippedFor = yield* Ref.make(Option.none<Axis>())

      const notStarted = (child: Fanout.Child, spent: BudgetUsage) =>
        resultOf(child, { status: "not_started", halt_reason: null, usage: spent, criteria_met: goal.success_criteria.map(() => false) })

      const failed = (child: Fanout.Child, spent: BudgetUsage, reason: string): ChildResult => ({
        ...notStarted(child, spent),
        status: "failed",
        halt_reason: reason
      })

      /** The child's own run: an ordinary mission session, or a fan-out of its own. It never fails. */
      const execute = (child: Fanout.Child, standing: Extract<Standing, { _tag: "Unfinished" }>, policy: Slices.Reservation["policy"]) => {
        const common = {
          runId: child.run_id,
          policy,
          resume: standing.resume,
          takeOver: options.takeOver,
          llm: session.llm,
          specialist: session.specialist,
          project: session.project,
          halt: Deferred.await(halt),
          haltGrace: options.haltGrace,
          haltNow: options.haltNow,
          heartbeatInterval: options.heartbeatInterval,
          historyWindow: options.historyWindow,
          onEvent: options.onChildEvent
        }
        const own = standing.resume ? undefined : Fanout.childGoal(goal, spec.template, child.item)
        const ran: Effect.Effect<Mission.MissionResult, Mission.MissionError, Mission.MissionContext> = typeof child.item === "string"
          ? Mission.run({ ...common, goal: own })
          : runSpec({ ...common, goal: own, spec: standing.resume ? undefined : child.item, onChildEvent: options.onChildEvent })
        return (critic === undefined ? ran : Effect.provideService(ran, Critic.Critic, critic)).pipe(
          Effect.map((r) => resultOf(child, r)),
          // One child's failure is its own: its siblings go on.
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.succeed(failed(child, standing.spent, Mission.describeFailure(cause))))
        )
      }

      /** What an interrupted child spent, as its last checkpoint says. */
      const spentBy = (child: Fanout.Child, before: BudgetUsage) =>
        Effect.map(Effect.orElseSucceed(runs.load(child.run_id), () => ({ _tag: "Missing" }) as const), (loaded) =>
          loaded._tag === "Found" ? loaded.checkpoint.usage : before)

      const runChild = (child: Fanout.Child, standing: Extract<Standing, { _tag: "Unfinished" }>) =>
        Effect.gen(function*() {
          if (yield* Deferred.isDone(halt)) {
            yield* slices.skip
            return notStarted(child, standing.spent)
          }
          const ran = yield* slices.withSlice(
            standing.spent,
            (reservation) =>
              Effect.flatMap(Deferred.isDone(halt), (halted) =>
                halted ? Effect.succeed(notStarted(child, standing.spent)) : execute(child, standing, reservation.policy)),
            Exit.match({ onSuccess: (r) => Effect.succeed(r.usage), onFailure: () => spentBy(child, standing.spent) })
          )
          if (Either.isLeft(ran)) {
            yield* Ref.update(skippedFor, Option.orElse(() => Option.some(ran.left)))
            return notStarted(child, standing.spent)
          }
          const r = ran.right
          if (r.status !== "not_started") yield* journal.emitNow(reportOf(r))
          return r
        })

      const ended = yield* Effect.forEach(
        children,
        (child, i) => {
          const standing = standings[i]!
          return standing._tag === "Final" ? Effect.succeed(standing.result) : runChild(child, standing)
        },
        { concurrency: spec.max_parallel }
      )
      yield* Ref.set(results, ended)

      const rollup = Fanout.rollupOf(ended.map((r) => r.status))
      const status = Fanout.statusOfRollup(rollup)
      yield* Ref.set(progress, { criteria_met: criteriaOf(goal, ended), output: outputOf(ended, rollup), history: [] })
      if (status === "completed") return { status, reason: null } satisfies Session.Outcome
      const stopped = yield* Deferred.poll(halt)
      if (Option.isSome(stopped)) return { status, reason: yield* stopped.value } satisfies Session.Outcome
      const skipped = yield* Ref.get(skippedFor)
      if (Option.isSome(skipped)) {
        const usage = yield* budget.usage
        const reason = `${haltReasonFor(skipped.value, budget.policy, usage)}; ${rollup.not_started} of ${ended.length} children not started`
        return { status, reason, exceeded: { axis: skipped.value, reason, usage } } satisfies Session.Outcome
      }
      const reason = status === "failed"
        ? `every child failed; the first: ${ended[0]?.halt_reason}`
        : `${ended.length - rollup.completed} of ${ended.length} children did not complete (${Fanout.describeRollup(rollup)})`
      return { status, reason } satisfies Session.Outcome
    })

    const withChildren = (result: Mission.MissionResult) =>
      Effect.map(Ref.get(results), (children): FanoutResult => ({ ...result, children, rollup: Fanout.rollupOf(children.map((c) => c.status)) }))

    return yield* Effect.flatMap(Mission.conclude(session, work), withChildren)
  }))

/**
 * A new fan-out must not take over runs that already have its children's ids (made by hand, or left by
 * an earlier fan-out of the same id): each would fail as a child, and be deleted with the fan-out.
 * Checked before anything is written; a fan-out whose own id exists is refused as any run is.
 */
const childIdsFree = (runId: string, spec: Fanout.FanoutSpec) =>
  Effect.gen(function*() {
    const runs = yield* RunStore
    if ((yield* runs.load(runId))._tag !== "Missing") return
    const taken = yield* Effect.findFirst(Fanout.descendantsOf(runId, spec), (id) => Effect.map(runs.load(id), (loaded) => loaded._tag !== "Missing"))
    if (Option.isSome(taken)) {
      return yield* new BadInput({
        message: `run "${taken.value}" already exists, and fan-out "${runId}" would make a child of that id; choose another --run-id`
      })
    }
  })

/**
 * What a run fans out over, as recorded: in its checkpoint, or in its last `run_started` when the
 * checkpoint is lost or corrupt; undefined for a mission and for an unknown run.
 */
export const specOf = (runId: string) =>
  Effect.gen(function*() {
    const loaded = yield* (yield* RunStore).load(runId)
    if (loaded._tag === "Found") return loaded.checkpoint.fanout
    const started = (yield* (yield* EventStore).sessions(runId)).at(-1)
    return started?.kind === "run_started" ? started.fanout : undefined
  })

/**
 * Runs one child per item, at most `maxParallel` at a time, each its own checkpointed run
 * `<runId>.<index>-<slug>` whose objective is the template with `{item}` replaced, as fibers in this
 * run's scope. Each child's caps are a slice of what this run has left (see `Slices`); one child's
 * failure does not stop its siblings; a halt (signal, `halt`, a stop request) halts every running child
 * at its next iteration boundary and starts no more. With `resume`, only unfinished children run.
 */
export const run = (options: FanoutOptions): Effect.Effect<FanoutResult, Mission.MissionError, Mission.MissionContext> =>
  Effect.gen(function*() {
    const { criteria, items, maxDepth, maxItems, maxParallel, template, ...rest } = options
    const given = template !== undefined || items !== undefined
    const spec: Fanout.FanoutSpec | undefined = given
      ? { template: template ?? "", items: (items ?? []).map(toItem), max_parallel: maxParallel ?? Fanout.defaults.maxParallel }
      : undefined
    if (spec !== undefined) {
      yield* Fanout.check(options.runId, spec, criteria, {
        maxItems: maxItems ?? Fanout.defaults.maxItems,
        maxDepth: maxDepth ?? Fanout.defaults.maxDepth
      })
      if (options.resume !== true) yield* childIdsFree(options.runId, spec)
    }
    const goal = spec === undefined ? undefined : Fanout.parentGoal(spec.template, spec.template, criteria)
    return yield* runSpec({ ...rest, goal, spec })
  })
