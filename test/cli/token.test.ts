import * as fs from "node:fs"
import { afterEach, describe, it } from "vitest"
import { cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const TOKEN = /^apt_[A-Za-z0-9_-]{32}$/

describe.concurrent("autopilot token", () => {
  it("mints a token shown once, lists it without the token or its hash, and revokes it", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const made = await sb.run(["token", "create", "--project", "atlas", "--name", "ci deploys", "--expires-in-days", "30"])
    expect(made.code).toBe(0)
    expect(made.stderr).toEqual([])
    const token = made.stdout[0]!
    expect(token).toMatch(TOKEN)
    expect(made.stdout.join("\n")).toContain("The token is shown this once; only its hash is stored.")
    const id = /^(tok_[0-9a-f]{16})  project atlas  "ci deploys"  expires \d{4}-/.exec(made.stdout[2]!)?.[1]
    expect(id).toBeDefined()

    const json = await sb.run(["token", "create", "--project", "borealis", "--format", "json"])
    expect(json.code).toBe(0)
    const second = JSON.parse(json.stdout.join("\n"))
    expect(second.token).toMatch(TOKEN)
    expect(second).toMatchObject({ project: "borealis", name: null, expires_at: null, revoked_at: null, last_used_at: null, prefix: second.token.slice(0, 12) })

    const listed = await sb.run(["token", "list", "--format", "json"])
    expect(listed.code).toBe(0)
    const tokens = JSON.parse(listed.stdout.join("\n")) as Array<Record<string, unknown>>
    expect(tokens.map((t) => [t.id, t.project, t.name])).toEqual([[second.id, "borealis", null], [id, "atlas", "ci deploys"]])
    expect(Object.keys(tokens[0]!).sort()).toEqual(["created_at", "expires_at", "id", "last_used_at", "name", "prefix", "project", "revoked_at"])
    expect(listed.stdout.join("\n")).not.toContain(token.slice(12))
    expect(listed.stdout.join("\n")).not.toContain(second.token.slice(12))
    const text = await sb.run(["token", "list"])
    expect(text.stdout[0]).toMatch(/^ID +PREFIX +PROJECT +STATE +EXPIRES +LAST USED +NAME$/)
    expect(text.stdout.find((line) => line.startsWith(id!))).toMatch(/apt_\S{8}… +atlas +active +\d{4}-\S+ +never +ci deploys$/)

    // The hash is what is stored: the database holds no token.
    const bytes = fs.readFileSync(sb.db).toString("latin1") + (fs.existsSync(`${sb.db}-wal`) ? fs.readFileSync(`${sb.db}-wal`).toString("latin1") : "")
    expect(bytes).not.toContain(token)

    const revoked = await sb.run(["token", "revoke", id!])
    expect(revoked.code).toBe(0)
    expect(revoked.stdout[0]).toMatch(new RegExp(`^revoked ${id} \\(project atlas\\) at \\d{4}-`))
    const again = await sb.run(["token", "revoke", id!])
    expect(again.code).toBe(2)
    expect(again.stderr).toEqual([`autopilot: no active API token "${id}" (see \`autopilot token list\`)`])
    const after = await sb.run(["token", "list"])
    expect(after.stdout.find((line) => line.startsWith(id!))).toMatch(/ revoked \d{4}-/)
  })

  it("refuses bad input with one line and exit 2, writing nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["token", "create", "--project", "has space"], "autopilot: project \"has space\" is not allowed: use 1-64 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit"],
      [["token", "create", "--project", "atlas", "--expires-in-days", "0"], "autopilot: --expires-in-days must be a whole number of days from 1 to 36500, got \"0\""],
      [["token", "create", "--project", "atlas", "--expires-in-days", "36501"], "autopilot: --expires-in-days must be a whole number of days from 1 to 36500, got \"36501\""],
      [["token", "create", "--project", "atlas", "--expires-in-days", "1.5"], "autopilot: --expires-in-days must be a whole number of days from 1 to 36500, got \"1.5\""],
      [["token", "create", "--project", "atlas", "--name", " "], "autopilot: --name needs a non-empty value"],
      [["token", "create", "--project", "atlas", "--format", "yaml"], "autopilot: --format must be text or json, got \"yaml\" (see `autopilot token create --help`)"],
      [["token", "revoke", "tok_unknown"], "autopilot: no active API token \"tok_unknown\" (see `autopilot token list`)"]
    ]
    for (const [args, line] of cases) {
      const done = await sb.run(args)
      expect(done.code, args.join(" ")).toBe(2)
      expect(done.stderr).toEqual([line])
      expect(done.stdout).toEqual([])
    }
    expect(fs.existsSync(sb.db)).toBe(false)
    const listed = await sb.run(["token", "list"])
    expect(listed.stdout).toEqual(["no API tokens yet (`autopilot token create --project P` mints one)"])
    expect(fs.existsSync(sb.db)).toBe(false)
  })
})
