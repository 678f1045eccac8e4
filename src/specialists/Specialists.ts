import { FileSystem } from "@effect/platform"
import { Context, Effect, Layer, Schema } from "effect"
import * as path from "node:path"
import * as CatalogFiles from "../catalog/CatalogFiles.js"
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
export type Problem = CatalogFiles.Problem

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

/**
 * Decodes one definition, also checking that every tool it allows is one the missions have. Every wrong
 * field is named, and a misspelt one is reported rather than ignored.
 */
const decoderFor = (tools: ReadonlyArray<string>) => {
  const known = ToolName.pipe(Schema.filter((tool) => tools.includes(tool), {
    message: (issue) => `unknown tool ${JSON.stringify(issue.actual)} (tools: ${tools.join(", ")})`
  }))
  return CatalogFiles.decoder(Schema.Struct({ ...Specialist.fields, allowed_tools: allowedTools(known) }), { noun: "specialist" })
}


const entryOf = ({ file, value }: CatalogFiles.Loaded<Specialist>): Entry => ({ specialist: value, file })

/** The built-in roles, decoded. */
const builtIns = (decode: CatalogFiles.Decode<Specialist>) =>
  Effect.gen(function*() {
    // Loaded here, not with the module: `autopilot --help` and runs without a specialist never need it.
    const { files } = yield* Effect.promise(() => import("./BuiltIn.js"))
    return yield* CatalogFiles.builtIns(files, decode, "specialist")
  })

/** The catalog of `builtIn` and `user` entries, the user's over the built-ins (see `CatalogFiles.merge`). */
const catalog = (
  builtIn: ReadonlyArray<CatalogFiles.Loaded<Specialist>>,
  user: ReadonlyArray<CatalogFiles.Loaded<Specialist> | Problem>,
  directory: string | null
): Specialists["Type"] => {
  const merged = CatalogFiles.merge(builtIn, user, (specialist) => specialist.id)
  const found = CatalogFiles.lookup(merged.entries.map(entryOf), {
    noun: "specialist",
    idOf: (entry) => entry.specialist.id,
    categoryOf: (entry) => entry.specialist.category
  })
  return Specialists.of({ ...found, problems: merged.problems, directory })
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
    return catalog(yield* builtIns(decode), yield* CatalogFiles.userFiles(directory, decode), directory)
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
