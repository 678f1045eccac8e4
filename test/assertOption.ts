import { assert } from "@effect/vitest"
import { Option } from "effect"

/**
 * Deep equality where every Option, at any depth of arrays and plain objects, is compared as a plain
 * value. chai's deep equality passes `Option.some(x)` against `Option.none()`, bare or nested (their keys
 * differ in number, so it falls back to their iterators, which match), so an assertion expecting `none`
 * on the Options themselves would hold whatever the code returned.
 */
export const sameOption = <A>(actual: A, expected: A, message?: string): void =>
  assert.deepStrictEqual(plain(actual), plain(expected), message)

const plain = (value: unknown): unknown => {
  if (Option.isOption(value)) return Option.match(value, { onNone: () => ({ none: true }), onSome: (some) => ({ some: plain(some) }) })
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field)]))
  }
  return value
}
