import { Context, Effect } from "effect"
import * as CatalogFiles from "../catalog/CatalogFiles.js"
import { type Blueprint, problems as structuralProblems, type Problem as BlueprintProblem } from "../domain/Blueprint.js"
import { BadInput, type PersistenceError } from "../domain/Errors.js"

/** A blueprint and where it came from. */
export interface Entry {
  readonly blueprint: Blueprint
  /** The user file it was read from (or written to, when synthesized); null for a built-in. */
  readonly file: string | null
}

/** A user file that was skipped: `message` names the field that is wrong, or why the file is unusable. */
export interface Problem {
  readonly file: string
  readonly message: string
}

/**
 * The blueprints goals are routed to: the built-in catalog and the user's own files, which may add
 * blueprints or replace a built-in one by using its id. A bad user file is skipped and reported in
 * `problems`; it never stops the others from loading.
 */
export class Blueprints extends Context.Tag("autopilot/Blueprints")<
  Blueprints,
  {
    /** Every blueprint, by category, then id. */
    readonly all: ReadonlyArray<Entry>
    readonly categories: ReadonlyArray<string>
    readonly problems: ReadonlyArray<Problem>
    /** The folder user files are read from and synthesized blueprints written to, if any. */
    readonly directory: string | null
    readonly get: (id: string) => Effect.Effect<Entry, BadInput>
    /** All, or those of one category (which must exist). */
    readonly list: (filter?: { readonly category?: string | undefined }) => Effect.Effect<ReadonlyArray<Entry>, BadInput>
    /**
     * Keeps `blueprint` as the user's own (a file in `directory`), so that later goals can be routed to
     * it; `all` of this instance does not change. Fails when the id is taken or there is no directory.
     */
    readonly add: (blueprint: Blueprint) => Effect.Effect<Entry, BadInput | PersistenceError>
    /**
     * What keeps `blueprint` out of this catalog: the checks every user file passes, against the
     * specialists and tools this catalog knows. How a blueprint from elsewhere (a remote service) is vetted.
     */
    readonly problemsOf: (blueprint: Blueprint) => ReadonlyArray<BlueprintProblem>
    /**
     * Whether `add` would refuse `id` as taken: a blueprint of the catalog, or (for a file-backed one) a
     * file of that name, even one that did not load.
     */
    readonly isTaken: (id: string) => Effect.Effect<boolean>
  }
>() {}


/**
 * A catalog over `entries` as given, which are assumed valid; `add` is whatever the caller supplies. What
 * the file-backed layer builds on, and what tests and benchmarks use for catalogs made in memory.
 */
export const fromEntries = (
  entries: ReadonlyArray<Entry>,
  options: {
    readonly problems?: ReadonlyArray<Problem>
    readonly directory?: string | null
    readonly add?: (blueprint: Blueprint) => Effect.Effect<Entry, BadInput | PersistenceError>
    readonly problemsOf?: (blueprint: Blueprint) => ReadonlyArray<BlueprintProblem>
    readonly isTaken?: (id: string) => Effect.Effect<boolean>
  } = {}
): Blueprints["Type"] => {
  const found = CatalogFiles.lookup(entries, {
    noun: "blueprint",
    idOf: (entry) => entry.blueprint.id,
    categoryOf: (entry) => entry.blueprint.category
  })
  const add = options.add ?? ((blueprint: Blueprint) =>
    Effect.fail(new BadInput({ message: `cannot keep blueprint "${blueprint.id}": this catalog has no folder for user blueprints` })))
  return Blueprints.of({
    ...found,
    problems: options.problems ?? [],
    directory: options.directory ?? null,
    add,
    problemsOf: options.problemsOf ?? ((blueprint) => structuralProblems(blueprint)),
    isTaken: options.isTaken ?? ((id) => Effect.isSuccess(found.get(id)))
  })
}
