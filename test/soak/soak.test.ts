import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "vitest"

/** `npm run soak` without the build: the soak's script, run as a user runs it, with `env` added. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const soak = (env: Record<string, string>, timeoutMs: number) =>
  new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/soak.ts"], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const folders: Array<string> = []
const tmp = (name: string) => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), `autopilot-${name}-`))
  folders.push(folder)
  return folder
}
afterAll(() => folders.forEach((f) => fs.rmSync(f, { recursive: true, force: true })))

/**
 * A deliberately broken build: this checkout's built CLI, copied, with its step store patched to drop one
 * commit per process (the first step of an iteration 2 it is asked to write), as a bug in batching would.
 */
const brokenBuild = () => {
  const build = tmp("soak-broken-build")
  fs.cpSync(path.join(root, "dist"), path.join(build, "dist"), { recursive: true })
  fs.cpSync(path.join(root, "bin"), path.join(build, "bin"), { recursive: true })
  fs.copyFileSync(path.join(root, "package.json"), path.join(build, "package.json"))
  fs.symlinkSync(path.join(root, "node_modules"), path.join(build, "node_modules"))
  const sound = "append:steps=>inSlices(steps,"
  const chunks = path.join(build, "dist", "cli", "chunks")
  const patched = fs.readdirSync(chunks).filter((file) => {
    const file_ = path.join(chunks, file)
    const text = fs.readFileSync(file_, "utf8")
    if (!text.includes(sound)) return false
    fs.writeFileSync(
      file_,
      text.replace(sound, "append:steps=>inSlices(steps.filter(s=>!(s.step.iteration===2&&!globalThis.__dropped&&(globalThis.__dropped=true))),")
    )
    return true
  })
  // If the bundle changes shape, this test must say so rather than soak a sound build.
  assert.strictEqual(patched.length, 1, `the step store's append was not found in the bundle's chunks (looked for ${sound})`)
  return path.join(build, "bin", "autopilot.js")
}

describe("npm run soak", () => {
  it("catches a build whose step store drops one commit: that check fails, naming the run and the lost iteration, and the report is written", async () => {
    const out = path.join(tmp("soak-out"), "report")
    const exit = await soak({
      AUTOPILOT_SOAK: "40",
      AUTOPILOT_SOAK_SEED: "7",
      AUTOPILOT_SOAK_RUNS_PER_MINUTE: "20",
      AUTOPILOT_SOAK_OUT: out,
      AUTOPILOT_SOAK_CLI: brokenBuild()
    }, 240_000)
    const said = `${exit.stdout}\n${exit.stderr}`
    assert.strictEqual(exit.code, 1, said)
    assert.match(exit.stdout, /^soak: FAIL {2}no iteration lost or double-counted: \d+ findings$/m, said)
    // The other books are sound in this build, and the soak says so: it names what broke, not everything.
    for (const check of ["each run's log ends once", "no run left running", "event log gap-free", "database integrity", "every run ends exactly once"]) {
      assert.match(exit.stdout, new RegExp(`^soak: PASS  ${check}:`, "m"), said)
    }
    assert.include(exit.stdout, "again: AUTOPILOT_SOAK=40 AUTOPILOT_SOAK_SEED=7 AUTOPILOT_SOAK_RUNS_PER_MINUTE=20 npm run soak")
    const report = fs.readFileSync(path.join(out, "report.md"), "utf8")
    assert.match(report, /^# Soak report: FAIL/)
    assert.match(report, /\| no iteration lost or double-counted \| \*\*FAIL\*\* \|/)
    // One commit lost in each process that wrote steps: each finding names a run and its missing iteration 2.
    const lost = [...report.matchAll(/^- (\S+): steps \[1, 3/gm)].map((m) => m[1])
    assert.isNotEmpty(lost, report)
    for (const plot of ["rss.svg", "heap.svg", "iterations.svg", "cost.svg", "database.svg"]) {
      assert.match(fs.readFileSync(path.join(out, plot), "utf8"), /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    }
  }, 300_000)

  it("bad input is one line and exit 2, before anything starts: the length, an unreachable model, an unreachable database", async () => {
    const cases: ReadonlyArray<readonly [Record<string, string>, RegExp]> = [
      [{ AUTOPILOT_SOAK: "an hour" }, /^soak: AUTOPILOT_SOAK must be a number of seconds above 0 and at most 604800 \(a week\), got "an hour"$/],
      [{ AUTOPILOT_SOAK: "-60" }, /^soak: AUTOPILOT_SOAK must be a number of seconds above 0/],
      [{ AUTOPILOT_SOAK: "60", AUTOPILOT_LLM_BASE_URL: "http://127.0.0.1:1/v1", AUTOPILOT_LLM_API_KEY: "sk-test" }, /^soak: the model endpoint http:\/\/127.0.0.1:1\/v1 is unreachable: /],
      [{ AUTOPILOT_SOAK: "60", AUTOPILOT_DATABASE_URL: "postgres://soak@127.0.0.1:1/soak" }, /^soak: the database AUTOPILOT_DATABASE_URL names is unreachable: /]
    ]
    await Promise.all(cases.map(async ([env, line]) => {
      const out = path.join(tmp("soak-bad"), "never")
      const exit = await soak({ ...env, AUTOPILOT_SOAK_OUT: out }, 60_000)
      assert.strictEqual(exit.code, 2, exit.stderr)
      assert.strictEqual(exit.stdout, "")
      const lines = exit.stderr.trimEnd().split("\n")
      assert.lengthOf(lines, 1, exit.stderr)
      assert.match(lines[0]!, line)
      // Nothing was started or written.
      assert.isFalse(fs.existsSync(out))
    }))
  }, 120_000)
})
