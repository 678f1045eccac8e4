import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import type { PolicyRule, Tier } from "../../src/harness/HarnessConfig.js"
import { type EffectivePolicy, effectivePolicy, type Identity, type Route, route } from "../../src/harness/Policy.js"

const alice: Identity = { key_id: "k1", user: "alice", team: "research", project: "p1" }
const loner: Identity = { key_id: "k2", user: "bob", team: null, project: "p2" }

const tiers = { simple: "mini", medium: "mid", complex: "big" }

const policy = (rules: ReadonlyArray<PolicyRule>, identity = alice) => effectivePolicy(rules, identity)

const routed = (
  p: EffectivePolicy,
  { downgrade = false, requested = "auto", tier = "complex" }: { tier?: Tier; requested?: string; downgrade?: boolean } = {}
): Route => {
  const result = route({ policy: p, tiers, tier, requested, downgrade })
  if (Either.isLeft(result)) assert.fail(`refused: ${result.left.message}`)
  return result.right
}

const refused = (
  p: EffectivePolicy,
  { requested = "auto", tier = "complex" }: { tier?: Tier; requested?: string } = {}
): string => {
  const result = route({ policy: p, tiers, tier, requested, downgrade: false })
  if (Either.isRight(result)) assert.fail(`routed to ${result.right.model}`)
  assert.strictEqual(result.left._tag, "PolicyRefusal")
  return result.left.message
}

describe("Policy", () => {
  describe("effectivePolicy", () => {
    it("with no rules, allows every model, caps nothing, forces nothing and routes by tier", () => {
      assert.deepStrictEqual(policy([]), {
        allowed_models: null,
        blocked_models: [],
        max_tier: "complex",
        forced_model: null,
        allow_client_model: false,
        decided_by: {}
      })
    })

    it("lets the more specific scope win, user over project over team over org, in any order", () => {
      const org: PolicyRule = { scope: "org", forced_model: "org-model" }
      const team: PolicyRule = { scope: "team", id: "research", forced_model: "team-model" }
      const project: PolicyRule = { scope: "project", id: "p1", forced_model: "project-model" }
      const user: PolicyRule = { scope: "user", id: "alice", forced_model: "user-model" }
      const cases: ReadonlyArray<readonly [ReadonlyArray<PolicyRule>, string]> = [
        [[org], "org"],
        [[team, org], "team:research"],
        [[org, project, team], "project:p1"],
        [[user, org, project, team], "user:alice"],
        [[team, user], "user:alice"]
      ]
      for (const [rules, winner] of cases) {
        const p = policy(rules)
        assert.strictEqual(p.forced_model, `${winner.split(":")[0]}-model`)
        assert.deepStrictEqual(p.decided_by, { forced_model: winner })
      }
    })

    it("decides each field on its own", () => {
      const p = policy([
        { scope: "user", id: "alice", allow_client_model: true },
        { scope: "project", id: "p1", blocked_models: ["big"] },
        { scope: "team", id: "research", allowed_models: ["mini", "mid", "big"], max_tier: "medium" },
        { scope: "org", allowed_models: ["mini"], forced_model: "mini", allow_client_model: false }
      ])
      assert.deepStrictEqual(p, {
        allowed_models: ["mini", "mid", "big"],
        blocked_models: ["big"],
        max_tier: "medium",
        forced_model: "mini",
        allow_client_model: true,
        decided_by: {
          allowed_models: "team:research",
          blocked_models: "project:p1",
          max_tier: "team:research",
          forced_model: "org",
          allow_client_model: "user:alice"
        }
      })
    })

    it("lets the later of two rules in the same scope win", () => {
      const p = policy([
        { scope: "project", id: "p1", max_tier: "simple", blocked_models: ["big"] },
        { scope: "project", id: "p1", max_tier: "medium" }
      ])
      assert.strictEqual(p.max_tier, "medium")
      assert.deepStrictEqual(p.blocked_models, ["big"])
    })

    it("ignores rules for other users, teams and projects", () => {
      const p = policy([
        { scope: "user", id: "bob", max_tier: "simple" },
        { scope: "team", id: "sales", forced_model: "mini" },
        { scope: "project", id: "p2", blocked_models: ["big"] }
      ])
      assert.deepStrictEqual(p, policy([]))
    })

    it("applies no team rule to a key without a team", () => {
      const p = policy([{ scope: "team", id: "research", max_tier: "simple" }, { scope: "project", id: "p2", max_tier: "medium" }], loner)
      assert.strictEqual(p.max_tier, "medium")
      assert.deepStrictEqual(p.decided_by, { max_tier: "project:p2" })
    })
  })

  describe("route", () => {
    it("routes auto to the model of the classified tier", () => {
      for (const tier of ["simple", "medium", "complex"] as const) {
        assert.deepStrictEqual(routed(policy([]), { tier }), { model: tiers[tier], tier, via: "tier", notes: [] })
      }
    })

    it("caps the tier at max_tier, naming the rule", () => {
      const r = routed(policy([{ scope: "project", id: "p1", max_tier: "medium" }]))
      assert.deepStrictEqual(r, { model: "mid", tier: "medium", via: "tier", notes: ["tier capped at medium by project:p1"] })
      assert.strictEqual(routed(policy([{ scope: "org", max_tier: "medium" }]), { tier: "simple" }).model, "mini")
    })

    it("sends everything to a forced model, even over a client's choice and a budget downgrade", () => {
      const p = policy([{ scope: "team", id: "research", forced_model: "mid", allow_client_model: true }])
      for (const r of [routed(p), routed(p, { requested: "big" }), routed(p, { downgrade: true })]) {
        assert.strictEqual(r.model, "mid")
        assert.strictEqual(r.via, "forced")
        assert.strictEqual(r.tier, "medium")
        assert.include(r.notes, "model forced by team:research")
      }
    })

    it("gives the client the model it names when allowed, at that model's tier", () => {
      const p = policy([{ scope: "org", allow_client_model: true }])
      assert.deepStrictEqual(routed(p, { requested: "mini" }), { model: "mini", tier: "simple", via: "client", notes: [] })
      assert.deepStrictEqual(routed(p, { requested: "other", tier: "medium" }), { model: "other", tier: "medium", via: "client", notes: [] })
    })

    it("refuses a client's model the policy does not permit, saying what is", () => {
      assert.strictEqual(
        refused(policy([{ scope: "org", allow_client_model: true }, { scope: "user", id: "alice", blocked_models: ["big"] }]), {
          requested: "big"
        }),
        "model big is blocked by user:alice; allowed: any model but big"
      )
      assert.strictEqual(
        refused(policy([{ scope: "org", allow_client_model: true, allowed_models: ["mini", "mid"] }]), { requested: "big" }),
        "model big is not allowed by org; allowed: mini, mid"
      )
    })

    it("routes by tier when the client may not choose, and notes it", () => {
      assert.deepStrictEqual(routed(policy([]), { requested: "big", tier: "simple" }), {
        model: "mini",
        tier: "simple",
        via: "tier",
        notes: ["client asked for big; routed by tier (allow_client_model is off)"]
      })
    })

    it("downgrades to the simple tier's model when a budget asks", () => {
      const r = routed(policy([{ scope: "org", allow_client_model: true }]), { downgrade: true, requested: "big" })
      assert.deepStrictEqual(r, { model: "mini", tier: "simple", via: "downgrade", notes: ["downgraded to the simple tier by a budget"] })
    })

    it("skips a downgrade to a model the policy does not permit", () => {
      const r = routed(policy([{ scope: "project", id: "p1", blocked_models: ["mini"] }]), { downgrade: true, tier: "medium" })
      assert.deepStrictEqual(r, {
        model: "mid",
        tier: "medium",
        via: "tier",
        notes: ["budget downgrade skipped: mini is blocked by project:p1"]
      })
    })

    it("falls back to the next cheaper permitted tier", () => {
      const r = routed(policy([{ scope: "org", allowed_models: ["mini", "other"] }, { scope: "user", id: "alice", blocked_models: ["mid"] }]))
      assert.deepStrictEqual(r, {
        model: "mini",
        tier: "simple",
        via: "tier",
        notes: ["big (complex) is not allowed by org; fell back to mini (simple)"]
      })
    })

    it("never falls back to a dearer tier than the classified one", () => {
      assert.strictEqual(
        refused(policy([{ scope: "org", blocked_models: ["mini"] }]), { tier: "simple" }),
        "no tier model is permitted (simple mini is blocked by org); allowed: any model but mini"
      )
    })

    it("refuses when no tier model is permitted", () => {
      assert.strictEqual(
        refused(policy([{ scope: "team", id: "research", allowed_models: ["other"] }])),
        "no tier model is permitted (complex big is not allowed by team:research, medium mid is not allowed by team:research, " +
          "simple mini is not allowed by team:research); allowed: other"
      )
    })
  })
})
