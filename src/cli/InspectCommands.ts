import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Stream } from "effect"
import * as fs from "node:fs"
import { BadInput } from "../domain/Errors.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { ModelCall, Step } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import * as Runs from "../runtime/Runs.js"
import type { StepMessages } from "../runtime/Transcript.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import { runsLayer, withExistingRuns } from "./Store.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** A step's messages, when asked for, keyed by iteration. */
type Messages = ReadonlyMap<number, StepMessages>

const callText = (call: ModelCall) =>
  `${call.purpose} ${call.model_used} ${call.input_tokens}+${call.output_tokens} tokens $${call.cost_usd.toFixed(6)} ${call.latency_ms.toFixed(0)} ms`

const messageText = (label: string, messages: ReadonlyArray<ChatMessage>) => [
  `    ${label}:`,
  ...messages.map((m) => `      ${m.role}: ${m.content.replaceAll("\n", "\n        ")}`)
]

const showText = (c: Checkpoint, steps: ReadonlyArray<Step>, messages: Messages) =>
  [
    `run ${c.run_id}: ${c.status}${c.halt_reason === null ? "" : ` (${c.halt_reason})`}`,
    `objective: ${c.goal.objective}`,
    ...c.goal.success_criteria.map((text, i) => `  [${c.criteria_met[i] ? "x" : " "}] ${text}`),
    ...(c.llm === undefined ? [] : [`model: ${LlmChoice.describe(c.llm)}`]),
    `usage: ${Render.usage(c.usage)}`,
    `total cost: $${c.usage.dollars.toFixed(6)}`,
    ...(steps.length === 0
      ? []
      : [
        steps.length < c.usage.iterations ? `last ${steps.length} of ${c.usage.iterations} steps:` : "steps:",
        ...steps.flatMap((step) => {
          const m = messages.get(step.iteration)
          return [
            `  [${step.iteration}] $${Runs.telemetryOf(step).cost_usd.toFixed(6)} · ${step.calls.map(callText).join(" · ")}`,
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
    steps: Options.integer("steps").pipe(
      Options.withDescription("how many of the latest steps to show telemetry for (default 20; 0 for all)"),
      Options.withDefault(20)
    ),
    messages: Options.boolean("messages").pipe(
      Options.withDescription("also show every message of those steps: the act conversation and the judge's prompt")
    ),
    db: Flags.db,
    format: jsonFormat
  },
  ({ db, format, messages, runId, steps }) =>
    Effect.gen(function*() {
      if (steps < 0) return yield* new BadInput({ message: `--steps must be 0 (all) or a positive whole number, got ${steps}` })
      const file = yield* Flags.databasePath(db)
      const view = yield* withExistingRuns(file, runId, Effect.flatMap(Runs.Runs, (runs) => runs.show(runId, { steps, messages })))
      yield* Console.log(
        format === "json"
          ? JSON.stringify(Runs.viewJson(view), null, 2)
          : showText(view.checkpoint, view.steps, view.messages)
      )
    })
).pipe(Command.withDescription("Show a run as of its latest checkpoint, with per-step telemetry and its total cost"))

export const runs = Command.make(
  "runs",
  { db: Flags.db, format: jsonFormat },
  ({ db, format }) =>
    Effect.gen(function*() {
      const file = yield* Flags.databasePath(db)
      if (!fs.existsSync(file)) return yield* Console.log(format === "json" ? "[]" : "no runs yet")
      const all = yield* Effect.provide(Effect.flatMap(Runs.Runs, (runs) => runs.list), runsLayer(file))
      if (format === "json") {
        return yield* Console.log(JSON.stringify(
          all.map((r) =>
            r._tag === "Found"
              ? { run_id: r.checkpoint.run_id, status: r.checkpoint.status, iterations: r.checkpoint.usage.iterations, updated_at: r.checkpoint.updated_at }
              : { run_id: r.run_id, status: "corrupt", iterations: null, updated_at: r.updated_at }
          ),
          null,
          2
        ))
      }
      if (all.length === 0) return yield* Console.log("no runs yet")
      for (const r of all) {
        yield* Console.log(
          r._tag === "Found"
            ? `${r.checkpoint.run_id}  ${r.checkpoint.status.padEnd(9)}  ${String(r.checkpoint.usage.iterations).padStart(6)} iterations  criteria ${r.checkpoint.criteria_met.filter(Boolean).length}/${r.checkpoint.criteria_met.length}  $${r.checkpoint.usage.dollars.toFixed(4)}  ${r.checkpoint.updated_at}  ${r.checkpoint.goal.objective.slice(0, 60)}`
            : `${r.run_id}  corrupt    checkpoint does not decode; resume quarantines it  ${r.updated_at}`
        )
      }
    })
).pipe(Command.withDescription("List runs, newest first"))

export const events = Command.make(
  "events",
  {
    runId: Args.text({ name: "run-id" }),
    follow: Options.boolean("follow").pipe(Options.withDescription("keep printing new events until the run ends")),
    db: Flags.db,
    format: Flags.format
  },
  ({ db, follow, format, runId }) =>
    Effect.gen(function*() {
      const file = yield* Flags.databasePath(db)
      const print = format === "jsonl" ? Render.jsonl : Render.text
      yield* withExistingRuns(
        file,
        runId,
        Effect.flatMap(Runs.Runs, (runs) => runs.events(runId, { follow }).pipe(Stream.runForEach((event) => Console.log(print(event)))))
      )
    })
).pipe(Command.withDescription("Print a run's events; --follow keeps printing until it ends"))

export const stop = Command.make(
  "stop",
  {
    runId: Args.text({ name: "run-id" }),
    reason: Options.text("reason").pipe(Options.withDescription("becomes the run's halt_reason"), Options.withDefault("stopped by request")),
    db: Flags.db
  },
  ({ db, reason, runId }) =>
    Effect.gen(function*() {
      const file = yield* Flags.databasePath(db)
      if (reason.trim() === "") return yield* new BadInput({ message: "--reason must be non-empty text" })
      yield* withExistingRuns(file, runId, Effect.flatMap(Runs.Runs, (runs) => runs.stop(runId, reason)))
      yield* Console.log(`stop requested for run ${runId}: it halts at its next iteration boundary`)
    })
).pipe(Command.withDescription("Ask a running run, in any process, to halt at its next iteration boundary"))
