import { FileSystem } from "@effect/platform"
import { Array as Arr, Effect, Either, Order, ParseResult, Schema, type SchemaAST } from "effect"
import * as path from "node:path"
import { BadInput, PersistenceError } from "../domain/Errors.js"

/**
 * What every catalog of JSON definitions shares (the specialists, the blueprints): built-ins shipped in
 * the package, a user folder of `*.json` files that may add definitions or replace a built-in by id, one
 * line per bad file naming every wrong field, and a new file written without ever clobbering another.
 */

/** A user file that was skipped: `message` names the field that is wrong, or why the file is unusable. */
export interface Problem {
  readonly file: string
  readonly message: string
}

/** A definition and the file it was read from; null for a built-in. */
export interface Loaded<A> {
  readonly value: A
  readonly file: string | null
}

/** A problem of one field of a decoded definition, beyond what its Schema says. */
export interface FieldProblem {
  readonly field: string
  readonly message: string
}

/** One file's parsed JSON as a definition, or one line naming every wrong field. */
export type Decode<A> = (content: unknown) => Either.Either<A, string>

export const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/** `graph.edges[2].to`, as a person reads a path into a JSON document. */
export const fieldOf = (issuePath: ReadonlyArray<PropertyKey>): string =>
  issuePath.map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join("")

/** The property names an input may have at `at` in what `ast` decodes, when it is an object there. */
const fieldsAt = (ast: SchemaAST.AST, at: ReadonlyArray<PropertyKey>): ReadonlyArray<string> | undefined => {
  switch (ast._tag) {
    // The encoded side is what a file holds: a field with a default is optional there, but still a field.
    case "Transformation":
    case "Refinement":
      return fieldsAt(ast.from, at)
    case "Suspend":
      return fieldsAt(ast.f(), at)
    case "Union":
      return ast.types.map((member) => fieldsAt(member, at)).find((found) => found !== undefined)
    case "TypeLiteral": {
      if (at.length === 0) return ast.propertySignatures.map((signature) => String(signature.name))
      const signature = ast.propertySignatures.find((s) => s.name === at[0])
      return signature === undefined ? undefined : fieldsAt(signature.type, at.slice(1))
    }
    case "TupleType": {
      const index = at[0]
      if (typeof index !== "number") return undefined
      const element = ast.elements[index]?.type ?? ast.rest[0]?.type
      return element === undefined ? undefined : fieldsAt(element, at.slice(1))
    }
    default:
      return undefined
  }
}

const literal = /^Expected ("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null), actual (.*)$/

/**
 * Effect's messages, as a person who wrote the file can act on them, one `field: message` per field: the
 * alternatives of a literal union as one "must be one of", a struct or a list named as such rather than
 * spelt out as a TypeScript type, an empty list that must not be, and no "Expected undefined" beside the
 * real problem of an optional field.
 */
const describeIssues = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>,
  ast: SchemaAST.AST,
  unexpected: (issuePath: ReadonlyArray<PropertyKey>) => string
): string => {
  const byField = new Map<string, Array<string>>()
  const add = (field: string, message: string) => byField.set(field, [...(byField.get(field) ?? []), message])
  // An empty message is one a reader does not need (see Specialist's allowed_tools).
  for (const issue of issues.filter((issue) => issue.message !== "")) {
    const last = issue.path.at(-1)
    if (issue._tag === "Unexpected") add(fieldOf(issue.path), unexpected(issue.path))
    else if (issue._tag === "Missing" && last === 0) add(fieldOf(issue.path.slice(0, -1)), "must list at least one item, and lists none")
    else {
      const kind = kindOf(issue.message, () => fieldsAt(ast, issue.path))
      if (kind !== undefined) add(fieldOf(issue.path), `must be ${kind}, got ${actualOf(issue.message)}`)
      else add(fieldOf(issue.path), oneLine(issue.message))
    }
  }
  return [...byField].map(([field, messages]) => {
    const relevant = messages.length > 1 ? messages.filter((m) => !m.startsWith("Expected undefined, actual")) : messages
    const literals = relevant.map((m) => literal.exec(m))
    const message = relevant.length > 1 && literals.every((m) => m !== null)
      ? `must be one of ${literals.map((m) => m![1]).join(", ")}, got ${literals[0]![2]}`
      : Arr.dedupe(relevant).join("; ")
    return `${field === "" ? "the file" : field}: ${message}`
  }).join("; ")
}

/** What Effect's "Expected …, actual X" message says was expected, in words, when it spells out a type. */
const kindOf = (message: string, fields: () => ReadonlyArray<string> | undefined): string | undefined => {
  const expected = /^Expected (.*), actual /s.exec(message)?.[1]
  if (expected === undefined) return undefined
  if (expected.startsWith("{") || expected.startsWith("Struct")) {
    const names = fields()
    return `an object${names === undefined ? "" : ` with the fields ${names.join(", ")}`}`
  }
  if (/^(ReadonlyArray<|readonly \[)/.test(expected)) return "a list"
  return ({ string: "text", number: "a number", boolean: "true or false" } as Record<string, string>)[expected]
}

/** What Effect's "Expected …, actual X" message says was there. */
const actualOf = (message: string) => {
  const at = message.lastIndexOf(", actual ")
  return at === -1 ? "something else" : message.slice(at + ", actual ".length)
}

/**
 * A decoder of one kind of definition. Every wrong field is named (`graph.edges[2].to: …`), a misspelt
 * one is reported with the fields allowed where it is rather than ignored, and `check` adds what a
 * Schema cannot say about one field alone.
 */
export const decoder = <A, I>(
  schema: Schema.Schema<A, I>,
  options: {
    /** What one file holds, for messages: `specialist`, `blueprint`. */
    readonly noun: string
    readonly check?: (value: A) => ReadonlyArray<FieldProblem>
  }
): Decode<A> => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  const topFields = (fieldsAt(schema.ast, []) ?? []).join(", ")
  const unexpected = (issuePath: ReadonlyArray<PropertyKey>) => {
    if (issuePath.length === 1) return `is not a field of a ${options.noun} (misspelt?); its fields: ${topFields}`
    const here = fieldsAt(schema.ast, issuePath.slice(0, -1))
    return here === undefined ? "is not a field here (misspelt?)" : `is not a field here (misspelt?); the fields here: ${here.join(", ")}`
  }
  return (content) => {
    if (typeof content !== "object" || content === null || Array.isArray(content)) {
      return Either.left(`must hold one JSON object, a ${options.noun} with the fields ${topFields}`)
    }
    return decode(content).pipe(
      Either.mapLeft((error) => describeIssues(ParseResult.ArrayFormatter.formatErrorSync(error), schema.ast, unexpected)),
      Either.flatMap((value) => {
        const problems = options.check?.(value) ?? []
        return problems.length === 0 ? Either.right(value) : Either.left(problems.map((p) => `${p.field}: ${p.message}`).join("; "))
      })
    )
  }
}

const parse = (text: string): Either.Either<unknown, string> =>
  Either.try({ try: () => JSON.parse(text) as unknown, catch: (e) => `is not valid JSON: ${oneLine(e instanceof Error ? e.message : String(e))}` })

/** The built-ins, decoded: one that does not is a defect of the package, caught by its tests. */
export const builtIns = <A>(
  files: ReadonlyArray<readonly [file: string, content: unknown]>,
  decode: Decode<A>,
  noun: string
): Effect.Effect<ReadonlyArray<Loaded<A>>> =>
  Effect.forEach(files, ([file, content]) =>
    Either.match(decode(content), {
      onLeft: (problem) => Effect.dieMessage(`built-in ${noun} ${file} does not decode: ${problem}`),
      onRight: (value) => Effect.succeed<Loaded<A>>({ value, file: null })
    }))

/** Every `*.json` of `directory` by file name (a missing folder holds none), each decoded or a problem. */
export const userFiles = <A>(
  directory: string,
  decode: Decode<A>
): Effect.Effect<ReadonlyArray<Loaded<A> | Problem>, never, FileSystem.FileSystem> =>
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
          onLeft: (message): Loaded<A> | Problem => ({ file, message }),
          onRight: (value): Loaded<A> | Problem => ({ value, file })
        })
      }))
  })

/**
 * The built-ins with the user's files over them. A user file whose id is a built-in's replaces that
 * built-in; of two user files with one id, the first by file name is kept and the other reported.
 */
export const merge = <A>(
  builtIn: ReadonlyArray<Loaded<A>>,
  user: ReadonlyArray<Loaded<A> | Problem>,
  idOf: (value: A) => string
): { readonly entries: ReadonlyArray<Loaded<A>>; readonly problems: ReadonlyArray<Problem> } => {
  const byId = new Map(builtIn.map((entry) => [idOf(entry.value), entry]))
  const fromUser = new Map<string, string>()
  const problems: Array<Problem> = []
  for (const loaded of user) {
    if (!("value" in loaded)) {
      problems.push(loaded)
      continue
    }
    const id = idOf(loaded.value)
    const file = loaded.file ?? ""
    const earlier = fromUser.get(id)
    if (earlier !== undefined) {
      problems.push({ file, message: `id: "${id}" is already defined by ${earlier}` })
      continue
    }
    fromUser.set(id, file)
    byId.set(id, loaded)
  }
  return { entries: [...byId.values()], problems }
}

const persistence = (what: string) => (error: { readonly message: string }) =>
  new PersistenceError({ message: `${what}: ${oneLine(error.message)}`, busy: false })

/**
 * Writes `text` as the new file `name` of `directory` (created if missing), all or nothing: it is written
 * under a temporary name (not `*.json`, so no reader loads it half-written), then hard-linked to its name,
 * which, unlike a rename, fails rather than replace a file that is already there: two writers of one id
 * cannot overwrite each other. Returns the file's path.
 */
export const writeNew = (
  directory: string,
  name: string,
  text: string
): Effect.Effect<string, BadInput | PersistenceError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = path.join(directory, name)
    const taken = new BadInput({ message: `${file} already exists; it is left as it is` })
    if (yield* fs.exists(file).pipe(Effect.mapError(persistence(`cannot check ${file}`)))) return yield* taken
    yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError(persistence(`cannot create ${directory}`)))
    const temporary = path.join(directory, `.${name}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`)
    yield* fs.writeFileString(temporary, text).pipe(
      Effect.mapError(persistence(`cannot write ${temporary}`)),
      Effect.zipRight(fs.link(temporary, file).pipe(Effect.catchAll((error) =>
        Effect.fail(error._tag === "SystemError" && error.reason === "AlreadyExists" ? taken : persistence(`cannot write ${file}`)(error))
      ))),
      Effect.ensuring(fs.remove(temporary).pipe(Effect.ignore))
    )
    return file
  })

/** What a catalog offers its readers: every entry by category then id, one by id, those of a category. */
export interface Lookup<E> {
  readonly all: ReadonlyArray<E>
  readonly categories: ReadonlyArray<string>
  readonly get: (id: string) => Effect.Effect<E, BadInput>
  readonly list: (filter?: { readonly category?: string | undefined }) => Effect.Effect<ReadonlyArray<E>, BadInput>
}

/**
 * The lookups of a catalog of `entries`, each with an id and a category; `noun` names it in messages
 * (`unknown blueprint "x"; \`autopilot blueprints\` lists the 14 there are`).
 */
export const lookup = <E>(
  entries: ReadonlyArray<E>,
  options: { readonly noun: string; readonly idOf: (entry: E) => string; readonly categoryOf: (entry: E) => string }
): Lookup<E> => {
  const { categoryOf, idOf, noun } = options
  const all = Arr.sort(entries, Order.combine(Order.mapInput(Order.string, categoryOf), Order.mapInput(Order.string, idOf)))
  const byId = new Map(all.map((entry) => [idOf(entry), entry]))
  const categories = Arr.dedupe(all.map(categoryOf))
  const get = (id: string) =>
    Effect.suspend(() => {
      const entry = byId.get(id)
      return entry !== undefined ? Effect.succeed(entry) : Effect.fail(
        new BadInput({ message: `unknown ${noun} "${id}"; \`autopilot ${noun}s\` lists the ${all.length} there are` })
      )
    })
  const list = (filter: { readonly category?: string | undefined } = {}) =>
    Effect.suspend(() => {
      const category = filter.category
      if (category === undefined) return Effect.succeed(all)
      return categories.includes(category)
        ? Effect.succeed(all.filter((entry) => categoryOf(entry) === category))
        : Effect.fail(new BadInput({ message: `unknown category "${category}"; categories: ${categories.join(", ")}` }))
    })
  return { all, categories, get, list }
}
