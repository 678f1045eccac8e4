import { Schema } from "effect"
import * as os from "node:os"

/** The process that last wrote a run's checkpoint; a run can have only one live writer. */
export class Owner extends Schema.Class<Owner>("Owner")({
  pid: Schema.Int,
  host: Schema.String
}) {
  static readonly current = new Owner({ pid: process.pid, host: os.hostname() })

  /** True while that process exists. A process on another host is assumed alive: we cannot tell. */
  get isAlive(): boolean {
    if (this.host !== Owner.current.host) return true
    if (this.pid === process.pid) return true
    try {
      process.kill(this.pid, 0)
      return true
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM"
    }
  }
}
