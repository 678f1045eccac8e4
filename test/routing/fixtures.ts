import { Effect, Schema } from "effect"
import { Blueprint, type BlueprintEncoded } from "../../src/domain/Blueprint.js"
import { Llm, type LlmRequest } from "../../src/llm/Llm.js"
import { MockLlm, MockScript } from "../../src/llm/MockLlm.js"

/** Recurring research on vendors: a slot of every kind the rules read, and two they cannot. */
export const researchEncoded: BlueprintEncoded = {
  id: "scheduled_research",
  version: 1,
  title: "Scheduled vendor research",
  description: "Recurring research on a set of vendors, with a report each time",
  category: "research",
  example_goals: ["Every Monday, compare our vendors' pricing pages", "Track 3 competitors weekly"],
  mode: "scheduled",
  slots: [
    { name: "schedule", type: "cron", required: true, description: "When the research runs" },
    { name: "vendors", type: "string_list", required: true, description: "The vendors to research" },
    { name: "vendor_count", type: "integer", required: false, default: 3, min: 1, max: 20, description: "How many vendors to compare" },
    { name: "depth", type: "enum", required: false, default: "quick", values: ["quick", "thorough"], description: "How deep each look goes" },
    { name: "sources", type: "url_list", required: false, description: "Pages to start from" },
    { name: "audience", type: "text", required: true, description: "Who reads the report" }
  ],
  graph: {
    entry: "research",
    nodes: [
      { id: "research", specialist: "researcher", prompt: "Research {vendors} ({vendor_count}) from {sources}, {depth}.", model_tier: "complex" },
      { id: "report", role: "A writer of short reports", prompt: "Write for {audience}: {research.output}", model_tier: "medium" }
    ],
    edges: [{ from: "research", to: "report" }]
  },
  success_criteria: ["Every vendor is covered", "The report cites its sources"],
  budget: { max_iterations: 20 },
  curation: { capture: true }
}

export const research: Blueprint = Schema.decodeSync(Blueprint)(researchEncoded)

export const blueprint = (overrides: Partial<BlueprintEncoded> = {}): Blueprint =>
  Schema.decodeSync(Blueprint)({ ...researchEncoded, ...overrides })

export const script = (json: unknown) => Schema.decodeUnknownSync(MockScript)(json)

/** The mock model, with every request it was sent kept in `requests`. */
export const recordingLlm = (mock?: MockScript) =>
  Effect.map(MockLlm.make(mock), (llm) => {
    const requests: Array<LlmRequest> = []
    return {
      requests,
      llm: Llm.of({
        complete: (request) => Effect.suspend(() => {
          requests.push(request)
          return llm.complete(request)
        }),
        stream: llm.stream
      })
    }
  })
