import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { MockLlm } from "../../src/llm/MockLlm.js"
import * as Fanout from "../../src/runtime/Fanout.js"
import * as RunArtifacts from "../../src/runtime/RunArtifacts.js"
import { environment, goal, runMission, script } from "./fixtures.js"

const fence = "```"

const block = (name: string, content: string) => `${fence}txt title="${name}"\n${content}\n${fence}\n`

/** A run of one iteration whose answer holds these named blocks. */
const runWith = (names: ReadonlyArray<string>) =>
  runMission(
    { runId: "r", goal: goal(), policy: { max_iterations: 1 } },
    script([{ content: names.map((name) => block(name, `content of ${name}`)).join("\n"), criteria_met: [false, false] }])
  )

const layers = RunArtifacts.layer.pipe(Layer.provideMerge(environment), Layer.provideMerge(NodeContext.layer))

describe("RunArtifacts", () => {
  it.scoped("refuses, writing nothing, two names where one would be the other's folder", () =>
    Effect.gen(function*() {
      yield* runWith(["docs", "docs/a.txt"])
      const fs = yield* FileSystem.FileSystem
      const out = `${yield* fs.makeTempDirectoryScoped()}/out`
      const error = yield* Effect.flatMap(RunArtifacts.RunArtifacts, (s) => s.write("r", out)).pipe(Effect.flip)
      assert.strictEqual(error._tag, "BadInput")
      assert.match(error.message, /artifact "docs" of run "r" clashes with artifact "docs\/a.txt"/)
      assert.isFalse(yield* fs.exists(out))
    }).pipe(Effect.provide(layers)))

  it.scoped("writes through a symbolic link that stays inside the folder, and over a file already there", () =>
    Effect.gen(function*() {
      yield* runWith(["inner/a.txt", "b.txt"])
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const out = yield* fs.makeTempDirectoryScoped()
      yield* fs.makeDirectory(path.join(out, "real"))
      yield* fs.symlink(path.join(out, "real"), path.join(out, "inner"))
      yield* fs.writeFileString(path.join(out, "b.txt"), "old")
      const written = yield* Effect.flatMap(RunArtifacts.RunArtifacts, (s) => s.write("r", out))
      assert.deepStrictEqual(written.map((w) => [w.name, w.version, w.bytes]), [["b.txt", 1, 17], ["inner/a.txt", 1, 23]])
      assert.strictEqual(yield* fs.readFileString(path.join(out, "real", "a.txt")), "content of inner/a.txt\n")
      assert.strictEqual(yield* fs.readFileString(path.join(out, "b.txt")), "content of b.txt\n")
    }).pipe(Effect.provide(layers)))

  it.scoped("refuses a dangling symbolic link in the folder, since a write would follow it anywhere", () =>
    Effect.gen(function*() {
      yield* runWith(["a.txt"])
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const out = yield* fs.makeTempDirectoryScoped()
      yield* fs.symlink(path.join(out, "..", "nowhere-yet.txt"), path.join(out, "a.txt"))
      const error = yield* Effect.flatMap(RunArtifacts.RunArtifacts, (s) => s.write("r", out)).pipe(Effect.flip)
      assert.match(error.message, /symbolic link .*a\.txt, which leads outside/)
      assert.isFalse(yield* fs.exists(path.join(out, "..", "nowhere-yet.txt")))
    }).pipe(Effect.provide(layers)))

  it.scoped("a fan-out's artifacts are those of the runs below it, each under a folder named for its run id", () =>
    Effect.gen(function*() {
      // The mock's default answer holds one unnamed code block: snippet-1.ts in every child.
      yield* Fanout.run({
        runId: "fan",
        template: "Research {item}",
        items: ["Rust", { item: "the JVM", template: "Compare {item}", items: ["Java"] }]
      }).pipe(Effect.provide(MockLlm.layer()))
      const service = yield* RunArtifacts.RunArtifacts
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path

      const listed = yield* service.list("fan")
      assert.deepStrictEqual(listed.map((a) => [a.run_id, a.name]), [
        ["fan.0-rust", "fan.0-rust/snippet-1.ts"],
        ["fan.1-the-jvm.0-java", "fan.1-the-jvm.0-java/snippet-1.ts"]
      ])
      assert.strictEqual(RunArtifacts.listedJson(listed[0]!).run_id, "fan.0-rust")
      assert.deepStrictEqual((yield* service.list("fan.0-rust")).map((a) => a.name), ["snippet-1.ts"])

      const out = yield* fs.makeTempDirectoryScoped()
      const written = yield* service.write("fan", out)
      assert.deepStrictEqual(written.map((w) => w.file), [
        path.join(out, "fan.0-rust", "snippet-1.ts"),
        path.join(out, "fan.1-the-jvm.0-java", "snippet-1.ts")
      ])
      assert.include(yield* fs.readFileString(path.join(out, "fan.0-rust", "snippet-1.ts")), "step1")
    }).pipe(Effect.provide(layers)))

  it.scoped("refuses, writing nothing, a child's name that would leave its child's folder, though it stays inside the folder", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      for (const [runId, name, problem] of [["up", "../b.txt", /does not name a file inside .*up\.0-a$/], ["abs", "/etc/b.txt", /is an absolute path$/]] as const) {
        yield* Fanout.run({ runId, template: "Research {item}", items: ["a"] }).pipe(
          Effect.provide(MockLlm.layer(script([{ content: block(name, "from a"), criteria_met: [true, true] }])))
        )
        const out = `${yield* fs.makeTempDirectoryScoped()}/out`
        const error = yield* Effect.flatMap(RunArtifacts.RunArtifacts, (s) => s.write(runId, out)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "BadInput")
        assert.match(error.message.split(";")[0]!, problem)
        assert.isFalse(yield* fs.exists(out))
      }
    }).pipe(Effect.provide(layers)))

  it.effect("an unknown run is RunNotFound, for listing and for writing alike", () =>
    Effect.gen(function*() {
      const service = yield* RunArtifacts.RunArtifacts
      assert.strictEqual((yield* Effect.flip(service.list("ghost")))._tag, "RunNotFound")
      assert.strictEqual((yield* Effect.flip(service.write("ghost", "/nonexistent/out")))._tag, "RunNotFound")
    }).pipe(Effect.provide(layers)))
})
