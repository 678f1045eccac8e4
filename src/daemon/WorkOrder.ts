import { PrimaryKey, Schema } from "effect"
import { FiringKind } from "../domain/Firing.js"
import { WorkKind } from "../store/DaemonStore.js"

/**
 * What a daemon is asked to run: a queued run, an approved mission, or one firing of a scheduled mission.
 * Sent as a persisted cluster message whose primary key is the run id, so the same work sent twice (a
 * dispatcher that moved to another runner and sends again) is stored, and run, once.
 */
export class WorkOrder extends Schema.Class<WorkOrder>("autopilot/WorkOrder")({
  run_id: Schema.String,
  kind: WorkKind,
  project_id: Schema.NullOr(Schema.String),
  mission_id: Schema.NullOr(Schema.String),
  /** A firing's slot, ISO-8601 UTC. */
  slot: Schema.NullOr(Schema.String),
  /** A firing's kind: on its schedule, or by hand. */
  firing_kind: Schema.optionalWith(Schema.NullOr(FiringKind), { default: () => null }),
  /** Sent again after a refusal: a message of its own, as the refused one was answered. */
  generation: Schema.optionalWith(Schema.Number, { default: () => 0 })
}) {
  [PrimaryKey.symbol]() {
    return this.generation === 0 ? this.run_id : `${this.run_id}#${this.generation}`
  }
}

/** How a piece of work ended, as the daemon records it: the run's status, or why it could not run. */
export class WorkOutcome extends Schema.Class<WorkOutcome>("autopilot/WorkOutcome")({
  run_id: Schema.String,
  outcome: Schema.String
}) {}
