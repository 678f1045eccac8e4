import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Schema } from "effect"
import { Blueprint, type BlueprintEncoded } from "../../src/domain/Blueprint.js"
import * as Api from "../../src/index.js"
import { Blueprints } from "../../src/routing/Blueprints.js"
import { files as builtInFiles } from "../../src/routing/BuiltIn.js"
import * as Catalog from "../../src/routing/Catalog.js"
import { Specialist } from "../../src/specialists/Specialist.js"

/** A valid user blueprint; tests break one field of it at a time. */
const definition = (fields: Partial<Record<keyof BlueprintEncoded, unknown>> = {}): Record<string, unknown> => ({
  id: "okr_check_in",
  version: 1,
  title: "Monthly OKR check-in",
  description: "Collects each team's key-result progress and writes the monthly check-in.",
  category: "planning",
  example_goals: ["prepare the monthly OKR check-in", "summarize our key results progress"],
  mode: "once",
  slots: [
    { name: "updates", type: "text", required: true, description: "Workspace folder with the teams' updates." },
    { name: "quarter", type: "text", required: false, default: "this quarter", description: "The quarter." }
  ],
  graph: {
    entry: "collect",
    nodes: [
      { id: "collect", specialist: "project-manager", prompt: "Read {updates} for {quarter}.", tools: ["read_file", "list_files"], model_tier: "simple" },
      { id: "write", specialist: "technical-writer", prompt: "Write the check-in from {collect.output}.", tools: ["write_file"], model_tier: "medium" }
    ],
    edges: [{ from: "collect", to: "write" }]
  },
  success_criteria: ["every key result has a status and a one-line reason"],
  budget: { max_seconds: 600, max_tool_calls: 20, max_tokens: 100000, max_dollars: 1, max_iterations: 10 },
  curation: { capture: false, tags: [] },
  ...fields
})

const decode = Schema.decodeUnknownSync(Blueprint)

/** A temporary folder holding `files` (name → JSON value or raw text), and the catalog read from it. */
const catalogWith = (files: Record<string, unknown>, options: Catalog.MakeOptions = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const directory = yield* fs.makeTempDirectoryScoped()
    for (const [name, content] of Object.entries(files)) {
      yield* fs.writeFileString(path.join(directory, name), typeof content === "string" ? content : JSON.stringify(content))
    }
    return { directory, catalog: yield* Catalog.make({ directory, ...options }) }
  })

/** `definition` with its graph changed by `change`. */
const withGraph = (id: string, change: (graph: any) => void) => {
  const bp = definition({ id }) as any
  change(bp.graph)
  return bp
}

layer(NodeContext.layer)("user blueprints", (it) => {
  it.scoped("adds the user's own from the folder, marked with their file, in a category of their own", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({ "okr.json": definition(), "notes.txt": "not a blueprint" })
      const entry = yield* catalog.get("okr_check_in")
      assert.strictEqual(entry.file, `${directory}/okr.json`)
      assert.strictEqual(entry.blueprint.title, "Monthly OKR check-in")
      assert.strictEqual(catalog.all.length, builtInFiles.length + 1)
      assert.include(catalog.categories, "planning")
      assert.deepStrictEqual((yield* catalog.list({ category: "planning" })).map((e) => e.blueprint.id), ["okr_check_in"])
      assert.deepStrictEqual(catalog.problems, [])
      assert.strictEqual(catalog.directory, directory)
    }))

  it.scoped("a user file with a built-in's id replaces that built-in", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({ "triage.json": definition({ id: "support_triage", category: "support", title: "Our triage" }) })
      const entry = yield* catalog.get("support_triage")
      assert.strictEqual(entry.blueprint.title, "Our triage")
      assert.strictEqual(entry.file, `${directory}/triage.json`)
      assert.strictEqual(catalog.all.filter((e) => e.blueprint.id === "support_triage").length, 1)
      assert.strictEqual(catalog.all.length, builtInFiles.length)
    }))

  it.scoped("a bad file is named with the field that is wrong, and the others still load", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({
        "a-edge.json": withGraph("a_edge", (g) => g.edges.push({ from: "collect", to: "x" })),
        "b-good.json": definition({ id: "b_good" }),
        "c-typo.json": { ...definition({ id: "c_typo" }), titel: "misspelt" },
        "d-nested-typo.json": withGraph("d_nested", (g) => (g.nodes[1].promt = g.nodes[1].prompt)),
        "e-not-json.json": "{\"id\": ",
        "f-array.json": [definition()],
        "g-missing.json": Object.fromEntries(Object.entries(definition({ id: "g_missing" })).filter(([key]) => key !== "success_criteria")),
        "h-mode.json": definition({ id: "h_mode", mode: "weekly" }),
        "i-cycle.json": withGraph("i_cycle", (g) => g.edges.push({ from: "write", to: "collect" })),
        "j-specialist.json": withGraph("j_specialist", (g) => (g.nodes[0].specialist = "wizard")),
        "k-tool.json": withGraph("k_tool", (g) => g.nodes[0].tools.push("web_search")),
        "l-allow.json": withGraph("l_allow", (g) => (g.nodes[1].specialist = "code-reviewer")),
        "m-slot.json": withGraph("m_slot", (g) => (g.nodes[1].prompt = "Write for {audience}.")),
        "n-enum.json": definition({ id: "n_enum", slots: [{ name: "updates", type: "enum", required: true, description: "d" }, (definition().slots as Array<object>)[1]] }),
        "o-default.json": definition({
          id: "o_default",
          slots: [...(definition().slots as Array<object>), { name: "teams", type: "integer", required: false, min: 1, max: 20, default: 40, description: "d" }]
        }),
        "p-scheduled.json": definition({ id: "p_scheduled", mode: "scheduled" }),
        "q-good.json": definition({ id: "q_good" })
      })
      assert.deepStrictEqual(catalog.all.filter((e) => e.file !== null).map((e) => e.blueprint.id), ["b_good", "q_good"])
      const problems = new Map(catalog.problems.map((p) => [p.file.slice(directory.length + 1), Catalog.describeProblem(p)]))
      const expected: Record<string, RegExp> = {
        "a-edge.json": /: graph\.edges\[1\]\.to: no node has the id x$/,
        "c-typo.json": /: titel: is not a field of a blueprint \(misspelt\?\); its fields: id, version, title, /,
        "d-nested-typo.json": /: graph\.nodes\[1\]\.promt: is not a field here \(misspelt\?\); the fields here: id, specialist, role, prompt, tools, model_tier, output_schema$/,
        "e-not-json.json": /: is not valid JSON/,
        "f-array.json": /: must hold one JSON object, a blueprint with the fields id, version/,
        "g-missing.json": /: success_criteria: is missing$/,
        "h-mode.json": /: mode: must be one of "once", "scheduled", "batch", got "weekly"$/,
        "i-cycle.json": /: graph\.edges\[1\]\.to: no edge may lead back to the entry node collect; graph\.edges: the graph has a cycle: collect → write → collect$/,
        "j-specialist.json": /: graph\.nodes\[0\]\.specialist: unknown specialist "wizard"/,
        "k-tool.json": /: graph\.nodes\[0\]\.tools: unknown tool "web_search" \(tools: calculator, read_file, write_file, list_files\)$/,
        "l-allow.json": /: graph\.nodes\[1\]\.tools: the code-reviewer specialist may not use "write_file" \(its tools: read_file, list_files\)$/,
        "m-slot.json": /: graph\.nodes\[1\]\.prompt: refers to \{audience\}, which is not a slot \(slots: updates, quarter\)$/,
        "n-enum.json": /: slots\[0\]\.values: an enum slot must list its values$/,
        "o-default.json": /: slots\[2\]\.default: slot teams must be a whole number from 1 to 20, got 40$/,
        "p-scheduled.json": /: mode: a scheduled blueprint needs a slot of type cron$/
      }
      assert.deepStrictEqual([...problems.keys()].sort(), Object.keys(expected))
      for (const [file, pattern] of Object.entries(expected)) {
        const line = problems.get(file)!
        assert.match(line, pattern, line)
        assert.isTrue(line.startsWith(`blueprint file ${directory}/${file} skipped: `), line)
        assert.notInclude(line, "\n")
      }
    }))

  it.scoped("of two user files with one id, keeps the first by name and reports the second", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({
        "1.json": definition({ title: "First" }),
        "2.json": definition({ title: "Second" })
      })
      assert.strictEqual((yield* catalog.get("okr_check_in")).blueprint.title, "First")
      assert.deepStrictEqual(catalog.problems, [{ file: `${directory}/2.json`, message: `id: "okr_check_in" is already defined by ${directory}/1.json` }])
    }))

  it.scoped("checks nodes against the specialists and tools it is given", () =>
    Effect.gen(function*() {
      const tutor = Schema.decodeUnknownSync(Specialist)({
        id: "sql-tutor",
        name: "SQL Tutor",
        category: "education",
        role: "Teaches SQL.",
        goal: "Learners write queries.",
        background: "Taught databases.",
        instructions: ["Start from a small table."],
        allowed_tools: ["run_sql"],
        model_tier: "simple"
      })
      const lesson = withGraph("sql_lesson", (g) => {
        g.nodes[0].specialist = "sql-tutor"
        g.nodes[0].tools = ["run_sql"]
        delete g.nodes[1].specialist
        g.nodes[1].role = "A writer."
      })
      const { catalog } = yield* catalogWith({ "lesson.json": lesson }, { specialists: [tutor], tools: ["run_sql", "write_file"] })
      assert.deepStrictEqual(catalog.problems, [])
      assert.strictEqual((yield* catalog.get("sql_lesson")).blueprint.graph.nodes[0].specialist, "sql-tutor")
      // The built-ins are checked against the package's own specialists and tools, not these.
      assert.strictEqual(catalog.all.length, builtInFiles.length + 1)
      const { catalog: other } = yield* catalogWith({ "lesson.json": lesson })
      assert.deepStrictEqual(other.problems.map((p) => p.message), [
        `graph.nodes[0].specialist: unknown specialist "sql-tutor" (see \`autopilot specialists\`); graph.nodes[0].tools: unknown tool "run_sql" (tools: calculator, read_file, write_file, list_files)`
      ])
    }))

  it.effect("a folder that does not exist holds no blueprints and no problems", () =>
    Effect.gen(function*() {
      const catalog = yield* Catalog.make({ directory: "/nonexistent/autopilot/blueprints" })
      assert.strictEqual(catalog.all.length, builtInFiles.length)
      assert.deepStrictEqual(catalog.problems, [])
    }))

  it.effect("an unknown id or category is bad input that says how to find the right one", () =>
    Effect.gen(function*() {
      const catalog = yield* Catalog.makeBuiltIn()
      const unknown = yield* Effect.flip(catalog.get("wizardry"))
      assert.strictEqual(unknown.message, `unknown blueprint "wizardry"; \`autopilot blueprints\` lists the ${builtInFiles.length} there are`)
      const category = yield* Effect.flip(catalog.list({ category: "magic" }))
      assert.strictEqual(category.message, `unknown category "magic"; categories: ${catalog.categories.join(", ")}`)
    }))

  it.scoped("Catalog.layer reads $AUTOPILOT_HOME/blueprints, checking them against the user's own specialists, which never stop a built-in from loading", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      yield* fs.makeDirectory(`${home}/blueprints`)
      yield* fs.makeDirectory(`${home}/specialists`)
      yield* fs.writeFileString(`${home}/specialists/okr-coach.json`, JSON.stringify({
        id: "okr-coach",
        name: "OKR Coach",
        category: "planning",
        role: "Coaches teams on objectives and key results.",
        goal: "Key results that are measurable and honest.",
        background: "Ran OKRs at three companies.",
        instructions: ["Ask for the number behind every status."],
        allowed_tools: ["read_file"],
        model_tier: "simple"
      }))
      // The user's technical writer may only read: the built-ins that name it still load, and their own blueprint is held to it.
      yield* fs.writeFileString(`${home}/specialists/technical-writer.json`, JSON.stringify({
        id: "technical-writer",
        name: "Our Writer",
        category: "writing",
        role: "Writes our docs.",
        goal: "Docs people use.",
        background: "Wrote docs.",
        instructions: ["Read before writing."],
        allowed_tools: ["read_file"],
        model_tier: "simple"
      }))
      yield* fs.writeFileString(`${home}/blueprints/okr.json`, JSON.stringify(withGraph("okr_check_in", (g) => {
        g.nodes[0].specialist = "okr-coach"
        g.nodes[0].tools = ["read_file"]
        delete g.nodes[1].specialist
        g.nodes[1].role = "A writer."
      })))
      yield* fs.writeFileString(`${home}/blueprints/writer.json`, JSON.stringify(definition({ id: "writer_bound" })))
      const catalog = yield* Effect.provide(
        Blueprints,
        Catalog.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["AUTOPILOT_HOME", home]])))))
      )
      assert.strictEqual(catalog.directory, `${home}/blueprints`)
      assert.strictEqual((yield* catalog.get("okr_check_in")).file, `${home}/blueprints/okr.json`)
      assert.strictEqual(catalog.all.length, builtInFiles.length + 1)
      assert.deepStrictEqual(catalog.problems, [{
        file: `${home}/blueprints/writer.json`,
        message: `graph.nodes[1].tools: the technical-writer specialist may not use "write_file" (its tools: read_file)`
      }])
    }))
})

layer(NodeContext.layer)("add", (it) => {
  it.scoped("writes <directory>/<id>.json, creating the folder, and the file loads back as the same blueprint", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const root = yield* fs.makeTempDirectoryScoped()
      const directory = `${root}/not/yet/there`
      const catalog = yield* Catalog.make({ directory })
      const blueprint = decode(definition({ id: "synthesized_one" }))
      const entry = yield* catalog.add(blueprint)
      assert.deepStrictEqual(entry, { blueprint, file: `${directory}/synthesized_one.json` })
      assert.deepStrictEqual(yield* fs.readDirectory(directory), ["synthesized_one.json"])
      assert.strictEqual(yield* fs.readFileString(entry.file!), Catalog.fileText(blueprint))
      // This instance is unchanged; a new one has it, with its file.
      assert.isTrue(Either.isLeft(yield* Effect.either(catalog.get("synthesized_one"))))
      const reloaded = yield* Catalog.make({ directory })
      assert.deepStrictEqual(reloaded.problems, [])
      assert.deepStrictEqual(yield* reloaded.get("synthesized_one"), entry)
    }))

  it.scoped("refuses an id that is taken: a built-in's, a user file's, or one added before", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({ "mine.json": definition() })
      const builtIn = yield* Effect.flip(catalog.add(decode(definition({ id: "code_review" }))))
      assert.strictEqual(builtIn._tag, "BadInput")
      assert.strictEqual(builtIn.message, `blueprint id "code_review" is taken by the built-in catalog; choose another id`)
      const user = yield* Effect.flip(catalog.add(decode(definition())))
      assert.strictEqual(user.message, `blueprint id "okr_check_in" is taken by ${directory}/mine.json; choose another id`)
      yield* catalog.add(decode(definition({ id: "fresh" })))
      const again = yield* Effect.flip(catalog.add(decode(definition({ id: "fresh", title: "Another" }))))
      assert.strictEqual(again.message, `${directory}/fresh.json already exists; it is left as it is`)
      const fs = yield* FileSystem.FileSystem
      assert.deepStrictEqual([...yield* fs.readDirectory(directory)].sort(), ["fresh.json", "mine.json"])
      assert.strictEqual(decode(JSON.parse(yield* fs.readFileString(`${directory}/fresh.json`))).title, "Monthly OKR check-in")
    }))

  it.scoped("never overwrites: of two catalogs adding one id at once, exactly one writes it", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const catalogs = yield* Effect.all([Catalog.make({ directory }), Catalog.make({ directory })])
      const results = yield* Effect.all(
        catalogs.map((catalog, i) => Effect.either(catalog.add(decode(definition({ id: "raced", title: `Writer ${i}` }))))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Either.isRight).length, 1)
      const winner = results.findIndex(Either.isRight)
      assert.strictEqual(decode(JSON.parse(yield* fs.readFileString(`${directory}/raced.json`))).title, `Writer ${winner}`)
      assert.deepStrictEqual(yield* fs.readDirectory(directory), ["raced.json"])
    }))

  it.scoped("refuses a blueprint that fails the checks every file passes, writing nothing", () =>
    Effect.gen(function*() {
      const { catalog, directory } = yield* catalogWith({})
      const cyclic = decode(withGraph("cyclic", (g) => g.edges.push({ from: "write", to: "collect" })))
      const refused = yield* Effect.flip(catalog.add(cyclic))
      assert.strictEqual(refused._tag, "BadInput")
      assert.match(refused.message, /^blueprint "cyclic" is not valid: graph\.edges\[1\]\.to: no edge may lead back to the entry node collect; graph\.edges: the graph has a cycle/)
      const unknown = yield* Effect.flip(catalog.add(decode(withGraph("unknown_role", (g) => (g.nodes[0].specialist = "wizard")))))
      assert.match(unknown.message, /graph\.nodes\[0\]\.specialist: unknown specialist "wizard"/)
      assert.deepStrictEqual(yield* (yield* FileSystem.FileSystem).readDirectory(directory), [])
    }))

  it.effect("a catalog of the built-ins alone has nowhere to keep one", () =>
    Effect.gen(function*() {
      const catalog = yield* Catalog.makeBuiltIn()
      const refused = yield* Effect.flip(catalog.add(decode(definition())))
      assert.strictEqual(refused.message, `cannot keep blueprint "okr_check_in": this catalog has no folder for user blueprints`)
    }))
})

describe("the public API", () => {
  it.scoped("gives the catalog, its layers and the slot validators, as README shows", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const program = Effect.gen(function*() {
        const catalog = yield* Api.Blueprints.Blueprints
        const { blueprint } = yield* catalog.get("scheduled_research")
        const count = blueprint.slots.find((slot) => slot.name === "vendor_count")!
        return Api.Blueprint.slotValue(count, "80")
      }).pipe(Effect.provide(Api.BlueprintCatalog.layerDirectory(directory)))
      assert.deepStrictEqual(yield* program, Either.left(`slot vendor_count must be a whole number from 1 to 50, got "80"`))
      const builtIn = yield* Effect.provide(Api.Blueprints.Blueprints, Api.BlueprintCatalog.layerBuiltIn)
      assert.strictEqual(builtIn.all.length, builtInFiles.length)
    }).pipe(Effect.provide(NodeContext.layer)))
})
