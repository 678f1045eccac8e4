import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { PersistenceError } from "../domain/Errors.js"
import { QueueEntry, type QueueStatus } from "../domain/QueueEntry.js"
import * as Database from "./Database.js"

const migrations = {
  // `seq` numbers the entries in the order they were queued: the tie-break between equal priorities.
  "0001_queue_entries": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS queue_entries (
      seq ${Database.serialKey(sql)},
      id TEXT NOT NULL UNIQUE,
      objective TEXT NOT NULL,
      criteria TEXT NOT NULL,
      policy TEXT NOT NULL,
      specialist TEXT NULL,
      llm TEXT NOT NULL,
      priority INTEGER NOT NULL,
      not_before TEXT NULL,
      status TEXT NOT NULL,
      created_at TEXT NOT NULL,
      dispatched_at TEXT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS queue_entries_by_turn ON queue_entries (status, priority, seq)`
  }),
  // Each entry's project, so one project's queue is one indexed query; earlier entries are the default project's.
  "0002_queue_entries_project": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE queue_entries ADD COLUMN project TEXT NOT NULL DEFAULT 'default'`
    yield* sql`CREATE INDEX IF NOT EXISTS queue_entries_by_project ON queue_entries (project, status, priority, seq)`
  })
}

const Json = Schema.parseJson()

/** A row as the database returns it: the JSON columns parsed, then the whole decoded as a `QueueEntry`. */
const Row = Schema.Struct({
  id: Schema.String,
  objective: Schema.String,
  criteria: Json,
  policy: Json,
  specialist: Schema.NullOr(Json),
  llm: Json,
  priority: Schema.Number,
  not_before: Schema.NullOr(Schema.String),
  status: Schema.String,
  created_at: Schema.String,
  dispatched_at: Schema.NullOr(Schema.String),
  project: Schema.String
})

const decodeRow = Schema.decodeUnknown(Row)
const decodeEntry = Schema.decodeUnknown(QueueEntry)
const encodeEntry = Schema.encodeSync(QueueEntry)

const columns = "id, objective, criteria, policy, specialist, llm, priority, not_before, status, created_at, dispatched_at, project"

/** A row that no longer decodes is reported, never skipped in silence; `queue remove` still removes it. */
const entryOf = (row: unknown) =>
  Effect.flatMap(decodeRow(row), decodeEntry).pipe(
    Effect.mapError((error) => {
      const id = String((row as { id?: unknown }).id)
      return new PersistenceError({
        message: `queue entry ${id} in the database does not decode (\`autopilot queue remove ${id}\` removes it): ${Database.decodeError(error)}`,
        busy: false
      })
    })
  )

const rowOf = (entry: QueueEntry) => {
  const encoded = encodeEntry(entry)
  return {
    ...encoded,
    criteria: JSON.stringify(encoded.criteria),
    policy: JSON.stringify(encoded.policy),
    specialist: encoded.specialist === null ? null : JSON.stringify(encoded.specialist),
    llm: JSON.stringify(encoded.llm)
  }
}

/**
 * The goal queue's entries, one row each. A queued entry is taken by exactly one daemon: `dispatch` moves
 * it to `dispatched` only if it is still queued, in one statement, so two daemons racing for it cannot both
 * win. A dispatched entry stays as the record of what was queued and when it was taken.
 */
export class QueueStore extends Context.Tag("autopilot/QueueStore")<
  QueueStore,
  {
    /** A new entry; false, writing nothing, if its id is already in the queue. */
    readonly insert: (entry: QueueEntry) => Effect.Effect<boolean, PersistenceError>
    readonly get: (id: string) => Effect.Effect<Option.Option<QueueEntry>, PersistenceError>
    /**
     * Queued entries in the order daemons take them (priority, highest first, then the order they were
     * queued); dispatched ones most recently taken first.
     */
    readonly list: (status: QueueStatus, project?: string) => Effect.Effect<ReadonlyArray<QueueEntry>, PersistenceError>
    /** Up to `limit` queued entries whose not-before is at or before `now` (ISO, UTC), in the order they are taken. */
    readonly ready: (now: string, limit: number) => Effect.Effect<ReadonlyArray<QueueEntry>, PersistenceError>
    /** Marks a queued entry dispatched at `at`; false if it is not queued (taken by another, or removed). */
    readonly dispatch: (id: string, at: string) => Effect.Effect<boolean, PersistenceError>
    /** Deletes a queued entry, read or not; false if it is not queued (or, with `project`, is another project's). */
    readonly remove: (id: string, project?: string) => Effect.Effect<boolean, PersistenceError>
    /** An entry's status, without decoding the rest of it; none for another project's, when `project` is given. */
    readonly statusOf: (id: string, project?: string) => Effect.Effect<Option.Option<string>, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_queue_migrations", migrations)

  const select = (rows: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>) =>
    rows.pipe(Database.refail, Effect.flatMap((rows) => Effect.forEach(rows, entryOf)))

  return QueueStore.of({
    insert: (entry) =>
      sql`INSERT INTO queue_entries ${sql.insert(rowOf(entry))} ON CONFLICT (id) DO NOTHING RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Database.refail
      ),
    get: (id) => Effect.map(select(sql`SELECT ${sql.literal(columns)} FROM queue_entries WHERE id = ${id}`), (entries) => Option.fromNullable(entries[0])),
    list: (status, project) => {
      const inProject = project === undefined ? sql`` : sql`AND project = ${project}`
      return select(
        status === "queued"
          ? sql`SELECT ${sql.literal(columns)} FROM queue_entries WHERE status = 'queued' ${inProject} ORDER BY priority DESC, seq`
          : sql`SELECT ${sql.literal(columns)} FROM queue_entries WHERE status = ${status} ${inProject} ORDER BY dispatched_at DESC, seq DESC`
      )
    },
    ready: (now, limit) =>
      select(sql`
        SELECT ${sql.literal(columns)} FROM queue_entries
        WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ${now})
        ORDER BY priority DESC, seq LIMIT ${limit}
      `),
    dispatch: (id, at) =>
      sql`UPDATE queue_entries SET status = 'dispatched', dispatched_at = ${at} WHERE id = ${id} AND status = 'queued' RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Database.refail
      ),
    remove: (id, project) =>
      sql`DELETE FROM queue_entries WHERE id = ${id} AND status = 'queued' ${project === undefined ? sql`` : sql`AND project = ${project}`} RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Database.refail
      ),
    statusOf: (id, project) =>
      sql<{ status: string }>`SELECT status FROM queue_entries WHERE id = ${id} ${project === undefined ? sql`` : sql`AND project = ${project}`}`.pipe(
        Effect.map((rows) => Option.fromNullable(rows[0]?.status)),
        Database.refail
      )
  })
})

export const layer = Layer.effect(QueueStore, make)
