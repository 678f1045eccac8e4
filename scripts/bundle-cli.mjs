/**
 * Bundles the CLI that bin/autopilot.js starts: dist/cli/main.js (as tsc built it) and the packages it
 * imports, into dist/cli/autopilot.js plus chunks that dynamic imports load only when a command needs
 * them (the openai SDK, the harness, mathjs). Run by `npm run build`, after tsc.
 *
 * Why: finding, reading and compiling the 1,300 files of the modules it loads was most of what
 * `autopilot --help` and the start of every run cost. The library build (dist/index.js and its .d.ts)
 * stays as tsc writes it.
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"

// Chunk names carry a content hash: drop the previous build's.
fs.rmSync("dist/cli/chunks", { recursive: true, force: true })

await esbuild.build({
  entryPoints: { autopilot: "dist/cli/main.js" },
  outdir: "dist/cli",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Native addons are loaded from node_modules at run time, as without the bundle.
  external: ["better-sqlite3", "msgpackr-extract"],
  // Bundled CommonJS packages still call require (for Node's own modules, and the externals above).
  banner: { js: "import { createRequire as __autopilotRequire } from 'node:module'; const require = __autopilotRequire(import.meta.url);" },
  // Names are kept, so a stack trace still reads; `node --enable-source-maps` maps it back to src/.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  logLevel: "warning"
})
