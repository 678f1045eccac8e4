import { Schema } from "effect"

const Text = Schema.String.pipe(
  Schema.filter((s) => s.trim().length > 0, { message: () => "must not be empty" })
)

/** What a mission is for: an objective and the criteria that say it is done. */
export class Goal extends Schema.Class<Goal>("Goal")({
  objective: Text,
  success_criteria: Schema.NonEmptyArray(Text)
}) {}
