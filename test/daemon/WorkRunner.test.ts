import { assert, describe, it } from "@effect/vitest"
import { DateTime } from "effect"
import { spawn } from "node:child_process"
import { mayTakeOver } from "../../src/daemon/WorkRunner.js"
import { Owner } from "../../src/domain/Owner.js"
import { RunnerRow } from "../../src/store/DaemonStore.js"

const now = DateTime.unsafeMake("2026-12-02T12:00:00.000Z")

/** A daemon's row in the registry, last heard from `silentMs` ago, with a 5 s lease. */
const runner = (owner: Owner, silentMs: number) =>
  new RunnerRow({
    address: `${owner.host}:${owner.pid}`,
    host: owner.host,
    pid: owner.pid,
    concurrency: 4,
    lease_ms: 5000,
    state: "running",
    started_at: "2026-12-02T11:00:00.000Z",
    heartbeat_at: DateTime.formatIso(DateTime.subtract(now, { millis: silentMs }))
  })

describe("WorkRunner.mayTakeOver", () => {
  it("a daemon on another machine silent past its lease is gone: its run is taken over; within its lease, never", () => {
    const elsewhere = new Owner({ pid: 4242, host: "another-machine" })
    assert.isTrue(mayTakeOver(elsewhere, [runner(elsewhere, 6000)], now))
    assert.isFalse(mayTakeOver(elsewhere, [runner(elsewhere, 4000)], now))
    // A process that is no daemon the cluster knows (a run started by hand) is never taken over.
    assert.isFalse(mayTakeOver(elsewhere, [], now))
  })

  it("a live daemon on this machine is not gone however long it was silent: a lock held past the lease silences every daemon at once", () => {
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" })
    try {
      const alive = new Owner({ pid: sleeper.pid!, host: Owner.current.host })
      assert.isTrue(alive.isAlive)
      assert.isFalse(mayTakeOver(alive, [runner(alive, 60_000)], now))
    } finally {
      sleeper.kill("SIGKILL")
    }
  })

  it("a run this very process owned is its own to take back; a dead owner's run needs no take-over, its claim being free", () => {
    assert.isTrue(mayTakeOver(Owner.current, [], now))
    assert.isFalse(mayTakeOver(null, [], now))
  })
})
