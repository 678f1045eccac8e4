import * as http from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A fake OpenAI files and fine-tuning API on 127.0.0.1: each retrieve of a job moves it one status on
 * (validating_files → queued → running → succeeded); a base model named `fail-*` ends failed instead.
 */
export interface FakeJob {
  id: string
  model: string
  training_file: string
  suffix: string | null
  step: number
  cancelled: boolean
}

/** How the fake misbehaves, changed by a test while it runs. */
export interface Behaviour {
  /** The upload's answer comes this late. */
  uploadDelayMs?: number | undefined
  /** The job is created at once, and its answer comes this late. */
  createDelayMs?: number | undefined
  /** jobs.create answers this error status; the job is made first when `created` (an answer lost after the work was done). */
  createFails?: { readonly status: number; readonly created: boolean } | undefined
  /** Reading a job answers this error status. */
  retrieveFails?: number | undefined
}

export interface FakeOpenAi {
  readonly url: string
  readonly behave: Behaviour
  readonly jobs: Map<string, FakeJob>
  /** The uploads, as they arrived: purpose and the file's content. */
  readonly uploads: Array<{ readonly purpose: string; readonly content: string }>
  readonly requests: Array<string>
  readonly close: () => Promise<void>
}

const path = ["validating_files", "queued", "running"] as const

const jobJson = (job: FakeJob) => {
  const failing = job.model.startsWith("fail-")
  const status = job.cancelled ? "cancelled" : job.step < path.length ? path[job.step]! : failing ? "failed" : "succeeded"
  return {
    object: "fine_tuning.job",
    id: job.id,
    model: job.model,
    created_at: 1_700_000_000,
    finished_at: null,
    fine_tuned_model: status === "succeeded" ? `ft:${job.model}:acme:${job.suffix ?? "x"}:abc123` : null,
    organization_id: "org-fake",
    result_files: [],
    status,
    training_file: job.training_file,
    validation_file: null,
    hyperparameters: { n_epochs: "auto" },
    trained_tokens: null,
    seed: 1,
    error: status === "failed" ? { code: "invalid_training_file", message: "The training file has too few examples", param: "training_file" } : null
  }
}

export const start = (): Promise<FakeOpenAi> =>
  new Promise((resolve) => {
    const jobs = new Map<string, FakeJob>()
    const uploads: Array<{ purpose: string; content: string }> = []
    const requests: Array<string> = []
    const behave: Behaviour = {}
    let files = 0
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        const url = req.url ?? ""
        requests.push(`${req.method} ${url.replace(/\?.*$/, "")}`)
        const now = (status: number, value: unknown) => {
          if (res.destroyed) return
          res.writeHead(status, { "content-type": "application/json" })
          res.end(JSON.stringify(value))
        }
        const send = (status: number, value: unknown, delayMs = 0) => (delayMs > 0 ? void setTimeout(() => now(status, value), delayMs) : now(status, value))
        const failure = (status: number) => ({ error: { message: `the fake says ${status}`, type: status >= 500 ? "server_error" : "invalid_request_error", code: null } })
        if (req.headers.authorization !== "Bearer sk-fake") return send(401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } })
        if (req.method === "POST" && url === "/v1/files") {
          const purpose = /name="purpose"\r\n\r\n([^\r]*)/.exec(body)?.[1] ?? ""
          const content = /filename="[^"]*"\r\nContent-Type: [^\r]*\r\n\r\n([\s\S]*?)\r\n--/.exec(body)?.[1] ?? ""
          uploads.push({ purpose, content })
          files++
          return send(200, { object: "file", id: `file-${files}`, bytes: content.length, created_at: 1_700_000_000, filename: "train.jsonl", purpose, status: "processed" }, behave.uploadDelayMs)
        }
        if (req.method === "POST" && url === "/v1/fine_tuning/jobs") {
          const asked = JSON.parse(body) as { model: string; training_file: string; suffix?: string }
          const job: FakeJob = { id: `ftjob-${jobs.size + 1}`, model: asked.model, training_file: asked.training_file, suffix: asked.suffix ?? null, step: 0, cancelled: false }
          if (behave.createFails !== undefined) {
            if (behave.createFails.created) jobs.set(job.id, job)
            return send(behave.createFails.status, failure(behave.createFails.status))
          }
          jobs.set(job.id, job)
          return send(200, jobJson(job), behave.createDelayMs)
        }
        const match = /^\/v1\/fine_tuning\/jobs\/([^/?]+)(\/events|\/cancel)?/.exec(url)
        const job = match === null ? undefined : jobs.get(match[1]!)
        if (job === undefined) return send(404, { error: { message: `No such job: ${match?.[1] ?? url}`, type: "invalid_request_error", code: null } })
        if (req.method === "GET" && match![2] === undefined) {
          if (behave.retrieveFails !== undefined) return send(behave.retrieveFails, failure(behave.retrieveFails))
          if (!job.cancelled && job.step <= path.length) job.step++
          return send(200, jobJson(job))
        }
        if (req.method === "GET" && match![2] === "/events") {
          const reached = Math.min(job.step, path.length)
          const data = path.slice(0, reached).map((status, i) => ({ object: "fine_tuning.job.event", id: `ftevent-${job.id}-${i}`, created_at: 1_700_000_000 + i, level: "info", message: `Job is ${status}`, type: "message" }))
          return send(200, { object: "list", data: data.reverse(), has_more: false })
        }
        if (req.method === "POST" && match![2] === "/cancel") {
          job.cancelled = true
          return send(200, jobJson(job))
        }
        send(405, { error: { message: "not here", type: "invalid_request_error", code: null } })
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        behave,
        jobs,
        uploads,
        requests,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()) })
      })
    })
  })
