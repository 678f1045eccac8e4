/** The daemon, loaded by the CLI only when it runs one. */
export * as Daemon from "./Daemon.js"
export * as WorkRunner from "./WorkRunner.js"
