import { FileSystem } from "@effect/platform"
import { Duration, Effect, Hash, Layer, Option, ParseResult, Schema, Stream } from "effect"
import { readFileSync } from "node:fs"
import * as NodePath from "node:path"
import { BadInput, LlmError } from "../domain/Errors.js"
import * as Conversation from "./Conversation.js"
import * as MockBlueprint from "./MockBlueprint.js"
import { instanceOf } from "./MockJson.js"
import { Llm, type LlmChunk, type LlmRequest, type LlmResponse, type LlmUsage } from "./Llm.js"

const Count = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

const Usage = Schema.Struct({ input_tokens: Count, output_tokens: Count })

/**
 * What the critic answers after a turn: a verdict, an error (the call fails; transient unless said
 * otherwise, so it is retried), or a raw reply (garbage, say). Without `usage` a reply costs what its
 * text is worth, so the critic's charge shows.
 */
const CriticTurn = Schema.Union(
  Schema.Struct({
    criteria_met: Schema.Array(Schema.Boolean),
    confidence: Schema.Number,
    suggestions: Schema.optional(Schema.Array(Schema.String)),
    reasoning: Schema.optional(Schema.String),
    usage: Schema.optional(Usage)
  }),
  Schema.Struct({ error: Schema.String, transient: Schema.optional(Schema.Boolean) }),
  Schema.Struct({ content: Schema.String, usage: Schema.optional(Usage) })
)

const Turn = Schema.Struct({
  /** Absent: an instance of the request's output_schema if it has one, else "" (a node's turn: the unscripted answer). */
  content: Schema.optional(Schema.String),
  usage: Schema.optional(Usage),
  tool_calls: Schema.optionalWith(
    Schema.Array(Schema.Struct({ name: Schema.String, arguments: Schema.optionalWith(Schema.Unknown, { default: () => ({}) }) })),
    { default: () => [] }
  ),
  criteria_met: Schema.optional(Schema.Array(Schema.Boolean)),
  error: Schema.optional(Schema.String),
  /** With `error`: whether a retry may help (the default), or the failure is final. */
  transient: Schema.optional(Schema.Boolean),
  /** A cost the provider computed itself (as a proxy may), used instead of the pricing table. */
  cost_usd: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  /** With `error`: the wait the provider asks for before a retry, like a 429's Retry-After. */
  retry_after_ms: Schema.optional(Count),
  latency_ms: Schema.optional(Count),
  /** When the answer is streamed: the wait before each word of it, on the Effect Clock. */
  delta_ms: Schema.optional(Count),
  critic: Schema.optional(CriticTurn)
})

/** A failed call (transient unless said otherwise) or a raw reply, as any answer of the script may be. */
const Failure = Schema.Struct({ error: Schema.String, transient: Schema.optional(Schema.Boolean) })
const Raw = Schema.Struct({ content: Schema.String, usage: Schema.optional(Usage) })

/** What the slot-filling call answers: values for slots (valid or not, as the test needs), an error, raw text. */
const SlotsAnswer = Schema.Union(Failure, Raw, Schema.Struct({ values: Schema.Record({ key: Schema.String, value: Schema.Unknown }), usage: Schema.optional(Usage) }))

/** What the synthesis call answers: a blueprint (sent as written, checked by synthesis, not here), an error, raw text. */
const SynthesisAnswer = Schema.Union(Failure, Raw, Schema.Struct({ blueprint: Schema.Record({ key: Schema.String, value: Schema.Unknown }), usage: Schema.optional(Usage) }))

const answers = <A, I>(answer: Schema.Schema<A, I>, name: string) =>
  Schema.optional(Schema.Array(answer).pipe(Schema.minItems(1, { message: () => `${name} must hold at least one answer` })))

const Turns = Schema.Array(Turn).pipe(Schema.minItems(1, { message: () => "turns must hold at least one turn" }))

/**
 * A scripted conversation for the mock model: one turn per `act` call of each run (without `turns`, act
 * calls answer as unscripted ones do); `nodes` answers a mission node's act calls, counted per node across
 * the process (each healing attempt of a node is a run of its own, and goes on where the last left off);
 * `mission_criteria_met` is what the judge of a run that made no act call (a mission's own check) says;
 * `slots` and `synthesis` answer those calls of the process in order.
 */
export class MockScript extends Schema.Class<MockScript>("MockScript")(
  Schema.Struct({
    model: Schema.optionalWith(Schema.String, { default: () => MockLlm.defaultModel }),
    latency_ms: Schema.optionalWith(Count, { default: () => 0 }),
    delta_ms: Schema.optionalWith(Count, { default: () => 0 }),
    repeat_last: Schema.optionalWith(Schema.Boolean, { default: () => true }),
    turns: Schema.optional(Turns),
    nodes: Schema.optional(Schema.Record({ key: Schema.String, value: Turns })),
    mission_criteria_met: Schema.optional(Schema.Array(Schema.Boolean)),
    slots: answers(SlotsAnswer, "slots"),
    synthesis: answers(SynthesisAnswer, "synthesis"),
    /**
     * A fine-tune evaluation's grades: per model that answered a replay, the share of its answers the
     * grader passes (0 to 1, picked by a hash of the case, so the same cases pass each time); 1 for any
     * other model.
     */
    grades: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number.pipe(Schema.between(0, 1)) })),
    /**
     * A file whose presence fails every call, after the script's latency, as an upstream in trouble would
     * (`outageOf` reads its text); removed, calls answer again. `loadScript` resolves a relative path
     * against the script's folder.
     */
    outage_file: Schema.optional(Schema.NonEmptyString)
  }).pipe(Schema.filter(
    (script) =>
      script.turns !== undefined || script.nodes !== undefined || script.mission_criteria_met !== undefined ||
      script.slots !== undefined || script.synthesis !== undefined || script.grades !== undefined ||
      script.outage_file !== undefined,
    {
      message: () =>
        "a script needs turns (or, for missions alone, nodes or mission_criteria_met; for routing alone, slots or synthesis answers; for evaluations alone, grades; for outages alone, outage_file)"
    }
  ))
) {}

/** The statuses an outage file may name, as an upstream in trouble answers them. */
const outageStatuses: Readonly<Record<string, string>> = {
  "429": "Too Many Requests",
  "500": "Internal Server Error",
  "502": "Bad Gateway",
  "503": "Service Unavailable",
  "504": "Gateway Timeout"
}

/**
 * The failure an outage file's text asks for: `<status> [retry-after ms]` with a status of 429, 500, 502,
 * 503 or 504; anything else, and a file that cannot be read (`undefined`), is a plain 503. Always
 * transient: a provider in trouble is worth retrying.
 */
export const outageOf = (file: string, text: string | undefined): LlmError => {
  const parsed = /^(\d{3})(?:\s+(\d+))?$/.exec(text?.trim() ?? "")
  const named = parsed !== null && parsed[1]! in outageStatuses
  const status = named ? parsed[1]! : "503"
  const retryAfter = named && parsed[2] !== undefined ? { retry_after_ms: Number(parsed[2]) } : {}
  const why = text === undefined ? ", unreadable" : ""
  return new LlmError({ message: `mock upstream: ${status} ${outageStatuses[status]} (outage file ${file}${why})`, transient: true, ...retryAfter })
}

/**
 * The outage a file announces, if it exists. Read with node:fs, synchronously: the mock is built by `make`
 * alone, with no FileSystem in its environment, and this is a read of a few bytes per call, made only
 * for scripts that name an outage file. A file gone between look and read is no outage.
 */
const outageIn = (file: string): Effect.Effect<Option.Option<LlmError>> =>
  Effect.try({ try: () => readFileSync(file, "utf8"), catch: (error) => (error as NodeJS.ErrnoException).code }).pipe(
    Effect.map((text) => Option.some(outageOf(file, text))),
    Effect.catchAll((code) => Effect.succeed(code === "ENOENT" || code === "ENOTDIR" ? Option.none() : Option.some(outageOf(file, undefined))))
  )

/** Eight hex digits of effect's string hash: stable across processes, so a case is graded the same each time. */
const fingerprint = (text: string): string => (Hash.string(text) >>> 0).toString(16).padStart(8, "0")

/** Roughly four characters a token, which is all a mock needs to move the token and dollar axes. */
const estimate = (request: LlmRequest, content: string): LlmUsage => ({
  input_tokens: Math.ceil(
    request.messages.reduce((n, m) => n + m.content.length + (m.tool_calls ?? []).reduce((k, c) => k + c.function.arguments.length, 0), 0) / 4
  ),
  output_tokens: Math.ceil(content.length / 4)
})

const defaultAnswer = (request: LlmRequest): string => {
  const k = request.metadata.iteration
  return [
    `## Iteration ${k}`,
    "",
    `Step ${k} of the plan, addressing success criterion ${k} of ${request.metadata.criteria}.`,
    "",
    "```ts",
    `export const step${k} = (input: string): string => input.trim() + " (step ${k})"`,
    "```"
  ].join("\n")
}

/** What the judge says met: as scripted (padded with false, or cut, to the criteria), or every criterion. */
type Met = ReadonlyArray<boolean> | "all"

const metOf = (met: Met, criteria: number) => Array.from({ length: criteria }, (_, i) => met === "all" || (met[i] ?? false))

const verdictOf = (met: Met, criteria: number) => JSON.stringify({ criteria_met: metOf(met, criteria), notes: "mock judge" })

/** With nothing scripted, the critic agrees with the judge, sure of it, and points at what is left. */
const agreeing = (met: Met, criteria: number) => {
  const verdict = metOf(met, criteria)
  const next = verdict.indexOf(false)
  return JSON.stringify({
    criteria_met: verdict,
    confidence: 1,
    suggestions: next === -1 ? [] : [`Work on criterion ${next + 1} next.`],
    reasoning: "mock critic"
  })
}

/** The goal a routing call is about: its first user message, as slot filling and synthesis send it. */
const goalOf = (request: LlmRequest) => request.messages.find((m) => m.role === "user")?.content ?? ""

/** Splits an answer into word-sized deltas so streaming consumers see more than one chunk. */
const chunksOf = (response: LlmResponse): ReadonlyArray<LlmChunk> => [
  ...(response.content.match(/\S+\s*|\s+/g) ?? []).map((text): LlmChunk => ({ _tag: "Delta", text })),
  { _tag: "Done", response }
]

/** An answer in the schema's shape when the request asks for one and the script says nothing else. */
const instanceFor = (request: LlmRequest): string | undefined =>
  request.output_schema === undefined ? undefined : JSON.stringify(instanceOf(request.output_schema.schema))

/**
 * Where one run is in the script, and what its judge and critic answer after its latest turn. `acted`: the
 * run made an act call, failed or not; a judge without one is a mission's own check of its criteria.
 */
interface RunState {
  readonly calls: number
  readonly acted: boolean
  readonly lastMet: Met
  readonly lastCritic: typeof CriticTurn.Type | undefined
  /** How slowly the latest turn's answer is streamed. */
  readonly deltaMs: number
}

const fresh: RunState = { calls: 0, acted: false, lastMet: [], lastCritic: undefined, deltaMs: 0 }

/**
 * The embedded model: deterministic, no key, no network. Without a script, iteration k meets criterion k
 * and answers in markdown with a code block. The judge is an oracle: it costs no tokens and reports what
 * the script (or the iteration number) says; for a run that made no act call (a mission's final check), what
 * `mission_criteria_met` says, else every criterion met. An act call with an `output_schema` that the
 * script gives no content answers an instance of the schema. The critic answers what the turn's `critic` says, else it
 * agrees with the judge at confidence 1; its replies cost tokens. Routing's calls answer what the script's
 * `slots` and `synthesis` say, else: slot filling finds nothing (`{}`), synthesis writes a generic
 * two-node blueprint for the goal. Tool calls get ids (`call_<turn>_<call>`), and a request whose tool
 * turns OpenAI would refuse (a tool message answering no call of the assistant turn before it, a call left
 * unanswered) dies with a defect naming the message.
 */
export const make = (script?: MockScript): Effect.Effect<Llm["Type"]> =>
  Effect.gen(function*() {
    // Kept per run: the children of a fan-out call at once, and each goes through the script on its own,
    // its judge and critic answering after its own turn.
    const runs = new Map<string, RunState>()
    const stateOf = (request: LlmRequest) => Effect.sync(() => runs.get(request.metadata.run_id) ?? fresh)
    const update = (request: LlmRequest, f: (state: RunState) => RunState) =>
      Effect.sync(() => {
        runs.set(request.metadata.run_id, f(runs.get(request.metadata.run_id) ?? fresh))
      })

    /**
     * Answers turn `index` of `turns` (the last again past the end when `repeat_last`). A node's turn
     * (`node`) says every criterion met unless it says otherwise, and without content answers as an
     * unscripted call; a run's turn meets only what it lists, and without content answers "".
     */
    const scripted = (
      request: LlmRequest,
      script: MockScript,
      turns: ReadonlyArray<typeof Turn.Type>,
      index: number,
      node?: string
    ) =>
      Effect.gen(function*() {
        yield* update(request, (state) => ({ ...state, acted: true }))
        const turn = index < turns.length
          ? turns[index]
          : script.repeat_last ? turns[turns.length - 1] : undefined
        if (turn === undefined) {
          const of = node === undefined ? "" : ` of node ${node}`
          return yield* new LlmError({ message: `mock script exhausted after ${turns.length} turns${of}`, transient: false })
        }
        const latency = turn.latency_ms ?? script.latency_ms
        if (latency > 0) yield* Effect.sleep(Duration.millis(latency))
        if (turn.error !== undefined) {
          return yield* new LlmError({ message: turn.error, transient: turn.transient ?? true, retry_after_ms: turn.retry_after_ms })
        }
        const met: Met = turn.criteria_met ?? (node === undefined ? [] : "all")
        yield* update(request, (state) => ({ ...state, lastMet: met, lastCritic: turn.critic, deltaMs: turn.delta_ms ?? script.delta_ms }))
        const content = turn.content ?? instanceFor(request) ?? (node === undefined ? "" : defaultAnswer(request))
        return {
          content,
          tool_calls: turn.tool_calls.map((call, i) => ({ id: `call_${index}_${i}`, ...call })),
          usage: turn.usage ?? estimate(request, content),
          model: request.model ?? script.model,
          cost_usd: turn.cost_usd
        } satisfies LlmResponse
      })

    // A node's turns are counted per node id, not per run: each healing attempt of a node is a new run.
    const nodeCalls = new Map<string, number>()
    const act = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
      const node = request.metadata.node
      const nodeTurns = node === undefined ? undefined : script?.nodes?.[node]
      if (script !== undefined && node !== undefined && nodeTurns !== undefined) {
        return Effect.suspend(() => {
          const index = nodeCalls.get(node) ?? 0
          nodeCalls.set(node, index + 1)
          return scripted(request, script, nodeTurns, index, node)
        })
      }
      if (script?.turns === undefined) return unscripted(request)
      const turns = script.turns
      return Effect.flatMap(stateOf(request), ({ calls }) =>
        Effect.zipRight(update(request, (state) => ({ ...state, calls: state.calls + 1 })), scripted(request, script, turns, calls)))
    }

    const unscripted = (request: LlmRequest) => {
      const content = instanceFor(request) ?? defaultAnswer(request)
      const met = Array.from({ length: request.metadata.criteria }, (_, i) => i < request.metadata.iteration)
      return update(request, (state) => ({ ...state, acted: true, lastMet: met })).pipe(Effect.as({
        content,
        tool_calls: [],
        usage: estimate(request, content),
        model: request.model ?? MockLlm.defaultModel
      } satisfies LlmResponse))
    }

    const critic = (request: LlmRequest) =>
      Effect.gen(function*() {
        const { lastCritic: scripted, lastMet } = yield* stateOf(request)
        if (scripted !== undefined && "error" in scripted) {
          return yield* new LlmError({ message: scripted.error, transient: scripted.transient ?? true })
        }
        const content = scripted === undefined
          ? agreeing(lastMet, request.metadata.criteria)
          : "content" in scripted
          ? scripted.content
          : JSON.stringify({
            criteria_met: scripted.criteria_met,
            confidence: scripted.confidence,
            suggestions: scripted.suggestions ?? [],
            reasoning: scripted.reasoning ?? "mock critic"
          })
        return {
          content,
          tool_calls: [],
          usage: scripted?.usage ?? estimate(request, content),
          model: request.model ?? script?.model ?? MockLlm.defaultModel
        } satisfies LlmResponse
      })

    // Routing's calls, counted per process: each list is answered in order, its last answer repeated.
    const routingCalls = { slots: 0, synthesis: 0 }
    const routing = (request: LlmRequest, purpose: "slots" | "synthesis") =>
      Effect.suspend(() => {
        const list = script?.[purpose]
        const answer = list?.[Math.min(routingCalls[purpose]++, list.length - 1)]
        if (answer !== undefined && "error" in answer) {
          return Effect.fail(new LlmError({ message: answer.error, transient: answer.transient ?? true }))
        }
        const content = answer === undefined
          ? purpose === "slots" ? "{}" : JSON.stringify(MockBlueprint.forGoal(goalOf(request)))
          : "content" in answer
          ? answer.content
          : JSON.stringify("values" in answer ? answer.values : answer.blueprint)
        return Effect.succeed({
          content,
          tool_calls: [],
          usage: answer?.usage ?? estimate(request, content),
          model: request.model ?? script?.model ?? MockLlm.defaultModel
        } satisfies LlmResponse)
      })

    // A fine-tune evaluation: a replay's answer carries a fingerprint of the model that gave it (the same
    // length for every model, so two models' answers cost the same tokens), and the grader passes each
    // model's share of cases as the script says.
    const replay = (request: LlmRequest) => {
      const model = request.model ?? script?.model ?? MockLlm.defaultModel
      const content = `mock replay ${fingerprint(model)} ${fingerprint(request.messages.map((m) => m.content).join("\n"))}`
      return Effect.succeed({ content, tool_calls: [], usage: estimate(request, content), model } satisfies LlmResponse)
    }
    const grade = (request: LlmRequest) => {
      const asked = request.messages.at(-1)?.content ?? ""
      const graded = /Answer to grade:\n(?:…)?mock replay (\w{8}) (\w{8})/.exec(asked)
      const model = graded === null ? undefined : Object.keys(script?.grades ?? {}).find((m) => fingerprint(m) === graded[1])
      const rate = model === undefined ? 1 : script!.grades![model]!
      const pass = graded === null || Number.parseInt(graded[2]!, 16) % 1000 < rate * 1000
      const content = JSON.stringify({ pass, reason: "mock grader" })
      return Effect.succeed({ content, tool_calls: [], usage: estimate(request, content), model: request.model ?? script?.model ?? MockLlm.defaultModel } satisfies LlmResponse)
    }

    const answer = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      request.purpose === "replay"
        ? replay(request)
        : request.purpose === "grade"
        ? grade(request)
        : request.purpose === "slots" || request.purpose === "synthesis"
        ? routing(request, request.purpose)
        : request.purpose === "critic"
        ? critic(request)
        : request.purpose === "judge"
        ? Effect.map(stateOf(request), ({ acted, lastMet }) => ({
          content: verdictOf(acted ? lastMet : script?.mission_criteria_met ?? "all", request.metadata.criteria),
          tool_calls: [],
          usage: { input_tokens: 0, output_tokens: 0 },
          model: request.model ?? script?.model ?? MockLlm.defaultModel
        }))
        : act(request)

    // Every call goes through here (streams too): an outage refuses it before any turn or answer is used up,
    // taking the script's latency first, as a real upstream takes time to refuse.
    const outageFile = script?.outage_file
    const upstream = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      outageFile === undefined ? answer(request) : Effect.flatMap(outageIn(outageFile), Option.match({
        onNone: () => answer(request),
        onSome: (error) => Effect.zipRight(script!.latency_ms > 0 ? Effect.sleep(Duration.millis(script!.latency_ms)) : Effect.void, Effect.fail(error))
      }))

    // A conversation OpenAI would refuse with a 400 is a bug in whoever built it, not a failure to retry or heal.
    const complete = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      Option.match(Conversation.problemOf(request.messages), {
        onNone: () => upstream(request),
        onSome: (problem) => Effect.dieMessage(`mock model: invalid conversation (the ${request.purpose} call of run ${request.metadata.run_id}): ${problem}`)
      })

    return {
      complete,
      stream: (request) =>
        Stream.unwrap(Effect.gen(function*() {
          const chunks = Stream.fromIterable(chunksOf(yield* complete(request)))
          const pause = request.purpose === "act" ? (yield* stateOf(request)).deltaMs : 0
          return pause === 0 ? chunks : Stream.tap(chunks, (chunk) => (chunk._tag === "Delta" ? Effect.sleep(Duration.millis(pause)) : Effect.void))
        }))
    }
  })

const decodeScript = Schema.decodeUnknown(Schema.parseJson(MockScript))

/**
 * Reads and validates a mock script, failing with a one-line BadInput naming the file and the problem. A
 * relative `outage_file` is made absolute against the script's folder, wherever the process runs.
 */
export const loadScript = (path: string): Effect.Effect<MockScript, BadInput, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError(() => new BadInput({ message: `mock script ${path} cannot be read: it must be an existing JSON file` }))
    )
    const script = yield* decodeScript(text).pipe(
      Effect.mapError((e) =>
        new BadInput({
          message: `mock script ${path} is malformed: ${
            ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")
              .replace(/\s+/g, " ")
          }`
        })
      )
    )
    return script.outage_file === undefined || NodePath.isAbsolute(script.outage_file)
      ? script
      : new MockScript({ ...script, outage_file: NodePath.resolve(NodePath.dirname(path), script.outage_file) })
  })

export const MockLlm = {
  /** Priced like a small commercial model so the dollar axis moves in demos. */
  defaultModel: "gpt-4o-mini",
  make,
  loadScript,
  layer: (script?: MockScript) => Layer.effect(Llm, make(script))
}
