import { Command, ValidationError } from "@effect/cli"
// The module, not the package index, which would load undici, cluster and rpc on every start.
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Config, Console, Effect, Exit } from "effect"
import { BadInput } from "../domain/Errors.js"
import { createRequire } from "node:module"
import * as DaemonCommand from "./DaemonCommand.js"
import * as Fanout from "./FanoutCommand.js"
import * as Goal from "./GoalCommand.js"
import * as Artifacts from "./ArtifactsCommand.js"
import * as Blueprints from "./BlueprintsCommand.js"
import * as Harness from "./HarnessCommands.js"
import * as Help from "./Help.js"
import * as Inspect from "./InspectCommands.js"
import * as MissionsCommands from "./MissionsCommands.js"
import * as Queue from "./QueueCommands.js"
import * as Run from "./RunCommand.js"
import * as SettingsCommands from "./SettingsCommands.js"
import * as Specialists from "./SpecialistsCommand.js"
import * as ServeCommand from "./ServeCommand.js"
import * as Tokens from "./TokenCommands.js"
import * as CuratorCommands from "./CuratorCommands.js"
import * as FineTuneCommands from "./FineTuneCommands.js"

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string }

const autopilot = Command.make("autopilot").pipe(
  Command.withDescription("Long-running, goal-driven, budget-gated LLM missions"),
  Command.withSubcommands([
    Run.run,
    Run.resume,
    Fanout.fanout,
    Inspect.stop,
    Inspect.runs,
    Inspect.show,
    Inspect.events,
    Inspect.deleteRuns,
    Inspect.prune,
    Artifacts.artifacts,
    Harness.harness,
    Specialists.specialists,
    Blueprints.blueprints,
    Goal.goal,
    SettingsCommands.status,
    SettingsCommands.enable,
    SettingsCommands.disable,
    MissionsCommands.missions,
    MissionsCommands.approve,
    MissionsCommands.cancel,
    Queue.queue,
    DaemonCommand.command,
    Tokens.token,
    ServeCommand.serve,
    CuratorCommands.curator,
    FineTuneCommands.finetune
  ])
)

const cli = Command.run(autopilot, { name: "autopilot", version })

const tree = Help.treeOf(autopilot)

/** Errors a user can fix by changing what they typed: one line, exit 2. */
const badInputTags = new Set(["BadInput", "RunNotFound", "RunAlreadyExists", "RunInProgress", "MissionNotFound", "IllegalTransition", "AutopilotDisabled", "QueueEntryNotFound", "RunIdTaken", "DatabaseUnavailable", "TokenNotFound", "ServerRefused", "ServerUnreachable", "FineTuneJobNotFound", "FineTuneError"])

/** Exit code for errors other than bad input; anything unexpected is 1. */
const exitCodes: Record<string, number> = { RunInterrupted: 5, ServerRunInterrupted: 5 }

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** @effect/cli's own numeric flags say `'abc' is not a integer`; we name the flag and what it takes. */
const numberProblem = (problem: string, args: ReadonlyArray<string>) => {
  const match = /^'(.*)' is not a (integer|float)$/.exec(problem)
  if (match === null) return problem
  const [, value, type] = match
  const at = args.findIndex((arg, i) => arg === value && args[i - 1]?.startsWith("-"))
  const flag = at > 0 ? args[at - 1] : args.find((arg) => arg.startsWith("--") && arg.endsWith(`=${value}`))?.replace(/=.*$/, "")
  return `${flag ?? "a flag"} must be ${type === "integer" ? "a whole number" : "a number"}, got "${value}"`
}

/** @effect/cli prints its parse errors as a help page; we print one line that points to the help. */
const commandLineError = (error: ValidationError.ValidationError, args: ReadonlyArray<string>) => {
  const problem = numberProblem(Help.plain(error.error).replace(/\s+/g, " ").trim(), args)
  return `autopilot: ${problem} (see \`${Help.names(Help.commandPath(tree, args).path)} --help\`)`
}

const showHelp = (path: ReadonlyArray<Help.Node>) =>
  Effect.gen(function*() {
    const noColor = yield* Config.string("NO_COLOR").pipe(Config.withDefault(""), Effect.orDie)
    yield* Console.log(Help.page(path, version, { color: Help.colorFor(process.stdout, noColor) }))
  })

const withoutCliErrorOutput = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.console, (console) =>
    Effect.withConsole(effect, { ...console, error: () => Effect.void, unsafe: { ...console.unsafe, error: () => {} } }))

/**
 * No flag of ours takes an empty value, and @effect/cli silently drops one given to a repeated option
 * (`--criterion ""`), which would run a different mission than the one asked for.
 */
const emptyFlagValue = (argv: ReadonlyArray<string>) =>
  argv.find((arg, i) => (/^--[a-z-]+$/.test(arg) && argv[i + 1]?.trim() === "") || /^--[a-z-]+=\s*$/.test(arg))

const args = process.argv.slice(2)

const program = Effect.suspend(() => {
  const flag = emptyFlagValue(args)
  if (flag !== undefined) return new BadInput({ message: `${flag.replace(/=.*$/, "")} needs a non-empty value` })
  const help = Help.requested(tree, args)
  return help === undefined ? withoutCliErrorOutput(cli(process.argv)) : showHelp(help)
}).pipe(
  Effect.catchAll((error) => {
    if (ValidationError.isValidationError(error)) {
      return Effect.sync(() => {
        process.stderr.write(`${commandLineError(error, args)}\n`)
        process.exitCode = 2
      })
    }
    const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : ""
    return Effect.sync(() => {
      process.stderr.write(`autopilot: ${messageOf(error)}\n`)
      process.exitCode = badInputTags.has(tag) ? 2 : exitCodes[tag] ?? 1
    })
  }),
  // Nothing here exports traces, so the spans @effect/sql and the HTTP server open for every statement
  // and request would only cost time: ≈ 7 % of an iteration on the mock model.
  Effect.withTracerEnabled(false),
  Effect.provide(NodeContext.layer)
)

// A closed terminal (SIGHUP) must not turn a halting run into a crash on its next write.
process.stdout.on("error", () => {})
process.stderr.on("error", () => {})

const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
Effect.runFork(program).addObserver((exit) => {
  clearInterval(keepAlive)
  if (Exit.isFailure(exit)) {
    process.stderr.write(`autopilot: ${Exit.isInterrupted(exit) ? "interrupted" : messageOf(Cause.squash(exit.cause))}\n`)
    process.exitCode = 1
  }
})
