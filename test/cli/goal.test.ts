import * as fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const seedGoal = "run daily competitive research on 3 vendors"

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

const me = `cli:${os.userInfo().username}`

/** A remote blueprint service on 127.0.0.1 that has no candidates and remembers who asked. */
const remote = async () => {
  const received: Array<{ path: string; authorization: string | undefined }> = []
  const server = Http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      received.push({ path: req.url ?? "", authorization: req.headers.authorization })
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ candidates: [] }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, received, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) }
}

describe.concurrent("autopilot goal", () => {
  it("routes the seed's goal to a draft mission, which approve then schedules; the history says who and why", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const routed = await sb.run(["goal", seedGoal, "--project", "acme", "--format", "json"])
    expect(routed.code).toBe(0)
    expect(routed.stderr).toEqual([])
    const outcome = json(routed.stdout)
    expect(Object.keys(outcome)).toEqual(["kind", "mission_id", "blueprint_id", "score", "preview", "slots", "missing_slots"])
    expect(outcome).toMatchObject({ kind: "auto_routed", blueprint_id: "scheduled_research", slots: { schedule: "0 9 * * *", vendor_count: 3 } })
    expect(outcome.score).toBeGreaterThanOrEqual(0.85)

    const listed = json((await sb.run(["missions", "--project", "acme", "--format", "json"])).stdout)
    expect(listed).toHaveLength(1)
    expect(listed[0]).toMatchObject({ mission_id: outcome.mission_id, blueprint_id: "scheduled_research", status: "draft", project_id: "acme" })
    expect(json((await sb.run(["missions", "--format", "json"])).stdout)).toEqual([])

    const slots = outcome.missing_slots.flatMap((slot: string) => ["--slot", `${slot}=${slot === "market" ? "observability tools" : "x"}`])
    const approved = await sb.run(["approve", outcome.mission_id, "--project", "acme", ...slots])
    expect(approved.code).toBe(0)
    const shown = json((await sb.run(["missions", "show", outcome.mission_id, "--project", "acme", "--format", "json"])).stdout)
    expect(shown.status).toBe("scheduled")
    expect(shown.transitions.map((t: { to: string }) => t.to)).toEqual(["draft", "approved", "scheduled"])
    expect(shown.transitions[0]).toMatchObject({ actor: me })
    expect(shown.transitions[0].reason).toMatch(/^auto-routed at score /)
  })

  it("prints the outcome for people: the preview and the command that comes next", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const routed = await sb.run(["goal", seedGoal])
    expect(routed.code).toBe(0)
    expect(routed.stdout[0]).toMatch(/^Draft mission ms-[0-9a-f]{12} from blueprint scheduled_research \(score 0\.\d\d\)\.$/)
    expect(routed.stdout).toContain("Schedule: 0 9 * * *")
    expect(routed.stdout.at(-1)).toMatch(/^Missing: market\. Next: `autopilot approve ms-[0-9a-f]{12} --slot market=…`\.$/)
  })

  it("offers a picker when no score reaches the auto-route threshold, and --pick N makes the mission from the Nth", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const env = { AUTOPILOT_AUTO_ROUTE_THRESHOLD: "1", AUTOPILOT_PICKER_THRESHOLD: "0.01" }
    const goal = "summarize the incident and what the meeting decided"
    const offered = json((await sb.run(["goal", goal, "--format", "json"], { env })).stdout)
    expect(offered.kind).toBe("picker_needed")
    expect(offered.candidates.length).toBeGreaterThanOrEqual(2)
    const text = await sb.run(["goal", goal], { env })
    expect(text.stdout[0]).toBe("Several blueprints fit this goal, none surely:")
    expect(text.stdout.at(-1)).toBe(`Next: \`autopilot goal ${JSON.stringify(goal)} --pick N\` makes the mission from one, or \`--synthesize\` writes a new blueprint.`)

    const picked = json((await sb.run(["goal", goal, "--pick", "2", "--format", "json"], { env })).stdout)
    expect(picked).toMatchObject({ kind: "auto_routed", blueprint_id: offered.candidates[1].blueprint_id, score: offered.candidates[1].score })
  })

  it("--synthesize keeps the new blueprint as the user's own file, which the catalog then lists", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const goal = "plan our team offsite in Lisbon"
    const needed = json((await sb.run(["goal", goal, "--format", "json"])).stdout)
    expect(needed.kind).toBe("synthesis_needed")

    const made = json((await sb.run(["goal", goal, "--synthesize", "--format", "json"])).stdout)
    expect(made).toMatchObject({ kind: "auto_routed", score: 1 })
    expect(fs.existsSync(path.join(sb.dir, "blueprints", `${made.blueprint_id}.json`))).toBe(true)
    const shown = await sb.run(["blueprints", "show", made.blueprint_id, "--format", "json"], { db: false })
    expect(shown.code).toBe(0)
    expect(json(shown.stdout).id).toBe(made.blueprint_id)
  })

  it("fills slots with the model of $AUTOPILOT_MOCK_SCRIPT, as run does, and shows a value the goal got wrong", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const script = sb.writeFile("script.json", { slots: [{ values: { market: "observability tools" } }] })
    const routed = await sb.run(["goal", `${seedGoal}, vendor_count=999`, "--pick", "1"], { env: { AUTOPILOT_MOCK_SCRIPT: script } })
    expect(routed.code).toBe(0)
    expect(routed.stdout).toContain("Market: observability tools")
    expect(routed.stdout).toContainEqual(expect.stringMatching(/^Not taken from the goal: slot vendor_count must be a whole number from 1 to \d+, got "999"\.$/))
  })

  it("calls a configured remote service by tier: anonymous without a key, free with it, skip never", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const service = await remote()
    try {
      const env = { AUTOPILOT_BLUEPRINT_SERVICE_URL: service.url, AUTOPILOT_BLUEPRINT_SERVICE_KEY: "sk-test-123" }
      expect((await sb.run(["goal", seedGoal], { env })).code).toBe(0)
      expect(service.received).toEqual([{ path: "/v1/blueprints/retrieve", authorization: undefined }])

      await sb.run(["enable", "--tier", "free"])
      expect((await sb.run(["goal", "review this pull request for security bugs"], { env })).code).toBe(0)
      expect(service.received.at(-1)).toEqual({ path: "/v1/blueprints/retrieve", authorization: "Bearer sk-test-123" })

      await sb.run(["enable", "--tier", "skip"])
      const before = service.received.length
      expect((await sb.run(["goal", "translate our docs into German and French"], { env })).code).toBe(0)
      expect(service.received.length).toBe(before)
    } finally {
      await service.close()
    }
  })
})

const cases: ReadonlyArray<{ name: string; args: ReadonlyArray<string>; env?: Record<string, string>; mentions: RegExp }> = [
  { name: "an empty goal", args: ["goal", " "], mentions: /the goal is empty/ },
  { name: "a 100 KB goal", args: ["goal", "x".repeat(100 * 1024)], mentions: /more than the 4000 a goal may have/ },
  { name: "--pick 0", args: ["goal", seedGoal, "--pick", "0"], mentions: /--pick must be a whole number from 1 to 3/ },
  { name: "--pick out of range", args: ["goal", seedGoal, "--pick", "7"], mentions: /--pick must be a whole number from 1 to 3 \(a candidate the goal lists\), got 7/ },
  { name: "--pick with --synthesize", args: ["goal", seedGoal, "--pick", "1", "--synthesize"], mentions: /give one of them/ },
  { name: "a bad project", args: ["goal", seedGoal, "--project", "a b"], mentions: /project "a b" is not allowed/ },
  { name: "a threshold out of range", args: ["goal", seedGoal], env: { AUTOPILOT_AUTO_ROUTE_THRESHOLD: "1.5" }, mentions: /AUTOPILOT_AUTO_ROUTE_THRESHOLD must be a number from 0 to 1/ },
  {
    name: "inverted thresholds",
    args: ["goal", seedGoal],
    env: { AUTOPILOT_AUTO_ROUTE_THRESHOLD: "0.5", AUTOPILOT_PICKER_THRESHOLD: "0.7" },
    mentions: /AUTOPILOT_AUTO_ROUTE_THRESHOLD \(0\.5\) must not be below AUTOPILOT_PICKER_THRESHOLD \(0\.7\)/
  },
  { name: "an unknown tier", args: ["enable", "--tier", "gold"], mentions: /anonymous.*free.*skip/ },
  { name: "an unknown format", args: ["goal", seedGoal, "--format", "yaml"], mentions: /--format must be/ },
  {
    name: "--llm openai without its endpoint, even with a mock script in the environment",
    args: ["goal", seedGoal, "--llm", "openai"],
    env: { AUTOPILOT_MOCK_SCRIPT: "/nonexistent/script.json" },
    mentions: /^autopilot: --llm openai needs AUTOPILOT_LLM_BASE_URL/
  },
  { name: "a mock script that does not exist", args: ["goal", seedGoal, "--mock-script", "/nonexistent/script.json"], mentions: /script\.json/ }
]

describe.concurrent("autopilot goal: bad input is one line, exit 2, nothing written", () => {
  it.for(cases)("$name", async (testCase, context) => {
    const { expect } = context
    const sb = sandbox(context)
    const before = sb.files()
    const finished = await sb.run(testCase.args, { env: testCase.env ?? {} })
    expect(finished.code).toBe(2)
    expect(finished.stdout).toEqual([])
    expect(finished.stderr).toHaveLength(1)
    expect(finished.stderr[0]).toMatch(testCase.mentions)
    expect(sb.files()).toEqual(before)
  })

  it("a disabled autopilot refuses the goal and the database is left as it was", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    await sb.run(["disable"])
    const before = fs.readFileSync(sb.db)
    const refused = await sb.run(["goal", seedGoal])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toEqual(["autopilot: autopilot is disabled, so new goals are refused; `autopilot enable` turns it back on"])
    expect(fs.readFileSync(sb.db).equals(before)).toBe(true)
  })
})
