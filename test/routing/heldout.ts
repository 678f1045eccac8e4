/**
 * Goals that carry values for slots (URLs, times, counts, vendor and product names, file paths, quoted
 * text, versions), each plain about its blueprint: the values must not keep it from being found.
 */
export const withValues: ReadonlyArray<readonly [goal: string, label: string]> = [
  ["review PR https://github.com/acme/api/pull/42 for security", "code_review"],
  ["Check https://gitlab.example.org/platform/billing/-/merge_requests/118 for race conditions", "code_review"],
  ["every weekday at 9 send me a digest of https://news.ycombinator.com and https://lobste.rs", "daily_digest"],
  ["translate docs/guide.md into German, French and Japanese", "translation"],
  ["Translate the \"Getting started\" guide at https://docs.example.com/start into Spanish", "translation"],
  ["draft release notes from the changelog since v2.3", "release_notes"],
  ["Write release notes for v5.2.0 from the commits between v5.1.3 and HEAD", "release_notes"],
  ["track pricing of Stripe, Adyen and Braintree every week", "scheduled_research"],
  ["Watch Figma, Canva and Miro's pricing pages at 7:30am every Friday", "scheduled_research"],
  ["extract invoice number, total and due date from the PDFs in invoices/", "document_extraction"],
  ["Pull the IBAN, amount and reference from statements/2024-*.pdf into a CSV", "document_extraction"],
  ["Write the postmortem for the 14:05 UTC outage of api.payments.internal (INC-2291)", "incident_postmortem"],
  ["Analyze sales_q3.xlsx and tell me why revenue fell 12% in EMEA", "data_analysis"],
  ["Turn the transcript in notes/standup-2024-05-02.txt into action items with owners", "meeting_notes"],
  ["Find 25 VPs of engineering at fintech startups in Berlin with over 50 employees", "lead_research"],
  ["Triage the 120 tickets tagged priority=high in Zendesk and draft replies", "support_triage"],
  ["Write a 1,200-word blog post titled \"Why we moved to Postgres\" for our engineering blog", "content_writing"]
]

/**
 * Goals written for calibration tests, phrased as people write them and not copied from any blueprint's
 * example goals: each labeled with the blueprint it is for, or "none" when no blueprint of the catalog
 * serves it (the router should then say so by scoring it low).
 */
export const heldOut: ReadonlyArray<readonly [goal: string, label: string]> = [
  ["Each week, look into what Notion, Coda and Airtable shipped and how their prices moved", "scheduled_research"],
  ["I want a monthly report on new players in the plant-based meat market", "scheduled_research"],
  ["Follow our three main competitors and send me a summary of their product updates every Tuesday", "scheduled_research"],
  ["Keep tabs on cloud GPU providers' pricing each week", "scheduled_research"],

  ["Go through the 40 open tickets in Freshdesk, mark which are urgent and write replies to the easy ones", "support_triage"],
  ["Customers keep emailing about refunds; sort the support inbox and escalate angry customers", "support_triage"],
  ["Prioritize today's incoming customer support requests and draft responses", "support_triage"],
  ["Route customer bug reports to engineering and answer the how-to questions in the help desk", "support_triage"],

  ["Every morning, summarize the newsletters in my inbox into one short email", "daily_digest"],
  ["Give me a daily roundup of crypto news from CoinDesk and The Block", "daily_digest"],
  ["Read my favorite blogs' feeds and send a digest each evening", "daily_digest"],
  ["Summarize the day's top posts from these subreddits at 6pm", "daily_digest"],

  ["Can you review my pull request and check for memory leaks?", "code_review"],
  ["Go through the diff on branch feature/payments and flag anything insecure", "code_review"],
  ["Look for bugs in the merge request before I ship it", "code_review"],
  ["Audit this Python change for XSS and bad error handling", "code_review"],

  ["Our checkout service was down for two hours last night; write up the postmortem", "incident_postmortem"],
  ["Create a root cause analysis from the PagerDuty alerts and the on-call chat log", "incident_postmortem"],
  ["Document the outage on March 3rd with impact, timeline and lessons learned", "incident_postmortem"],
  ["Write a blameless incident report for the DNS failure", "incident_postmortem"],

  ["Pull due dates and amounts from 200 vendor invoices into a CSV", "document_extraction"],
  ["From each lease agreement, extract the tenant, rent and termination clause", "document_extraction"],
  ["Read these insurance claim forms and capture the policy number and claim amount", "document_extraction"],
  ["Get names, addresses and phone numbers out of the scanned application forms", "document_extraction"],

  ["Write an 800-word blog article explaining our new feature to small businesses", "content_writing"],
  ["Write copy for the landing page of our mobile app", "content_writing"],
  ["Create a Twitter thread about lessons from our startup's first year", "content_writing"],
  ["Draft a friendly post for our company blog about the summer sale", "content_writing"],

  ["Dig into last year's orders spreadsheet and find which products drive revenue", "data_analysis"],
  ["Analyze the A/B test results and tell me whether variant B really won", "data_analysis"],
  ["Explore the customer churn dataset and chart the trends by plan", "data_analysis"],
  ["Run statistics on the sensor readings CSV and explain the anomalies", "data_analysis"],

  ["Here's the transcript of our sprint planning; write up notes and action items", "meeting_notes"],
  ["Summarize yesterday's all-hands recording with the decisions and their owners", "meeting_notes"],
  ["Produce minutes from the transcript of the budget committee meeting", "meeting_notes"],
  ["List the action items and who is responsible from this Teams meeting transcript", "meeting_notes"],

  ["Translate the onboarding emails into Japanese and Korean", "translation"],
  ["Convert our FAQ page from English into Brazilian Portuguese", "translation"],
  ["I need the terms of service translated into French, German and Italian", "translation"],
  ["Localize the mobile app's interface text for the Spanish market", "translation"],

  ["Write up what's new in version 4.1 from the merged pull requests", "release_notes"],
  ["Generate a changelog for the 3.0 release from our git history", "release_notes"],
  ["Summarize the commits since the last tag into release notes for customers", "release_notes"],
  ["Draft the announcement of the new version listing fixes and breaking changes", "release_notes"],

  ["Find the CTOs of 30 logistics companies in Texas for our sales team", "lead_research"],
  ["Enrich this spreadsheet of accounts with revenue, headcount and LinkedIn profiles", "lead_research"],
  ["Build a list of healthcare startups that raised a Series B this year", "lead_research"],
  ["Research potential customers in the retail sector and score how well they fit", "lead_research"],

  // Weekly, and about a support inbox: three blueprints fit it in part (values in it: a day and a time).
  ["every Monday at 8am summarize our support inbox", "daily_digest"],
  ...withValues,

  ["Bake sourdough bread", "none"],
  ["Plan a two-week trip to Japan in April", "none"],
  ["Fix the leaking kitchen faucet", "none"],
  ["Teach my dog to sit and stay", "none"],
  ["Book a table for four at an Italian restaurant tonight", "none"],
  ["Compose a piano sonata in C minor", "none"],
  ["Train for a marathon in 16 weeks", "none"],
  ["Repaint the bedroom walls light blue", "none"],
  ["Choose a birthday gift for my grandmother", "none"],
  ["Water the tomato plants while I'm on vacation", "none"],
  ["Knit a wool scarf for winter", "none"],
  ["Find the best pizza dough recipe", "none"],
  ["bake a sourdough loaf", "none"],
  ["Bake 2 sourdough loaves at 6am using the recipe at https://example.com/bread", "none"]
]

/**
 * Goals too terse or too vague to say which blueprint they are for: a word or two that several
 * blueprints use, or none. However well one blueprint happens to match them, they must not be routed
 * without asking (score under 0.85).
 */
export const vague: ReadonlyArray<string> = [
  "do some analysis",
  "research",
  "customers",
  "notes",
  "help me with our customers",
  "write something about our product",
  "help",
  "report",
  "analyze this",
  "make it better",
  "weekly stuff"
]

/** Short goals that still say plainly what they are for: these must still be routed by themselves. */
export const clear: ReadonlyArray<readonly [goal: string, label: string]> = [
  ["run daily competitive research on 3 vendors", "scheduled_research"],
  ["translate our docs into German and French", "translation"]
]
