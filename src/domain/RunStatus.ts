import { Schema } from "effect"

/** `running` is only ever seen in a checkpoint of a run that is in progress or was killed mid-way. */
export const RunStatus = Schema.Literal("running", "completed", "partial", "halted", "failed")
export type RunStatus = typeof RunStatus.Type

/** The status of a run that stopped for any reason other than a crash. */
export const statusOf = (criteriaMet: ReadonlyArray<boolean>): "completed" | "partial" | "halted" =>
  criteriaMet.length > 0 && criteriaMet.every(Boolean) ? "completed" : criteriaMet.some(Boolean) ? "partial" : "halted"

/** Process exit code for each final status; 2 is reserved for bad input. */
export const exitCodeOf = (status: RunStatus): number => {
  switch (status) {
    case "completed":
      return 0
    case "partial":
      return 3
    case "halted":
      return 4
    case "failed":
    case "running":
      return 1
  }
}
