/**
 * The JSON value the mock answers for a JSON Schema: deterministic and valid for the keywords blueprints
 * use (type, enum, const, properties, required, items, minItems/maxItems, minimum/maximum,
 * minLength/maxLength, anyOf/oneOf/allOf), so a mission on the mock passes its nodes' output checks unless
 * a script says otherwise. Not a general generator: `pattern`, `$ref` and `not` are beyond it.
 */

type JsonSchema = Readonly<Record<string, unknown>>

const isSchema = (value: unknown): value is JsonSchema => typeof value === "object" && value !== null && !Array.isArray(value)

const numberOf = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined)

/** The first type a schema allows, `null` only when nothing else is allowed; guessed from its keywords without one. */
const typeOf = (schema: JsonSchema): string | undefined => {
  const declared = schema["type"]
  if (typeof declared === "string") return declared
  if (Array.isArray(declared)) return declared.find((t) => t !== "null") ?? declared[0]
  if (isSchema(schema["properties"]) || Array.isArray(schema["required"])) return "object"
  if (schema["items"] !== undefined) return "array"
  return undefined
}

/** The lowest number the bounds allow, preferring 1 when they allow it (a count, a score). */
const numberWithin = (schema: JsonSchema, integer: boolean): number => {
  const round = (n: number) => (integer ? Math.ceil(n) : n)
  const exclusiveMin = numberOf(schema["exclusiveMinimum"])
  const exclusiveMax = numberOf(schema["exclusiveMaximum"])
  const low = numberOf(schema["minimum"]) ?? (exclusiveMin === undefined ? undefined : integer ? Math.floor(exclusiveMin) + 1 : exclusiveMin + 0.5)
  const high = numberOf(schema["maximum"]) ?? (exclusiveMax === undefined ? undefined : integer ? Math.ceil(exclusiveMax) - 1 : exclusiveMax - 0.5)
  if (low !== undefined) return round(low)
  if (high !== undefined && high < 1) return integer ? Math.floor(high) : high
  return 1
}

const stringFor = (schema: JsonSchema, name: string): string => {
  const text = `mock ${name}`
  const min = numberOf(schema["minLength"]) ?? 0
  const max = numberOf(schema["maxLength"])
  const long = text.padEnd(min, ".")
  return max === undefined ? long : long.slice(0, max)
}

/** `name` is the property (or the array) the value is for: strings say it, as "mock summary". */
export const instanceOf = (schema: unknown, name = "value"): unknown => {
  if (!isSchema(schema)) return `mock ${name}`
  if ("const" in schema) return schema["const"]
  const choices = schema["enum"]
  if (Array.isArray(choices) && choices.length > 0) return choices[0]
  for (const keyword of ["anyOf", "oneOf"]) {
    const options = schema[keyword]
    if (Array.isArray(options) && options.length > 0) return instanceOf(options[0], name)
  }
  const all = schema["allOf"]
  if (Array.isArray(all) && all.length > 0) {
    // Each part constrains the same value: merged, the object parts contribute every property.
    const parts = all.filter(isSchema)
    return instanceOf(
      {
        ...Object.assign({}, ...parts),
        properties: Object.assign({}, ...parts.map((p) => (isSchema(p["properties"]) ? p["properties"] : {}))),
        required: parts.flatMap((p) => (Array.isArray(p["required"]) ? p["required"] : []))
      },
      name
    )
  }
  switch (typeOf(schema)) {
    case "object": {
      const properties = isSchema(schema["properties"]) ? schema["properties"] : {}
      const required = Array.isArray(schema["required"]) ? schema["required"].filter((r): r is string => typeof r === "string") : []
      const names = [...Object.keys(properties), ...required.filter((r) => !(r in properties))]
      return Object.fromEntries(names.map((property) => [property, instanceOf(properties[property], property)]))
    }
    case "array": {
      const count = Math.min(Math.max(1, numberOf(schema["minItems"]) ?? 0), numberOf(schema["maxItems"]) ?? Infinity)
      // Numbered past the first, so that items of text stay distinct (`uniqueItems`).
      return Array.from({ length: count }, (_, i) => instanceOf(schema["items"], i === 0 ? name : `${name} ${i + 1}`))
    }
    case "integer":
      return numberWithin(schema, true)
    case "number":
      return numberWithin(schema, false)
    case "boolean":
      return true
    case "null":
      return null
    default:
      return stringFor(schema, name)
  }
}
