import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, Schema } from "effect"
import { ToolError } from "../domain/Errors.js"
import { make, type Tool } from "./Tool.js"

const maxReadBytes = 64 * 1024
const maxWriteBytes = 1024 * 1024
const maxListedEntries = 1000

const WorkspacePath = Schema.String.annotations({
  description: "a path relative to the workspace folder, e.g. \"notes/plan.md\""
})

/** `write_file`'s arguments: what a successful call wrote, and where (artifacts are taken from them). */
export const WriteFileArguments = Schema.Struct({
  path: WorkspacePath,
  content: Schema.String.annotations({ description: "the full new content of the file" })
})

/** The tool that writes files in the workspace. */
export const writeFileTool = "write_file"

/**
 * `read_file`, `write_file` and `list_files` confined to the folder `root`, which is created on first use.
 * Paths are relative to it; absolute paths, `..` escapes and symbolic links leading outside are refused.
 */
export const workspaceTools = (
  root: string
): Effect.Effect<ReadonlyArray<Tool>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path

    // Made on first use, so a run that never touches files (or never starts) leaves no folder behind;
    // failing to make it is reported on each call, so a bad --workspace does not stop the run.
    const realRoot = yield* Effect.cached(fs.makeDirectory(root, { recursive: true }).pipe(
      Effect.zipRight(fs.realPath(root)),
      Effect.mapError((error) => new ToolError({ message: `workspace folder "${root}" is unusable: ${error.message}` }))
    ))

    const outside = (requested: string) =>
      new ToolError({ message: `path "${requested}" is outside the workspace; paths must stay inside the workspace folder` })

    const contains = (dir: string, real: string) => {
      const relative = path.relative(dir, real)
      return relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative)
    }

    const describe = (requested: string, error: PlatformError) =>
      new ToolError({
        message: error._tag === "SystemError" && error.reason === "NotFound"
          ? `"${requested}" does not exist in the workspace`
          : `"${requested}": ${error.message}`
      })

    // The real path of the nearest existing ancestor tells where a write would land once symlinks are followed.
    const realAncestor = (requested: string, candidate: string): Effect.Effect<string, ToolError> =>
      fs.realPath(candidate).pipe(
        Effect.catchAll((error) => {
          if (error._tag !== "SystemError" || error.reason !== "NotFound") {
            return Effect.fail(describe(requested, error))
          }
          // A dangling symlink does not resolve but would still be followed by a write.
          return fs.readLink(candidate).pipe(
            Effect.matchEffect({
              onSuccess: () => Effect.fail(outside(requested)),
              onFailure: () => {
                const parent = path.dirname(candidate)
                return parent === candidate ? Effect.fail(outside(requested)) : realAncestor(requested, parent)
              }
            })
          )
        })
      )

    /** The absolute path `requested` names inside the workspace, or a ToolError if it would leave it. */
    const resolve = (requested: string): Effect.Effect<string, ToolError> =>
      Effect.gen(function*() {
        const dir = yield* realRoot
        if (path.isAbsolute(requested)) return yield* outside(requested)
        const target = path.resolve(dir, requested)
        if (!contains(dir, target)) return yield* outside(requested)
        if (!contains(dir, yield* realAncestor(requested, target))) return yield* outside(requested)
        return target
      })

    const readFile = make({
      name: "read_file",
      description: `Read a text file in the workspace. Returns at most ${maxReadBytes / 1024} KiB.`,
      parameters: Schema.Struct({ path: WorkspacePath }),
      handler: ({ path: requested }) =>
        Effect.gen(function*() {
          const target = yield* resolve(requested)
          const info = yield* fs.stat(target)
          if (info.type === "Directory") {
            return yield* new ToolError({ message: `"${requested}" is a folder; use list_files to see what it holds` })
          }
          const size = Number(info.size)
          const bytes = yield* fs.open(target).pipe(
            Effect.flatMap((file) => file.readAlloc(maxReadBytes)),
            Effect.scoped,
            Effect.map(Option.getOrElse(() => new Uint8Array(0)))
          )
          // `stream: true` holds back a multi-byte character cut at the limit instead of mangling it.
          const text = new TextDecoder().decode(bytes, { stream: size > bytes.length })
          return size > bytes.length
            ? `${text}\n[truncated: showed the first ${bytes.length} of ${size} bytes]`
            : text
        }).pipe(Effect.catchTags({ BadArgument: (e) => describe(requested, e), SystemError: (e) => describe(requested, e) }))
    })

    const writeFile = make({
      name: writeFileTool,
      description:
        `Create or overwrite a text file in the workspace, creating missing folders. At most ${maxWriteBytes / 1024 / 1024} MiB.`,
      parameters: WriteFileArguments,
      handler: ({ content, path: requested }) =>
        Effect.gen(function*() {
          const bytes = new TextEncoder().encode(content)
          if (bytes.length > maxWriteBytes) {
            return yield* new ToolError({
              message: `content for "${requested}" is ${bytes.length} bytes; the limit is ${maxWriteBytes} bytes`
            })
          }
          const target = yield* resolve(requested)
          yield* fs.makeDirectory(path.dirname(target), { recursive: true })
          yield* fs.writeFile(target, bytes)
          return `wrote ${bytes.length} bytes to "${requested}"`
        }).pipe(Effect.catchTags({ BadArgument: (e) => describe(requested, e), SystemError: (e) => describe(requested, e) }))
    })

    const listFiles = make({
      name: "list_files",
      description: "List a folder in the workspace (the workspace itself by default); folders end with \"/\".",
      parameters: Schema.Struct({ path: Schema.optional(WorkspacePath) }),
      handler: ({ path: requested = "." }) =>
        Effect.gen(function*() {
          const target = yield* resolve(requested)
          const names = (yield* fs.readDirectory(target)).sort()
          const shown = names.slice(0, maxListedEntries)
          const entries = yield* Effect.forEach(shown, (name) =>
            fs.stat(path.join(target, name)).pipe(
              Effect.map((info) => (info.type === "Directory" ? `${name}/` : name)),
              // A dangling symlink cannot be stat'ed; it is still listed.
              Effect.orElseSucceed(() => name)
            ))
          if (entries.length === 0) return `"${requested}" is empty`
          return names.length > shown.length
            ? `${entries.join("\n")}\n[truncated: showed ${shown.length} of ${names.length} entries]`
            : entries.join("\n")
        }).pipe(Effect.catchTags({ BadArgument: (e) => describe(requested, e), SystemError: (e) => describe(requested, e) }))
    })

    return [readFile, writeFile, listFiles]
  })
