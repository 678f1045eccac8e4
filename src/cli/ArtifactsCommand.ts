import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { plural } from "../domain/Quantity.js"
import * as RunArtifacts from "../runtime/RunArtifacts.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"
import { withExistingRuns } from "./Store.js"

const bytes = (n: number) => plural(n, "byte", n.toLocaleString("en-US"))

/** One line per artifact: name, kind and language, latest version, size, the iteration that made it. */
const listedText = (listed: ReadonlyArray<RunArtifacts.Listed>) => {
  const kindOf = ({ latest }: RunArtifacts.Listed) => `${latest.kind}${latest.language === undefined ? "" : ` ${latest.language}`}`
  const nameWidth = Math.max(...listed.map((a) => a.name.length))
  const kindWidth = Math.max(...listed.map((a) => kindOf(a).length))
  return listed.map((a) =>
    [
      a.name.padEnd(nameWidth),
      kindOf(a).padEnd(kindWidth),
      `v${a.latest.version}`.padStart(4),
      `${bytes(a.latest.bytes)}${a.latest.truncated ? " (truncated)" : ""}`.padEnd(16),
      `iteration ${a.latest.iteration}`
    ].join("  ")
  )
}

export const artifacts = Command.make(
  "artifacts",
  {
    runId: Args.text({ name: "run-id" }),
    out: Options.text("out").pipe(
      Options.withPseudoName("dir"),
      Options.withDescription(
        "write the latest version of each artifact into this folder under its name (made if missing); nothing is written if any name would land outside it"
      ),
      Options.optional
    ),
    db: Flags.db,
    format: Flags.oneOf("format", ["text", "json"], "text for people, json for programs (metadata of every version)")
  },
  ({ db, format, out, runId }) =>
    Effect.gen(function*() {
      const target = yield* Flags.target(db)
      const onRun = <A, E>(f: (service: RunArtifacts.RunArtifacts["Type"]) => Effect.Effect<A, E>) =>
        withExistingRuns(target, runId, Effect.flatMap(RunArtifacts.RunArtifacts, f))
      if (Option.isNone(out)) {
        const listed = yield* onRun((service) => service.list(runId))
        if (format === "json") return yield* Console.log(Render.json(listed.map(RunArtifacts.listedJson), 2))
        if (listed.length === 0) return yield* Console.log(`run ${runId} has no artifacts`)
        for (const line of listedText(listed)) yield* Console.log(line)
        return
      }
      const written = yield* onRun((service) => service.write(runId, out.value))
      if (format === "json") return yield* Console.log(Render.json(written, 2))
      for (const w of written) yield* Console.log(`wrote ${w.file} (v${w.version}, ${bytes(w.bytes)}${w.truncated ? ", truncated" : ""})`)
      yield* Console.log(
        written.length === 0
          ? `run ${runId} has no artifacts; nothing was written`
          : `wrote ${plural(written.length, "artifact")} of run ${runId} to ${out.value}`
      )
    })
).pipe(Command.withDescription("List a run's artifacts (code blocks, markdown documents, files its tools wrote; a fan-out's children's), or write them out with --out"))
