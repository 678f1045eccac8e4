import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import * as FineTuneFormat from "../../src/curator/FineTuneFormat.js"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A completed run on the default mock: iteration k meets criterion k, so one sample per criterion. */
const completed = async (sb: Sandbox, runId: string, objective: string, criteria: number) => {
  const args = ["run", objective, "--run-id", runId, ...Array.from({ length: criteria }, (_, i) => ["--criterion", `part ${i + 1}`]).flat()]
  const run = await sb.run(args)
  if (run.code !== 0) throw new Error(`could not make run ${runId}: ${run.stderr.join("\n")}`)
}

describe.concurrent("curator", () => {
  it("lists datasets, shows one and exports it as fine-tuning JSONL whose every line checks", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await completed(sb, "a", "Explain dict gotchas", 3)
    await completed(sb, "b", "Write release notes", 2)

    const listed = await sb.run(["curator", "datasets", "--format", "json"])
    expect(listed.code).toBe(0)
    const datasets = JSON.parse(listed.stdout.join("\n"))
    expect(datasets.map((d: any) => [d.definition.id, d.samples])).toEqual([["all", 5]])

    const shown = await sb.run(["curator", "show", "all", "--format", "json"])
    const report = JSON.parse(shown.stdout.join("\n"))
    expect(report.samples).toBe(5)
    expect(report.train + report.eval + report.duplicates).toBe(5)

    const out = path.join(sb.dir, "train.jsonl")
    const exported = await sb.run(["curator", "export", "all", "--out", out])
    expect(exported.code).toBe(0)
    expect(exported.stdout.join("\n")).toMatch(new RegExp(`^wrote ${report.train} train samples? of dataset all to ${out}`))
    const lines = fs.readFileSync(out, "utf8").split("\n").filter((l) => l !== "")
    expect(lines.length).toBe(report.train)
    for (const line of lines) expect(Either.getLeft(FineTuneFormat.checkLine(line))._tag).toBe("None")
    const evalOut = path.join(sb.dir, "eval.jsonl")
    expect((await sb.run(["curator", "export", "all", "--out", evalOut, "--split", "eval"])).code).toBe(0)
    expect(fs.readFileSync(evalOut, "utf8").split("\n").filter((l) => l !== "").length).toBe(report.eval)
  })

  it("takes definitions of one's own from --datasets", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await completed(sb, "a", "Explain dict gotchas", 2)
    const file = sb.writeFile("datasets.json", [{ id: "small", description: "short ones", max_tokens: 10 }, { id: "held", eval_fraction: 0.5 }])
    const listed = await sb.run(["curator", "datasets", "--datasets", file])
    expect(listed.code).toBe(0)
    expect(listed.stdout[0]).toMatch(/^ID\s+SAMPLES\s+FILTERS$/)
    expect(listed.stdout.find((l) => l.startsWith("small"))).toMatch(/^small\s+0\s+completed runs only, <= 10 tokens/)
    expect(listed.stdout.find((l) => l.startsWith("held"))).toMatch(/50% held out/)
  })

  it("bad input: one line, exit 2, nothing written", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const fresh = await sb.run(["curator", "show", "all"])
    expect(fresh.code).toBe(2)
    expect(fresh.stderr).toEqual([`autopilot: ${sb.db} holds no runs: there is nothing to curate yet`])
    expect(fs.existsSync(sb.db)).toBe(false)

    await completed(sb, "a", "Explain dict gotchas", 1)
    const out = path.join(sb.dir, "x.jsonl")
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["curator", "export", "nope", "--out", out], /^autopilot: unknown dataset "nope": known datasets are all \(see `autopilot curator datasets`\)$/],
      [["curator", "show", "nope"], /^autopilot: unknown dataset "nope"/],
      [["curator", "export", "all", "--out", out, "--split", "test"], /^autopilot: --split must be train or eval, got "test"/],
      [["curator", "export", "all", "--out", path.join(sb.dir, "no", "x.jsonl")], /^autopilot: --out .* cannot be written: no folder/],
      [["curator", "export", "all", "--out", sb.dir], /cannot be written: it is a folder/],
      [["curator", "datasets", "--datasets", sb.writeFile("bad.json", [{ id: "Bad Id" }])], /^autopilot: --datasets .* is not a JSON array of dataset definitions: 0\.id: must be 1-100 lower-case/],
      [["curator", "datasets", "--datasets", sb.writeFile("twice.json", [{ id: "x" }, { id: "x" }])], /defines dataset "x" twice/],
      [["curator", "datasets", "--datasets", sb.writeFile("extra.json", [{ id: "x", min_confidence: 1 }])], /min_confidence/]
    ]
    for (const [args, message] of cases) {
      const ran = await sb.run(args)
      expect(ran.code, args.join(" ")).toBe(2)
      expect(ran.stderr.length, args.join(" ")).toBe(1)
      expect(ran.stderr[0]).toMatch(message)
    }
    expect(fs.existsSync(out)).toBe(false)
    expect(sb.files().filter((f) => f.endsWith(".tmp"))).toEqual([])
  })
})
