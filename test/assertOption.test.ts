import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import { sameOption } from "./assertOption.js"

describe("sameOption", () => {
  it("tells some from none, bare or nested, where chai's deep equality does not", () => {
    assert.deepStrictEqual(Option.some(1), Option.none() as Option.Option<number>)
    assert.throws(() => sameOption(Option.some(1), Option.none()))
    assert.throws(() => sameOption(Option.none(), Option.some(1)))
    assert.throws(() => sameOption({ a: [Option.some(1)] }, { a: [Option.none()] }))
    assert.throws(() => sameOption(Option.some(Option.some(1)), Option.some(Option.none())))
    assert.throws(() => sameOption(Option.some({ n: 1 }), Option.some({ n: 2 })))
  })

  it("holds for equal Options, bare or nested", () => {
    sameOption(Option.some({ n: [1, 2] }), Option.some({ n: [1, 2] }))
    sameOption({ a: Option.none(), b: null }, { a: Option.none(), b: null })
  })
})
