#!/usr/bin/env -S node --max-old-space-size=1536
// Below V8's 2 GiB "large heap" threshold, a full collection comes at about twice the live set instead of
// four times: curating 100,000 steps peaks at ~200 MiB instead of ~290, at the same speed (BENCHMARKS.md,
// the curator). 1.5 GiB is still far above what any command holds; `node --max-old-space-size=N
// bin/autopilot.js …` gives a process more.
import "../dist/cli/autopilot.js"
