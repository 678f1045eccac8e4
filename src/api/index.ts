/** The HTTP API, loaded by the CLI only when it serves it. */
export * as Api from "./Api.js"
export * as ApiServer from "./ApiServer.js"
export * as EventStream from "./EventStream.js"
export * as DeltaFeed from "./DeltaFeed.js"
export * as OperatorPage from "./OperatorPage.js"
