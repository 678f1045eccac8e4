import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { defaultTools } from "../../src/tools/Defaults.js"
import { Toolkit } from "../../src/tools/Tool.js"
import { workspaceTools } from "../../src/tools/Workspace.js"

/** A toolkit over a fresh workspace `ws` inside a temporary folder that also holds `outside/secret.txt`. */
const setup = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const tmp = yield* fs.makeTempDirectoryScoped()
  const root = path.join(tmp, "ws")
  const outside = path.join(tmp, "outside")
  yield* fs.makeDirectory(outside)
  yield* fs.writeFileString(path.join(outside, "secret.txt"), "secret")
  const toolkit = Toolkit.make(yield* workspaceTools(root))
  return { fs, path, tmp, root, outside, toolkit }
})

const refusedOutside = (outcome: { readonly ok: boolean; readonly output: string }, requested: string) => {
  assert.isFalse(outcome.ok, requested)
  assert.include(outcome.output, `path "${requested}"`)
  assert.include(outcome.output, "must stay inside the workspace")
}

layer(NodeContext.layer)("workspace tools", (it) => {
  it.scoped("creates the root on first use and writes then reads files, making nested folders", () =>
    Effect.gen(function*() {
      const { fs, path, root, toolkit } = yield* setup
      assert.isFalse(yield* fs.exists(root))
      assert.deepStrictEqual(yield* toolkit.call("write_file", { path: "notes.txt", content: "hello ✓" }), {
        ok: true,
        output: "wrote 9 bytes to \"notes.txt\""
      })
      assert.isTrue(yield* fs.exists(root))
      assert.deepStrictEqual(yield* toolkit.call("read_file", { path: "notes.txt" }), { ok: true, output: "hello ✓" })
      assert.isTrue((yield* toolkit.call("write_file", { path: "a/b/c.md", content: "deep" })).ok)
      assert.strictEqual(yield* fs.readFileString(path.join(root, "a", "b", "c.md")), "deep")
      assert.deepStrictEqual(yield* toolkit.call("read_file", { path: "./a/../a/b/c.md" }), { ok: true, output: "deep" })
      assert.deepStrictEqual(yield* toolkit.call("list_files", {}), { ok: true, output: "a/\nnotes.txt" })
      assert.deepStrictEqual(yield* toolkit.call("list_files", { path: "a/b" }), { ok: true, output: "c.md" })
    }))

  it.scoped("reports missing files and folders given to read_file", () =>
    Effect.gen(function*() {
      const { toolkit } = yield* setup
      assert.deepStrictEqual(yield* toolkit.call("read_file", { path: "nope.txt" }), {
        ok: false,
        output: "\"nope.txt\" does not exist in the workspace"
      })
      yield* toolkit.call("write_file", { path: "dir/x.txt", content: "x" })
      const folder = yield* toolkit.call("read_file", { path: "dir" })
      assert.isFalse(folder.ok)
      assert.include(folder.output, "is a folder")
    }))

  it.scoped("refuses absolute paths and .. escapes", () =>
    Effect.gen(function*() {
      const { fs, path, tmp, toolkit } = yield* setup
      refusedOutside(yield* toolkit.call("write_file", { path: "../escape.txt", content: "x" }), "../escape.txt")
      refusedOutside(yield* toolkit.call("write_file", { path: "a/../../escape.txt", content: "x" }), "a/../../escape.txt")
      assert.isFalse(yield* fs.exists(path.join(tmp, "escape.txt")))
      refusedOutside(yield* toolkit.call("read_file", { path: "/etc/passwd" }), "/etc/passwd")
      refusedOutside(yield* toolkit.call("read_file", { path: "../outside/secret.txt" }), "../outside/secret.txt")
      refusedOutside(yield* toolkit.call("list_files", { path: ".." }), "..")
    }))

  it.scoped("refuses symlinks that lead outside, for reads and writes", () =>
    Effect.gen(function*() {
      const { fs, outside, path, root, toolkit } = yield* setup
      yield* fs.makeDirectory(root)
      yield* fs.symlink(outside, path.join(root, "link"))
      yield* fs.symlink(path.join(outside, "secret.txt"), path.join(root, "secret.txt"))
      yield* fs.symlink(path.join(outside, "new.txt"), path.join(root, "dangling.txt"))

      refusedOutside(yield* toolkit.call("read_file", { path: "link/secret.txt" }), "link/secret.txt")
      refusedOutside(yield* toolkit.call("read_file", { path: "secret.txt" }), "secret.txt")
      refusedOutside(yield* toolkit.call("list_files", { path: "link" }), "link")
      refusedOutside(yield* toolkit.call("write_file", { path: "link/secret.txt", content: "pwned" }), "link/secret.txt")
      refusedOutside(yield* toolkit.call("write_file", { path: "link/sub/new.txt", content: "pwned" }), "link/sub/new.txt")
      refusedOutside(yield* toolkit.call("write_file", { path: "secret.txt", content: "pwned" }), "secret.txt")
      refusedOutside(yield* toolkit.call("write_file", { path: "dangling.txt", content: "pwned" }), "dangling.txt")

      assert.strictEqual(yield* fs.readFileString(path.join(outside, "secret.txt")), "secret")
      assert.deepStrictEqual((yield* fs.readDirectory(outside)).sort(), ["secret.txt"])
    }))

  it.scoped("follows symlinks that stay inside the workspace", () =>
    Effect.gen(function*() {
      const { fs, path, root, toolkit } = yield* setup
      yield* toolkit.call("write_file", { path: "real/data.txt", content: "inside" })
      yield* fs.symlink(path.join(root, "real"), path.join(root, "alias"))
      assert.deepStrictEqual(yield* toolkit.call("read_file", { path: "alias/data.txt" }), { ok: true, output: "inside" })
    }))

  it.scoped("caps writes at 1 MiB and reads at 64 KiB", () =>
    Effect.gen(function*() {
      const { fs, path, root, toolkit } = yield* setup
      const tooBig = yield* toolkit.call("write_file", { path: "big.txt", content: "x".repeat(1024 * 1024 + 1) })
      assert.deepStrictEqual(tooBig, {
        ok: false,
        output: "content for \"big.txt\" is 1048577 bytes; the limit is 1048576 bytes"
      })
      assert.isFalse(yield* fs.exists(path.join(root, "big.txt")))
      assert.isTrue((yield* toolkit.call("write_file", { path: "big.txt", content: "x".repeat(1024 * 1024) })).ok)

      const read = yield* toolkit.call("read_file", { path: "big.txt" })
      assert.isTrue(read.ok)
      assert.isTrue(read.output.startsWith("x".repeat(64 * 1024) + "\n"))
      assert.include(read.output, "[truncated: showed the first 65536 of 1048576 bytes]")

      // A multi-byte character cut by the limit is dropped rather than mangled.
      yield* toolkit.call("write_file", { path: "wide.txt", content: "a" + "é".repeat(40 * 1024) })
      const wide = yield* toolkit.call("read_file", { path: "wide.txt" })
      assert.isFalse(wide.output.includes("\uFFFD"))
      assert.isTrue(wide.output.startsWith("a" + "é".repeat(32 * 1024 - 1) + "\n[truncated"))
    }))

  it.scoped("reports a root that cannot be a folder on every call", () =>
    Effect.gen(function*() {
      const { fs, path, tmp } = yield* setup
      const file = path.join(tmp, "file")
      yield* fs.writeFileString(file, "")
      const toolkit = Toolkit.make(yield* workspaceTools(file))
      const outcome = yield* toolkit.call("list_files", {})
      assert.isFalse(outcome.ok)
      assert.include(outcome.output, `workspace folder "${file}" is unusable`)
    }))

  it.scoped("reports invalid arguments as results", () =>
    Effect.gen(function*() {
      const { toolkit } = yield* setup
      const outcome = yield* toolkit.call("write_file", { path: "x.txt" })
      assert.isFalse(outcome.ok)
      assert.include(outcome.output, "invalid arguments for write_file")
    }))

  it.scoped("defaultTools offers the calculator and the workspace tools", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const tools = yield* defaultTools(yield* fs.makeTempDirectoryScoped())
      assert.deepStrictEqual(tools.map((tool) => tool.spec.name), ["calculator", "read_file", "write_file", "list_files"])
    }))
})
