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
  }),
  // The harness: API keys (only a hash of each; the key itself is shown once) and one ledger row per
  // request, which is both the spend ledger and the audit log. `day` is the UTC date of `at`, stored so
  // budgets and reports group and filter on an index.
  "0002_harness": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE harness_keys (
      id TEXT PRIMARY KEY,
      hash TEXT NOT NULL UNIQUE,
      prefix TEXT NOT NULL,
      user TEXT NOT NULL,
      team TEXT NULL,
      project TEXT NOT NULL,
      admin INTEGER NOT NULL,
      requests_per_minute INTEGER NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NULL,
      revoked_at TEXT NULL
    )`
    yield* sql`CREATE TABLE harness_ledger (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      day TEXT NOT NULL,
      key_id TEXT NOT NULL,
      user TEXT NOT NULL,
      team TEXT NULL,
      project TEXT NOT NULL,
      model_requested TEXT NOT NULL,
      model_used TEXT NULL,
      tier TEXT NULL,
      confidence REAL NULL,
      input_tokens INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL,
      cost_usd REAL NOT NULL,
      latency_ms REAL NOT NULL,
      status INTEGER NOT NULL,
      stream INTEGER NOT NULL,
      policy_action TEXT NULL,
      budget_action TEXT NULL,
      error TEXT NULL
    )`
    yield* sql`CREATE INDEX harness_ledger_day ON harness_ledger (day)`
    yield* sql`CREATE INDEX harness_ledger_user_day ON harness_ledger (user, day)`
    yield* sql`CREATE INDEX harness_ledger_team_day ON harness_ledger (team, day)`
    yield* sql`CREATE INDEX harness_ledger_project_day ON harness_ledger (project, day)`
    yield* sql`CREATE INDEX harness_ledger_model_day ON harness_ledger (model_used, day)`
  })
}

export const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations) })
