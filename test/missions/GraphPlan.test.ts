import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Condition, Graph } from "../../src/domain/Blueprint.js"
import { initial, inputsOf, type NodeId, NodeState, type States, step, type Step } from "../../src/missions/GraphPlan.js"

interface EdgeSpec {
  readonly from: string
  readonly to: string
  readonly when?: Condition
}

/** A graph of these edges, run from `entry`; its nodes are the ones the edges name. */
const graphOf = (entry: string, edges: ReadonlyArray<EdgeSpec>, lone: ReadonlyArray<string> = []): Graph => {
  const ids = [...new Set([entry, ...edges.flatMap((e) => [e.from, e.to]), ...lone])]
  const [first, ...rest] = ids.map((id) => ({ id, role: "A worker.", prompt: "Work.", tools: [], model_tier: "simple" as const }))
  return { entry, nodes: [first!, ...rest], edges }
}

/** The states after the driver has done what `next` says: ready nodes running, the rest marked. */
const apply = (states: States, next: Step): States => {
  const after = new Map(states)
  for (const id of next.ready) after.set(id, NodeState.Running())
  for (const id of next.skipped) after.set(id, NodeState.Skipped())
  for (const { node, reason } of next.failed) after.set(node, NodeState.Failed({ reason }))
  return after
}

const succeed = (states: States, id: NodeId, output: unknown = `${id}'s answer`): States =>
  new Map(states).set(id, NodeState.Succeeded({ output }))

/** Steps from `states` and applies the step; both back. */
const advance = (graph: Graph, states: States): readonly [Step, States] => {
  const next = step(graph, states)
  return [next, apply(states, next)]
}

const tagOf = (states: States, id: NodeId) => states.get(id)?._tag

const high: Condition = { field: "severity", op: "in", value: ["high", "critical"] }
const notHigh: Condition = { field: "severity", op: "not_in", value: ["high", "critical"] }

describe("GraphPlan.step", () => {
  it("at the start only the entry is ready, and the graph is not finished", () => {
    const graph = graphOf("plan", [{ from: "plan", to: "write" }])
    assert.deepStrictEqual(step(graph, initial(graph)), { ready: ["plan"], skipped: [], failed: [], finished: false })
    assert.deepStrictEqual(step(graph, new Map()).ready, ["plan"], "an absent node is pending")
  })

  it("two parallel branches become ready together once their common input succeeds", () => {
    const graph = graphOf("plan", [{ from: "plan", to: "left" }, { from: "plan", to: "right" }])
    const [, running] = advance(graph, initial(graph))
    assert.deepStrictEqual(step(graph, running), { ready: [], skipped: [], failed: [], finished: false }, "nothing starts while plan runs")
    const next = step(graph, succeed(running, "plan"))
    assert.deepStrictEqual(next, { ready: ["left", "right"], skipped: [], failed: [], finished: false })
  })

  it("a join waits for both of its inputs, then runs, then the graph is finished", () => {
    const graph = graphOf("plan", [{ from: "plan", to: "left" }, { from: "plan", to: "right" }, { from: "left", to: "join" }, {
      from: "right",
      to: "join"
    }])
    let [, states] = advance(graph, initial(graph))
    ;[, states] = advance(graph, succeed(states, "plan"))
    const [afterLeft] = advance(graph, (states = succeed(states, "left")))
    assert.deepStrictEqual(afterLeft.ready, [], "right still runs")
    const [afterRight, joined] = advance(graph, (states = succeed(states, "right")))
    assert.deepStrictEqual(afterRight.ready, ["join"])
    assert.isFalse(afterRight.finished)
    assert.deepStrictEqual(step(graph, succeed(joined, "join")), { ready: [], skipped: [], failed: [], finished: true })
  })

  it("a condition decides its edge on the source's output: taken one way, not taken and skipped the other", () => {
    const graph = graphOf("classify", [{ from: "classify", to: "escalate", when: high }, { from: "classify", to: "draft_reply", when: notHigh }])
    const [, running] = advance(graph, initial(graph))
    assert.deepStrictEqual(step(graph, succeed(running, "classify", { severity: "critical" })), {
      ready: ["escalate"],
      skipped: ["draft_reply"],
      failed: [],
      finished: false
    })
    const [low, states] = advance(graph, succeed(running, "classify", { severity: "low" }))
    assert.deepStrictEqual(low, { ready: ["draft_reply"], skipped: ["escalate"], failed: [], finished: false })
    assert.deepStrictEqual(step(graph, succeed(states, "draft_reply")), { ready: [], skipped: [], failed: [], finished: true })
  })

  it("a join after a skipped branch still runs once its remaining inputs are done (no langgraphjs #2666 here)", () => {
    const graph = graphOf("classify", [
      { from: "classify", to: "security_review", when: { field: "security", op: "equals", value: true } },
      { from: "classify", to: "analysis" },
      { from: "security_review", to: "report" },
      { from: "analysis", to: "report" }
    ])
    let [, states] = advance(graph, initial(graph))
    const [branch, after] = advance(graph, succeed(states, "classify", { security: false }))
    assert.deepStrictEqual(branch, { ready: ["analysis"], skipped: ["security_review"], failed: [], finished: false })
    assert.deepStrictEqual(step(graph, (states = succeed(after, "analysis", "the analysis"))), {
      ready: ["report"],
      skipped: [],
      failed: [],
      finished: false
    })
    assert.deepStrictEqual(inputsOf(graph, "report", states), { analysis: "the analysis" })
  })

  it("a chain after a skipped node is skipped all the way in one step, and the rest goes on", () => {
    const graph = graphOf("start", [
      { from: "start", to: "a", when: { field: "go", op: "equals", value: true } },
      { from: "a", to: "b" },
      { from: "b", to: "c" },
      { from: "start", to: "d" }
    ])
    const [, running] = advance(graph, initial(graph))
    const [next, states] = advance(graph, succeed(running, "start", { go: false }))
    assert.deepStrictEqual(next, { ready: ["d"], skipped: ["a", "b", "c"], failed: [], finished: false })
    assert.deepStrictEqual(step(graph, succeed(states, "d")), { ready: [], skipped: [], failed: [], finished: true })
  })

  it("a condition that cannot be judged fails its target with the reason, and nothing new starts", () => {
    const graph = graphOf("classify", [
      { from: "classify", to: "escalate", when: { field: "severity", op: "gt", value: 3 } },
      { from: "classify", to: "log" }
    ])
    const [, running] = advance(graph, initial(graph))
    const next = step(graph, succeed(running, "classify", { severity: "high" }))
    assert.deepStrictEqual(next, {
      ready: [],
      skipped: [],
      failed: [{
        node: "escalate",
        reason: `the condition on the edge classify → escalate cannot be judged on classify's output: severity is "high", not a number`
      }],
      finished: true
    })
  })

  it("a condition is judged as soon as its source succeeds: the target fails even while its other inputs run", () => {
    const graph = graphOf("start", [
      { from: "start", to: "slow" },
      { from: "start", to: "check" },
      { from: "check", to: "join", when: { field: "ok", op: "equals", value: true } },
      { from: "slow", to: "join" }
    ])
    let [, states] = advance(graph, initial(graph))
    ;[, states] = advance(graph, succeed(states, "start"))
    const [next, after] = advance(graph, succeed(states, "check", "plain text, not an object"))
    assert.deepStrictEqual(next.failed.map((f) => f.node), ["join"])
    assert.match(next.failed[0]!.reason, /check → join .*the output is "plain text, not an object", not an object with ok, so equals cannot be judged$/)
    assert.isFalse(next.finished, "slow still runs")
    assert.deepStrictEqual(step(graph, succeed(after, "slow")), { ready: [], skipped: [], failed: [], finished: true })
  })

  it("after a node fails nothing new starts: running nodes finish, then the graph is finished with the nodes after it pending", () => {
    const graph = graphOf("start", [{ from: "start", to: "a" }, { from: "a", to: "b" }, { from: "start", to: "c" }, { from: "c", to: "d" }])
    let [, states] = advance(graph, initial(graph))
    ;[, states] = advance(graph, succeed(states, "start"))
    states = new Map(states).set("a", NodeState.Failed({ reason: "the model refused" }))
    assert.deepStrictEqual(step(graph, states), { ready: [], skipped: [], failed: [], finished: false }, "c still runs")
    states = succeed(states, "c")
    assert.deepStrictEqual(step(graph, states), { ready: [], skipped: [], failed: [], finished: true }, "d does not start")
    assert.strictEqual(tagOf(states, "b"), "Pending")
    assert.strictEqual(tagOf(states, "d"), "Pending")
  })

  it("a node that no edge reaches is skipped, never run", () => {
    const graph = graphOf("start", [], ["stray"])
    assert.deepStrictEqual(step(graph, initial(graph)), { ready: ["start"], skipped: ["stray"], failed: [], finished: false })
  })
})

describe("GraphPlan.inputsOf", () => {
  it("gives the full outputs of the predecessors whose edge is taken, by id, and nothing of the others", () => {
    const report = { severity: "high", summary: "x".repeat(5_000) }
    const graph = graphOf("classify", [
      { from: "classify", to: "notes" },
      { from: "classify", to: "final", when: high },
      { from: "notes", to: "final" },
      { from: "classify", to: "other", when: notHigh },
      { from: "other", to: "final" }
    ])
    const states: States = new Map<NodeId, NodeState>([
      ["classify", NodeState.Succeeded({ output: report })],
      ["notes", NodeState.Succeeded({ output: "the notes" })],
      ["other", NodeState.Skipped()],
      ["final", NodeState.Pending()]
    ])
    assert.deepStrictEqual(inputsOf(graph, "final", states), { classify: report, notes: "the notes" })
    const lowStates = new Map(states).set("classify", NodeState.Succeeded({ output: { severity: "low" } }))
    assert.deepStrictEqual(inputsOf(graph, "final", lowStates), { notes: "the notes" }, "an edge not taken passes nothing")
    assert.deepStrictEqual(inputsOf(graph, "classify", states), {}, "the entry has no inputs")
  })
})

describe("GraphPlan laws", () => {
  /** A random DAG as in the Blueprint tests: node k > 0 has a parent below it; more edges only go up in index. */
  const dags = fc.integer({ min: 1, max: 9 }).chain((size) =>
    fc.record({
      size: fc.constant(size),
      parents: fc.tuple(...Array.from({ length: size }, (_, k) => fc.nat({ max: Math.max(0, k - 1) }))),
      extra: fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.nat({ max: size - 1 })), { maxLength: 15 }),
      // Per edge: no condition, or `score` at least / below a threshold; per node: the score it answers with.
      conditions: fc.array(fc.tuple(fc.constantFrom("none" as const, "gte" as const, "lt" as const), fc.integer({ min: 0, max: 9 })), { minLength: 30, maxLength: 30 }),
      scores: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: size, maxLength: size }),
      // Which running node finishes next, round by round.
      picks: fc.array(fc.nat(), { minLength: 1, maxLength: 20 })
    })
  )

  it.prop(
    "driven to the end: every node ends once, succeeded or skipped; none starts before its inputs are resolved; a node runs iff taken edges lead to it from the entry",
    [dags],
    ([{ conditions, extra, parents, picks, scores, size }]) => {
      const pairs = new Map<string, readonly [number, number]>()
      for (let k = 1; k < size; k++) pairs.set(`${parents[k]}-${k}`, [parents[k]!, k])
      for (const [a, b] of extra) if (a !== b) pairs.set(`${Math.min(a, b)}-${Math.max(a, b)}`, [Math.min(a, b), Math.max(a, b)])
      const edges = [...pairs.values()].map(([from, to], i): EdgeSpec => {
        const [op, threshold] = conditions[i]!
        return { from: `n${from}`, to: `n${to}`, ...(op === "none" ? {} : { when: { field: "score", op, value: threshold } }) }
      })
      const graph = graphOf("n0", edges, Array.from({ length: size }, (_, k) => `n${k}`))
      const scoreOf = (id: string) => scores[Number(id.slice(1))]!

      let states = initial(graph)
      const started: Array<NodeId> = []
      const skipped: Array<NodeId> = []
      for (let round = 0;; round++) {
        assert.isBelow(round, 2 * size + 2, "the graph settles within a bounded number of steps")
        const next = step(graph, states)
        assert.deepStrictEqual(next.failed, [])
        for (const id of [...next.ready, ...next.skipped]) assert.strictEqual(tagOf(states, id), "Pending", `${id} is decided once`)
        started.push(...next.ready)
        skipped.push(...next.skipped)
        states = apply(states, next)
        // Resolved by now: succeeded earlier, or skipped earlier or in this very step (never one that starts with it).
        for (const id of next.ready) {
          for (const edge of edges.filter((e) => e.to === id)) {
            assert.include(["Succeeded", "Skipped"], tagOf(states, edge.from), `${id} starts before ${edge.from} is resolved`)
          }
        }
        const again = step(graph, states)
        assert.deepStrictEqual([again.ready, again.skipped], [[], []], "a step decides everything that can be decided")
        const running = graph.nodes.map((n) => n.id).filter((id) => tagOf(states, id) === "Running")
        assert.strictEqual(next.finished, running.length === 0)
        if (next.finished) break
        const done = running[picks[round % picks.length]! % running.length]!
        states = succeed(states, done, { score: scoreOf(done) })
      }

      for (const node of graph.nodes) assert.include(["Succeeded", "Skipped"], tagOf(states, node.id), node.id)
      assert.strictEqual(new Set(started).size, started.length)
      assert.deepStrictEqual(started.filter((id) => skipped.includes(id)), [])
      assert.strictEqual(started.length + skipped.length, size)

      // The oracle: what the entry reaches over edges whose condition holds of the source's score.
      const takes = (edge: EdgeSpec) =>
        edge.when === undefined ||
        (edge.when.op === "gte" ? scoreOf(edge.from) >= (edge.when.value as number) : scoreOf(edge.from) < (edge.when.value as number))
      const reached = new Set(["n0"])
      for (let grew = true; grew;) {
        grew = false
        for (const edge of edges) {
          if (reached.has(edge.from) && !reached.has(edge.to) && takes(edge)) grew = reached.add(edge.to) !== undefined
        }
      }
      assert.deepStrictEqual([...started].sort(), [...reached].sort())
    }
  )
})
