import { FileSystem, Path } from "@effect/platform"
import { Context, Effect, Layer } from "effect"
import type { ArtifactInfo } from "../domain/Artifact.js"
import { BadInput, type PersistenceError, RunNotFound } from "../domain/Errors.js"
import { descendantsOf } from "../domain/Fanout.js"
import { ArtifactStore } from "../store/ArtifactStore.js"
import { EventStore } from "../store/EventStore.js"
import { RunStore } from "../store/RunStore.js"
import { specOf } from "./Fanout.js"

/** An artifact as listed: its latest version and every version, oldest first. */
export interface Listed {
  /** The run that produced it: the run asked about, or for a fan-out a run below it. */
  readonly run_id: string
  /** Its name, or for a fan-out's `<child run id>/<name>`: the file `--out` writes it to. */
  readonly name: string
  readonly latest: ArtifactInfo
  readonly versions: ReadonlyArray<ArtifactInfo>
}

/** The latest version of an artifact, written to `file`. */
export interface Written {
  readonly name: string
  readonly version: number
  readonly file: string
  /** Bytes written: the stored content, marker line included for a truncated one. */
  readonly bytes: number
  readonly truncated: boolean
}

/**
 * A run's artifacts as every surface presents them: listed, or written out as files. A fan-out's
 * deliverables are its children's: each under a folder named for the child's run id.
 */
export class RunArtifacts extends Context.Tag("autopilot/RunArtifacts")<
  RunArtifacts,
  {
    /** By name; a run with none gives none. */
    readonly list: (runId: string) => Effect.Effect<ReadonlyArray<Listed>, RunNotFound | PersistenceError>
    /**
     * Writes the latest version of each artifact into `dir` under its name, making `dir` and the folders
     * below it as needed. If any name would land outside `dir` (an absolute path, `..`, a symbolic link
     * already in `dir` leading out) or cannot be written (a file where a folder is needed), nothing is written.
     */
    readonly write: (runId: string, dir: string) => Effect.Effect<ReadonlyArray<Written>, BadInput | RunNotFound | PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const artifacts = yield* ArtifactStore
  const runs = yield* RunStore
  const events = yield* EventStore
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  /** A run is known by its checkpoint, or by its history when the checkpoint is gone. */
  const known = (runId: string) =>
    Effect.gen(function*() {
      if ((yield* runs.load(runId))._tag !== "Missing") return
      if ((yield* events.sessions(runId)).length === 0) return yield* new RunNotFound({ run_id: runId })
    })

  /** The runs whose artifacts are `runId`'s, with the folder each one's go under. */
  const sourcesOf = (runId: string) =>
    specOf(runId).pipe(
      Effect.provideService(RunStore, runs),
      Effect.provideService(EventStore, events),
      Effect.map((spec) =>
        spec === undefined
          ? [{ runId, folder: "" }]
          : descendantsOf(runId, spec).map((child) => ({ runId: child, folder: `${child}/` })))
    )

  const list = (runId: string) =>
    Effect.gen(function*() {
      yield* known(runId)
      const listed: Array<Listed> = []
      for (const { folder, runId: from } of yield* sourcesOf(runId)) {
        const byName = new Map<string, Array<ArtifactInfo>>()
        for (const info of yield* artifacts.list(from)) byName.set(info.name, [...(byName.get(info.name) ?? []), info])
        for (const [name, versions] of byName) listed.push({ run_id: from, name: `${folder}${name}`, latest: versions.at(-1)!, versions })
      }
      return listed
    })

  const inside = (root: string, target: string) => {
    const relative = path.relative(root, target)
    return relative !== "" && relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative)
  }

  /**
   * Why `name` cannot be written under `root`, if it cannot: each part of its path that exists already is
   * looked at, since a symbolic link among them would carry the write elsewhere.
   */
  const problemOf = (root: string, name: string) =>
    Effect.gen(function*() {
      if (path.isAbsolute(name)) return "is an absolute path"
      const target = path.resolve(root, name)
      if (!inside(root, target)) return `does not name a file inside ${root}`
      const parts = path.relative(root, target).split(path.sep)
      let at = root
      for (const [i, part] of parts.entries()) {
        at = path.join(at, part)
        const last = i === parts.length - 1
        const link = yield* Effect.either(fs.readLink(at))
        if (link._tag === "Right") {
          const real = yield* Effect.either(fs.realPath(at))
          if (real._tag === "Left" || !inside(yield* fs.realPath(root), real.right)) {
            return `would be written through the symbolic link ${at}, which leads outside ${root}`
          }
          continue
        }
        const info = yield* Effect.either(fs.stat(at))
        if (info._tag === "Left") return undefined
        if (info.right.type === "Directory" && last) return `would replace the folder ${at}`
        if (info.right.type !== "Directory" && !last) return `needs ${at} to be a folder, and it is not`
      }
      return undefined
    })

  const write = (runId: string, dir: string) =>
    Effect.gen(function*() {
      yield* known(runId)
      const latest = (yield* Effect.forEach(yield* sourcesOf(runId), ({ folder, runId: from }) =>
        Effect.map(artifacts.latestContents(from), (found) => found.map((a) => ({ ...a, name: `${folder}${a.name}`, own: a.name, folder }))))).flat()
      const root = path.resolve(dir)
      if (latest.length === 0) return []
      const rootInfo = yield* Effect.either(fs.stat(root))
      if (rootInfo._tag === "Right" && rootInfo.right.type !== "Directory") {
        return yield* new BadInput({ message: `${root} is not a folder; artifacts are written into a folder` })
      }
      const targets = new Map(latest.map((a) => [a.name, path.resolve(root, a.name)]))
      /** Another artifact whose file would be this one's, or lie below it as if it were a folder. */
      const clashOf = (name: string, target: string) =>
        [...targets].find(([other, file]) => other !== name && (file === target || file.startsWith(`${target}${path.sep}`)))
      /** A child's artifact must stay inside its child's folder, as a run's must stay inside the folder. */
      const outsideItsFolder = ({ folder, name, own }: typeof latest[number]) => {
        if (folder === "") return undefined
        const base = path.resolve(root, folder)
        return path.isAbsolute(own) ? "is an absolute path" : inside(base, targets.get(name)!) ? undefined : `does not name a file inside ${base}`
      }
      for (const artifact of latest) {
        const clash = clashOf(artifact.name, targets.get(artifact.name)!)
        const problem = outsideItsFolder(artifact) ?? (yield* problemOf(root, artifact.name)) ??
          (clash === undefined ? undefined : `clashes with artifact "${clash[0]}" (the same file, or a file where that one needs a folder)`)
        if (problem !== undefined) {
          return yield* new BadInput({
            message: `artifact "${artifact.name}" of run "${runId}" ${problem}; nothing was written (a name must stay inside the folder: no absolute path, no "..", no symbolic link leading out)`
          })
        }
      }
      return yield* Effect.forEach(latest, (artifact) =>
        Effect.gen(function*() {
          const file = targets.get(artifact.name)!
          yield* fs.makeDirectory(path.dirname(file), { recursive: true })
          yield* fs.writeFileString(file, artifact.content)
          return {
            name: artifact.name,
            version: artifact.version,
            file,
            bytes: Buffer.byteLength(artifact.content, "utf8"),
            truncated: artifact.truncated
          } satisfies Written
        }))
    }).pipe(Effect.catchTags({ BadArgument: Effect.die, SystemError: Effect.die }))

  return RunArtifacts.of({ list, write })
})

export const layer = Layer.effect(RunArtifacts, make)

/** `artifacts --format json`: per artifact its latest version's metadata, and every version's. */
export const listedJson = (listed: Listed) => ({
  run_id: listed.run_id,
  name: listed.name,
  kind: listed.latest.kind,
  language: listed.latest.language ?? null,
  path: listed.latest.path ?? null,
  latest_version: listed.latest.version,
  iteration: listed.latest.iteration,
  bytes: listed.latest.bytes,
  truncated: listed.latest.truncated,
  versions: listed.versions.map((v) => ({
    version: v.version,
    iteration: v.iteration,
    kind: v.kind,
    language: v.language ?? null,
    path: v.path ?? null,
    bytes: v.bytes,
    truncated: v.truncated,
    sha256: v.sha256,
    at: v.at
  }))
})
