import { Effect, Option, Ref, Schema } from "effect"
import { createHash } from "node:crypto"
import * as path from "node:path"
import { Artifact, type ArtifactInfo, type ArtifactKind, maxArtifactBytes } from "../domain/Artifact.js"
import type { PersistenceError } from "../domain/Errors.js"
import { slug } from "../domain/Slug.js"
import type { EventBody } from "../domain/Event.js"
import type { ToolCallRecord } from "../domain/Step.js"
import { ArtifactStore } from "../store/ArtifactStore.js"
import { WriteFileArguments, writeFileTool } from "../tools/Workspace.js"

/**
 * Deliverables collected from each counted iteration:
 * - every fenced code block (``` or ~~~, closed by a fence of the same character at least as long, so a
 *   longer fence may hold shorter ones) is a `code` artifact, or `markdown` when its language is
 *   markdown/md. Its name comes from the info string: `ts title="src/app.ts"` (also `filename=`,
 *   `file=`, `path=`, `name=`, quoted or not), `python app.py`, `ts:lib/x.ts`, or a file name alone
 *   (`app.py`, its extension then the language). Without one it is `snippet-<n>.<ext>`, n counting the
 *   unnamed blocks of that answer and ext following the language (`txt` without one), so the same block
 *   in a later answer is a new version of the same artifact. A block left open at the end of the answer
 *   (an answer cut off) or an empty one is not collected.
 * - an answer with a top-level heading (`# Title`, outside code blocks) is a `markdown` document, the
 *   whole answer, named from its first such heading: `title.md`.
 * - every file a successful `write_file` call wrote is a `file` artifact named by its workspace path.
 * The same name twice in one iteration keeps the last one produced (tool-written files come last).
 */

/** An artifact as an iteration produced it, before it is capped and versioned. */
export interface Produced {
  readonly name: string
  readonly kind: ArtifactKind
  readonly language?: string | undefined
  readonly path?: string | undefined
  readonly content: string
}

/** File extensions of the languages code blocks are usually tagged with; others use the tag itself. */
const extensions: Readonly<Record<string, string>> = {
  typescript: "ts", ts: "ts", tsx: "tsx", javascript: "js", js: "js", jsx: "jsx", mjs: "mjs", cjs: "cjs",
  python: "py", py: "py", python3: "py", ruby: "rb", rb: "rb", go: "go", golang: "go", rust: "rs", rs: "rs",
  java: "java", kotlin: "kt", kt: "kt", swift: "swift", c: "c", h: "h", cpp: "cpp", "c++": "cpp", cxx: "cpp",
  csharp: "cs", "c#": "cs", cs: "cs", fsharp: "fs", php: "php", shell: "sh", sh: "sh", bash: "sh", zsh: "sh",
  console: "sh", powershell: "ps1", ps1: "ps1", sql: "sql", json: "json", jsonc: "json", yaml: "yaml",
  yml: "yaml", toml: "toml", xml: "xml", html: "html", css: "css", scss: "scss", markdown: "md", md: "md",
  r: "r", scala: "scala", lua: "lua", perl: "pl", haskell: "hs", elixir: "ex", erlang: "erl", dart: "dart",
  ini: "ini", diff: "diff", patch: "patch", dockerfile: "dockerfile", makefile: "mk", text: "txt", txt: "txt",
  plaintext: "txt", vue: "vue", svelte: "svelte", graphql: "graphql", proto: "proto", hcl: "tf", terraform: "tf"
}

const extensionOf = (language: string | undefined) =>
  language === undefined ? "txt" : extensions[language] ?? (/^[a-z0-9]{1,10}$/.test(language) ? language : "txt")

const isMarkdown = (language: string | undefined) => language === "markdown" || language === "md"

/** A name a model wrote; anything unusable as a file name falls back to the default. */
const cleanName = (raw: string): string | undefined => {
  const name = raw.trim().replace(/^["'`]|["'`]$/g, "").replace(/^(\.\/)+/, "")
  return name === "" || name.length > 255 || /[\u0000-\u001f\u007f]/.test(name) || name.endsWith("/") ? undefined : name
}

/** Something that reads as a file name: a folder in it, or an extension. */
const looksLikeFile = (token: string) => !token.includes("=") && !token.startsWith("{") && /(\/|[^./]\.[A-Za-z0-9]{1,10}$)/.test(token)

const attribute = /(?:^|\s)(?:title|filename|file|path|name)=(?:"([^"]*)"|'([^']*)'|(\S+))/

/** The language and file name an info string gives, e.g. `ts title="src/app.ts"`, `python app.py`, `ts:lib/x.ts`. */
export const parseInfo = (info: string): { readonly language?: string | undefined; readonly name?: string | undefined } => {
  const tokens = info.trim().split(/\s+/).filter((t) => t !== "")
  const first = tokens[0]
  if (first === undefined) return {}
  const attributed = attribute.exec(info)
  const named = attributed === null ? undefined : cleanName(attributed[1] ?? attributed[2] ?? attributed[3] ?? "")
  const colon = /^([\w+#.-]+):(.+)$/.exec(first)
  if (colon !== null) return { language: colon[1]!.toLowerCase(), name: named ?? cleanName(colon[2]!) }
  if (first.includes("=")) return { name: named }
  if (named === undefined && looksLikeFile(first)) {
    const name = cleanName(first)
    const extension = /\.([A-Za-z0-9]+)$/.exec(first)?.[1]?.toLowerCase()
    return { language: extension, name }
  }
  const second = tokens[1]
  return {
    language: first.replace(/^\{?\./, "").toLowerCase(),
    name: named ?? (second !== undefined && looksLikeFile(second) ? cleanName(second) : undefined)
  }
}

/** The text of a top-level ATX heading (`# Title`, or `# Title #`), if the line is one. */
const headingOf = (line: string) => {
  const text = /^ {0,3}# +(.*?)(?: +#+)? *$/.exec(line)?.[1]?.trim()
  return text === "" ? undefined : text
}

/** A document's file name from its title. */
export const slugOf = (title: string) => slug(title, 80) || "document"

const SPACE = 32
const TAB = 9
const CR = 13
const HASH = 35
const BACKTICK = 96
const TILDE = 126

const lineEnd = (text: string, from: number) => {
  const end = text.indexOf("\n", from)
  return end === -1 ? text.length : end
}

const blank = (text: string, at: number) => text.charCodeAt(at) === SPACE || text.charCodeAt(at) === TAB

/** Whether `text[from, to)` closes a fence of `length` characters `fence`: only that character, at least as many. */
const closes = (text: string, from: number, to: number, fence: number, length: number) => {
  while (from < to && blank(text, from)) from++
  while (to > from && (blank(text, to - 1) || text.charCodeAt(to - 1) === CR)) to--
  if (to - from < length) return false
  for (let i = from; i < to; i++) if (text.charCodeAt(i) !== fence) return false
  return true
}

/**
 * The code blocks and the markdown document in an answer. It runs on every iteration's answer, so lines
 * are looked at by character, and a block's content is a slice of the answer.
 */
export const fromAnswer = (answer: string): ReadonlyArray<Produced> => {
  // Most answers of a long run are prose: skip the line scan when nothing can match.
  if (!answer.includes("```") && !answer.includes("~~~") && !answer.includes("#")) return []
  const found: Array<Produced> = []
  let title: string | undefined
  let unnamed = 0
  let at = 0
  while (at < answer.length) {
    const end = lineEnd(answer, at)
    let first = at
    while (first < end && blank(answer, first)) first++
    const c = answer.charCodeAt(first)
    if (c === HASH && title === undefined) title = headingOf(answer.slice(at, end).replace(/\r$/, ""))
    let run = first
    while (run < end && answer.charCodeAt(run) === c) run++
    const info = answer.slice(run, end).replace(/\r$/, "")
    // A backtick fence's info string has no backtick: ```like this``` is inline code.
    if ((c !== BACKTICK && c !== TILDE) || run - first < 3 || (c === BACKTICK && info.includes("`"))) {
      at = end + 1
      continue
    }
    let close = end + 1
    while (close < answer.length && !closes(answer, close, lineEnd(answer, close), c, run - first)) close = lineEnd(answer, close) + 1
    // Left open at the end of the answer: cut off, not a deliverable.
    if (close >= answer.length) break
    const indent = first - at
    at = lineEnd(answer, close) + 1
    // The lines between the fences, each with its line break.
    let content = answer.slice(end + 1, close)
    if (indent > 0 || content.includes("\r")) {
      const dedent = new RegExp(`^ {0,${indent}}`)
      content = content.slice(0, -1).split("\n").map((l) => l.replace(/\r$/, "").replace(dedent, "")).join("\n") + "\n"
    }
    if (!/\S/.test(content)) continue
    const { language, name } = parseInfo(info)
    found.push({
      name: name ?? `snippet-${++unnamed}.${extensionOf(language)}`,
      kind: isMarkdown(language) ? "markdown" : "code",
      ...(language === undefined ? {} : { language }),
      content
    })
  }
  if (title !== undefined) found.push({ name: `${slugOf(title)}.md`, kind: "markdown", content: answer })
  return found
}

const decodeWrite = Schema.decodeUnknownOption(WriteFileArguments)

/** The files successful `write_file` calls wrote, named by their path in the workspace. */
export const fromToolCalls = (calls: ReadonlyArray<ToolCallRecord>): ReadonlyArray<Produced> =>
  calls.flatMap((call) => {
    if (call.name !== writeFileTool || !call.ok) return []
    return Option.toArray(Option.map(decodeWrite(call.arguments), ({ content, path: requested }) => {
      const name = path.posix.normalize(requested).replace(/^(\.\/)+/, "")
      return { name, kind: "file" as const, path: name, content }
    }))
  })

/** Everything an iteration produced, one per name: the last one of a name wins. */
export const producedBy = (answer: string, toolCalls: ReadonlyArray<ToolCallRecord>): ReadonlyArray<Produced> => {
  const byName = new Map<string, Produced>()
  for (const produced of [...fromAnswer(answer), ...fromToolCalls(toolCalls)]) {
    byName.delete(produced.name)
    byName.set(produced.name, produced)
  }
  return [...byName.values()]
}

/** Content cut to `maxBytes` of UTF-8 (never mid-character), then a marker line saying so. */
export const capped = (content: string, maxBytes: number = maxArtifactBytes) => {
  const bytes = Buffer.byteLength(content, "utf8")
  if (bytes <= maxBytes) return { content, bytes, truncated: false }
  // `stream: true` holds back a character cut at the limit instead of mangling it (so a fresh decoder each time).
  const kept = new TextDecoder().decode(Buffer.from(content, "utf8").subarray(0, maxBytes), { stream: true })
  return {
    content: `${kept}\n[truncated by autopilot: kept the first ${Buffer.byteLength(kept, "utf8")} of ${bytes} bytes]\n`,
    bytes,
    truncated: true
  }
}

export const sha256 = (content: string) => createHash("sha256").update(content, "utf8").digest("hex")

/**
 * The latest version of each name, as far as versioning needs it; with its content when that is small, so
 * an unchanged artifact is told by comparing it, not by hashing it again every iteration.
 */
export type Latest = ReadonlyMap<string, { readonly version: number; readonly sha256: string; readonly content?: string | undefined }>

/** Contents up to this size are kept in memory for the comparison. */
const comparedBytes = 16 * 1024

/** The new versions an iteration makes: a name seen before gets the next version, unless its content is unchanged. */
export const versionsOf = (options: {
  readonly produced: ReadonlyArray<Produced>
  readonly latest: Latest
  readonly iteration: number
  readonly at: string
  readonly maxBytes?: number | undefined
}): ReadonlyArray<Artifact> =>
  options.produced.flatMap((produced) => {
    const before = options.latest.get(produced.name)
    if (before?.content !== undefined && before.content === produced.content) return []
    const digest = sha256(produced.content)
    if (before?.sha256 === digest) return []
    const { bytes, content, truncated } = capped(produced.content, options.maxBytes)
    return [
      new Artifact({
        name: produced.name,
        version: (before?.version ?? 0) + 1,
        iteration: options.iteration,
        kind: produced.kind,
        ...(produced.language === undefined ? {} : { language: produced.language }),
        ...(produced.path === undefined ? {} : { path: produced.path }),
        bytes,
        truncated,
        sha256: digest,
        at: options.at,
        content
      }, true)
    ]
  })

export const eventOf = (a: ArtifactInfo): EventBody => ({
  kind: "artifact",
  iteration: a.iteration,
  name: a.name,
  version: a.version,
  artifact_kind: a.kind,
  ...(a.language === undefined ? {} : { language: a.language }),
  ...(a.path === undefined ? {} : { path: a.path }),
  bytes: a.bytes,
  truncated: a.truncated
})

const remember = (latest: Latest, made: ReadonlyArray<ArtifactInfo | Artifact>): Latest => {
  if (made.length === 0) return latest
  const next = new Map(latest)
  for (const a of made) {
    const content = "content" in a && !a.truncated && a.bytes <= comparedBytes ? a.content : undefined
    next.set(a.name, { version: a.version, sha256: a.sha256, content })
  }
  return next
}

/** An iteration's new versions and the events that announce them; the session commits them with the iteration. */
export interface Collected {
  readonly artifacts: ReadonlyArray<Artifact>
  readonly events: ReadonlyArray<EventBody>
  /** Once the iteration is durable: its versions are the latest from now on. */
  readonly committed: Effect.Effect<void>
}

/** A session's view of its run's artifacts: the latest version of each name, loaded once and kept current. */
export interface Ledger {
  readonly collect: (options: {
    readonly iteration: number
    readonly at: string
    readonly answer: string
    readonly toolCalls: ReadonlyArray<ToolCallRecord>
  }) => Effect.Effect<Collected>
}

export const ledger = (runId: string): Effect.Effect<Ledger, PersistenceError, ArtifactStore> =>
  Effect.gen(function*() {
    const store = yield* ArtifactStore
    const latest = yield* Ref.make<Latest>(remember(new Map(), yield* store.latest(runId)))
    return {
      collect: ({ answer, at, iteration, toolCalls }) =>
        Effect.map(Ref.get(latest), (known): Collected => {
          const artifacts = versionsOf({ produced: producedBy(answer, toolCalls), latest: known, iteration, at })
          return {
            artifacts,
            events: artifacts.map(eventOf),
            committed: Ref.update(latest, (now) => remember(now, artifacts))
          }
        })
    }
  })
