import { FileSystem } from "@effect/platform"
import { Array as Arr, Context, Effect, Either, Layer, Order, ParseResult, Schema } from "effect"
import * as path from "node:path"
import { BadInput } from "../domain/Errors.js"
import { home } from "../domain/Home.js"
import { defaultToolNames } from "../tools/Defaults.js"
import { allowedTools, Specialist, ToolName } from "./Specialist.js"

/** A specialist and where it came from. */
export interface Entry {
  readonly specialist: Specialist
  /** The user file it was read from; null for a built-in. */
  readonly file: string | null
}

/** A user file that was skipped: `message` names the field that is wrong, or why the file is unusable. */
export interface Problem {
  readonly file: string
  readonly message: string
}

/** One line for a person: the file, and what is wrong with it. */
export const describeProblem = (problem: Problem): string => `specialist file ${problem.file} skipped: ${problem.message}`

/**
 * The roles a mission can run as: the built-in catalog, and the user's own files, which may add roles or
 * replace a built-in one by using its id. A bad user file is skipped and reported in `problems`; it never
 * stops the others from loading.
 */
export class Specialists extends Context.Tag("autopilot/Specialists")<
  Specialists,
  {
    /** Every specialist, by category, then id. */
    readonly all: ReadonlyArray<Entry>
    readonly categories: ReadonlyArray<string>
    readonly problems: ReadonlyArray<Problem>
    /** The folder user files were read from, if any. */
    readonly directory: string | null
    readonly get: (id: string) => Effect.Effect<Entry, BadInput>
    /** All, or those of one category (which must exist). */
    readonly list: (filter?: { readonly category?: string | undefined }) => Effect.Effect<ReadonlyArray<Entry>, BadInput>
  }
>() {}

const fieldOf = (issuePath: ReadonlyArray<PropertyKey>) =>
  issuePath.map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join("")

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

const fields = Object.keys(Specialist.fields).join(", ")

const unexpected = `is not a field of a specialist (misspelt?); its fields: ${fields}`

/**
 * Decodes one definition, also checking that every tool it allows is one the missions have. Every wrong
 * field is named, and a misspelt one is reported rather than ignored.
 */
const decoderFor = (tools: ReadonlyArray<string>) => {
  const known = ToolName.pipe(Schema.filter((tool) => tools.includes(tool), {
    message: (issue) => `unknown tool ${JSON.stringify(issue.actual)} (tools: ${tools.join(", ")})`
  }))
  const checked = Schema.Struct({ ...Specialist.fields, allowed_tools: allowedTools(known) })
  const decode = Schema.decodeUnknownEither(checked, { errors: "all", onExcessProperty: "error" })
  return (content: unknown): Either.Either<Specialist, string> =>
    typeof content !== "object" || content === null || Array.isArray(content)
      ? Either.left(`must hold one JSON object, a specialist with the fields ${fields}`)
      : Either.mapLeft(decode(content), (error) =>
        ParseResult.ArrayFormatter.formatErrorSync(error)
          .filter((issue) => issue.message !== "")
          .map((issue) => `${fieldOf(issue.path)}: ${issue._tag === "Unexpected" ? unexpected : oneLine(issue.message)}`)
          .join("; "))
}

const parse = (text: string): Either.Either<unknown, string> =>
  Either.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `is not valid JSON: ${oneLine(e instanceof Error ? e.message : String(e))}` })

const byCategoryThenId = Order.combine(
  Order.mapInput(Order.string, (entry: Entry) => entry.specialist.category),
  Order.mapInput(Order.string, (entry: Entry) => entry.specialist.id)
)

type Decode = ReturnType<typeof decoderFor>

/** The built-in roles, decoded: one that does not is a defect of the package, caught by its tests. */
const builtIns = (decode: Decode) =>
  Effect.gen(function*() {
    // Loaded here, not with the module: `autopilot --help` and runs without a specialist never need it.
    const { files } = yield* Effect.promise(() => import("./BuiltIn.js"))
    return yield* Effect.forEach(files, ([file, content]) =>
      Either.match(decode(content), {
        onLeft: (problem) => Effect.dieMessage(`built-in specialist ${file} does not decode: ${problem}`),
        onRight: (specialist) => Effect.succeed<Entry>({ specialist, file: null })
      }))
  })

/** Every `*.json` of `directory` by file name (a missing folder holds none), each decoded or a problem. */
const userFiles = (directory: string, decode: Decode) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = (yield* fs.exists(directory).pipe(Effect.orElseSucceed(() => false)))
      ? yield* fs.readDirectory(directory).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
      : []
    return yield* Effect.forEach([...names].filter((name) => name.endsWith(".json")).sort(), (name) =>
      Effect.gen(function*() {
        const file = path.join(directory, name)
        const text = yield* Effect.either(fs.readFileString(file))
        const decoded = Either.isLeft(text)
          ? Either.left(`cannot be read: ${oneLine(text.left.message)}`)
          : Either.flatMap(parse(text.right), decode)
        return Either.match(decoded, {
          onLeft: (message): Entry | Problem => ({ file, message }),
          onRight: (specialist): Entry | Problem => ({ specialist, file })
        })
      }))
  })

/**
 * The catalog of `builtIn` and `user` entries. A user file whose id is a built-in's replaces that
 * built-in; of two user files with one id, the first by file name is kept and the other reported.
 */
const catalog = (builtIn: ReadonlyArray<Entry>, user: ReadonlyArray<Entry | Problem>, directory: string | null): Specialists["Type"] => {
  const byId = new Map(builtIn.map((entry) => [entry.specialist.id, entry]))
  const fromUser = new Map<string, string>()
  const problems: Array<Problem> = []
  for (const loaded of user) {
    if (!("specialist" in loaded)) {
      problems.push(loaded)
      continue
    }
    const { file, specialist: { id } } = loaded
    const earlier = fromUser.get(id)
    if (earlier !== undefined) {
      problems.push({ file: file!, message: `id: "${id}" is already defined by ${earlier}` })
      continue
    }
    fromUser.set(id, file!)
    byId.set(id, loaded)
  }
  const all = Arr.sort([...byId.values()], byCategoryThenId)
  const categories = Arr.dedupe(all.map((entry) => entry.specialist.category))

  const get = (id: string) =>
    Effect.suspend(() => {
      const entry = byId.get(id)
      return entry !== undefined ? Effect.succeed(entry) : Effect.fail(
        new BadInput({ message: `unknown specialist "${id}"; \`autopilot specialists\` lists the ${all.length} there are` })
      )
    })

  const list = (filter: { readonly category?: string | undefined } = {}) =>
    Effect.suspend(() => {
      const category = filter.category
      if (category === undefined) return Effect.succeed(all)
      return categories.includes(category)
        ? Effect.succeed(all.filter((entry) => entry.specialist.category === category))
        : Effect.fail(new BadInput({ message: `unknown category "${category}"; categories: ${categories.join(", ")}` }))
    })

  return Specialists.of({ all, categories, problems, directory, get, list })
}

interface MakeOptions {
  /** The tool names an allow-list may use; by default those of the default toolkit. */
  readonly tools?: ReadonlyArray<string> | undefined
}

/** The built-ins alone. */
export const makeBuiltIn = (options: MakeOptions = {}): Effect.Effect<Specialists["Type"]> =>
  Effect.map(builtIns(decoderFor(options.tools ?? defaultToolNames)), (builtIn) => catalog(builtIn, [], null))

/** The built-ins and the `*.json` files of `directory`. */
export const make = (
  options: MakeOptions & { readonly directory: string }
): Effect.Effect<Specialists["Type"], never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const decode = decoderFor(options.tools ?? defaultToolNames)
    const directory = path.resolve(options.directory)
    return catalog(yield* builtIns(decode), yield* userFiles(directory, decode), directory)
  })

/** The folder users' own specialists are read from: `$AUTOPILOT_HOME/specialists`. */
export const userDirectory = Effect.map(home, (dir) => path.join(dir, "specialists")).pipe(Effect.orDie)

/** The built-ins and `$AUTOPILOT_HOME/specialists/*.json`. */
export const layer: Layer.Layer<Specialists, never, FileSystem.FileSystem> = Layer.effect(
  Specialists,
  Effect.flatMap(userDirectory, (directory) => make({ directory }))
)

/** The built-ins and the `*.json` files of `directory`. */
export const layerDirectory = (directory: string, options: MakeOptions = {}): Layer.Layer<Specialists, never, FileSystem.FileSystem> =>
  Layer.effect(Specialists, make({ ...options, directory }))

/** The built-ins alone. */
export const layerBuiltIn: Layer.Layer<Specialists> = Layer.effect(Specialists, makeBuiltIn())
