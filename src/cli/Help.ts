import { CliConfig, type Command, HelpDoc, Usage } from "@effect/cli"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Doc from "@effect/printer/Doc"

/**
 * `--help`, written by us: @effect/cli (0.77) always prints ANSI escapes, names a subcommand in its usage
 * line without the commands above it (`$ create`), and doubles parents in nested listings (`harness
 * harness key create`). Its option and argument sections are kept as they are.
 */

/** A command of the tree as @effect/cli builds it; it has no public way to reach nested subcommands. */
type Instruction =
  | {
    readonly _tag: "Standard" | "GetUserInput"
    readonly name: string
    readonly description: HelpDoc.HelpDoc
    readonly options?: { readonly _tag: string }
    readonly args?: { readonly _tag: string }
  }
  | { readonly _tag: "Map"; readonly command: Instruction }
  | { readonly _tag: "Subcommands"; readonly parent: Instruction; readonly children: ReadonlyArray<Instruction> }

export interface Node {
  readonly name: string
  readonly description: HelpDoc.HelpDoc
  /** The command itself, without its subcommands: its usage, arguments and options. */
  readonly own: Descriptor.Command<unknown>
  readonly children: ReadonlyArray<Node>
  /** Whether it has options or arguments of its own: such a command runs by itself, subcommands or not. */
  readonly takesInput: boolean
}

const nodeOf = (command: Instruction): Node => {
  switch (command._tag) {
    case "Map":
      return nodeOf(command.command)
    case "Subcommands":
      return { ...nodeOf(command.parent), children: command.children.map(nodeOf) }
    default:
      return {
        name: command.name,
        description: command.description,
        own: command as unknown as Descriptor.Command<unknown>,
        children: [],
        takesInput: (command.options?._tag ?? "Empty") !== "Empty" || (command.args?._tag ?? "Empty") !== "Empty"
      }
  }
}

export const treeOf = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>): Node =>
  nodeOf(command.descriptor as unknown as Instruction)

/** The commands `args` name, as @effect/cli finds them: at each level, the first argument naming a subcommand. */
export const commandPath = (root: Node, args: ReadonlyArray<string>): { readonly path: ReadonlyArray<Node>; readonly rest: ReadonlyArray<string> } => {
  const path = [root]
  let rest = args
  for (;;) {
    const node = path.at(-1)!
    const at = rest.findIndex((arg) => node.children.some((child) => child.name === arg))
    if (at === -1) return { path, rest }
    path.push(node.children.find((child) => child.name === rest[at])!)
    rest = rest.slice(at + 1)
  }
}

/**
 * The commands to show help for, if `args` ask for it: `--help` or `-h` anywhere, or a command that only
 * groups others given nothing more. Anything else is left to @effect/cli.
 */
export const requested = (root: Node, args: ReadonlyArray<string>): ReadonlyArray<Node> | undefined => {
  const { path, rest } = commandPath(root, args)
  const asked = args.includes("--help") || args.includes("-h")
  const node = path.at(-1)!
  return asked || (node.children.length > 0 && !node.takesInput && rest.length === 0) ? path : undefined
}

export const names = (path: ReadonlyArray<Node>) => path.map((node) => node.name).join(" ")

/** Colors and bold for a terminal; plain text for a pipe, a file, or whoever set NO_COLOR (https://no-color.org). */
export const colorFor = (stdout: { readonly isTTY?: boolean | undefined }, noColor: string | undefined): boolean =>
  stdout.isTTY === true && (noColor ?? "") === ""

/** Without color. */
export const plain = (doc: HelpDoc.HelpDoc): string =>
  Doc.render(Doc.unAnnotate(HelpDoc.toAnsiDoc(doc)), { style: "pretty" })

const config = CliConfig.make({ showBuiltIns: false })

/** What @effect/cli says of every text option; wrong for those we type ourselves (`--max-dollars number`). */
const untyped = "A user-defined piece of text."

const isUntyped = (doc: HelpDoc.HelpDoc) => HelpDoc.isParagraph(doc) && plain(doc).trim() === untyped

/** A description without its leading "A user-defined piece of text.". */
const withoutLeadingUntyped = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc =>
  !HelpDoc.isSequence(doc)
    ? doc
    : isUntyped(doc.left)
    ? doc.right
    : HelpDoc.sequence(withoutLeadingUntyped(doc.left), doc.right)

const withoutUntyped = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc =>
  HelpDoc.isSequence(doc)
    ? HelpDoc.sequence(withoutUntyped(doc.left), withoutUntyped(doc.right))
    : HelpDoc.mapDescriptionList(doc, (term, description) =>
      / text(\.\.\.)?$/.test(plain(HelpDoc.p(term)).trim()) ? [term, description] : [term, withoutLeadingUntyped(description)])

/** The help page for the last command of `path`, with ANSI colors and bold or without. */
export const page = (path: ReadonlyArray<Node>, version: string, options: { readonly color: boolean }): string => {
  const render = options.color ? HelpDoc.toAnsiText : plain
  const node = path.at(-1)!
  // A command's own usage starts with its own name.
  const own = Usage.enumerate(Descriptor.getUsage(node.own), config).map((span) =>
    HelpDoc.p(Span.concat(Span.text(`$ ${names(path.slice(0, -1))} `), span)))
  const usage = node.children.length === 0
    ? own
    : [...(node.takesInput ? own : []), HelpDoc.p(`$ ${names(path)} <command>`)]
  const width = Math.max(...node.children.map((child) => child.name.length))
  const commands = node.children.length === 0 ? [] : [
    render(HelpDoc.h1("COMMANDS")),
    ...node.children.map((child) => `  ${child.name.padEnd(width)}  ${plain(child.description).replace(/\s+/g, " ").trim()}`),
    "",
    `Each command takes --help: \`${names(path)} <command> --help\`.`,
    ...(path.length === 1
      ? [`\`${names(path)} --version\` prints the version; \`--completions bash|fish|sh|zsh\` a completion script for a shell.`]
      : [])
  ]
  return [
    render(HelpDoc.blocks([
      HelpDoc.p(`${path[0]!.name} ${version}`),
      HelpDoc.h1("USAGE"),
      ...usage,
      withoutUntyped(Descriptor.getHelp(node.own, config))
    ])),
    ...commands
  ].join("\n")
}
