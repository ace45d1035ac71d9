import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { parseConfig } from '../src/config/load.js'
import type { ConfigInput } from '../src/config/schema.js'
import { createLogger } from '../src/logger.js'
import { startServer, type RunningServer } from '../src/server.js'
import { LogSink } from './helpers.js'

/** What came back on a raw TCP connection. */
export interface SocketAnswer {
  /** Everything the server sent, as latin1 text. */
  raw: string
  /** Status of the first response, when one was sent. */
  status: number | undefined
  headers: Record<string, string>
  body: string
  /** The server closed (or reset) the connection before the wait ran out. */
  closed: boolean
  elapsedMs: number
}

/**
 * Writes `request` byte for byte on a fresh TCP connection (no client-side
 * parsing or validation, unlike node:http) and collects what the server sends
 * until it closes the connection or `timeoutMs` passes.
 */
export async function socketExchange (baseUrl: string, request: string | Buffer, timeoutMs = 3000): Promise<SocketAnswer> {
  const { hostname, port } = new URL(baseUrl)
  const started = Date.now()
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect(Number(port), hostname)
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...parseResponse(Buffer.concat(chunks).toString('latin1')), closed, elapsedMs: Date.now() - started })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.once('close', () => finish(true))
    // A reset is a close as far as the client is concerned.
    socket.once('error', () => finish(true))
    socket.write(request)
  })
}

function parseResponse (raw: string): Omit<SocketAnswer, 'closed' | 'elapsedMs'> {
  const end = raw.indexOf('\r\n\r\n')
  const head = end === -1 ? raw : raw.slice(0, end)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { raw, status: match === null ? undefined : Number(match[1]), headers, body: end === -1 ? '' : raw.slice(end + 4) }
}

/** The `error` object of a JSON error body, or undefined when the body is not one. */
export function jsonError (body: string): { code?: string, message?: string, route?: string } | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string, message?: string, route?: string } }).error
  } catch {
    return undefined
  }
}

export interface ProductionServer extends RunningServer {
  logs: LogSink
  port: number
}

/**
 * The production server (src/server.ts: its own node:http server, 'upgrade'
 * forwarding, clientError handling) on 127.0.0.1 port 0, closed after the test.
 */
export async function startProductionServer (t: TestContext, input: ConfigInput | Record<string, unknown>): Promise<ProductionServer> {
  const config = parseConfig({ admin: false, ...input, listen: { host: '127.0.0.1', port: 0 } }, { env: {} })
  const logs = new LogSink()
  const running = await startServer(config, createLogger({ level: 'debug', destination: logs }))
  t.after(() => running.close())
  return Object.assign(running, { logs, port: Number(new URL(running.url).port) })
}

/** The port of a listening server. */
export function portOf (server: { address: () => AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port
}

/** Samples process RSS every few ms; `stop()` returns the largest growth over the baseline, in bytes. */
export function rssWatcher (intervalMs = 20): { stop: () => number } {
  const baseline = process.memoryUsage.rss()
  let peak = baseline
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, intervalMs)
  return {
    stop: () => {
      clearInterval(timer)
      peak = Math.max(peak, process.memoryUsage.rss())
      return peak - baseline
    }
  }
}
