import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { Curator } from "../../src/curator/Curator.js"
import { DatasetDefinition } from "../../src/curator/Dataset.js"
import { FineTuneJob } from "../../src/finetune/FineTuneJob.js"
import * as Promotions from "../../src/finetune/Promotions.js"
import { MockLlm, MockScript } from "../../src/llm/MockLlm.js"
import * as FineTuneStore from "../../src/store/FineTuneStore.js"
import * as PromotionStore from "../../src/store/PromotionStore.js"
import { sqlite } from "../support/Databases.js"

const cheap = "ft:gpt-4o-mini-2024-07-18:acme:coder:abc123"
const cheaper = "ft:gpt-4.1-nano-2025-04-14:acme:coder:def456"

/** Held-out lines as the curator exports them: a question each, and the answer that was accepted. */
const evalLines = Array.from({ length: 20 }, (_, i) =>
  JSON.stringify({
    messages: [
      { role: "system", content: "You are a careful engineer." },
      { role: "user", content: `Fix bug ${i}: the parser drops line ${i * 7}` },
      { role: "assistant", content: `Patched the parser so line ${i * 7} is kept.` }
    ]
  }))

/** A curator whose datasets are the definitions given, each holding `evalLines` in its eval split. */
const curatorOf = (definitions: ReadonlyArray<typeof DatasetDefinition.Encoded>) =>
  Layer.succeed(Curator, Curator.of({
    capture: Effect.die("not used"),
    datasets: Effect.die("not used"),
    show: (id) => {
      const found = definitions.find((d) => d.id === id)
      return found === undefined
        ? Effect.die(`no dataset ${id}`)
        : Effect.succeed({ definition: Schema.decodeSync(DatasetDefinition)(found), samples: 200, duplicates: 0, train: 180, eval: 20 })
    },
    lines: (_id, split) => (split === "eval" ? Stream.fromIterable(evalLines) : Stream.die("only the eval split is replayed")),
    export: () => Effect.die("not used")
  }))

const setup = (script: typeof MockScript.Encoded) =>
  Effect.gen(function*() {
    const services = yield* Layer.build(
      Promotions.layer({ tolerancePoints: 2, maxSamples: 50 }, { endpoints: false }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          FineTuneStore.layer,
          PromotionStore.layer,
          curatorOf([{ id: "specialist.coder", specialist: "coder" }, { id: "all" }]),
          MockLlm.layer(Schema.decodeSync(MockScript)(script))
        )),
        Layer.provide(sqlite.layer)
      )
    )
    const promotions = yield* Effect.provide(Promotions.Promotions, services)
    const jobs = yield* Effect.provide(FineTuneStore.FineTuneStore, services)
    /** A job of `dataset` that ended as `status`, with `model` when it succeeded. */
    const job = (model: string | null, options: { readonly dataset?: string; readonly status?: "succeeded" | "failed" } = {}) =>
      Effect.gen(function*() {
        const at = "2025-03-10T09:00:00.000Z"
        const claimed = Option.getOrThrow(
          yield* jobs.claim(
            FineTuneJob.claimed({
              id: `ft-${randomBytes(4).toString("hex")}`,
              dataset_id: options.dataset ?? "specialist.coder",
              snapshot: `sha256:${randomBytes(8).toString("hex")}`,
              samples: 200,
              file: "/data/train.jsonl",
              provider: "mock",
              base_model: "gpt-4o-mini-2024-07-18",
              at
            })
          )
        )
        yield* jobs.transition(claimed.id, "starting", {
          status: options.status ?? "succeeded",
          provider_job_id: "ftjob-1",
          fine_tuned_model: model,
          at,
          finished: true
        }, null)
        return claimed.id
      })
    const kinds = (id: string) => Effect.map(jobs.events(id), (events) => events.map((e) => e.kind))
    return { promotions, job, kinds }
  })

describe("Promotions", () => {
  it.scoped("a cheaper model that passes as often is promotable: the report compares both side by side, and promoting writes the route of the dataset's scope", () =>
    Effect.gen(function*() {
      const { job, kinds, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const id = yield* job(cheap)
      const report = yield* promotions.evaluate(id)
      assert.strictEqual(report.verdict, "promotable")
      assert.strictEqual(report.scope, "specialist:coder")
      assert.deepInclude(report.candidate, { model: cheap, samples: 20, passed: 20, pass_rate: 1, errors: 0 })
      assert.deepInclude(report.baseline, { model: "gpt-4o", samples: 20, passed: 20, pass_rate: 1, errors: 0 })
      // gpt-4o is $2.50/$10 a million tokens; the fine-tuned gpt-4o-mini $0.30/$1.20: both answer in as many tokens, so 0.12 of the cost.
      const ratio = report.candidate.cost_per_step_usd! / report.baseline.cost_per_step_usd!
      assert.closeTo(ratio, 0.12, 0.001)
      assert.match(report.reason, /^pass rate 100% against 100% \(tolerance 2 points\), 88% cheaper a step/)
      assert.isTrue(report.cost_usd > 0)

      const route = yield* promotions.promote(id)
      assert.deepInclude(route, { scope: "specialist:coder", model: cheap, job_id: id, evaluation_id: report.id, replaces: null, retired_at: null })
      assert.deepStrictEqual((yield* promotions.routes).map((r) => r.id), [route.id])
      assert.deepStrictEqual(yield* kinds(id), ["finetune_evaluated", "finetune_promoted"])
      // Promoting it again is said, not done twice.
      const again = yield* Effect.flip(promotions.promote(id))
      assert.strictEqual(again.message, `fine-tune job ${id} takes the traffic of specialist:coder already (route ${route.id})`)
    }))

  it.scoped("a model that passes more than the tolerance less often stays a candidate, and promoting it is refused with the report's reason", () =>
    Effect.gen(function*() {
      const { job, promotions } = yield* setup({ model: "gpt-4o", grades: { [cheap]: 0.5 } })
      const id = yield* job(cheap)
      const report = yield* promotions.evaluate(id)
      assert.strictEqual(report.verdict, "candidate")
      assert.isTrue(report.candidate.passed < 18, String(report.candidate.passed))
      assert.strictEqual(report.baseline.passed, 20)
      assert.match(report.reason, /^pass rate \d+% is more than 2 points below the baseline's 100%$/)
      const refused = yield* Effect.flip(promotions.promote(id))
      assert.strictEqual(refused._tag, "BadInput")
      assert.strictEqual(refused.message, `fine-tune job ${id} stays a candidate: ${report.reason} (evaluation ${report.id}; \`autopilot finetune evaluate ${id}\` evaluates it again)`)
      assert.deepStrictEqual(yield* promotions.routes, [])
    }))

  it.scoped("a model that costs no less than the baseline stays a candidate, however well it does", () =>
    Effect.gen(function*() {
      // The mock's own default, gpt-4o-mini, is the baseline: its fine-tune costs twice as much a token.
      const { job, promotions } = yield* setup({ grades: {} })
      const report = yield* promotions.evaluate(yield* job(cheap))
      assert.strictEqual(report.verdict, "candidate")
      assert.strictEqual(report.baseline.model, "gpt-4o-mini")
      assert.match(report.reason, /^it costs \$\S+ a step, not less than the baseline's \$\S+$/)
    }))

  it.scoped("promote evaluates a job never evaluated: no model takes traffic unevaluated", () =>
    Effect.gen(function*() {
      const { job, kinds, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const id = yield* job(cheap)
      const route = yield* promotions.promote(id)
      const [report] = yield* promotions.evaluations(id)
      assert.strictEqual(route.evaluation_id, report!.id)
      assert.deepStrictEqual(yield* kinds(id), ["finetune_evaluated", "finetune_promoted"])
    }))

  it.scoped("a scope's baseline is the route it has now; a better one replaces it, and a rollback brings the one before back", () =>
    Effect.gen(function*() {
      const { job, kinds, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const first = yield* job(cheap)
      const firstRoute = yield* promotions.promote(first)
      const second = yield* job(cheaper)
      const report = yield* promotions.evaluate(second)
      assert.strictEqual(report.baseline.model, cheap)
      assert.strictEqual(report.verdict, "promotable")
      const secondRoute = yield* promotions.promote(second)
      assert.strictEqual(secondRoute.replaces, firstRoute.id)

      const rolled = yield* promotions.rollback(second)
      assert.strictEqual(rolled.retired.id, secondRoute.id)
      assert.strictEqual(Option.getOrThrow(rolled.restored).id, firstRoute.id)
      assert.deepStrictEqual(yield* kinds(second), ["finetune_evaluated", "finetune_promoted", "finetune_rolled_back"])
      const back = yield* promotions.rollback(first)
      assert.isTrue(Option.isNone(back.restored))
      const nothing = yield* Effect.flip(promotions.rollback(first))
      assert.strictEqual(nothing.message, `fine-tune job ${first} takes no traffic: nothing to roll back (see \`autopilot finetune routes\`)`)
      assert.isTrue((yield* promotions.routes).every((r) => r.retired_at !== null))
    }))

  it.scoped("a report made before the scope's traffic moved is stale: promoting on it is refused until it is evaluated again", () =>
    Effect.gen(function*() {
      const { job, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const late = yield* job(cheap)
      yield* promotions.evaluate(late)
      // Meanwhile another fine-tune takes the scope.
      yield* promotions.promote(yield* job(cheaper))
      const stale = yield* Effect.flip(promotions.promote(late))
      assert.match(stale.message, new RegExp(`^fine-tune job ${late} was evaluated against the provider's default, but specialist:coder goes to route-[0-9a-f]+ now: evaluate it again`))
      // Evaluated again, against the new route: the gpt-4o-mini fine-tune costs more than the nano one.
      const again = yield* promotions.evaluate(late)
      assert.strictEqual(again.baseline.model, cheaper)
      assert.strictEqual(again.verdict, "candidate")
    }))

  it.scoped("a review is done once: two at once evaluate the job once, and a job evaluated already is not reviewed again", () =>
    Effect.gen(function*() {
      const { job, kinds, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const id = yield* job(cheap)
      const [a, b] = yield* Effect.all([promotions.review(id), promotions.review(id)], { concurrency: "unbounded" })
      assert.strictEqual([a, b].filter(Option.isSome).length, 1)
      assert.strictEqual((yield* promotions.evaluations(id)).length, 1)
      assert.isTrue(Option.isNone(yield* promotions.review(id)))
      assert.deepStrictEqual(yield* kinds(id), ["finetune_evaluated", "finetune_promoted"])
    }))

  it.scoped("a dataset that names no blueprint, node or specialist has no traffic to give: its model stays a candidate", () =>
    Effect.gen(function*() {
      const { job, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const report = yield* promotions.evaluate(yield* job(cheap, { dataset: "all" }))
      assert.isNull(report.scope)
      assert.strictEqual(report.verdict, "candidate")
      assert.strictEqual(report.reason, "its dataset names no blueprint, node or specialist, so there is no traffic to route to it")
    }))

  it.scoped("only a succeeded job's model is evaluated; an unknown job is said", () =>
    Effect.gen(function*() {
      const { job, promotions } = yield* setup({ model: "gpt-4o", grades: {} })
      const failed = yield* job(null, { status: "failed" })
      const refused = yield* Effect.flip(promotions.evaluate(failed))
      assert.strictEqual(refused.message, `fine-tune job ${failed} is failed: only a succeeded job's model can be evaluated or promoted`)
      const unknown = yield* Effect.exit(promotions.promote("ft-nope"))
      assert.isTrue(Exit.isFailure(unknown))
      assert.strictEqual(Option.getOrThrow(Exit.causeOption(unknown)).toString().includes("FineTuneJobNotFound"), true)
    }))
})
