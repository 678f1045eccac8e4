/**
 * autopilot as a library: the mission runtime and the Layers it needs, to embed in any Effect program.
 *
 *   Autopilot.run(options)      → Effect<MissionResult, MissionError, Llm | Toolkit | Storage>
 *   Autopilot.stream(options)   → Stream<AutopilotEvent, MissionError, Llm | Toolkit | Storage>
 *   Autopilot.fanout(options)   → Effect<FanoutResult, MissionError, Llm | Toolkit | Storage>: one child
 *                                 run per item, each within a slice of the fan-out's budget
 *   Critic.layer(options)       → a strict reviewer after each iteration, overruling the judge when confident
 *   Runs                        → the service the CLI calls: start, stop, list, show, events (live with
 *                                 follow), delete, prune
 *   Specialists                 → the role catalog (built-ins and a folder of JSON files); pass one
 *                                 `Specialist` as `specialist` to `Autopilot.run`
 *   RunArtifacts                → a run's artifacts: list them, write the latest of each into a folder
 *   Missions                    → missions made from goals, per project: create (a draft), approve (then
 *                                 scheduled), cancel, advance; every transition kept with who, when, why;
 *                                 `Missions.run` (the MissionRunner service) runs one's agent graph
 *   Settings                    → whether autopilot takes new goals, and its blueprint service tier
 *   GoalQueue                   → runs waiting for a daemon: add, list, remove, ready, dispatch (each
 *                                 entry taken once), startOptions (what `Runs.start` runs it with)
 *   Firings                     → scheduled missions: the slots due now (each claimed once across
 *                                 processes), a firing by hand, the next slots; `Recurrence` the pure part
 */
export * as Autopilot from "./runtime/Autopilot.js"
export type { ChildResult, FanoutItemInput, FanoutOptions, FanoutResult } from "./runtime/Fanout.js"
export type { MissionContext, MissionError, MissionOptions, MissionResult, PolicyOverrides } from "./runtime/Mission.js"
export * as Critic from "./runtime/Critic.js"
export * as Runs from "./runtime/Runs.js"
export * as Artifacts from "./runtime/Artifacts.js"
export * as RunArtifacts from "./runtime/RunArtifacts.js"
export * as Transcript from "./runtime/Transcript.js"
export * as LiveText from "./runtime/LiveText.js"

export * from "./domain/Artifact.js"
export * from "./domain/Budget.js"
export * from "./domain/Checkpoint.js"
export { CriticSettings, CriticVerdict, Critique } from "./domain/Critic.js"
export * from "./domain/Errors.js"
export * as Events from "./domain/Event.js"
export type { AutopilotEvent, EventKind } from "./domain/Event.js"
export * as Fanout from "./domain/Fanout.js"
export * from "./domain/Goal.js"
export { Owner } from "./domain/Owner.js"
export * from "./domain/RunStatus.js"
export * from "./domain/Step.js"

export * as Budget from "./budget/Budget.js"
export * as Slices from "./budget/Slices.js"
export * as Pricing from "./budget/Pricing.js"

export * from "./llm/Llm.js"
export * as LlmChoice from "./domain/LlmChoice.js"
export * as LlmLayer from "./llm/LlmLayer.js"
export { MockLlm, MockScript } from "./llm/MockLlm.js"
export { OpenAiLlm } from "./llm/OpenAiLlm.js"
export type { OpenAiLlmConfig } from "./llm/OpenAiLlm.js"
export { HarnessLlm } from "./llm/HarnessLlm.js"
export type { HarnessLlmConfig } from "./llm/HarnessLlm.js"

/** The harness: serve it (`Harness.Server.layer`) or embed its gateway in another Effect program. */
export * as Harness from "./harness/index.js"

export * as ArtifactStore from "./store/ArtifactStore.js"
export * as Database from "./store/Database.js"
export * as DatabaseTarget from "./store/DatabaseTarget.js"
export * as EventStore from "./store/EventStore.js"
export * as GroupCommit from "./store/GroupCommit.js"
export * as QuarantineStore from "./store/QuarantineStore.js"
export * as RunStore from "./store/RunStore.js"
export * as StepStore from "./store/StepStore.js"
export * as DeltaStore from "./store/DeltaStore.js"
export * as Storage from "./store/Storage.js"

export { calculator } from "./tools/Calculator.js"
export { defaultTools } from "./tools/Defaults.js"
export * as Tool from "./tools/Tool.js"
export { Toolkit } from "./tools/Tool.js"
export { workspaceTools } from "./tools/Workspace.js"

/** Roles a mission can run as: `Autopilot.run({ …, specialist })` with a `Specialist` from the catalog or your own. */
export { AllowedTools, Specialist } from "./specialists/Specialist.js"
export * as Specialists from "./specialists/Specialists.js"
export { Tier, Tiers } from "./domain/Tier.js"

/**
 * Blueprints: `Blueprint` (the Schema, slot validators, structural checks), `Blueprints` (the catalog's
 * service Tag) and `BlueprintCatalog` (its file-backed layers: `layer` for the built-ins and
 * `$AUTOPILOT_HOME/blueprints`, `layerDirectory(dir)`, `layerBuiltIn`).
 */
export * as Blueprint from "./domain/Blueprint.js"
export * as Blueprints from "./routing/Blueprints.js"
export * as BlueprintCatalog from "./routing/Catalog.js"

/**
 * From a goal to a blueprint's inputs, or to a new blueprint: `Slots.layer` (over `Llm`) fills a
 * blueprint's slots from the goal, by rules (`SlotRules`) and then the model; `Synthesis.layer` (over
 * `Llm`, `Blueprints`, `Specialists`) writes, checks and keeps a blueprint for a goal no blueprint serves.
 */
export * as Slots from "./routing/Slots.js"
export * as SlotRules from "./routing/SlotRules.js"
export * as Synthesis from "./routing/Synthesis.js"

/**
 * Goal routing: `GoalRouter.layer` (over `Blueprints` and `BlueprintService`) ranks blueprints for a goal
 * with calibrated scores; `Confidence.gate` turns the best score into `auto_routed`, `picker_needed` or
 * `synthesis_needed`; `BlueprintService` is the optional remote service, its answers cached in
 * `BlueprintCacheStore`.
 */
export * as GoalRouter from "./routing/GoalRouter.js"
export * as Confidence from "./routing/Confidence.js"
export * as BlueprintService from "./routing/BlueprintService.js"
export * as BlueprintCacheStore from "./store/BlueprintCacheStore.js"

/** Missions made from goals: the lifecycle, its project-scoped store and history, the preview, the settings. */
export * as Missions from "./missions/Missions.js"
export * as MissionState from "./domain/MissionState.js"
export { checkProject, MissionNotFound, MissionRecord, Transition } from "./domain/MissionRecord.js"
export * as Preview from "./missions/Preview.js"
export * as Settings from "./missions/Settings.js"
export { AutopilotDisabled, AutopilotStatus, ServiceTier, ServiceTiers } from "./domain/AutopilotSettings.js"
export * as MissionStore from "./store/MissionStore.js"
/** How a mission's graph is scheduled (the driver's rules): `step` from node states, `inputsOf` a node. */
export * as GraphPlan from "./missions/GraphPlan.js"
/** Running missions: `MissionRunner` (lifecycle around the run), `Driver` (the graph as one run), `NodeWork` (a node's task). */
export * as MissionRunner from "./missions/MissionRunner.js"
export * as Driver from "./missions/Driver.js"
export * as NodeWork from "./missions/NodeWork.js"
export * as MissionRun from "./domain/MissionRun.js"
/** Self-healing: `HealingPolicy` (the policy's Schemas, `defaultPolicy`), `Healing` (pure `classify`, `decide`). */
export * as HealingPolicy from "./domain/Healing.js"
export * as Healing from "./missions/Healing.js"
/** A node's answer against its `output_schema` (ajv): `check`, `decode`, `problemOf`, `instruction`. (`OutputSchema` is Llm's type.) */
export * as OutputCheck from "./missions/OutputSchema.js"
export * as SettingsStore from "./store/SettingsStore.js"

/**
 * From a goal to a draft mission, as `autopilot goal` does: `Goals.layer` (over `Settings`,
 * `ConfidenceConfig`, `GoalRouter`, `BlueprintService`, `Slots`, `Synthesis` and `Missions`) routes,
 * gates, picks or synthesizes, fills the slots and keeps the draft; `GoalOutcome` is its result's Schema.
 */
export * as Goals from "./routing/Goals.js"
export { GoalOutcome } from "./domain/GoalOutcome.js"

/**
 * Healing at run time: `Breaker` (a mission's per-provider circuit breaker), `NodeLlm` (a node attempt's
 * `Llm`: its temperature, model and output schema, each call on the primary or the fallback provider),
 * `TierModels` (a tier's fallback model, from `AUTOPILOT_TIER_MODELS`).
 */
export * as Breaker from "./missions/Breaker.js"
export * as NodeLlm from "./missions/NodeLlm.js"
export * as TierModels from "./missions/TierModels.js"

/** What a mission's run did: `StepResults` (`read`, and the `StepResult`, `NodeSteps`, `MissionSteps` types), as `MissionRunner.steps` returns it. */
export * as StepResults from "./missions/StepResults.js"

/**
 * The goal queue: `GoalQueue` (the service `autopilot queue` and the daemon call: add, list, remove,
 * ready, dispatch, startOptions; `GoalQueue.layer` over `QueueStore` and `RunStore`), `QueueEntry` (a
 * queued run's Schema, `make`, `notBeforeOf`), `QueueStore` (its table).
 */
export * as GoalQueue from "./queue/GoalQueue.js"
export * as QueueEntry from "./domain/QueueEntry.js"
export * as QueueStore from "./store/QueueStore.js"

/**
 * Scheduled missions: `Recurrence` (a cron in a time zone: `next`, `latest`, `due` under catch-up once or
 * skip), `Firings` (the service: `due`, `fire`, `next`, `recent`, `ended`), `FiringStore` (the
 * `mission_firings` table), `Firing` (the firing's Schemas and run ids) and `Schedule` (a mission's zone
 * and catch-up policy).
 */
export * as Recurrence from "./missions/Recurrence.js"
export * as Firings from "./missions/Firings.js"
export * as FiringStore from "./store/FiringStore.js"
export * as Firing from "./domain/Firing.js"
export * as Schedule from "./domain/Schedule.js"

/**
 * API tokens: `ApiTokens` (the service: create, list, revoke, `authenticate` to a `Principal`; `layer`
 * reads `AUTOPILOT_API_TOKEN`), `ApiToken` (`TokenRecord`, `Principal`, `Unauthenticated`,
 * `TokenNotFound`), `TokenStore` (the `api_tokens` table, hashes only).
 */
export * as ApiTokens from "./auth/ApiTokens.js"
export * as ApiToken from "./domain/ApiToken.js"
export * as TokenStore from "./store/TokenStore.js"

/** Sign-in sessions of the operator page: `ApiSessions` (create, authenticate, end), `ApiSession`, `SessionStore`. */
export * as ApiSessions from "./auth/ApiSessions.js"
export * as ApiSession from "./domain/ApiSession.js"
export * as SessionStore from "./store/SessionStore.js"

/**
 * The HTTP API: `Api` (every route as an HttpApi, `AutopilotApi`; `HttpApiClient.make(Api.AutopilotApi)` is
 * its typed client), `ApiServer` (`layer({host, port})` over `layerServices`, what `autopilot serve` runs),
 * `ApiError` (the one error shape), `EventStream` (runs' events as Server-Sent Events).
 */
export * as Api from "./api/Api.js"
export * as ApiServer from "./api/ApiServer.js"
export * as ApiError from "./api/ApiError.js"
export * as EventStream from "./api/EventStream.js"
/** One follower per run for every client streaming it; `Lagged` is how a client too far behind is ended. */
export * as EventHub from "./api/EventHub.js"
/** One poll of a run's live text for every client streaming it. */
export * as DeltaFeed from "./api/DeltaFeed.js"
/** OpenAI's rules for tool turns (each tool message answers a call of the assistant turn before it): `problemOf`. */
export * as Conversation from "./llm/Conversation.js"

/**
 * The curator: `Curator` (capture successful work as samples; datasets; `export` as OpenAI chat fine-tuning
 * JSONL), `Dataset` (definitions as data), `TrainingSample`, `FineTuneFormat` (the line Schema, `checkLine`),
 * `Scrub`, `Fingerprint` (normalized hash, split), `CuratorStore`.
 */
export * as Curator from "./curator/Curator.js"
export * as Dataset from "./curator/Dataset.js"
export * as TrainingSample from "./curator/Sample.js"
export * as FineTuneFormat from "./curator/FineTuneFormat.js"
export * as Scrub from "./curator/Scrub.js"
export * as Fingerprint from "./curator/Fingerprint.js"
export * as CuratorStore from "./store/CuratorStore.js"

/**
 * Fine-tune jobs: `FineTunes.consider(dataset)` starts one per dataset snapshot at its threshold, polls it
 * on a Schedule until it ends (resumed after a restart), and logs finetune_* events; `FineTune` is the
 * provider (OpenAI-compatible, a trainer command, a mock on the Clock).
 */
export * as FineTune from "./finetune/FineTune.js"
export * as FineTunes from "./finetune/FineTunes.js"
export * as FineTuneJob from "./finetune/FineTuneJob.js"
export * as OpenAiFineTune from "./finetune/OpenAiFineTune.js"
export * as CommandFineTune from "./finetune/CommandFineTune.js"
export * as FineTuneStore from "./store/FineTuneStore.js"
/** The daemon's training round: capture, export a dataset at its threshold, `consider`, poll. */
export * as TrainingLoop from "./finetune/TrainingLoop.js"
/** What a scope's step cost over time, before and after a fine-tune's promotion (the operator page's curve). */
export * as CostCurve from "./finetune/CostCurve.js"
