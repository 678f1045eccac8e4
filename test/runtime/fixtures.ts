import type { SqlClient } from "@effect/sql"
import { Effect, Layer, Ref, Schema } from "effect"
import type { AutopilotEvent } from "../../src/domain/Event.js"
import { Goal } from "../../src/domain/Goal.js"
import { MockLlm, MockScript } from "../../src/llm/MockLlm.js"
import * as Mission from "../../src/runtime/Mission.js"
import * as Storage from "../../src/store/Storage.js"
import { calculator } from "../../src/tools/Calculator.js"
import * as Tool from "../../src/tools/Tool.js"
import { Toolkit } from "../../src/tools/Tool.js"

export const goal = (criteria = 2) =>
  new Goal({
    objective: "Explain three Python dict gotchas",
    success_criteria: ["criterion 1", ...Array.from({ length: criteria - 1 }, (_, i) => `criterion ${i + 2}`)]
  })

type TurnInput = NonNullable<MockScript["turns"]>[number]

/** A mock script; turns default to 1,000 input and 200 output tokens and no criterion met. */
export const script = (
  turns: ReadonlyArray<Partial<TurnInput>>,
  options: { readonly model?: string; readonly latency_ms?: number; readonly repeat_last?: boolean } = {}
) =>
  new MockScript({
    model: options.model ?? "gpt-4o-mini",
    latency_ms: options.latency_ms ?? 0,
    repeat_last: options.repeat_last ?? true,
    turns: turns.map((turn) => ({
      content: "working on it",
      usage: { input_tokens: 1000, output_tokens: 200 },
      tool_calls: [],
      ...turn
    }))
  })

/**
 * The store and tools live for the whole test, so one test can run, crash and resume a mission; on SQLite
 * in memory unless another database is given.
 */
export const environmentWith = (tools: ReadonlyArray<Tool.Tool>, database?: Layer.Layer<SqlClient.SqlClient>) =>
  Layer.mergeAll(database === undefined ? Storage.layerSqlite(":memory:") : Storage.layer.pipe(Layer.provideMerge(database)), Toolkit.layer(tools))

export const environment = environmentWith([calculator])

/** A tool that answers at once; the calculator loads mathjs on first use, in real time, not TestClock time. */
export const echo = Tool.make({
  name: "echo",
  description: "echoes its text",
  parameters: Schema.Struct({ text: Schema.String }),
  handler: ({ text }) => Effect.succeed(text)
})

/** Runs a mission on the given mock script, collecting every event it emits. */
export const runMission = (options: Omit<Mission.MissionOptions, "onEvent">, mock?: MockScript) =>
  Effect.gen(function*() {
    const events = yield* Ref.make<ReadonlyArray<AutopilotEvent>>([])
    const result = yield* Mission.run({
      ...options,
      onEvent: (event) => Ref.update(events, (es) => [...es, event])
    }).pipe(Effect.provide(MockLlm.layer(mock)))
    return { result, events: yield* Ref.get(events) }
  })

export const ofKind = <K extends AutopilotEvent["kind"]>(events: ReadonlyArray<AutopilotEvent>, kind: K) =>
  events.filter((e): e is Extract<AutopilotEvent, { kind: K }> => e.kind === kind)

/** A checkpoint as written before runs had a critic, a specialist or a fan-out: it must still decode. */
export const earlierCheckpoint = {
  version: 1,
  run_id: "old",
  goal: { objective: "o", success_criteria: ["c"] },
  policy: { max_seconds: 1800, max_tool_calls: 100, max_tokens: 2_000_000, max_dollars: 5, max_iterations: 200 },
  status: "halted",
  halt_reason: "stopped",
  usage: { seconds: 1, tool_calls: 0, tokens: 10, dollars: 0, iterations: 1 },
  criteria_met: [false],
  output: "",
  created_at: "2025-01-01T00:00:00.000Z",
  updated_at: "2025-01-01T00:00:00.000Z"
} as const
