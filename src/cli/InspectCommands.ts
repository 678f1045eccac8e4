import { Args, Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import { BadInput, CorruptCheckpoint, RunNotFound } from "../domain/Errors.js"
import type { Checkpoint } from "../domain/Checkpoint.js"
import type { ModelCall, Step } from "../domain/Step.js"
import type { ChatMessage } from "../llm/Llm.js"
import { messagesOf, type StepMessages } from "../runtime/Transcript.js"
import { CheckpointStore } from "../store/CheckpointStore.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import { withExistingStore } from "./Store.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** A run's checkpoint, or a clear error if it is unknown or does not decode. */
const checkpointOf = (runId: string) =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const loaded = yield* store.load(runId)
    switch (loaded._tag) {
      case "Missing":
        return yield* new RunNotFound({ run_id: runId })
      case "Corrupt":
        return yield* new CorruptCheckpoint({ run_id: runId, error: loaded.error })
      case "Found":
        return loaded.checkpoint
    }
  })

/** Per-step telemetry: what each model call of a step cost and took. */
const telemetryOf = (step: Step) => ({
  iteration: step.iteration,
  at: step.at,
  cost_usd: step.calls.reduce((sum, call) => sum + call.cost_usd, 0),
  calls: step.calls
})

/** A step's messages, when asked for, keyed by iteration. */
type Messages = ReadonlyMap<number, StepMessages>

const showJson = (c: Checkpoint, steps: ReadonlyArray<Step>, messages: Messages) =>
  JSON.stringify({
    run_id: c.run_id,
    status: c.status,
    halt_reason: c.halt_reason,
    iterations: c.usage.iterations,
    usage: c.usage,
    cost_usd: c.usage.dollars,
    criteria_met: c.criteria_met,
    goal: c.goal,
    policy: c.policy,
    output: c.output,
    created_at: c.created_at,
    updated_at: c.updated_at,
    steps: steps.map((step) => {
      const m = messages.get(step.iteration)
      return m === undefined ? telemetryOf(step) : { ...telemetryOf(step), messages: { act: m.act, judge: m.judge } }
    })
  }, null, 2)

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
    `usage: ${Render.usage(c.usage)}`,
    `total cost: $${c.usage.dollars.toFixed(6)}`,
    ...(steps.length === 0
      ? []
      : [
        steps.length < c.usage.iterations ? `last ${steps.length} of ${c.usage.iterations} steps:` : "steps:",
        ...steps.flatMap((step) => {
          const m = messages.get(step.iteration)
          return [
            `  [${step.iteration}] $${telemetryOf(step).cost_usd.toFixed(6)} · ${step.calls.map(callText).join(" · ")}`,
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
      const [checkpoint, recent] = yield* withExistingStore(file, runId, Effect.gen(function*() {
        const store = yield* CheckpointStore
        const checkpoint = yield* checkpointOf(runId)
        return [checkpoint, yield* store.recentSteps(runId, steps === 0 || messages ? -1 : steps)] as const
      }))
      // Messages are rebuilt from every earlier step, so all are read; only the latest are shown.
      const shown = steps === 0 ? recent : recent.slice(-steps)
      const rebuilt: Messages = messages
        ? new Map(messagesOf(checkpoint.goal, recent).slice(-shown.length).map((m) => [m.iteration, m]))
        : new Map()
      yield* Console.log(format === "json" ? showJson(checkpoint, shown, rebuilt) : showText(checkpoint, shown, rebuilt))
    })
).pipe(Command.withDescription("Show a run as of its latest checkpoint, with per-step telemetry and its total cost"))

export const runs = Command.make(
  "runs",
  { db: Flags.db, format: jsonFormat },
  ({ db, format }) =>
    Effect.gen(function*() {
      const file = yield* Flags.databasePath(db)
      if (!fs.existsSync(file)) return yield* Console.log(format === "json" ? "[]" : "no runs yet")
      const all = yield* Effect.provide(Effect.flatMap(CheckpointStore, (store) => store.list), CheckpointStore.layerSqlite(file))
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
      yield* withExistingStore(file, runId, Effect.gen(function*() {
        const store = yield* CheckpointStore
        if ((yield* store.load(runId))._tag === "Missing" && (yield* store.sessions(runId)).length === 0) {
          return yield* new RunNotFound({ run_id: runId })
        }
        let after = 0
        const drain = Effect.gen(function*() {
          const batch = yield* store.events(runId, after)
          for (const { event, id } of batch) {
            yield* Console.log(print(event))
            after = id
          }
        })
        yield* drain
        if (!follow) return
        // Another process writes the run, so we poll; it is over once its checkpoint says so, or once
        // the process that owns it is gone (killed with no chance to say so).
        yield* Effect.gen(function*() {
          const loaded = yield* store.load(runId)
          yield* drain
          if (loaded._tag !== "Found") return false
          const { owner, status } = loaded.checkpoint
          return status !== "running" || (owner !== null && !owner.isAlive)
        }).pipe(Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: (done) => done }))
      }))
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
      yield* withExistingStore(file, runId, Effect.gen(function*() {
        const store = yield* CheckpointStore
        const checkpoint = yield* checkpointOf(runId)
        if (checkpoint.status !== "running") {
          return yield* new BadInput({ message: `run "${runId}" is not running (it is ${checkpoint.status}); there is nothing to stop` })
        }
        if (checkpoint.owner !== null && !checkpoint.owner.isAlive) {
          return yield* new BadInput({
            message: `run "${runId}" is not running in any process (process ${checkpoint.owner.pid} is gone); \`autopilot resume ${runId}\` continues it`
          })
        }
        yield* store.requestStop(runId, reason, new Date(yield* Clock.currentTimeMillis).toISOString())
        yield* Console.log(`stop requested for run ${runId}: it halts at its next iteration boundary`)
      }))
    })
).pipe(Command.withDescription("Ask a running run, in any process, to halt at its next iteration boundary"))
