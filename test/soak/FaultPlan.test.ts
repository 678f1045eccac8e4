import { assert, describe, it } from "@effect/vitest"
import { faultKinds, meanGap, plan } from "../../src/soak/FaultPlan.js"

describe("FaultPlan", () => {
  it("the same seed and length give the same faults; another seed, others", () => {
    assert.deepStrictEqual(plan({ seed: 42, seconds: 3600 }), plan({ seed: 42, seconds: 3600 }))
    assert.notDeepEqual(plan({ seed: 42, seconds: 3600 }), plan({ seed: 43, seconds: 3600 }))
  })

  it("an hour: about 40 faults, none in the warm-up or the last 30 s, every kind dealt as often as the others", () => {
    const faults = plan({ seed: 7, seconds: 3600 })
    assert.isAtLeast(faults.length, 30)
    assert.isAtMost(faults.length, 50)
    for (const f of faults) {
      assert.isAtLeast(f.at, 360)
      assert.isAtMost(f.at, 3570)
    }
    const counts = faultKinds.map((k) => faults.filter((f) => f.kind === k).length)
    assert.isAtMost(Math.max(...counts) - Math.min(...counts), 1)
    // In time order, at least half the mean gap apart.
    faults.slice(1).forEach((f, i) => assert.isAtLeast(f.at - faults[i]!.at, meanGap(3600) / 2 - 0.1))
  })

  it("a short soak still gets faults after its warm-up, and a holding fault outlasts the busy timeout", () => {
    const faults = plan({ seed: 1, seconds: 300 })
    assert.isAtLeast(faults.length, 8)
    assert.sameMembers([...new Set(faults.slice(0, 8).map((f) => f.kind))], [...faultKinds])
    for (const f of faults.filter((f) => f.kind === "write_lock")) assert.isAbove(f.hold_seconds, 5)
  })

  it("too short for anything after the warm-up: no faults", () => {
    assert.deepStrictEqual(plan({ seed: 1, seconds: 40 }), [])
  })
})
