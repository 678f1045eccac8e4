import { Option } from "effect"

/** What the rules read of a message: a chat request's (`ChatMessage`) or a fine-tuning line's. */
export interface Turn {
  readonly role: string
  readonly tool_calls?: ReadonlyArray<{ readonly id: string }> | undefined
  readonly tool_call_id?: string | undefined
}

export interface Options {
  /**
   * The last assistant turn's calls may stay unanswered: a fine-tuning line may end on the calls it
   * teaches. A chat request may not.
   */
  readonly openEnd?: boolean | undefined
}

/**
 * OpenAI's rules for tool turns, which it answers with a 400 when broken: an assistant turn's
 * `tool_calls` are answered, each exactly once and before any other message, by the `tool` messages right
 * after it, each naming its call by `tool_call_id`. Only assistant turns carry calls, only tool messages answer.
 * One rule for the wire (the mock refuses what OpenAI would) and for fine-tuning lines (`FineTuneFormat`).
 */
export const problemOf = (messages: ReadonlyArray<Turn>, options: Options = {}): Option.Option<string> => {
  // The calls of the latest assistant turn that no tool message has answered yet.
  let open = new Set<string>()
  let asker = -1
  for (const [index, message] of messages.entries()) {
    const at = `message ${index + 1} (${message.role})`
    if (message.role !== "assistant" && message.tool_calls !== undefined) return Option.some(`${at} carries tool_calls; only an assistant turn may`)
    if (message.role !== "tool" && message.tool_call_id !== undefined) return Option.some(`${at} carries a tool_call_id; only a tool message may`)
    if (message.role === "tool") {
      if (message.tool_call_id === undefined) return Option.some(`${at} has no tool_call_id; a tool message answers one call by its id`)
      if (!open.has(message.tool_call_id)) {
        return Option.some(
          asker === -1
            ? `${at} answers ${message.tool_call_id}, but follows no assistant turn with tool calls`
            : `${at} answers ${message.tool_call_id}, which is not an unanswered call of the assistant turn before it (message ${asker + 1})`
        )
      }
      open.delete(message.tool_call_id)
      continue
    }
    if (open.size > 0) {
      return Option.some(`${at} comes before every tool call of message ${asker + 1} was answered (unanswered: ${[...open].join(", ")})`)
    }
    open = new Set()
    asker = -1
    if (message.role === "assistant" && message.tool_calls !== undefined && message.tool_calls.length > 0) {
      const ids = message.tool_calls.map((call) => call.id)
      if (new Set(ids).size < ids.length) return Option.some(`${at} makes two tool calls with one id`)
      if (ids.includes("")) return Option.some(`${at} makes a tool call with an empty id`)
      open = new Set(ids)
      asker = index
    }
  }
  return open.size > 0 && !(options.openEnd === true && asker === messages.length - 1)
    ? Option.some(`the conversation ends before every tool call of message ${asker + 1} was answered (unanswered: ${[...open].join(", ")})`)
    : Option.none()
}
