import { Array as Arr, Effect, Equivalence, ParseResult, Schema } from "effect"
import { BadInput } from "./Errors.js"

const Text = Schema.String.pipe(
  Schema.filter((s) => s.trim().length > 0, { message: () => "must not be empty" })
)

/** What a mission is for: an objective and the criteria that say it is done. */
export class Goal extends Schema.Class<Goal>("Goal")({
  objective: Text,
  success_criteria: Schema.NonEmptyArray(Text)
}) {}

const sameCriteria = Arr.getEquivalence(Equivalence.string)

/** The same objective and criteria, in the same order. */
export const sameGoal = (a: Goal, b: Goal): boolean =>
  a.objective === b.objective && sameCriteria(a.success_criteria, b.success_criteria)

const decodeGoal = Schema.decodeUnknown(Goal)

/** A goal from an objective and criteria as a person types them; with no criteria, the objective itself is the one the judge checks. */
export const fromText = (objective: string, criteria: ReadonlyArray<string>): Effect.Effect<Goal, BadInput> =>
  decodeGoal({
    objective,
    success_criteria: criteria.length > 0 ? criteria : [`The objective is achieved: ${objective}`]
  }).pipe(
    Effect.mapError((e) => {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
      const field = issue?.path[0] === "objective" ? "the objective" : "every --criterion"
      return new BadInput({ message: `${field} must be non-empty text` })
    })
  )
