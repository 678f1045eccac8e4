import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { afterEach } from "vitest"
import { bin, cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const goalArgs = ["run", "Three gotchas", "--criterion", "a", "--criterion", "b", "--run-id", "live"]

/** The CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal runs it. */
const onTerminal = (dir: string, args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    const quoted = [process.execPath, bin, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")
    const child = execFile("script", ["-qfec", quoted, "/dev/null"], { cwd: dir, timeout: 120_000 }, (error, stdout) =>
      resume(error === null ? Effect.succeed(stdout) : Effect.fail(error)))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("live text", () => {
  it.live("on a terminal the answer streams in and a per-axis budget bar is redrawn in place after every event", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const out = yield* onTerminal(sb.dir, [...goalArgs, "--db", sb.db])
      const events = out.split("\x1b[2K")
      // Each redraw clears the bar's line and returns to its start before the next event is written.
      assert.isAtLeast(events.length, 5)
      assert.match(out, /budget time [█░]{8} \d+s\/1800s · tools [█░]{8} 0\/100 · tokens [█░]{8} \S+\/2\.00M · cost [█░]{8} \$[\d.]+\/\$5\.00 · iter [█░]{8} 0\/200\r\x1b\[2K/)
      // The answer streams in before its iteration is counted.
      assert.isBelow(out.indexOf("    ## Iteration 1"), out.indexOf("[1] criteria 1/2"))
      // The bar is gone once the run is over.
      const tail = out.slice(out.indexOf("Run live completed"))
      assert.notInclude(tail, "budget ")
    }))

  it.live("piped, the same run is plain lines: no escape codes, the answer as it comes, a budget line per iteration", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const exit = yield* Effect.promise(() => sb.run(goalArgs))
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const out = exit.stdout.join("\n")
      assert.notInclude(out, "\x1b[")
      assert.notInclude(out, "\r")
      const iteration = exit.stdout.findIndex((line) => line.startsWith("[1] criteria 1/2"))
      assert.isAbove(exit.stdout.indexOf("    ## Iteration 1"), -1)
      assert.isBelow(exit.stdout.indexOf("    ## Iteration 1"), iteration)
      assert.match(exit.stdout[iteration + 2]!, /^ {6}budget time [█░]{8} \d+s\/1800s · .* · iter [█░]{8} 1\/200$/)
      assert.strictEqual(exit.stdout.filter((line) => line.includes("budget time")).length, 2)
    }))

  it.live("--format jsonl --deltas adds the answer's text as delta lines, which are never stored", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const exit = yield* Effect.promise(() => sb.run([...goalArgs, "--format", "jsonl", "--deltas"]))
      assert.strictEqual(exit.code, 0, exit.stderr.join("\n"))
      const lines = exit.stdout.map((line) => JSON.parse(line))
      const deltas = lines.filter((l) => l.kind === "delta")
      assert.isAbove(deltas.length, 2)
      for (const d of deltas) assert.deepStrictEqual(Object.keys(d), ["kind", "run_id", "iteration", "purpose", "text"])
      const last = deltas.filter((d) => d.iteration === 2).map((d) => d.text).join("")
      assert.strictEqual(last, lines.find((l) => l.kind === "result").output)
      assert.deepStrictEqual([...new Set(deltas.map((d) => `${d.iteration} ${d.purpose}`))], ["1 act", "2 act"])
      const stored = yield* Effect.promise(() => sb.run(["events", "live", "--format", "jsonl"]))
      assert.deepStrictEqual(stored.stdout.map((line) => JSON.parse(line).kind), lines.filter((l) => l.kind !== "delta").map((l) => l.kind))

      const plain = yield* Effect.promise(() => sb.run(["run", "again", "--run-id", "plain", "--format", "jsonl"]))
      assert.notInclude(plain.stdout.join("\n"), "\"delta\"")
    }))

  it.live("--deltas without --format jsonl is bad input", (context) =>
    Effect.gen(function*() {
      const sb = sandbox(context)
      const exit = yield* Effect.promise(() => sb.run([...goalArgs, "--deltas"]))
      assert.strictEqual(exit.code, 2)
      assert.deepStrictEqual(exit.stderr, ["autopilot: --deltas needs --format jsonl (the text view always shows the answer as it is generated)"])
      assert.deepStrictEqual(sb.files(), [])
    }))
})
