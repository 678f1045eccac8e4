import { Effect, Option, Stream } from "effect"

/**
 * An SDK stream as an Effect Stream that drops its HTTP connection however it ends. Not
 * `Stream.fromAsyncIterable`: its finalizer awaits `iterator.return()`, which waits for the pending read,
 * which waits for a server that may have stalled, so an abort placed after it would never run. Aborting
 * first ends the pending read as well.
 */
export const fromSdkStream = <A, E>(
  iterable: AsyncIterable<A>,
  controller: AbortController,
  onError: (error: unknown) => E
): Stream.Stream<A, E> =>
  Stream.suspend(() => {
    const iterator = iterable[Symbol.asyncIterator]()
    return Stream.repeatEffectOption(
      Effect.tryPromise({ try: () => iterator.next(), catch: (error) => Option.some(onError(error)) }).pipe(
        Effect.flatMap((result) => (result.done ? Effect.fail(Option.none()) : Effect.succeed(result.value)))
      )
    ).pipe(Stream.ensuring(Effect.sync(() => controller.abort())))
  })
