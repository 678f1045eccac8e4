import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type { BudgetUsage } from "../domain/Budget.js"
import type { PersistenceError } from "../domain/Errors.js"
import { type AutopilotEvent, AutopilotEventJson } from "../domain/Event.js"
import * as Database from "./Database.js"

const encodeEvent = Schema.encodeSync(AutopilotEventJson)
const decodeEvent = Schema.decodeUnknownOption(AutopilotEventJson)

/** An event with its place in the whole log: the order in which events became durable. */
export interface StoredEvent {
  readonly id: number
  readonly event: AutopilotEvent
}

const migrations = {
  "0001_events": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS events (
      id ${Database.serialKey(sql)},
      run_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      kind TEXT NOT NULL,
      body TEXT NOT NULL,
      UNIQUE (run_id, seq)
    )`
  })
}

export interface EventPage {
  readonly events: ReadonlyArray<StoredEvent>
  readonly lastId: number | undefined
  readonly end: boolean
}

/** Every run's events, appended once durable and never rewritten. */
export class EventStore extends Context.Tag("autopilot/EventStore")<
  EventStore,
  {
    /** Events of any runs, each run's in seq order. */
    readonly append: (events: ReadonlyArray<AutopilotEvent>) => Effect.Effect<void, PersistenceError>
    /** Events in the order they became durable, after the given event id (0 for all). */
    readonly after: (runId: string, afterId: number) => Effect.Effect<ReadonlyArray<StoredEvent>, PersistenceError>
    /**
     * At most `limit` rows after the given event id, with the id of the last row read and whether it was the
     * log's end: a row this version cannot decode (a newer one's event kind) is skipped, not taken for the end.
     */
    readonly page: (runId: string, afterId: number, limit: number) => Effect.Effect<EventPage, PersistenceError>
    /**
     * The id to read a run's log after to get its events after seq `seq` (0 if it has none up to it): a run's
     * events are written in seq order, so those after the seq come after that row. One index seek by
     * `(run_id, seq)`, not a read of the log up to it.
     */
    readonly idAtSeq: (runId: string, seq: number) => Effect.Effect<number, PersistenceError>
    /** Every `run_started` event of a run, oldest first: what is left of it when its checkpoint is gone. */
    readonly sessions: (runId: string) => Effect.Effect<ReadonlyArray<AutopilotEvent>, PersistenceError>
    readonly nextSeq: (runId: string) => Effect.Effect<number, PersistenceError>
    /**
     * Usage as of the run's newest event that carries it: a heartbeat is newer than the checkpoint when a
     * session was killed mid-iteration, and the event log outlives a checkpoint or steps that are corrupt.
     */
    readonly lastUsage: (runId: string) => Effect.Effect<Option.Option<BudgetUsage>, PersistenceError>
    /** Deletes every event of a run, when the run itself is deleted. */
    readonly remove: (runId: string) => Effect.Effect<void, PersistenceError>
  }
>() {}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Database.migrate("autopilot_events_migrations", migrations)

  const decodeStored = (rows: ReadonlyArray<{ readonly id: number; readonly body: string }>): ReadonlyArray<StoredEvent> =>
    rows.flatMap((row) => Option.toArray(Option.map(decodeEvent(row.body), (event) => ({ id: Number(row.id), event }))))

  const decodeAll = (rows: ReadonlyArray<{ readonly body: string }>) => rows.flatMap((row) => Option.toArray(decodeEvent(row.body)))

  return EventStore.of({
    append: (events) =>
      Database.inSlices(events, (slice) =>
        sql`INSERT INTO events ${
          sql.insert(slice.map((e) => ({ run_id: e.run_id, seq: e.seq, kind: e.kind, body: encodeEvent(e) })))
        }`).pipe(Effect.asVoid, Database.refail),
    after: (runId, afterId) =>
      sql<{ id: number; body: string }>`SELECT id, body FROM events WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id`.pipe(
        Effect.map(decodeStored),
        Database.refail
      ),
    page: (runId, afterId, limit) =>
      sql<{ id: number; body: string }>`SELECT id, body FROM events WHERE run_id = ${runId} AND id > ${afterId} ORDER BY id LIMIT ${limit}`.pipe(
        Effect.map((rows): EventPage => ({
          events: decodeStored(rows),
          lastId: rows.length === 0 ? undefined : Number(rows[rows.length - 1]!.id),
          end: rows.length < limit
        })),
        Database.refail
      ),
    // The last row at or before the seq, not the row of the seq itself: a client may name a seq beyond the end.
    idAtSeq: (runId, seq) =>
      sql<{ id: number }>`SELECT id FROM events WHERE run_id = ${runId} AND seq <= ${seq} ORDER BY seq DESC LIMIT 1`.pipe(
        Effect.map((rows) => Number(rows[0]?.id ?? 0)),
        Database.refail
      ),
    sessions: (runId) =>
      sql<{ body: string }>`SELECT body FROM events WHERE run_id = ${runId} AND kind = 'run_started' ORDER BY id`.pipe(
        Effect.map(decodeAll),
        Database.refail
      ),
    nextSeq: (runId) =>
      sql<{ next: number }>`SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM events WHERE run_id = ${runId}`.pipe(
        Effect.map((rows) => Number(rows[0]?.next ?? 0)),
        Database.refail
      ),
    lastUsage: (runId) =>
      sql<{ body: string }>`
        SELECT body FROM events
        WHERE run_id = ${runId} AND kind IN ('run_started', 'heartbeat', 'iteration', 'budget_exceeded', 'result')
        ORDER BY seq DESC LIMIT 1
      `.pipe(
        Effect.map((rows) => Option.firstSomeOf(decodeAll(rows).map((e) => ("usage" in e ? Option.some(e.usage) : Option.none())))),
        Database.refail
      ),
    remove: (runId) => sql`DELETE FROM events WHERE run_id = ${runId}`.pipe(Effect.asVoid, Database.refail)
  })
})

export const layer = Layer.effect(EventStore, make)
