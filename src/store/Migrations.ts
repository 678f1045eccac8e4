import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The schema, one migration per change, never edited once released. `checkpoints` holds one row per run
 * and is overwritten; `steps` and `events` are appended, so a checkpoint costs the same at any iteration.
 * `steps` keeps its rowid: a step (~1.3 KB) is too big for a WITHOUT ROWID page and would spill each row
 * to its own overflow page, more than doubling the file.
 */
const migrations = {
  "0001_core": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE checkpoints (
      run_id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE quarantine (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      run_id TEXT NOT NULL,
      state BLOB NOT NULL,
      error TEXT NOT NULL,
      quarantined_at TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE steps (
      run_id TEXT NOT NULL,
      iteration INTEGER NOT NULL,
      body TEXT NOT NULL,
      PRIMARY KEY (run_id, iteration)
    )`
    yield* sql`CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      run_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      kind TEXT NOT NULL,
      body TEXT NOT NULL,
      UNIQUE (run_id, seq)
    )`
    yield* sql`CREATE TABLE stop_requests (
      run_id TEXT PRIMARY KEY,
      reason TEXT NOT NULL,
      requested_at TEXT NOT NULL
    )`
  })
}

export const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations) })
