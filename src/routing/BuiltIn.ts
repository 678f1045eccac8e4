/**
 * The built-in blueprints: one JSON file each in `catalog/`, imported rather than read from disk so that
 * they ship inside the library's dist and the CLI's bundle alike. The catalog decodes and checks them like
 * any user file; a test checks that every file of the folder is listed here.
 */
import codeReview from "./catalog/code_review.json" with { type: "json" }
import contentWriting from "./catalog/content_writing.json" with { type: "json" }
import contractReview from "./catalog/contract_review.json" with { type: "json" }
import dailyDigest from "./catalog/daily_digest.json" with { type: "json" }
import dataAnalysis from "./catalog/data_analysis.json" with { type: "json" }
import documentExtraction from "./catalog/document_extraction.json" with { type: "json" }
import incidentPostmortem from "./catalog/incident_postmortem.json" with { type: "json" }
import leadResearch from "./catalog/lead_research.json" with { type: "json" }
import meetingNotes from "./catalog/meeting_notes.json" with { type: "json" }
import releaseNotes from "./catalog/release_notes.json" with { type: "json" }
import scheduledResearch from "./catalog/scheduled_research.json" with { type: "json" }
import supportTriage from "./catalog/support_triage.json" with { type: "json" }
import translation from "./catalog/translation.json" with { type: "json" }
import userResearchSynthesis from "./catalog/user_research_synthesis.json" with { type: "json" }

export const files: ReadonlyArray<readonly [file: string, content: unknown]> = [
  ["code_review.json", codeReview],
  ["content_writing.json", contentWriting],
  ["contract_review.json", contractReview],
  ["daily_digest.json", dailyDigest],
  ["data_analysis.json", dataAnalysis],
  ["document_extraction.json", documentExtraction],
  ["incident_postmortem.json", incidentPostmortem],
  ["lead_research.json", leadResearch],
  ["meeting_notes.json", meetingNotes],
  ["release_notes.json", releaseNotes],
  ["scheduled_research.json", scheduledResearch],
  ["support_triage.json", supportTriage],
  ["translation.json", translation],
  ["user_research_synthesis.json", userResearchSynthesis]
]
