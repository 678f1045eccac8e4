import { Either } from "effect"
import { HarnessError } from "./HarnessError.js"

const maxNesting = 256

/** How deep the arrays and objects of a JSON text nest, brackets inside strings aside. */
const nestingOf = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // a backslash: skip what it escapes
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth)
    else if (c === 93 || c === 125) depth--
  }
  return deepest
}

/** A request body's text as JSON, or the 400 it earns. */
export const parse = (text: string): Either.Either<unknown, HarnessError> => {
  // JSON.parse is iterative but JSON.stringify and Schema's error messages recurse: a body nested deep
  // enough overflows the stack on its way out (a 500, or a 502 blaming the upstream).
  if (nestingOf(text) > maxNesting) return Either.left(HarnessError.invalid(`the request body nests deeper than ${maxNesting} levels`))
  try {
    return Either.right(JSON.parse(text) as unknown)
  } catch (e) {
    return Either.left(HarnessError.invalid(`the request body is not valid JSON: ${(e as Error).message}`))
  }
}
