import * as fs from "node:fs"
import { afterAll, afterEach, beforeAll, describe, it } from "vitest"
import { cleanup, Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/** A database holding one finished run, `base`, copied into the sandbox of each case that needs one. */
let existing: Sandbox
beforeAll(async () => {
  existing = new Sandbox()
  const made = await existing.run(["run", "base", "--criterion", "a", "--run-id", "base", "--max-iterations", "1"])
  if (made.code !== 0) throw new Error(`could not make the base database: ${made.stderr.join("\n")}`)
})
afterAll(() => existing.dispose())

interface Case {
  readonly name: string
  readonly args: ReadonlyArray<string>
  /** What the one line on stderr must name. */
  readonly mentions: RegExp
  /** `fresh`: no database yet, and none may be made; `existing`: a copy of the base database, left as it was. */
  readonly db: "fresh" | "existing"
  readonly files?: Readonly<Record<string, string>>
  readonly env?: Readonly<Record<string, string>>
}

const run = (...more: ReadonlyArray<string>) => ["run", "an objective", "--criterion", "a", ...more]

const fanout = (...more: ReadonlyArray<string>) => ["fanout", "--template", "Research {item}", ...more]

const fanoutCases: ReadonlyArray<Case> = [
  { name: "fanout: empty template", args: ["fanout", "--template", "", "--item", "a"], mentions: /--template needs a non-empty value/, db: "fresh" },
  { name: "fanout: blank template", args: ["fanout", "--template", "  ", "--item", "a"], mentions: /--template needs a non-empty value/, db: "fresh" },
  { name: "fanout: template without {item}", args: ["fanout", "--template", "Research", "--item", "a"], mentions: /template "Research" .*has no \{item\}/, db: "fresh" },
  { name: "fanout: no items", args: fanout(), mentions: /a fan-out needs items: --item A --item B \.\.\. or --items-file FILE/, db: "fresh" },
  { name: "fanout: an empty --item", args: fanout("--item", "a", "--item", ""), mentions: /--item needs a non-empty value/, db: "fresh" },
  {
    name: "fanout: an items file with no items",
    args: fanout("--items-file", "items.txt"),
    mentions: /--items-file items\.txt has no items/,
    db: "fresh",
    files: { "items.txt": "# nothing yet\n\n" }
  },
  { name: "fanout: unreadable items file", args: fanout("--items-file", "missing.txt"), mentions: /--items-file missing\.txt cannot be read/, db: "fresh" },
  { name: "fanout: --item and --items-file both", args: fanout("--item", "a", "--items-file", "items.txt"), mentions: /not both/, db: "fresh", files: { "items.txt": "b\n" } },
  { name: "fanout: more items than --max-items", args: fanout("--item", "a", "--item", "b", "--item", "c", "--max-items", "2"), mentions: /3 items is more than --max-items 2/, db: "fresh" },
  ...["0", "2.5", "four", "-1"].map((value): Case => ({
    name: `fanout: --max-parallel ${value}`,
    args: fanout("--item", "a", "--max-parallel", value),
    mentions: new RegExp(`--max-parallel must be a whole number from 1 to 100000, got "${value.replace(".", "\\.")}"`),
    db: "fresh"
  })),
  { name: "fanout: --max-items 0", args: fanout("--item", "a", "--max-items", "0"), mentions: /--max-items must be a whole number from 1/, db: "fresh" },
  { name: "fanout: a bad budget", args: fanout("--item", "a", "--max-iterations", "-3"), mentions: /--max-iterations.*"-3"/, db: "fresh" },
  { name: "fanout: a bad run id", args: fanout("--item", "a", "--run-id", "../x"), mentions: /run id "\.\.\/x"/, db: "fresh" },
  { name: "fanout: --deltas is not a fanout flag", args: fanout("--item", "a", "--deltas"), mentions: /--deltas/, db: "fresh" },
  { name: "fanout: an existing run id", args: fanout("--item", "a", "--run-id", "base"), mentions: /run "base" already exists \(status completed\); `autopilot resume base` continues it/, db: "existing" }
]

const budgetCases: ReadonlyArray<Case> = [
  ["--max-seconds", "31622401"],
  ["--max-tool-calls", "1e10"],
  ["--max-tokens", "1e13"],
  ["--max-dollars", "1e7"],
  ["--max-iterations", "1e10"]
].flatMap(([flag, absurd]) =>
  [["negative", "-1"], ["non-numeric", "ten"], ["absurd", absurd!]].map(([kind, value]): Case => ({
    name: `${flag} ${kind} (${value})`,
    args: run(flag!, value!),
    mentions: new RegExp(`${flag}.*"${value!.replace(".", "\\.")}"`),
    db: "fresh"
  }))
)

/** Every command that starts runs refuses a bad AUTOPILOT_LIVE_TEXT before it opens the database. */
const liveTextCases: ReadonlyArray<Case> = [
  run(),
  fanout("--item", "a"),
  ["resume", "base"],
  ["daemon", "--once"],
  ["missions", "run", "ms-000000000000"]
].map((args): Case => ({
  name: `AUTOPILOT_LIVE_TEXT=sometimes for ${args[0]}${args[0] === "missions" ? " run" : ""}`,
  args,
  env: { AUTOPILOT_LIVE_TEXT: "sometimes" },
  mentions: /^autopilot: AUTOPILOT_LIVE_TEXT must be on or off, got "sometimes"/,
  db: args[0] === "resume" || args[0] === "missions" ? "existing" : "fresh"
}))

const cases: ReadonlyArray<Case> = [
  ...budgetCases,
  ...liveTextCases,
  ...fanoutCases,
  { name: "a budget value on resume", args: ["resume", "base", "--max-tokens", "-5"], mentions: /--max-tokens.*"-5"/, db: "existing" },
  { name: "empty objective", args: ["run", "", "--criterion", "a"], mentions: /objective/, db: "fresh" },
  { name: "empty --criterion", args: run("--criterion", ""), mentions: /--criterion/, db: "fresh" },
  { name: "blank --criterion", args: run("--criterion", "   "), mentions: /--criterion/, db: "fresh" },
  { name: "missing mock script", args: run("--mock-script", "missing.json"), mentions: /mock script missing\.json/, db: "fresh" },
  {
    name: "malformed mock script JSON",
    args: run("--mock-script", "bad.json"),
    mentions: /mock script bad\.json is malformed/,
    db: "fresh",
    files: { "bad.json": "{\"turns\": [" }
  },
  {
    name: "mock script with zero turns",
    args: run("--mock-script", "empty.json"),
    mentions: /mock script empty\.json.*turns/,
    db: "fresh",
    files: { "empty.json": "{\"latency_ms\": 0, \"turns\": []}" }
  },
  ...["resume", "show", "stop", "events"].flatMap((command) =>
    (["fresh", "existing"] as const).map((db): Case => ({
      name: `${command} of an unknown run id (${db} database)`,
      args: [command, "no-such-run"],
      mentions: /no run with id "no-such-run"/,
      db
    }))
  ),
  { name: "unknown flag", args: run("--no-such-flag"), mentions: /--no-such-flag/, db: "fresh" },
  { name: "unknown --specialist", args: run("--specialist", "wizard"), mentions: /unknown specialist "wizard"; `autopilot specialists` lists/, db: "fresh" },
  {
    name: "--specialist on resuming a run started without one",
    args: ["run", "base", "--criterion", "a", "--run-id", "base", "--resume", "--specialist", "architect"],
    mentions: /run "base" was started without a specialist/,
    db: "existing"
  },
  { name: "bad --format for run", args: run("--format", "xml"), mentions: /--format must be text or jsonl, got "xml"/, db: "fresh" },
  { name: "bad --format for show", args: ["show", "base", "--format", "jsonl"], mentions: /--format must be text or json, got "jsonl"/, db: "existing" },
  { name: "unknown --llm", args: run("--llm", "gpt"), mentions: /--llm must be mock or openai or harness, got "gpt"/, db: "fresh" },
  { name: "--llm openai without its variables", args: run("--llm", "openai"), mentions: /--llm openai needs AUTOPILOT_LLM_BASE_URL/, db: "fresh" },
  { name: "a hexadecimal budget", args: run("--max-iterations", "0x2"), mentions: /--max-iterations.*"0x2"/, db: "fresh" },
  { name: "a padded budget", args: run("--max-iterations", " 2 "), mentions: /--max-iterations.*" 2 "/, db: "fresh" },
  { name: "bad run id", args: run("--run-id", "no spaces allowed"), mentions: /run id "no spaces allowed"/, db: "fresh" },
  { name: "zero --heartbeat-seconds", args: run("--heartbeat-seconds", "0"), mentions: /--heartbeat-seconds.*"0"/, db: "fresh" },
  { name: "non-numeric --grace-seconds", args: run("--grace-seconds", "soon"), mentions: /--grace-seconds.*"soon"/, db: "fresh" },
  { name: "--resume without --run-id", args: run("--resume"), mentions: /--resume needs --run-id/, db: "fresh" },
  { name: "negative --steps for show", args: ["show", "base", "--steps", "-1"], mentions: /--steps must be 0 \(all\) or a positive whole number/, db: "existing" },
  {
    name: "non-numeric --steps for show",
    args: ["show", "base", "--steps", "abc"],
    mentions: /^autopilot: --steps must be 0 \(all\) or a positive whole number, got "abc" \(see `autopilot show --help`\)$/,
    db: "existing"
  },
  {
    name: "a non-numeric whole-number flag parsed by @effect/cli",
    args: ["harness", "serve", "--port", "abc"],
    mentions: /^autopilot: --port must be a whole number, got "abc" \(see `autopilot harness serve --help`\)$/,
    db: "fresh"
  },
  { name: "unknown --status for runs", args: ["runs", "--status", "done"], mentions: /--status must be one or more of running, interrupted, .*got "done"/, db: "existing" },
  { name: "one unknown state among several", args: ["runs", "--status", "halted,zombie"], mentions: /--status .*got "zombie"/, db: "existing" },
  { name: "negative --limit for runs", args: ["runs", "--limit", "-1"], mentions: /--limit must be 0 \(all\) or a positive whole number, got "-1"/, db: "existing" },
  { name: "fractional --limit for runs", args: ["runs", "--limit", "2.5"], mentions: /--limit .*got "2\.5"/, db: "fresh" },
  ...(["fresh", "existing"] as const).map((db): Case => ({
    name: `delete of an unknown run id (${db} database)`,
    args: ["delete", "no-such-run"],
    mentions: /no run with id "no-such-run"/,
    db
  })),
  { name: "delete of a known and an unknown run deletes neither", args: ["delete", "base", "no-such-run"], mentions: /no run with id "no-such-run"/, db: "existing" },
  { name: "delete with no run id", args: ["delete"], mentions: /run-id/, db: "existing" },
  { name: "prune without --older-than", args: ["prune"], mentions: /--older-than/, db: "existing" },
  { name: "negative --older-than", args: ["prune", "--older-than", "-1"], mentions: /--older-than must be a number of days from 0 to 36600, got "-1"/, db: "existing" },
  { name: "non-numeric --older-than", args: ["prune", "--older-than", "a week"], mentions: /--older-than .*got "a week"/, db: "existing" },
  { name: "unknown --status for prune", args: ["prune", "--older-than", "0", "--status", "old"], mentions: /--status .*got "old"/, db: "existing" },
  ...[["above 1", "1.5"], ["negative", "-0.5"], ["non-numeric", "high"], ["hexadecimal", "0x1"]].map(([kind, value]): Case => ({
    name: `--critic-threshold ${kind}`,
    args: run("--critic", "--critic-threshold", value!),
    mentions: new RegExp(`^autopilot: --critic-threshold must be a number from 0 to 1, got "${value!.replace(".", "\\.")}"$`),
    db: "fresh"
  })),
  { name: "--critic-threshold on resume", args: ["resume", "base", "--critic-threshold", "2"], mentions: /--critic-threshold must be a number from 0 to 1, got "2"/, db: "existing" },
  ...(["fresh", "existing"] as const).map((db): Case => ({
    name: `artifacts --out of an unknown run id (${db} database) makes no folder`,
    args: ["artifacts", "no-such-run", "--out", "out"],
    mentions: /no run with id "no-such-run"/,
    db
  })),
  { name: "artifacts of an unknown run id", args: ["artifacts", "no-such-run"], mentions: /no run with id "no-such-run"/, db: "existing" },
  { name: "bad --format for artifacts", args: ["artifacts", "base", "--format", "jsonl"], mentions: /--format must be text or json, got "jsonl"/, db: "existing" },
  { name: "empty --out for artifacts", args: ["artifacts", "base", "--out", ""], mentions: /--out needs a non-empty value/, db: "existing" }
]

describe.concurrent("bad input: exit 2, one line on stderr, nothing on stdout, database untouched", () => {
  it.for(cases)("$name", async (testCase, context) => {
    const { expect } = context
    const sb = sandbox(context)
    for (const [name, content] of Object.entries(testCase.files ?? {})) sb.writeFile(name, content)
    if (testCase.db === "existing") fs.copyFileSync(existing.db, sb.db)
    const before = { files: sb.files(), db: testCase.db === "existing" ? fs.readFileSync(sb.db) : undefined }

    const finished = await sb.run(testCase.args, { env: { ...testCase.env } })

    expect(finished.code).toBe(2)
    expect(finished.stdout).toEqual([])
    expect(finished.stderr).toHaveLength(1)
    expect(finished.stderr[0]!.trim()).not.toBe("")
    expect(finished.stderr[0]).not.toMatch(/^\s+at /)
    expect(finished.stderr[0]).toMatch(testCase.mentions)
    // No database made, and no workspace folder either.
    expect(sb.files()).toEqual(before.files)
    if (before.db === undefined) {
      expect(fs.existsSync(sb.db)).toBe(false)
    } else {
      expect(fs.readFileSync(sb.db).equals(before.db)).toBe(true)
      expect(sb.files().filter((f) => f.startsWith("a.db"))).toEqual(["a.db"])
    }
  })
})
