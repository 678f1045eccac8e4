import { Ajv, type ErrorObject, type ValidateFunction } from "ajv"
import { Either } from "effect"

/**
 * A mission node's `output_schema` (a JSON Schema, as blueprints write it) checked against what a model
 * answered, with ajv: a real validator, since the schema is the user's and may use any keyword.
 */

type JsonSchema = Readonly<Record<string, unknown>>

// `strict: false`: blueprint schemas carry `description` and the like, which are no error. `addUsedSchema:
// false`: two nodes' schemas with the same `$id` must not clash in the shared instance.
const ajv = new Ajv({ allErrors: true, strict: false, addUsedSchema: false })

/** Compiled validators (or why a schema does not compile) by the schema's JSON text; a mission has few. */
const compiled = new Map<string, { readonly schema: object; readonly result: ValidateFunction | string }>()
const capacity = 64

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

const compile = (schema: JsonSchema): ValidateFunction | string => {
  const key = JSON.stringify(schema)
  const known = compiled.get(key)
  if (known !== undefined) return known.result
  // A copy of its own, so ajv's cache (keyed by the object) holds nothing the caller may mutate or keep alive.
  const own = JSON.parse(key) as object
  let result: ValidateFunction | string
  try {
    result = ajv.compile(own)
  } catch (error) {
    result = oneLine(error instanceof Error ? error.message : String(error))
  }
  if (compiled.size >= capacity) {
    const [oldest, entry] = compiled.entries().next().value!
    compiled.delete(oldest)
    ajv.removeSchema(entry.schema)
  }
  compiled.set(key, { schema: own, result })
  return result
}

/** Why a schema cannot be used to check answers, or undefined when it can. */
export const problemOf = (schema: JsonSchema): string | undefined => {
  const result = compile(schema)
  return typeof result === "string" ? `is not a valid JSON Schema: ${result}` : undefined
}

const parse = (text: string): Either.Either<unknown, string> =>
  Either.try({ try: () => JSON.parse(text) as unknown, catch: (e) => oneLine(e instanceof Error ? e.message : String(e)) })

const fence = /```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```/

/**
 * The one JSON value of an answer, as models really send it: bare, in a code fence, or with a line of prose
 * around it. The outermost `{…}` or `[…]` is cut out only when the whole text is not JSON.
 */
export const decode = (answer: string): Either.Either<unknown, string> => {
  const text = answer.trim()
  if (text === "") return Either.left("the answer is empty, where one JSON value was asked for")
  const whole = parse(text)
  if (Either.isRight(whole)) return whole
  const fenced = fence.exec(text)?.[1]
  if (fenced !== undefined) {
    const inside = parse(fenced.trim())
    if (Either.isRight(inside)) return inside
  }
  const open = text.search(/[[{]/)
  if (open !== -1) {
    const close = text.lastIndexOf(text[open] === "{" ? "}" : "]")
    if (close > open) {
      const cut = parse(text.slice(open, close + 1))
      if (Either.isRight(cut)) return cut
    }
  }
  return Either.left(`the answer is not JSON (${whole.left})`)
}

const maxErrors = 8

/** One ajv error as a reader fixes it: where (a JSON pointer into the answer) and what. */
const describe = (error: ErrorObject): string => {
  const at = error.instancePath === "" ? "the answer" : error.instancePath
  switch (error.keyword) {
    case "required":
      return `${error.instancePath}/${String(error.params["missingProperty"])} is required`
    case "additionalProperties":
      return `${error.instancePath}/${String(error.params["additionalProperty"])} is not allowed`
    case "enum":
      return `${at} ${error.message} (${(error.params["allowedValues"] as ReadonlyArray<unknown>).map((v) => typeof v === "string" ? v : JSON.stringify(v)).join(", ")})`
    default:
      return `${at} ${error.message ?? `fails ${error.keyword}`}`
  }
}

/**
 * The answer's JSON value when it matches the schema; else one line saying what is wrong: not JSON, or
 * each mismatch with its place (`/severity must be equal to one of the allowed values (low, medium, high,
 * critical); /summary is required`).
 */
export const check = (schema: JsonSchema, answer: string): Either.Either<unknown, string> => {
  const validate = compile(schema)
  if (typeof validate === "string") return Either.left(`the output schema is not a valid JSON Schema: ${validate}`)
  return Either.flatMap(decode(answer), (value) => {
    if (validate(value)) return Either.right(value)
    const errors = validate.errors ?? []
    const shown = errors.slice(0, maxErrors).map(describe)
    const more = errors.length > maxErrors ? [`and ${errors.length - maxErrors} more`] : []
    return Either.left(oneLine([...shown, ...more].join("; ")))
  })
}

/** What a model is asked, so that it answers with the schema's value and nothing else. */
export const instruction = (schema: JsonSchema): string => {
  const what = schema["type"] === "object" || schema["properties"] !== undefined ? "one JSON object" : "one JSON value"
  return `Answer with only ${what} that matches this JSON Schema, with no prose and no code fence: ${JSON.stringify(schema)}`
}
