import { Schema } from "effect"

/** Input a user gave that cannot be used; `message` is one line naming what was wrong and what is allowed. */
export class BadInput extends Schema.TaggedError<BadInput>()("BadInput", {
  message: Schema.String
}) {}

export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  run_id: Schema.String
}) {
  get message() {
    return `no run with id "${this.run_id}" in this database (see \`autopilot runs\`)`
  }
}

export class RunAlreadyExists extends Schema.TaggedError<RunAlreadyExists>()("RunAlreadyExists", {
  run_id: Schema.String,
  status: Schema.String
}) {
  get message() {
    // `autopilot resume` continues a mission and a fan-out alike; only `run` has a --resume flag.
    return `run "${this.run_id}" already exists (status ${this.status}); \`autopilot resume ${this.run_id}\` continues it, or choose another --run-id`
  }
}

/**
 * A model call that failed; `transient` ones are worth retrying, no sooner than `retry_after_ms` when
 * the provider said how long to wait (a 429's Retry-After). `budget_exhausted` means a proxy (the harness,
 * LiteLLM) refused because a spend budget it keeps is gone: the run halts on it as on its own dollar axis.
 */
export class LlmError extends Schema.TaggedError<LlmError>()("LlmError", {
  message: Schema.String,
  transient: Schema.Boolean,
  retry_after_ms: Schema.optional(Schema.Number),
  budget_exhausted: Schema.optional(Schema.Boolean)
}) {}

/** A tool that could not do what it was asked; reported back to the model, never fatal to the run. */
export class ToolError extends Schema.TaggedError<ToolError>()("ToolError", {
  message: Schema.String
}) {}

/** A checkpoint row that no longer decodes; resuming the run quarantines it. */
export class CorruptCheckpoint extends Schema.TaggedError<CorruptCheckpoint>()("CorruptCheckpoint", {
  run_id: Schema.String,
  error: Schema.String
}) {
  get message() {
    return `the checkpoint of run "${this.run_id}" is corrupt (${this.error}); \`autopilot resume ${this.run_id}\` quarantines it and continues from the run's history`
  }
}

/** A run whose checkpoint is held by a process that is still alive. */
export class RunInProgress extends Schema.TaggedError<RunInProgress>()("RunInProgress", {
  run_id: Schema.String,
  pid: Schema.Int,
  host: Schema.String
}) {
  get message() {
    return `run "${this.run_id}" is still running in process ${this.pid} on ${this.host}; stop it first (autopilot stop ${this.run_id}), or pass --force if that process is gone`
  }
}

/**
 * The database refused a read or a write. `busy`: another writer held a lock past the wait, so the same
 * write may go through if tried again; anything else is not worth retrying.
 */
export class PersistenceError extends Schema.TaggedError<PersistenceError>()("PersistenceError", {
  message: Schema.String,
  busy: Schema.Boolean
}) {}

/**
 * A run whose checkpoint says running while the process that owned it is gone (kill -9, a crash): it
 * will never write its end by itself, and `autopilot resume` continues it.
 */
export class RunInterrupted extends Schema.TaggedError<RunInterrupted>()("RunInterrupted", {
  run_id: Schema.String,
  pid: Schema.NullOr(Schema.Int),
  host: Schema.NullOr(Schema.String)
}) {
  /** The command that continues the run. */
  get resume() {
    return `autopilot resume ${this.run_id}`
  }

  /** What happened and what to do about it. */
  get reason() {
    const process = this.pid === null ? "its process" : `process ${this.pid} on ${this.host}`
    return `${process} is gone; \`${this.resume}\` continues it`
  }

  get message() {
    return `run "${this.run_id}" is interrupted: ${this.reason}`
  }
}

/**
 * A database that cannot be used at all: a Postgres server that cannot be reached, a login it refuses, a
 * database it does not have. Names the host and port, never a password.
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  host: Schema.String,
  port: Schema.String,
  database: Schema.String,
  reason: Schema.String
}) {
  get message() {
    return `cannot use Postgres database "${this.database}" at ${this.host}:${this.port}: ${this.reason}`
  }
}
