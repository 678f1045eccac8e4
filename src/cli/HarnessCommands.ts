import { Args, Command, Options } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { Clock, Config, Console, Context, Effect, Layer, Option, Schema } from "effect"
import { BadInput } from "../domain/Errors.js"
import * as Gateway from "../harness/Gateway.js"
import * as HarnessConfig from "../harness/HarnessConfig.js"
import { describeParseError } from "../harness/HarnessError.js"
import { type AuditEntry, HarnessStore, type KeyRecord, type ReportRow } from "../harness/HarnessStore.js"
import * as Server from "../harness/Server.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as Flags from "./Flags.js"
import * as Signals from "./Signals.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

/** The harness's own commands work on the database the runs use unless told otherwise. */
const withStore = <A, E, R>(db: Flags.DatabaseFlags, effect: Effect.Effect<A, E, R | HarnessStore>) =>
  Effect.flatMap(Flags.target(db), (target) =>
    Effect.provide(effect, HarnessStore.layer.pipe(Layer.provide(DatabaseTarget.layer(target)))))

/** A flag's value decoded by the same Schema the admin API uses, so both refuse the same input alike. */
const decode = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
  Schema.decodeUnknown(schema, { onExcessProperty: "error" })(input).pipe(
    Effect.mapError((error) => {
      const { message, param } = describeParseError(error)
      return new BadInput({ message: `--${param.split(".")[0]!.replaceAll("_", "-")} ${message}` })
    })
  )

const defined = (fields: Record<string, Option.Option<unknown>>) =>
  Object.fromEntries(Object.entries(fields).flatMap(([k, v]) => (Option.isSome(v) ? [[k, v.value]] : [])))

const configPath = (flag: Option.Option<string>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.string("AUTOPILOT_HARNESS_CONFIG").pipe(
        Effect.mapError(() => new BadInput({ message: "harness serve needs --config FILE or $AUTOPILOT_HARNESS_CONFIG (the harness's JSON config)" }))
      )
  })

const serve = Command.make(
  "serve",
  {
    port: Options.integer("port").pipe(Options.withDescription("port to listen on; 0 picks a free one"), Options.withDefault(8790)),
    host: Options.text("host").pipe(Options.withDescription("address to listen on"), Options.withDefault("127.0.0.1")),
    config: Options.file("config").pipe(Options.withDescription("the harness config (default: $AUTOPILOT_HARNESS_CONFIG)"), Options.optional),
    quiet: Options.boolean("quiet").pipe(Options.withDescription("no line on stderr per request")),
    db: Flags.db
  },
  (input) =>
    Effect.gen(function*() {
      if (input.port < 0 || input.port > 65535) return yield* new BadInput({ message: `--port must be from 0 to 65535, got ${input.port}` })
      const config = yield* HarnessConfig.load(yield* configPath(input.config))
      const target = yield* Flags.target(input.db)
      // A plain write: the CLI's Console has no error output (main.ts), and a line per request should cost no more.
      const log = input.quiet ? undefined : (line: string) => Effect.sync(() => void process.stderr.write(`${line}\n`))
      const harness = Server.layer({ port: input.port, host: input.host, log }).pipe(
        Layer.provide(Gateway.layerWithStore(config)),
        Layer.provide(DatabaseTarget.layer(target))
      )
      // Until SIGTERM, SIGINT or SIGHUP: then the server closes and the ledger is left consistent.
      yield* Effect.scoped(Effect.gen(function*() {
        const signals = yield* Signals.listen
        const context = yield* Layer.build(harness).pipe(
          Effect.catchTag("ServeError", (error) =>
            new BadInput({
              message: `harness serve cannot listen on ${input.host}:${input.port}: ${
                error.cause instanceof Error ? error.cause.message : String(error.cause)
              } (choose another --port or --host)`
            }))
        )
        const address = HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
        yield* Console.log(`harness listening on ${address} (database ${DatabaseTarget.describe(target)})`)
        yield* Console.log(`stopping: ${yield* signals.halt}`)
      }))
    })
).pipe(Command.withDescription("Serve the OpenAI-compatible harness: /v1/chat/completions, /v1/models and /admin/*"))

const keyText = (key: KeyRecord) =>
  [
    key.id,
    `${key.prefix}…`,
    `user=${key.user}`,
    `project=${key.project}`,
    ...(key.team === null ? [] : [`team=${key.team}`]),
    ...(key.admin ? ["admin"] : []),
    ...(key.requests_per_minute === null ? [] : [`rpm=${key.requests_per_minute}`]),
    ...(key.expires_at === null ? [] : [`expires=${key.expires_at}`]),
    ...(key.revoked_at === null ? [] : [`revoked=${key.revoked_at}`])
  ].join("  ")

const keyCreate = Command.make(
  "create",
  {
    user: Options.text("user").pipe(Options.withDescription("who the key is for")),
    project: Options.text("project").pipe(Options.withDescription("the project its spend counts against")),
    team: Options.text("team").pipe(Options.withDescription("the team, for team policy and budgets"), Options.optional),
    admin: Options.boolean("admin").pipe(Options.withDescription("may use the /admin routes")),
    rpm: Options.integer("requests-per-minute").pipe(Options.withDescription("rate limit for this key (default: the config's)"), Options.optional),
    expires: Options.text("expires-in-days").pipe(Options.withDescription("days until the key stops working"), Options.optional),
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const fields = yield* decode(Server.NewKey, {
        user: input.user,
        project: input.project,
        ...defined({ team: input.team, requests_per_minute: input.rpm }),
        ...(input.admin ? { admin: true } : {}),
        ...Option.match(input.expires, {
          onNone: () => ({}),
          onSome: (raw) => ({ expires_in_days: Flags.DECIMAL.test(raw) ? Number(raw) : raw })
        })
      })
      const { expires_in_days, ...rest } = fields
      const now = yield* Clock.currentTimeMillis
      const created = yield* withStore(input.db, Effect.flatMap(HarnessStore, (store) =>
        store.createKey({
          ...rest,
          ...(expires_in_days === undefined ? {} : { expires_at: new Date(now + expires_in_days * 86_400_000).toISOString() })
        })))
      yield* input.format === "json"
        ? Console.log(JSON.stringify({ key: created.key, ...created.record }, null, 2))
        : Console.log(`${created.key}\n\n${keyText(created.record)}\nThe key is shown this once; only its hash is stored.`)
    })
).pipe(Command.withDescription("Create a harness key; it is printed once and only its hash is kept"))

const keyList = Command.make("list", { db: Flags.db, format: jsonFormat }, (input) =>
  Effect.gen(function*() {
    const keys = yield* withStore(input.db, Effect.flatMap(HarnessStore, (store) => store.listKeys()))
    yield* input.format === "json"
      ? Console.log(JSON.stringify(keys, null, 2))
      : Console.log(keys.length === 0 ? "no keys yet (autopilot harness key create)" : keys.map(keyText).join("\n"))
  })).pipe(Command.withDescription("List harness keys (never the keys themselves)"))

const keyRevoke = Command.make("revoke", { id: Args.text({ name: "key-id" }), db: Flags.db }, (input) =>
  Effect.gen(function*() {
    const revoked = yield* withStore(input.db, Effect.flatMap(HarnessStore, (store) => store.revokeKey(input.id)))
    if (!revoked) return yield* new BadInput({ message: `no active key "${input.id}" (see \`autopilot harness key list\`)` })
    yield* Console.log(`revoked ${input.id}`)
  })).pipe(Command.withDescription("Revoke a harness key at once"))

const key = Command.make("key").pipe(
  Command.withDescription("Create, list and revoke harness keys"),
  Command.withSubcommands([keyCreate, keyList, keyRevoke])
)

const filterFlags = {
  user: Options.text("user").pipe(Options.optional),
  team: Options.text("team").pipe(Options.optional),
  project: Options.text("project").pipe(Options.optional),
  model: Options.text("model").pipe(Options.withDescription("the model used"), Options.optional)
}

const dollars = (n: number) => `$${n.toFixed(n > 0 && n < 0.01 ? 6 : 2)}`

const reportText = (rows: ReadonlyArray<ReportRow>) =>
  rows.length === 0
    ? "no spend recorded"
    : rows.map(({ cost_usd, input_tokens, output_tokens, requests, ...group }) =>
      `${Object.entries(group).map(([k, v]) => `${k}=${v ?? "-"}`).join("  ")}  requests=${requests}  tokens=${input_tokens}+${output_tokens}  ${dollars(cost_usd)}`
    ).join("\n")

const spend = Command.make(
  "spend",
  {
    ...filterFlags,
    groupBy: Options.text("group-by").pipe(Options.withDescription("comma-separated: user, team, project, model, day (default project,day)"), Options.optional),
    from: Options.text("from").pipe(Options.withDescription("first day, YYYY-MM-DD"), Options.optional),
    to: Options.text("to").pipe(Options.withDescription("last day, YYYY-MM-DD"), Options.optional),
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const { from, to, ...query } = yield* decode(Server.SpendQuery, defined({
        user: input.user,
        team: input.team,
        project: input.project,
        model: input.model,
        group_by: input.groupBy,
        from: input.from,
        to: input.to
      }))
      const rows = yield* withStore(input.db, Effect.flatMap(HarnessStore, (store) => store.report({ ...query, from_day: from, to_day: to })))
      yield* Console.log(input.format === "json" ? JSON.stringify(rows, null, 2) : reportText(rows))
    })
).pipe(Command.withDescription("Spend from the harness ledger, grouped by scope, model and day"))

const auditText = (entries: ReadonlyArray<AuditEntry>) =>
  entries.length === 0
    ? "no requests recorded"
    : entries.map((e) =>
      [
        `#${e.id} ${e.at}`,
        `${e.user}/${e.project}`,
        `${e.model_requested}→${e.model_used ?? "-"}`,
        e.tier ?? "-",
        `${e.status}`,
        `${e.input_tokens}+${e.output_tokens} tokens`,
        dollars(e.cost_usd),
        `${e.latency_ms.toFixed(0)} ms`,
        ...(e.budget_action === null ? [] : [`budget ${e.budget_action}`]),
        ...(e.error === null ? [] : [`error: ${e.error}`])
      ].join("  ")
    ).join("\n")

const audit = Command.make(
  "audit",
  {
    ...filterFlags,
    day: Options.text("day").pipe(Options.withDescription("YYYY-MM-DD"), Options.optional),
    keyId: Options.text("key-id").pipe(Options.optional),
    limit: Options.text("limit").pipe(Options.withDescription("rows, newest first (default 100, at most 1000)"), Options.optional),
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const query = yield* decode(Server.AuditQuery, defined({
        user: input.user,
        team: input.team,
        project: input.project,
        model: input.model,
        day: input.day,
        key_id: input.keyId,
        limit: input.limit
      }))
      const entries = yield* withStore(input.db, Effect.flatMap(HarnessStore, (store) => store.audit(query)))
      yield* Console.log(input.format === "json" ? JSON.stringify(entries, null, 2) : auditText(entries))
    })
).pipe(Command.withDescription("The harness's audit log: every request, its routing, budget action, tokens and cost"))

export const harness = Command.make("harness").pipe(
  Command.withDescription("The LLM harness: an OpenAI-compatible proxy with keys, policy, routing, budgets and a spend ledger"),
  Command.withSubcommands([serve, key, spend, audit])
)
