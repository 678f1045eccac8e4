import { assert, describe, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Either, FastCheck as fc, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Blueprint, type BlueprintEncoded, problems } from "../../src/domain/Blueprint.js"
import { Llm } from "../../src/llm/Llm.js"
import * as MockBlueprint from "../../src/llm/MockBlueprint.js"
import { MockLlm } from "../../src/llm/MockLlm.js"
import { Blueprints, fromEntries } from "../../src/routing/Blueprints.js"
import * as BlueprintCatalog from "../../src/routing/Catalog.js"
import * as Synthesis from "../../src/routing/Synthesis.js"
import { Specialists } from "../../src/specialists/Specialists.js"
import * as SpecialistCatalog from "../../src/specialists/Specialists.js"
import { defaultToolNames } from "../../src/tools/Defaults.js"
import { recordingLlm, research, researchEncoded, script } from "./fixtures.js"

/** A blueprint the checks accept: the research fixture under another id. */
const valid: BlueprintEncoded = { ...researchEncoded, id: "vendor_watch", title: "Vendor watch" }

/** The same with a cycle back to its entry. */
const cyclic: BlueprintEncoded = {
  ...valid,
  graph: { ...valid.graph, edges: [...valid.graph.edges, { from: "report", to: "research" }] }
}

/** Names a specialist that does not exist and a tool no mission has. */
const unknownNames: BlueprintEncoded = {
  ...valid,
  graph: {
    ...valid.graph,
    nodes: [{ ...valid.graph.nodes[0]!, specialist: "wizard" }, { ...valid.graph.nodes[1]!, tools: ["web_search"] }]
  }
}

const goal = "Watch our vendors' pricing pages every week and tell the pricing team what changed"

/** Synthesis over the recorded mock, the built-in specialists, and a catalog whose `add` is recorded. */
const synthesisWith = (mock?: Parameters<typeof recordingLlm>[0]) =>
  Effect.gen(function*() {
    const { llm, requests } = yield* recordingLlm(mock)
    const added: Array<Blueprint> = []
    const catalog = fromEntries([{ blueprint: research, file: null }], {
      directory: "/home/user/.autopilot/blueprints",
      add: (blueprint) =>
        Effect.sync(() => {
          added.push(blueprint)
          return { blueprint, file: `/home/user/.autopilot/blueprints/${blueprint.id}.json` }
        })
    })
    const synthesis = yield* Synthesis.make().pipe(
      Effect.provideService(Llm, llm),
      Effect.provideService(Blueprints, catalog),
      Effect.provide(SpecialistCatalog.layerBuiltIn)
    )
    const specialists = (yield* Effect.provide(Specialists, SpecialistCatalog.layerBuiltIn)).all.map((e) => e.specialist.id)
    return { synthesis, requests, added, specialists }
  })

const encode = Schema.encodeSync(Blueprint)

describe("Synthesis.synthesize", () => {
  it.effect("asks the model once with the Schema, the specialists, the tools and the rules, and keeps a valid answer", () =>
    Effect.gen(function*() {
      const { synthesis, requests, added, specialists } = yield* synthesisWith(script({ synthesis: [{ blueprint: valid }] }))
      const entry = yield* synthesis.synthesize(goal)
      assert.strictEqual(entry.blueprint.id, "vendor_watch")
      assert.strictEqual(entry.file, "/home/user/.autopilot/blueprints/vendor_watch.json")
      assert.deepStrictEqual(added.map((b) => b.id), ["vendor_watch"])
      assert.deepStrictEqual(encode(added[0]!), encode(Schema.decodeSync(Blueprint)(valid)))
      assert.strictEqual(requests.length, 1)
      const [system, user] = requests[0]!.messages
      assert.strictEqual(requests[0]!.purpose, "synthesis")
      assert.strictEqual(requests[0]!.tier, "complex")
      assert.include(system!.content, `"$schema":"http://json-schema.org/draft-07/schema#"`)
      assert.include(system!.content, `"example_goals"`)
      assert.include(system!.content, specialists.join(", "))
      assert.include(system!.content, defaultToolNames.join(", "))
      assert.include(system!.content, "acyclic")
      assert.include(system!.content, "output_schema")
      assert.deepStrictEqual(user, { role: "user", content: goal })
    }))

  it.effect("retries once with the validation errors, and keeps the corrected answer", () =>
    Effect.gen(function*() {
      const { synthesis, requests, added } = yield* synthesisWith(script({ synthesis: [{ blueprint: cyclic }, { blueprint: valid }] }))
      const entry = yield* synthesis.synthesize(goal)
      assert.strictEqual(entry.blueprint.id, "vendor_watch")
      assert.deepStrictEqual(entry.blueprint.graph.edges.length, 1)
      assert.strictEqual(requests.length, 2)
      const retry = requests[1]!.messages
      assert.deepStrictEqual(retry.slice(0, 2), requests[0]!.messages)
      assert.deepStrictEqual(retry[2], { role: "assistant", content: JSON.stringify(cyclic) })
      assert.strictEqual(retry[3]!.role, "user")
      assert.include(retry[3]!.content, "That blueprint was rejected")
      assert.include(retry[3]!.content, "graph.edges: the graph has a cycle: research → report → research")
      assert.include(retry[3]!.content, "graph.edges[1].to: no edge may lead back to the entry node research")
      assert.strictEqual(added.length, 1)
    }))

  it.effect("gives the retry the decoding errors of an answer that is not a blueprint", () =>
    Effect.gen(function*() {
      const { synthesis, requests } = yield* synthesisWith(script({
        synthesis: [{ blueprint: { ...valid, mode: "sometimes", slots: "none" } }, { content: "```json\n" + JSON.stringify(valid) + "\n```" }]
      }))
      const entry = yield* synthesis.synthesize(goal)
      assert.strictEqual(entry.blueprint.id, "vendor_watch")
      const errors = requests[1]!.messages[3]!.content
      assert.include(errors, `mode: must be one of "once", "scheduled", "batch", got "sometimes"`)
      assert.include(errors, "slots: must be a list")
    }))

  it.effect("checks specialists and tools against those that exist", () =>
    Effect.gen(function*() {
      const { synthesis, requests } = yield* synthesisWith(script({ synthesis: [{ blueprint: unknownNames }, { blueprint: valid }] }))
      yield* synthesis.synthesize(goal)
      const errors = requests[1]!.messages[3]!.content
      assert.include(errors, `graph.nodes[0].specialist: unknown specialist "wizard"`)
      assert.include(errors, `graph.nodes[1].tools: unknown tool "web_search"`)
    }))

  it.effect("fails with SynthesisFailed, one line naming the problems, when the retry is rejected too", () =>
    Effect.gen(function*() {
      const { synthesis, requests, added } = yield* synthesisWith(script({ synthesis: [{ blueprint: cyclic }, { content: "Sorry, I cannot." }] }))
      const error = yield* Effect.flip(synthesis.synthesize(goal))
      assert.strictEqual(error._tag, "SynthesisFailed")
      assert.strictEqual(requests.length, 2)
      assert.strictEqual(added.length, 0)
      if (error._tag !== "SynthesisFailed") return
      assert.strictEqual(error.goal, goal)
      assert.notInclude(error.message, "\n")
      assert.match(error.message, /^no valid blueprint could be written for this goal \(two attempts\); the last one: is not valid JSON: /)
    }))

  it.effect("keeps at most five problems in the message, and counts the rest", () =>
    Effect.sync(() => {
      const error = new Synthesis.SynthesisFailed({ goal, problems: ["a", "b", "c", "d", "e", "f", "g"] })
      assert.strictEqual(error.message, "no valid blueprint could be written for this goal (two attempts); the last one: a; b; c; d; e; and 2 more")
    }))

  it.effect("passes a failed model call on as the LlmError it is", () =>
    Effect.gen(function*() {
      const { synthesis, added } = yield* synthesisWith(script({ synthesis: [{ error: "invalid api key", transient: false }] }))
      const error = yield* Effect.flip(synthesis.synthesize(goal))
      assert.strictEqual(error._tag, "LlmError")
      assert.strictEqual(error.message, "invalid api key")
      assert.strictEqual(added.length, 0)
    }))

  it.effect("gives a blueprint whose id is taken a fresh one from the goal, numbered while taken", () =>
    Effect.gen(function*() {
      const { synthesis, added } = yield* synthesisWith(script({ synthesis: [{ blueprint: { ...valid, id: "scheduled_research" } }] }))
      const first = yield* synthesis.synthesize("Watch vendor pricing")
      const second = yield* synthesis.synthesize("Watch vendor pricing")
      assert.strictEqual(first.blueprint.id, "synthetic_watch_vendor_pricing")
      assert.strictEqual(second.blueprint.id, "synthetic_watch_vendor_pricing_2")
      assert.deepStrictEqual(added.map((b) => b.id), ["synthetic_watch_vendor_pricing", "synthetic_watch_vendor_pricing_2"])
      // Apart from its id, the blueprint is kept as written.
      assert.deepStrictEqual(encode({ ...first.blueprint, id: "scheduled_research" }), encode(Schema.decodeSync(Blueprint)({ ...valid, id: "scheduled_research" })))
    }))

  describe("with a draft from the remote service", () => {
    it.effect("keeps a valid draft without calling the model", () =>
      Effect.gen(function*() {
        const { synthesis, requests, added } = yield* synthesisWith()
        const entry = yield* synthesis.synthesize(goal, { draft: JSON.stringify(valid) })
        assert.strictEqual(entry.blueprint.id, "vendor_watch")
        assert.strictEqual(requests.length, 0)
        assert.strictEqual(added.length, 1)
      }))

    it.effect("renames a valid draft whose id is taken", () =>
      Effect.gen(function*() {
        const { synthesis } = yield* synthesisWith()
        const entry = yield* synthesis.synthesize("Track vendors", { draft: JSON.stringify(researchEncoded) })
        assert.strictEqual(entry.blueprint.id, "synthetic_track_vendors")
      }))

    it.effect("shows the model an invalid draft with its problems, and keeps the model's answer", () =>
      Effect.gen(function*() {
        const { synthesis, requests } = yield* synthesisWith(script({ synthesis: [{ blueprint: valid }] }))
        const draft = JSON.stringify(cyclic)
        const entry = yield* synthesis.synthesize(goal, { draft })
        assert.strictEqual(entry.blueprint.graph.edges.length, 1)
        assert.strictEqual(requests.length, 1)
        const shown = requests[0]!.messages[2]!
        assert.strictEqual(shown.role, "user")
        assert.include(shown.content, "A blueprint service proposed this draft")
        assert.include(shown.content, draft)
        assert.include(shown.content, "the graph has a cycle")
      }))

    it.effect("falls back to the model for a draft that is not JSON, retrying once as ever", () =>
      Effect.gen(function*() {
        const { synthesis, requests } = yield* synthesisWith(script({ synthesis: [{ content: "{}" }, { content: "still nothing" }] }))
        const error = yield* Effect.flip(synthesis.synthesize(goal, { draft: "<html>502</html>" }))
        assert.strictEqual(error._tag, "SynthesisFailed")
        assert.strictEqual(requests.length, 2)
        assert.include(requests[0]!.messages[2]!.content, "is not valid JSON: ")
      }))
  })

  describe("on the unscripted mock", () => {
    it.effect("accepts the generic blueprint the mock writes for the goal, first time", () =>
      Effect.gen(function*() {
        const { synthesis, requests, added } = yield* synthesisWith()
        const entry = yield* synthesis.synthesize("Plan a team offsite in Lisbon for {12} people")
        assert.strictEqual(requests.length, 1)
        assert.strictEqual(entry.blueprint.id, "synthetic_plan_a_team_offsite_in_lisbon_for_12_people")
        assert.deepStrictEqual(entry.blueprint.graph.nodes.map((n) => n.id), ["work", "review"])
        assert.deepStrictEqual(entry.blueprint.slots, [])
        assert.include(entry.blueprint.success_criteria[0], "Plan a team offsite in Lisbon")
        assert.strictEqual(added.length, 1)
      }))

    const goals = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.fullUnicodeString({ maxLength: 200 }),
      fc.array(fc.constantFrom("{vendors}", "{work.output}", "}{", "  ", "\n", "Ünïcode", "3", "x".repeat(120)), { maxLength: 8 }).map((parts) => parts.join(""))
    )
    it.prop("writes a blueprint every check accepts, for any goal", [goals], ([text]) => {
      const decoded = Schema.decodeUnknownEither(Blueprint)(MockBlueprint.forGoal(text))
      assert.isTrue(Either.isRight(decoded))
      if (Either.isRight(decoded)) assert.deepStrictEqual(problems(decoded.right), [])
    })
  })

  it.effect("is provided as a layer over the model, the catalog and the specialists", () =>
    Effect.gen(function*() {
      const synthesis = yield* Synthesis.Synthesis
      const error = yield* Effect.flip(synthesis.synthesize(goal))
      // The in-memory catalog has no folder to keep it in: the catalog's own refusal comes back.
      assert.strictEqual(error._tag, "BadInput")
      assert.include(error.message, "has no folder for user blueprints")
    }).pipe(Effect.provide(
      Synthesis.layer.pipe(
        Layer.provide(Layer.mergeAll(MockLlm.layer(), Layer.succeed(Blueprints, fromEntries([])), SpecialistCatalog.layerBuiltIn))
      )
    )))

  it.effect("never takes the name of a user file that did not load: it is renamed, and the file left as it was", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "autopilot-synthesis-"))
      const broken = path.join(directory, "synthetic_plan_our_team_offsite.json")
      fs.writeFileSync(broken, `{"id": "broken"}`)
      const entry = yield* Effect.flatMap(Synthesis.Synthesis, (synthesis) => synthesis.synthesize("plan our team offsite")).pipe(
        Effect.provide(Synthesis.layer.pipe(
          Layer.provide(Layer.mergeAll(MockLlm.layer(), BlueprintCatalog.layerDirectory(directory), SpecialistCatalog.layerBuiltIn)),
          Layer.provide(NodeFileSystem.layer)
        ))
      )
      assert.strictEqual(entry.blueprint.id, "synthetic_plan_our_team_offsite_2")
      assert.strictEqual(entry.file, path.join(directory, "synthetic_plan_our_team_offsite_2.json"))
      assert.strictEqual(fs.readFileSync(broken, "utf8"), `{"id": "broken"}`)
      fs.rmSync(directory, { recursive: true, force: true })
    }))
})
