import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { cleanup, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

const fence = "```"

/** A mock turn whose answer is a markdown document with a named code block, an unnamed one and a file write. */
const turn = (k: number, more: { readonly evil?: string } = {}) => ({
  content: [
    "# Release plan",
    "",
    `Step ${k}.`,
    "",
    `${fence}ts title="src/app.ts"`,
    `export const step = ${k}`,
    fence,
    "",
    `${fence}python`,
    "print('unchanged')",
    fence,
    ...(more.evil === undefined ? [] : ["", `${fence}sh ${more.evil}`, "echo gotcha", fence])
  ].join("\n"),
  usage: { input_tokens: 100, output_tokens: 20 },
  tool_calls: [{ name: "write_file", arguments: { path: "notes/todo.md", content: `- step ${k}\n` } }],
  criteria_met: [false]
})

const script = (sb: Sandbox, turns: ReadonlyArray<object>, latency_ms = 0) =>
  sb.writeFile("script.json", { model: "gpt-4o-mini", latency_ms, repeat_last: true, turns })

/** A finished run: halted at its iteration cap, or completed if its last turn meets the criterion. */
const made = async (sb: Sandbox, runId: string, iterations: number, turns: ReadonlyArray<object>, code = 4) => {
  const run = await sb.run(["run", "ship it", "--criterion", "a", "--run-id", runId, "--max-iterations", String(iterations), "--mock-script", script(sb, turns)])
  if (run.code !== code) throw new Error(`could not make run ${runId}: ${run.stderr.join("\n")}`)
}

/** Every artifact row of a run as `name vN @iteration`. */
const rows = (sb: Sandbox, runId: string) =>
  (sb.sql((db) => db.prepare("SELECT name, version, iteration FROM artifacts WHERE run_id = ? ORDER BY name, version").all(runId)) as Array<
    { name: string; version: number; iteration: number }
  >).map((r) => `${r.name} v${r.version} @${r.iteration}`)

describe.concurrent("artifacts", () => {
  it("lists a run's artifacts with their latest version, as text and as json with every version; show counts them; events show them in one line", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await made(sb, "r", 2, [turn(1), turn(2)])

    const text = await sb.run(["artifacts", "r"])
    expect(text.code).toBe(0)
    expect(text.stderr).toEqual([])
    expect(text.stdout).toEqual([
      expect.stringMatching(/^notes\/todo\.md\s+file\s+v2\s+9 bytes\s+iteration 2$/),
      expect.stringMatching(/^release-plan\.md\s+markdown\s+v2\s+\d+ bytes\s+iteration 2$/),
      expect.stringMatching(/^snippet-1\.py\s+code python\s+v1\s+19 bytes\s+iteration 1$/),
      expect.stringMatching(/^src\/app\.ts\s+code ts\s+v2\s+22 bytes\s+iteration 2$/)
    ])

    const json = JSON.parse((await sb.run(["artifacts", "r", "--format", "json"])).stdout.join("\n"))
    expect(json.map((a: any) => [a.name, a.kind, a.latest_version, a.versions.map((v: any) => v.iteration)])).toEqual([
      ["notes/todo.md", "file", 2, [1, 2]],
      ["release-plan.md", "markdown", 2, [1, 2]],
      ["snippet-1.py", "code", 1, [1]],
      ["src/app.ts", "code", 2, [1, 2]]
    ])
    expect(json[0]).toMatchObject({ language: null, path: "notes/todo.md", bytes: 9, truncated: false })
    expect(json[3].versions[1]).toMatchObject({ version: 2, kind: "code", language: "ts", path: null, bytes: 22, truncated: false })
    expect(json[3].versions[1].sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(JSON.stringify(json)).not.toContain("export const")

    expect((await sb.show("r"))["artifacts"]).toBe(4)
    const shown = await sb.run(["show", "r"])
    expect(shown.stdout).toContain("artifacts: 4 (`autopilot artifacts r` lists them)")
    const events = await sb.run(["events", "r"])
    expect(events.stdout).toContain("    artifact src/app.ts v2 (code ts, 22 bytes)")
    expect(events.stdout.filter((l) => l.startsWith("    artifact "))).toHaveLength(7)
  })

  it("--out writes the latest version of each under its name, making the folders; a run without artifacts writes nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await made(sb, "r", 2, [turn(1), turn(2)])
    const out = path.join(sb.dir, "export", "here")

    const written = await sb.run(["artifacts", "r", "--out", out])

    expect(written.code).toBe(0)
    expect(written.stderr).toEqual([])
    expect(written.stdout.at(-1)).toBe(`wrote 4 artifacts of run r to ${out}`)
    expect(written.stdout).toContain(`wrote ${path.join(out, "src", "app.ts")} (v2, 22 bytes)`)
    expect(fs.readFileSync(path.join(out, "src", "app.ts"), "utf8")).toBe("export const step = 2\n")
    expect(fs.readFileSync(path.join(out, "snippet-1.py"), "utf8")).toBe("print('unchanged')\n")
    expect(fs.readFileSync(path.join(out, "notes", "todo.md"), "utf8")).toBe("- step 2\n")
    expect(fs.readFileSync(path.join(out, "release-plan.md"), "utf8")).toMatch(/^# Release plan\n\nStep 2\./)

    // Again into the same folder: files are overwritten with the same content.
    const again = await sb.run(["artifacts", "r", "--out", out, "--format", "json"])
    expect(JSON.parse(again.stdout.join("\n")).map((w: any) => [w.name, w.version, w.file])).toEqual([
      ["notes/todo.md", 2, path.join(out, "notes", "todo.md")],
      ["release-plan.md", 2, path.join(out, "release-plan.md")],
      ["snippet-1.py", 1, path.join(out, "snippet-1.py")],
      ["src/app.ts", 2, path.join(out, "src", "app.ts")]
    ])

    const notAFolder = await sb.run(["artifacts", "r", "--out", sb.writeFile("a-file.txt", "x")])
    expect(notAFolder.code).toBe(2)
    expect(notAFolder.stderr).toEqual([`autopilot: ${path.join(sb.dir, "a-file.txt")} is not a folder; artifacts are written into a folder`])

    const plain = sb.writeFile("plain.json", { turns: [{ content: "Nothing to deliver yet.", criteria_met: [false] }] })
    expect((await sb.run(["run", "x", "--criterion", "a", "--run-id", "none", "--max-iterations", "1", "--mock-script", plain])).code).toBe(4)
    expect((await sb.run(["artifacts", "none"])).stdout).toEqual(["run none has no artifacts"])
    const empty = await sb.run(["artifacts", "none", "--out", path.join(sb.dir, "empty")])
    expect(empty.stdout).toEqual(["run none has no artifacts; nothing was written"])
    expect(fs.existsSync(path.join(sb.dir, "empty"))).toBe(false)
  })

  it.for([
    { escape: "a .. path", name: "../escape.sh", mentions: /artifact "\.\.\/escape\.sh" of run "r" does not name a file inside / },
    { escape: "an absolute path", name: "/tmp/autopilot-escape.sh", mentions: /artifact "\/tmp\/autopilot-escape\.sh" of run "r" is an absolute path/ },
    { escape: "a symbolic link in the folder leading out", name: "link/escape.sh", mentions: /artifact "link\/escape\.sh" of run "r" would be written through the symbolic link .*link, which leads outside / }
  ])("--out refuses $escape: one line, exit 2, nothing written", async ({ mentions, name }, context) => {
    const { expect } = context
    const sb = sandbox(context)
    await made(sb, "r", 1, [turn(1, { evil: name })])
    expect(rows(sb, "r")).toContain(`${name} v1 @1`)
    const out = path.join(sb.dir, "out")
    const outside = path.join(sb.dir, "outside")
    fs.mkdirSync(outside)
    if (name.startsWith("link/")) {
      fs.mkdirSync(out)
      fs.symlinkSync(outside, path.join(out, "link"))
    }
    const before = fs.existsSync(out) ? fs.readdirSync(out) : undefined

    const refused = await sb.run(["artifacts", "r", "--out", out])

    expect(refused.code).toBe(2)
    expect(refused.stdout).toEqual([])
    expect(refused.stderr).toHaveLength(1)
    expect(refused.stderr[0]).toMatch(mentions)
    expect(refused.stderr[0]).toMatch(/nothing was written/)
    expect(fs.existsSync(out) ? fs.readdirSync(out) : undefined).toEqual(before)
    expect(fs.readdirSync(outside)).toEqual([])
    expect(fs.existsSync(path.join(sb.dir, "escape.sh"))).toBe(false)
    expect(fs.existsSync("/tmp/autopilot-escape.sh")).toBe(false)
  })

  it("delete and prune remove a run's artifacts with it, and no other run's", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await made(sb, "gone", 2, [turn(1), turn(2)])
    await made(sb, "pruned", 1, [turn(1)])
    await made(sb, "kept", 1, [{ ...turn(1), criteria_met: [true] }], 0)
    const kept = rows(sb, "kept")
    expect(kept).toHaveLength(4)
    expect(rows(sb, "gone")).toHaveLength(7)

    expect((await sb.run(["delete", "gone"])).code).toBe(0)
    expect(rows(sb, "gone")).toEqual([])
    expect((await sb.run(["prune", "--older-than", "0", "--status", "halted"])).code).toBe(0)
    expect(rows(sb, "pruned")).toEqual([])
    expect(rows(sb, "kept")).toEqual(kept)
    const after = await sb.run(["artifacts", "gone"])
    expect(after.code).toBe(2)
    expect(after.stderr).toEqual([expect.stringMatching(/no run with id "gone"/)])
  })

  it("kill -9 keeps exactly the artifacts of the iterations counted, and a resume goes on versioning from them", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // Each turn changes src/app.ts and notes/todo.md, at full speed, so the kill lands while iterations are being committed.
    const turns = Array.from({ length: 400 }, (_, i) => turn(i + 1))
    const file = script(sb, turns)
    const cli = sb.start(["run", "ship it", "--criterion", "a", "--run-id", "k", "--mock-script", file, "--max-iterations", "0", "--max-tool-calls", "0", "--format", "jsonl"])
    await cli.nth("iteration", 20)
    cli.signal("SIGKILL")
    expect((await cli.waitForExit()).signal).toBe("SIGKILL")

    const steps = (sb.sql((db) => db.prepare("SELECT iteration FROM steps WHERE run_id = ? ORDER BY iteration").all("k")) as Array<{ iteration: number }>)
      .map((s) => s.iteration)
    const k = steps.length
    expect(k).toBeGreaterThanOrEqual(20)
    expect(steps).toEqual(Array.from({ length: k }, (_, i) => i + 1))
    expect(sb.checkpoint("k")["usage"].iterations).toBe(k)
    const upTo = (n: number, name: string) => Array.from({ length: n }, (_, i) => `${name} v${i + 1} @${i + 1}`)
    const expected = (n: number) => [...upTo(n, "notes/todo.md"), ...upTo(n, "release-plan.md"), "snippet-1.py v1 @1", ...upTo(n, "src/app.ts")]
    expect(rows(sb, "k")).toEqual(expected(k))
    const announced = sb.sql((db) => db.prepare("SELECT COUNT(*) AS n FROM events WHERE run_id = ? AND kind = 'artifact'").get("k")) as { n: number }
    expect(announced.n).toBe(3 * k + 1)

    // The mock starts its script afresh: turn 1 again, which differs from turn k, so each is a new version.
    const resumed = await sb.run(["resume", "k", "--max-iterations", String(k + 2), "--format", "jsonl"])
    expect(resumed.code).toBe(4)
    const after = rows(sb, "k")
    expect(after).toEqual(expect.arrayContaining([`src/app.ts v${k + 1} @${k + 1}`, `src/app.ts v${k + 2} @${k + 2}`]))
    expect(after).toHaveLength(3 * (k + 2) + 1)
    const written = await sb.run(["artifacts", "k", "--out", path.join(sb.dir, "out")])
    expect(written.code).toBe(0)
    expect(fs.readFileSync(path.join(sb.dir, "out", "src", "app.ts"), "utf8")).toBe("export const step = 2\n")
  })
})
