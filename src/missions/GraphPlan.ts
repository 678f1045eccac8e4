import { Data, Either } from "effect"
import { type Edge, evaluate, type Graph } from "../domain/Blueprint.js"

/**
 * The scheduling rules of a mission's agent graph, as pure functions: given what each node has done so
 * far, which nodes start now, which are skipped and which fail. The driver owns the running (model calls,
 * budgets, checkpoints) and calls `step` after every change; nothing here runs or waits for anything.
 *
 * The graph is one that passes `Blueprint.problems`: acyclic, every node reachable from the entry, no
 * edge into the entry. (A node of a cycle would only ever stay pending.)
 */

export type NodeId = string

/**
 * Where one node stands. `output` is what conditions on the node's outgoing edges read and what its
 * successors are given: the decoded value when the node has an `output_schema`, else its answer text.
 */
export type NodeState = Data.TaggedEnum<{
  Pending: {}
  Running: {}
  Succeeded: { readonly output: unknown }
  Skipped: {}
  Failed: { readonly reason: string }
}>
export const NodeState = Data.taggedEnum<NodeState>()

/** Every node's state; a node that is absent is pending. */
export type States = ReadonlyMap<NodeId, NodeState>

/** The states of a mission that has not started: every node pending. */
export const initial = (graph: Graph): States => new Map(graph.nodes.map((node) => [node.id, NodeState.Pending()]))

/** What the driver does next. */
export interface Step {
  /** Nodes to start now: every input resolved, at least one taken (the entry at the start). */
  readonly ready: ReadonlyArray<NodeId>
  /** Nodes that will never run: every input resolved and none taken, including chains after them. */
  readonly skipped: ReadonlyArray<NodeId>
  /** Nodes that fail without running, with why: a condition on an edge into them cannot be judged. */
  readonly failed: ReadonlyArray<{ readonly node: NodeId; readonly reason: string }>
  /**
   * True when, once `skipped` and `failed` are recorded, nothing is running and nothing can start: the
   * mission's graph is done, with every node succeeded or skipped, or failed with the failed nodes named.
   */
  readonly finished: boolean
}

/** Where an edge stands for its target. */
type EdgeState =
  | { readonly _tag: "Unresolved" }
  | { readonly _tag: "Taken" }
  | { readonly _tag: "NotTaken" }
  | { readonly _tag: "Unjudgeable"; readonly reason: string }

const edgeState = (edge: Edge, states: States): EdgeState => {
  const source = states.get(edge.from) ?? NodeState.Pending()
  switch (source._tag) {
    case "Pending":
    case "Running":
      return { _tag: "Unresolved" }
    case "Skipped":
    case "Failed":
      return { _tag: "NotTaken" }
    case "Succeeded":
      if (edge.when === undefined) return { _tag: "Taken" }
      return Either.match(evaluate(edge.when, source.output), {
        onLeft: (why) => ({
          _tag: "Unjudgeable",
          reason: `the condition on the edge ${edge.from} → ${edge.to} cannot be judged on ${edge.from}'s output: ${why}`
        }),
        onRight: (holds): EdgeState => ({ _tag: holds ? "Taken" : "NotTaken" })
      })
  }
}

/** Per graph, its edges by target and its topological order: worked out once, since the driver steps after every node. */
const shapes = new WeakMap<Graph, { readonly into: ReadonlyMap<NodeId, ReadonlyArray<Edge>>; readonly order: ReadonlyArray<NodeId> }>()

const shapeOf = (graph: Graph) => {
  let shape = shapes.get(graph)
  if (shape === undefined) {
    const into = new Map<NodeId, Array<Edge>>(graph.nodes.map((node) => [node.id, []]))
    for (const edge of graph.edges) into.get(edge.to)?.push(edge)
    shape = { into, order: topological(graph) }
    shapes.set(graph, shape)
  }
  return shape
}

const incoming = (graph: Graph, node: NodeId): ReadonlyArray<Edge> => shapeOf(graph).into.get(node) ?? []

/**
 * The graph's nodes, parents before children (Kahn's order, ties in the order the blueprint lists them),
 * so that one pass settles a whole chain of skips.
 */
const topological = (graph: Graph): ReadonlyArray<NodeId> => {
  const remaining = new Map(graph.nodes.map((node) => [node.id, graph.edges.filter((edge) => edge.to === node.id).length]))
  const order: Array<NodeId> = []
  const queue = graph.nodes.map((node) => node.id).filter((id) => remaining.get(id) === 0)
  while (queue.length > 0) {
    const id = queue.shift()!
    order.push(id)
    for (const edge of graph.edges) {
      if (edge.from !== id) continue
      const left = remaining.get(edge.to)! - 1
      remaining.set(edge.to, left)
      if (left === 0) queue.push(edge.to)
    }
  }
  return order
}

/**
 * What happens next, from every node's state. The rules:
 * - the entry is ready at the start;
 * - an edge is resolved once its source has succeeded (taken when it has no condition or its condition
 *   holds on the source's output), been skipped or failed (not taken);
 * - a node is ready when every edge into it is resolved and at least one is taken, skipped when every
 *   one is resolved and none is taken: a join after a skipped branch runs on its remaining inputs, and a
 *   chain after a skipped node is skipped all the way, in this one step;
 * - a condition that cannot be judged fails the edge's target, naming the edge and why, as soon as the
 *   source has succeeded;
 * - once a node has failed, nothing new starts (the mission fails, naming it): nodes already running
 *   finish, the nodes after it stay pending, and `finished` is true when none is running.
 */
export const step = (graph: Graph, states: States): Step => {
  const now = new Map(states)
  const ready: Array<NodeId> = []
  const skipped: Array<NodeId> = []
  const failed: Array<{ node: NodeId; reason: string }> = []
  for (const id of shapeOf(graph).order) {
    if ((now.get(id) ?? NodeState.Pending())._tag !== "Pending") continue
    if (id === graph.entry) {
      ready.push(id)
      now.set(id, NodeState.Running())
      continue
    }
    const inputs = incoming(graph, id).map((edge) => edgeState(edge, now))
    const unjudgeable = inputs.find((input) => input._tag === "Unjudgeable")
    if (unjudgeable !== undefined) {
      failed.push({ node: id, reason: unjudgeable.reason })
      now.set(id, NodeState.Failed({ reason: unjudgeable.reason }))
    } else if (inputs.every((input) => input._tag !== "Unresolved")) {
      if (inputs.some((input) => input._tag === "Taken")) {
        ready.push(id)
        now.set(id, NodeState.Running())
      } else {
        skipped.push(id)
        now.set(id, NodeState.Skipped())
      }
    }
  }
  const running = (of: States) => [...of.values()].some((state) => state._tag === "Running")
  if ([...now.values()].some((state) => state._tag === "Failed")) {
    // A failed mission starts nothing more: what this pass found ready or skippable stays pending.
    return { ready: [], skipped: [], failed, finished: !running(states) }
  }
  return { ready, skipped, failed, finished: !running(now) }
}

/**
 * The outputs a node is given, by the id of the node that produced them: those of its predecessors whose
 * edge into it is taken, in full. (A prompt's `{node.output}` may also name an earlier ancestor; its
 * output is in the ancestor's `Succeeded` state.)
 */
export const inputsOf = (graph: Graph, node: NodeId, states: States): Readonly<Record<NodeId, unknown>> => {
  const inputs: Record<NodeId, unknown> = {}
  for (const edge of incoming(graph, node)) {
    const source = states.get(edge.from)
    if (source?._tag === "Succeeded" && edgeState(edge, states)._tag === "Taken") inputs[edge.from] = source.output
  }
  return inputs
}
