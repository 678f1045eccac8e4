import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { Effect, Layer } from "effect"
import * as CuratorStore from "../../src/store/CuratorStore.js"
import * as Database from "../../src/store/Database.js"
import * as FineTuneStore from "../../src/store/FineTuneStore.js"
import * as PromotionStore from "../../src/store/PromotionStore.js"
import { cleanup, freePort, type Sandbox, sandbox } from "../cli/harness.js"
import { ids, promotedScope, seedFineTunes, tunedModel } from "./finetuneFixtures.js"

/**
 * The operator page in a real browser: Debian's chromium driven by playwright-core (never a downloaded
 * browser), against `autopilot serve` and `autopilot daemon` as real processes on one SQLite file. Where
 * chromium is not installed these tests are skipped, loudly; `.ci/run` installs it and sets
 * AUTOPILOT_TEST_BROWSER=required, so that there a missing browser fails instead.
 */

const executablePath = "/usr/bin/chromium"
const installed = fs.existsSync(executablePath)
const required = process.env["AUTOPILOT_TEST_BROWSER"] === "required"
const missing = `the operator page's browser tests need Debian's chromium at ${executablePath}: apt-get install chromium`

/** Screenshots are kept as test output (gitignored), one folder per run of the suite. */
const shots = fileURLToPath(new URL("../../test-output/page/", import.meta.url))

const token = "operator-page-admin-token-0123456789"

/** Every wait of a step is bounded; a loaded machine is slow, not failing. */
const bound = 60_000

afterEach(cleanup)

/**
 * `code_review`'s first node is done soon, so the budget moves early; the next two answer slowly and never
 * meet their criterion, so the mission runs for longer than the test needs until it is stopped.
 */
const slowReview = (sb: Sandbox) =>
  sb.writeFile("script.json", {
    latency_ms: 1200,
    nodes: {
      understand: [{ criteria_met: [true], latency_ms: 300 }],
      correctness: [{ criteria_met: [false] }],
      security: [{ criteria_met: [false] }],
      verdict: [{ criteria_met: [true] }]
    }
  })

/** `autopilot serve` on a free port, and beside it (unless told not to) a daemon that works what is approved. */
const start = async (sb: Sandbox, options: { readonly daemon?: boolean; readonly env?: Record<string, string> } = {}) => {
  const port = await freePort()
  const serve = sb.start(["serve", "--host", "127.0.0.1", "--port", String(port)], { env: { AUTOPILOT_API_TOKEN: token, ...options.env } })
  if (options.daemon !== false) {
    const daemon = sb.start(["daemon", "--mock-script", slowReview(sb), "--poll-seconds", "0.2"])
    await daemon.line((l) => l.includes(" up, working "))
  }
  await serve.line((l) => l.startsWith("autopilot serving "))
  return { base: `http://127.0.0.1:${port}` }
}

const signIn = async (page: Page, base: string, as = token) => {
  await page.goto(`${base}/`)
  await page.getByLabel("API token").fill(as)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.locator("#overview").waitFor()
}

/**
 * One chromium for the file, started by the first test that browses: a browser start costs more than most
 * checks here. Each test gets a context of its own (cookies, storage and downloads apart), closed after it.
 */
let launched: Promise<Browser> | undefined
afterAll(async () => {
  if (launched !== undefined) await (await launched).close()
})

const browse = async (): Promise<{ context: BrowserContext; page: Page; close: () => Promise<void> }> => {
  // A profile of its own in a temporary folder, which playwright removes when the browser closes.
  launched ??= chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: bound
  })
  const browser = await launched
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  page.setDefaultTimeout(bound)
  const problems: Array<string> = []
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  // A Content-Security-Policy refusal is reported on the console: the page must never trip one.
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/.test(message.text())) problems.push(message.text())
  })
  return {
    context,
    page,
    close: async () => {
      await context.close()
      expect(problems).toEqual([])
    }
  }
}

const api = async (base: string, method: string, route: string) => {
  const response = await fetch(`${base}/api/v1/autopilot${route}`, { method, headers: { authorization: `Bearer ${token}` } })
  return (await response.json()) as Record<string, any>
}

const used = (page: Page, axis: string) => page.locator(`#bar-${axis}`).getAttribute("data-used").then(Number)

const shoot = (page: Page, name: string) => {
  fs.mkdirSync(shots, { recursive: true })
  return page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true })
}

/** What the checks read of an element inside the page (this suite compiles without the DOM's types). */
interface PageElement {
  readonly textContent: string | null
  getAttribute(name: string): string | null
  querySelectorAll(selector: string): ArrayLike<PageElement>
}

const suite = installed ? describe : describe.skip

if (!installed) {
  if (required) {
    describe("the operator page in a browser", () => {
      it("has chromium to run in", () => {
        throw new Error(`AUTOPILOT_TEST_BROWSER=required, and ${missing}`)
      })
    })
  } else {
    console.warn(`\n!!! SKIPPED: ${missing} !!!\n`)
  }
}

suite("the operator page in a browser", () => {
  it("signs in by keyboard alone, refusing a wrong token; a reload keeps the session and signing out ends it", async (context) => {
    const sb = sandbox(context)
    const { base } = await start(sb, { daemon: false })
    const { context: browser, page, close } = await browse()
    try {
      await page.goto(`${base}/`)
      // The page puts the keyboard in the token field; nothing below touches the mouse.
      await page.locator("#token:focus").waitFor() // a locator, not a string predicate: the page's CSP forbids eval, and Playwright evals a string it has to poll
      await page.keyboard.type("not-the-token-at-all")
      await page.keyboard.press("Enter")
      await expect.poll(() => page.locator("#sign-in-error").textContent(), { timeout: bound }).toMatch(/^Not signed in: /)
      await page.keyboard.press("Tab")
      expect(await page.evaluate("document.activeElement?.textContent")).toBe("Sign in")
      // What has the keyboard shows it.
      expect(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")).not.toBe("none")
      await page.keyboard.press("Shift+Tab")
      await page.keyboard.press("Control+A")
      await page.keyboard.type(token)
      await page.keyboard.press("Enter")
      await page.locator("#who").filter({ hasText: "Admin · project default" }).waitFor()
      await page.locator("#overview").waitFor()
      expect(await page.locator("#sign-in").isHidden()).toBe(true)
      await shoot(page, "keyboard-sign-in")

      // The cookie is HttpOnly: the page never sees the token, and a reload is still signed in.
      expect(await page.evaluate("document.cookie")).toBe("")
      await page.reload()
      await page.locator("#who").filter({ hasText: "Admin" }).waitFor()

      // The cookie holds a session's id, not the token; signing out ends the session on the server too.
      const [cookie] = (await browser.cookies()).filter((c) => c.name === "autopilot_auth")
      expect(cookie?.value).toMatch(/^aps_/)
      expect(cookie?.httpOnly).toBe(true)
      const withCookie = () => fetch(`${base}/api/v1/autopilot/missions`, { headers: { cookie: `autopilot_auth=${cookie!.value}` } }).then((r) => r.status)
      expect(await withCookie()).toBe(200)
      await page.getByRole("button", { name: "Sign out" }).click()
      await page.locator("#sign-in-error").filter({ hasText: "Signed out." }).waitFor()
      const after = await page.evaluate("fetch('/api/v1/autopilot/missions').then((r) => r.status)")
      expect(after).toBe(401)
      expect(await withCookie()).toBe(401)
    } finally {
      await close()
    }
  })

  it("routes a goal, fills the missing slot and approves; the run's bars move live with an ETA; stop halts it, cancel ends the mission", async (context) => {
    const sb = sandbox(context)
    const { base } = await start(sb)
    const { page, close } = await browse()
    try {
      await signIn(page, base)

      // A goal no blueprint fits: the page offers synthesis, which makes a draft; cancelling the draft ends it.
      await page.getByLabel("What should autopilot do?").fill("plan our team offsite in Lisbon")
      await page.getByRole("button", { name: "Route the goal" }).click()
      await page.locator("#goal-result[data-kind=synthesis_needed]").waitFor()
      await page.getByRole("button", { name: "Write a new blueprint for this goal" }).click()
      await page.locator("#goal-result[data-kind=auto_routed]").waitFor()
      const offsite = (await page.locator("#goal-result h3").textContent())!.match(/ms-[0-9a-f]{12}/)![0]
      await page.getByRole("button", { name: "Cancel the draft" }).click()
      await page.locator("#goal-result h3").filter({ hasText: `Mission ${offsite} is cancelled` }).waitFor()
      expect((await api(base, "GET", `/missions/${offsite}`)).status).toBe("cancelled")

      // A goal that routes at once, to a blueprint with a required slot the goal does not give.
      await page.getByLabel("What should autopilot do?").fill("review this pull request for security bugs")
      await page.getByRole("button", { name: "Route the goal" }).click()
      await page.locator("#goal-result[data-kind=auto_routed]").waitFor()
      const heading = await page.locator("#goal-result h3").textContent()
      expect(heading).toMatch(/^Draft mission ms-[0-9a-f]{12} from code_review \(score 0\.\d\d\)$/)
      const id = heading!.match(/ms-[0-9a-f]{12}/)![0]
      await page.getByRole("button", { name: "Approve" }).click()
      await page.locator("#notice").filter({ hasText: "Give change a value before approving." }).waitFor()
      expect((await api(base, "GET", `/missions/${id}`)).status).toBe("draft")
      await page.getByLabel("change (missing)").fill("changes.patch")
      await shoot(page, "draft-with-missing-slot")
      await page.getByRole("button", { name: "Approve" }).click()
      await page.locator("#goal-result h3").filter({ hasText: `Mission ${id} is scheduled` }).waitFor()
      expect((await api(base, "GET", `/missions/${id}`)).slots.change).toBe("changes.patch")

      // The daemon starts it; the mission's page follows its run's events as they are written.
      await page.getByRole("link", { name: `Watch mission ${id} →` }).click()
      await page.locator("#stream-state").filter({ hasText: /^live$/ }).waitFor()
      await page.locator("#graph svg g[data-node=correctness][data-state=running]").waitFor()
      const tokens = await used(page, "tokens")
      const iterations = await used(page, "iterations")
      await expect.poll(() => used(page, "iterations"), { timeout: bound }).toBeGreaterThan(iterations)
      expect(await used(page, "tokens")).toBeGreaterThan(tokens)
      // Read at once: the page is live, and a step may land between two reads.
      const [shown, counted] = await page.locator("#bar-iterations").evaluate((bar) => [bar.getAttribute("value"), bar.getAttribute("data-used")])
      expect(Number(shown)).toBe(Number(counted))
      expect(await page.locator("#bar-iterations").getAttribute("max")).toBe("30")
      expect(await page.locator("#eta-iterations").textContent()).toMatch(/^At this rate, spent in about \d/)
      expect(await page.locator("#eta-tool_calls").textContent()).toBe("Not used yet: no ETA.")
      await page.locator("#graph svg g[data-node=understand][data-state=succeeded]").waitFor()
      await expect.poll(() => page.locator("#steps tbody tr").count(), { timeout: bound }).toBeGreaterThan(1)
      await expect.poll(() => page.locator("#answer").textContent(), { timeout: bound }).toMatch(/\S/)
      expect(await page.locator("#criteria li").count()).toBe(4)
      await shoot(page, "mission-running")

      await page.getByRole("button", { name: "Stop" }).click()
      await page.locator("#stream-state").filter({ hasText: /^ended$/ }).waitFor()
      await expect.poll(() => page.locator("#detail-status").textContent(), { timeout: bound }).toMatch(
        /^Mission status: (halted|partial) · Run ms-[0-9a-f]{12}: (halted|partial) \(stopped from the operator page\)$/
      )
      expect(await page.getByRole("button", { name: "Stop" }).isHidden()).toBe(true)
      expect(["halted", "partial"]).toContain((await api(base, "GET", `/missions/${id}`)).status)
      expect(await page.locator("#eta-iterations").textContent()).toBe("")
      await shoot(page, "mission-stopped")

      await page.getByRole("button", { name: "Cancel mission" }).click()
      await page.locator("#detail-status").filter({ hasText: /^Mission status: cancelled · / }).waitFor()
      expect((await api(base, "GET", `/missions/${id}`)).status).toBe("cancelled")

      // The lists and the charts: one point for the mission (its node runs are part of it), its model's spend.
      await page.getByRole("link", { name: "← All missions and runs" }).click()
      const row = page.locator(`#missions tr[data-mission=${id}]`)
      // The lists drawn before are shown until they are loaded again.
      await expect.poll(() => row.locator(".status").textContent(), { timeout: bound }).toBe("cancelled")
      expect(await row.locator("td.num").textContent()).toMatch(/^\$0\.\d+$/)
      expect(await page.locator(`#runs tr[data-run=${id}] .status`).textContent()).toMatch(/^(halted|partial)$/)
      await page.locator("#cost-chart svg circle").first().waitFor()
      expect(await page.locator("#cost-chart svg circle").evaluateAll((points) => points.map((p) => p.getAttribute("data-run")))).toEqual([id])
      expect(await page.locator("#model-chart svg rect[data-model=gpt-4o-mini]").count()).toBe(1)
      await shoot(page, "overview")
    } finally {
      await close()
    }
  })

  it("offers a picker when no blueprint is sure, and Pick makes the draft from the candidate picked", async (context) => {
    const sb = sandbox(context)
    const { base } = await start(sb, { daemon: false, env: { AUTOPILOT_AUTO_ROUTE_THRESHOLD: "1", AUTOPILOT_PICKER_THRESHOLD: "0.01" } })
    const { page, close } = await browse()
    try {
      await signIn(page, base)
      await page.getByLabel("What should autopilot do?").fill("summarize the incident and what the meeting decided")
      await page.getByRole("button", { name: "Route the goal" }).click()
      await page.locator("#goal-result[data-kind=picker_needed]").waitFor()
      const offered = page.locator("#goal-result .candidates li")
      expect(await offered.count()).toBeGreaterThanOrEqual(2)
      const second = (await offered.nth(1).locator("span").textContent())!.match(/\(([a-z_]+), score/)![1]
      const writeOne = page.getByRole("button", { name: "Write a new blueprint for this goal" })
      expect(await writeOne.count()).toBe(1)
      await shoot(page, "picker")
      await offered.nth(1).getByRole("button").click()
      await page.locator("#goal-result[data-kind=auto_routed]").waitFor()
      expect(await page.locator("#goal-result h3").textContent()).toMatch(new RegExp(`^Draft mission ms-[0-9a-f]{12} from ${second} `))
      const missions = await api(base, "GET", "/missions")
      expect((missions as unknown as Array<Record<string, any>>).map((m) => [m.blueprint_id, m.status])).toEqual([[second, "draft"]])
      // A project token is offered the candidates, not a blueprint written into the instance's catalog.
      const minted = await sb.run(["token", "create", "--project", "acme"])
      await page.getByRole("button", { name: "Sign out" }).click()
      await signIn(page, base, minted.stdout[0]!)
      await page.getByLabel("What should autopilot do?").fill("summarize the incident and what the meeting decided")
      await page.getByRole("button", { name: "Route the goal" }).click()
      await page.locator("#goal-result[data-kind=picker_needed]").waitFor()
      expect(await writeOne.count()).toBe(0)
      expect(await page.locator("#synthesis-admin-only").textContent()).toMatch(/^Only the admin token may/)
    } finally {
      await close()
    }
  })

  it("shows a queued run to its end: each step's calls and cost, the criteria met, the answer, an artifact to download", async (context) => {
    const sb = sandbox(context)
    const { base } = await start(sb)
    const queued = await fetch(`${base}/api/v1/autopilot/queue`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ objective: "write three helpers", criteria: ["first", "second", "third"], run_id: "helpers" })
    })
    expect(queued.status).toBe(201)
    const { page, close } = await browse()
    try {
      await signIn(page, base)
      await page.goto(`${base}/#/runs/helpers`)
      // Queued, then worked by the daemon: the page shows it once it exists, to its end.
      await expect.poll(async () => {
        if ((await page.locator("#stream-state").textContent()) === "ended") return "ended"
        await page.reload()
        await page.locator("#detail-title").waitFor()
        return "waiting"
      }, { timeout: bound, interval: 500 }).toBe("ended")
      await page.locator("#detail-status").filter({ hasText: "Run helpers: completed" }).waitFor()
      const shown = await api(base, "GET", "/runs/helpers")
      expect(await page.locator("#steps tbody tr[data-iteration]").count()).toBe(shown.iterations)
      expect(await page.locator("#criteria li.met").count()).toBe(3)
      expect(await page.locator("#answer").textContent()).toBe(shown.output)
      // Every event in the list, the first (seq 0, run_started) too, newest first.
      const logged = await page.locator("#events li").evaluateAll((items) => items.map((li) => Number(li.getAttribute("value"))))
      expect(logged.at(-1)).toBe(0)
      expect(logged).toEqual([...logged].sort((a, b) => b - a))
      expect(await page.locator("#events li").last().textContent()).toMatch(/ run_started$/)
      // Drawn from what each event says is left of the cap: the cap less that is what the run spent.
      for (const axis of ["tokens", "dollars", "iterations"]) {
        expect(await used(page, axis)).toBeCloseTo(shown.usage[axis], 9)
      }
      const link = page.locator("#artifacts a").first()
      const name = (await link.textContent())!
      const [download] = await Promise.all([page.waitForEvent("download"), link.click()])
      const served = await fetch(`${base}/api/v1/autopilot/runs/helpers/artifact?name=${encodeURIComponent(name)}`, { headers: { authorization: `Bearer ${token}` } })
      expect(fs.readFileSync((await download.path())!, "utf8")).toBe(await served.text())
      await shoot(page, "run-completed")
    } finally {
      await close()
    }
  })

  it("shows a run's answer growing as the model writes it, busy for screen readers until the committed answer replaces it", async (context) => {
    const sb = sandbox(context)
    const { base } = await start(sb, { daemon: false })
    const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ")
    const mock = sb.writeFile("slow-answer.json", { turns: [{ content: words, delta_ms: 100, criteria_met: [true] }] })
    const { page, close } = await browse()
    try {
      await signIn(page, base)
      // `autopilot run` in its own process: the page sees its text only through the database.
      const run = sb.start(["run", "write sixty words", "--run-id", "streaming", "--mock-script", mock])
      await run.errorLine((l) => l.startsWith("database: "), bound)
      await page.goto(`${base}/#/runs/streaming`)
      await page.locator("#answer-source").filter({ hasText: "being written" }).waitFor()
      const answer = page.locator("#answer")
      const first = (await answer.textContent())!
      expect(words.startsWith(first) && first.length > 0 && first !== words).toBe(true)
      expect(await answer.getAttribute("aria-busy")).toBe("true")
      // It grows while the run goes on: more of the answer, not yet all of it.
      await expect.poll(async () => {
        const now = (await answer.textContent())!
        return words.startsWith(now) && now.length > first.length && now !== words
      }, { timeout: bound, interval: 100 }).toBe(true)
      await shoot(page, "answer-streaming")
      await page.locator("#stream-state").filter({ hasText: "ended" }).waitFor()
      expect(await answer.textContent()).toBe(words)
      expect(await answer.getAttribute("aria-busy")).toBeNull()
      expect((await run.waitForExit()).code).toBe(0)
    } finally {
      await close()
    }
  })

  it("shows the fine-tunes to the admin: each job's verdict, a job's report side by side and its cost per step before and after the promotion", async (context) => {
    const sb = sandbox(context)
    // The stores' rows as the daemon and the CLI leave them, written before the server opens the file.
    await Effect.runPromise(seedFineTunes.pipe(
      Effect.provide(Layer.mergeAll(FineTuneStore.layer, PromotionStore.layer, CuratorStore.layer).pipe(Layer.provide(Database.layerSqlite(sb.db))))
    ))
    const { base } = await start(sb, { daemon: false })
    const { page, close } = await browse()
    try {
      await signIn(page, base)
      await page.getByRole("link", { name: "Fine-tunes" }).click()
      await page.locator(`#ft-jobs tr[data-job=${ids.candidate}]`).waitFor()
      const rows = await page.locator("#ft-jobs tbody tr").evaluateAll((trs) =>
        trs.map((tr) => [tr.getAttribute("data-job"), ...Array.from(tr.querySelectorAll("td") as ArrayLike<PageElement>).slice(1, 6).map((td) => td.textContent)]))
      expect(rows).toEqual([
        [ids.running, "specialist.sorter", "running", "gpt-4o-mini-2024-07-18 (base)", "not evaluated", "none"],
        [ids.promoted, "triage-classify", "succeeded", tunedModel, "Promotable", `takes ${promotedScope}`],
        [ids.candidate, "blueprint.triage", "succeeded", "ft:gpt-4o-mini-2024-07-18:acme::triage", "Stays a candidate", "none"]
      ])
      await shoot(page, "finetunes")

      await page.getByRole("link", { name: ids.promoted }).click()
      await page.locator("#ft-report-table").waitFor()
      expect(await page.locator("#ft-title").textContent()).toBe(`Fine-tune ${ids.promoted} of triage-classify`)
      // Every figure read in one go from the table as drawn.
      const report = await page.locator("#ft-report").evaluate((box) => ({
        verdict: box.querySelector("#ft-verdict")?.getAttribute("data-verdict"),
        reason: box.querySelector("#ft-reason")?.textContent,
        tolerance: box.querySelector("#ft-tolerance")?.getAttribute("data-points"),
        figures: Array.from(box.querySelectorAll("tbody tr") as ArrayLike<PageElement>).map((tr) => [
          tr.getAttribute("data-figure"),
          ...Array.from(tr.querySelectorAll("td") as ArrayLike<PageElement>).map((td) => td.textContent)
        ])
      }))
      expect(report).toEqual({
        verdict: "promotable",
        reason: "pass rate 90% against 90% (tolerance 2 points), 83.2% cheaper a step ($0.00210 against $0.0125)",
        tolerance: "2",
        figures: [
          ["model", tunedModel, "gpt-4o"],
          ["pass_rate", "90.0% (18 of 20)", "90.0% (18 of 20)"],
          ["cost_per_step_usd", "$0.0021", "$0.0125"],
          ["latency_per_step_ms", "410 ms", "980 ms"],
          ["errors", "0", "0"]
        ]
      })
      // The curve: a path before the promotion and one after it, two promotions and the rollback between them marked.
      const curve = await page.locator("#ft-curve svg").evaluate((chart) => ({
        paths: Array.from(chart.querySelectorAll("path.curve") as ArrayLike<PageElement>).map((p) => [p.getAttribute("data-phase"), p.getAttribute("data-points"), /^M[\d.]+,[\d.]+ L[\d.]+,[\d.]+$/.test(p.getAttribute("d") ?? "")]),
        markers: Array.from(chart.querySelectorAll("line.marker") as ArrayLike<PageElement>).map((m) => [m.getAttribute("data-kind"), m.getAttribute("data-at")]),
        points: chart.querySelectorAll("circle.point").length
      }))
      expect(curve).toEqual({
        paths: [["before", "2", true], ["after", "2", true]],
        markers: [["promoted", "2025-03-10T12:00:00.000Z"], ["rolled_back", "2025-03-10T13:30:00.000Z"], ["promoted", "2025-03-10T14:00:00.000Z"]],
        points: 4
      })
      expect(await page.locator("#ft-curve-summary").textContent()).toBe(
        "Before the promotion: $0.012 a step over 4 steps. After: $0.002 a step over 4 steps (83.3% cheaper)."
      )
      expect(await page.locator("#ft-routes li").count()).toBe(2)
      await shoot(page, "finetune-report")

      // A project's token sees no link to them, and the page says why when asked for them anyway.
      const minted = await sb.run(["token", "create", "--project", "acme"])
      await page.getByRole("button", { name: "Sign out" }).click()
      await signIn(page, base, minted.stdout[0]!)
      expect(await page.locator("#nav-finetunes").isHidden()).toBe(true)
      await page.goto(`${base}/#/finetunes`)
      await page.locator("#ft-error").filter({ hasText: /^The fine-tunes could not be loaded: only the admin token/ }).waitFor()
    } finally {
      await close()
    }
  })
})
