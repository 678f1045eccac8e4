import { SqlClient, type SqlError } from "@effect/sql"
import { Cause, Clock, Context, Effect, Layer, Option, Schema } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import * as Secret from "../domain/Secret.js"
import * as Database from "../store/Database.js"
import * as HarnessKeys from "./HarnessKeys.js"

// API keys (only a hash of each; the key itself is shown once) and one ledger row per request, which is
// both the spend ledger and the audit log. `day` is the UTC date of `at`, stored so budgets and reports
// group and filter on an index.
// `user` is a reserved word in Postgres: it is quoted wherever it is named. REAL is 4 bytes in Postgres,
// so its floating-point columns are DOUBLE PRECISION there (the SQL SQLite is given is as it always was).
const migrations = {
  "0001_harness": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const real = Database.doubleType(sql)
    yield* sql`CREATE TABLE IF NOT EXISTS harness_keys (
      id TEXT PRIMARY KEY,
      hash TEXT NOT NULL UNIQUE,
      prefix TEXT NOT NULL,
      "user" TEXT NOT NULL,
      team TEXT NULL,
      project TEXT NOT NULL,
      admin INTEGER NOT NULL,
      requests_per_minute INTEGER NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NULL,
      revoked_at TEXT NULL
    )`
    yield* sql`CREATE TABLE IF NOT EXISTS harness_ledger (
      id ${Database.serialKey(sql)},
      at TEXT NOT NULL,
      day TEXT NOT NULL,
      key_id TEXT NOT NULL,
      "user" TEXT NOT NULL,
      team TEXT NULL,
      project TEXT NOT NULL,
      model_requested TEXT NOT NULL,
      model_used TEXT NULL,
      tier TEXT NULL,
      confidence ${real} NULL,
      input_tokens INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL,
      cost_usd ${real} NOT NULL,
      latency_ms ${real} NOT NULL,
      status INTEGER NOT NULL,
      stream INTEGER NOT NULL,
      policy_action TEXT NULL,
      budget_action TEXT NULL,
      error TEXT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS harness_ledger_day ON harness_ledger (day)`
    yield* sql`CREATE INDEX IF NOT EXISTS harness_ledger_user_day ON harness_ledger ("user", day)`
    yield* sql`CREATE INDEX IF NOT EXISTS harness_ledger_team_day ON harness_ledger (team, day)`
    yield* sql`CREATE INDEX IF NOT EXISTS harness_ledger_project_day ON harness_ledger (project, day)`
    yield* sql`CREATE INDEX IF NOT EXISTS harness_ledger_model_day ON harness_ledger (model_used, day)`
  }),
  // Keys made in the same millisecond are listed in the order they were made: SQLite's rowid said so,
  // and Postgres has none. Keys made before this are numbered in their rowid order.
  "0002_key_order": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE harness_keys ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0`
    yield* sql.onDialectOrElse({
      sqlite: () => sql`UPDATE harness_keys SET created_seq = rowid`,
      orElse: () => Effect.void
    })
  })
}

/** SQLite has no booleans: they are stored as 0 and 1. */
const BooleanFromInt = Schema.transform(Schema.Literal(0, 1), Schema.Boolean, {
  strict: true,
  decode: (n) => n === 1,
  encode: (b) => (b ? 1 : 0)
})

/** A key as stored and listed: everything but the key and its hash. */
export const KeyRecord = Schema.Struct({
  id: Schema.String,
  prefix: Schema.String,
  user: Schema.String,
  team: Schema.NullOr(Schema.String),
  project: Schema.String,
  admin: BooleanFromInt,
  /** The key's own limit, over the config's default. */
  requests_per_minute: Schema.NullOr(Schema.Number),
  created_at: Schema.String,
  expires_at: Schema.NullOr(Schema.String),
  revoked_at: Schema.NullOr(Schema.String)
})
export type KeyRecord = typeof KeyRecord.Type

/** One request through the harness: what it cost, and what was decided about it. */
export const LedgerEntry = Schema.Struct({
  at: Schema.String,
  key_id: Schema.String,
  user: Schema.String,
  team: Schema.NullOr(Schema.String),
  project: Schema.String,
  model_requested: Schema.String,
  model_used: Schema.NullOr(Schema.String),
  tier: Schema.NullOr(Schema.String),
  confidence: Schema.NullOr(Schema.Number),
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cost_usd: Schema.Number,
  latency_ms: Schema.Number,
  /** The HTTP status the client got. */
  status: Schema.Number,
  stream: BooleanFromInt,
  policy_action: Schema.NullOr(Schema.String),
  budget_action: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export type LedgerEntry = typeof LedgerEntry.Type

export const AuditEntry = Schema.Struct({ id: Database.Int, day: Schema.String, ...LedgerEntry.fields })
export type AuditEntry = typeof AuditEntry.Type

/** What a budget counts of a ledger row: whose it is, when, and what it cost. */
export const Charge = Schema.Struct({
  id: Database.Int,
  at: Schema.String,
  user: Schema.String,
  team: Schema.NullOr(Schema.String),
  project: Schema.String,
  cost_usd: Schema.Number
})
export type Charge = typeof Charge.Type

export const GroupBy = Schema.Literal("user", "team", "project", "model", "day")
export type GroupBy = typeof GroupBy.Type

export const SpendScope = Schema.Literal("user", "team", "project")
export type SpendScope = typeof SpendScope.Type

/** A report row carries only the columns it was grouped by; team and model may be null. */
export const ReportRow = Schema.Struct({
  user: Schema.optional(Schema.String),
  team: Schema.optional(Schema.NullOr(Schema.String)),
  project: Schema.optional(Schema.String),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  day: Schema.optional(Schema.String),
  requests: Database.Int,
  input_tokens: Database.Int,
  output_tokens: Database.Int,
  cost_usd: Schema.Number
})
export type ReportRow = typeof ReportRow.Type

export interface NewKey {
  readonly user: string
  readonly team?: string | null | undefined
  readonly project: string
  readonly admin?: boolean | undefined
  readonly requests_per_minute?: number | null | undefined
  readonly expires_at?: string | null | undefined
}

export interface SpendQuery {
  readonly scope: SpendScope
  readonly id: string
  readonly from_day: string
  /** Inclusive; no upper bound when absent. */
  readonly to_day?: string | undefined
  /** Only rows up to this ledger id, inclusive: what `charges` has not yet to hand on. */
  readonly through_id?: number | undefined
}

export interface LedgerFilter {
  readonly user?: string | undefined
  readonly team?: string | undefined
  readonly project?: string | undefined
  /** Matches the model used, not the one requested. */
  readonly model?: string | undefined
}

export interface ReportQuery extends LedgerFilter {
  readonly group_by: ReadonlyArray<GroupBy>
  readonly from_day?: string | undefined
  readonly to_day?: string | undefined
}

export interface AuditQuery extends LedgerFilter {
  readonly day?: string | undefined
  readonly key_id?: string | undefined
  /** Default 100, at most 1000. */
  readonly limit?: number | undefined
  /** Only entries older than this id: the `id` of the last entry of the previous page. */
  readonly before_id?: number | undefined
}

// The only identifiers that ever reach SQL text; values are always parameters.
const groupColumns: { readonly [K in GroupBy]: string } = {
  user: "user",
  team: "team",
  project: "project",
  model: "model_used",
  day: "day"
}
const scopeColumns: { readonly [K in SpendScope]: string } = { user: "user", team: "team", project: "project" }

/** The types already forbid other names; this stops one that got past them (an `as`, a JSON body). */
const whitelisted = <K extends string>(columns: { readonly [k in K]: string }, what: string, name: string) =>
  Object.hasOwn(columns, name)
    ? Effect.succeed(name as K)
    : Effect.die(new Cause.IllegalArgumentException(`${what} "${name}" is not one of ${Object.keys(columns).join(", ")}`))

const isoOf = (value: string, what: string) =>
  Effect.suspend(() => {
    const ms = Date.parse(value)
    return Number.isNaN(ms)
      ? Effect.die(new Cause.IllegalArgumentException(`${what} "${value}" is not a date`))
      : Effect.succeed(new Date(ms).toISOString())
  })

const nowIso = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

const DEFAULT_AUDIT_LIMIT = 100
const MAX_AUDIT_LIMIT = 1000

const auditLimit = (limit: number | undefined) =>
  limit === undefined || Number.isNaN(limit) ? DEFAULT_AUDIT_LIMIT : Math.min(MAX_AUDIT_LIMIT, Math.max(0, Math.floor(limit)))

/** Rows of our own tables that do not decode are a bug, not an outcome: they die. */
const decodeRows = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(Schema.Array(schema))
  return (rows: ReadonlyArray<unknown>) => Effect.orDie(decode(rows))
}
const decodeKeys = decodeRows(KeyRecord)
const decodeAudit = decodeRows(AuditEntry)
const decodeReport = decodeRows(ReportRow)
const decodeCharges = decodeRows(Charge)
const decodeIds = decodeRows(Schema.Struct({ id: Database.Int }))
const encodeKey = Schema.encode(KeyRecord)
const encodeEntry = Schema.encode(LedgerEntry)

/**
 * The harness's keys and its ledger, in the autopilot database. The ledger is both the spend ledger
 * budgets are checked against and the audit log: one row per request, appended, never updated.
 */
export class HarnessStore extends Context.Tag("autopilot/HarnessStore")<
  HarnessStore,
  {
    /** The plaintext key is in the answer and nowhere else: only its hash is stored. */
    readonly createKey: (options: NewKey) => Effect.Effect<{ readonly key: string; readonly record: KeyRecord }, PersistenceError>
    /** None for a key that is unknown, revoked, or expired on the Effect Clock. */
    readonly authenticate: (key: string) => Effect.Effect<Option.Option<KeyRecord>, PersistenceError>
    /** Newest first. */
    readonly listKeys: () => Effect.Effect<ReadonlyArray<KeyRecord>, PersistenceError>
    /** False when there is no such key or it was already revoked. */
    readonly revokeKey: (id: string) => Effect.Effect<boolean, PersistenceError>
    /** Appends an entry and gives its id; `day` is the UTC date of `at`. */
    readonly record: (entry: LedgerEntry) => Effect.Effect<number, PersistenceError>
    /** Appends entries in order in one statement: all of them or, failing, none. */
    readonly recordAll: (entries: ReadonlyArray<LedgerEntry>) => Effect.Effect<void, PersistenceError>
    /** Dollars spent by a user, team or project from `from_day` to `to_day`, both inclusive. */
    readonly spend: (query: SpendQuery) => Effect.Effect<number, PersistenceError>
    /** The newest ledger id, 0 for an empty ledger. */
    readonly lastId: () => Effect.Effect<number, PersistenceError>
    /** Rows after ledger id `after`, oldest first, from this process or any other on the database. */
    readonly charges: (after: number) => Effect.Effect<ReadonlyArray<Charge>, PersistenceError>
    /** Totals per group, ordered by the group columns in the order given. */
    readonly report: (query: ReportQuery) => Effect.Effect<ReadonlyArray<ReportRow>, PersistenceError>
    /** Newest first; page on with `before_id`. */
    readonly audit: (query: AuditQuery) => Effect.Effect<ReadonlyArray<AuditEntry>, PersistenceError>
  }
>() {
  static readonly make = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Database.migrate("autopilot_harness_migrations", migrations)

    const keyColumns = sql.literal(
      `id, prefix, "user", team, project, admin, requests_per_minute, created_at, expires_at, revoked_at`
    )

    const createKey = (options: NewKey) =>
      Effect.gen(function*() {
        const generated = HarnessKeys.generate()
        const record: KeyRecord = {
          id: generated.id,
          prefix: generated.prefix,
          user: options.user,
          team: options.team ?? null,
          project: options.project,
          admin: options.admin ?? false,
          requests_per_minute: options.requests_per_minute ?? null,
          created_at: yield* nowIso,
          expires_at: options.expires_at == null ? null : yield* isoOf(options.expires_at, "expires_at"),
          revoked_at: null
        }
        const row = yield* Effect.orDie(encodeKey(record))
        yield* sql`
          INSERT INTO harness_keys (${keyColumns}, hash, created_seq) VALUES (
            ${row.id}, ${row.prefix}, ${row.user}, ${row.team}, ${row.project}, ${row.admin}, ${row.requests_per_minute},
            ${row.created_at}, ${row.expires_at}, ${row.revoked_at}, ${generated.hash},
            (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM harness_keys)
          )
        `
        return { key: generated.key, record }
      })

    const authenticate = (key: string) =>
      HarnessKeys.looksLikeKey(key)
        ? Effect.gen(function*() {
          const rows = yield* sql`SELECT ${keyColumns} FROM harness_keys WHERE hash = ${Secret.hashOf(key)}`
          const [found] = yield* decodeKeys(rows)
          const now = yield* Clock.currentTimeMillis
          return Option.filter(
            Option.fromNullable(found),
            (k) => k.revoked_at === null && (k.expires_at === null || Date.parse(k.expires_at) > now)
          )
        })
        : Effect.succeedNone

    // Keys made in the same millisecond keep the order they were made in.
    const listKeys = () =>
      sql`SELECT ${keyColumns} FROM harness_keys ORDER BY created_at DESC, created_seq DESC`.pipe(
      Effect.flatMap(decodeKeys)
    )

    const revokeKey = (id: string) =>
      Effect.gen(function*() {
        const revoked = yield* sql`
          UPDATE harness_keys SET revoked_at = ${yield* nowIso} WHERE id = ${id} AND revoked_at IS NULL RETURNING id
        `
        return revoked.length > 0
      })

    const record = (entry: LedgerEntry) =>
      Effect.gen(function*() {
        const at = yield* isoOf(entry.at, "at")
        const row = yield* Effect.orDie(encodeEntry({ ...entry, at }))
        const [inserted] = yield* sql`
          INSERT INTO harness_ledger ${sql.insert({ ...row, day: at.slice(0, 10) })} RETURNING id
        `.pipe(Effect.flatMap(decodeIds))
        return inserted === undefined ? yield* Effect.dieMessage("INSERT ... RETURNING gave no row") : inserted.id
      })

    const rowOf = (entry: LedgerEntry) =>
      Effect.gen(function*() {
        const at = yield* isoOf(entry.at, "at")
        const row = yield* Effect.orDie(encodeEntry({ ...entry, at }))
        return { ...row, day: at.slice(0, 10) }
      })

    // One multi-row INSERT: a single statement is atomic on both databases, and 21 columns a row keep a
    // batch of 256 well under SQLite's 32,766 parameters.
    const recordAll = (entries: ReadonlyArray<LedgerEntry>) =>
      entries.length === 0
        ? Effect.void
        : Effect.flatMap(Effect.forEach(entries, rowOf), (rows) => Effect.asVoid(sql`INSERT INTO harness_ledger ${sql.insert(rows)}`))

    const filters = (query: LedgerFilter & {
      readonly from_day?: string | undefined
      readonly to_day?: string | undefined
      readonly day?: string | undefined
      readonly key_id?: string | undefined
      readonly before_id?: number | undefined
      readonly through_id?: number | undefined
    }) =>
      sql.and([
        ...(query.user === undefined ? [] : [sql`${sql("user")} = ${query.user}`]),
        ...(query.team === undefined ? [] : [sql`team = ${query.team}`]),
        ...(query.project === undefined ? [] : [sql`project = ${query.project}`]),
        ...(query.model === undefined ? [] : [sql`model_used = ${query.model}`]),
        ...(query.day === undefined ? [] : [sql`day = ${query.day}`]),
        ...(query.from_day === undefined ? [] : [sql`day >= ${query.from_day}`]),
        ...(query.to_day === undefined ? [] : [sql`day <= ${query.to_day}`]),
        ...(query.key_id === undefined ? [] : [sql`key_id = ${query.key_id}`]),
        ...(query.before_id === undefined ? [] : [sql`id < ${query.before_id}`]),
        ...(query.through_id === undefined ? [] : [sql`id <= ${query.through_id}`])
      ])

    const spend = (query: SpendQuery) =>
      Effect.gen(function*() {
        const scope = yield* whitelisted(scopeColumns, "spend scope", query.scope)
        const [row] = yield* sql<{ total: number }>`
          SELECT COALESCE(SUM(cost_usd), 0) AS total FROM harness_ledger
          WHERE ${sql(scopeColumns[scope])} = ${query.id} AND ${
          filters({ from_day: query.from_day, to_day: query.to_day, through_id: query.through_id })
        }
        `
        return row?.total ?? 0
      })

    const lastId = () =>
      sql`SELECT COALESCE(MAX(id), 0) AS id FROM harness_ledger`.pipe(Effect.flatMap(decodeIds), Effect.map(([row]) => row?.id ?? 0))

    const charges = (after: number) =>
      sql`SELECT id, at, "user", team, project, cost_usd FROM harness_ledger WHERE id > ${after} ORDER BY id`.pipe(
        Effect.flatMap(decodeCharges)
      )

    const report = (query: ReportQuery) =>
      Effect.gen(function*() {
        const groups = [...new Set(yield* Effect.forEach(query.group_by, (g) => whitelisted(groupColumns, "group_by", g)))]
        const columns = groups.map((g) => sql`${sql(groupColumns[g])}`)
        // A null group (no team, no model) first, as SQLite has it; Postgres would put it last.
        const order = groups.map((g) => sql`${sql(groupColumns[g])} NULLS FIRST`)
        const rows = yield* sql`
          SELECT ${
          sql.csv([
            ...groups.map((g) => sql`${sql(groupColumns[g])} AS ${sql(g)}`),
            "COUNT(*) AS requests",
            "COALESCE(SUM(input_tokens), 0) AS input_tokens",
            "COALESCE(SUM(output_tokens), 0) AS output_tokens",
            "COALESCE(SUM(cost_usd), 0) AS cost_usd"
          ])
        }
          FROM harness_ledger WHERE ${filters(query)}
          ${sql.csv("GROUP BY", columns)} ${sql.csv("ORDER BY", order)}
        `
        return yield* decodeReport(rows)
      })

    const audit = (query: AuditQuery) =>
      sql`SELECT * FROM harness_ledger WHERE ${filters(query)} ORDER BY id DESC LIMIT ${auditLimit(query.limit)}`.pipe(
        Effect.flatMap(decodeAudit)
      )

    // Callers see one domain error for a database that failed, whatever its driver.
    const refail = <Args extends ReadonlyArray<any>, A>(f: (...args: Args) => Effect.Effect<A, SqlError.SqlError>) =>
    (...args: Args) => Database.refail(f(...args))
    return HarnessStore.of({
      createKey: refail(createKey),
      authenticate: refail(authenticate),
      listKeys: refail(listKeys),
      revokeKey: refail(revokeKey),
      record: refail(record),
      recordAll: refail(recordAll),
      spend: refail(spend),
      lastId: refail(lastId),
      charges: refail(charges),
      report: refail(report),
      audit: refail(audit)
    })
  })

  static readonly layer = Layer.effect(HarnessStore, HarnessStore.make)
}
