// Preloaded into a process under measurement (`node --import ./scripts/lib/memory-probe.mjs …`, or through
// NODE_OPTIONS): every $AUTOPILOT_MEMORY_PROBE_MS (default 1000) it appends one JSON line
// `{"t": epoch ms, "rss", "heap_used", "heap_total", "external", "array_buffers"}` (bytes) to the file
// $AUTOPILOT_MEMORY_PROBE names. The heap can only be read from inside the process; RSS alone, from /proc,
// would not tell a leak in the JS heap from the allocator keeping pages. Without the variable it does nothing.
import * as fs from "node:fs"

const file = process.env.AUTOPILOT_MEMORY_PROBE
if (file !== undefined && file !== "") {
  const every = Number(process.env.AUTOPILOT_MEMORY_PROBE_MS ?? "1000")
  const sample = () => {
    const u = process.memoryUsage()
    const line = { t: Date.now(), rss: u.rss, heap_used: u.heapUsed, heap_total: u.heapTotal, external: u.external, array_buffers: u.arrayBuffers }
    try {
      fs.appendFileSync(file, JSON.stringify(line) + "\n")
    } catch {
      // The folder went away (the measurement is over): nothing left to record into.
    }
  }
  sample()
  setInterval(sample, every > 0 ? every : 1000).unref()
}
