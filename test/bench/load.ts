/**
 * The load generator: autocannon's programmatic API in this process, or wrk
 * (one thread) when it is on PATH.
 */
import autocannon from 'autocannon'
import { accessSync, constants, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { run, tempDir } from './processes.js'

export type Loader = 'autocannon' | 'wrk'

export interface LoadSpec {
  url: string
  method: 'GET' | 'POST'
  body?: Buffer
  headers: Record<string, string>
  connections: number
  durationS: number
}

export interface LoadResult {
  requests: number
  /** Completed requests per second. */
  rps: number
  /** Latency percentiles, ms. */
  p50: number
  p99: number
  non2xx: number
  /** Connection errors and timeouts. */
  errors: number
}

export function detectLoader (): Loader {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, 'wrk'), constants.X_OK)
      return 'wrk'
    } catch {}
  }
  return 'autocannon'
}

export async function runLoad (loader: Loader, spec: LoadSpec): Promise<LoadResult> {
  return loader === 'wrk' ? await runWrk(spec) : await runAutocannon(spec)
}

async function runAutocannon (spec: LoadSpec): Promise<LoadResult> {
  const result = await autocannon({
    url: spec.url,
    method: spec.method,
    headers: spec.body === undefined ? spec.headers : { 'content-type': 'application/octet-stream', ...spec.headers },
    ...(spec.body === undefined ? {} : { body: spec.body }),
    connections: spec.connections,
    pipelining: 1,
    duration: spec.durationS,
    // It checks for the end of the run once per sample: every 100 ms, so sub-second warm-ups end on time.
    sampleInt: 100
  })
  return {
    requests: result.requests.total,
    rps: result.requests.total / Math.max(result.duration, 0.001),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors
  }
}

async function runWrk (spec: LoadSpec): Promise<LoadResult> {
  const lines = [`wrk.method = "${spec.method}"`]
  for (const [name, value] of Object.entries(spec.headers)) lines.push(`wrk.headers["${name}"] = "${value}"`)
  if (spec.body !== undefined) {
    lines.push('wrk.headers["content-type"] = "application/octet-stream"')
    lines.push(`wrk.body = string.rep("x", ${spec.body.length})`)
  }
  const script = join(tempDir(), 'load.lua')
  writeFileSync(script, `${lines.join('\n')}\n`)
  const duration = Math.max(1, Math.round(spec.durationS))
  const out = await run('wrk', 'wrk', ['-t1', `-c${spec.connections}`, `-d${duration}s`, '--latency', '--timeout', '10s', '-s', script, spec.url])
  return parseWrk(out)
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }

function wrkMs (text: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text)
  if (match === null) throw new Error(`wrk output has no ${percentile}% latency:\n${text}`)
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

/** Reads wrk's text report (`--latency`). */
export function parseWrk (text: string): LoadResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(text)
  if (total === null) throw new Error(`unexpected wrk output:\n${text}`)
  const seconds = Number(total[2]) * (UNIT_MS[total[3] as string] as number) / 1000
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const errors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
  return {
    requests: Number(total[1]),
    rps: Number(total[1]) / seconds,
    p50: wrkMs(text, '50'),
    p99: wrkMs(text, '99'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    errors
  }
}
