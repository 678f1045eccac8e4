import { Command, Options } from "@effect/cli"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import { Console, DateTime, Duration, Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as net from "node:net"
import { BadInput } from "../domain/Errors.js"
import type { LlmChoice } from "../domain/LlmChoice.js"
import * as FineTunes from "../finetune/FineTunes.js"
import * as TrainingLoop from "../finetune/TrainingLoop.js"
import * as LiveText from "../runtime/LiveText.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as DaemonStore from "../store/DaemonStore.js"
import * as MissionStore from "../store/MissionStore.js"
import * as QueueStore from "../store/QueueStore.js"
import * as GoalQueue from "../queue/GoalQueue.js"
import { curatorLayer } from "./CuratorCommands.js"
import { fineTunesLayer, promotionsLayer } from "./FineTuneCommands.js"
import * as Flags from "./Flags.js"
import * as MissionRunCommand from "./MissionRunCommand.js"
import * as Run from "./RunCommand.js"
import * as Signals from "./Signals.js"

const wholeNumber = (flag: string, raw: Option.Option<string>, fallback: number, max: number) =>
  Option.match(raw, {
    onNone: () => Effect.succeed(fallback),
    onSome: (text) =>
      /^\d{1,6}$/.test(text) && Number(text) >= 1 && Number(text) <= max
        ? Effect.succeed(Number(text))
        : Effect.fail(new BadInput({ message: `${flag} must be a whole number from 1 to ${max}, got "${text}"` }))
  })

const secondsOf = (flag: string, raw: Option.Option<string>, fallback: number, min: number, max: number) =>
  Option.match(raw, { onNone: () => Effect.succeed(fallback), onSome: (text) => Flags.seconds(flag, text, min, max) })

export const defaults = { concurrency: 4, leaseSeconds: 10, pollSeconds: 0.5, idleSeconds: 30 } as const

const flags = {
  concurrency: Options.text("concurrency").pipe(
    Options.withPseudoName("integer"),
    Options.withDescription(`how many runs this daemon works at once: 1 to 1000 (default ${defaults.concurrency})`),
    Options.optional
  ),
  listen: Options.text("listen").pipe(
    Options.withPseudoName("host:port"),
    Options.withDescription("serve the cluster's protocol here, so messages reach this daemon at once instead of at its next poll (other daemons must reach this address)"),
    Options.optional
  ),
  once: Options.boolean("once").pipe(Options.withDescription("work what is ready, then exit once nothing is left running or ready")),
  lease: Options.text("lease-seconds").pipe(
    Options.withPseudoName("seconds"),
    Options.withDescription(`a daemon silent this long is gone, and its runs resume on another (default ${defaults.leaseSeconds}; the same on every daemon)`),
    Options.optional
  ),
  poll: Options.text("poll-seconds").pipe(
    Options.withPseudoName("seconds"),
    Options.withDescription(`how often ready work and messages are looked for (default ${defaults.pollSeconds})`),
    Options.optional
  ),
  idle: Options.text("heartbeat-seconds").pipe(
    Options.withPseudoName("seconds"),
    Options.withDescription(`how often an idle daemon prints that it is alive (default ${defaults.idleSeconds})`),
    Options.optional
  ),
  llm: Run.sessionFlags.llm,
  model: Run.sessionFlags.model,
  mockScript: Run.sessionFlags.mockScript,
  db: Flags.db
}

/** The cluster's own logs: errors only (a lost database, say), one line each on stderr. */
const clusterLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")
    process.stderr.write(`autopilot daemon: ${logLevel.label.toLowerCase()}: ${text.replace(/\s+/g, " ")}\n`)
  })
)

/** `HOST:PORT`, the port from 1 to 65535. */
const listenAddress = (raw: Option.Option<string>) =>
  Option.match(raw, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) => {
      const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(text)
      const port = match === null ? Number.NaN : Number(match[2])
      return match !== null && port >= 1 && port <= 65535
        ? Effect.succeed(new RunnerAddress.RunnerAddress({ host: match[1]!, port }))
        : Effect.fail(new BadInput({ message: `--listen must be HOST:PORT with a port from 1 to 65535, like 127.0.0.1:34431; got "${text}"` }))
    }
  })

/**
 * Whether this process may listen on `address`. The cluster's socket server fails in a fiber of its own,
 * where nobody would hear of it: an address in use is found here first and is one line, exit 2.
 */
const canListen = (address: RunnerAddress.RunnerAddress) =>
  Effect.async<void, BadInput>((resume) => {
    const server = net.createServer()
    server.once("error", (error: NodeJS.ErrnoException) =>
      resume(new BadInput({ message: `--listen ${address.host}:${address.port}: cannot listen there (${error.code ?? error.message})` })))
    server.listen(address.port, address.host.replace(/^\[|\]$/g, ""), () => server.close(() => resume(Effect.void)))
  })

const line = (text: string) => Effect.flatMap(DateTime.now, (at) => Console.log(`${DateTime.formatIso(at)} ${text}`))

/**
 * The training loop (TrainingLoop), when AUTOPILOT_FINETUNE_DATASETS names datasets; nothing otherwise.
 * Every variable it needs is checked before the daemon starts; once started, its failures are lines, and the
 * daemon's runs never wait on it.
 */
const training = (
  target: DatabaseTarget.DatabaseTarget,
  llm: { readonly llm: LlmChoice["provider"] | undefined; readonly model: Option.Option<string>; readonly mockScript: Option.Option<string> }
) =>
  Effect.gen(function*() {
    const datasets = yield* TrainingLoop.datasetsFromConfig
    if (datasets.length === 0) return Effect.void
    const config = yield* FineTunes.config
    const promote = yield* TrainingLoop.promoteFromConfig
    // Evaluations run on the daemon's own provider and model: what its runs get where no route is in force.
    const services = Layer.mergeAll(
      (yield* curatorLayer(target)).pipe(Layer.provide(DatabaseTarget.layer(target))),
      yield* fineTunesLayer(target),
      yield* promotionsLayer(target, { ...llm, definitions: Option.none() })
    )
    yield* line(`training on ${datasets.join(", ")} at ${config.threshold} samples, every ${Duration.format(config.pollEvery)}`)
    return TrainingLoop.make({ datasets, dir: config.snapshots, threshold: config.threshold, every: config.pollEvery, say: line, promote }).pipe(
      Effect.flatMap((loop) => loop.run),
      Effect.provide(services),
      Effect.catchAll((error) => line(`training loop stopped: ${error.message}`))
    )
  })

export const daemon = Command.make("daemon", flags, (given) =>
  Effect.scoped(Effect.gen(function*() {
    const concurrency = yield* wholeNumber("--concurrency", given.concurrency, defaults.concurrency, 1000)
    const lease = yield* secondsOf("--lease-seconds", given.lease, defaults.leaseSeconds, 1, 3600)
    const poll = yield* secondsOf("--poll-seconds", given.poll, defaults.pollSeconds, 0.05, 60)
    const idle = yield* secondsOf("--heartbeat-seconds", given.idle, defaults.idleSeconds, 0.1, 86_400)
    const listen = yield* listenAddress(given.listen)
    if (listen !== undefined) yield* canListen(listen)
    const llm = Run.llmRequested(given, false)
    // The runs the daemon starts write their live text: a bad AUTOPILOT_LIVE_TEXT is refused before it starts.
    yield* LiveText.enabled
    const target = yield* Flags.target(given.db)
    const train = yield* training(target, given)
    const signals = yield* Signals.listen
    const leaseDuration = Duration.seconds(lease)
    // The cluster's shard-lock connection queues a query behind another, which the pg driver warns of on
    // stderr as deprecated; a daemon's output is its lines alone.
    process.noDeprecation = true
    // Loaded only here: the cluster is most of what the CLI would otherwise read at every start.
    const { Daemon, WorkRunner } = yield* Effect.promise(() => import("../daemon/index.js"))
    yield* Effect.forkScoped(train)
    yield* Daemon.run({
      address: listen ?? Daemon.processAddress(),
      listen: listen !== undefined,
      concurrency,
      once: given.once,
      lease: leaseDuration,
      poll: Duration.seconds(poll),
      idleEvery: Duration.seconds(idle),
      drain: signals.halt,
      say: line
    }).pipe(
      Logger.withMinimumLogLevel(LogLevel.Error),
      Effect.provide(clusterLogs),
      Effect.provide(WorkRunner.layer({ llm, lease: leaseDuration }).pipe(
        Layer.provideMerge(Layer.mergeAll(DaemonStore.layer, MissionStore.layer, GoalQueue.layer.pipe(Layer.provideMerge(QueueStore.layer)))),
        Layer.provideMerge(MissionRunCommand.layer(target))
      ))
    )
  }))).pipe(Command.withDescription("Work the goal queue and approved missions as a runner of the cluster on this database"))

const ago = (from: string, at: DateTime.Utc) => {
  const seconds = Math.max(0, Math.round(Duration.toSeconds(DateTime.distanceDuration(DateTime.unsafeMake(from), at))))
  return `${seconds}s ago`
}

export const status = Command.make("status", { format: Flags.oneOf("format", ["text", "json"], "text for people, json for programs"), db: Flags.db }, (given) =>
  Effect.gen(function*() {
    const target = yield* Flags.target(given.db)
    const { runners, open } = yield* DatabaseTarget.whenHolds(
      target,
      "daemon_runners",
      Effect.succeed({ runners: [], open: [] }),
      Effect.gen(function*() {
        const store = yield* DaemonStore.DaemonStore
        return { runners: yield* store.runners, open: yield* store.open }
      }).pipe(Effect.provide(DaemonStore.layer))
    )
    const at = yield* DateTime.now
    const view = runners.map((r) => ({
      ...r,
      alive: r.aliveAt(at),
      // A stopped or silent runner runs nothing: what it left is waiting for another.
      running: r.aliveAt(at) ? open.filter((w) => w.runner === r.address && w.started_at !== null).map((w) => ({ run_id: w.run_id, kind: w.kind })) : []
    }))
    const waiting = open.filter((w) => w.started_at === null || !view.some((r) => r.address === w.runner && r.alive))
    if (given.format === "json") {
      return yield* Console.log(JSON.stringify({ runners: view, waiting: waiting.map((w) => ({ run_id: w.run_id, kind: w.kind })) }, null, 2))
    }
    if (view.length === 0) return yield* Console.log("no daemon has run on this database")
    for (const r of view) {
      const health = r.state === "stopped" ? "stopped" : r.alive ? r.state : `gone (silent since ${ago(r.heartbeat_at, at)})`
      yield* Console.log(`${r.address}  ${health}  heartbeat ${ago(r.heartbeat_at, at)}  ${r.running.length}/${r.concurrency} running${r.running.length > 0 ? `: ${r.running.map((w) => w.run_id).join(", ")}` : ""}`)
    }
    if (waiting.length > 0) yield* Console.log(`waiting for a runner: ${waiting.map((w) => w.run_id).join(", ")}`)
  })).pipe(Command.withDescription("Show the daemons of this database: their state, last heartbeat and what each runs"))

export const command = daemon.pipe(Command.withSubcommands([status]))
