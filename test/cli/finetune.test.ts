import * as fs from "node:fs"
import * as path from "node:path"
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
      // The dataset's own threshold (2) wins over the variable's (5).
      const definitions = sb.writeFile("datasets.json", [{ id: "triage", threshold: 2 }])
      const env = {
        AUTOPILOT_DATASETS: definitions,
        AUTOPILOT_FINETUNE_BASE_URL: fake.url,
        AUTOPILOT_FINETUNE_API_KEY: "sk-fake",
        AUTOPILOT_FINETUNE_THRESHOLD: "5",
        AUTOPILOT_FINETUNE_POLL_SECONDS: "0.05"
      }
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
      expect(job.endpoint).toBe(fake.url)
      // It trains on a copy named for its content: the user's file may change meanwhile.
      expect(job.file).toMatch(new RegExp(`^${sb.dir.replace(/[.]/g, "\\.")}/finetune/datasets/triage-[0-9a-f]{16}\\.jsonl$`))
      sb.writeFile("triage.jsonl", "rewritten\n")
      expect(fs.readFileSync(job.file, "utf8")).toBe(`${sample}\n${sample}\n`)

      // Another endpoint configured: the job is said to be elsewhere and not asked about.
      const elsewhere = await sb.run(["finetune", "poll"], { env: { ...env, AUTOPILOT_FINETUNE_BASE_URL: "http://127.0.0.1:1/v1" } })
      expect([elsewhere.code, elsewhere.stderr]).toEqual([0, [`autopilot: fine-tune job ${job.id} was started on openai at ${fake.url}, not on the configured openai at http://127.0.0.1:1/v1: not polled here`]])
      // A key the provider refuses: one line naming the endpoint, exit 2, no polling forever.
      const refused = await sb.run(["finetune", "poll"], { env: { ...env, AUTOPILOT_FINETUNE_API_KEY: "sk-revoked" } })
      expect([refused.code, refused.stdout, refused.stderr]).toEqual([2, [], [
        `autopilot: fine-tune job ${job.id}: fine-tune endpoint ${fake.url} (reading job ftjob-1): 401 Incorrect API key provided (polling stops: this refusal will not change by itself)`
      ]])

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
      // Reading a job, or the routes, makes none of promotion's tables in a database that never promoted.
      expect((await sb.run(["finetune", "routes"])).stdout).toEqual(["no active routes: every call goes to its provider's default model"])
      expect(sb.sql((db) => db.prepare("SELECT name FROM sqlite_master WHERE name IN ('model_routes', 'finetune_evaluations')").all())).toEqual([])
      const cancelEnded = await sb.run(["finetune", "cancel", job.id], { env })
      expect([cancelEnded.code, cancelEnded.stderr]).toEqual([2, [`autopilot: fine-tune job ${job.id} has ended already (succeeded)`]])
      // Its job ended, the snapshot is removed: exports and copies do not pile up.
      expect(fs.existsSync(job.file)).toBe(false)
      expect(fs.readdirSync(path.dirname(job.file))).toEqual([])
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
    const definitions = sb.writeFile("datasets.json", [{ id: "d" }])
    const badDefinitions = sb.writeFile("bad-datasets.json", [{ id: "d", threshold: 0 }])
    const env = { AUTOPILOT_FINETUNE_BASE_URL: "http://127.0.0.1:1/v1", AUTOPILOT_FINETUNE_API_KEY: "sk-fake", AUTOPILOT_DATASETS: definitions }
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
      [["finetune", "start", "--dataset", "nope", "--file", file], env, "autopilot: unknown dataset \"nope\": known datasets are all, d (see `autopilot curator datasets`)"],
      [
        ["finetune", "start", "--dataset", "d", "--file", file],
        { ...env, AUTOPILOT_DATASETS: badDefinitions },
        `autopilot: AUTOPILOT_DATASETS (${badDefinitions}) is not a JSON array of dataset definitions: 0.threshold: must be a whole number of samples from 1 to 1000000000 (fields: id, description, source run|node, blueprint, node, specialist, completed_only, min_critic_confidence 0-1, max_tokens, dedup, eval_fraction 0-0.5, threshold 1-1000000000, base_model)`
      ],
      [["finetune", "start", "--dataset", "d", "--file", file], { ...env, AUTOPILOT_FINETUNE_UPLOAD_SECONDS: "0" }, `autopilot: AUTOPILOT_FINETUNE_UPLOAD_SECONDS must be a whole number of seconds from 1 to 86400, got "0"`],
      [
        ["finetune", "start", "--dataset", "d", "--file", file],
        { ...env, AUTOPILOT_FINETUNE_PROVIDER: "command", AUTOPILOT_FINETUNE_COMMAND: "train", AUTOPILOT_FINETUNE_COMMAND_ENV: "HF TOKEN" },
        `autopilot: AUTOPILOT_FINETUNE_COMMAND_ENV takes environment variable names separated by commas (letters, digits, _, like HF_TOKEN,CUDA_VISIBLE_DEVICES); got "HF TOKEN"`
      ],
      // A daemon asked to train checks what it needs before it starts.
      [["daemon", "--once"], { ...env, AUTOPILOT_FINETUNE_DATASETS: "all,Not An Id" }, `autopilot: AUTOPILOT_FINETUNE_DATASETS takes dataset ids separated by commas (a-z 0-9 . _ -, like all,blueprint.support_triage); got "Not An Id"`],
      [["daemon", "--once"], { ...env, AUTOPILOT_FINETUNE_DATASETS: "all", AUTOPILOT_FINETUNE_THRESHOLD: "0" }, `autopilot: AUTOPILOT_FINETUNE_THRESHOLD must be a whole number of samples from 1 to 1000000000, got "0"`]
    ]
    for (const [args, caseEnv, line] of cases) {
      const result = await sb.run(args, { env: caseEnv })
      expect([args, result.code, result.stdout, result.stderr]).toEqual([args, 2, [], [line]])
    }
    expect(sb.files()).toEqual(["bad-datasets.json", "bad.jsonl", "d.jsonl", "datasets.json"])

    // An unreachable endpoint: one line naming it, exit 2, and no job left behind.
    const down = await sb.run(["finetune", "start", "--dataset", "d", "--file", file, "--threshold", "1"], {
      env: { AUTOPILOT_FINETUNE_BASE_URL: `http://127.0.0.1:${port}/v1`, AUTOPILOT_FINETUNE_API_KEY: "sk-fake", AUTOPILOT_DATASETS: definitions }
    })
    expect(down.code).toBe(2)
    expect(down.stderr).toHaveLength(1)
    expect(down.stderr[0]).toMatch(new RegExp(`^autopilot: fine-tune endpoint http://127\\.0\\.0\\.1:${port}/v1 \\(uploading the training file\\): unreachable: `))
    const listed = await sb.run(["finetune", "list", "--format", "json"])
    expect(JSON.parse(listed.stdout.join("\n"))).toEqual([])
    // Nothing was made at the provider, so its copy of the file went with the claim.
    expect(fs.readdirSync(path.join(sb.dir, "finetune", "datasets"))).toEqual([])
  })
})
