import { Effect } from "effect"
import * as fs from "node:fs"
import { afterAll, afterEach, beforeAll, describe, it } from "vitest"
import type { BlueprintEncoded } from "../../src/domain/Blueprint.js"
import { Missions } from "../../src/missions/Missions.js"
import { chain as fixtureChain, dailyDiamond, digest, layerSqlite } from "../missions/fixtures.js"
import { type CliEvent, cleanup, Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** first → second, as a scheduled blueprint: the shortest graph where one node has finished while another runs. */
const chain = (fields: Partial<BlueprintEncoded> = {}) =>
  fixtureChain({
    id: "daily_chain",
    mode: "scheduled",
    slots: [{ name: "schedule", type: "cron", required: true, default: "0 9 * * *", description: "When it runs" }],
    ...fields
  })

/** A mission made through the service on `file`, approved unless `draft` or cancelled when `cancelled`. */
const mission = (
  file: string,
  blueprint = dailyDiamond,
  options: { readonly draft?: boolean; readonly cancelled?: boolean; readonly slots?: Record<string, string> } = {}
) =>
  Effect.runPromise(Effect.gen(function*() {
    const missions = yield* Missions
    const made = yield* missions.create({ project: "default", goal: "watch the market", blueprint, slots: options.slots ?? {}, missing: [], actor: "test", reason: "test" })
    if (options.cancelled) {
      yield* missions.approve("default", made.mission_id, { actor: "test" })
      yield* missions.cancel("default", made.mission_id, "test")
    } else if (!options.draft) yield* missions.approve("default", made.mission_id, { actor: "test" })
    return made.mission_id
  }).pipe(Effect.provide(layerSqlite(file))))

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

/** A slot as `missions show` lists it: the zone's wall clock with its offset, then UTC. */
const nextLine = (zone: string, local: string, offsets: string, utc: string) =>
  new RegExp(`^ {2}\\d{4}-\\d\\d-\\d\\d ${local} \\+0[${offsets}]:00 ${zone.replace("/", "\\/")} · \\d{4}-\\d\\d-\\d\\d ${utc} UTC$`)

describe.concurrent("scheduled missions on the command line", () => {
  it("approve arms a scheduled mission in the zone and with the catch-up given, and prints its next firings", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb.db, dailyDiamond, { draft: true })
    const approved = await sb.run(["approve", id, "--time-zone", "europe/paris", "--catch-up", "skip"])
    expect(approved.code, approved.stderr.join("\n")).toBe(0)
    expect(approved.stdout[0]).toBe(`mission ${id} approved and scheduled`)
    expect(approved.stdout[1]).toMatch(/^schedule: 0 9 \* \* \* in Europe\/Paris · catch-up skip · armed since \d{4}-\d\d-\d\dT[\d:.]+Z$/)
    expect(approved.stdout[2]).toBe("next firings:")
    for (const line of approved.stdout.slice(3, 6)) expect(line).toMatch(nextLine("Europe/Paris", "09:00", "12", "0[78]:00"))

    const shown = json((await sb.run(["missions", "show", id, "--format", "json"])).stdout)
    expect(shown.status).toBe("scheduled")
    expect(shown.schedule).toMatchObject({ cron: "0 9 * * *", time_zone: "Europe/Paris", catch_up: "skip" })
    expect(shown.schedule.next).toHaveLength(3)
    for (const next of shown.schedule.next) {
      expect(next.at).toMatch(/^\d{4}-\d\d-\d\dT0[78]:00:00\.000Z$/)
      expect(next.local).toMatch(/^\d{4}-\d\d-\d\dT09:00:00\.000\+0[12]:00$/)
      expect(Date.parse(next.local)).toBe(Date.parse(next.at))
    }
    expect(shown.firings).toEqual([])
    expect(shown.transitions.at(-1).reason).toBe("every required slot has a value: fires on 0 9 * * * in Europe/Paris, catch-up skip")
  })

  it("missions show gives the schedule in UTC by default, its next three firings, and a draft's schedule as not armed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb.db, dailyDiamond, { slots: { schedule: "30 6 * * 1-5" } })
    const shown = await sb.run(["missions", "show", id])
    expect(shown.code, shown.stderr.join("\n")).toBe(0)
    const at = shown.stdout.findIndex((line) => line.startsWith("schedule:"))
    expect(shown.stdout[at]).toMatch(/^schedule: 30 6 \* \* 1-5 in UTC · catch-up once · armed since /)
    expect(shown.stdout[at + 1]).toBe("next firings:")
    for (const line of shown.stdout.slice(at + 2, at + 5)) expect(line).toMatch(nextLine("UTC", "06:30", "0", "06:30"))
    expect(shown.stdout[at + 5]).toBe("firings: none yet")
    expect(shown.stdout[at + 6]).toBe("latest firing run: none yet")

    const draft = await mission(sb.db, dailyDiamond, { draft: true })
    const drafted = json((await sb.run(["missions", "show", draft, "--format", "json"])).stdout)
    expect(drafted.schedule).toEqual({ cron: "0 9 * * *", time_zone: "UTC", catch_up: "once", armed_at: null, next: [] })
    const once = await mission(sb.db, digest)
    expect(json((await sb.run(["missions", "show", once, "--format", "json"])).stdout)).toMatchObject({ schedule: null, firings: [] })
  })

  it("missions run fires a scheduled mission once now: a run of its own, its nodes below it; the mission stays scheduled and lists the firing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb.db)
    const script = sb.writeFile("script.json", { nodes: { split: [{ content: "{\"go\": false}" }] } })
    const fired = await sb.run(["missions", "run", id, "--mock-script", script])
    expect(fired.code, fired.stderr.join("\n")).toBe(0)
    const runId = /^firing (ms-[0-9a-f]{12}\.manual-\d{8}t\d{6}z) completed \(mission ms-[0-9a-f]{12} stays scheduled\)$/.exec(
      fired.stdout.find((line) => line.startsWith("firing ")) ?? ""
    )?.[1]
    expect(runId, fired.stdout.join("\n")).toBeDefined()
    expect(runId!.startsWith(`${id}.manual-`)).toBe(true)
    expect(fired.stdout).toContainEqual(expect.stringMatching(/^ {2}split │ /))
    expect((await sb.show(runId!)).status).toBe("completed")
    expect((await sb.show(`${runId}.split`)).status).toBe("completed")

    const shown = await sb.run(["missions", "show", id])
    expect(shown.stdout[0]).toBe(`mission ${id}: scheduled (project default)`)
    expect(shown.stdout).toContainEqual(expect.stringMatching(new RegExp(`^ {2}${runId!.replace(".", "\\.")} {2}manual {2}completed {2}slot \\S+ · ended \\S+$`)))
    expect(shown.stdout).toContainEqual(expect.stringMatching(new RegExp(`^latest firing run: ${runId!.replace(".", "\\.")} completed · cost `)))
    const asJson = json((await sb.run(["missions", "show", id, "--format", "json", "--steps"])).stdout)
    expect(asJson.firings).toMatchObject([{ run_id: runId, kind: "manual", status: "completed", reason: null }])
    expect(asJson.run.run_id).toBe(runId)
    expect(asJson.steps.map((n: { node: string; status: string }) => `${n.node}:${n.status}`)).toEqual(["split:succeeded", "left:skipped", "right:succeeded", "merge:succeeded"])

    // As JSON, the firing is named beside the run.
    const again = json((await sb.run(["missions", "run", id, "--mock-script", script, "--format", "json"])).stdout)
    expect(again).toMatchObject({ mission_id: id, status: "scheduled", firing: { kind: "manual" }, run: { status: "completed" } })
    expect(again.firing.run_id).toBe(again.run.run_id)
  })

  it("SIGTERM halts a firing, which `autopilot resume` of its run continues as the same firing; the mission stays scheduled throughout", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const id = await mission(sb.db, chain())
    const endless = sb.writeFile("script.json", {
      nodes: {
        first: [{ content: "First part done.", cost_usd: 0.1 }],
        second: [{ content: "Still working on the second part.", criteria_met: [false], latency_ms: 500, cost_usd: 0.0001 }]
      }
    })
    const first = sb.start(["missions", "run", id, "--format", "jsonl", "--grace-seconds", "30", "--mock-script", endless])
    const second = await first.event((e: CliEvent) => e.kind === "iteration" && e.run_id.endsWith(".second"))
    const runId = second.run_id.slice(0, -".second".length)
    expect(runId).toMatch(new RegExp(`^${id}\\.manual-\\d{8}t\\d{6}z$`))
    first.signal("SIGTERM")
    const exit = await first.waitForExit()
    expect(exit.code, first.transcript()).toBe(4)
    expect(first.events().at(-1)).toMatchObject({ kind: "result", run_id: runId, status: "halted", halt_reason: "halted by SIGTERM" })
    const halted = json((await sb.run(["missions", "show", id, "--format", "json"])).stdout)
    expect(halted.status).toBe("scheduled")
    expect(halted.firings).toMatchObject([{ run_id: runId, status: "halted", reason: "halted by SIGTERM" }])

    // Continued as the firing it is, not as a plain run.
    const plain = await sb.run(["run", "something else", "--criterion", "a", "--resume", "--run-id", runId])
    expect(plain.code).toBe(2)
    expect(plain.stderr.at(-1)).toBe(`autopilot: run "${runId}" is a firing of mission ${id}: \`autopilot resume ${runId}\` continues it`)

    sb.writeFile("script.json", { nodes: { first: [{ content: "First part again?" }], second: [{ content: "Second part done." }] } })
    const resumed = await sb.run(["resume", runId])
    expect(resumed.code, resumed.stderr.join("\n")).toBe(0)
    expect(resumed.stdout).toContain(`firing ${runId} completed (mission ${id} stays scheduled)`)
    const done = json((await sb.run(["missions", "show", id, "--format", "json"])).stdout)
    expect(done.status).toBe("scheduled")
    expect(done.firings).toMatchObject([{ run_id: runId, status: "completed", reason: null }])
    expect(done.transitions.map((t: { to: string }) => t.to)).toEqual(["draft", "approved", "scheduled"])
    const ended = await sb.run(["resume", runId])
    expect(ended.code).toBe(2)
    expect(ended.stderr).toEqual([`autopilot: firing ${runId} has ended (completed): there is nothing left to run`])
  })
})

// Bad input: one line on stderr, exit 2, nothing on stdout, the database as it was.

let existing: Sandbox
const ids: Record<"draft" | "once" | "cancelled", string> = { draft: "", once: "", cancelled: "" }

beforeAll(async () => {
  existing = new Sandbox()
  ids.draft = await mission(existing.db, dailyDiamond, { draft: true })
  ids.once = await mission(existing.db, digest, { draft: true })
  ids.cancelled = await mission(existing.db, dailyDiamond, { cancelled: true })
})
afterAll(() => existing.dispose())

const zoneMessage = /^autopilot: time zone "Mars\/Olympus" is not known: give an IANA name such as UTC, Europe\/Paris or America\/New_York$/
const catchUpMessage = /^autopilot: --catch-up must be once or skip \(once: the latest missed slot fires after downtime; skip: missed slots do not\), got "twice"$/

const cases: ReadonlyArray<{ readonly name: string; readonly args: ReadonlyArray<string>; readonly mentions: RegExp; readonly db: "fresh" | "existing" }> = [
  ...(["fresh", "existing"] as const).flatMap((db) => [
    { name: `an unknown time zone (${db})`, args: ["approve", "{draft}", "--time-zone", "Mars/Olympus"], mentions: zoneMessage, db },
    { name: `a bad catch-up (${db})`, args: ["approve", "{draft}", "--catch-up", "twice"], mentions: catchUpMessage, db }
  ]),
  {
    name: "a cron that is not one",
    args: ["approve", "{draft}", "--slot", "schedule=every day"],
    mentions: /^autopilot: slot schedule must be a cron expression of 5 fields, like "0 9 \* \* 1-5", got "every day"$/,
    db: "existing"
  },
  {
    name: "a cron no date matches",
    args: ["approve", "{draft}", "--slot", "schedule=0 0 30 2 *"],
    mentions: /^autopilot: mission ms-[0-9a-f]{12} cannot be armed: cron "0 0 30 2 \*" never fires: no date matches it \(nothing was changed\)$/,
    db: "existing"
  },
  {
    name: "a time zone for a mission that is not scheduled",
    args: ["approve", "{once}", "--time-zone", "Europe/Paris"],
    mentions: /^autopilot: --time-zone and --catch-up are for scheduled missions: mission ms-[0-9a-f]{12}'s blueprint daily_digest is not scheduled \(mode once\)$/,
    db: "existing"
  },
  {
    name: "a catch-up for a mission that is not scheduled",
    args: ["approve", "{once}", "--catch-up", "skip"],
    mentions: /^autopilot: --time-zone and --catch-up are for scheduled missions/,
    db: "existing"
  }
]

describe.concurrent("scheduled missions: bad input is one line, exit 2, nothing written", () => {
  it.for(cases)("$name", async (testCase, context) => {
    const { expect } = context
    const sb = sandbox(context)
    if (testCase.db === "existing") fs.copyFileSync(existing.db, sb.db)
    const before = { files: sb.files(), db: testCase.db === "existing" ? fs.readFileSync(sb.db) : undefined }
    const args = testCase.args.map((arg) => arg.replace(/^\{(draft|once|cancelled)\}$/, (_, which: keyof typeof ids) => ids[which]))

    const finished = await sb.run(args)

    expect(finished.code).toBe(2)
    expect(finished.stdout).toEqual([])
    expect(finished.stderr).toHaveLength(1)
    expect(finished.stderr[0]).toMatch(testCase.mentions)
    expect(sb.files()).toEqual(before.files)
    if (before.db === undefined) expect(fs.existsSync(sb.db)).toBe(false)
    else expect(fs.readFileSync(sb.db).equals(before.db)).toBe(true)
  })

  it("missions run of a cancelled scheduled mission fires nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    fs.copyFileSync(existing.db, sb.db)
    const refused = await sb.run(["missions", "run", ids.cancelled])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toEqual([`autopilot: mission ${ids.cancelled} was cancelled: a cancelled mission does not run`])
    const shown = json((await sb.run(["missions", "show", ids.cancelled, "--format", "json"])).stdout)
    expect(shown).toMatchObject({ status: "cancelled", firings: [], schedule: { next: [] } })
  })
})
