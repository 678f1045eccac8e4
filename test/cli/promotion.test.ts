import * as fs from "node:fs"
import { afterAll, afterEach, beforeAll, describe, it, type TestContext } from "vitest"
import * as FakeOpenAi from "../finetune/FakeOpenAi.js"
import { cleanup, type Finished, Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const objectives = ["write the install guide", "write the quickstart", "write the API reference", "write the upgrade notes", "document the config file", "explain the architecture"]

/** The fine-tuned model the fake OpenAI server makes of dataset `writer`. */
const model = "ft:gpt-4o-mini-2024-07-18:acme:writer:abc123"

const succeeded = (what: string, finished: Finished) => {
  if (finished.code !== 0) throw new Error(`${what} exited ${finished.code}: ${finished.stderr.join("\n")}`)
  return finished
}

/**
 * A technical writer's runs on gpt-4o (the mock playing it), its dataset exported and trained on the fake
 * server to a succeeded job: made once, in a database each test gets a copy of. The grades a test's
 * evaluation gives are in its own script: the runs here ask the mock for no grade.
 */
let base: { readonly sandbox: Sandbox; readonly job: string }
beforeAll(async () => {
  const fake = await FakeOpenAi.start()
  const sb = new Sandbox()
  try {
    const env = { AUTOPILOT_FINETUNE_BASE_URL: fake.url, AUTOPILOT_FINETUNE_API_KEY: "sk-fake", AUTOPILOT_FINETUNE_THRESHOLD: "1", AUTOPILOT_FINETUNE_POLL_SECONDS: "0.05" }
    // The work so far is done on gpt-4o ($2.50/$10 a million tokens).
    const script = sb.writeFile("script.json", { model: "gpt-4o", turns: [{ content: "Done: the page is written.", criteria_met: [true] }] })
    const datasets = sb.writeFile("datasets.json", [{ id: "writer", specialist: "technical-writer", eval_fraction: 0.5 }])
    for (const [i, objective] of objectives.entries()) {
      succeeded(`run ${objective}`, await sb.run(["run", objective, "--criterion", "the page exists", "--specialist", "technical-writer", "--mock-script", script, "--run-id", `w${i}`]))
    }
    succeeded("curator export", await sb.run(["curator", "export", "writer", "--out", "train.jsonl", "--datasets", datasets]))
    const started = succeeded("finetune start", await sb.run(["finetune", "start", "--dataset", "writer", "--file", `${sb.dir}/train.jsonl`, "--datasets", datasets, "--format", "json"], { env }))
    succeeded("finetune poll", await sb.run(["finetune", "poll"], { env }))
    base = { sandbox: sb, job: JSON.parse(started.stdout.join("\n")).job.id }
  } finally {
    await fake.close()
  }
})
afterAll(() => base?.sandbox.dispose())

/** `test` on a copy of the trained database, the mock grading the fine-tune's replays as `grades` says. */
const trained = async (
  context: TestContext,
  grades: Record<string, number>,
  test: (sb: Sandbox, job: string, files: { readonly script: string; readonly datasets: string }) => Promise<void>
) => {
  const sb = sandbox(context)
  fs.copyFileSync(base.sandbox.db, sb.db)
  const script = sb.writeFile("script.json", { model: "gpt-4o", turns: [{ content: "Done: the page is written.", criteria_met: [true] }], grades })
  const datasets = sb.writeFile("datasets.json", [{ id: "writer", specialist: "technical-writer", eval_fraction: 0.5 }])
  await test(sb, base.job, { script, datasets })
}

describe.concurrent("autopilot finetune evaluate|promote|rollback|routes", () => {
  it("a fine-tune that proves itself takes its specialist's work: a new run's steps use the new model and cost what its pricing says; a rollback gives the work back", async (context) => {
    const { expect } = context
    await trained(context, {}, async (sb, job, { datasets, script }) => {
      const runOf = async (runId: string, objective: string, specialist = "technical-writer") => {
        const ran = await sb.run(["run", objective, "--criterion", "the page exists", "--specialist", specialist, "--mock-script", script, "--run-id", runId])
        expect(ran.code, ran.stderr.join("\n")).toBe(0)
        const shown = JSON.parse((await sb.run(["show", runId, "--format", "json"])).stdout.join("\n"))
        return shown.steps.flatMap((s: { calls: ReadonlyArray<object> }) => s.calls).find((c: { purpose: string }) => c.purpose === "act") as {
          model_used: string
          input_tokens: number
          output_tokens: number
          cost_usd: number
        }
      }

      const flags = ["--mock-script", script, "--datasets", datasets]
      const evaluated = await sb.run(["finetune", "evaluate", job, ...flags, "--format", "json"])
      expect(evaluated.code, evaluated.stderr.join("\n")).toBe(0)
      const report = JSON.parse(evaluated.stdout.join("\n"))
      expect(report).toMatchObject({ job_id: job, scope: "specialist:technical-writer", verdict: "promotable", tolerance_points: 2 })
      expect(report.candidate).toMatchObject({ model, samples: 3, passed: 3, pass_rate: 1, errors: 0 })
      expect(report.baseline).toMatchObject({ model: "gpt-4o", samples: 3, passed: 3, pass_rate: 1, errors: 0 })
      expect(report.candidate.cost_per_step_usd).toBeLessThan(report.baseline.cost_per_step_usd)

      const promoted = await sb.run(["finetune", "promote", job, ...flags])
      expect(promoted.code, promoted.stderr.join("\n")).toBe(0)
      expect(promoted.stdout[0]).toMatch(new RegExp(`^${model.replace(/[.:]/g, "\\$&")} takes the traffic of specialist:technical-writer \\(route route-[0-9a-f]{12}\\)$`))
      const routes = await sb.run(["finetune", "routes"])
      expect(routes.stdout).toHaveLength(1)
      expect(routes.stdout[0]).toContain(`specialist:technical-writer -> ${model}`)

      // A new run of the specialist works on the fine-tune, charged at OpenAI's fine-tuned gpt-4o-mini rates ($0.30/$1.20).
      const routed = await runOf("after", "write the migration guide")
      expect(routed.model_used).toBe(model)
      expect(routed.cost_usd).toBeCloseTo((routed.input_tokens * 0.3 + routed.output_tokens * 1.2) / 1e6, 12)
      // Another specialist's work is not its to take.
      expect((await runOf("other", "review the login code", "code-reviewer")).model_used).toBe("gpt-4o")

      const shown = await sb.run(["finetune", "show", job])
      expect(shown.stdout).toContain("promotable: " + report.reason)
      expect(shown.stdout.some((l) => l.startsWith("route route-") && l.endsWith("(active)"))).toBe(true)

      const rolled = await sb.run(["finetune", "rollback", job])
      expect([rolled.code, rolled.stdout]).toEqual([0, [`${model} no longer takes the traffic of specialist:technical-writer; it goes to the provider's default again`]])
      expect((await runOf("back", "write the glossary")).model_used).toBe("gpt-4o")
      const again = await sb.run(["finetune", "rollback", job])
      expect([again.code, again.stderr]).toEqual([2, [`autopilot: fine-tune job ${job} takes no traffic: nothing to roll back (see \`autopilot finetune routes\`)`]])
      const log = JSON.parse((await sb.run(["finetune", "show", job, "--format", "json"])).stdout.join("\n"))
      expect(log.events.map((e: { kind: string }) => e.kind).filter((k: string) => !["finetune_message", "finetune_status"].includes(k))).toEqual([
        "finetune_started",
        "finetune_succeeded",
        "finetune_evaluated",
        "finetune_promoted",
        "finetune_rolled_back"
      ])
    })
  })

  it("a fine-tune that does worse than the tolerance stays a candidate: promote says why and exits 2, nothing routes to it", async (context) => {
    const { expect } = context
    await trained(context, { [model]: 0 }, async (sb, job, { datasets, script }) => {
      const refused = await sb.run(["finetune", "promote", job, "--mock-script", script, "--datasets", datasets])
      expect(refused.code).toBe(2)
      expect(refused.stderr).toHaveLength(1)
      expect(refused.stderr[0]).toMatch(new RegExp(`^autopilot: fine-tune job ${job} stays a candidate: pass rate 0% is more than 2 points below the baseline's 100% \\(evaluation eval-[0-9a-f]{12}; `))
      expect((await sb.run(["finetune", "routes"])).stdout).toEqual(["no active routes: every call goes to its provider's default model"])
      const shown = await sb.run(["finetune", "show", job])
      expect(shown.stdout).toContain("stays a candidate: pass rate 0% is more than 2 points below the baseline's 100%")

      // Bad input: one line, exit 2.
      for (
        const [args, line] of [
          [["finetune", "promote", "ft-nope"], `autopilot: no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`],
          [["finetune", "evaluate", "ft-nope"], `autopilot: no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`],
          [["finetune", "rollback", "ft-nope"], `autopilot: no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`]
        ] as const
      ) {
        const result = await sb.run(args)
        expect([args, result.code, result.stderr]).toEqual([args, 2, [line]])
      }
      const badTolerance = await sb.run(["finetune", "evaluate", job, "--datasets", datasets], { env: { AUTOPILOT_FINETUNE_TOLERANCE_POINTS: "-1" } })
      expect([badTolerance.code, badTolerance.stderr]).toEqual([2, [`autopilot: AUTOPILOT_FINETUNE_TOLERANCE_POINTS must be a number of points from 0 to 100, got "-1"`]])
    })
  })
})
