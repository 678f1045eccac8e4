import { Array as Arr, Equivalence, Schema } from "effect"

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
