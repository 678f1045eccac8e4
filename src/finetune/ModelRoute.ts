import { Either, Option, Schema } from "effect"

/**
 * A promoted fine-tune taking traffic: the work (`act`) calls of one blueprint, one node of a blueprint or
 * one specialist go to `model` instead of the provider's default. The runtime and the harness both read
 * these rules; at most one is active per scope, and a rollback retires it (restoring the one it replaced).
 */

/** What a rule is for, most specific first: a node of a blueprint, a blueprint, a specialist. */
export type Scope =
  | { readonly kind: "node"; readonly blueprint: string; readonly node: string }
  | { readonly kind: "blueprint"; readonly blueprint: string }
  | { readonly kind: "specialist"; readonly specialist: string }

/** A scope as one text, stored and shown: `node:<blueprint>/<node>`, `blueprint:<id>`, `specialist:<id>`. */
export const scopeText = (scope: Scope): string =>
  scope.kind === "node" ? `node:${scope.blueprint}/${scope.node}` : scope.kind === "blueprint" ? `blueprint:${scope.blueprint}` : `specialist:${scope.specialist}`

/** A scope's text back, or what is wrong with it. */
export const parseScope = (text: string): Either.Either<Scope, string> => {
  const [kind, rest] = [text.slice(0, text.indexOf(":")), text.slice(text.indexOf(":") + 1)]
  if (text.indexOf(":") > 0 && rest !== "") {
    if (kind === "blueprint") return Either.right({ kind, blueprint: rest })
    if (kind === "specialist") return Either.right({ kind, specialist: rest })
    const slash = rest.indexOf("/")
    if (kind === "node" && slash > 0 && slash < rest.length - 1) return Either.right({ kind, blueprint: rest.slice(0, slash), node: rest.slice(slash + 1) })
  }
  return Either.left(`"${text}" is not a routing scope: node:<blueprint>/<node>, blueprint:<id> or specialist:<id>`)
}

/** The scope a dataset's filters describe: the traffic its samples came from, and so what its model may take. */
export const scopeOfDataset = (d: { readonly blueprint?: string | undefined; readonly node?: string | undefined; readonly specialist?: string | undefined }): Option.Option<Scope> =>
  d.blueprint !== undefined && d.node !== undefined
    ? Option.some({ kind: "node", blueprint: d.blueprint, node: d.node })
    : d.blueprint !== undefined
    ? Option.some({ kind: "blueprint", blueprint: d.blueprint })
    : d.specialist !== undefined
    ? Option.some({ kind: "specialist", specialist: d.specialist })
    : Option.none()

/** What a call says of where it comes from (`LlmRequest.metadata`, or the harness's `x-autopilot-route`). */
export interface RouteKeys {
  readonly blueprint?: string | undefined
  /** A node's key: `classify`, or `2.classify` for item 2 of a batch (the same node for routing). */
  readonly node?: string | undefined
  readonly specialist?: string | undefined
}

/** The keys a call from `scope` carries. */
export const keysOfScope = (scope: Scope): RouteKeys =>
  scope.kind === "node" ? { blueprint: scope.blueprint, node: scope.node } : scope.kind === "blueprint" ? { blueprint: scope.blueprint } : { specialist: scope.specialist }

/** The scope texts a call matches, most specific first. */
export const candidatesOf = (keys: RouteKeys): ReadonlyArray<string> => {
  const node = keys.node?.replace(/^\d+\./, "")
  return [
    keys.blueprint !== undefined && node !== undefined ? scopeText({ kind: "node", blueprint: keys.blueprint, node }) : undefined,
    keys.blueprint !== undefined ? scopeText({ kind: "blueprint", blueprint: keys.blueprint }) : undefined,
    keys.specialist !== undefined ? scopeText({ kind: "specialist", specialist: keys.specialist }) : undefined
  ].filter((s): s is string => s !== undefined)
}

/** The request header a harness client names a call's keys in (`headerOf`), and the harness routes by. */
export const routeHeader = "x-autopilot-route"

/** The keys as the harness header carries them: `blueprint=…;node=…;specialist=…`, only those present. */
export const headerOf = (keys: RouteKeys): string | undefined => {
  const parts = (["blueprint", "node", "specialist"] as const).flatMap((k) => keys[k] === undefined ? [] : [`${k}=${encodeURIComponent(keys[k]!)}`])
  return parts.length === 0 ? undefined : parts.join(";")
}

/** The header read back; unknown or malformed parts are ignored (a client's header routes nothing it does not name). */
export const keysOfHeader = (header: string): RouteKeys => {
  const keys: { blueprint?: string; node?: string; specialist?: string } = {}
  for (const part of header.split(";")) {
    const at = part.indexOf("=")
    const name = part.slice(0, at).trim()
    if (at <= 0 || (name !== "blueprint" && name !== "node" && name !== "specialist")) continue
    try {
      keys[name] = decodeURIComponent(part.slice(at + 1).trim())
    } catch {
      continue
    }
  }
  return keys
}

export class ModelRoute extends Schema.Class<ModelRoute>("ModelRoute")({
  id: Schema.String,
  /** `scopeText` of what it routes. */
  scope: Schema.String,
  model: Schema.String,
  /** The OpenAI-compatible endpoint serving `model` (a trainer's server); null: the provider's own. */
  base_url: Schema.NullOr(Schema.String),
  job_id: Schema.String,
  evaluation_id: Schema.String,
  /**
   * The model it was measured against when that was named (a process's `--model`, or an earlier route's);
   * null when it was the provider's default. A call naming this model is traffic the route proved it can take.
   */
  baseline_model: Schema.NullOr(Schema.String),
  /** The route this one replaced in its scope, restored by a rollback. */
  replaces: Schema.NullOr(Schema.String),
  promoted_at: Schema.String,
  retired_at: Schema.NullOr(Schema.String),
  retired_reason: Schema.NullOr(Schema.String)
}) {}

/** The most specific active route among `routes` for a call with these keys. */
export const resolve = (routes: ReadonlyArray<ModelRoute>, keys: RouteKeys): Option.Option<ModelRoute> => {
  for (const scope of candidatesOf(keys)) {
    const route = routes.find((r) => r.scope === scope && r.retired_at === null)
    if (route !== undefined) return Option.some(route)
  }
  return Option.none()
}
