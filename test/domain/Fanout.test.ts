import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"
import { Checkpoint } from "../../src/domain/Checkpoint.js"
import * as Fanout from "../../src/domain/Fanout.js"
import * as RunId from "../../src/domain/RunId.js"
import { earlierCheckpoint } from "../runtime/fixtures.js"

const rollup = (fields: Partial<Fanout.Rollup>): Fanout.Rollup => ({ completed: 0, partial: 0, halted: 0, failed: 0, not_started: 0, ...fields })

const spec = (fields: Partial<Fanout.FanoutSpec>): Fanout.FanoutSpec => ({ template: "Research {item}", items: ["a"], max_parallel: 4, ...fields })

const limits = { maxItems: 5, maxDepth: 3 }

const problemOf = (s: Fanout.FanoutSpec, criteria?: ReadonlyArray<string>, runId = "p") =>
  Effect.map(Effect.either(Fanout.check(runId, s, criteria, limits)), Either.match({ onLeft: (e) => e.message, onRight: () => undefined }))

describe("Fanout (domain)", () => {
  describe("child run ids", () => {
    it("are <parent>.<index>-<slug>, the slug in lower-case letters, digits and dashes", () => {
      assert.strictEqual(Fanout.childRunId("p", 3, "Rust: async/await!"), "p.3-rust-async-await")
      assert.strictEqual(Fanout.childRunId("p", 0, "Ünïcode café"), "p.0-unicode-cafe")
      assert.strictEqual(Fanout.childRunId("p", 1, "日本語"), "p.1")
    })

    it.prop("are always valid run ids of at most 128 characters, and distinct per index", [
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/),
      fc.nat({ max: 99_999 }),
      fc.string({ maxLength: 200 })
    ], ([parent, index, item]) => {
      const id = Fanout.childRunId(parent, index, item)
      assert.isTrue(Either.isRight(Effect.runSync(Effect.either(RunId.check(id)))), id)
      assert.isAtMost(id.length, 128)
      assert.isTrue(id.startsWith(`${parent}.${index}`))
      assert.notStrictEqual(id, Fanout.childRunId(parent, index + 1, item))
    })
  })

  describe("status", () => {
    it("is completed when every child completed", () => assert.strictEqual(Fanout.statusOfRollup(rollup({ completed: 3 })), "completed"))
    it("is partial when some child completed or got partway", () => {
      assert.strictEqual(Fanout.statusOfRollup(rollup({ completed: 1, failed: 2 })), "partial")
      assert.strictEqual(Fanout.statusOfRollup(rollup({ partial: 1, halted: 2, not_started: 1 })), "partial")
    })
    it("is failed only when every child failed", () => {
      assert.strictEqual(Fanout.statusOfRollup(rollup({ failed: 2 })), "failed")
      assert.strictEqual(Fanout.statusOfRollup(rollup({ failed: 2, not_started: 1 })), "halted")
    })
    it("is halted when stopped before any child met a criterion", () => {
      assert.strictEqual(Fanout.statusOfRollup(rollup({ halted: 1, not_started: 4 })), "halted")
    })
  })

  describe("check", () => {
    it.effect("names what is wrong in one line", () =>
      Effect.gen(function*() {
        assert.isUndefined(yield* problemOf(spec({})))
        assert.match((yield* problemOf(spec({ template: "  " })))!, /needs a non-empty template with \{item\}/)
        assert.match((yield* problemOf(spec({ template: "Research" })))!, /template "Research" of the fan-out has no \{item\}/)
        assert.match((yield* problemOf(spec({ items: [] })))!, /needs at least one item/)
        assert.match((yield* problemOf(spec({ items: ["a", " "] })))!, /item 2 of the fan-out is empty/)
        assert.match((yield* problemOf(spec({ items: ["1", "2", "3", "4", "5", "6"] })))!, /has 6 items, more than the maximum of 5/)
        assert.match((yield* problemOf(spec({ max_parallel: 0 })))!, /must be a whole number from 1 to 100000, got 0/)
        assert.match((yield* problemOf(spec({}), ["ok", ""]))!, /every criterion/)
        assert.match((yield* problemOf(spec({}), undefined, "x".repeat(127)))!, /too long for the fan-out/)
        const nested = spec({ items: [{ item: "b", template: "Part", items: ["x"], max_parallel: 1 }] })
        assert.match((yield* problemOf(nested))!, /template "Part" of the fan-out of item "b" has no \{item\}/)
      }))
  })

  describe("the runs of a fan-out", () => {
    it("are its children and theirs, whether they ran or not; a child's fan-out is named by its id", () => {
      const tree = spec({ items: ["Rust", { item: "the JVM", template: "Compare {item}", items: ["Java", "Kotlin"], max_parallel: 1 }] })
      assert.deepStrictEqual(Fanout.descendantsOf("fan", tree), ["fan.0-rust", "fan.1-the-jvm", "fan.1-the-jvm.0-java", "fan.1-the-jvm.1-kotlin"])
      assert.strictEqual(Fanout.parentIdOf("fan.1-the-jvm.0-java"), "fan.1-the-jvm")
      assert.strictEqual(Fanout.parentIdOf("fan.0-rust"), "fan")
      assert.isUndefined(Fanout.parentIdOf("fan"))
    })

    it("a checkpoint written before fan-outs decodes as a mission's", () => {
      assert.isUndefined(Schema.decodeUnknownSync(Checkpoint)(earlierCheckpoint).fanout)
    })
  })

  describe("items files", () => {
    it("hold one item a line; blank lines and # comments are skipped, the rest trimmed", () => {
      assert.deepStrictEqual(Fanout.itemsOfText("# topics\nRust\n\n  Go  \r\n#skip\nZig\n"), ["Rust", "Go", "Zig"])
    })
  })
})
