import { Command, Options } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { Console, Context, Duration, Effect, Layer, Option } from "effect"
import * as net from "node:net"
import * as ApiTokens from "../auth/ApiTokens.js"
import { BadInput } from "../domain/Errors.js"
import * as LlmChoice from "../domain/LlmChoice.js"
import * as LlmLayer from "../llm/LlmLayer.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as Flags from "./Flags.js"
import { llmRequested, sessionFlags } from "./RunCommand.js"
import * as Signals from "./Signals.js"

const flags = {
  host: Options.text("host").pipe(Options.withDescription("the address to listen on (default 127.0.0.1: this machine only)"), Options.withDefault("127.0.0.1")),
  port: Options.text("port").pipe(Options.withDescription("the port to listen on, 0 for a free one (default 8000)"), Options.withDefault("8000")),
  keepAlive: Options.text("keep-alive-seconds").pipe(
    Options.withDescription("how often an idle event stream gets a comment, so that proxies keep it open (default 15)"),
    Options.optional
  ),
  secureCookie: Options.boolean("secure-cookie").pipe(
    Options.withDescription("mark the sign-in cookie Secure on every answer: the page is reached over HTTPS (a TLS proxy in front)")
  ),
  trustProxy: Options.text("trust-proxy").pipe(
    Options.withDescription("the IP addresses (comma-separated) of proxies whose X-Forwarded-Proto: https makes the sign-in cookie Secure"),
    Options.optional
  ),
  llm: sessionFlags.llm,
  model: sessionFlags.model,
  mockScript: sessionFlags.mockScript,
  db: Flags.db
}

/** `--trust-proxy`: IP addresses only (a name could resolve to anyone), at least one. */
const proxiesOf = (raw: string) => {
  const list = raw.split(",").map((a) => a.trim())
  const bad = list.find((address) => net.isIP(address) === 0)
  return bad === undefined
    ? Effect.succeed(list)
    : Effect.fail(new BadInput({ message: `--trust-proxy takes IP addresses separated by commas (e.g. 127.0.0.1,::1), got "${bad}"` }))
}

/** Whether only this machine can reach `host`. */
const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)

const portOf = (raw: string) =>
  /^\d{1,5}$/.test(raw) && Number(raw) <= 65535
    ? Effect.succeed(Number(raw))
    : Effect.fail(new BadInput({ message: `--port must be a whole number from 0 to 65535, got "${raw}"` }))

export const serve = Command.make("serve", flags, (given) =>
  Effect.scoped(Effect.gen(function*() {
    const port = yield* portOf(given.port)
    const trustedProxies = yield* Option.match(given.trustProxy, { onNone: () => Effect.succeed([]), onSome: proxiesOf })
    const keepAlive = yield* Option.match(given.keepAlive, {
      onNone: () => Effect.succeed(15),
      onSome: (raw) => Flags.seconds("--keep-alive-seconds", raw, 0.05, 3600)
    })
    // Everything that can be refused is, before the database is opened.
    const adminToken = yield* ApiTokens.adminTokenConfig
    const requested = llmRequested(given, false)
    const choice = yield* LlmChoice.resolve(undefined, requested)
    const model = yield* LlmLayer.layerOf(choice)
    const target = yield* Flags.target(given.db)
    const workspaceRoot = yield* DatabaseTarget.workspaceRoot(target)
    const signals = yield* Signals.listen
    // Loaded only here: the HTTP API is most of what the CLI would otherwise read at every start.
    const { ApiServer, EventStream } = yield* Effect.promise(() => import("../api/index.js"))
    const server = ApiServer.layer({ host: given.host, port, secureCookie: given.secureCookie, trustedProxies }).pipe(
      Layer.provide(ApiServer.layerServices({ workspaceRoot, model, requested })),
      Layer.provide(ApiTokens.layerWith({ adminToken })),
      Layer.provide(DatabaseTarget.layer(target)),
      Layer.provide(Layer.succeed(EventStream.KeepAlive, Duration.seconds(keepAlive)))
    )
    const context = yield* Layer.build(server).pipe(
      Effect.catchTag("ServeError", (error) =>
        new BadInput({
          message: `serve cannot listen on ${given.host}:${port}: ${error.cause instanceof Error ? error.cause.message : String(error.cause)} (choose another --port or --host)`
        }))
    )
    const address = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
    yield* Console.log(`autopilot serving ${address} (database ${DatabaseTarget.describe(target)}; the operator page at /, the API under /api/v1)`)
    if (!isLoopback(given.host) && !given.secureCookie && trustedProxies.length === 0) {
      // On stderr directly: main silences Console.error while @effect/cli runs.
      yield* Effect.sync(() =>
        process.stderr.write(
          `autopilot serve: warning: listening on ${given.host} without --secure-cookie or --trust-proxy, so the sign-in cookie is not Secure and a browser sends it over plain HTTP too\n`
        )
      )
    }
    if (Option.isNone(adminToken)) {
      yield* Console.log("no AUTOPILOT_API_TOKEN is set: only project tokens (`autopilot token create --project P`) can sign in")
    }
    // Closing the scope closes the server, whose open event streams end first (ApiServer's ServerShutdown).
    yield* Console.log(`stopping: ${yield* signals.halt}`)
  }))).pipe(
  Command.withDescription(
    "Serve the HTTP API (/api/v1/autopilot: missions, goals, runs, live events, the queue), the blueprint-service protocol (/v1/blueprints) and the operator page (/)"
  )
)
