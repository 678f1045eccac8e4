import { Args, Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Option, Stream } from "effect"
import { BadInput } from "../domain/Errors.js"
import { dollars, plural } from "../domain/Quantity.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import type { AutopilotEvent } from "../domain/Event.js"
import type { ModelCall } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import * as Runs from "../runtime/Runs.js"
import { defaultProject } from "../domain/MissionRecord.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import type * as RunJson from "./RunJson.js"
import * as Server from "./Server.js"
import { withExistingRuns, withRuns } from "./Store.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

const callText = (call: ModelCall) =>
  `${call.purpose} ${call.model_used} ${call.input_tokens}+${call.output_tokens} tokens ${dollars(call.cost_usd, 6)} ${call.latency_ms.toFixed(0)} ms`

const messageText = (label: string, messages: ReadonlyArray<ChatMessage>) => [`    ${label}:`, ...Render.messageLines(messages, "      ")]

/** `completed`, `halted (reason)`, or `interrupted (its process is gone; how to resume it)`. */
const statusText = (v: RunJson.View) =>
  v.interrupted && v.interrupted_reason !== null
    ? `interrupted (${v.interrupted_reason})`
    : `${v.status}${v.halt_reason === null ? "" : ` (${v.halt_reason})`}`

/** A fan-out's children: how many are in each state (the four final ones always), then one line each. */
const childrenText = (children: ReadonlyArray<RunJson.Child>) => {
  const rollup = Runs.childRollup(children.map((child) => ({ ...child, state: child.status as Runs.ChildView["state"], usage: null })))
  const counts = Object.entries(rollup)
    .filter(([state, n]) => n > 0 || ["completed", "partial", "halted", "failed"].includes(state))
    .map(([state, n]) => `${n} ${state.replace("_", " ")}`)
  return [
    `children: ${counts.join(", ")}`,
    ...children.map((child) =>
      `  [${child.index}] ${child.run_id}  ${child.status.replace("_", " ")}${child.halt_reason === null ? "" : ` (${child.halt_reason})`}  ${child.item}`)
  ]
}

/** `show`'s text, made from its JSON (Runs.viewJson here, `GET /runs/{id}` from a server): the same either way. */
const showText = (v: RunJson.View) =>
  [
    `run ${v.run_id}: ${statusText(v)}`,
    ...(v.fanout === undefined ? [] : [`fan-out of ${v.fanout.children.length}, at most ${v.fanout.max_parallel} at a time: ${v.fanout.template}`]),
    `objective: ${v.goal.objective}`,
    ...v.goal.success_criteria.map((text, i) => `  [${v.criteria_met[i] ? "x" : " "}] ${text}`),
    ...(v.llm === null ? [] : [`model: ${LlmChoice.describe(v.llm)}`]),
    v.critic === null
      ? "critic: off"
      : `critic: on (overrules the judge at confidence ≥ ${v.critic.threshold}; ${plural(v.critic.max_suggestions, "suggestion")} at most)`,
    ...(v.specialist === null ? [] : [`specialist: ${v.specialist.id} (${v.specialist.name}, model tier ${v.specialist.model_tier})`]),
    ...(v.project === defaultProject ? [] : [`project: ${v.project}`]),
    `usage: ${Render.usage(v.usage)}`,
    `total cost: ${dollars(v.usage.dollars, 6)}`,
    ...(v.fanout === undefined ? [] : childrenText(v.fanout.children)),
    `artifacts: ${v.artifacts}${v.fanout === undefined ? "" : ", its children's"}${v.artifacts === 0 ? "" : ` (\`autopilot artifacts ${v.run_id}\` lists them)`}`,
    ...(v.steps.length === 0
      ? []
      : [
        v.steps.length < v.usage.iterations ? `last ${v.steps.length} of ${v.usage.iterations} steps:` : "steps:",
        ...v.steps.flatMap((step) => [
          `  [${step.iteration}] ${dollars(step.cost_usd, 6)} · ${step.calls.map(callText).join(" · ")}`,
          ...(step.messages === undefined ? [] : [...messageText("act", step.messages.act), ...messageText("judge", step.messages.judge)])
        ])
      ]),
    `created ${v.created_at} · updated ${v.updated_at}`
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
    format: jsonFormat,
    ...Server.flags
  },
  ({ db, format, messages, runId, steps, ...remote }) =>
    Effect.gen(function*() {
      const { json, view } = yield* Server.either(remote, {
        refused: Server.databaseFlags(db),
        local: Effect.flatMap(Flags.target(db), (target) =>
          withExistingRuns(target, runId, Effect.flatMap(Runs.Runs, (runs) => runs.show(runId, { steps, messages })))).pipe(
            Effect.map((shown) => Server.shown<RunJson.View>(Runs.viewJson(shown)))
          ),
        remote: (api) => api.run(runId, { steps, messages })
      })
      yield* Console.log(format === "json" ? Render.json(json, 2) : showText(view))
    })
).pipe(Command.withDescription("Show a run as of its latest checkpoint, with per-step telemetry and its total cost"))

/** A line of `runs`, made from its JSON (Runs.listedJson here, `GET /runs` from a server). */
const listedText = (run: RunJson.Listed) => {
  if (run.status === "corrupt") return `${run.run_id}  corrupt      checkpoint does not decode; resume quarantines it  ${run.updated_at}`
  const iterations = run.iterations ?? 0
  const met = run.criteria_met ?? []
  const line = [
    run.run_id,
    (run.interrupted ? "interrupted" : run.status).padEnd(11),
    plural(iterations, "iteration", String(iterations).padStart(6)).padEnd(17),
    `criteria ${met.filter(Boolean).length}/${met.length}`,
    dollars(run.cost_usd ?? 0),
    run.updated_at,
    `${run.fanout === null ? "" : `fan-out of ${run.fanout.children}: `}${run.objective ?? ""}`.slice(0, 60)
  ].join("  ")
  return run.interrupted_reason === null ? line : `${line}\n    ${run.interrupted_reason}`
}

export const runs = Command.make(
  "runs",
  {
    status: Flags.states,
    limit: Flags.count("limit", "list only the newest N runs (default 0: all)", 0),
    project: Flags.project("only the runs of this project (default: every project's)"),
    db: Flags.db,
    format: jsonFormat,
    ...Server.flags
  },
  ({ db, format, limit, project: given, status, ...remote }) =>
    Effect.gen(function*() {
      // Here, without --project every project's runs; against a server, the token's project's.
      const project = yield* Flags.projectOf(given)
      const { json, view: listed } = yield* Server.either(remote, {
        project: Option.fromNullable(project),
        refused: Server.databaseFlags(db),
        local: Effect.flatMap(Flags.target(db), (target) =>
          withRuns(target, Effect.succeed([]), Effect.flatMap(Runs.Runs, (runs) => runs.list({ states: status, limit, project })))).pipe(
            Effect.map((runs) => Server.shown<ReadonlyArray<RunJson.Listed>>(runs.map(Runs.listedJson)))
          ),
        remote: (api) => api.runs({ states: status, limit })
      })
      if (format === "json") return yield* Console.log(Render.json(json, 2))
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
    format: Flags.format,
    ...Server.flags
  },
  ({ db, follow, format, runId, ...remote }) =>
    Effect.gen(function*() {
      const print = format === "jsonl" ? Render.jsonl : Render.text
      const each = <E, R>(events: Stream.Stream<AutopilotEvent, E, R>) => Stream.runForEach(events, (event) => Console.log(print(event)))
      yield* Server.either(remote, {
        refused: Server.databaseFlags(db),
        local: Effect.flatMap(Flags.target(db), (target) =>
          withExistingRuns(target, runId, Effect.flatMap(Runs.Runs, (runs) => each(runs.events(runId, { follow }))))),
        remote: (api) => each(api.events(runId, { follow }))
      })
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
