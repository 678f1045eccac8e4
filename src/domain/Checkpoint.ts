import { Schema } from "effect"
import { BudgetPolicy, BudgetUsage } from "./Budget.js"
import { CriticSettings } from "./Critic.js"
import { FanoutSpec } from "./Fanout.js"
import { LlmChoice } from "./LlmChoice.js"
import { Goal } from "./Goal.js"
import { MissionRef } from "./MissionRun.js"
import { Owner } from "./Owner.js"
import { RunStatus } from "./RunStatus.js"
import { Specialist } from "../specialists/Specialist.js"

/**
 * The latest state of a run: one row per run, overwritten after every iteration. It is small and of
 * constant size; the history lives in the append-only steps and events tables.
 */
export class Checkpoint extends Schema.Class<Checkpoint>("Checkpoint")({
  version: Schema.Literal(1),
  run_id: Schema.String,
  goal: Goal,
  policy: BudgetPolicy,
  status: RunStatus,
  halt_reason: Schema.NullOr(Schema.String),
  usage: BudgetUsage,
  criteria_met: Schema.Array(Schema.Boolean),
  output: Schema.String,
  owner: Schema.optionalWith(Schema.NullOr(Owner), { default: () => null }),
  /** The model Layer the run runs on, so a resume uses it again; absent for a library caller's own Layer. */
  llm: Schema.optionalWith(LlmChoice, { exact: true }),
  /** The run's critic, if it has one, so a resume keeps it. */
  critic: Schema.optionalWith(CriticSettings, { exact: true }),
  /** The role the run runs as, as defined when it started: a later edit of its file does not change the run. */
  specialist: Schema.optionalWith(Specialist, { exact: true }),
  created_at: Schema.String,
  updated_at: Schema.String,
  /** Present on a fan-out run: what it fans out over, so a resume runs the same children. */
  fanout: Schema.optionalWith(FanoutSpec, { exact: true }),
  /** Present on a mission's run: the mission whose agent graph it drives, so a resume drives the same one. */
  mission: Schema.optionalWith(MissionRef, { exact: true }),
  /** The project the run belongs to, kept across resumes; a checkpoint from before projects reads as "default". */
  project: Schema.optionalWith(Schema.String, { default: () => "default" })
}) {}

export const CheckpointJson = Schema.parseJson(Checkpoint)

/**
 * A checkpoint says `running` until its session writes the run's end. If the process that owns it is
 * gone (kill -9, a crash, a reboot), it never will: the run is interrupted, and `autopilot resume`
 * continues it. A checkpoint with no owner on record is from before owners were; resume takes it over
 * just as it takes over a dead one.
 */
export const isInterrupted = (c: Checkpoint): boolean => c.status === "running" && (c.owner === null || !c.owner.isAlive)
