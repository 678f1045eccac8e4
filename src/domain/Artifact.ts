import { Schema } from "effect"

/** `code`: a fenced code block; `markdown`: a markdown document; `file`: a file a tool wrote in the workspace. */
export const ArtifactKind = Schema.Literal("code", "markdown", "file")
export type ArtifactKind = typeof ArtifactKind.Type

/**
 * What an artifact keeps of its content, in UTF-8 bytes: past it, the stored content ends with a
 * truncation marker line. Above what an answer usually holds, below write_file's 1 MiB.
 */
export const maxArtifactBytes = 256 * 1024

/** One version of an artifact, without its content: what listings and `artifact` events show. */
export class ArtifactInfo extends Schema.Class<ArtifactInfo>("ArtifactInfo")({
  /** Unique within its run: the file name it is written to by `autopilot artifacts --out`. */
  name: Schema.String,
  /** 1, 2, … per name within its run. */
  version: Schema.Int.pipe(Schema.positive()),
  /** The iteration that produced it. */
  iteration: Schema.Int,
  kind: ArtifactKind,
  /** A code block's language, as its info string gives it. */
  language: Schema.optionalWith(Schema.String, { exact: true }),
  /** For a file a tool wrote: its path inside the workspace. */
  path: Schema.optionalWith(Schema.String, { exact: true }),
  /** The size of the content as produced, in UTF-8 bytes, before the cap. */
  bytes: Schema.Int,
  /** Whether the stored content was cut at `maxArtifactBytes` (it then ends with a marker line). */
  truncated: Schema.Boolean,
  /** SHA-256 of the content as produced (hex): the same content again is not a new version. */
  sha256: Schema.String,
  at: Schema.String
}) {}

/** One version of an artifact with its stored content. */
export class Artifact extends ArtifactInfo.extend<Artifact>("Artifact")({
  content: Schema.String
}) {}
