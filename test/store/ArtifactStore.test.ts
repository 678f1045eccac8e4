import { SqlClient } from "@effect/sql"
import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Artifact } from "../../src/domain/Artifact.js"
import * as ArtifactStore from "../../src/store/ArtifactStore.js"
import { eachDatabase } from "../support/Databases.js"

const artifact = (name: string, version: number, content: string, more: Partial<ConstructorParameters<typeof Artifact>[0]> = {}) =>
  new Artifact({
    name,
    version,
    iteration: version,
    kind: "code",
    bytes: Buffer.byteLength(content),
    truncated: false,
    sha256: `sha-${name}-${version}`,
    at: "2026-12-01T00:00:00.000Z",
    content,
    ...more
  })

eachDatabase("ArtifactStore", (database) => {
  const store = ArtifactStore.layer.pipe(Layer.provideMerge(database.layer))

  it.effect("keeps every version: lists them all, the latest of each name, and the latest with content", () =>
    Effect.gen(function*() {
      const artifacts = yield* ArtifactStore.ArtifactStore
      yield* artifacts.append("r", [
        artifact("b.py", 1, "print(1)\n", { language: "python" }),
        artifact("notes.md", 1, "# Notes\n", { kind: "markdown" }),
        artifact("out/data.txt", 1, "x", { kind: "file", path: "out/data.txt", truncated: true, bytes: 300_000 })
      ])
      yield* artifacts.append("r", [artifact("b.py", 2, "print(2)\n", { language: "python", iteration: 5 })])
      yield* artifacts.append("other", [artifact("b.py", 1, "not this run's")])
      yield* artifacts.append("r", [])

      const all = yield* artifacts.list("r")
      assert.deepStrictEqual(all.map((a) => `${a.name} v${a.version}`), ["b.py v1", "b.py v2", "notes.md v1", "out/data.txt v1"])
      assert.deepStrictEqual(all[1], {
        ...all[1]!,
        iteration: 5,
        kind: "code",
        language: "python",
        bytes: 9,
        truncated: false,
        sha256: "sha-b.py-2"
      })
      assert.isFalse("path" in all[1]!)
      assert.deepStrictEqual(all[3], { ...all[3]!, kind: "file", path: "out/data.txt", truncated: true, bytes: 300_000 })
      assert.deepStrictEqual((yield* artifacts.latest("r")).map((a) => `${a.name} v${a.version}`), ["b.py v2", "notes.md v1", "out/data.txt v1"])
      const contents = yield* artifacts.latestContents("r")
      assert.deepStrictEqual(contents.map((a) => [a.name, a.version, a.content]), [
        ["b.py", 2, "print(2)\n"],
        ["notes.md", 1, "# Notes\n"],
        ["out/data.txt", 1, "x"]
      ])
      assert.strictEqual(yield* artifacts.count("r"), 3)
      assert.strictEqual(yield* artifacts.count("nobody"), 0)
    }).pipe(Effect.provide(store)))

  it.effect("content comes back exactly, NUL characters and non-ASCII included", () =>
    Effect.gen(function*() {
      const artifacts = yield* ArtifactStore.ArtifactStore
      const content = "a\u0000b — ✓ 𝄞\r\n"
      yield* artifacts.append("r", [artifact("odd.txt", 1, content)])
      assert.strictEqual((yield* artifacts.latestContents("r"))[0]?.content, content)
    }).pipe(Effect.provide(store)))

  it.effect("a version is written once: the same name and version again fails and writes nothing", () =>
    Effect.gen(function*() {
      const artifacts = yield* ArtifactStore.ArtifactStore
      yield* artifacts.append("r", [artifact("a.ts", 1, "one")])
      const error = yield* artifacts.append("r", [artifact("a.ts", 1, "again")]).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PersistenceError")
      assert.strictEqual((yield* artifacts.latestContents("r"))[0]?.content, "one")
    }).pipe(Effect.provide(store)))

  it.effect("remove deletes one run's artifacts, no other run's", () =>
    Effect.gen(function*() {
      const artifacts = yield* ArtifactStore.ArtifactStore
      yield* artifacts.append("r", [artifact("a.ts", 1, "one"), artifact("b.ts", 1, "two")])
      yield* artifacts.append("kept", [artifact("a.ts", 1, "one")])
      yield* artifacts.remove("r")
      assert.deepStrictEqual(yield* artifacts.list("r"), [])
      assert.strictEqual(yield* artifacts.count("kept"), 1)
    }).pipe(Effect.provide(store)))

  it.effect("migrating twice over one database is harmless: its table is made only if missing", () =>
    Effect.gen(function*() {
      const artifacts = yield* ArtifactStore.ArtifactStore
      yield* artifacts.append("r", [artifact("a.ts", 1, "one")])
      const again = yield* ArtifactStore.make
      assert.strictEqual(yield* again.count("r"), 1)
      const sql = yield* SqlClient.SqlClient
      const migrations = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM autopilot_artifacts_migrations`
      assert.strictEqual(Number(migrations[0]?.n), 1)
    }).pipe(Effect.provide(store)))
})
