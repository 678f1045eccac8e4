import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Either, Exit, FastCheck as fc, Fiber, Option, Ref, TestClock } from "effect"
import * as Budget from "../../src/budget/Budget.js"
import * as Slices from "../../src/budget/Slices.js"
import { BudgetPolicy, BudgetUsage, capOf, haltReasonFor } from "../../src/domain/Budget.js"

const usage = (fields: Partial<BudgetUsage>) => new BudgetUsage({ ...BudgetUsage.zero, ...fields })

const policy = (fields: Partial<BudgetPolicy>) =>
  new BudgetPolicy({ max_seconds: 0, max_tool_calls: 0, max_tokens: 0, max_dollars: 0, max_iterations: 0, ...fields })

describe("Slices", () => {
  describe("the slice rule", () => {
    it("gives each child an equal share of what is left among the children not yet started", () => {
      const slice = Slices.sliceOf(
        policy({ max_tool_calls: 10, max_tokens: 1000, max_dollars: 3, max_iterations: 20 }),
        usage({ tool_calls: 1, tokens: 100, dollars: 1, iterations: 2 }),
        usage({ tool_calls: 3, tokens: 300, dollars: 0.5, iterations: 6 }),
        4
      )
      assert.deepStrictEqual(Either.getOrThrow(slice), usage({ tool_calls: 1, tokens: 150, dollars: 0.375, iterations: 3 }))
    })

    it("rounds whole-number axes down, but never below 1 while any is left", () => {
      const slice = Slices.sliceOf(policy({ max_iterations: 3, max_tool_calls: 100 }), BudgetUsage.zero, BudgetUsage.zero, 10)
      assert.deepStrictEqual(Either.getOrThrow(slice), usage({ iterations: 1, tool_calls: 10 }))
    })

    it("keeps a disabled axis disabled: slice 0, cap 0", () => {
      const parent = policy({ max_iterations: 10 })
      const slice = Either.getOrThrow(Slices.sliceOf(parent, BudgetUsage.zero, BudgetUsage.zero, 2))
      assert.deepStrictEqual(slice, usage({ iterations: 5 }))
      const caps = Slices.policyOf(parent, BudgetUsage.zero, slice, Option.none())
      assert.deepStrictEqual(caps, policy({ max_iterations: 5 }))
    })

    it("names the axis with nothing left", () => {
      const parent = policy({ max_iterations: 10, max_dollars: 1 })
      assert.deepStrictEqual(Slices.sliceOf(parent, usage({ iterations: 4 }), usage({ iterations: 6 }), 1), Either.left("iterations"))
      assert.deepStrictEqual(Slices.sliceOf(parent, usage({ dollars: 0.6 }), usage({ dollars: 0.4 }), 3), Either.left("dollars"))
    })

    it("caps a resumed child at what it spent before plus its slice, and its seconds at the parent's deadline", () => {
      const parent = policy({ max_seconds: 600, max_iterations: 10, max_tokens: 1000 })
      const caps = Slices.policyOf(parent, usage({ seconds: 30, iterations: 2, tokens: 100 }), usage({ iterations: 3, tokens: 200 }), Option.some(90))
      assert.deepStrictEqual(caps, policy({ max_seconds: 120, max_iterations: 5, max_tokens: 300 }))
    })

    it("keeps a child's dollar cap without float noise, so its halt reason reads as money", () => {
      const caps = Slices.policyOf(policy({ max_dollars: 1 }), usage({ dollars: 0.1 }), usage({ dollars: 0.2 }), Option.none())
      assert.strictEqual(caps.max_dollars, 0.3)
      assert.strictEqual(haltReasonFor("dollars", caps, usage({ dollars: 0.31 })), "dollar limit reached: $0.3100 of $0.30")
    })
  })

  describe("withSlice", () => {
    it.effect("charges what the child spent and returns the rest of its slice for the children after it", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(policy({ max_iterations: 9 }), BudgetUsage.zero)
        const slices = yield* Slices.make(budget, 3)
        const seen: Array<number> = []
        for (const spend of [1, 2, 4]) {
          yield* slices.withSlice(
            BudgetUsage.zero,
            (r) => Effect.sync(() => seen.push(r.policy.max_iterations)),
            () => Effect.succeed(usage({ iterations: spend }))
          )
        }
        // 9/3 = 3; then (9-1)/2 = 4; then 9-1-2 = 6.
        assert.deepStrictEqual(seen, [3, 4, 6])
        assert.strictEqual((yield* budget.usage).iterations, 7)
        assert.deepStrictEqual((yield* slices.snapshot).held, BudgetUsage.zero)
      }))

    it.effect("a child with nothing left waits for a running sibling to return some, and starts with it", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(policy({ max_iterations: 1 }), BudgetUsage.zero)
        const slices = yield* Slices.make(budget, 2)
        const release = yield* Deferred.make<void>()
        const first = yield* Effect.fork(slices.withSlice(BudgetUsage.zero, () => Deferred.await(release), () => Effect.succeed(BudgetUsage.zero)))
        yield* Effect.yieldNow()
        const second = yield* Effect.fork(slices.withSlice(BudgetUsage.zero, (r) => Effect.succeed(r.policy.max_iterations), () => Effect.succeed(usage({ iterations: 1 }))))
        yield* Effect.yieldNow()
        assert.isNull(second.unsafePoll())
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(first)
        assert.deepStrictEqual(yield* Fiber.join(second), Either.right(1))
      }))

    it.effect("with no sibling running and nothing left, the child is not started", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(policy({ max_tool_calls: 2 }), usage({ tool_calls: 2 }))
        const slices = yield* Slices.make(budget, 1)
        const ran = yield* slices.withSlice(BudgetUsage.zero, () => Effect.die("must not run"), () => Effect.succeed(BudgetUsage.zero))
        assert.deepStrictEqual(ran, Either.left("tool_calls"))
      }))

    it.effect("seconds are a deadline: every child may run until the parent's wall clock runs out, none after", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(policy({ max_seconds: 100 }), BudgetUsage.zero)
        const slices = yield* Slices.make(budget, 3)
        const caps = (spent: BudgetUsage) =>
          slices.withSlice(spent, (r) => Effect.succeed(r.policy.max_seconds), () => Effect.succeed(spent))
        yield* TestClock.adjust("40 seconds")
        assert.deepStrictEqual(yield* caps(BudgetUsage.zero), Either.right(60))
        // A resumed child's seconds are its own, cumulative: it too must end by the parent's deadline.
        assert.deepStrictEqual(yield* caps(usage({ seconds: 15 })), Either.right(75))
        yield* TestClock.adjust("60 seconds")
        assert.deepStrictEqual(yield* caps(BudgetUsage.zero), Either.left("seconds"))
      }))

    it.effect("a child interrupted while it runs is still settled, with what it says it spent", () =>
      Effect.gen(function*() {
        const budget = yield* Budget.make(policy({ max_tokens: 100 }), BudgetUsage.zero)
        const slices = yield* Slices.make(budget, 1)
        const fiber = yield* Effect.fork(slices.withSlice(
          BudgetUsage.zero,
          () => Effect.never,
          (exit) => Effect.succeed(Exit.isInterrupted(exit) ? usage({ tokens: 7 }) : BudgetUsage.zero)
        ))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(fiber)
        const { held, used } = yield* slices.snapshot
        assert.strictEqual(used.tokens, 7)
        assert.deepStrictEqual(held, BudgetUsage.zero)
      }))
  })

  /** A fan-out tree: a leaf spends a fraction of its slice (or fails part-way); a node fans out over its children. */
  interface Node {
    readonly spend: number
    readonly fails: boolean
    readonly parallel: number
    readonly children: ReadonlyArray<Node>
  }

  const nodeOf = (depth: number): fc.Arbitrary<Node> =>
    fc.record({
      // Up to 1.5 of a slice: tokens and dollars can only be checked between iterations, so a child's last
      // iteration may overshoot, as a lone run's may. Tool calls and iterations never do.
      spend: fc.double({ min: 0, max: 1.5, noNaN: true }),
      fails: fc.boolean(),
      parallel: fc.integer({ min: 1, max: 4 }),
      children: depth === 0 ? fc.constant([]) : fc.array(nodeOf(depth - 1), { maxLength: 5 })
    })

  const caps = fc.record({
    max_seconds: fc.constant(0),
    max_tool_calls: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
    max_tokens: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
    max_dollars: fc.oneof(fc.constant(0), fc.double({ min: 0.01, max: 10, noNaN: true })),
    max_iterations: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }))
  })

  /** What a leaf spends of its slice; on a disabled axis, an amount of its own. */
  const spentBy = (node: Node, r: Slices.Reservation) => {
    const exact = Math.min(1, node.spend)
    const of = (slice: number, unbounded: number, fraction: number) => (slice === 0 ? unbounded * node.spend : slice * fraction)
    return usage({
      tool_calls: Math.floor(of(r.slice.tool_calls, 3, exact)),
      iterations: Math.floor(of(r.slice.iterations, 3, exact)),
      tokens: Math.floor(of(r.slice.tokens, 500, node.spend)),
      dollars: of(r.slice.dollars, 0.25, node.spend)
    })
  }

  const over = (spent: BudgetUsage, slice: BudgetUsage) =>
    usage({
      tool_calls: Math.max(0, spent.tool_calls - slice.tool_calls),
      tokens: Math.max(0, spent.tokens - slice.tokens),
      dollars: Math.max(0, spent.dollars - slice.dollars),
      iterations: Math.max(0, spent.iterations - slice.iterations)
    })

  const sum = (a: BudgetUsage, b: BudgetUsage) =>
    usage({ tool_calls: a.tool_calls + b.tool_calls, tokens: a.tokens + b.tokens, dollars: a.dollars + b.dollars, iterations: a.iterations + b.iterations })

  /** Checks the invariant at one instant: use plus reservations within the cap, but for what children overshot. */
  const within = (cap: BudgetPolicy, slices: Slices.Slices, overshoot: Ref.Ref<BudgetUsage>) =>
    Effect.gen(function*() {
      const { held, used } = yield* slices.snapshot
      const extra = yield* Ref.get(overshoot)
      for (const axis of Slices.SharedAxes) {
        const max = capOf(cap, axis)
        if (max === 0) continue
        assert.isAtMost(used[axis] + held[axis], max + extra[axis] + max * 1e-9, `${axis}: used ${used[axis]} + held ${held[axis]} > cap ${max} + overshoot ${extra[axis]}`)
      }
    })

  /** Runs a node's fan-out under `cap`; returns what it spent in all, having checked its usage is its own plus its children's. */
  const fanOut = (node: Node, cap: BudgetPolicy): Effect.Effect<BudgetUsage> =>
    Effect.gen(function*() {
      const own = usage({ iterations: capOf(cap, "iterations") > 1 ? 1 : 0 })
      const budget = yield* Budget.make(cap, BudgetUsage.zero)
      yield* budget.charge(own)
      const slices = yield* Slices.make(budget, node.children.length)
      const overshoot = yield* Ref.make(BudgetUsage.zero)
      const children = yield* Ref.make(BudgetUsage.zero)
      yield* within(cap, slices, overshoot)
      yield* Effect.forEach(node.children, (child) =>
        slices.withSlice(
          BudgetUsage.zero,
          (r) =>
            Effect.gen(function*() {
              yield* within(cap, slices, overshoot)
              yield* Effect.yieldNow()
              const spent = child.children.length > 0 ? yield* fanOut(child, r.policy) : spentBy(child, r)
              yield* Ref.update(overshoot, (o) => sum(o, over(spent, r.slice)))
              yield* Ref.update(children, (c) => sum(c, spent))
              // A child that fails still spent what it spent, and its siblings go on.
              return child.fails ? yield* Effect.fail(spent) : spent
            }),
          Exit.match({ onSuccess: Effect.succeed, onFailure: (cause) => Effect.succeed(Option.getOrThrow(Cause.failureOption(cause))) })
        ).pipe(
          Effect.either,
          Effect.zipLeft(within(cap, slices, overshoot))
        ), { concurrency: node.parallel, discard: true })
      const used = yield* budget.usage
      const expected = sum(own, yield* Ref.get(children))
      assert.strictEqual(used.iterations, expected.iterations)
      assert.strictEqual(used.tool_calls, expected.tool_calls)
      assert.strictEqual(used.tokens, expected.tokens)
      assert.closeTo(used.dollars, expected.dollars, 1e-9)
      return usage({ tool_calls: used.tool_calls, tokens: used.tokens, dollars: used.dollars, iterations: used.iterations })
    })

  it.effect.prop(
    "over random trees, use plus reservations never exceed the cap but for overshoot, and use is exactly own plus children's",
    [caps, fc.integer({ min: 1, max: 3 }).chain(nodeOf)],
    ([cap, tree]) => Effect.asVoid(fanOut(tree, new BudgetPolicy(cap))),
    { fastCheck: { numRuns: 150 } }
  )

  it.effect.prop(
    "with children that never overshoot, use plus reservations stay within the cap at every instant",
    [caps, fc.integer({ min: 1, max: 3 }).chain((depth) => nodeOf(depth).map(function capped(node): Node {
      return { ...node, spend: Math.min(1, node.spend), children: node.children.map(capped) }
    }))],
    ([cap, tree]) => Effect.asVoid(fanOut(tree, new BudgetPolicy(cap))),
    { fastCheck: { numRuns: 150 } }
  )
})
