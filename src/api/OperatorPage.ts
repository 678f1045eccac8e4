import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { html } from "./page/Html.js"
import { script } from "./page/Script.js"
import { css } from "./page/Style.js"

/**
 * The operator page at `/`: one document, its script and its styles, served from string constants. They
 * are modules rather than files so that the page is found wherever the code runs: in the library as tsc
 * writes it to dist/, and inside the CLI's esbuild bundle, with no copy step and no path to resolve.
 */

/**
 * Only this server's own script, styles, images and API: no inline script or style, no other origin, no
 * framing, no plugins. The API it calls and the event stream it follows are same-origin.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const icon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1449c4"/><path d="M8 23 16 7l8 16-8-4z" fill="#fff"/></svg>`

interface Asset {
  readonly path: `/${string}`
  readonly contentType: string
  readonly body: string
}

export const assets: ReadonlyArray<Asset> = [
  { path: "/", contentType: "text/html; charset=utf-8", body: html },
  { path: "/page/app.js", contentType: "text/javascript; charset=utf-8", body: script },
  { path: "/page/app.css", contentType: "text/css; charset=utf-8", body: css },
  { path: "/page/icon.svg", contentType: "image/svg+xml", body: icon }
]

/** A strong validator of the content: the same build answers 304 to a browser that has it. */
const etagOf = (body: string) => `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`

/** Whether `If-None-Match` names this ETag (a list, or `*`; a weak match is enough for a GET). */
const matches = (header: string | undefined, etag: string) =>
  header !== undefined && header.split(",").some((tag) => tag.trim() === "*" || tag.trim().replace(/^W\//, "") === etag)

const handler = (asset: Asset) => {
  const etag = etagOf(asset.body)
  const headers = {
    etag,
    // Kept, but checked with the server every time (a 304 costs nothing): a new version shows at once.
    "cache-control": "no-cache",
    "content-security-policy": contentSecurityPolicy
  }
  return Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
    matches(request.headers["if-none-match"], etag)
      ? HttpServerResponse.empty({ status: 304, headers })
      : HttpServerResponse.text(asset.body, { contentType: asset.contentType, headers }))
}

/** The page's routes, beside the API's (ApiServer.layerRoutes). */
export const layer = HttpApiBuilder.Router.use((router) =>
  Effect.forEach(assets, (asset) => router.get(asset.path, handler(asset)), { discard: true }))
