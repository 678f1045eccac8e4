import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Option, Stream } from "effect"
import { BadInput } from "../domain/Errors.js"
import { dollars, plural } from "../domain/Quantity.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { ModelCall, Step } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import * as Runs from "../runtime/Runs.js"
import type { StepMessages } from "../runtime/Transcript.js"
import { defaultProject } from "../domain/MissionRecord.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import { withExistingRuns, withRuns } from "./Store.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** A step's messages, when asked for, keyed by iteration. */
type Messages = ReadonlyMap<number, StepMessages>

const callText = (call: ModelCall) =>
  `${call.purpose} ${call.model_used} ${call.input_tokens}+${call.output_tokens} tokens ${dollars(call.cost_usd, 6)} ${call.latency_ms.toFixed(0)} ms`

const messageText = (label: string, messages: ReadonlyArray<ChatMessage>) => [
  `    ${label}:`,
  ...messages.map((m) => `      ${m.role}: ${m.content.replaceAll("\n", "\n        ")}`)
]

/** `completed`, `halted (reason)`, or `interrupted (its process is gone; how to resume it)`. */
const statusText = (c: Checkpoint) =>
  Option.match(Runs.interruptionOf(c), {
    onSome: (interrupted) => `interrupted (${interrupted.reason})`,
    onNone: () => `${c.status}${c.halt_reason === null ? "" : ` (${c.halt_reason})`}`
  })

/** A fan-out's children: how many are in each state (the four final ones always), then one line each. */
const childrenText = (children: ReadonlyArray<Runs.ChildView>) => {
  const rollup = Runs.childRollup(children)
  const counts = Object.entries(rollup)
    .filter(([state, n]) => n > 0 || ["completed", "partial", "halted", "failed"].includes(state))
    .map(([state, n]) => `${n} ${state.replace("_", " ")}`)
  return [
    `children: ${counts.join(", ")}`,
    ...children.map((child) =>
      `  [${child.index}] ${child.run_id}  ${child.state.replace("_", " ")}${child.halt_reason === null ? "" : ` (${child.halt_reason})`}  ${child.item}`)
  ]
}

const showText = (c: Checkpoint, steps: ReadonlyArray<Step>, messages: Messages, children: ReadonlyArray<Runs.ChildView>, artifacts: number) =>
  [
    `run ${c.run_id}: ${statusText(c)}`,
    ...(c.fanout === undefined ? [] : [`fan-out of ${c.fanout.items.length}, at most ${c.fanout.max_parallel} at a time: ${c.fanout.template}`]),
    `objective: ${c.goal.objective}`,
    ...c.goal.success_criteria.map((text, i) => `  [${c.criteria_met[i] ? "x" : " "}] ${text}`),
    ...(c.llm === undefined ? [] : [`model: ${LlmChoice.describe(c.llm)}`]),
    c.critic === undefined
      ? "critic: off"
      : `critic: on (overrules the judge at confidence ≥ ${c.critic.threshold}; ${plural(c.critic.max_suggestions, "suggestion")} at most)`,
    ...(c.specialist === undefined ? [] : [`specialist: ${c.specialist.id} (${c.specialist.name}, model tier ${c.specialist.model_tier})`]),
    ...(c.project === defaultProject ? [] : [`project: ${c.project}`]),
    `usage: ${Render.usage(c.usage)}`,
    `total cost: ${dollars(c.usage.dollars, 6)}`,
    ...(c.fanout === undefined ? [] : childrenText(children)),
    `artifacts: ${artifacts}${c.fanout === undefined ? "" : ", its children's"}${artifacts === 0 ? "" : ` (\`autopilot artifacts ${c.run_id}\` lists them)`}`,
    ...(steps.length === 0
      ? []
      : [
        steps.length < c.usage.iterations ? `last ${steps.length} of ${c.usage.iterations} steps:` : "steps:",
        ...steps.flatMap((step) => {
          const m = messages.get(step.iteration)
          return [
            `  [${step.iteration}] ${dollars(Runs.telemetryOf(step).cost_usd, 6)} · ${step.calls.map(callText).join(" · ")}`,
            ...(m === undefined ? [] : [...messageText("act", m.act), ...messageText("judge", m.judge)])
          ]
        })
      ]),
    `created ${c.created_at} · updated ${c.updated_at}`
  ].join("\n")

export const show = Command.make(
  "show",
  {
    runId: Args.text({ name: "run-id" }),
    steps: Flags.count("steps", "how many of the latest steps to show telemetry for (default 20; 0 for all)", 20),
    messages: Options.boolean("messages").pipe(
      Options.withDescription("also show every message of those steps: the act conversation and the judge's prompt")
    ),
    db: Flags.db,
    format: jsonFormat
  },
  ({ db, format, messages, runId, steps }) =>
    Effect.gen(function*() {
      const target = yield* Flags.target(db)
      const view = yield* withExistingRuns(target, runId, Effect.flatMap(Runs.Runs, (runs) => runs.show(runId, { steps, messages })))
      yield* Console.log(
        format === "json"
          ? Render.json(Runs.viewJson(view), 2)
          : showText(view.checkpoint, view.steps, view.messages, view.children, view.artifacts)
      )
    })
).pipe(Command.withDescription("Show a run as of its latest checkpoint, with per-step telemetry and its total cost"))

const listedText = (run: Runs.Listed) => {
  if (run._tag === "Corrupt") return `${run.run_id}  corrupt      checkpoint does not decode; resume quarantines it  ${run.updated_at}`
  const c = run.checkpoint
  const line = [
    c.run_id,
    run.state.padEnd(11),
    plural(c.usage.iterations, "iteration", String(c.usage.iterations).padStart(6)).padEnd(17),
    `criteria ${c.criteria_met.filter(Boolean).length}/${c.criteria_met.length}`,
    dollars(c.usage.dollars),
    c.updated_at,
    `${c.fanout === undefined ? "" : `fan-out of ${c.fanout.items.length}: `}${c.goal.objective}`.slice(0, 60)
  ].join("  ")
  return Option.match(Runs.interruptionOf(c), { onNone: () => line, onSome: (interrupted) => `${line}\n    ${interrupted.reason}` })
}

export const runs = Command.make(
  "runs",
  {
    status: Flags.states,
    limit: Flags.count("limit", "list only the newest N runs (default 0: all)", 0),
    project: Flags.project("only the runs of this project (default: every project's)"),
    db: Flags.db,
    format: jsonFormat
  },
  ({ db, format, limit, status, ...input }) =>
    Effect.gen(function*() {
      const project = yield* Flags.projectOf(input.project)
      const listed = yield* withRuns(
        yield* Flags.target(db),
        Effect.succeed([]),
        Effect.flatMap(Runs.Runs, (runs) => runs.list({ states: status, limit, project }))
      )
      if (format === "json") return yield* Console.log(Render.json(listed.map(Runs.listedJson), 2))
      if (listed.length === 0) return yield* Console.log(status.length === 0 ? "no runs yet" : `no ${status.join(" or ")} runs`)
      for (const run of listed) yield* Console.log(listedText(run))
    })
).pipe(Command.withDescription("List runs, newest first; an interrupted run is one whose process is gone"))

export const events = Command.make(
  "events",
  {
    runId: Args.text({ name: "run-id" }),
    follow: Options.boolean("follow").pipe(
      Options.withDescription("keep printing new events until the run ends; if its process is gone, say so and exit 5")
    ),
    db: Flags.db,
    format: Flags.format
  },
  ({ db, follow, format, runId }) =>
    Effect.gen(function*() {
      const target = yield* Flags.target(db)
      const print = format === "jsonl" ? Render.jsonl : Render.text
      yield* withExistingRuns(
        target,
        runId,
        Effect.flatMap(Runs.Runs, (runs) => runs.events(runId, { follow }).pipe(Stream.runForEach((event) => Console.log(print(event)))))
      )
    })
).pipe(Command.withDescription("Print a run's events; --follow keeps printing until it ends"))

const deletedText = (deleted: Runs.Deleted) =>
  `${deleted.run_id} (${deleted.state ?? "history only"}${deleted.updated_at === null ? "" : `, updated ${deleted.updated_at}`})` +
  (deleted.workspace === null ? "" : ` and its workspace ${deleted.workspace}`)

export const deleteRuns = Command.make(
  "delete",
  { runIds: Args.text({ name: "run-id" }).pipe(Args.atLeast(1)), db: Flags.db },
  ({ db, runIds }) =>
    Effect.gen(function*() {
      const target = yield* Flags.target(db)
      const deleted = yield* withExistingRuns(target, runIds[0], Effect.flatMap(Runs.Runs, (runs) => runs.delete(runIds)))
      for (const run of deleted) yield* Console.log(`deleted run ${deletedText(run)}`)
    })
).pipe(Command.withDescription("Delete runs and all that is kept of them, all or none; never a run that is still going"))

export const prune = Command.make(
  "prune",
  {
    olderThan: Flags.olderThan,
    status: Flags.states,
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("list what would be deleted, and delete nothing")),
    db: Flags.db
  },
  ({ db, dryRun, olderThan, status }) =>
    Effect.gen(function*() {
      const deleted = yield* withRuns(
        yield* Flags.target(db),
        Effect.succeed([]),
        Effect.flatMap(Runs.Runs, (runs) => runs.prune({ olderThan: Duration.days(olderThan), states: status, dryRun }))
      )
      for (const run of deleted) yield* Console.log(`${dryRun ? "would delete" : "deleted"} run ${deletedText(run)}`)
      yield* Console.log(
        deleted.length === 0
          ? "no runs to delete"
          : dryRun
          ? `would delete ${plural(deleted.length, "run")}; nothing was deleted (--dry-run)`
          : `deleted ${plural(deleted.length, "run")}`
      )
    })
).pipe(Command.withDescription("Delete the runs last updated more than --older-than days ago; never a run that is still going"))

export const stop = Command.make(
  "stop",
  {
    runId: Args.text({ name: "run-id" }),
    reason: Options.text("reason").pipe(Options.withDescription("becomes the run's halt_reason"), Options.withDefault("stopped by request")),
    db: Flags.db
  },
  ({ db, reason, runId }) =>
    Effect.gen(function*() {
      const target = yield* Flags.target(db)
      if (reason.trim() === "") return yield* new BadInput({ message: "--reason must be non-empty text" })
      yield* withExistingRuns(target, runId, Effect.flatMap(Runs.Runs, (runs) => runs.stop(runId, reason)))
      yield* Console.log(`stop requested for run ${runId}: it halts at its next iteration boundary`)
    })
).pipe(Command.withDescription("Ask a running run, in any process, to halt at its next iteration boundary"))
