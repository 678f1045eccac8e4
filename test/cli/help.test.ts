import { Command } from "@effect/cli"
import { afterEach, describe, it, type TestContext } from "vitest"
import * as Help from "../../src/cli/Help.js"
import { bin, cleanup, sandbox } from "./harness.js"

afterEach(cleanup)

const ESC = "\u001b"

describe("help: which output gets colors", () => {
  const page = Help.page([Help.treeOf(Command.make("tool").pipe(Command.withDescription("does things")))], "1.0.0", { color: true })

  it("colors a terminal only, and not when NO_COLOR is set", ({ expect }) => {
    expect(Help.colorFor({ isTTY: true }, "")).toBe(true)
    expect(Help.colorFor({ isTTY: true }, undefined)).toBe(true)
    expect(Help.colorFor({ isTTY: true }, "1")).toBe(false)
    expect(Help.colorFor({ isTTY: false }, "")).toBe(false)
    expect(Help.colorFor({}, "")).toBe(false)
  })

  it("a page without colors has no escape codes, and says the same", ({ expect }) => {
    const plain = Help.page([Help.treeOf(Command.make("tool").pipe(Command.withDescription("does things")))], "1.0.0", { color: false })
    expect(page).toContain(ESC)
    expect(plain).not.toContain(ESC)
    expect(plain).toBe(page.replace(/\u001b\[[\d;]*m/g, ""))
  })
})

describe.concurrent("help of the built CLI", () => {
  const help = async (context: TestContext, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const finished = await sandbox(context).run(args, { db: false, env })
    context.expect(finished.code).toBe(0)
    context.expect(finished.stderr).toEqual([])
    return finished.stdout.join("\n")
  }

  it("is plain text when piped, NO_COLOR or not", async (context) => {
    const { expect } = context
    for (const env of [{}, { NO_COLOR: "1" }]) {
      for (const args of [["--help"], ["run", "--help"], ["harness", "key"], []]) {
        expect(await help(context, args, env)).not.toContain(ESC)
      }
    }
  })

  it("lists each command once, by its own name, with how to get its flags", async (context) => {
    const { expect } = context
    const top = await help(context, ["--help"])
    expect(top).toMatch(/^\$ autopilot <command>$/m)
    for (const command of ["run", "resume", "stop", "runs", "show", "events", "delete", "prune", "harness", "specialists", "status", "enable", "disable", "missions", "approve", "cancel", "blueprints", "goal"]) {
      expect(top).toMatch(new RegExp(`^  ${command} +\\S`, "m"))
    }
    expect(top).toContain("`autopilot <command> --help`")
    expect(top).toContain("`autopilot --version`")
    expect(top).not.toMatch(/harness harness/)
    expect(await help(context, [])).toBe(top)

    const harness = await help(context, ["harness", "--help"])
    for (const command of ["serve", "key", "spend", "audit"]) expect(harness).toMatch(new RegExp(`^  ${command} +\\S`, "m"))
    const key = await help(context, ["harness", "key"])
    expect(key).toMatch(/^\$ autopilot harness key <command>$/m)
    for (const command of ["create", "list", "revoke"]) expect(key).toMatch(new RegExp(`^  ${command} +\\S`, "m"))

    // A command with options of its own runs by itself: its help shows how, and how to reach its subcommands.
    const specialists = await help(context, ["specialists", "--help"])
    expect(specialists).toMatch(/^\$ autopilot specialists \[--category category\] \[--format text\|json\]$/m)
    expect(specialists).toMatch(/^\$ autopilot specialists <command>$/m)
    expect(specialists).toMatch(/^  show +\S/m)
    expect(await help(context, ["specialists", "show", "--help"])).toMatch(/^\$ autopilot specialists show \[--format text\|json\] <id>$/m)
    expect(await help(context, ["blueprints", "--help"])).toMatch(/^\$ autopilot blueprints \[--category category\] \[--format text\|json\]$/m)
    expect(await help(context, ["blueprints", "show", "--help"])).toMatch(/^\$ autopilot blueprints show \[--format text\|json\] <id>$/m)
    expect(await help(context, ["goal", "--help"])).toMatch(/^\$ autopilot goal \[--project project\] \[--pick N\] \[--synthesize\] \[--format text\|json\]/m)
    const missions = await help(context, ["missions", "--help"])
    expect(missions).toMatch(/^\$ autopilot missions \[--project project\] \[--status status\[,status\]\] \[--db file\] \[--database url\] \[--format text\|json\] \[--server url\] \[--token token\]$/m)
    expect(missions).toMatch(/^  show +\S/m)
    expect(await help(context, ["approve", "--help"])).toMatch(/^\$ autopilot approve .*--slot name=value\.\.\. .*<mission-id>$/m)
    const listed = await sandbox(context).run(["specialists"], { db: false })
    expect(listed.stdout[0]).toMatch(/^ID +NAME +CATEGORY +TIER$/)
  })

  it("gives the full command in usage lines, and budgets typed as numbers", async (context) => {
    const { expect } = context
    const run = await help(context, ["run", "--help"])
    expect(run).toMatch(/^\$ autopilot run --criterion text\.\.\. .*\[--max-dollars number\] \[--max-iterations integer\].*<objective>$/m)
    expect(run).toMatch(/\[--format text\|jsonl\]/)
    // @effect/cli calls every text option "a user-defined piece of text": not those typed by us.
    const option = (name: string) => run.split(/\n(?=--)/).find((block) => block.startsWith(`--${name} `))
    expect(option("max-dollars")).toMatch(/^--max-dollars number\n\n {2}cap on dollars: a number from 0 to 1000000; 0 disables the axis\n/)
    expect(option("max-iterations")).not.toContain("A user-defined piece of text.")
    expect(option("run-id")).toContain("A user-defined piece of text.")
    expect(await help(context, ["show", "--help"])).toMatch(/^\$ autopilot show \[--steps integer\] .*<run-id>$/m)
    expect(await help(context, ["harness", "key", "create", "--help"])).toMatch(/^\$ autopilot harness key create --user text --project text /m)
    expect(await help(context, ["run", "an objective", "--criterion", "a", "-h"])).toBe(run)
  })
})

describe("the launcher", () => {
  it("runs the CLI with an old space below V8's 2 GiB large-heap threshold, so garbage is collected at about twice the live set", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    // Reports the heap limit of whatever node process it is loaded into, before the CLI starts.
    const probe = sb.writeFile("probe.mjs", "import v8 from 'node:v8'\nprocess.stderr.write(`heap limit ${v8.getHeapStatistics().heap_size_limit}\\n`)\n")
    const limitOf = (result: { readonly stderr: ReadonlyArray<string> }) => Number(/^heap limit (\d+)$/.exec(result.stderr.find((l) => l.startsWith("heap limit")) ?? "")?.[1])
    const env = { NODE_OPTIONS: `--import=${probe}` }
    const installed = await sb.run(["--help"], { executable: bin, env })
    expect(installed.code).toBe(0)
    const mib = limitOf(installed) / 1048576
    expect(mib).toBeGreaterThanOrEqual(1536)
    expect(mib).toBeLessThan(2048)
    // Started as `node bin/autopilot.js`, the shebang is not read: V8's own limit (from the machine's memory).
    const plain = await sb.run(["--help"], { env })
    expect(limitOf(plain)).not.toBe(limitOf(installed))
  })
})
