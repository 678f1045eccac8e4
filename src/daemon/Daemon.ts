import type * as MessageStorage from "@effect/cluster/MessageStorage"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as Singleton from "@effect/cluster/Singleton"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import type { SocketServerError } from "@effect/platform/SocketServer"
import { BadInput } from "../domain/Errors.js"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { SqlClient } from "@effect/sql"
import { DateTime, Deferred, Duration, Effect, Either, Fiber, Layer, Option, Ref, Schedule } from "effect"
import { Owner } from "../domain/Owner.js"
import { MissionStore } from "../store/MissionStore.js"
import { defaultPriority } from "../domain/QueueEntry.js"
import * as Database from "../store/Database.js"
import { type Firing, isFiringRun } from "../domain/Firing.js"
import { Firings } from "../missions/Firings.js"
import * as Recurrence from "../missions/Recurrence.js"
import { GoalQueue } from "../queue/GoalQueue.js"
import { DaemonStore, type NewWork, type RunnerRow } from "../store/DaemonStore.js"
import { Work } from "./Work.js"
import { WorkOrder, WorkOutcome } from "./WorkOrder.js"
import { drainReason, WorkRunner } from "./WorkRunner.js"

export interface Options {
  /** This runner's address in the cluster: where it listens with `listen`, else only its identity. */
  readonly address: RunnerAddress.RunnerAddress
  /** Serve the cluster's protocol on `address`, so messages need not wait for a poll. */
  readonly listen: boolean
  /** How many runs this runner works at once. */
  readonly concurrency: number
  /** Work what is ready, then stop once nothing is left running or ready. */
  readonly once: boolean
  /** A runner silent for this long is gone: its shards, and the runs in them, move to the others. */
  readonly lease: Duration.Duration
  /** How often the dispatcher looks for ready work, and runners for messages sent to them. */
  readonly poll: Duration.Duration
  /** How often an idle daemon says so. */
  readonly idleEvery: Duration.Duration
  /** Completes when the daemon must drain (SIGTERM): runs halt at their next boundary and move on. */
  readonly drain: Effect.Effect<string>
  /** Where the daemon says what it does, one line at a time. */
  readonly say: (line: string) => Effect.Effect<void>
}

const now = Effect.map(DateTime.now, DateTime.formatIso)

/** What a delivery comes to when its run halted for a runner that leaves: no answer, so it is delivered again. */
const handedOver = Symbol("handedOver")

/** How a runner is named in `daemon status` and our tables: `host:port`. */
export const addressOf = (address: RunnerAddress.RunnerAddress) => `${address.host}:${address.port}`

/** The cluster's view of which runners live: our own heartbeats, so that SQLite and Postgres behave alike. */
const leaseHealth =
  Layer.effect(
    RunnerHealth.RunnerHealth,
    Effect.map(DaemonStore, (store) => ({
      isAlive: (address: RunnerAddress.RunnerAddress) =>
        Effect.gen(function*() {
          const at = yield* DateTime.now
          const runner = (yield* store.runners).find((r) => r.address === addressOf(address))
          return runner !== undefined && runner.aliveAt(at)
        }).pipe(Effect.orElseSucceed(() => true))
    }))
  )

/** The cluster's settings for a daemon: timing from the lease and the poll interval. */
const shardingConfig = (options: Pick<Options, "address" | "lease" | "poll">) =>
  ShardingConfig.layer({
    runnerAddress: Option.some(options.address),
    shardsPerGroup: 60,
    entityMessagePollInterval: options.poll,
    refreshAssignmentsInterval: options.poll,
    runnerHealthCheckInterval: options.poll,
    shardLockExpiration: options.lease,
    shardLockRefreshInterval: Duration.divide(options.lease, 3).pipe(Option.getOrElse(() => options.lease)),
    // An entity that is stopped (its shard moved, the runner leaves) is interrupted after this; its run
    // then halts at its next boundary before the entity is gone (see `handle`).
    entityTerminationTimeout: Duration.seconds(1),
    // Runs last hours; an entity is only the mailbox of one, released once it is idle.
    entityMaxIdleTime: Duration.seconds(30)
  })

/**
 * The cluster a daemon joins: runners, shard locks and persisted messages in the database the stores use.
 * Without `listen`, runners send nothing to each other: each polls storage for the messages of its
 * shards, so a daemon needs no port. With it, a runner serves the cluster's protocol on that address and
 * messages reach the runner that holds their shard at once. Either way a lost runner is noticed through
 * its heartbeat.
 */
export const cluster = (options: Pick<Options, "address" | "lease" | "poll" | "listen">): Layer.Layer<
  Sharding.Sharding | MessageStorage.MessageStorage,
  SocketServerError,
  SqlClient.SqlClient | DaemonStore
> => {
  const runners = options.listen
    ? SocketRunner.layer.pipe(Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]))
    : Sharding.layer.pipe(Layer.provideMerge(Runners.layerNoop))
  return runners.pipe(
    Layer.provideMerge(SqlMessageStorage.layer),
    Layer.provide([Layer.orDie(SqlRunnerStorage.layer), leaseHealth]),
    Layer.provide(shardingConfig(options)),
    Layer.provide(RpcSerialization.layerMsgPack)
  )
}

/** The order that runs a row of work. */
const orderOf = (w: NewWork) =>
  new WorkOrder({
    run_id: w.run_id,
    kind: w.kind,
    project_id: w.project_id,
    mission_id: w.mission_id,
    slot: w.slot,
    firing_kind: w.kind === "firing" ? (isFiringRun(w.run_id) && w.run_id.includes(".manual-") ? "manual" : "scheduled") : null
  })

/** A firing as a row of work: sent as soon as it is due, whatever the room, as a slot is a time. */
const firingWork = (f: Firing, at: DateTime.Utc): NewWork => ({
  run_id: f.run_id,
  kind: "firing",
  project_id: f.project,
  mission_id: f.mission_id,
  slot: f.slot,
  priority: defaultPriority,
  sent_at: DateTime.formatIso(at)
})

const work = (runId: string, kind: NewWork["kind"], project: string | null, missionId: string | null, priority: number, at: DateTime.Utc): NewWork => ({
  run_id: runId,
  kind,
  project_id: project,
  mission_id: missionId,
  slot: null,
  priority,
  sent_at: DateTime.formatIso(at)
})

/**
 * Missions of one run that the daemons take: approved (and so scheduled to run) and not recurring. One
 * that no longer reads holds up no other.
 */
const readyMissions = Effect.gen(function*() {
  const missions = yield* MissionStore
  const ready = yield* missions.listAll(["scheduled"])
  return ready.flatMap((read) => (Either.isRight(read) && !Recurrence.isRecurring(read.right.blueprint) ? [read.right] : []))
})

/**
 * Runs a daemon until it drains or, with `once`, until nothing is left: it joins the cluster, runs the
 * work its shards receive (at most `concurrency` at a time), and while it holds the dispatcher singleton
 * hands ready work to the cluster in priority order, never more than the live runners can take.
 */
export const run = (options: Options) =>
  Effect.gen(function*() {
    const store = yield* DaemonStore
    const sql = yield* SqlClient.SqlClient
    const runner = yield* WorkRunner
    const queue = yield* GoalQueue
    const firings = yield* Firings
    const address = addressOf(options.address)
    const started = yield* now
    const draining = yield* Deferred.make<string>()
    const finished = yield* Deferred.make<void>()
    const permits = yield* Effect.makeSemaphore(options.concurrency)
    const running = yield* Ref.make(new Set<string>())
    const state = () => Effect.map(Deferred.isDone(draining), (d): RunnerRow["state"] => (d ? "draining" : "running"))

    yield* store.register({
      address,
      host: Owner.current.host,
      pid: Owner.current.pid,
      concurrency: options.concurrency,
      lease_ms: Duration.toMillis(options.lease),
      state: "running",
      started_at: started,
      heartbeat_at: started
    } as RunnerRow)

    /**
     * One delivery of one piece of work. A run that halts because this runner drains, or because its shard
     * moved, is not answered: its message stays unprocessed, and the runner that holds the shard next
     * resumes it from its checkpoint.
     */
    const handle = (order: WorkOrder) =>
      Effect.gen(function*() {
        const moved = yield* Deferred.make<string>()
        const leaving = Effect.raceFirst(Deferred.await(draining), Deferred.await(moved))
        const work = permits.withPermits(1)(
          Effect.gen(function*() {
            if ((yield* Deferred.isDone(draining)) || (yield* Deferred.isDone(moved))) return handedOver
            yield* store.begin(order.run_id, address, yield* now).pipe(Effect.orDie)
            yield* Ref.update(running, (s) => new Set(s).add(order.run_id))
            yield* options.say(`started ${order.kind} ${order.run_id}`)
            const outcome = yield* runner.execute(order, {
              runner: address,
              halt: Effect.map(leaving, (why) => `${drainReason} (${why}); another runner resumes it`)
            }).pipe(Effect.ensuring(Ref.update(running, (s) => {
              const next = new Set(s)
              next.delete(order.run_id)
              return next
            })))
            if (outcome === "halted" && ((yield* Deferred.isDone(draining)) || (yield* Deferred.isDone(moved)))) {
              yield* options.say(`handed over ${order.kind} ${order.run_id}`)
              return handedOver
            }
            yield* store.end(order.run_id, outcome, yield* now).pipe(Effect.orDie)
            yield* options.say(`ended ${order.kind} ${order.run_id}: ${outcome}`)
            return new WorkOutcome({ run_id: order.run_id, outcome })
          })
        )
        // Its own fiber, so that an interrupted entity first lets the run halt at its boundary.
        const fiber = yield* Effect.forkDaemon(work)
        const result = yield* Fiber.join(fiber).pipe(
          Effect.onInterrupt(() => Deferred.succeed(moved, "its shard moved").pipe(Effect.zipRight(Fiber.await(fiber))))
        )
        // Unanswered, the message stays in storage for whichever runner holds the shard next.
        return result === handedOver ? yield* Effect.never : result
      })

    const WorkLayer = Work.toLayer(Effect.succeed({ run: (request) => handle(request.payload) }), { concurrency: 1 })

    /** Sends work to its entity; sending it again is harmless, as its message is stored once by run id. */
    const send = (w: NewWork) =>
      Effect.flatMap(Work.client, (client) => client(w.run_id).run(orderOf(w), { discard: true }))

    /**
     * One look for ready work: as much as the live runners have room for, highest priority first, oldest
     * first among equals. Queued runs carry their own priority; approved missions the queue's default.
     */
    const dispatch = Effect.gen(function*() {
      const at = yield* DateTime.now
      const alive = (yield* store.runners).filter((r) => r.state === "running" && r.aliveAt(at))
      // Slots are claimed when they come, whatever the room: a firing waits for a runner like the rest.
      const due = yield* firings.due
      for (const firing of due) {
        const row = firingWork(firing, at)
        if (yield* store.send(row)) yield* send(row)
      }
      const open = yield* store.open
      const free = alive.reduce((n, r) => n + r.concurrency, 0) - open.length
      if (free <= 0) return { open: open.length, ready: 0 }
      const entries = yield* queue.ready(free)
      const missions = yield* readyMissions
      const candidates = [
        ...entries.map((e) => ({ row: work(e.id, "queued", null, null, e.priority, at), since: e.created_at, take: queue.dispatch(e.id) })),
        ...missions.map((m) => ({ row: work(m.mission_id, "mission", m.project_id, m.mission_id, defaultPriority, at), since: m.created_at, take: Effect.succeed(true) }))
      ].sort((x, y) => y.row.priority - x.row.priority || x.since.localeCompare(y.since))
      let sent = 0
      for (const candidate of candidates) {
        if (sent >= free) break
        // Taken from its source (a queued entry by exactly one dispatcher) and recorded in one transaction,
        // then sent: a dispatcher interrupted (its singleton moved) or killed between the two would leave
        // the entry taken with no row, never run; one lost after them leaves a row the next one sends again.
        const recorded = yield* sql.withTransaction(Effect.flatMap(candidate.take, (taken) => (taken ? store.send(candidate.row) : Effect.succeed(false))))
        if (!recorded) continue
        yield* send(candidate.row)
        sent++
      }
      return { open: open.length + sent, ready: candidates.length }
    })

    const Dispatcher = Singleton.make(
      "autopilot/Dispatcher",
      Effect.gen(function*() {
        // Work a previous dispatcher recorded but may not have sent before its runner died, and slots it
        // claimed but may not have recorded.
        yield* Effect.forEach(yield* store.open, send, { discard: true })
        const at = yield* DateTime.now
        for (const firing of yield* firings.unfinished) {
          const row = firingWork(firing, at)
          yield* store.send(row)
          yield* send(row)
        }
        while (true) {
          if (!(yield* Deferred.isDone(draining))) {
            const { open } = yield* dispatch.pipe(
              Effect.tapError((e) => options.say(`dispatch failed: ${e.message}`)),
              Effect.orElseSucceed(() => ({ open: 1, ready: 1 }))
            )
            if (options.once && open === 0) yield* Deferred.succeed(finished, undefined)
          }
          yield* Effect.sleep(options.poll)
        }
      })
    )

    /** The runner's heartbeat, which is also how the others know it is alive; an idle runner says so now and then. */
    const heartbeat = Effect.gen(function*() {
      let lastSaid = yield* DateTime.now
      const every = Duration.divide(options.lease, 4).pipe(Option.getOrElse(() => options.lease))
      while (true) {
        const at = yield* DateTime.now
        yield* store.heartbeat(address, yield* state(), DateTime.formatIso(at)).pipe(Effect.ignore)
        const busy = (yield* Ref.get(running)).size
        if (busy === 0 && Duration.greaterThanOrEqualTo(DateTime.distanceDuration(lastSaid, at), options.idleEvery)) {
          yield* options.say(`idle (heartbeat ${DateTime.formatIso(at)})`)
          lastSaid = at
        }
        yield* Effect.sleep(every)
      }
    })

    // The cluster's tables are made once, before any runner starts: daemons booting together on an empty
    // database would otherwise race to create them.
    yield* Database.exclusively("cluster_storage")(
      Effect.scoped(Layer.build(Layer.mergeAll(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(Layer.provide(shardingConfig(options)))))
    ).pipe(Effect.orDie)
    const daemon = Layer.mergeAll(WorkLayer, Dispatcher).pipe(Layer.provide(cluster(options)))
    yield* options.say(`runner ${address} up, working ${options.concurrency} at a time`)
    const launched = yield* Effect.fork(Layer.launch(daemon))
    const beating = yield* Effect.fork(heartbeat)

    const why = yield* Effect.raceAll([
      Effect.map(options.drain, (reason) => ({ drain: reason as string | undefined })),
      Effect.map(Deferred.await(finished), () => ({ drain: undefined })),
      // The cluster ends only by failing to start: an address in use, say.
      Fiber.join(launched).pipe(
        Effect.zipRight(Effect.never),
        Effect.catchAll((error) => new BadInput({ message: `--listen ${address}: ${error.message}` }))
      )
    ])
    if (why.drain !== undefined) {
      yield* Deferred.succeed(draining, why.drain)
      yield* store.heartbeat(address, "draining", yield* now).pipe(Effect.ignore)
      yield* options.say(`draining (${why.drain}): runs halt at their next boundary`)
      // Every run halts and checkpoints before the runner leaves the cluster.
      yield* Ref.get(running).pipe(Effect.repeat({ until: (s) => s.size === 0, schedule: Schedule.spaced("100 millis") }))
    }
    yield* Fiber.interrupt(launched)
    yield* Fiber.interrupt(beating)
    yield* store.heartbeat(address, "stopped", yield* now).pipe(Effect.ignore)
    yield* options.say(`runner ${address} stopped`)
  })

/** This process's address when the daemon has no transport of its own: its host and pid name it. */
export const processAddress = () => new RunnerAddress.RunnerAddress({ host: Owner.current.host, port: Owner.current.pid })
