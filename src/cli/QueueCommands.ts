import { Args, Command, Options } from "@effect/cli"
import { Console, DateTime, Effect, Either, Layer, Option } from "effect"
import { BadInput } from "../domain/Errors.js"
import * as QueueEntry from "../domain/QueueEntry.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import * as GoalQueue from "../queue/GoalQueue.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as QueueStore from "../store/QueueStore.js"
import * as RunStore from "../store/RunStore.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import { llmRequested, sessionFlags, specialistFlag, specialistOf } from "./RunCommand.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** The queue on one SQLite file (created, with its folders, if missing). */
const queueOver = GoalQueue.layer.pipe(Layer.provideMerge(Layer.merge(QueueStore.layer, RunStore.layer)))

const queueLayer = (target: DatabaseTarget.DatabaseTarget) => queueOver.pipe(Layer.provideMerge(DatabaseTarget.layer(target)))

/**
 * Runs `effect` on the queue of the database, unless the database does not exist or has never held a
 * queue: then `absent`, and a question about the queue creates nothing.
 */
const withQueue = <A, E, A2, E2>(
  db: Flags.DatabaseFlags,
  absent: Effect.Effect<A2, E2>,
  effect: Effect.Effect<A, E, GoalQueue.GoalQueue>
) =>
  Effect.flatMap(Flags.target(db), (target) => DatabaseTarget.whenHolds(target, "queue_entries", absent, Effect.provide(effect, queueOver)))

const stateText = ({ entry, ready, run }: GoalQueue.Listed) =>
  entry.status === "dispatched"
    ? `dispatched (${run === null ? "no run" : `run ${run}`})`
    : ready
    ? "ready"
    : `not before ${entry.not_before}`

const listedText = (listed: ReadonlyArray<GoalQueue.Listed>) => {
  const rows = [
    ["ID", "PRIORITY", "STATUS", "OBJECTIVE"],
    ...listed.map((l) => [l.entry.id, String(l.entry.priority), stateText(l), l.entry.objective.replace(/\s+/g, " ").slice(0, 60)])
  ]
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length)))
  const table = rows.map((row) => row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join("  "))
  const queued = listed.filter((l) => l.entry.status === "queued")
  const summary = `${queued.length} queued (${queued.filter((l) => l.ready).length} ready now), ${listed.length - queued.length} dispatched`
  return [...table, "", summary].join("\n")
}

/** Flags that take a number, read as text so that a wrong value gets a line naming the flag and the range. */
const priorityOf = (raw: Option.Option<string>): Effect.Effect<number | undefined, BadInput> =>
  Option.match(raw, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) => {
      const value = /^[+-]?\d{1,15}$/.test(text) ? Number(text) : Number.NaN
      const problem = QueueEntry.priorityProblem(value)
      return problem === undefined ? Effect.succeed(value) : Effect.fail(new BadInput({ message: `--priority ${problem}, got "${text}"` }))
    }
  })

/** The text itself, once it reads as a time: the queue reads a duration from the moment it queues the entry. */
const notBeforeOf = (raw: Option.Option<string>): Effect.Effect<string | undefined, BadInput> =>
  Option.match(raw, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) =>
      Effect.flatMap(DateTime.now, (now) =>
        Either.match(QueueEntry.notBeforeOf(text, now), {
          onLeft: (problem) => Effect.fail(new BadInput({ message: `--not-before ${problem}, got "${text}"` })),
          onRight: () => Effect.succeed(text)
        }))
  })

const add = Command.make(
  "add",
  {
    objective: Args.text({ name: "objective" }).pipe(Args.withDescription("what the run is for, in plain words")),
    criteria: Options.text("criterion").pipe(
      Options.withDescription("a success criterion; repeat for several (default: the objective itself)"),
      Options.repeated
    ),
    ...Flags.budgetFlags,
    llm: sessionFlags.llm,
    model: sessionFlags.model,
    mockScript: sessionFlags.mockScript,
    specialist: specialistFlag,
    runId: Options.text("run-id").pipe(Options.withDescription("the id its run will have (default: generated)"), Options.optional),
    priority: Options.text("priority").pipe(
      Options.withPseudoName("0-100"),
      Options.withDescription(`higher is taken first; equal priorities in the order queued (default ${QueueEntry.defaultPriority})`),
      Options.optional
    ),
    notBefore: Options.text("not-before").pipe(
      Options.withPseudoName("time|duration"),
      Options.withDescription("no daemon takes it before then: an ISO-8601 time with a zone (2026-05-01T09:00:00Z) or a duration from now (10m, 2 hours)"),
      Options.optional
    ),
    project: Flags.project(`the project its run will belong to (default "default")`),
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const llm = llmRequested(input, false)
      const entry: QueueEntry.NewEntry = {
        objective: input.objective,
        criteria: input.criteria,
        runId: Option.getOrUndefined(input.runId),
        policy: yield* Flags.policyOverrides(input),
        priority: yield* priorityOf(input.priority),
        notBefore: yield* notBeforeOf(input.notBefore),
        specialist: yield* specialistOf(input.specialist),
        llm,
        project: yield* Flags.projectOf(input.project)
      }
      // Everything is checked before the database is opened, so bad input leaves no trace: what the entry
      // is made of, and, as for `autopilot run`, the model (a missing key or script).
      const checked = yield* QueueEntry.make(entry)
      yield* LlmLayer.validate(checked.llm)
      const target = yield* Flags.target(input.db)
      const queued = yield* Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.add({ ...entry, runId: checked.id })).pipe(Effect.provide(queueLayer(target)))
      if (input.format === "text") return yield* Console.log(queued.id)
      const ready = QueueEntry.isReady(queued, yield* DateTime.now)
      yield* Console.log(Render.json(GoalQueue.listedJson({ entry: queued, ready, run: null }), 2))
    })
).pipe(Command.withDescription("Queue a run for the daemons to start in priority order; prints its id, the id its run will have"))

const list = Command.make(
  "list",
  { project: Flags.project("only the entries of this project (default: every project's)"), db: Flags.db, format: jsonFormat },
  ({ db, format, ...input }) =>
    Effect.gen(function*() {
      const project = yield* Flags.projectOf(input.project)
      const listed = yield* withQueue(db, Effect.succeed([]), Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.list({ project })))
      if (format === "json") return yield* Console.log(Render.json(listed.map(GoalQueue.listedJson), 2))
      if (listed.length === 0) return yield* Console.log("the queue is empty (`autopilot queue add OBJECTIVE` queues a run)")
      yield* Console.log(listedText(listed))
    })
).pipe(Command.withDescription("List the queue in the order the daemons take it (priority, then the order queued), then what they have taken, with their runs' states"))

const remove = Command.make(
  "remove",
  { id: Args.text({ name: "id" }), db: Flags.db },
  ({ db, id }) =>
    Effect.gen(function*() {
      yield* withQueue(db, Effect.fail(new QueueEntry.QueueEntryNotFound({ id })), Effect.flatMap(GoalQueue.GoalQueue, (queue) => queue.remove(id)))
      yield* Console.log(`removed queued entry ${id}`)
    })
).pipe(Command.withDescription("Remove a queued entry before a daemon takes it (one already taken is a run: `autopilot stop` stops it)"))

export const queue = Command.make("queue").pipe(
  Command.withDescription("The goal queue: runs waiting for `autopilot daemon` to start them, by priority and not-before time"),
  Command.withSubcommands([add, list, remove])
)
