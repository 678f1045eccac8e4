import { FileSystem } from "@effect/platform"
import { Effect, Either, Layer, Schema } from "effect"
import * as path from "node:path"
import * as CatalogFiles from "../catalog/CatalogFiles.js"
import { Blueprint, describeProblems, type Known, problems } from "../domain/Blueprint.js"
import { BadInput } from "../domain/Errors.js"
import { home } from "../domain/Home.js"
import type { Specialist } from "../specialists/Specialist.js"
import * as Specialists from "../specialists/Specialists.js"
import { defaultToolNames } from "../tools/Defaults.js"
import { Blueprints, type Entry, fromEntries, type Problem } from "./Blueprints.js"

/**
 * The blueprint catalog read from files: the built-ins shipped in the package, and the user's own
 * `*.json` files, which may add blueprints or replace a built-in by its id. Every file passes the
 * Blueprint Schema and its structural checks against the specialists and tools there are; one that does
 * not is skipped and reported with its wrong field. `add` keeps a new blueprint as a user file.
 */

/** One line for a person: the file, and what is wrong with it. */
export const describeProblem = (problem: Problem): string => `blueprint file ${problem.file} skipped: ${problem.message}`

/** What a user's blueprint is checked against. */
export interface MakeOptions {
  /** The specialists a node may name, with their allow-lists; by default the built-in ones. */
  readonly specialists?: ReadonlyArray<Specialist> | undefined
  /** The tools a node may list; by default those of the default toolkit. */
  readonly tools?: ReadonlyArray<string> | undefined
}

/** What the structural checks consult, from `options`. */
const knownFrom = (options: MakeOptions): Effect.Effect<Known> =>
  Effect.gen(function*() {
    const specialists = options.specialists ?? (yield* Specialists.makeBuiltIn()).all.map((entry) => entry.specialist)
    return {
      specialists: specialists.map((s) => s.id),
      tools: options.tools ?? defaultToolNames,
      allowedTools: new Map(specialists.map((s) => [s.id, s.allowed_tools]))
    }
  })

const decoderFor = (known: Known) => CatalogFiles.decoder(Blueprint, { noun: "blueprint", check: (blueprint) => problems(blueprint, known) })

const entryOf = ({ file, value }: CatalogFiles.Loaded<Blueprint>): Entry => ({ blueprint: value, file })

/**
 * The built-in blueprints, checked against the package's own specialists and tools whatever the user's
 * are: one that fails is a defect of the package, caught by its tests, and a user's change to a specialist
 * must not stop the catalog from loading.
 */
const builtIns = Effect.gen(function*() {
  // Loaded here, not with the module: only the commands that route or list blueprints need them.
  const { files } = yield* Effect.promise(() => import("./BuiltIn.js"))
  return yield* CatalogFiles.builtIns(files, decoderFor(yield* knownFrom({})), "blueprint")
})

/**
 * A blueprint from a file's text, every wrong field named, as a user file is read; the structural checks
 * come after, in `add`. What `autopilot blueprints add FILE` reads.
 */
export const decodeText = (text: string): Either.Either<Blueprint, string> =>
  Either.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `is not valid JSON: ${CatalogFiles.oneLine(e instanceof Error ? e.message : String(e))}` })
    .pipe(Either.flatMap(CatalogFiles.decoder(Blueprint, { noun: "blueprint" })))

/** The blueprint as a file holds it: what `autopilot blueprints show ID --format json` prints too. */
export const fileText = (blueprint: Blueprint): string => `${JSON.stringify(Schema.encodeSync(Blueprint)(blueprint), null, 2)}\n`

/**
 * `add`: refuses a blueprint that does not pass the checks every file passes, or whose id is taken (a
 * built-in's, a user file's, or the name of a file already in `directory`), then writes
 * `<directory>/<id>.json` all at once.
 */
const adder = (directory: string, known: Known, taken: ReadonlyMap<string, Entry>, fs: FileSystem.FileSystem) => (blueprint: Blueprint) =>
  Effect.gen(function*() {
    const found = problems(blueprint, known)
    if (found.length > 0) return yield* new BadInput({ message: `blueprint "${blueprint.id}" is not valid: ${describeProblems(found)}` })
    const owner = taken.get(blueprint.id)
    if (owner !== undefined) {
      return yield* new BadInput({
        message: `blueprint id "${blueprint.id}" is taken by ${owner.file ?? "the built-in catalog"}; choose another id`
      })
    }
    const file = yield* CatalogFiles.writeNew(directory, `${blueprint.id}.json`, fileText(blueprint)).pipe(
      Effect.provideService(FileSystem.FileSystem, fs)
    )
    return { blueprint, file }
  })

/** The built-ins alone; `add` fails, there being no folder to keep a blueprint in. */
export const makeBuiltIn = (): Effect.Effect<Blueprints["Type"]> =>
  Effect.gen(function*() {
    const known = yield* knownFrom({})
    return fromEntries((yield* builtIns).map(entryOf), { problemsOf: (blueprint) => problems(blueprint, known) })
  })

/** The built-ins and the `*.json` files of `directory`, where `add` writes. */
export const make = (
  options: MakeOptions & { readonly directory: string }
): Effect.Effect<Blueprints["Type"], never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const known = yield* knownFrom(options)
    const directory = path.resolve(options.directory)
    const merged = CatalogFiles.merge(yield* builtIns, yield* CatalogFiles.userFiles(directory, decoderFor(known)), (bp) => bp.id)
    const entries = merged.entries.map(entryOf)
    const taken = new Map(entries.map((entry) => [entry.blueprint.id, entry]))
    return fromEntries(entries, {
      problems: merged.problems,
      directory,
      add: adder(directory, known, taken, fs),
      problemsOf: (blueprint) => problems(blueprint, known),
      isTaken: (id) =>
        taken.has(id) ? Effect.succeed(true) : fs.exists(path.join(directory, `${id}.json`)).pipe(Effect.orElseSucceed(() => true))
    })
  })

/** The folder users' own blueprints are read from and new ones written to: `$AUTOPILOT_HOME/blueprints`. */
export const userDirectory = Effect.map(home, (dir) => path.join(dir, "blueprints")).pipe(Effect.orDie)

/**
 * The built-ins and `$AUTOPILOT_HOME/blueprints/*.json`, checked against the specialists of
 * `Specialists.layer` (the user's own included, so a blueprint of theirs may name one).
 */
export const layer: Layer.Layer<Blueprints, never, FileSystem.FileSystem> = Layer.effect(
  Blueprints,
  Effect.gen(function*() {
    const specialists = (yield* Specialists.Specialists).all.map((entry) => entry.specialist)
    return yield* make({ directory: yield* userDirectory, specialists })
  })
).pipe(Layer.provide(Specialists.layer))

/** The built-ins and the `*.json` files of `directory`. */
export const layerDirectory = (directory: string, options: MakeOptions = {}): Layer.Layer<Blueprints, never, FileSystem.FileSystem> =>
  Layer.effect(Blueprints, make({ ...options, directory }))

/** The built-ins alone. */
export const layerBuiltIn: Layer.Layer<Blueprints> = Layer.effect(Blueprints, makeBuiltIn())
