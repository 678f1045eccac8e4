import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const two = ["--criterion", "a", "--criterion", "b"]

/** Each turn's judge meets nothing; its critic says what the test needs. */
const criticScript = (critics: ReadonlyArray<object>) => ({
  turns: critics.map((critic, i) => ({ content: `answer ${i + 1}`, usage: { input_tokens: 100, output_tokens: 20 }, criteria_met: [false, false], critic }))
})

describe.concurrent("the critic from the command line", () => {
  it("--critic: a critic event per iteration, its call in each step's telemetry, and show says it is on", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", criticScript([
      { criteria_met: [true, false], confidence: 0.8, suggestions: ["tighten the wording"], usage: { input_tokens: 400, output_tokens: 50 } },
      { criteria_met: [true, false], confidence: 0.5 }
    ]))
    const cli = sb.start(["run", "obj", ...two, "--critic", "--mock-script", "turns.json", "--run-id", "c", "--max-iterations", "2", "--format", "jsonl"])
    const exit = await cli.waitForExit()

    // The confident critic met criterion 1 though the judge met nothing: partial, exit 3.
    expect(exit.code).toBe(3)
    const events = cli.events()
    expect(events[0]).toMatchObject({ kind: "run_started", critic: { threshold: 0.75, max_suggestions: 3 } })
    expect(events.filter((e) => e.kind === "critic")).toMatchObject([
      { iteration: 1, ok: true, criteria_met: [true, false], confidence: 0.8, confident: true, suggestions: ["tighten the wording"], ended_run: false },
      { iteration: 2, ok: true, confidence: 0.5, confident: false, ended_run: false }
    ])
    const shown = await sb.show("c")
    expect(shown.critic).toEqual({ threshold: 0.75, max_suggestions: 3 })
    expect(shown.criteria_met).toEqual([true, false])
    expect(shown.steps[0].calls.map((c: { purpose: string }) => c.purpose)).toEqual(["act", "judge", "critic"])
    expect(shown.steps[0].calls[2]).toMatchObject({ input_tokens: 400, output_tokens: 50 })
    expect(shown.usage.tokens).toBe(2 * 120 + 450 + shown.steps[1].calls[2].input_tokens + shown.steps[1].calls[2].output_tokens)
    const text = (await sb.run(["show", "c"])).stdout.join("\n")
    expect(text).toContain("critic: on (overrules the judge at confidence ≥ 0.75; 3 suggestions at most)")
    expect(text).toMatch(/critic gpt-4o-mini 400\+50 tokens/)
  })

  it("ends the run the moment the critic is confident every criterion is met, and says so", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", criticScript([{ criteria_met: [true, true], confidence: 0.92, reasoning: "both shown" }, { criteria_met: [false, false], confidence: 1 }]))
    const finished = await sb.run(["run", "obj", ...two, "--critic", "--mock-script", "turns.json", "--run-id", "c"])

    expect(finished.code).toBe(0)
    expect(finished.stdout).toContain("    critic: criteria 2/2 at confidence 0.92, confident every criterion is met: the run ends")
    expect(finished.stdout).toContain("Run c completed: critic confident every criterion is met (confidence 0.92 ≥ 0.75)")
    expect(await sb.show("c")).toMatchObject({
      status: "completed",
      iterations: 1,
      halt_reason: "critic confident every criterion is met (confidence 0.92 ≥ 0.75)"
    })
  })

  it("a critic that fails is one line in the text view, and the run goes on to its end", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", criticScript([{ error: "401 bad key", transient: false }, { content: "I think it is fine" }]))
    const finished = await sb.run(["run", "obj", ...two, "--critic", "--mock-script", "turns.json", "--max-iterations", "2"])

    expect(finished.code).toBe(4)
    expect(finished.stdout).toContain("    critic gave no usable verdict (critic call failed: 401 bad key); skipped")
    expect(finished.stdout.filter((l) => l.startsWith("    critic gave no usable verdict (critic reply is not a JSON verdict"))).toHaveLength(1)
  })

  it("--critic-threshold alone turns the critic on at that threshold; events renders it in one line", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", criticScript([{ criteria_met: [true, false], confidence: 0.8 }]))
    const finished = await sb.run(["run", "obj", ...two, "--critic-threshold", "0.9", "--mock-script", "turns.json", "--run-id", "c", "--max-iterations", "1"])

    expect(finished.code).toBe(4)
    expect(sb.checkpoint("c").critic).toEqual({ threshold: 0.9, max_suggestions: 3 })
    const replay = (await sb.run(["events", "c"])).stdout
    expect(replay).toContain("    critic: criteria 1/2 at confidence 0.8, not confident enough: the judge's verdict counts")
    expect(replay).toContain("  critic: overrules the judge at confidence ≥ 0.9")
  })

  it("resume keeps the run's critic; --critic-threshold on resume changes only the threshold", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    sb.writeFile("turns.json", criticScript([{ criteria_met: [false, true], confidence: 0.7, suggestions: ["s1", "s2", "s3", "s4"] }]))
    const first = await sb.run(["run", "obj", ...two, "--critic-threshold", "0.6", "--mock-script", "turns.json", "--run-id", "c", "--max-iterations", "1"])
    expect(first.code).toBe(3)

    const kept = sb.start(["resume", "c", "--max-iterations", "2", "--format", "jsonl"])
    expect((await kept.waitForExit()).code).toBe(3)
    expect(kept.events()[0]).toMatchObject({ kind: "run_started", resuming: true, critic: { threshold: 0.6, max_suggestions: 3 } })
    expect(kept.events().filter((e) => e.kind === "critic")).toMatchObject([{ iteration: 2, confident: true, suggestions: ["s1", "s2", "s3"] }])

    const changed = sb.start(["resume", "c", "--max-iterations", "3", "--critic-threshold", "0.95", "--format", "jsonl"])
    expect((await changed.waitForExit()).code).toBe(3)
    expect(changed.events().filter((e) => e.kind === "critic")).toMatchObject([{ iteration: 3, confident: false }])
    expect((await sb.show("c")).critic).toEqual({ threshold: 0.95, max_suggestions: 3 })
  })

  it("without --critic there is no critic, and show says so", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cli = sb.start(["run", "obj", ...two, "--run-id", "plain", "--format", "jsonl"])
    expect((await cli.waitForExit()).code).toBe(0)
    expect(cli.events().some((e) => e.kind === "critic")).toBe(false)
    expect(cli.events()[0]!.critic).toBeUndefined()
    expect(await sb.show("plain")).toMatchObject({ critic: null, halt_reason: null })
    expect((await sb.run(["show", "plain"])).stdout).toContain("critic: off")
  })
})
