import { Effect } from "effect"
import { Axes, type Axis, type BudgetRemaining, type BudgetUsage } from "../domain/Budget.js"
import type { AutopilotEvent } from "../domain/Event.js"
import * as Quantity from "../domain/Quantity.js"
import type { Delta } from "../runtime/ModelCalls.js"
import * as Render from "./Render.js"

/** Where a run is shown. */
export interface Terminal {
  readonly write: (text: string) => void
  /** True for a terminal that can redraw a line in place; false for a pipe or a file. */
  readonly interactive: boolean
  readonly columns: number | undefined
}

/** What a person or a program watching a run receives: its durable events, and its answer as it is generated. */
export interface LiveView {
  readonly event: (event: AutopilotEvent) => Effect.Effect<void>
  /** Absent when the answer is not shown live: the model is then not asked to stream. */
  readonly delta?: ((delta: Delta) => Effect.Effect<void>) | undefined
}

export const stdout: Terminal = {
  write: (text) => {
    process.stdout.write(text)
  },
  interactive: process.stdout.isTTY === true && process.env["TERM"] !== "dumb",
  columns: process.stdout.columns
}

const labels: Record<Axis, string> = { iterations: "iter", tokens: "tokens", dollars: "cost", seconds: "time", tool_calls: "tools" }

const amount = (axis: Axis, n: number) => {
  switch (axis) {
    case "dollars":
      return Quantity.dollars(n)
    case "seconds":
      return `${Math.round(n)}s`
    case "tokens":
      return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n)}`
    default:
      return `${n}`
  }
}

const cells = 8

/** One line, each enabled axis as a bar of how much of its cap is used: `iter ██░░░░░░ 3/12 · …`. */
export const budgetLine = (usage: BudgetUsage, remaining: BudgetRemaining) =>
  "budget " + Axes.flatMap((axis) => {
    const left = remaining[axis]
    if (left === null) return []
    const used = usage[axis]
    const cap = used + left
    const filled = cap === 0 ? cells : Math.min(cells, Math.round((cells * used) / cap))
    const capText = axis === "dollars" ? Quantity.dollarCap(Quantity.roundDollars(cap)) : amount(axis, cap)
    return [`${labels[axis]} ${"█".repeat(filled)}${"░".repeat(cells - filled)} ${amount(axis, used)}/${capText}`]
  }).join(" · ")

/**
 * The text view. The answer streams in as it is generated, indented under the run's events; on a
 * terminal a budget bar stays on the last line and is redrawn in place after every event, and when
 * the output is a pipe the same bar is a plain line after each iteration.
 */
export const text = (terminal: Terminal): LiveView => {
  let barShown = false
  let answering = false
  let latest: { readonly usage: BudgetUsage; readonly remaining: BudgetRemaining } | undefined
  const clearBar = () => {
    if (barShown) terminal.write("\r\x1b[2K")
    barShown = false
  }
  const endAnswer = () => {
    if (answering) terminal.write("\n")
    answering = false
  }
  return {
    event: (event) =>
      Effect.sync(() => {
        clearBar()
        endAnswer()
        terminal.write(`${Render.text(event)}\n`)
        // A child's usage is not its fan-out's: the bar shows the run's own.
        if ("usage" in event && event.kind !== "fanout_child") latest = { usage: event.usage, remaining: event.remaining }
        if (event.kind === "result" || latest === undefined) return
        const bar = budgetLine(latest.usage, latest.remaining)
        if (terminal.interactive) {
          // Wider than the terminal, it would wrap, and only its last row could be redrawn.
          const width = terminal.columns ?? 0
          terminal.write(width > 1 ? bar.slice(0, width - 1) : bar)
          barShown = true
        } else if (event.kind === "iteration") {
          terminal.write(`      ${bar}\n`)
        }
      }),
    delta: (delta) =>
      Effect.sync(() => {
        if (delta.purpose !== "act" || delta.text === "") return
        clearBar()
        terminal.write(`${answering ? "" : "    "}${delta.text.replaceAll("\n", "\n    ")}`)
        answering = true
      })
  }
}

/** One JSON object per line: every event, and with `deltas` the answer's text as `delta` lines (not stored). */
export const jsonl = (terminal: Terminal, options: { readonly runId: string; readonly deltas: boolean }): LiveView => ({
  event: (event) => Effect.sync(() => terminal.write(`${Render.jsonl(event)}\n`)),
  delta: options.deltas
    ? (delta) => Effect.sync(() => terminal.write(`${JSON.stringify({ kind: "delta", run_id: options.runId, ...delta })}\n`))
    : undefined
})

/**
 * The text view of the runs under a mission's run (its nodes): each event as `text` shows it, every line
 * behind the node's name, so a person can follow the graph among the mission's own events. Written as
 * whole lines: on a terminal it first clears the budget bar, which the mission's next event redraws.
 */
export const nested = (terminal: Terminal, nameOf: (event: AutopilotEvent) => string) => (event: AutopilotEvent): Effect.Effect<void> =>
  Effect.sync(() => {
    const prefix = `  ${nameOf(event)} │ `
    terminal.write(`${terminal.interactive ? "\r\x1b[2K" : ""}${prefix}${Render.text(event).replaceAll("\n", `\n${prefix}`)}\n`)
  })
