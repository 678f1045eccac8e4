import type { BlueprintEncoded } from "../domain/Blueprint.js"
import { slug } from "../domain/Slug.js"

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

/** Braces would read as `{slot}` references to slots a generic blueprint does not have. */
const quoted = (goal: string) => goal.replace(/\{/g, "(").replace(/\}/g, ")")

/**
 * The blueprint the mock model writes for a goal when no script says otherwise: valid for any goal, with
 * no slots, a worker that does the goal and a reviewer that checks and fixes its result.
 */
export const forGoal = (goal: string): BlueprintEncoded => {
  const text = oneLine(goal) === "" ? "the goal" : oneLine(goal)
  const title = text.length <= 80 ? text : `${text.slice(0, 79)}…`
  const name = slug(text, 60).replace(/-/g, "_")
  return {
    id: `synthetic_${name === "" ? "goal" : name}`,
    version: 1,
    title: title.charAt(0).toUpperCase() + title.slice(1),
    description: `Written for the goal: ${text}`,
    category: "synthesized",
    example_goals: [text],
    mode: "once",
    slots: [],
    graph: {
      entry: "work",
      nodes: [
        {
          id: "work",
          role: "A capable generalist who plans the goal, carries it out step by step and writes up the result.",
          prompt: `Carry out this goal and write up the result: ${quoted(text)}`,
          model_tier: "medium"
        },
        {
          id: "review",
          role: "A sceptical reviewer who checks work against its goal and fixes what falls short.",
          prompt: `Check this work against the goal (${quoted(text)}), fix what falls short and give the final result.\n\n{work.output}`,
          model_tier: "medium"
        }
      ],
      edges: [{ from: "work", to: "review" }]
    },
    success_criteria: [`The goal is done: ${text}`, "A reviewer checked the result against the goal and fixed what fell short"],
    budget: {},
    curation: { capture: true, tags: ["synthesized"] }
  }
}
