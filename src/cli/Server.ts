import { Options } from "@effect/cli"
import { Config, Effect, Option, Redacted } from "effect"
import { BadInput } from "../domain/Errors.js"
import type { RemoteApi, Shown } from "./Remote.js"

/**
 * `--server URL` and `--token TOKEN` (or AUTOPILOT_SERVER, AUTOPILOT_TOKEN): a command that takes them
 * asks that `autopilot serve` instead of the local database, and prints what it answers as it prints its
 * own. Here is the one place a command's data is chosen; the client itself (Remote.ts) is loaded only when
 * a server is named, so the local commands start as fast as before.
 */

export const flags = {
  server: Options.text("server").pipe(
    Options.withPseudoName("url"),
    Options.withDescription("ask this `autopilot serve` (http://host:port) instead of the local database (default: $AUTOPILOT_SERVER)"),
    Options.optional
  ),
  token: Options.redacted("token").pipe(
    Options.withPseudoName("token"),
    Options.withDescription("the API token --server needs: a project token (`autopilot token create`) or the server's AUTOPILOT_API_TOKEN (default: $AUTOPILOT_TOKEN)"),
    Options.optional
  )
}

export interface ServerFlags {
  readonly server: Option.Option<string>
  readonly token: Option.Option<Redacted.Redacted<string>>
}

/** Where a server is, and who asks it. The token is Redacted: it prints as `<redacted>`, never as itself. */
export interface Connection {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  /** Sent as X-Project-ID; absent, the server takes the token's own project (`default` for the admin token). */
  readonly project: Option.Option<string>
}

const fromEnv = <A>(config: Config.Config<A>) => Config.option(config).pipe(Effect.orElseSucceed(() => Option.none<A>()))

/** An http(s) URL with a host, without credentials, query or fragment: `/api/v1/...` is appended to it. */
const checkUrl = (raw: string, source: string) => {
  const refuse = () => new BadInput({ message: `${source} must be the server's http:// or https:// URL (such as http://127.0.0.1:8000), got "${raw}"` })
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Effect.fail(refuse())
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "" || url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    return Effect.fail(refuse())
  }
  return Effect.succeed(url.href.replace(/\/+$/, ""))
}

/**
 * The server to ask, if any: `--server`, else $AUTOPILOT_SERVER. A token is then required (`--token`,
 * else $AUTOPILOT_TOKEN); a `--token` with no server is refused rather than ignored.
 */
export const connectionOf = (given: ServerFlags, project: Option.Option<string>) =>
  Effect.gen(function*() {
    const env = yield* fromEnv(Config.string("AUTOPILOT_SERVER"))
    const raw = Option.orElse(given.server, () => Option.filter(env, (s) => s.trim() !== ""))
    if (Option.isNone(raw)) {
      if (Option.isSome(given.token)) return yield* new BadInput({ message: "--token is for --server: give --server URL (or set AUTOPILOT_SERVER) too" })
      return Option.none<Connection>()
    }
    const url = yield* checkUrl(raw.value, Option.isSome(given.server) ? "--server" : "AUTOPILOT_SERVER")
    const resolved = Option.isSome(given.token)
      ? given.token
      : Option.filter(yield* fromEnv(Config.redacted("AUTOPILOT_TOKEN")), (t) => Redacted.value(t).trim() !== "")
    if (Option.isNone(resolved)) {
      return yield* new BadInput({
        message: `--server ${url} needs a token: --token TOKEN or AUTOPILOT_TOKEN (a project token from \`autopilot token create --project P\`, or the server's AUTOPILOT_API_TOKEN)`
      })
    }
    return Option.some<Connection>({ url, token: resolved.value, project })
  })

/**
 * The one choice of every command that can ask a server: `remote` with the server's client when one is
 * named, else `local`. `refused` names the flags given that only mean something locally (`--db`…): with a
 * server they are refused, not silently ignored.
 */
export const either = <A, E1, R1, E2, R2>(
  given: ServerFlags,
  options: {
    readonly project?: Option.Option<string>
    readonly refused: ReadonlyArray<readonly [flag: string, given: boolean]>
    readonly local: Effect.Effect<A, E1, R1>
    readonly remote: (api: RemoteApi["Type"]) => Effect.Effect<A, E2, R2>
  }
) =>
  Effect.flatMap(connectionOf(given, options.project ?? Option.none()), (connection): Effect.Effect<A, E1 | E2 | BadInput, R1 | Exclude<R2, RemoteApi>> => {
    if (Option.isNone(connection)) return options.local
    const flag = options.refused.find(([, isGiven]) => isGiven)?.[0]
    if (flag !== undefined) {
      return Effect.fail(new BadInput({ message: `${flag} does not go with --server: the server uses its own database and model (leave out one of them)` }))
    }
    return Effect.flatMap(
      Effect.promise(() => import("./Remote.js")),
      (Remote) => Effect.flatMap(Remote.RemoteApi, options.remote).pipe(Effect.provide(Remote.layer(connection.value)))
    )
  })

/** The database flags, as `either` refuses them beside --server. */
export const databaseFlags = (db: { readonly file: Option.Option<string>; readonly url: Option.Option<string> }) =>
  [["--db", Option.isSome(db.file)], ["--database", Option.isSome(db.url)]] as const

/** What the database here gives, as a command prints it: the JSON is what its text is made of. */
export const shown = <A>(json: A): Shown<A> => ({ json, view: json })
