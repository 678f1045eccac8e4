/**
 * Start-up time of `autopilot --help`: the median of N runs of `node bin/autopilot.js --help`, each timed
 * from spawn to exit with process.hrtime. Needs `npm run build` first (bin/ loads dist/).
 *
 *   node --import tsx scripts/bench-startup.ts [runs]
 *
 * Run on its own it also times a bare `node -e 0` and the import of each package the CLI loads at start-up
 * alone, which says where the start-up time goes. scripts/bench-loop.ts uses measureStartup only.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

export interface Timing {
  readonly runs: number
  readonly median_ms: number
  readonly min_ms: number
  readonly max_ms: number
  readonly samples_ms: ReadonlyArray<number>
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const round = (ms: number) => Math.round(ms * 10) / 10

/** Times `node ...args` from spawn to exit, `runs` times, after one untimed run to warm the file cache. */
export const timeNode = (args: ReadonlyArray<string>, runs: number): Timing => {
  const once = () => {
    const start = process.hrtime.bigint()
    const child = spawnSync(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" })
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (child.status !== 0) throw new Error(`node ${args.join(" ")} exited with ${child.status}: ${child.stderr}`)
    return { ms, stdout: child.stdout }
  }
  once()
  const samples = Array.from({ length: runs }, () => round(once().ms))
  return { runs, median_ms: round(median(samples)), min_ms: Math.min(...samples), max_ms: Math.max(...samples), samples_ms: samples }
}

export const measureStartup = (runs = 10): Timing => {
  const bin = path.join(root, "bin", "autopilot.js")
  if (!fs.existsSync(path.join(root, "dist", "cli", "autopilot.js"))) throw new Error("dist/ is missing: run `npm run build` first")
  const probe = spawnSync(process.execPath, [bin, "--help"], { cwd: root, encoding: "utf8" })
  if (probe.status !== 0 || !probe.stdout.includes("autopilot")) throw new Error(`autopilot --help failed: ${probe.stderr}`)
  return timeNode([bin, "--help"], runs)
}

/** What `--help` pays for: bare node, then each package the CLI imports at start-up, imported alone. */
const importBreakdown = (runs = 5): Record<string, Timing> => {
  const importing = (specifier: string) => ["--input-type=module", "-e", `await import(${JSON.stringify(specifier)})`]
  return {
    "node -e 0": timeNode(["-e", "0"], runs),
    "import effect": timeNode(importing("effect"), runs),
    "import @effect/cli": timeNode(importing("@effect/cli"), runs),
    "import @effect/platform": timeNode(importing("@effect/platform"), runs),
    "import @effect/platform-node/NodeContext": timeNode(importing("@effect/platform-node/NodeContext"), runs),
    "import @effect/sql-sqlite-node": timeNode(importing("@effect/sql-sqlite-node"), runs)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const runs = Number(process.argv[2] ?? 10)
  const help = measureStartup(runs)
  console.log(`autopilot --help: median ${help.median_ms} ms over ${runs} runs (min ${help.min_ms}, max ${help.max_ms})`)
  for (const [name, t] of Object.entries(importBreakdown())) {
    console.log(`  ${name.padEnd(32)} median ${String(t.median_ms).padStart(7)} ms`)
  }
}
