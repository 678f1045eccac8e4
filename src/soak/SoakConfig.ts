import { Either } from "effect"

/**
 * What `AUTOPILOT_SOAK=<seconds> npm run soak` reads from its environment. Every problem is one line naming
 * the variable, what it held and what it takes: the soak exits 2 on it before it starts anything.
 */
export interface SoakConfig {
  readonly seconds: number
  readonly seed: number
  /** Where the database (SQLite), the processes' output, the report and the plots go. */
  readonly out: string
  /** The real model by the usual variables, or the embedded mock. */
  readonly model:
    | { readonly _tag: "Mock" }
    | { readonly _tag: "OpenAi"; readonly baseUrl: string; readonly apiKey: string; readonly model: string | undefined }
  /** A fresh SQLite file in `out`, or the Postgres database the URL names (three runners instead of one). */
  readonly database: { readonly _tag: "Sqlite" } | { readonly _tag: "Postgres"; readonly url: string }
  /** Work submitted a minute: queued runs; missions and fan-outs come at a fixed share of it. */
  readonly runsPerMinute: number
}

/** A week: longer is a deployment, not a soak. */
const maxSeconds = 7 * 24 * 3600

const positive = (name: string, raw: string, max: number, allowed: string): Either.Either<number, string> => {
  const value = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : Number.NaN
  return Number.isFinite(value) && value > 0 && value <= max
    ? Either.right(value)
    : Either.left(`${name} must be ${allowed}, got "${raw}"`)
}

const urlOf = (name: string, raw: string, schemes: ReadonlyArray<string>): Either.Either<string, string> => {
  try {
    const url = new URL(raw)
    return schemes.includes(url.protocol) ? Either.right(raw) : Either.left(`${name} must be a ${schemes.join(" or ")} URL, got "${url.protocol}"`)
  } catch {
    return Either.left(`${name} must be a URL (${schemes.join(" or ")}), got "${raw}"`)
  }
}

/** The soak's settings, or the one line that says what is wrong. `now` names the default output folder. */
export const fromEnv = (env: Record<string, string | undefined>, now: Date, randomSeed: number): Either.Either<SoakConfig, string> =>
  Either.gen(function*() {
    const raw = env.AUTOPILOT_SOAK
    if (raw === undefined || raw.trim() === "") {
      return yield* Either.left("AUTOPILOT_SOAK must name the soak's length in seconds, e.g. AUTOPILOT_SOAK=3600 npm run soak")
    }
    const seconds = yield* positive("AUTOPILOT_SOAK", raw, maxSeconds, `a number of seconds above 0 and at most ${maxSeconds} (a week)`)
    const seed = env.AUTOPILOT_SOAK_SEED === undefined || env.AUTOPILOT_SOAK_SEED === ""
      ? randomSeed
      : /^\d{1,9}$/.test(env.AUTOPILOT_SOAK_SEED)
      ? Number(env.AUTOPILOT_SOAK_SEED)
      : yield* Either.left(`AUTOPILOT_SOAK_SEED must be a whole number from 0 to 999999999, got "${env.AUTOPILOT_SOAK_SEED}"`)
    const runsPerMinute = env.AUTOPILOT_SOAK_RUNS_PER_MINUTE === undefined
      ? 12
      : yield* positive("AUTOPILOT_SOAK_RUNS_PER_MINUTE", env.AUTOPILOT_SOAK_RUNS_PER_MINUTE, 600, "a number above 0 and at most 600")
    const baseUrl = env.AUTOPILOT_LLM_BASE_URL
    const model: SoakConfig["model"] = baseUrl === undefined || baseUrl === ""
      ? { _tag: "Mock" }
      : {
        _tag: "OpenAi",
        baseUrl: yield* urlOf("AUTOPILOT_LLM_BASE_URL", baseUrl, ["http:", "https:"]),
        apiKey: env.AUTOPILOT_LLM_API_KEY !== undefined && env.AUTOPILOT_LLM_API_KEY !== ""
          ? env.AUTOPILOT_LLM_API_KEY
          : yield* Either.left("AUTOPILOT_LLM_API_KEY must be set with AUTOPILOT_LLM_BASE_URL (any placeholder for a server without keys)"),
        model: env.AUTOPILOT_LLM_MODEL === "" ? undefined : env.AUTOPILOT_LLM_MODEL
      }
    const databaseUrl = env.AUTOPILOT_DATABASE_URL
    const database: SoakConfig["database"] = databaseUrl === undefined || databaseUrl === ""
      ? { _tag: "Sqlite" }
      : { _tag: "Postgres", url: yield* urlOf("AUTOPILOT_DATABASE_URL", databaseUrl, ["postgres:", "postgresql:"]) }
    const stamp = now.toISOString().replace(/[:.]/g, "-").slice(0, 19)
    const out = env.AUTOPILOT_SOAK_OUT !== undefined && env.AUTOPILOT_SOAK_OUT !== "" ? env.AUTOPILOT_SOAK_OUT : `soak-out/${stamp}-seed-${seed}`
    return { seconds, seed, out, model, database, runsPerMinute } satisfies SoakConfig
  })

/** The command that runs this soak again: its length, its seed and the settings that shaped it (never the key). */
export const commandOf = (config: SoakConfig): string =>
  [
    `AUTOPILOT_SOAK=${config.seconds}`,
    `AUTOPILOT_SOAK_SEED=${config.seed}`,
    ...(config.runsPerMinute === 12 ? [] : [`AUTOPILOT_SOAK_RUNS_PER_MINUTE=${config.runsPerMinute}`]),
    ...(config.model._tag === "OpenAi"
      ? [`AUTOPILOT_LLM_BASE_URL=${config.model.baseUrl}`, "AUTOPILOT_LLM_API_KEY=…", ...(config.model.model === undefined ? [] : [`AUTOPILOT_LLM_MODEL=${config.model.model}`])]
      : []),
    ...(config.database._tag === "Postgres" ? ["AUTOPILOT_DATABASE_URL=…"] : []),
    "npm run soak"
  ].join(" ")
