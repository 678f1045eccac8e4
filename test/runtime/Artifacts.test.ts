import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck, Layer } from "effect"
import { type ArtifactInfo, maxArtifactBytes } from "../../src/domain/Artifact.js"
import { PersistenceError } from "../../src/domain/Errors.js"
import * as Artifacts from "../../src/runtime/Artifacts.js"
import { ArtifactStore } from "../../src/store/ArtifactStore.js"
import { StepStore } from "../../src/store/StepStore.js"
import * as GroupCommit from "../../src/store/GroupCommit.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { workspaceTools } from "../../src/tools/Workspace.js"
import { environment, goal, ofKind, runMission, script } from "./fixtures.js"

const fence = "```"

/** What extraction found, without the content unless asked for. */
const found = (answer: string) => Artifacts.fromAnswer(answer).map(({ content: _, ...rest }) => rest)

describe("Artifacts: extraction from answers", () => {
  it("takes every code block of an answer, naming each from its info string or by its place", () => {
    const answer = [
      "Here is the service and a quick way to try it.",
      "",
      `${fence}ts title="src/app.ts"`,
      "export const app = () => \"ok\"",
      fence,
      "",
      "Install and run:",
      "",
      `${fence}bash`,
      "npm install",
      "npm start",
      fence,
      "",
      `${fence}python app.py`,
      "print('hello')",
      fence,
      "",
      `${fence}ts:lib/x.ts`,
      "export const x = 1",
      fence,
      "",
      `${fence}config/settings.json`,
      "{\"debug\": true}",
      fence,
      "",
      `${fence}go filename='cmd/main.go'`,
      "package main",
      fence,
      "",
      fence,
      "plain text, no language",
      fence,
      "",
      `${fence}python {1,3}`,
      "a = 1",
      fence
    ].join("\n")
    assert.deepStrictEqual(found(answer), [
      { name: "src/app.ts", kind: "code", language: "ts" },
      { name: "snippet-1.sh", kind: "code", language: "bash" },
      { name: "app.py", kind: "code", language: "python" },
      { name: "lib/x.ts", kind: "code", language: "ts" },
      { name: "config/settings.json", kind: "code", language: "json" },
      { name: "cmd/main.go", kind: "code", language: "go" },
      { name: "snippet-2.txt", kind: "code" },
      { name: "snippet-3.py", kind: "code", language: "python" }
    ])
    assert.deepStrictEqual(Artifacts.fromAnswer(answer).map((a) => a.content).slice(0, 2), [
      "export const app = () => \"ok\"\n",
      "npm install\nnpm start\n"
    ])
  })

  it("keeps a longer fence's inner fences as content, and skips a block left open at the end", () => {
    const answer = [
      "The README, as a file:",
      "",
      "````markdown title=README.md",
      "# Demo",
      "",
      `${fence}sh`,
      "npm test",
      fence,
      "````",
      "",
      "And the start of the next one, cut off:",
      "",
      `${fence}ts`,
      "export const unfinished = (",
      ""
    ].join("\n")
    const artifacts = Artifacts.fromAnswer(answer)
    assert.deepStrictEqual(artifacts.map((a) => [a.name, a.kind, a.language]), [["README.md", "markdown", "markdown"]])
    assert.strictEqual(artifacts[0]!.content, `# Demo\n\n${fence}sh\nnpm test\n${fence}\n`)
  })

  it("an answer with a top-level heading is a markdown document named from it; headings inside code do not count", () => {
    const answer = [
      `${fence}python`,
      "# not a heading: a comment",
      "x = 1",
      fence,
      "",
      "## Background",
      "",
      "# Design Notes: Café v2 ##",
      "",
      "Text."
    ].join("\n")
    const artifacts = Artifacts.fromAnswer(answer)
    assert.deepStrictEqual(artifacts.map((a) => [a.name, a.kind]), [["snippet-1.py", "code"], ["design-notes-cafe-v2.md", "markdown"]])
    assert.strictEqual(artifacts[1]!.content, answer)
    // A second-level heading alone is a section, not a document (the mock's default answer has one).
    assert.deepStrictEqual(found("## Iteration 3\n\nStep 3 of the plan."), [])
    assert.deepStrictEqual(found("#hashtag is not a heading"), [])
  })

  it("tilde fences, indented fences in lists, CRLF line ends, and empty blocks", () => {
    const answer = [
      "1. Create the file:",
      "",
      "   ```js server.js",
      "   const http = require('http')",
      "     .createServer()",
      "   ```",
      "",
      "~~~sql",
      "SELECT 1;",
      "~~~",
      "",
      `${fence}ts`,
      fence
    ].join("\r\n")
    const artifacts = Artifacts.fromAnswer(answer)
    assert.deepStrictEqual(artifacts.map((a) => [a.name, a.language, a.content]), [
      ["server.js", "js", "const http = require('http')\n  .createServer()\n"],
      ["snippet-1.sql", "sql", "SELECT 1;\n"]
    ])
  })

  it("prose answers have no artifacts, and an inline triple-backtick span is not a fence", () => {
    assert.deepStrictEqual(found("Working on the objective.\n\nMade some progress."), [])
    assert.deepStrictEqual(found("Use ```ts code``` spans sparingly."), [])
  })

  it("a name a model should not have written is kept for --out to refuse, and an unusable one falls back to the default", () => {
    assert.deepStrictEqual(Artifacts.parseInfo("ts title=\"../escape.ts\""), { language: "ts", name: "../escape.ts" })
    assert.deepStrictEqual(Artifacts.parseInfo("sh /etc/cron.d/job"), { language: "sh", name: "/etc/cron.d/job" })
    assert.deepStrictEqual(Artifacts.parseInfo("ts title=\"\""), { language: "ts", name: undefined })
    assert.deepStrictEqual(Artifacts.parseInfo("ts ./src/a.ts"), { language: "ts", name: "src/a.ts" })
    assert.deepStrictEqual(Artifacts.parseInfo("C++"), { language: "c++", name: undefined })
  })

  it.prop("never throws, and every artifact has a name and content", [FastCheck.string({ unit: FastCheck.constantFrom("`", "~", "#", " ", "\n", "a", ".", "/", "=", "\"") })], ([answer]) => {
    for (const artifact of Artifacts.fromAnswer(answer)) {
      assert.isAbove(artifact.name.length, 0)
      assert.isAbove(artifact.content.length, 0)
    }
  })
})

describe("Artifacts: files written by tools", () => {
  it("takes what successful write_file calls wrote, by workspace path; failed calls and other tools are not artifacts", () => {
    const produced = Artifacts.fromToolCalls([
      { name: "write_file", arguments: { path: "./notes/../plan.md", content: "# Plan\n" }, ok: true, output: "wrote 7 bytes" },
      { name: "write_file", arguments: { path: "../outside.txt", content: "x" }, ok: false, output: "outside the workspace" },
      { name: "write_file", arguments: { path: 42 }, ok: true, output: "odd" },
      { name: "calculator", arguments: { expression: "1+1" }, ok: true, output: "2" }
    ])
    assert.deepStrictEqual(produced, [{ name: "plan.md", kind: "file", path: "plan.md", content: "# Plan\n" }])
  })

  it("the same name twice in one iteration keeps the last: a file written after the answer wins over its code block", () => {
    const produced = Artifacts.producedBy(`${fence}md plan.md\nfirst\n${fence}\n`, [
      { name: "write_file", arguments: { path: "plan.md", content: "second\n" }, ok: true, output: "" }
    ])
    assert.deepStrictEqual(produced.map((p) => [p.name, p.kind, p.content]), [["plan.md", "file", "second\n"]])
  })
})

describe("Artifacts: versions and the cap", () => {
  const code = (content: string) => ({ name: "a.ts", kind: "code" as const, language: "ts", content })

  it("a name produced again is the next version, unless its content is unchanged", () => {
    const first = Artifacts.versionsOf({ produced: [code("v1")], latest: new Map(), iteration: 1, at: "t1" })
    assert.deepStrictEqual(first.map((a) => [a.name, a.version, a.iteration]), [["a.ts", 1, 1]])
    const latest = new Map([["a.ts", { version: 1, sha256: first[0]!.sha256 }]])
    assert.deepStrictEqual(Artifacts.versionsOf({ produced: [code("v1")], latest, iteration: 2, at: "t2" }), [])
    // A session compares small contents it remembers instead of hashing them again.
    const remembered = new Map([["a.ts", { version: 1, sha256: first[0]!.sha256, content: "v1" }]])
    assert.deepStrictEqual(Artifacts.versionsOf({ produced: [code("v1")], latest: remembered, iteration: 2, at: "t2" }), [])
    assert.deepStrictEqual(Artifacts.versionsOf({ produced: [code("v1b")], latest: remembered, iteration: 2, at: "t2" }).map((a) => a.version), [2])
    const second = Artifacts.versionsOf({ produced: [code("v2"), { ...code("other"), name: "b.ts" }], latest, iteration: 3, at: "t3" })
    assert.deepStrictEqual(second.map((a) => [a.name, a.version, a.iteration]), [["a.ts", 2, 3], ["b.ts", 1, 3]])
  })

  it("content past the cap is cut at a character boundary and ends with a marker; bytes is the size produced", () => {
    const content = "é".repeat(10) // 20 bytes of UTF-8
    const [artifact] = Artifacts.versionsOf({ produced: [code(content)], latest: new Map(), iteration: 1, at: "t", maxBytes: 7 })
    assert.strictEqual(artifact!.truncated, true)
    assert.strictEqual(artifact!.bytes, 20)
    assert.strictEqual(artifact!.content, "ééé\n[truncated by autopilot: kept the first 6 of 20 bytes]\n")
    // A character held back at one cut does not leak into the next.
    const [again] = Artifacts.versionsOf({ produced: [code(content)], latest: new Map(), iteration: 1, at: "t", maxBytes: 7 })
    assert.strictEqual(again!.content, artifact!.content)
    const [small] = Artifacts.versionsOf({ produced: [code(content)], latest: new Map(), iteration: 1, at: "t", maxBytes: 20 })
    assert.deepStrictEqual([small!.truncated, small!.content], [false, content])
  })

  it("the event names the version, never its content", () => {
    const [artifact] = Artifacts.versionsOf({ produced: [code("secret")], latest: new Map(), iteration: 4, at: "t" })
    assert.deepStrictEqual(Artifacts.eventOf(artifact!), {
      kind: "artifact",
      iteration: 4,
      name: "a.ts",
      version: 1,
      artifact_kind: "code",
      language: "ts",
      bytes: 6,
      truncated: false
    })
  })
})

describe("Artifacts: collected by a running mission", () => {
  const answer = (aTs: string, py: string) => `# Build notes\n\n${fence}ts title="a.ts"\n${aTs}\n${fence}\n\n${fence}python\n${py}\n${fence}\n`
  const turns = [
    { content: answer("export const a = 1", "print(1)"), criteria_met: [false, false] },
    { content: answer("export const a = 1", "print(2)"), criteria_met: [false, false] },
    { content: answer("export const a = 2", "print(2)"), criteria_met: [false, false] }
  ]
  const listed = (runId: string) => Effect.flatMap(ArtifactStore, (store) => store.list(runId))
  const versions = (infos: ReadonlyArray<ArtifactInfo>) => infos.map((a) => `${a.name} v${a.version} @${a.iteration}`)

  it.effect("stores each iteration's new versions with it and announces each, before the iteration, without content", () =>
    Effect.gen(function*() {
      const { events } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 3 } }, script(turns, { repeat_last: false }))
      assert.deepStrictEqual(versions(yield* listed("r")), [
        "a.ts v1 @1",
        "a.ts v2 @3",
        "build-notes.md v1 @1",
        "build-notes.md v2 @2",
        "build-notes.md v3 @3",
        "snippet-1.py v1 @1",
        "snippet-1.py v2 @2"
      ])
      const announced = ofKind(events, "artifact")
      assert.deepStrictEqual(announced.map((e) => `${e.name} v${e.version} @${e.iteration}`), [
        "a.ts v1 @1",
        "snippet-1.py v1 @1",
        "build-notes.md v1 @1",
        "snippet-1.py v2 @2",
        "build-notes.md v2 @2",
        "a.ts v2 @3",
        "build-notes.md v3 @3"
      ])
      assert.deepStrictEqual(announced[0], {
        ...announced[0]!,
        artifact_kind: "code",
        language: "ts",
        bytes: "export const a = 1\n".length,
        truncated: false
      })
      assert.notInclude(JSON.stringify(announced), "export const")
      const kinds = events.map((e) => (e.kind === "iteration" ? `iteration ${e.iteration}` : e.kind))
      assert.deepStrictEqual(kinds.slice(kinds.indexOf("iteration 1") - 3, kinds.indexOf("iteration 1") + 1), ["artifact", "artifact", "artifact", "iteration 1"])
      assert.strictEqual(yield* Effect.flatMap(ArtifactStore, (store) => store.count("r")), 3)
    }).pipe(Effect.provide(environment)))

  it.effect("the mock's default answer makes a new version of its snippet every iteration", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "r", goal: goal(2) })
      assert.deepStrictEqual(versions(yield* listed("r")), ["snippet-1.ts v1 @1", "snippet-1.ts v2 @2"])
    }).pipe(Effect.provide(environment)))

  it.effect("a resume keeps them and goes on versioning from the latest; unchanged content is not a new version", () =>
    Effect.gen(function*() {
      yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 2 } }, script(turns))
      // The mock starts its script afresh in a new session: turn 1 again, then turn 2 unchanged.
      yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 4 } }, script(turns.slice(0, 2)))
      assert.deepStrictEqual(versions(yield* listed("r")), [
        "a.ts v1 @1",
        "build-notes.md v1 @1",
        "build-notes.md v2 @2",
        "build-notes.md v3 @3",
        "build-notes.md v4 @4",
        "snippet-1.py v1 @1",
        "snippet-1.py v2 @2",
        "snippet-1.py v3 @3",
        "snippet-1.py v4 @4"
      ])
    }).pipe(Effect.provide(environment)))

  it.effect("an iteration whose commit fails leaves no artifacts behind, and its resume makes them again", () =>
    Effect.gen(function*() {
      const failingStep2 = GroupCommit.layer().pipe(Layer.provideMerge(Layer.effect(StepStore, Effect.gen(function*() {
        const real = yield* StepStore
        return StepStore.of({
          ...real,
          append: (steps) =>
            steps.some(({ step }) => step.iteration === 2) ? Effect.fail(new PersistenceError({ message: "disk I/O error", busy: false })) : real.append(steps)
        })
      }))))
      const { result } = yield* runMission({ runId: "r", goal: goal(), policy: { max_iterations: 3 } }, script(turns)).pipe(Effect.provide(failingStep2))
      assert.strictEqual(result.status, "failed")
      assert.deepStrictEqual(versions(yield* listed("r")), ["a.ts v1 @1", "build-notes.md v1 @1", "snippet-1.py v1 @1"])
      yield* runMission({ runId: "r", resume: true, policy: { max_iterations: 2 } }, script(turns.slice(1)))
      assert.deepStrictEqual(versions(yield* listed("r")), [
        "a.ts v1 @1",
        "build-notes.md v1 @1",
        "build-notes.md v2 @2",
        "snippet-1.py v1 @1",
        "snippet-1.py v2 @2"
      ])
    }).pipe(Effect.provide(environment)))

  it.scoped("files written by the workspace tool are artifacts by their path; one past the cap is stored cut, with a marker", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const root = `${yield* fs.makeTempDirectoryScoped()}/ws`
      const big = "x".repeat(maxArtifactBytes + 100)
      const writes = [
        { name: "write_file", arguments: { path: "docs/plan.md", content: "# Plan\n" } },
        { name: "write_file", arguments: { path: "../escape.md", content: "no" } },
        { name: "write_file", arguments: { path: "data/big.txt", content: big } }
      ]
      const tools = Toolkit.layer(yield* workspaceTools(root))
      const { events } = yield* runMission(
        { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
        script([{ content: "Wrote the files.", tool_calls: writes, criteria_met: [false, false] }])
      ).pipe(Effect.provide(tools))
      assert.deepStrictEqual(ofKind(events, "artifact").map(({ at: _, remaining: __, run_id: ___, seq: ____, ...e }) => e), [
        { kind: "artifact", iteration: 1, name: "docs/plan.md", version: 1, artifact_kind: "file", path: "docs/plan.md", bytes: 7, truncated: false },
        { kind: "artifact", iteration: 1, name: "data/big.txt", version: 1, artifact_kind: "file", path: "data/big.txt", bytes: big.length, truncated: true }
      ])
      const stored = yield* Effect.flatMap(ArtifactStore, (store) => store.latestContents("r"))
      assert.deepStrictEqual(stored.map((a) => a.name), ["data/big.txt", "docs/plan.md"])
      const cut = stored[0]!.content
      assert.isTrue(cut.startsWith("x".repeat(maxArtifactBytes) + "\n"))
      assert.strictEqual(cut.slice(maxArtifactBytes), `\n[truncated by autopilot: kept the first ${maxArtifactBytes} of ${big.length} bytes]\n`)
      assert.strictEqual(stored[1]!.content, "# Plan\n")
    }).pipe(Effect.provide(environment), Effect.provide(NodeContext.layer)))
})
