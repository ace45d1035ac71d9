/** Plain node:http requests of the bench: checks, the cold burst and the long streams. */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export interface Answer {
  status: number
  body: string
}

/** One request on a fresh connection; the answer's body as text. */
export async function request (url: string, options: { method?: string, headers?: Record<string, string>, timeoutMs?: number } = {}): Promise<Answer> {
  return await new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${options.timeoutMs ?? 10_000} ms`)))
    req.on('error', reject)
    req.end()
  })
}

export async function getJson<T> (url: string): Promise<T> {
  const answer = await request(url)
  if (answer.status !== 200) throw new Error(`GET ${url}: ${answer.status} ${answer.body}`)
  return JSON.parse(answer.body) as T
}

export interface BurstResult {
  ok: number
  statuses: Record<string, number>
  ms: number
}

/** `count` requests started at once, each on its own connection. */
export async function burst (url: string, count: number, timeoutMs: number): Promise<BurstResult> {
  const started = performance.now()
  const settled = await Promise.allSettled(Array.from({ length: count }, async () => await request(url, { timeoutMs })))
  const statuses: Record<string, number> = {}
  for (const outcome of settled) {
    const key = outcome.status === 'fulfilled' ? String(outcome.value.status) : `error: ${(outcome.reason as Error).message.slice(0, 60)}`
    statuses[key] = (statuses[key] ?? 0) + 1
  }
  return { ok: settled.filter((o) => o.status === 'fulfilled' && o.value.status >= 200 && o.value.status < 300).length, statuses, ms: performance.now() - started }
}

export interface Transfer {
  status: number
  bytes: number
  seconds: number
}

/** GETs `url` and counts the body's bytes without keeping them. */
export async function download (url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<Transfer> {
  const started = performance.now()
  return await new Promise<Transfer>((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs, headers }, (res: IncomingMessage) => {
      let bytes = 0
      res.on('data', (chunk: Buffer) => { bytes += chunk.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, seconds: (performance.now() - started) / 1000 }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: stalled for ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** POSTs `bytes` generated on the fly (chunked, 64 KiB at a time); the answer is the upstream's count. */
export async function upload (url: string, bytes: number, timeoutMs: number, headers: Record<string, string> = {}): Promise<Transfer & { answer: string }> {
  const chunk = Buffer.alloc(64 * 1024, 'u')
  function * generate (): Generator<Buffer> {
    for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left)
  }
  const started = performance.now()
  const req = httpRequest(url, { method: 'POST', agent: false, timeout: timeoutMs, headers: { 'content-type': 'application/octet-stream', ...headers } })
  req.on('timeout', () => req.destroy(new Error(`${url}: stalled for ${timeoutMs} ms`)))
  const response = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  response.catch(() => {}) // a failure also rejects the pipeline, which reports it
  await pipeline(Readable.from(generate(), { objectMode: false }), req)
  const answer = await response
  return { status: answer.status, bytes, seconds: (performance.now() - started) / 1000, answer: answer.body }
}
