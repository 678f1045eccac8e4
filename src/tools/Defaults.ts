import type { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"
import { calculator } from "./Calculator.js"
import type { Tool } from "./Tool.js"
import { workspaceTools } from "./Workspace.js"

/** The tools every mission gets: the calculator and file access confined to `workspaceRoot`. */
export const defaultTools = (
  workspaceRoot: string
): Effect.Effect<ReadonlyArray<Tool>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.map(workspaceTools(workspaceRoot), (tools) => [calculator, ...tools])

/** The names of `defaultTools`, known without a workspace: what a specialist's allow-list may name. */
export const defaultToolNames: ReadonlyArray<string> = ["calculator", "read_file", "write_file", "list_files"]
