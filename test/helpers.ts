import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { buildApp, type ProxyApp } from '../src/app.js'
import type { Scheduler } from '../src/auth/broker.js'
import { parseConfig } from '../src/config/load.js'
import type { ConfigInput } from '../src/config/schema.js'
import { createLogger } from '../src/logger.js'

/** Collects pino lines so tests can assert on logs. */
export class LogSink extends Writable {
  readonly raw: string[] = []

  override _write (chunk: Buffer, _encoding: string, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line !== '') this.raw.push(line)
    callback()
  }

  get lines (): Array<Record<string, unknown>> {
    return this.raw.map((l) => JSON.parse(l) as Record<string, unknown>)
  }

  text (): string {
    return this.raw.join('\n')
  }
}

export interface TestServer {
  server: Server
  url: string
  port: number
}

/** A node:http server on 127.0.0.1 port 0, closed after the test. */
export async function listen (t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<TestServer> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500)
      res.end(String(err))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return { server, url: `http://127.0.0.1:${port}`, port }
}

export async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
}

export interface ReceivedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

/**
 * An upstream API that records every request. By default it answers 200 with
 * JSON describing what it got; `respond` can answer otherwise.
 */
export async function recordingUpstream (t: TestContext, respond?: (req: ReceivedRequest, res: ServerResponse) => void | Promise<void>): Promise<TestServer & { requests: ReceivedRequest[] }> {
  const requests: ReceivedRequest[] = []
  const server = await listen(t, async (req, res) => {
    const received: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: await readBody(req) }
    requests.push(received)
    if (respond !== undefined) return respond(received, res)
    sendJson(res, 200, { method: received.method, url: received.url, authorization: req.headers.authorization ?? null, bodyLength: received.body.length })
  })
  return { ...server, requests }
}

export interface TokenCall {
  headers: IncomingHttpHeaders
  body: string
  form: URLSearchParams
}

/**
 * A programmable token endpoint. Default answer: a fresh opaque token
 * `token-N` with expires_in 3600.
 */
export async function tokenServer (t: TestContext, respond?: (call: TokenCall, n: number, res: ServerResponse) => void | Promise<void>): Promise<TestServer & { tokenUrl: string, calls: TokenCall[] }> {
  const calls: TokenCall[] = []
  const server = await listen(t, async (req, res) => {
    const body = (await readBody(req)).toString('utf8')
    const call = { headers: req.headers, body, form: new URLSearchParams(body) }
    calls.push(call)
    if (respond !== undefined) return respond(call, calls.length, res)
    sendJson(res, 200, { access_token: `token-${calls.length}`, token_type: 'Bearer', expires_in: 3600 })
  })
  return { ...server, tokenUrl: `${server.url}/oauth/token`, calls }
}

export interface TestProxy extends ProxyApp {
  url: string
  port: number
  logs: LogSink
}

/** The proxy built from a config object, listening on 127.0.0.1 port 0, logs captured. */
/** `input` is validated like a config file (so tests may build it loosely). */
export async function startProxy (t: TestContext, input: ConfigInput | Record<string, unknown>, options: { now?: () => number, timers?: Scheduler, env?: NodeJS.ProcessEnv } = {}): Promise<TestProxy> {
  const config = parseConfig({ admin: false, ...input }, { env: options.env ?? {} })
  const logs = new LogSink()
  const proxy = await buildApp(config, {
    logger: createLogger({ level: 'debug', destination: logs }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.timers === undefined ? {} : { timers: options.timers })
  })
  await proxy.app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => proxy.close())
  const port = (proxy.app.server.address() as AddressInfo).port
  return { ...proxy, url: `http://127.0.0.1:${port}`, port, logs }
}

/** A client_credentials route config against a test token server. */
export function clientCredentialsRoute (upstream: string, tokenUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { upstream, auth: { type: 'client_credentials', tokenUrl, clientId: 'test-client', clientSecret: 'test-client-secret-value' }, ...extra }
}

/** A loopback port that was free a moment ago (bound, then released): nothing listens on it. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
