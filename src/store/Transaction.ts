import { SqlClient, SqlError } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import type { PersistenceError } from "../domain/Errors.js"
import * as Database from "./Database.js"

/**
 * Makes the writes of several stores one transaction: all or nothing. Nothing may wait on a model call
 * inside it, since one SQLite connection serializes all SQL.
 */
export class Transaction extends Context.Tag("autopilot/Transaction")<
  Transaction,
  <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PersistenceError, R>
>() {}

export const layer = Layer.effect(
  Transaction,
  Effect.map(SqlClient.SqlClient, (sql) => (effect) =>
    sql.withTransaction(effect).pipe(
      Effect.catchIf((e): e is SqlError.SqlError => e instanceof SqlError.SqlError, (e) => Database.refail(Effect.fail(e)))
    ))
)
