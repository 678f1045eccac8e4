/**
 * autopilot as a library: the mission runtime and the Layers it needs, to embed in any Effect program.
 *
 *   Autopilot.run(options)      → Effect<MissionResult, MissionError, Llm | Toolkit | Storage>
 *   Autopilot.stream(options)   → Stream<AutopilotEvent, MissionError, Llm | Toolkit | Storage>
 *   Runs                        → the service the CLI calls: start, stop, list, show, events (live with
 *                                 follow), delete, prune
 *   RunArtifacts                → a run's artifacts: list them, write the latest of each into a folder
 */
export * as Autopilot from "./runtime/Mission.js"
export type { MissionContext, MissionError, MissionOptions, MissionResult, PolicyOverrides } from "./runtime/Mission.js"
export * as Runs from "./runtime/Runs.js"
export * as Artifacts from "./runtime/Artifacts.js"
export * as RunArtifacts from "./runtime/RunArtifacts.js"
export * as Transcript from "./runtime/Transcript.js"

export * from "./domain/Artifact.js"
export * from "./domain/Budget.js"
export * from "./domain/Checkpoint.js"
export * from "./domain/Errors.js"
export * as Events from "./domain/Event.js"
export type { AutopilotEvent, EventKind } from "./domain/Event.js"
export * from "./domain/Goal.js"
export { Owner } from "./domain/Owner.js"
export * from "./domain/RunStatus.js"
export * from "./domain/Step.js"

export * as Budget from "./budget/Budget.js"
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
export * as EventStore from "./store/EventStore.js"
export * as QuarantineStore from "./store/QuarantineStore.js"
export * as RunStore from "./store/RunStore.js"
export * as StepStore from "./store/StepStore.js"
export * as Storage from "./store/Storage.js"

export { calculator } from "./tools/Calculator.js"
export { defaultTools } from "./tools/Defaults.js"
export * as Tool from "./tools/Tool.js"
export { Toolkit } from "./tools/Tool.js"
export { workspaceTools } from "./tools/Workspace.js"
