import { Context, Effect, Either, Layer, Schema } from "effect"
import { type Blueprint, describeSlotType, type Slot, type SlotValue, type SlotValues, slotValue } from "../domain/Blueprint.js"
import { BadInput } from "../domain/Errors.js"
import type { ChatMessage, Llm } from "../llm/Llm.js"
import { clip, unfenced } from "../runtime/Prompts.js"
import { ask } from "./RoutingModel.js"
import * as SlotRules from "./SlotRules.js"

/** Where a slot's value came from. */
export type Source = "given" | "rule" | "model" | "default"

/** A blueprint's slots as far as a goal (and what the caller gave) fills them. */
export interface Filled {
  readonly values: SlotValues
  /**
   * Required slots still without a valid value, and slots whose value the goal stated wrongly: the mission
   * waits in draft until they are given.
   */
  readonly missing: ReadonlyArray<string>
  /** Values stated for a slot (by name in the goal, or by the model) that it does not take; one line each. */
  readonly invalid: ReadonlyArray<{ readonly slot: string; readonly message: string }>
  readonly sources: Readonly<Record<string, Source>>
}

/**
 * Fills a blueprint's slots from a goal: what the caller gave (`name=value`), then rules on the goal's
 * text, then one model call (purpose `slots`) for what the rules could not fill, then the slots'
 * defaults. Every value passes the slot's validator. Only a given value that is not valid fails the fill:
 * the model's mistakes, a failed call or a garbage answer leave slots unfilled.
 */
export class Slots extends Context.Tag("autopilot/Slots")<
  Slots,
  {
    readonly fill: (
      blueprint: Blueprint,
      goal: string,
      given?: Readonly<Record<string, string>>
    ) => Effect.Effect<Filled, BadInput>
  }
>() {}

const slotLine = (slot: Slot) =>
  `- ${slot.name} (${slot.type}, ${slot.required ? "required" : "optional"}): takes ${describeSlotType(slot)}. ${slot.description.trim()}`

/** The system prompt of the model step: the slots to fill, what each takes, and the answer's shape. */
export const messages = (slots: ReadonlyArray<Slot>, goal: string): ReadonlyArray<ChatMessage> => [
  {
    role: "system",
    content: [
      "You read a user's goal and extract the inputs a task needs. The inputs still to fill:",
      ...slots.map(slotLine),
      "",
      "Reply with JSON only: one object whose keys are input names and whose values are what the goal says for each " +
      "(a string, a number, or a list of strings). A cron value is a 5-field cron expression (minute hour day month weekday). " +
      "Leave out any input the goal does not state or clearly imply; never invent one."
    ].join("\n")
  },
  // The goal alone, as the user's message: the model reads it as the text to extract from.
  { role: "user", content: goal }
]

const Answer = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
const decodeAnswer = Schema.decodeUnknownEither(Answer)

/** What the model said for `slots`, each value checked: valid ones, and one line per invalid one. */
export const readAnswer = (
  content: string,
  slots: ReadonlyArray<Slot>
): { readonly values: Record<string, SlotValue>; readonly invalid: ReadonlyArray<{ readonly slot: string; readonly message: string }> } => {
  const values: Record<string, SlotValue> = {}
  const invalid: Array<{ slot: string; message: string }> = []
  const answer = decodeAnswer(unfenced(content))
  if (Either.isLeft(answer)) return { values, invalid }
  for (const slot of slots) {
    const value = answer.right[slot.name]
    // A model that says null says it found nothing, as leaving the key out does.
    if (value === undefined || value === null) continue
    Either.match(slotValue(slot, value), {
      onLeft: (message) => invalid.push({ slot: slot.name, message: `the model's value for ${clip(message, 300)}` }),
      onRight: (checked) => (values[slot.name] = checked)
    })
  }
  return { values, invalid }
}

/** Checks what the caller gave: a slot the blueprint lacks or a value it does not take is bad input. */
const checkGiven = (blueprint: Blueprint, given: Readonly<Record<string, string>>) =>
  Effect.forEach(Object.entries(given), ([name, raw]) => {
    const slot = blueprint.slots.find((s) => s.name === name)
    if (slot === undefined) {
      const names = blueprint.slots.map((s) => s.name).join(", ")
      return Effect.fail(
        new BadInput({ message: `blueprint ${blueprint.id} has no slot "${name}"; its slots: ${names === "" ? "none" : names}` })
      )
    }
    return Either.match(slotValue(slot, raw), {
      onLeft: (message) => Effect.fail(new BadInput({ message })),
      onRight: (value) => Effect.succeed([name, value] as const)
    })
  })

export const make: Effect.Effect<Slots["Type"], never, Llm> = Effect.map(Effect.context<Llm>(), (context) => {
  const fill = (blueprint: Blueprint, goal: string, given: Readonly<Record<string, string>> = {}) =>
    Effect.gen(function*() {
      const values: Record<string, SlotValue> = {}
      const sources: Record<string, Source> = {}
      const invalid: Array<{ slot: string; message: string }> = []
      const set = (name: string, value: SlotValue, source: Source) => {
        values[name] = value
        sources[name] = source
      }
      // A value the goal states that its slot refuses is the user's to correct: neither the model nor a
      // default may stand in for it, so it stays unfilled, reported, and the mission waits for it.
      const refused = new Set<string>()
      const open = () => blueprint.slots.filter((slot) => !(slot.name in values) && !refused.has(slot.name))

      for (const [name, value] of yield* checkGiven(blueprint, given)) set(name, value, "given")

      const byRules = SlotRules.apply(goal, open())
      for (const [name, value] of Object.entries(byRules.values)) set(name, value, "rule")
      invalid.push(...byRules.invalid)
      for (const { slot } of byRules.invalid) refused.add(slot)

      const unfilled = open()
      if (unfilled.length > 0) {
        const content = yield* ask({ purpose: "slots", messages: messages(unfilled, goal), tier: "simple" }).pipe(
          Effect.map((response) => response.content),
          // The model only helps: whatever it could not fill stays for a default, or for the user to give.
          Effect.orElseSucceed(() => ""),
          Effect.provide(context)
        )
        const byModel = readAnswer(content, unfilled)
        for (const [name, value] of Object.entries(byModel.values)) set(name, value, "model")
        invalid.push(...byModel.invalid)
      }

      for (const slot of open()) {
        if (slot.default === undefined) continue
        Either.map(slotValue(slot, slot.default), (value) => set(slot.name, value, "default"))
      }

      return {
        values,
        missing: blueprint.slots.filter((slot) => (slot.required || refused.has(slot.name)) && !(slot.name in values)).map((slot) => slot.name),
        invalid,
        sources
      } satisfies Filled
    })
  return Slots.of({ fill })
})

/** Slot filling over the given model: `Effect.provide(Slots.layer)` beside an `Llm` layer. */
export const layer: Layer.Layer<Slots, never, Llm> = Layer.effect(Slots, make)
