import { afterEach, describe, it } from "vitest"
import * as FakeOpenAi from "../finetune/FakeOpenAi.js"
import { cleanup, freePort, sandbox } from "./harness.js"

afterEach(cleanup)

const sample = JSON.stringify({ messages: [{ role: "user", content: "Triage: printer on fire" }, { role: "assistant", content: "escalate" }] })

describe.concurrent("autopilot finetune", () => {
  it("starts a job once per dataset content, polls it to its end, lists, shows and refuses to start it twice", async (context) => {
    const { expect } = context
    const fake = await FakeOpenAi.start()
    try {
      const sb = sandbox(context)
      const env = { AUTOPILOT_FINETUNE_BASE_URL: fake.url, AUTOPILOT_FINETUNE_API_KEY: "sk-fake", AUTOPILOT_FINETUNE_THRESHOLD: "2", AUTOPILOT_FINETUNE_POLL_SECONDS: "0.05" }
      const file = sb.writeFile("triage.jsonl", `${sample}\n`)
      const below = await sb.run(["finetune", "start", "--dataset", "triage", "--file", file], { env })
      expect([below.code, below.stdout, below.stderr]).toEqual([0, ["1 samples, below the threshold of 2: nothing started"], []])
      expect(fake.requests).toEqual([])

      sb.writeFile("triage.jsonl", `${sample}\n${sample}\n`)
      const started = await sb.run(["finetune", "start", "--dataset", "triage", "--file", file, "--format", "json"], { env })
      expect(started.code).toBe(0)
      const job = JSON.parse(started.stdout.join("\n")).job
      expect(JSON.parse(started.stdout.join("\n")).started).toBe(true)
      expect(job).toMatchObject({ dataset_id: "triage", samples: 2, provider: "openai", provider_job_id: "ftjob-1", status: "validating_files" })
      const again = await sb.run(["finetune", "start", "--dataset", "triage", "--file", file], { env })
      expect(again.stdout).toEqual([`${job.id} exists for this content of triage (validating_files): nothing started`])

      const polled = await sb.run(["finetune", "poll"], { env })
      expect(polled.code).toBe(0)
      expect(polled.stdout[1]).toMatch(new RegExp(`^${job.id} +triage +2 +openai +succeeded +ft:gpt-4o-mini-2024-07-18:acme:triage:abc123 `))

      const listed = await sb.run(["finetune", "list", "--format", "json"])
      expect(JSON.parse(listed.stdout.join("\n")).map((j: { status: string }) => j.status)).toEqual(["succeeded"])
      const shown = await sb.run(["finetune", "show", job.id, "--format", "json"])
      const events = JSON.parse(shown.stdout.join("\n")).events as Array<{ kind: string }>
      expect(events.map((e) => e.kind).filter((k) => k !== "finetune_message")).toEqual(["finetune_started", "finetune_status", "finetune_status", "finetune_succeeded"])
      const text = await sb.run(["finetune", "show", job.id])
      expect(text.stdout[0]).toBe(`${job.id}  succeeded`)
      expect(text.stdout).toContain(`model       ft:gpt-4o-mini-2024-07-18:acme:triage:abc123 at ${fake.url}`)
      const cancelEnded = await sb.run(["finetune", "cancel", job.id], { env })
      expect([cancelEnded.code, cancelEnded.stderr]).toEqual([2, [`autopilot: fine-tune job ${job.id} has ended already (succeeded)`]])
    } finally {
      await fake.close()
    }
  })

  it("a daemon with AUTOPILOT_FINETUNE_DATASETS closes the loop: a run's accepted answer is captured, the dataset at its threshold starts one job, and a poller after the daemon finishes it", async (context) => {
    const { expect } = context
    const fake = await FakeOpenAi.start()
    try {
      const sb = sandbox(context)
      const env = {
        AUTOPILOT_FINETUNE_DATASETS: "all",
        AUTOPILOT_FINETUNE_BASE_URL: fake.url,
        AUTOPILOT_FINETUNE_API_KEY: "sk-fake",
        AUTOPILOT_FINETUNE_THRESHOLD: "1",
        AUTOPILOT_FINETUNE_POLL_SECONDS: "0.2"
      }
      const script = sb.writeFile("script.json", { turns: [{ content: "Done: the answer.", criteria_met: [true] }] })
      const added = await sb.run(["queue", "add", "answer the question", "--run-id", "q1", "--mock-script", script], { env })
      expect(added.code, added.stderr.join("\n")).toBe(0)
      const daemon = sb.start(["daemon", "--poll-seconds", "0.2"], { env })
      expect(await daemon.line((l) => l.includes(" training on all at 1 samples"))).toBeTruthy()
      await daemon.line((l) => l.includes(" ended queued q1: completed"), 60_000)
      const started = await daemon.line((l) => / fine-tune \S+ started on all \(1 samples\)$/.test(l), 60_000)
      daemon.signal("SIGTERM")
      expect((await daemon.waitForExit(30_000)).code).toBe(0)
      // The job outlives the daemon: any poller picks it up where it was.
      const polled = await sb.run(["finetune", "poll"], { env })
      expect(polled.code, polled.stderr.join("\n")).toBe(0)
      const jobs = JSON.parse((await sb.run(["finetune", "list", "--format", "json"])).stdout.join("\n"))
      expect(jobs).toMatchObject([{ id: started.split(" ")[2], dataset_id: "all", samples: 1, status: "succeeded" }])
      // What was uploaded is the run's accepted answer, as a fine-tuning line.
      expect(fake.uploads.map((u) => u.purpose)).toEqual(["fine-tune"])
      const line = JSON.parse(fake.uploads[0]!.content.trim())
      expect(line.messages.at(-1)).toEqual({ role: "assistant", content: "Done: the answer." })
      expect(line.messages[1].content).toContain("Objective: answer the question")
    } finally {
      await fake.close()
    }
  })

  it("refuses bad input with one line and exit 2, writing nothing", async (context) => {
    const { expect } = context
    const sb = sandbox(context)
    const file = sb.writeFile("d.jsonl", `${sample}\n`)
    const env = { AUTOPILOT_FINETUNE_BASE_URL: "http://127.0.0.1:1/v1", AUTOPILOT_FINETUNE_API_KEY: "sk-fake" }
    const bad = sb.writeFile("bad.jsonl", `${sample}\n{"messages": "nope"}\n`)
    const port = await freePort()
    const cases: ReadonlyArray<[ReadonlyArray<string>, Record<string, string>, string]> = [
      [["finetune", "show", "ft-nope"], {}, `autopilot: no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`],
      [["finetune", "cancel", "ft-nope"], {}, `autopilot: no fine-tune job "ft-nope" in this database (see \`autopilot finetune list\`)`],
      ...["0", "-3", "many"].map((value): [ReadonlyArray<string>, Record<string, string>, string] => [
        ["finetune", "start", "--dataset", "d", "--file", file],
        { ...env, AUTOPILOT_FINETUNE_THRESHOLD: value },
        `autopilot: AUTOPILOT_FINETUNE_THRESHOLD must be a whole number of samples from 1 to 1000000000, got "${value}"`
      ]),
      [["finetune", "start", "--dataset", "d", "--file", file, "--threshold", "0"], env, `autopilot: --threshold must be a whole number of samples from 1 to 1000000000, got "0"`],
      [["finetune", "start", "--dataset", "d", "--file", bad], env, `autopilot: dataset ${bad} line 2 is not a chat fine-tuning sample: each line must be {"messages": [{"role": "system"|"user"|"assistant"|"tool", …}, …]}`],
      [["finetune", "start", "--dataset", "d", "--file", file], {}, "autopilot: AUTOPILOT_FINETUNE_BASE_URL must be set to the fine-tune endpoint, e.g. https://api.openai.com/v1 (and AUTOPILOT_FINETUNE_API_KEY to its key)"],
      [["finetune", "start", "--dataset", "d", "--file", file], { ...env, AUTOPILOT_FINETUNE_PROVIDER: "lora" }, `autopilot: AUTOPILOT_FINETUNE_PROVIDER must be one of openai, command, got "lora"`],
      // A daemon asked to train checks what it needs before it starts.
      [["daemon", "--once"], { ...env, AUTOPILOT_FINETUNE_DATASETS: "all,Not An Id" }, `autopilot: AUTOPILOT_FINETUNE_DATASETS takes dataset ids separated by commas (a-z 0-9 . _ -, like all,blueprint.support_triage); got "Not An Id"`],
      [["daemon", "--once"], { ...env, AUTOPILOT_FINETUNE_DATASETS: "all", AUTOPILOT_FINETUNE_THRESHOLD: "0" }, `autopilot: AUTOPILOT_FINETUNE_THRESHOLD must be a whole number of samples from 1 to 1000000000, got "0"`]
    ]
    for (const [args, caseEnv, line] of cases) {
      const result = await sb.run(args, { env: caseEnv })
      expect([args, result.code, result.stdout, result.stderr]).toEqual([args, 2, [], [line]])
    }
    expect(sb.files()).toEqual(["bad.jsonl", "d.jsonl"])

    // An unreachable endpoint: one line naming it, exit 2, and no job left behind.
    const down = await sb.run(["finetune", "start", "--dataset", "d", "--file", file, "--threshold", "1"], {
      env: { AUTOPILOT_FINETUNE_BASE_URL: `http://127.0.0.1:${port}/v1`, AUTOPILOT_FINETUNE_API_KEY: "sk-fake" }
    })
    expect(down.code).toBe(2)
    expect(down.stderr).toHaveLength(1)
    expect(down.stderr[0]).toMatch(new RegExp(`^autopilot: fine-tune endpoint http://127\\.0\\.0\\.1:${port}/v1 \\(uploading the training file\\): unreachable: `))
    const listed = await sb.run(["finetune", "list", "--format", "json"])
    expect(JSON.parse(listed.stdout.join("\n"))).toEqual([])
  })
})
