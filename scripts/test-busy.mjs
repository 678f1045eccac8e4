// The suite with every core busy: one CPU hog per core beside `vitest run`, as on a loaded CI machine.
// Usage: npm run test:busy [-- vitest arguments]. The hogs stop with the suite, and after an hour at most.
import { spawn } from "node:child_process"
import * as os from "node:os"

const hogs = Array.from({ length: os.availableParallelism() }, () =>
  spawn(process.execPath, ["-e", "const end = Date.now() + 3_600_000; while (Date.now() < end) {}"], { stdio: "ignore" }))
const stopHogs = () => hogs.forEach((hog) => hog.kill("SIGKILL"))
process.on("exit", stopHogs)

const suite = spawn("npx", ["vitest", "run", ...process.argv.slice(2)], { stdio: "inherit" })
suite.on("exit", (code, signal) => {
  stopHogs()
  process.exitCode = code ?? (signal === null ? 1 : 128)
})
