import { Args, Command, Options } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import { Console, Effect, Layer, Option } from "effect"
import type { GoalOutcome } from "../domain/GoalOutcome.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import * as Missions from "../missions/Missions.js"
import * as Settings from "../missions/Settings.js"
import * as BlueprintService from "../routing/BlueprintService.js"
import * as Catalog from "../routing/Catalog.js"
import * as Confidence from "../routing/Confidence.js"
import * as Goals from "../routing/Goals.js"
import * as GoalRouter from "../routing/GoalRouter.js"
import * as Slots from "../routing/Slots.js"
import * as Synthesis from "../routing/Synthesis.js"
import * as Specialists from "../specialists/Specialists.js"
import * as BlueprintCacheStore from "../store/BlueprintCacheStore.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as Flags from "./Flags.js"
import { actor, projectFlag, projectOr } from "./MissionsCommands.js"
import * as Render from "./Render.js"
import * as Server from "./Server.js"
import { llmRequested, sessionFlags } from "./RunCommand.js"

const flags = {
  goal: Args.text({ name: "goal" }).pipe(Args.withDescription("what you want done, in plain English")),
  project: projectFlag,
  pick: Options.integer("pick").pipe(
    Options.withPseudoName("N"),
    Options.withDescription(`make the mission from the Nth candidate this goal lists (1-${Goals.shown}), whatever its score`),
    Options.optional
  ),
  synthesize: Options.boolean("synthesize").pipe(
    Options.withDescription("write a new blueprint for the goal (the remote service's draft first, by tier, else the model), keep it as yours and route to it")
  ),
  format: Flags.oneOf("format", ["text", "json"], "text for people; json prints exactly the outcome object"),
  llm: sessionFlags.llm,
  model: sessionFlags.model,
  mockScript: sessionFlags.mockScript,
  db: Flags.db,
  ...Server.flags
}

type GoalFlags = Command.Command.ParseConfig<typeof flags>

const candidateLines = (candidates: ReadonlyArray<{ readonly blueprint_id: string; readonly score: number; readonly blueprint_json: string }>) =>
  candidates.map((c, i) => {
    const title = (JSON.parse(c.blueprint_json) as { title?: string }).title ?? ""
    return `  ${i + 1}. ${c.blueprint_id.padEnd(24)} ${c.score.toFixed(2)}  ${title}`
  })

const quoted = (goal: string) => JSON.stringify(goal)

/** The outcome for a person: what was made or found, and the command that comes next. */
export const outcomeText = (outcome: GoalOutcome, goal: string): string => {
  switch (outcome.kind) {
    case "auto_routed":
      return [
        `Draft mission ${outcome.mission_id} from blueprint ${outcome.blueprint_id} (score ${outcome.score.toFixed(2)}).`,
        "",
        outcome.preview,
        "",
        ...(outcome.invalid_slots ?? []).map((problem) => `Not taken from the goal: ${problem.message}.`),
        outcome.missing_slots.length === 0
          ? `Next: \`autopilot approve ${outcome.mission_id}\` schedules it.`
          : `Missing: ${outcome.missing_slots.join(", ")}. Next: \`autopilot approve ${outcome.mission_id} ${
            outcome.missing_slots.map((slot) => `--slot ${slot}=…`).join(" ")
          }\`.`
      ].join("\n")
    case "picker_needed":
      return [
        "Several blueprints fit this goal, none surely:",
        ...candidateLines(outcome.candidates),
        "",
        `Next: \`autopilot goal ${quoted(goal)} --pick N\` makes the mission from one, or \`--synthesize\` writes a new blueprint.`
      ].join("\n")
    case "synthesis_needed":
      return [
        "No blueprint fits this goal well enough.",
        ...(outcome.candidates.length === 0 ? [] : ["The closest:", ...candidateLines(outcome.candidates)]),
        "",
        `Next: \`autopilot goal ${quoted(goal)} --synthesize\` writes a blueprint for it${
          outcome.candidates.length === 0 ? "" : ", or `--pick N` takes one of these anyway"
        }.`
      ].join("\n")
  }
}

/** Every service a goal passes through, on one database, with the model the flags choose. */
const goalsLayer = (target: DatabaseTarget.DatabaseTarget, llm: LlmChoice.LlmChoice) =>
  Effect.gen(function*() {
    const model = yield* LlmLayer.layerOf(llm)
    const database = DatabaseTarget.layer(target)
    const catalog = Layer.mergeAll(Catalog.layer, Specialists.layer)
    const service = BlueprintService.layerConfig.pipe(Layer.provide(Layer.mergeAll(FetchHttpClient.layer, BlueprintCacheStore.layer)))
    const router = GoalRouter.layer.pipe(Layer.provide(service))
    return Goals.layer.pipe(
      Layer.provide(Layer.mergeAll(
        Settings.layer,
        Missions.layer,
        Confidence.layerConfig,
        router,
        service,
        Slots.layer,
        Synthesis.layer
      )),
      Layer.provide(Layer.mergeAll(model, catalog)),
      Layer.provide(database)
    )
  })

/** The goal routed here, on the database and the model the flags choose. */
const routeHere = (flags: GoalFlags) =>
  Effect.gen(function*() {
    const request: Goals.GoalRequest = {
      goal: flags.goal,
      project: projectOr(flags.project),
      actor: actor(),
      pick: Option.getOrUndefined(flags.pick),
      synthesize: flags.synthesize
    }
    // Everything that can be refused is, before the database is opened: bad input writes nothing.
    yield* Goals.check(request)
    yield* Confidence.fromConfig
    yield* BlueprintService.settingsFromConfig
    // The model as `run` chooses it: $AUTOPILOT_MOCK_SCRIPT only where the mock is the model.
    const llm = yield* LlmChoice.resolve(undefined, llmRequested(flags, false))
    yield* LlmLayer.validate(llm)
    const target = yield* Flags.target(flags.db)
    // A disabled autopilot refuses before the other services migrate their tables: the database stays as it was.
    yield* Effect.flatMap(Settings.Settings, (settings) => settings.requireEnabled()).pipe(
      Effect.provide(Settings.layer.pipe(Layer.provide(DatabaseTarget.layer(target))))
    )
    const layer = yield* goalsLayer(target, llm)
    return yield* Effect.flatMap(Goals.Goals, (goals) => goals.submit(request)).pipe(Effect.provide(layer))
  })

const submit = (flags: GoalFlags) =>
  Effect.gen(function*() {
    const routed = yield* Server.either(flags, {
      project: flags.project,
      // The server routes with its own database, catalog and model.
      refused: [
        ...Server.databaseFlags(flags.db),
        ["--llm", flags.llm !== undefined],
        ["--model", Option.isSome(flags.model)],
        ["--mock-script", Option.isSome(flags.mockScript)]
      ],
      local: routeHere(flags),
      remote: (api) =>
        api.ask(api.client.autopilot.goal({ payload: { goal: flags.goal, pick: Option.getOrUndefined(flags.pick), synthesize: flags.synthesize || undefined } })).pipe(
          // The note is about the server's own blueprint service: the server logs it, for its operator.
          Effect.map((outcome) => ({ outcome, note: null as string | null }))
        )
    })
    if (routed.note !== null) process.stderr.write(`autopilot: note: ${routed.note}\n`)
    if (flags.format === "json") return yield* Console.log(Render.json(routed.outcome, 2))
    yield* Console.log(outcomeText(routed.outcome, flags.goal))
  })

export const goal = Command.make("goal", flags, submit).pipe(
  Command.withDescription(
    "Route a plain-English goal to a blueprint: a draft mission when one fits surely, else the candidates to pick from, else a blueprint to synthesize"
  )
)
