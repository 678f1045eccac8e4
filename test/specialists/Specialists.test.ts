import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Schema } from "effect"
import * as nodeFs from "node:fs"
import { fileURLToPath } from "node:url"
import { files as builtInFiles } from "../../src/specialists/BuiltIn.js"
import { Specialist } from "../../src/specialists/Specialist.js"
import * as Specialists from "../../src/specialists/Specialists.js"
import { defaultToolNames, defaultTools } from "../../src/tools/Defaults.js"

const catalogFolder = fileURLToPath(new URL("../../src/specialists/catalog/", import.meta.url))

/** A valid user definition; tests break one field of it at a time. */
const definition = (fields: Record<string, unknown> = {}) => ({
  id: "sql-tutor",
  name: "SQL Tutor",
  category: "education",
  role: "Teaches SQL to analysts who know spreadsheets.",
  goal: "Learners write correct, readable queries on their own.",
  background: "Taught database courses for ten years.",
  instructions: ["Start every explanation from a small table the learner can see.", "Show the wrong query before the right one."],
  allowed_tools: [],
  model_tier: "simple",
  ...fields
})

/** A temporary folder holding `files` (name → JSON value or raw text), and the catalog read from it. */
const catalogWith = (files: Record<string, unknown>, options: { readonly tools?: ReadonlyArray<string> } = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = yield* fs.makeTempDirectoryScoped()
    for (const [name, content] of Object.entries(files)) {
      yield* fs.writeFileString(path.join(directory, name), typeof content === "string" ? content : JSON.stringify(content))
    }
    return { directory, catalog: yield* Specialists.make({ directory, ...options }) }
  })

describe("the built-in catalog", () => {
  it.effect("holds at least 40 specialists across every area a team works in, each decoding as a Specialist", () =>
    Effect.gen(function*() {
      const catalog = yield* Specialists.makeBuiltIn()
      assert.isAtLeast(catalog.all.length, 40)
      assert.strictEqual(catalog.all.length, builtInFiles.length)
      assert.deepStrictEqual(catalog.problems, [])
      for (const category of ["engineering", "data", "security", "product", "writing", "operations", "support", "legal", "finance", "research"]) {
        assert.include(catalog.categories, category)
      }
      for (const id of ["architect", "code-reviewer", "security-auditor", "researcher", "technical-writer", "data-analyst", "sre", "product-manager"]) {
        assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Specialist)((yield* catalog.get(id)).specialist)), id)
      }
      for (const [file, content] of builtInFiles) {
        assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Specialist, { onExcessProperty: "error" })(content)), file)
      }
    }))

  it("names each file for its id, and no two roles share an id", () => {
    const ids = builtInFiles.map(([file, content]) => {
      const { id } = content as { readonly id: string }
      assert.strictEqual(file, `${id}.json`)
      return id
    })
    assert.strictEqual(new Set(ids).size, ids.length)
  })

  it("lists every file of the catalog folder, so none is left out of the package", () => {
    const inFolder = nodeFs.readdirSync(catalogFolder).filter((name) => name.endsWith(".json")).sort()
    assert.deepStrictEqual(builtInFiles.map(([file]) => file).sort(), inFolder)
  })

  it("gives each role instructions of its own: several, and none copied from another role", () => {
    const seen = new Map<string, string>()
    for (const [file, content] of builtInFiles) {
      const specialist = Schema.decodeUnknownSync(Specialist)(content)
      assert.isAtLeast(specialist.instructions.length, 5, file)
      for (const instruction of specialist.instructions) {
        assert.isAtLeast(instruction.length, 40, `${file}: "${instruction}"`)
        assert.isUndefined(seen.get(instruction), `${file} repeats an instruction of ${seen.get(instruction)}`)
        seen.set(instruction, file)
      }
    }
  })

  layer(NodeContext.layer)((it) => {
    it.scoped("allows only tools the default toolkit has", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const tools = yield* defaultTools(yield* fs.makeTempDirectoryScoped())
        const names = tools.map((tool) => tool.spec.name)
        assert.deepStrictEqual([...defaultToolNames].sort(), [...names].sort())
        for (const { specialist } of (yield* Specialists.makeBuiltIn()).all) {
          if (specialist.allowed_tools === "all") continue
          for (const tool of specialist.allowed_tools) assert.include(names, tool, specialist.id)
        }
      }))
  })
})

layer(NodeContext.layer)("user specialists", (it) => {
  it.scoped("adds the user's own from the folder, marked with their file", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({ "tutor.json": definition(), "notes.txt": "not a specialist" })
      const entry = yield* catalog.get("sql-tutor")
      assert.strictEqual(entry.file, `${directory}/tutor.json`)
      assert.strictEqual(entry.specialist.name, "SQL Tutor")
      assert.strictEqual(catalog.all.length, builtInFiles.length + 1)
      assert.deepStrictEqual((yield* catalog.list({ category: "education" })).map((e) => e.specialist.id), ["sql-tutor"])
      assert.deepStrictEqual(catalog.problems, [])
      assert.strictEqual(catalog.directory, directory)
    }))

  it.scoped("a user file with a built-in's id replaces that built-in", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({
        "ours.json": definition({ id: "architect", name: "Our Architect", category: "engineering", allowed_tools: "all" })
      })
      const entry = yield* catalog.get("architect")
      assert.strictEqual(entry.specialist.name, "Our Architect")
      assert.strictEqual(entry.file, `${directory}/ours.json`)
      assert.strictEqual(catalog.all.filter((e) => e.specialist.id === "architect").length, 1)
      assert.strictEqual(catalog.all.length, builtInFiles.length)
    }))

  it.scoped("a bad file is named with the field that is wrong, and the others still load", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({
        "a-tier.json": definition({ id: "a-tier", model_tier: "huge" }),
        "b-good.json": definition({ id: "b-good" }),
        "c-tool.json": definition({ id: "c-tool", allowed_tools: ["read_file", "web_search"] }),
        "d-missing.json": Object.fromEntries(Object.entries(definition({ id: "d-missing" })).filter(([key]) => key !== "goal")),
        "e-typo.json": { ...definition({ id: "e-typo" }), instruction: ["misspelt"] },
        "f-not-json.json": "{\"id\": ",
        "g-empty.json": definition({ id: "g-empty", instructions: [] }),
        "h-id.json": definition({ id: "Not An Id" }),
        "i-array.json": [definition()],
        "j-tools.json": definition({ id: "j-tools", allowed_tools: "some" }),
        "k-good.json": definition({ id: "k-good" })
      })
      assert.deepStrictEqual(catalog.all.filter((e) => e.file !== null).map((e) => e.specialist.id), ["b-good", "k-good"])
      const problems = new Map(catalog.problems.map((p) => [p.file.slice(directory.length + 1), Specialists.describeProblem(p)]))
      const expected: Record<string, RegExp> = {
        "a-tier.json": /model_tier: must be "simple", "medium" or "complex"$/,
        "c-tool.json": /allowed_tools\[1\]: unknown tool "web_search" \(tools: calculator, read_file, write_file, list_files\)$/,
        "d-missing.json": /: goal: is missing$/,
        "e-typo.json": /: instruction: is not a field of a specialist \(misspelt\?\)/,
        "f-not-json.json": /: is not valid JSON/,
        "g-empty.json": /: instructions: must be a list of at least one instruction$/,
        "h-id.json": /: id: must be lowercase letters and digits in dash-separated words/,
        "i-array.json": /: must hold one JSON object/,
        "j-tools.json": /: allowed_tools: must be "all" or a list of tool names \(\[\] for none\)$/
      }
      assert.deepStrictEqual([...problems.keys()].sort(), Object.keys(expected))
      for (const [file, pattern] of Object.entries(expected)) {
        const line = problems.get(file)!
        assert.match(line, pattern, line)
        assert.isTrue(line.startsWith(`specialist file ${directory}/${file} skipped: `), line)
        assert.notInclude(line, "\n")
      }
    }))

  it.scoped("reports every wrong field of a file on its one line", () =>
    Effect.gen(function*() {
      const { catalog } = yield* catalogWith({ "bad.json": definition({ name: " ", instructions: ["fine", ""], model_tier: 3 }) })
      assert.strictEqual(catalog.problems.length, 1)
      assert.match(catalog.problems[0]!.message, /^name: must be non-empty text; instructions\[1\]: must be non-empty text; model_tier: must be/)
    }))

  it.scoped("of two user files with one id, keeps the first by name and reports the second", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({
        "1.json": definition({ name: "First" }),
        "2.json": definition({ name: "Second" })
      })
      assert.strictEqual((yield* catalog.get("sql-tutor")).specialist.name, "First")
      assert.deepStrictEqual(catalog.problems, [{ file: `${directory}/2.json`, message: `id: "sql-tutor" is already defined by ${directory}/1.json` }])
    }))

  it.scoped("checks allow-lists against the tools it is given", () =>
    Effect.gen(function*() {
      const { catalog } = yield* catalogWith({ "tutor.json": definition({ allowed_tools: ["run_sql"] }) }, {
        tools: [...defaultToolNames, "run_sql"]
      })
      assert.deepStrictEqual((yield* catalog.get("sql-tutor")).specialist.allowed_tools, ["run_sql"])
    }))

  it.effect("a folder that does not exist holds no specialists and no problems", () =>
    Effect.gen(function*() {
      const catalog = yield* Specialists.make({ directory: "/nonexistent/autopilot/specialists" })
      assert.strictEqual(catalog.all.length, builtInFiles.length)
      assert.deepStrictEqual(catalog.problems, [])
    }))

  it.effect("an unknown id or category is bad input that says how to find the right one", () =>
    Effect.gen(function*() {
      const catalog = yield* Specialists.makeBuiltIn()
      const unknown = yield* Effect.flip(catalog.get("wizard"))
      assert.strictEqual(unknown._tag, "BadInput")
      assert.strictEqual(unknown.message, `unknown specialist "wizard"; \`autopilot specialists\` lists the ${builtInFiles.length} there are`)
      const category = yield* Effect.flip(catalog.list({ category: "magic" }))
      assert.strictEqual(category.message, `unknown category "magic"; categories: ${catalog.categories.join(", ")}`)
    }))

  it.scoped("Specialists.layer reads $AUTOPILOT_HOME/specialists", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      yield* fs.makeDirectory(`${home}/specialists`)
      yield* fs.writeFileString(`${home}/specialists/tutor.json`, JSON.stringify(definition()))
      const catalog = yield* Effect.provide(
        Specialists.Specialists,
        Specialists.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["AUTOPILOT_HOME", home]])))))
      )
      assert.strictEqual(catalog.directory, `${home}/specialists`)
      assert.strictEqual((yield* catalog.get("sql-tutor")).file, `${home}/specialists/tutor.json`)
    }))
})
