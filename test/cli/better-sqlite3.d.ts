// The slice of better-sqlite3 (installed as a dependency of @effect/sql-sqlite-node, without types)
// that the CLI tests use to inspect and corrupt a run's database.
declare module "better-sqlite3" {
  interface RunResult {
    readonly changes: number
  }
  interface Statement {
    get(...params: ReadonlyArray<unknown>): unknown
    all(...params: ReadonlyArray<unknown>): Array<unknown>
    run(...params: ReadonlyArray<unknown>): RunResult
  }
  interface Database {
    prepare(sql: string): Statement
    close(): void
  }
  const Database: new(filename: string, options?: { readonly readonly?: boolean; readonly fileMustExist?: boolean }) => Database
  export default Database
}
