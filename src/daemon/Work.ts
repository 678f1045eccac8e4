import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as Rpc from "@effect/rpc/Rpc"
import { WorkOrder, WorkOutcome } from "./WorkOrder.js"

/**
 * Every run a daemon works is an actor: one entity per run id. Its one message is persisted, so a runner
 * that dies (kill -9, a lost machine) leaves it unprocessed in storage, and the runner that takes over the
 * shard delivers it again: the run resumes from its checkpoint there.
 */
export const Work = Entity.make("autopilot/Work", [
  Rpc.make("run", { payload: WorkOrder, success: WorkOutcome }).annotate(ClusterSchema.Persisted, true)
])
