/**
 * A server-sent event stream cut into its events as its bytes arrive, each event kept as the bytes it came
 * in: a relay reads what it must (the data) and passes the rest on untouched, with no decoding and
 * re-encoding of what it does not change. Lines end in LF, CRLF or CR, as the SSE spec allows; an event ends
 * at a blank line, and what follows the last one when the stream ends is no event (the spec drops it too).
 */
export interface SseEvent {
  /** The event's bytes as they came, through the blank line that ends it. */
  readonly raw: Uint8Array
  /** Its `event:` field; null when it has none. */
  readonly event: string | null
  /** Its `data:` lines joined by "\n"; null for an event without data (comments only, say). */
  readonly data: string | null
}

export interface SseDecoder {
  /** The events these bytes complete, in order; what is left over waits for the next bytes. */
  readonly push: (bytes: Uint8Array) => ReadonlyArray<SseEvent>
}

const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32

export const decoder = (): SseDecoder => {
  // The bytes of the event being read (from its first line); `scanned`: how far its lines have been read.
  let pending: Buffer | undefined
  let scanned = 0
  let event: string | null = null
  let data: Array<string> | null = null

  const field = (buffer: Buffer, start: number, end: number) => {
    if (buffer[start] === COLON) return // a comment
    let colon = buffer.indexOf(COLON, start)
    if (colon === -1 || colon > end) colon = end
    const name = buffer.toString("latin1", start, colon)
    let value = colon + 1
    if (value < end && buffer[value] === SPACE) value++
    if (name === "data") (data ??= []).push(colon === end ? "" : buffer.toString("utf8", value, end))
    else if (name === "event") event = colon === end ? "" : buffer.toString("utf8", value, end)
  }

  const push = (bytes: Uint8Array): ReadonlyArray<SseEvent> => {
    const chunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    const events: Array<SseEvent> = []
    let eventStart = 0
    let lineStart = scanned
    // Most streams have no CR at all: one search says so for the whole buffer.
    let nextCr = buffer.indexOf(CR, lineStart)
    while (lineStart < buffer.length) {
      const nextLf = buffer.indexOf(LF, lineStart)
      if (nextCr !== -1 && nextCr < lineStart) nextCr = buffer.indexOf(CR, lineStart)
      let end: number
      let next: number
      if (nextCr !== -1 && (nextLf === -1 || nextCr < nextLf)) {
        // A CR last in the buffer may be the first half of a CRLF: wait for the next byte.
        if (nextCr === buffer.length - 1) break
        end = nextCr
        next = buffer[nextCr + 1] === LF ? nextCr + 2 : nextCr + 1
      } else if (nextLf !== -1) {
        end = nextLf
        next = nextLf + 1
      } else break
      if (end === lineStart) {
        events.push({ raw: buffer.subarray(eventStart, next), event, data: data === null ? null : data.join("\n") })
        event = null
        data = null
        eventStart = next
      } else field(buffer, lineStart, end)
      lineStart = next
    }
    pending = eventStart < buffer.length ? buffer.subarray(eventStart) : undefined
    scanned = lineStart - eventStart
    return events
  }

  return { push }
}
