import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { afterAll, afterEach, beforeAll, describe, it } from "vitest"
import type { MissionRecord } from "../../src/domain/MissionRecord.js"
import { Missions } from "../../src/missions/Missions.js"
import { Settings } from "../../src/missions/Settings.js"
import { layerSqlite, research, vendors } from "../missions/fixtures.js"
import { cleanup, Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** No CLI command makes a mission yet (`goal` will): they are made through the service, on the same file. */
const seed = <A, E>(file: string, effect: Effect.Effect<A, E, Missions | Settings>) =>
  Effect.runPromise(effect.pipe(Effect.provide(layerSqlite(file))))

const draft = (file: string, project = "acme", fields: { slots?: Record<string, string | ReadonlyArray<string>>; missing?: ReadonlyArray<string> } = {}) =>
  seed(file, Effect.flatMap(Missions, (missions) =>
    missions.create({
      project,
      goal: "run daily competitive research on 3 vendors",
      blueprint: research(),
      slots: fields.slots ?? { schedule: "0 9 * * 1-5" },
      missing: fields.missing ?? ["vendors"],
      actor: "test:router",
      reason: "auto_routed at score 0.91"
    })))

const me = `cli:${os.userInfo().username}`

const json = (lines: ReadonlyArray<string>) => JSON.parse(lines.join("\n"))

describe.concurrent("autopilot status, enable, disable", () => {
  it("a new database is enabled with tier anonymous; the tier and the switch persist, the instance id never changes", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const first = await sb.run(["status", "--format", "json"])
    expect(first.code).toBe(0)
    expect(first.stderr).toEqual([])
    const status = json(first.stdout)
    expect(Object.keys(status)).toEqual(["enabled", "tier", "instance_id"])
    expect(status).toMatchObject({ enabled: true, tier: "anonymous" })
    expect(status.instance_id).toMatch(/^[0-9a-f]{32}$/)

    const text = await sb.run(["status"])
    expect(text.stdout).toEqual([
      "enabled: new goals are taken",
      "tier: anonymous (a remote blueprint service, when one is configured, is called without a key)",
      `instance: ${status.instance_id}`
    ])

    const enabled = await sb.run(["enable", "--tier", "skip"])
    expect(enabled.code).toBe(0)
    expect(enabled.stdout).toEqual(["ok: autopilot is enabled, tier skip (no remote service is called: the local catalog and synthesis only)"])
    const disabled = await sb.run(["disable", "--format", "json"])
    expect(disabled.stdout).toEqual(['{"ok":true}'])
    expect(json((await sb.run(["status", "--format", "json"])).stdout)).toEqual({ enabled: false, tier: "skip", instance_id: status.instance_id })
    expect((await sb.run(["status"])).stdout[0]).toBe("disabled: new goals are refused until `autopilot enable`; missions already made go on")

    // What a new goal checks: refused while disabled, with the one line saying how to turn it back on.
    const refused = await seed(sb.db, Effect.flip(Effect.flatMap(Settings, (s) => s.requireEnabled())))
    expect(refused.message).toBe("autopilot is disabled, so new goals are refused; `autopilot enable` turns it back on")

    expect((await sb.run(["enable", "--format", "json"])).stdout).toEqual(['{"ok":true}'])
    expect(json((await sb.run(["status", "--format", "json"])).stdout)).toEqual({ enabled: true, tier: "skip", instance_id: status.instance_id })
  })

  it("disabling leaves missions already made as they were, and approving them still works", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const mission = await draft(sb.db, "acme", { slots: { schedule: "0 9 * * 1-5", vendors }, missing: [] })
    expect((await sb.run(["disable"])).code).toBe(0)
    const approved = await sb.run(["approve", mission.mission_id, "--project", "acme"])
    expect(approved.code).toBe(0)
    expect(approved.stdout[0]).toBe(`mission ${mission.mission_id} approved and scheduled`)
  })
})

describe.concurrent("autopilot missions", () => {
  it("lists a project's missions as text and JSON, newest first, filtered by status; another project's are not listed", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const a = await draft(sb.db)
    const b = await draft(sb.db, "acme", { slots: { schedule: "0 9 * * 1-5", vendors }, missing: [] })
    const other = await draft(sb.db, "default")
    await seed(sb.db, Effect.flatMap(Missions, (m) => m.approve("acme", b.mission_id, { actor: "test" })))

    const listed = await sb.run(["missions", "--project", "acme", "--format", "json"])
    expect(listed.code).toBe(0)
    const items = json(listed.stdout) as Array<Record<string, unknown>>
    expect(items.map((m) => m.mission_id).sort()).toEqual([a.mission_id, b.mission_id].sort())
    const first = items.find((m) => m.mission_id === a.mission_id)!
    expect(Object.keys(first)).toEqual([
      "mission_id",
      "blueprint_id",
      "blueprint_version",
      "status",
      "project_id",
      "created_at",
      "updated_at",
      "goal",
      "slots",
      "missing_slots"
    ])
    expect(first).toMatchObject({
      blueprint_id: "scheduled_research",
      blueprint_version: 3,
      status: "draft",
      project_id: "acme",
      goal: "run daily competitive research on 3 vendors",
      slots: { schedule: "0 9 * * 1-5", depth: 2 },
      missing_slots: ["vendors"]
    })
    expect(items.find((m) => m.mission_id === b.mission_id)).toMatchObject({ status: "scheduled", missing_slots: [] })

    const drafts = json((await sb.run(["missions", "--project", "acme", "--status", "draft", "--format", "json"])).stdout) as Array<Record<string, unknown>>
    expect(drafts.map((m) => m.mission_id)).toEqual([a.mission_id])
    const mine = json((await sb.run(["missions", "--format", "json"])).stdout) as Array<Record<string, unknown>>
    expect(mine.map((m) => m.mission_id)).toEqual([other.mission_id])

    const text = await sb.run(["missions", "--project", "acme"])
    expect(text.stdout[0]).toMatch(/^MISSION +STATUS +BLUEPRINT +CREATED +GOAL$/)
    expect(text.stdout).toContainEqual(expect.stringMatching(new RegExp(`^${a.mission_id} +draft +scheduled_research v3 +\\S+ +run daily`)))
    expect(text.stdout).toContainEqual(`  missing: vendors (\`autopilot approve ${a.mission_id} --project acme --slot vendors=…\`)`)
    expect((await sb.run(["missions", "--project", "acme", "--status", "running,failed"])).stdout).toEqual(["no running or failed missions in project acme"])
    expect((await sb.run(["missions", "--project", "nobody"])).stdout).toEqual(["no missions in project nobody"])
  })

  it("a database with no missions is neither made nor changed by listing them", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    expect((await sb.run(["missions", "--format", "json"])).stdout).toEqual(["[]"])
    expect(fs.existsSync(sb.db)).toBe(false)
    await sb.run(["status"])
    const before = fs.readFileSync(sb.db)
    expect((await sb.run(["missions"])).stdout).toEqual(["no missions in project default"])
    expect(fs.readFileSync(sb.db).equals(before)).toBe(true)
  })

  it("shows one mission with its preview and every transition: when, from → to, who, why", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const mission = await draft(sb.db)
    const approved = await sb.run(["approve", mission.mission_id, "--project", "acme", "--slot", `vendors=${vendors.join(",")}`, "--reason", "vendors checked"])
    expect(approved.code).toBe(0)

    const text = await sb.run(["missions", "show", mission.mission_id, "--project", "acme"])
    expect(text.code).toBe(0)
    expect(text.stdout.slice(0, 3)).toEqual([
      `mission ${mission.mission_id}: scheduled (project acme)`,
      "goal: run daily competitive research on 3 vendors",
      "blueprint: scheduled_research v3 (Scheduled research)"
    ])
    expect(text.stdout).toContain("Vendors: 3 URLs (https://a.example, https://b.example, https://c.example)")
    expect(text.stdout).toContain("Agents: collect → analyze → alert, report")
    const history = text.stdout.slice(text.stdout.indexOf("history:") + 1)
    expect(history).toHaveLength(3)
    expect(history[0]).toMatch(/^ {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}\(new\) → draft {2}test:router {2}auto_routed at score 0\.91$/)
    expect(history[1]).toMatch(new RegExp(`^ {2}\\S+ {2}draft → approved {2}${me} {2}vendors checked$`))
    expect(history[2]).toMatch(new RegExp(`^ {2}\\S+ {2}approved → scheduled {2}${me} {2}every required slot has a value: fires on 0 9 \\* \\* 1-5 in UTC, catch-up once$`))

    const shown = json((await sb.run(["missions", "show", mission.mission_id, "--project", "acme", "--format", "json"])).stdout)
    expect(shown).toMatchObject({ mission_id: mission.mission_id, status: "scheduled", slots: { vendors }, missing_slots: [] })
    expect(shown.preview.split("\n")[0]).toBe("Scheduled research (scheduled_research v3, scheduled)")
    expect(shown.blueprint.id).toBe("scheduled_research")
    expect(shown.transitions.map((t: Record<string, unknown>) => [t.seq, t.from, t.to, t.actor])).toEqual([
      [1, null, "draft", "test:router"],
      [2, "draft", "approved", me],
      [3, "approved", "scheduled", me]
    ])
  })

  it("approve gives the missing slots and schedules the mission; JSON prints the mission", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const mission = await draft(sb.db, "default", { slots: {}, missing: [] })
    const approved = await sb.run([
      "approve",
      mission.mission_id,
      "--slot",
      "schedule=0 8 * * 1",
      "--slot",
      "vendors=https://a.example/?q=1&x=y, https://b.example",
      "--format",
      "json"
    ])
    expect(approved.code).toBe(0)
    expect(approved.stderr).toEqual([])
    expect(json(approved.stdout)).toMatchObject({
      mission_id: mission.mission_id,
      status: "scheduled",
      slots: { schedule: "0 8 * * 1", vendors: ["https://a.example/?q=1&x=y", "https://b.example"], depth: 2 },
      missing_slots: []
    })
  })

  it("cancel cancels a mission that has not ended; a completed or failed one is left as it is, and it says so", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const mission = await draft(sb.db)
    const cancelled = await sb.run(["cancel", mission.mission_id, "--project", "acme", "--reason", "wrong vendors"])
    expect(cancelled.code).toBe(0)
    expect(cancelled.stdout).toEqual([`mission ${mission.mission_id} cancelled`])
    const again = await sb.run(["cancel", mission.mission_id, "--project", "acme", "--format", "json"])
    expect(json(again.stdout)).toEqual({
      cancelled: false,
      mission_id: mission.mission_id,
      status: "cancelled",
      message: `mission ${mission.mission_id} was already cancelled: nothing changed`
    })

    for (const [end, action] of [["completed", "complete"], ["failed", "fail"]] as const) {
      const done = await draft(sb.db, "acme", { slots: { schedule: "0 9 * * 1-5", vendors }, missing: [] })
      await seed(sb.db, Effect.gen(function*() {
        const missions = yield* Missions
        yield* missions.approve("acme", done.mission_id, { actor: "test" })
        yield* missions.advance("acme", done.mission_id, "start", "test:driver", "its schedule came")
        yield* missions.advance("acme", done.mission_id, action, "test:driver", "its run ended")
      }))
      const before = fs.readFileSync(sb.db)
      const result = await sb.run(["cancel", done.mission_id, "--project", "acme", "--format", "json"])
      expect(result.code).toBe(0)
      expect(json(result.stdout)).toEqual({
        cancelled: false,
        mission_id: done.mission_id,
        status: end,
        message: `mission ${done.mission_id} has already ended (${end}): cancelling it has no effect`
      })
      expect(fs.readFileSync(sb.db).equals(before)).toBe(true)
    }
    const shown = json((await sb.run(["missions", "show", mission.mission_id, "--project", "acme", "--format", "json"])).stdout)
    expect(shown.transitions.at(-1)).toMatchObject({ from: "draft", to: "cancelled", actor: me, reason: "wrong vendors" })
    // Its vendors are still missing, but a cancelled mission is not asked for them any more.
    const text = (await sb.run(["missions", "show", mission.mission_id, "--project", "acme"])).stdout
    expect(text.some((line) => line.includes("autopilot approve"))).toBe(false)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Bad input: one line on stderr, exit 2, nothing on stdout, the database as it was.

/** A database with a draft (vendors missing), a scheduled and a cancelled mission of project acme. */
let existing: Sandbox
const ids: Record<"draft" | "scheduled" | "cancelled", string> = { draft: "", scheduled: "", cancelled: "" }
/** A database that has settings but has never held a mission. */
let settingsOnly: Sandbox

beforeAll(async () => {
  existing = new Sandbox()
  const made: MissionRecord = await draft(existing.db)
  ids.draft = made.mission_id
  ids.scheduled = (await draft(existing.db, "acme", { slots: { schedule: "0 9 * * 1-5", vendors }, missing: [] })).mission_id
  ids.cancelled = (await draft(existing.db)).mission_id
  await seed(existing.db, Effect.gen(function*() {
    const missions = yield* Missions
    yield* missions.approve("acme", ids.scheduled, { actor: "test" })
    yield* missions.cancel("acme", ids.cancelled, "test")
  }))
  settingsOnly = new Sandbox()
  const status = await settingsOnly.run(["status"])
  if (status.code !== 0) throw new Error(`could not make a database with settings: ${status.stderr.join("\n")}`)
})
afterAll(async () => {
  await existing.dispose()
  await settingsOnly.dispose()
})

interface Case {
  readonly name: string
  /** `{draft}`, `{scheduled}`, `{cancelled}` stand for those missions' ids. */
  readonly args: ReadonlyArray<string>
  readonly mentions: RegExp
  /** `fresh`: no database, and none may be made; `existing`: the missions above; `settings`: settings only. */
  readonly db: "fresh" | "existing" | "settings"
}

const unknownId = "ms-000000000000"

const cases: ReadonlyArray<Case> = [
  ...(["fresh", "existing", "settings"] as const).flatMap((db): ReadonlyArray<Case> => [
    { name: `missions show of an unknown id (${db})`, args: ["missions", "show", unknownId], mentions: /^autopilot: no mission "ms-000000000000" in project "default" \(see `autopilot missions`\)$/, db },
    { name: `approve of an unknown id (${db})`, args: ["approve", unknownId, "--project", "acme"], mentions: /no mission "ms-000000000000" in project "acme" \(see `autopilot missions --project acme`\)/, db },
    { name: `cancel of an unknown id (${db})`, args: ["cancel", unknownId], mentions: /no mission "ms-000000000000" in project "default"/, db }
  ]),
  { name: "missions show of another project's mission", args: ["missions", "show", "{draft}", "--project", "beta"], mentions: /^autopilot: no mission "ms-[0-9a-f]{12}" in project "beta"/, db: "existing" },
  { name: "approve of another project's mission", args: ["approve", "{draft}", "--slot", "vendors=https://a.example"], mentions: /no mission "ms-[0-9a-f]{12}" in project "default"/, db: "existing" },
  { name: "cancel of another project's mission", args: ["cancel", "{draft}", "--project", "beta"], mentions: /no mission "ms-[0-9a-f]{12}" in project "beta"/, db: "existing" },
  {
    name: "a slot failing its validator",
    args: ["approve", "{draft}", "--project", "acme", "--slot", "vendors=ftp://a.example"],
    mentions: /^autopilot: slot vendors must be a list of http\(s\) URLs, got "ftp:\/\/a\.example"$/,
    db: "existing"
  },
  {
    name: "a bounded slot out of its bounds",
    args: ["approve", "{draft}", "--project", "acme", "--slot", "vendors=https://a.example", "--slot", "depth=0"],
    mentions: /slot depth must be a whole number from 1 to 5, got "0"/,
    db: "existing"
  },
  {
    name: "an unknown slot",
    args: ["approve", "{draft}", "--project", "acme", "--slot", "colour=red"],
    mentions: /blueprint scheduled_research has no slot "colour" \(slots: schedule, vendors, depth, tone\)/,
    db: "existing"
  },
  {
    name: "a required slot still missing",
    args: ["approve", "{draft}", "--project", "acme", "--slot", "tone=neutral"],
    mentions: /cannot be approved while required slots are missing: vendors \(a list of http\(s\) URLs\); give them with --slot name=value/,
    db: "existing"
  },
  { name: "a --slot without =", args: ["approve", "{draft}", "--project", "acme", "--slot", "vendors"], mentions: /^autopilot: --slot must be name=value, got "vendors"$/, db: "existing" },
  {
    name: "a --slot given twice",
    args: ["approve", "{draft}", "--project", "acme", "--slot", "vendors=https://a.example", "--slot", "vendors=https://b.example"],
    mentions: /--slot vendors is given twice/,
    db: "existing"
  },
  {
    name: "approving a scheduled mission",
    args: ["approve", "{scheduled}", "--project", "acme"],
    mentions: /^autopilot: cannot approve mission ms-[0-9a-f]{12}: it is scheduled \(a scheduled mission can only be started or cancelled\)$/,
    db: "existing"
  },
  {
    name: "approving a cancelled mission",
    args: ["approve", "{cancelled}", "--project", "acme", "--slot", "vendors=https://a.example"],
    mentions: /cannot approve mission ms-[0-9a-f]{12}: it is cancelled \(it has ended, and nothing follows an end\)/,
    db: "existing"
  },
  ...(["fresh", "existing"] as const).map((db): Case => ({
    name: `an unknown --status filter (${db})`,
    args: ["missions", "--project", "acme", "--status", "draft,done"],
    mentions: /^autopilot: --status must be one or more of draft, approved, scheduled, running, completed, partial, halted, failed, cancelled \(comma-separated\), got "done" \(see `autopilot missions --help`\)$/,
    db
  })),
  ...(["fresh", "existing"] as const).map((db): Case => ({
    name: `a project id with a slash (${db})`,
    args: ["missions", "--project", "acme/prod"],
    mentions: /^autopilot: project "acme\/prod" is not allowed: use 1-64 letters, digits, "\.", "_" or "-", starting with a letter or digit$/,
    db
  })),
  { name: "a project id with a space, on approve", args: ["approve", "{draft}", "--project", "ac me"], mentions: /project "ac me" is not allowed/, db: "existing" },
  { name: "bad --format for missions", args: ["missions", "--format", "jsonl"], mentions: /--format must be text or json, got "jsonl"/, db: "existing" },
  ...(["fresh", "settings"] as const).map((db): Case => ({
    name: `an unknown tier (${db})`,
    args: ["enable", "--tier", "gold"],
    mentions: /^autopilot: --tier must be anonymous or free or skip, got "gold" \(see `autopilot enable --help`\)$/,
    db
  })),
  { name: "approve without an id", args: ["approve"], mentions: /mission-id/, db: "existing" }
]

describe.concurrent("missions and settings: bad input is one line, exit 2, nothing written", () => {
  it.for(cases)("$name", async (testCase, context) => {
    const { expect } = context
    const sb = sandbox(context)
    const source = { fresh: undefined, existing, settings: settingsOnly }[testCase.db]
    if (source !== undefined) fs.copyFileSync(source.db, sb.db)
    const before = { files: sb.files(), db: source === undefined ? undefined : fs.readFileSync(sb.db) }
    const args = testCase.args.map((arg) => arg.replace(/^\{(draft|scheduled|cancelled)\}$/, (_, which: keyof typeof ids) => ids[which]))

    const finished = await sb.run(args)

    expect(finished.code).toBe(2)
    expect(finished.stdout).toEqual([])
    expect(finished.stderr).toHaveLength(1)
    expect(finished.stderr[0]).toMatch(testCase.mentions)
    expect(sb.files()).toEqual(before.files)
    if (before.db === undefined) expect(fs.existsSync(sb.db)).toBe(false)
    else expect(fs.readFileSync(sb.db).equals(before.db)).toBe(true)
  })
})
