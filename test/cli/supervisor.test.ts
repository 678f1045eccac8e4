import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, it } from "vitest"
import { bin, cleanup, sandbox, slowScript } from "./harness.js"

afterEach(cleanup)

describe.concurrent("under a supervisor", () => {
  it.for(["SIGTERM", "SIGINT"] as const)(
    "the installed bin, run directly as systemd or a container runtime does, halts on %s at an iteration boundary",
    async (signal, context) => {
      const { expect } = context
      const sb = sandbox(context)
      // What `npm install autopilot` leaves: a symlink in node_modules/.bin, run through its shebang.
      const installed = path.join(sb.dir, "node_modules", ".bin", "autopilot")
      fs.mkdirSync(path.dirname(installed), { recursive: true })
      fs.symlinkSync(bin, installed)
      const script = sb.writeFile("script.json", slowScript({ latency_ms: 150, criteria_met: [false, false] }))
      const cli = sb.start(
        ["run", "supervised", "--criterion", "a", "--criterion", "b", "--run-id", "s", "--mock-script", script, "--format", "jsonl"],
        { executable: installed }
      )
      await cli.nth("iteration", 1)
      cli.signal(signal)
      const exit = await cli.waitForExit()
      // The process ends by itself, with the run's own exit code: never 130 or 143, never left running.
      expect(exit.signal).toBeNull()
      expect(exit.code).toBe(4)
      expect(cli.events().at(-1)).toMatchObject({ kind: "result", status: "halted", halt_reason: `halted by ${signal}` })
      expect(sb.checkpoint("s")).toMatchObject({ status: "halted", halt_reason: `halted by ${signal}` })
    }
  )
})
