import { Schema } from "effect"
import { Blueprint, type Mode } from "../../src/domain/Blueprint.js"
import { type Entry, fromEntries } from "../../src/routing/Blueprints.js"

/** A slot as a fixture writes it: name, type, description; optional unless `required`. */
export interface SlotSpec {
  readonly name: string
  readonly type: "cron" | "url" | "url_list" | "string_list" | "integer" | "enum" | "text"
  readonly description: string
  readonly required?: boolean
  readonly values?: ReadonlyArray<string>
}

export interface Spec {
  readonly id: string
  readonly title: string
  readonly description: string
  readonly category: string
  readonly example_goals: ReadonlyArray<string>
  readonly mode?: Mode
  readonly slots?: ReadonlyArray<SlotSpec>
}

/** A valid blueprint around the text the router reads: one node whose prompt uses every slot. */
export const blueprint = (spec: Spec): Blueprint =>
  Schema.decodeUnknownSync(Blueprint)({
    id: spec.id,
    version: 1,
    title: spec.title,
    description: spec.description,
    category: spec.category,
    example_goals: spec.example_goals,
    mode: spec.mode ?? "once",
    slots: (spec.slots ?? []).map((slot) => ({ required: false, ...slot })),
    graph: {
      entry: "work",
      nodes: [{
        id: "work",
        role: `You do this: ${spec.title}`,
        prompt: `${spec.description} ${(spec.slots ?? []).map((s) => `{${s.name}}`).join(" ")}`.trim(),
        model_tier: "medium"
      }],
      edges: []
    },
    success_criteria: [`${spec.title}: done`],
    budget: {},
    curation: { capture: false }
  })

/**
 * A catalog of twelve, written for these tests with the ids the built-in catalog uses, so the router's
 * tests do not depend on the built-in files' wording.
 */
export const specs: ReadonlyArray<Spec> = [
  {
    id: "scheduled_research",
    title: "Scheduled competitive research",
    description: "Research a set of competitors, vendors or market topics on a schedule and report what changed since the last run: pricing, product launches, announcements and positioning.",
    category: "research",
    mode: "scheduled",
    example_goals: [
      "Every Monday, research what our competitors changed in pricing and product",
      "Track three vendors weekly and tell me about new features they launch",
      "Monitor the market for electric scooters every month and summarize new entrants",
      "Keep an eye on Acme and Globex and report their announcements every Friday",
      "Run a weekly competitive analysis of the CRM vendors we compete with"
    ],
    slots: [
      { name: "schedule", type: "cron", description: "When the research runs", required: true },
      { name: "topics", type: "string_list", description: "Competitors, vendors or topics to research", required: true }
    ]
  },
  {
    id: "support_triage",
    title: "Support ticket triage",
    description: "Triage incoming customer support tickets: classify urgency and topic, escalate the hard or angry ones to a human, and draft replies for the easy ones.",
    category: "support",
    mode: "batch",
    example_goals: [
      "Triage the support tickets in our queue and draft answers to the simple ones",
      "Go through customer complaints, escalate urgent cases and reply to the rest",
      "Sort new helpdesk tickets by priority and write suggested responses",
      "Classify incoming support emails and flag the ones that need an engineer",
      "Help my support team by triaging Zendesk tickets every morning"
    ],
    slots: [
      { name: "tickets", type: "string_list", description: "The tickets or their ids", required: true },
      { name: "escalation_channel", type: "text", description: "Where escalated tickets go" }
    ]
  },
  {
    id: "daily_digest",
    title: "Daily digest of feeds, news or an inbox",
    description: "Read RSS feeds, news sites or an inbox and summarize the most important items into a short digest, delivered daily or at a chosen time.",
    category: "productivity",
    mode: "scheduled",
    example_goals: [
      "Send me a daily digest of the top tech news",
      "Summarize my inbox every morning at 8 into a short briefing",
      "Every day, read these RSS feeds and give me the highlights",
      "Give me a morning newsletter of what happened in AI research",
      "Compile the headlines from Hacker News and TechCrunch each evening"
    ],
    slots: [
      { name: "schedule", type: "cron", description: "When the digest is made", required: true },
      { name: "sources", type: "url_list", description: "Feeds, news sites or inboxes to read", required: true }
    ]
  },
  {
    id: "code_review",
    title: "Code review of a diff or pull request",
    description: "Review a code diff or pull request for bugs, security vulnerabilities, performance problems and style, and leave concrete comments with suggested fixes.",
    category: "engineering",
    example_goals: [
      "Review this pull request for bugs and security issues",
      "Look over my diff and point out style problems",
      "Check the changes in PR 482 for SQL injection and race conditions",
      "Do a code review of the new authentication module",
      "Find bugs in the patch before we merge it"
    ],
    slots: [
      { name: "pull_request", type: "url", description: "The pull request or diff to review", required: true },
      { name: "focus", type: "enum", description: "What to look at most", values: ["bugs", "security", "style", "all"] }
    ]
  },
  {
    id: "incident_postmortem",
    title: "Incident postmortem",
    description: "Turn an incident timeline, alerts and logs into a blameless postmortem: impact, root cause, what went well, and follow-up action items.",
    category: "engineering",
    example_goals: [
      "Write a postmortem for yesterday's outage from the incident timeline",
      "Turn these logs and Slack messages into an incident report with root cause",
      "Draft a blameless post-incident review of the database failover",
      "Analyze the outage timeline and list follow-up actions",
      "Summarize what went wrong during the payment API downtime"
    ],
    slots: [
      { name: "timeline", type: "text", description: "The incident timeline and logs", required: true },
      { name: "severity", type: "enum", description: "The incident's severity", values: ["sev1", "sev2", "sev3"] }
    ]
  },
  {
    id: "document_extraction",
    title: "Structured extraction from documents",
    description: "Extract structured fields such as names, dates, amounts and parties from a batch of documents, invoices, contracts or forms into a table.",
    category: "data",
    mode: "batch",
    example_goals: [
      "Extract the invoice number, date and total from these PDFs",
      "Pull the parties, start dates and renewal terms out of our contracts",
      "Turn these scanned forms into a spreadsheet of fields",
      "Get the vendor name and amount from every receipt in the folder",
      "Parse these resumes into name, email, and years of experience"
    ],
    slots: [
      { name: "documents", type: "url_list", description: "The documents to read", required: true },
      { name: "fields", type: "string_list", description: "The fields to extract", required: true }
    ]
  },
  {
    id: "content_writing",
    title: "Content writing from a brief",
    description: "Write an article, blog post, social media post or documentation page from a brief, in a given tone and length, with an outline first.",
    category: "marketing",
    example_goals: [
      "Write a blog post about our new pricing plans",
      "Draft a LinkedIn post announcing our Series A",
      "Create a 1500-word article on remote work best practices",
      "Write the getting-started guide for our SDK",
      "Produce three tweets promoting the webinar"
    ],
    slots: [
      { name: "brief", type: "text", description: "What to write about, for whom", required: true },
      { name: "tone", type: "enum", description: "The tone of voice", values: ["formal", "friendly", "playful"] },
      { name: "length", type: "integer", description: "Roughly how many words" }
    ]
  },
  {
    id: "data_analysis",
    title: "Data analysis and findings report",
    description: "Analyze a dataset such as a CSV, spreadsheet or database table, compute statistics and trends, make charts, and report the findings.",
    category: "data",
    example_goals: [
      "Analyze this CSV of sales and tell me which regions are growing",
      "Find trends in our churn data from last quarter",
      "Look at the survey results spreadsheet and report key insights",
      "Compute cohort retention from the signups table",
      "Make charts of website traffic by month and explain the dips"
    ],
    slots: [
      { name: "dataset", type: "url", description: "The dataset to analyze", required: true },
      { name: "question", type: "text", description: "What the analysis should answer" }
    ]
  },
  {
    id: "meeting_notes",
    title: "Meeting notes, decisions and action items",
    description: "Turn a meeting transcript or recording into concise notes with the decisions made and action items with owners and due dates.",
    category: "productivity",
    example_goals: [
      "Turn this call transcript into meeting notes with action items",
      "Summarize the standup recording and list who owns what",
      "Write minutes for the board meeting from the transcript",
      "Extract decisions and follow-ups from our planning meeting",
      "Make notes from the Zoom call with the client"
    ],
    slots: [
      { name: "transcript", type: "text", description: "The transcript of the meeting", required: true }
    ]
  },
  {
    id: "translation",
    title: "Document translation",
    description: "Translate documents, web pages or product strings into one or more other languages, keeping formatting, terminology and tone.",
    category: "language",
    mode: "batch",
    example_goals: [
      "Translate our help center articles into Spanish and German",
      "Localize the app's strings into French",
      "Translate this contract from Japanese to English",
      "Put the product page into Portuguese, Italian and Dutch",
      "Translate the user manual to Chinese keeping the formatting"
    ],
    slots: [
      { name: "documents", type: "url_list", description: "The documents to translate", required: true },
      { name: "languages", type: "string_list", description: "Target languages", required: true }
    ]
  },
  {
    id: "release_notes",
    title: "Release notes from commits or a changelog",
    description: "Draft release notes for a version from git commits, merged pull requests or a changelog, grouped into features, fixes and breaking changes.",
    category: "engineering",
    example_goals: [
      "Write release notes for v2.3 from the commits since v2.2",
      "Draft the changelog entry for this release",
      "Summarize merged PRs into user-facing release notes",
      "Turn the git log into a what's new announcement",
      "Prepare release notes highlighting breaking changes"
    ],
    slots: [
      { name: "repository", type: "url", description: "The repository", required: true },
      { name: "since", type: "text", description: "The tag or commit to start from" }
    ]
  },
  {
    id: "lead_research",
    title: "Lead research and enrichment",
    description: "Research a list of companies or prospects and enrich each with industry, size, funding, decision makers and contact details for sales outreach.",
    category: "sales",
    mode: "batch",
    example_goals: [
      "Research these 50 companies and find their head of engineering",
      "Enrich our list of prospects with employee count and funding",
      "Find decision makers at fintech startups in Berlin for outreach",
      "Qualify these leads and tell me which are a good fit",
      "Build a prospect list of SaaS companies with more than 200 employees"
    ],
    slots: [
      { name: "companies", type: "string_list", description: "The companies or prospects", required: true },
      { name: "fields", type: "string_list", description: "What to find for each" }
    ]
  }
]

export const blueprints: ReadonlyArray<Blueprint> = specs.map(blueprint)

export const entries: ReadonlyArray<Entry> = blueprints.map((b) => ({ blueprint: b, file: null }))

/** The fixture catalog as the `Blueprints` service. */
export const catalog = fromEntries(entries)

/** A blueprint only the remote service has. */
export const showNotes = blueprint({
  id: "podcast_show_notes",
  title: "Podcast show notes",
  description: "Turn a podcast episode's audio transcript into show notes with chapters and links.",
  category: "media",
  example_goals: ["Write show notes for this week's podcast episode", "Make chapter markers for the episode"]
})
