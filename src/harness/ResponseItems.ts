import type { AnswerItem } from "./Responses.js"

/**
 * The items of the harness's recent translated answers, by id, so a later request may name one with an
 * `item_reference` instead of sending it again, as OpenAI's clients do by default (the Vercel AI SDK sends
 * an earlier answer's text that way unless `store` is false). Kept in this process's memory only, the
 * newest first to stay: at most `maxItems`, and at most `maxChars` characters of text in all.
 */
export interface ResponseItems {
  readonly remember: (items: ReadonlyArray<AnswerItem & { readonly id: string }>) => void
  readonly recall: (id: string) => AnswerItem | undefined
}

const sizeOf = (item: AnswerItem) =>
  item.type === "function_call"
    ? item.name.length + item.arguments.length
    : typeof item.content === "string"
    ? item.content.length
    : item.content.reduce((n, part) => n + ("text" in part ? part.text.length : "refusal" in part ? part.refusal.length : 0), 0)

export const make = (
  options: { readonly maxItems: number; readonly maxChars: number } = { maxItems: 10_000, maxChars: 32_000_000 }
): ResponseItems => {
  // A Map iterates in insertion order: its first key is the oldest.
  const items = new Map<string, AnswerItem>()
  let chars = 0
  const forget = (id: string) => {
    const item = items.get(id)
    if (item === undefined) return
    chars -= sizeOf(item)
    items.delete(id)
  }
  return {
    remember: (fresh) => {
      for (const item of fresh) {
        forget(item.id)
        items.set(item.id, item)
        chars += sizeOf(item)
      }
      for (const oldest of items.keys()) {
        if (items.size <= options.maxItems && chars <= options.maxChars) break
        forget(oldest)
      }
    },
    recall: (id) => items.get(id)
  }
}
