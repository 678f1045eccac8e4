/** The library's entry points: a mission (`run`, `stream`) and a fan-out of missions (`fanout`). */
export * from "./Mission.js"
export { run as fanout } from "./Fanout.js"
export type { ChildResult, FanoutItemInput, FanoutOptions, FanoutResult } from "./Fanout.js"
