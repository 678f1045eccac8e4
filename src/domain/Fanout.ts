import { Effect, Schema } from "effect"
import { BadInput } from "./Errors.js"
import { Goal } from "./Goal.js"
import type { RunStatus } from "./RunStatus.js"
import { slug } from "./Slug.js"

/** A child that fans out in turn: its item, and the fan-out it runs over its own items. */
export interface NestedFanout {
  readonly item: string
  readonly template: string
  readonly items: ReadonlyArray<FanoutItem>
  /** Its children's criteria, `{item}` replaced; by default each child's objective is its one criterion. */
  readonly criteria?: ReadonlyArray<string>
  readonly max_parallel: number
}

/** One item of a fan-out: plain text, or a child that fans out in turn. */
export type FanoutItem = string | NestedFanout

export const FanoutItem: Schema.Schema<FanoutItem> = Schema.Union(
  Schema.String,
  Schema.suspend((): Schema.Schema<NestedFanout> => NestedFanout)
)

const NestedFanout = Schema.Struct({
  item: Schema.String,
  template: Schema.String,
  items: Schema.Array(FanoutItem),
  criteria: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  max_parallel: Schema.Int
})

/**
 * What a fan-out run was started with, kept in its checkpoint so a resume runs the same children. Its
 * criteria are the run's own goal's (templates too); the child run ids follow from the items.
 */
export const FanoutSpec = Schema.Struct({
  template: Schema.String,
  items: Schema.Array(FanoutItem),
  max_parallel: Schema.Int
})
export type FanoutSpec = typeof FanoutSpec.Type

export const sameSpec = Schema.equivalence(FanoutSpec)

export const PLACEHOLDER = "{item}"

/** Defaults: at most 4 children at a time, 100,000 items, 3 levels of fan-out. */
export const defaults = { maxParallel: 4, maxItems: 100_000, maxDepth: 3 } as const

/** The largest `max_parallel`: more children at a time than any machine runs. */
export const MAX_PARALLEL = 100_000

/** An items file: one item a line; blank lines and lines starting with `#` are skipped, the rest trimmed. */
export const itemsOfText = (text: string): ReadonlyArray<string> =>
  text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"))

export const itemText = (item: FanoutItem): string => (typeof item === "string" ? item : item.item)

export const fill = (text: string, item: string): string => text.replaceAll(PLACEHOLDER, item)

/** With no criteria given, each child's objective is its one criterion, as for `autopilot run`. */
export const defaultCriteria = (template: string): ReadonlyArray<string> => [`The objective is achieved: ${template}`]

/** The goal of a fan-out run: its template as objective, and its children's criteria as templates. */
export const parentGoal = (objective: string, template: string, criteria: ReadonlyArray<string> | undefined): Goal =>
  new Goal({
    objective,
    success_criteria: (criteria !== undefined && criteria.length > 0 ? criteria : defaultCriteria(template)) as [string, ...Array<string>]
  })

/** A child's goal: the template and the parent's criteria with `{item}` replaced; a nested fan-out keeps its own criteria. */
export const childGoal = (parent: Goal, template: string, item: FanoutItem): Goal =>
  typeof item === "string"
    ? new Goal({
      objective: fill(template, item),
      success_criteria: parent.success_criteria.map((c) => fill(c, item)) as [string, ...Array<string>]
    })
    : parentGoal(fill(template, item.item), item.template, item.criteria)

const RUN_ID_MAX = 128
const SLUG_MAX = 40

/** An item as a run id may spell it. */
export const slugOf = (item: string): string => slug(item, SLUG_MAX)

/** `<parent>.<index>-<slug>`, the slug cut short (or left out) so the id stays within 128 characters. */
export const childRunId = (parent: string, index: number, item: string): string => {
  const base = `${parent}.${index}`
  const slug = slugOf(item).slice(0, Math.max(0, RUN_ID_MAX - base.length - 1)).replace(/-+$/, "")
  return slug === "" ? base : `${base}-${slug}`
}

export interface Child {
  readonly index: number
  readonly run_id: string
  readonly item: FanoutItem
}

export const childrenOf = (parent: string, spec: FanoutSpec): ReadonlyArray<Child> =>
  spec.items.map((item, index) => ({ index, run_id: childRunId(parent, index, itemText(item)), item }))

/** Every run the fan-out `parent` makes, whether it ran or not: its children, and theirs for a child that fans out in turn. */
export const descendantsOf = (parent: string, spec: FanoutSpec): ReadonlyArray<string> =>
  childrenOf(parent, spec).flatMap((child) =>
    typeof child.item === "string" ? [child.run_id] : [child.run_id, ...descendantsOf(child.run_id, child.item)])

/**
 * The fan-out a run would be a child of, by its id (`<parent>.<index>-<slug>`: neither index nor slug has
 * a `.`); only that fan-out's spec says whether it is.
 */
export const parentIdOf = (runId: string): string | undefined => {
  const dot = runId.lastIndexOf(".")
  return dot > 0 ? runId.slice(0, dot) : undefined
}

const problem = (message: string) => Effect.fail(new BadInput({ message }))

const nonEmpty = (text: string) => text.trim() !== ""

/**
 * Why a fan-out cannot start, as one line, before anything is written: a template without `{item}`, no
 * items or too many, an empty item or criterion, a `max_parallel` that is not a whole number from 1, a
 * tree nested deeper than `maxDepth`, or child run ids that cannot fit in 128 characters.
 */
export const check = (
  runId: string,
  spec: FanoutSpec,
  criteria: ReadonlyArray<string> | undefined,
  limits: { readonly maxItems: number; readonly maxDepth: number },
  depth = 1,
  where = "the fan-out"
): Effect.Effect<void, BadInput> =>
  Effect.gen(function*() {
    if (depth > limits.maxDepth) {
      return yield* problem(`${where} is fan-out level ${depth}; at most ${limits.maxDepth} levels of nested fan-out are allowed`)
    }
    if (!nonEmpty(spec.template)) return yield* problem(`${where} needs a non-empty template with ${PLACEHOLDER} where each item goes`)
    if (!spec.template.includes(PLACEHOLDER)) {
      return yield* problem(`the template "${spec.template}" of ${where} has no ${PLACEHOLDER}: each child's objective is the template with ${PLACEHOLDER} replaced by its item`)
    }
    if (spec.items.length === 0) return yield* problem(`${where} needs at least one item`)
    if (spec.items.length > limits.maxItems) {
      return yield* problem(`${where} has ${spec.items.length} items, more than the maximum of ${limits.maxItems}`)
    }
    if (!Number.isInteger(spec.max_parallel) || spec.max_parallel < 1 || spec.max_parallel > MAX_PARALLEL) {
      return yield* problem(`max parallel of ${where} must be a whole number from 1 to ${MAX_PARALLEL}, got ${spec.max_parallel}`)
    }
    if (criteria !== undefined && !criteria.every(nonEmpty)) return yield* problem(`every criterion of ${where} must be non-empty text`)
    const last = `${runId}.${spec.items.length - 1}`
    if (last.length > RUN_ID_MAX) {
      return yield* problem(`run id "${runId}" is too long for ${where}: its children's ids (${last}) must fit in ${RUN_ID_MAX} characters`)
    }
    for (const [index, item] of spec.items.entries()) {
      if (!nonEmpty(itemText(item))) return yield* problem(`item ${index + 1} of ${where} is empty: every item must be non-empty text`)
      if (typeof item !== "string") {
        yield* check(childRunId(runId, index, item.item), item, item.criteria, limits, depth + 1, `the fan-out of item "${item.item}"`)
      }
    }
  })

/** How a child ended, or that it never started (the fan-out was stopped first, or its budget had nothing left). */
export type ChildStatus = Exclude<RunStatus, "running"> | "not_started"

/** How many children ended in each status. */
export interface Rollup {
  readonly completed: number
  readonly partial: number
  readonly halted: number
  readonly failed: number
  readonly not_started: number
}

export const rollupOf = (statuses: ReadonlyArray<ChildStatus>): Rollup => {
  const count = (status: ChildStatus) => statuses.filter((s) => s === status).length
  return { completed: count("completed"), partial: count("partial"), halted: count("halted"), failed: count("failed"), not_started: count("not_started") }
}

/**
 * A fan-out's status from its children's, by the rules of a single run: `completed` when every child
 * completed; `partial` when some child completed or got partway; `failed` only when every child failed
 * (nothing was achieved and nothing was stopped: each one crashed); otherwise `halted` (stopped, or
 * out of budget, before any child met a criterion).
 */
export const statusOfRollup = (rollup: Rollup): Exclude<RunStatus, "running"> => {
  const total = rollup.completed + rollup.partial + rollup.halted + rollup.failed + rollup.not_started
  if (rollup.completed === total) return "completed"
  if (rollup.completed + rollup.partial > 0) return "partial"
  return rollup.failed === total ? "failed" : "halted"
}

export const describeRollup = (rollup: Rollup): string =>
  `${rollup.completed} completed, ${rollup.partial} partial, ${rollup.halted} halted, ${rollup.failed} failed, ${rollup.not_started} not started`
