import { Config } from "effect"
import * as os from "node:os"
import * as path from "node:path"

/** `$AUTOPILOT_HOME`, else `~/.autopilot`: where the database and users' own specialists are by default. */
export const home = Config.string("AUTOPILOT_HOME").pipe(
  Config.withDefault(path.join(os.homedir(), ".autopilot")),
  Config.map((dir) => path.resolve(dir))
)
