import { Args, Command, Options } from "@effect/cli"
import { Console, DateTime, Effect, Option, Schema } from "effect"
import * as ApiTokens from "../auth/ApiTokens.js"
import * as ApiToken from "../domain/ApiToken.js"
import { BadInput } from "../domain/Errors.js"
import * as DatabaseTarget from "../store/DatabaseTarget.js"
import * as Flags from "./Flags.js"
import * as Render from "./Render.js"

const jsonFormat = Flags.oneOf("format", ["text", "json"], "text for people, json for programs")

// Minting, listing and revoking never authenticate: the admin token plays no part here.
const tokensOver = ApiTokens.layerWith({ adminToken: Option.none() })

/** The tokens of the database, unless it has never held any: then `absent`, and nothing is created. */
const withTokens = <A, E, A2, E2>(db: Flags.DatabaseFlags, absent: Effect.Effect<A2, E2>, effect: Effect.Effect<A, E, ApiTokens.ApiTokens>) =>
  Effect.flatMap(Flags.target(db), (target) => DatabaseTarget.whenHolds(target, "api_tokens", absent, Effect.provide(effect, tokensOver)))

const expiryOf = (raw: Option.Option<string>): Effect.Effect<number | undefined, BadInput> =>
  Option.match(raw, {
    onNone: () => Effect.succeed(undefined),
    onSome: (text) => {
      const days = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN
      return days >= 1 && days <= ApiToken.maxExpiryDays
        ? Effect.succeed(days)
        : Effect.fail(new BadInput({ message: `--expires-in-days must be a whole number of days from 1 to ${ApiToken.maxExpiryDays}, got "${text}"` }))
    }
  })

const encode = Schema.encodeSync(ApiToken.TokenRecord)

/** What a token is now, as the Clock says. */
const stateOf = (token: ApiToken.TokenRecord, now: DateTime.Utc) =>
  token.revoked_at !== null
    ? `revoked ${token.revoked_at}`
    : token.expires_at !== null && !DateTime.lessThan(now, DateTime.unsafeMake(token.expires_at))
    ? `expired ${token.expires_at}`
    : "active"

const tableOf = (tokens: ReadonlyArray<ApiToken.TokenRecord>, now: DateTime.Utc) => {
  const rows = [
    ["ID", "PREFIX", "PROJECT", "STATE", "EXPIRES", "LAST USED", "NAME"],
    ...tokens.map((t) => [t.id, `${t.prefix}…`, t.project, stateOf(t, now), t.expires_at ?? "never", t.last_used_at ?? "never", t.name ?? ""])
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => (column < row.length - 1 ? cell.padEnd(widths[column]!) : cell)).join("  ").trimEnd()).join("\n")
}

const create = Command.make(
  "create",
  {
    project: Options.text("project").pipe(Options.withDescription("the one project the token may see and touch")),
    name: Options.text("name").pipe(Options.withDescription("who or what the token is for, for `token list`"), Options.optional),
    expiresInDays: Options.text("expires-in-days").pipe(
      Options.withPseudoName("days"),
      Options.withDescription(`days until it stops working, 1 to ${ApiToken.maxExpiryDays} (default: never)`),
      Options.optional
    ),
    db: Flags.db,
    format: jsonFormat
  },
  (input) =>
    Effect.gen(function*() {
      const asked: ApiToken.NewToken = {
        project: input.project,
        name: Option.getOrUndefined(input.name),
        expiresInDays: yield* expiryOf(input.expiresInDays)
      }
      // Checked before the database is opened: bad input leaves no trace.
      yield* ApiToken.check(asked)
      const target = yield* Flags.target(input.db)
      const { record, token } = yield* Effect.flatMap(ApiTokens.ApiTokens, (tokens) => tokens.create(asked)).pipe(
        Effect.provide(tokensOver),
        Effect.provide(DatabaseTarget.layer(target))
      )
      if (input.format === "json") return yield* Console.log(Render.json({ token, ...encode(record) }, 2))
      yield* Console.log([
        token,
        "",
        `${record.id}  project ${record.project}${record.name === null ? "" : `  "${record.name}"`}  expires ${record.expires_at ?? "never"}`,
        "The token is shown this once; only its hash is stored. Send it as `Authorization: Bearer <token>`."
      ].join("\n"))
    })
).pipe(Command.withDescription("Mint an API token for one project; it is printed once and only its hash is kept"))

const list = Command.make(
  "list",
  { db: Flags.db, format: jsonFormat },
  ({ db, format }) =>
    Effect.gen(function*() {
      const tokens = yield* withTokens(db, Effect.succeed([]), Effect.flatMap(ApiTokens.ApiTokens, (service) => service.list()))
      if (format === "json") return yield* Console.log(Render.json(tokens.map((t) => encode(t)), 2))
      if (tokens.length === 0) return yield* Console.log("no API tokens yet (`autopilot token create --project P` mints one)")
      yield* Console.log(tableOf(tokens, yield* DateTime.now))
    })
).pipe(Command.withDescription("List API tokens, newest first, revoked and expired ones too (never the tokens themselves)"))

const revoke = Command.make(
  "revoke",
  { id: Args.text({ name: "token-id" }), db: Flags.db },
  ({ db, id }) =>
    Effect.gen(function*() {
      const revoked = yield* withTokens(
        db,
        Effect.fail(new ApiToken.TokenNotFound({ id })),
        Effect.flatMap(ApiTokens.ApiTokens, (tokens) => tokens.revoke(id))
      )
      yield* Console.log(`revoked ${revoked.id} (project ${revoked.project}) at ${revoked.revoked_at}`)
    })
).pipe(Command.withDescription("Revoke an API token at once: its next request is refused"))

export const token = Command.make("token").pipe(
  Command.withDescription("API tokens for `autopilot serve`: each sees and touches one project (AUTOPILOT_API_TOKEN is the admin's)"),
  Command.withSubcommands([create, list, revoke])
)
