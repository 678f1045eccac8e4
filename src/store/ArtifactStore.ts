import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { Artifact, ArtifactInfo, ArtifactKind } from "../domain/Artifact.js"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

const migrations = {
  // Content as bytes: Postgres TEXT cannot hold a NUL character, which a tool-written file may have.
  "0001_artifacts": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS artifacts (
      run_id TEXT NOT NULL,
      name TEXT NOT NULL,
      version INTEGER NOT NULL,
      iteration INTEGER NOT NULL,
      kind TEXT NOT NULL,
      language TEXT NULL,
      path TEXT NULL,
      bytes INTEGER NOT NULL,
      truncated INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      at TEXT NOT NULL,
      content ${Database.bytesType(sql)} NOT NULL,
      PRIMARY KEY (run_id, name, version)
    )`
  })
}

/** The columns of a version as the database returns them. */
const InfoRow = Schema.Struct({
  name: Schema.String,
  version: Schema.Number,
  iteration: Schema.Number,
  kind: ArtifactKind,
  language: Schema.NullOr(Schema.String),
  path: Schema.NullOr(Schema.String),
  bytes: Schema.Number,
  truncated: Schema.Number,
  sha256: Schema.String,
  at: Schema.String
})

const ContentRow = Schema.Struct({ ...InfoRow.fields, content: Schema.Uint8ArrayFromSelf })

const decodeInfo = Schema.decodeUnknownOption(InfoRow)
const decodeContent = Schema.decodeUnknownOption(ContentRow)

const infoOf = ({ language, path, truncated, ...row }: typeof InfoRow.Type) =>
  new ArtifactInfo({
    ...row,
    ...(language === null ? {} : { language }),
    ...(path === null ? {} : { path }),
    truncated: truncated !== 0
  })

const utf8 = new TextDecoder()

const columns = "name, version, iteration, kind, language, path, bytes, truncated, sha256, at"

/** A run's artifacts, every version kept: appended with the iteration that made them, never rewritten. */
export class ArtifactStore extends Context.Tag("autopilot/ArtifactStore")<
  ArtifactStore,
  {
    readonly append: (runId: string, artifacts: ReadonlyArray<Artifact>) => Effect.Effect<void, PersistenceError>
    /** The latest version of each name, without content. */
    readonly latest: (runId: string) => Effect.Effect<ReadonlyArray<ArtifactInfo>, PersistenceError>
    /** Every version, without content, by name and then version. */
    readonly list: (runId: string) => Effect.Effect<ReadonlyArray<ArtifactInfo>, PersistenceError>
    /** The latest version of each name with its content, by name. */
    readonly latestContents: (runId: string) => Effect.Effect<ReadonlyArray<Artifact>, PersistenceError>
    /** One artifact's content as stored: its `version`, or its latest; none if there is no such artifact. */
    readonly content: (runId: string, name: string, version?: number) => Effect.Effect<Option.Option<Uint8Array>, PersistenceError>
    /** How many artifacts (names) a run has. */
    readonly count: (runId: string) => Effect.Effect<number, PersistenceError>
    /** Deletes every version of a run's artifacts, when the run itself is deleted. */
    readonly remove: (runId: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_artifacts_migrations", migrations)

  const isLatest = sql`version = (SELECT MAX(b.version) FROM artifacts b WHERE b.run_id = artifacts.run_id AND b.name = artifacts.name)`

  const infos = (rows: ReadonlyArray<unknown>) => rows.flatMap((row) => Option.toArray(Option.map(decodeInfo(row), infoOf)))

  return ArtifactStore.of({
    append: (runId, artifacts) =>
      artifacts.length === 0
        ? Effect.void
        : sql`INSERT INTO artifacts ${
          sql.insert(artifacts.map((a) => ({
            run_id: runId,
            name: a.name,
            version: a.version,
            iteration: a.iteration,
            kind: a.kind,
            language: a.language ?? null,
            path: a.path ?? null,
            bytes: a.bytes,
            truncated: a.truncated ? 1 : 0,
            sha256: a.sha256,
            at: a.at,
            content: Buffer.from(a.content, "utf8")
          })))
        }`.pipe(Effect.asVoid, Database.refail),
    latest: (runId) =>
      sql`SELECT ${sql.literal(columns)} FROM artifacts WHERE run_id = ${runId} AND ${isLatest} ORDER BY name`.pipe(
        Effect.map(infos),
        Database.refail
      ),
    list: (runId) =>
      sql`SELECT ${sql.literal(columns)} FROM artifacts WHERE run_id = ${runId} ORDER BY name, version`.pipe(
        Effect.map(infos),
        Database.refail
      ),
    latestContents: (runId) =>
      sql`SELECT ${sql.literal(columns)}, content FROM artifacts WHERE run_id = ${runId} AND ${isLatest} ORDER BY name`.pipe(
        Effect.map((rows) =>
          rows.flatMap((row) =>
            Option.toArray(Option.map(decodeContent(row), ({ content, ...info }) =>
              new Artifact({ ...infoOf(info), content: utf8.decode(content) })))
          )
        ),
        Database.refail
      ),
    content: (runId, name, version) =>
      sql<{ content: Uint8Array }>`SELECT content FROM artifacts WHERE run_id = ${runId} AND name = ${name} AND ${
        version === undefined ? isLatest : sql`version = ${version}`
      }`.pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (row) => new Uint8Array(row.content))),
        Database.refail
      ),
    count: (runId) =>
      sql<{ n: number }>`SELECT COUNT(DISTINCT name) AS n FROM artifacts WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => Number(rows[0]?.n ?? 0)),
        Database.refail
      ),
    remove: (runId) => sql`DELETE FROM artifacts WHERE run_id = ${runId}`.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer = Layer.effect(ArtifactStore, make)
