import { Effect, Layer, Random } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import * as Ledger from "../../src/soak/Ledger.js"
import * as Database from "../../src/store/Database.js"
import * as EventStore from "../../src/store/EventStore.js"
import * as RunStore from "../../src/store/RunStore.js"
import * as StepStore from "../../src/store/StepStore.js"
import { type CliEvent, cleanup, type Exit, type Sandbox, sandbox } from "./harness.js"

afterEach(cleanup)

/**
 * Chaos in the suite: runs and a fan-out of the built CLI are killed with -9 or sent SIGTERM at points a
 * seed chooses, resumed (`autopilot resume ID`) until they end, and their books then audited by the
 * ledger. The seed is AUTOPILOT_CHAOS_SEED, else random; it is printed, and every failure names it.
 */

const maxSeed = 4_294_967_295

const seedOf = (raw: string | undefined): number => {
  if (raw === undefined || raw.trim() === "") return Math.floor(Math.random() * (maxSeed + 1))
  const seed = /^\d{1,10}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
  if (!(seed <= maxSeed)) throw new Error(`AUTOPILOT_CHAOS_SEED must be a whole number from 0 to ${maxSeed}, got "${raw}"`)
  return seed
}

type Signal = "SIGKILL" | "SIGTERM"

/**
 * Where a session is cut: once it has printed `after` iteration events (a run; 0: its `run_started`, the
 * session just claimed) or its `fanout_started` event (a fan-out, whose children's iterations it does not
 * print), then `delay_ms` more, always less than one model call, so the signal lands inside an iteration
 * at a different point each time.
 */
interface Cut {
  readonly signal: Signal
  readonly after: number
  readonly delay_ms: number
}

interface Target {
  readonly id: string
  readonly kind: "budget" | "completes" | "fanout"
  /** The mock's answer time, per model call. */
  readonly latency_ms: number
  /** One per session but the last, which runs to the end. */
  readonly cuts: ReadonlyArray<Cut>
}

/*
 * The margins: a cut session makes at most two iterations before its cut is seen (a SIGTERM lets one more
 * finish), and on a busy machine a few more may pass before the test reads the line it waits for. Every
 * target has room for that, so each cut lands before its run could have ended.
 */
/** A run is cut once to three times; a fan-out once or twice (its later sessions have less left). */
const maxCuts = { run: 3, fanout: 2 }
/** Never meets a criterion, so every session but the last ends halted and the last on the iteration cap. */
const budgetCap = 20
/** Meets both criteria on the eighth model call of a session: only a session that is not cut completes. */
const completesOn = 8
const completesCap = 30
/** Four iterations a child, two children at a time: a cut soon after `fanout_started` leaves children not started. */
const fanoutItems = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
const fanoutCap = 32

/** The schedule: a function of the seed alone, drawn with effect's seeded `Random`. */
const scheduleOf = (seed: number): ReadonlyArray<Target> =>
  Effect.runSync(
    Effect.gen(function*() {
      const signal = Effect.map(Random.nextBoolean, (kill): Signal => (kill ? "SIGKILL" : "SIGTERM"))
      const target = (id: string, kind: Target["kind"]) =>
        Effect.gen(function*() {
          const latency_ms = yield* Random.nextIntBetween(80, 201)
          const count = yield* Random.nextIntBetween(1, (kind === "fanout" ? maxCuts.fanout : maxCuts.run) + 1)
          const cuts: Array<Cut> = []
          for (let session = 0; session < count; session++) {
            cuts.push({
              signal: yield* signal,
              after: kind === "fanout" ? 0 : yield* Random.nextIntBetween(0, 3),
              // A fan-out's first session may go up to two model calls in: its first two children are then
              // still on their slices, the others not started.
              delay_ms: yield* Random.nextIntBetween(0, kind === "fanout" && session === 0 ? 2 * latency_ms : latency_ms)
            })
          }
          return { id, kind, latency_ms, cuts } satisfies Target
        })
      return [
        yield* target("chaos-budget-a", "budget"),
        yield* target("chaos-budget-b", "budget"),
        yield* target("chaos-completes-a", "completes"),
        yield* target("chaos-completes-b", "completes"),
        yield* target("chaos-fan", "fanout")
      ]
    }).pipe(Effect.withRandom(Random.make(seed)))
  )

/**
 * Criteria are met all at once, never one by one: a session cut after meeting one would end `partial`, and
 * the ledger's `ended_once` takes any result but the last that is not `halted` for a second end.
 */
const scriptOf = (sb: Sandbox, target: Target) => {
  const never = { content: "Working on it.", criteria_met: [false, false], usage: { input_tokens: 120, output_tokens: 30 } }
  const turns = target.kind === "completes"
    ? [...Array.from({ length: completesOn - 1 }, () => never), { ...never, content: "Done.", criteria_met: [true, true] }]
    : [never]
  return sb.writeFile(`${target.id}.json`, { model: "gpt-4o-mini", latency_ms: target.latency_ms, repeat_last: true, turns })
}

const startArgs = (target: Target, script: string): ReadonlyArray<string> => {
  const common = ["--criterion", "first", "--criterion", "second", "--run-id", target.id, "--mock-script", script, "--format", "jsonl"]
  switch (target.kind) {
    case "budget":
      return ["run", `objective of ${target.id}`, ...common, "--max-iterations", String(budgetCap)]
    case "completes":
      return ["run", `objective of ${target.id}`, ...common, "--max-iterations", String(completesCap)]
    case "fanout":
      return [
        "fanout",
        "--template",
        "Research {item}",
        ...fanoutItems.flatMap((item) => ["--item", item]),
        "--max-parallel",
        "2",
        "--max-iterations",
        String(fanoutCap),
        ...common
      ]
  }
}

interface Session {
  readonly cut: Cut | undefined
  readonly exit: Exit
  readonly result: CliEvent | undefined
  readonly transcript: string
}

const describeExit = (exit: Exit) => (exit.signal !== null ? `signal ${exit.signal}` : `exit ${exit.code}`)

/** The target's sessions: started, cut as scheduled and resumed, until one runs to its end. */
const sessionsOf = async (sb: Sandbox, target: Target): Promise<ReadonlyArray<Session>> => {
  const script = scriptOf(sb, target)
  const sessions: Array<Session> = []
  for (let i = 0; i <= target.cuts.length; i++) {
    const cli = sb.start(i === 0 ? startArgs(target, script) : ["resume", target.id, "--mock-script", script, "--format", "jsonl"])
    const cut = target.cuts[i]
    if (cut !== undefined) {
      if (target.kind === "fanout") await cli.event((e) => e.kind === "fanout_started", 60_000)
      else if (cut.after === 0) await cli.event((e) => e.kind === "run_started", 60_000)
      else await cli.nth("iteration", cut.after, 60_000)
      // A point inside the iteration now in flight: less than one model call, not a wait for anything.
      await new Promise((resolve) => setTimeout(resolve, cut.delay_ms))
      cli.signal(cut.signal)
    }
    const exit = await cli.waitForExit(120_000)
    const result = cli.events().filter((e) => e.kind === "result").at(-1)
    sessions.push({ cut, exit: { code: exit.code, signal: exit.signal }, result, transcript: cli.transcript() })
  }
  return sessions
}

/** The ledger over the sandbox's database, through the stores, as the soak runs it. */
const audit = (sb: Sandbox) =>
  Effect.runPromise(
    Ledger.audit().pipe(Effect.provide(Layer.mergeAll(RunStore.layer, StepStore.layer, EventStore.layer).pipe(Layer.provide(Database.layerSqlite(sb.db)))))
  )

const sessionStarts = (sb: Sandbox, runId: string) =>
  (sb.sql((db) => db.prepare("SELECT COUNT(*) AS n FROM events WHERE run_id = ? AND kind = 'run_started'").get(runId)) as { n: number }).n

describe("chaos: kill -9 and SIGTERM at seeded points, then resume", () => {
  it("every run and the fan-out end exactly once, with exact usage and gap-free logs", async (context) => {
    const seed = seedOf(process.env["AUTOPILOT_CHAOS_SEED"])
    const schedule = scheduleOf(seed)
    const reproduce = `AUTOPILOT_CHAOS_SEED=${seed} npx vitest run test/cli/chaos.test.ts`
    console.log(`chaos seed ${seed} (${reproduce}); schedule: ${JSON.stringify(schedule)}`)
    const sb = sandbox(context)
    const ran = new Map<string, ReadonlyArray<Session>>()
    try {
      // The targets' sessions go on side by side, on one database, as a busy host's would.
      const all = await Promise.all(schedule.map((target) => sessionsOf(sb, target)))
      schedule.forEach((target, i) => ran.set(target.id, all[i]!))
      const told = (target: Target) =>
        `${target.id}: ${ran.get(target.id)!.map((s) => `${s.cut === undefined ? "to the end" : `${s.cut.signal} after ${s.cut.after} +${s.cut.delay_ms} ms`} -> ${describeExit(s.exit)}`).join("; ")}`

      for (const target of schedule) {
        const sessions = ran.get(target.id)!
        // Each cut landed: a kill ended the process, a SIGTERM halted the run (or fan-out) at a boundary.
        for (const session of sessions.filter((s) => s.cut !== undefined)) {
          if (session.cut!.signal === "SIGKILL") {
            expect(session.exit.signal, `${told(target)}\n${session.transcript}`).toBe("SIGKILL")
            continue
          }
          expect([session.exit.code, session.result?.status, session.result?.halt_reason], `${told(target)}\n${session.transcript}`).toEqual([
            4,
            "halted",
            "halted by SIGTERM"
          ])
        }
        expect(sessionStarts(sb, target.id), told(target)).toBe(sessions.length)
        const last = sessions.at(-1)!
        const checkpoint = sb.checkpoint(target.id)
        switch (target.kind) {
          case "budget":
            expect([last.exit.code, checkpoint.status, checkpoint.halt_reason, checkpoint.usage.iterations], `${told(target)}\n${last.transcript}`).toEqual([
              4,
              "halted",
              `iteration limit reached: ${budgetCap} of ${budgetCap} iterations`,
              budgetCap
            ])
            break
          case "completes":
            expect([last.exit.code, checkpoint.status], `${told(target)}\n${last.transcript}`).toEqual([0, "completed"])
            expect(checkpoint.usage.iterations).toBeGreaterThanOrEqual(completesOn)
            expect(checkpoint.usage.iterations).toBeLessThan(completesCap)
            break
          case "fanout": {
            // Every child ran its slice out: the whole cap is spent, none lost to a cut.
            expect([last.exit.code, checkpoint.status, checkpoint.usage.iterations], `${told(target)}\n${last.transcript}`).toEqual([4, "halted", fanoutCap])
            for (const [i, item] of fanoutItems.entries()) {
              expect(sb.checkpoint(`${target.id}.${i}-${item}`).status, told(target)).toBe("halted")
            }
          }
        }
      }

      console.log(`chaos seed ${seed}:\n${schedule.map(told).join("\n")}`)

      // The books: ended once, steps and usage exact, none running, logs without a hole, the fan-out's sums.
      const books = await audit(sb)
      expect(books.findings, JSON.stringify(books.findings, null, 1)).toEqual([])
      expect(books.runs).toBe(schedule.length + fanoutItems.length)
      // It audited what ran: every run's iterations, the fan-out's as its children's.
      const own = schedule.filter((t) => t.kind !== "fanout").reduce((n, t) => n + (sb.checkpoint(t.id).usage.iterations as number), 0)
      expect(books.iterations).toBe(own + fanoutCap)
    } catch (error) {
      if (error instanceof Error) {
        error.message = `chaos seed ${seed} (${reproduce}): ${error.message}`
      }
      throw error
    }
  }, 240_000)
})
