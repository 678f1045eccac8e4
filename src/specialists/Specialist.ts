import { Schema } from "effect"
import { Tier } from "../domain/Tier.js"

const Slug = Schema.String.pipe(Schema.pattern(/^[a-z0-9]+(-[a-z0-9]+)*$/, {
  message: () => "must be lowercase letters and digits in dash-separated words, like security-auditor"
}))

const Text = Schema.String.pipe(Schema.filter((s) => s.trim() !== "", { message: () => "must be non-empty text" }))

/** A tool as the toolkit names it (`read_file`). */
export const ToolName = Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_]*$/, {
  message: () => "must be a tool name such as read_file"
}))

// A list's problems are its items'; anything else is neither form. An empty message is one a reader
// does not need (the list form's view of a string, the "all" form's view of a list).
const notAList = `must be "all" or a list of tool names ([] for none)`
const all = Schema.Literal("all").annotations({ message: (issue) => (Array.isArray(issue.actual) ? "" : notAList) })

/** `"all"`: every tool of the mission's toolkit; a list: only those (`[]`: none). */
export const allowedTools = <I>(tool: Schema.Schema<string, I>) =>
  Schema.Union(all, Schema.Array(tool).annotations({ message: (issue) => ({ message: "", override: !Array.isArray(issue.actual) }) }))
export const AllowedTools = allowedTools(ToolName)
export type AllowedTools = typeof AllowedTools.Type

/**
 * A role a mission can run as: who it is and how it works (written into the act prompt), the tools it may
 * call, and the model tier it asks for. Built-in roles and users' own files are both this.
 */
export const Specialist = Schema.Struct({
  id: Slug,
  name: Text,
  /** Free text in the id's form (`engineering`, `legal`); users may add categories of their own. */
  category: Slug,
  /** One sentence: what the role is. */
  role: Text,
  /** What the role is after in every mission. */
  goal: Text,
  /** The experience the role draws on. */
  background: Text,
  /** How the role works, one practice each. */
  instructions: Schema.NonEmptyArray(Text).annotations({
    message: (issue) => ({ message: "must be a list of at least one instruction", override: Array.isArray(issue.actual) && issue.actual.length === 0 })
  }),
  allowed_tools: AllowedTools,
  model_tier: Tier.annotations({ message: () => ({ message: `must be "simple", "medium" or "complex"`, override: true }) })
})
export type Specialist = typeof Specialist.Type

/** Whether the role may call `tool`. */
export const allows = (specialist: Specialist, tool: string): boolean =>
  specialist.allowed_tools === "all" || specialist.allowed_tools.includes(tool)

/** `all tools`, `none`, or the names. */
export const describeTools = (tools: AllowedTools): string =>
  tools === "all" ? "all tools" : tools.length === 0 ? "none" : tools.join(", ")
