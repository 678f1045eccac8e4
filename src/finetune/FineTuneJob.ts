import { Schema } from "effect"

/**
 * A fine-tune job as autopilot keeps it: which dataset snapshot it trains on, where it runs, and what it
 * became. Statuses are OpenAI's, plus `starting`: claimed for its snapshot, the provider not yet answered.
 */

export const Statuses = ["starting", "validating_files", "queued", "running", "succeeded", "failed", "cancelled"] as const
export const Status = Schema.Literal(...Statuses)
export type Status = typeof Status.Type

/** What a provider says of a job; `starting` is ours alone. */
export const ProviderStatus = Schema.Literal("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
export type ProviderStatus = typeof ProviderStatus.Type

const endings: ReadonlySet<Status> = new Set<Status>(["succeeded", "failed", "cancelled"])

/** A job in one of these statuses never changes again. */
export const isFinished = (status: Status): boolean => endings.has(status)

export class FineTuneJob extends Schema.Class<FineTuneJob>("FineTuneJob")({
  id: Schema.String,
  dataset_id: Schema.String,
  /** The content hash of the dataset file as it was when the job started: one job per snapshot. */
  snapshot: Schema.String,
  samples: Schema.Int,
  file: Schema.String,
  /** `openai` (or a provider speaking its API), `command`, `mock`. */
  provider: Schema.String,
  provider_job_id: Schema.NullOr(Schema.String),
  /**
   * Where the job was started: the base URL for `openai`, the trainer command for `command`. A poller asks
   * only there; jobs started before it was recorded have none.
   */
  endpoint: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  base_model: Schema.String,
  status: Status,
  fine_tuned_model: Schema.NullOr(Schema.String),
  /** The OpenAI-compatible endpoint that serves `fine_tuned_model`. */
  base_url: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  updated_at: Schema.String,
  finished_at: Schema.NullOr(Schema.String)
}) {
  /** A job as it is claimed for its snapshot: `starting`, the provider not yet asked, nothing known of its outcome. */
  static claimed(
    fields: Pick<FineTuneJob, "id" | "dataset_id" | "snapshot" | "samples" | "file" | "provider" | "base_model"> & {
      readonly endpoint?: string | null | undefined
      readonly at: string
    }
  ): FineTuneJob {
    const { at, endpoint, ...rest } = fields
    return new FineTuneJob({
      ...rest,
      endpoint: endpoint ?? null,
      provider_job_id: null,
      status: "starting",
      fine_tuned_model: null,
      base_url: null,
      error: null,
      created_at: at,
      updated_at: at,
      finished_at: null
    })
  }
}

export const EventKinds = [
  "finetune_started",
  "finetune_status",
  "finetune_succeeded",
  "finetune_failed",
  "finetune_cancelled",
  "finetune_message",
  "finetune_start_unknown",
  // After it succeeded: its model's evaluation, and its promotion to traffic or the rollback of it.
  "finetune_evaluated",
  "finetune_promoted",
  "finetune_rolled_back"
] as const
export const EventKind = Schema.Literal(...EventKinds)
export type EventKind = typeof EventKind.Type

/**
 * One entry of a job's own log (a job is not a run, so it has no run's event log). `finetune_message` is
 * what the provider said of the job (its `listEvents`), kept once each by the provider's event id (`ref`).
 * `finetune_start_unknown`: the provider's answer to a start was lost (a timeout, a reset, a 5xx), so it may
 * hold a job; the job stays `starting` and is never started again.
 */
export class JobEvent extends Schema.Class<JobEvent>("JobEvent")({
  job_id: Schema.String,
  seq: Schema.Int,
  kind: EventKind,
  at: Schema.String,
  status: Status,
  message: Schema.NullOr(Schema.String),
  ref: Schema.NullOr(Schema.String)
}) {}

/** A job as a provider reports it. */
export interface ProviderJob {
  readonly id: string
  readonly status: ProviderStatus
  readonly fine_tuned_model: string | null
  readonly base_url: string | null
  readonly error: string | null
}

/** A line the provider logged about a job. */
export interface ProviderEvent {
  readonly id: string
  readonly at: string
  readonly level: string
  readonly message: string
}

export class FineTuneJobNotFound extends Schema.TaggedError<FineTuneJobNotFound>()("FineTuneJobNotFound", {
  id: Schema.String
}) {
  get message() {
    return `no fine-tune job "${this.id}" in this database (see \`autopilot finetune list\`)`
  }
}

/** A provider that could not be asked, or refused: `message` is one line naming it and why. */
export class FineTuneError extends Schema.TaggedError<FineTuneError>()("FineTuneError", {
  message: Schema.String,
  /** No answer at all (down, wrong URL): worth asking again later, unlike a refusal. */
  unreachable: Schema.Boolean,
  /** A refusal asking again will not change (401, 404: a wrong key, an endpoint that moved): polling stops on it. */
  permanent: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * A start whose answer was lost after the request went out (a timeout, a reset, a 5xx): the provider may
   * hold a job. Without it, a failed start certainly created none.
   */
  mayHoldJob: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}
