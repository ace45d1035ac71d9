import { once } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { TestContext } from 'node:test'
import WebSocket, { WebSocketServer } from 'ws'
import { portOf } from './security-helpers.js'

export interface Handshake { url: string, headers: IncomingHttpHeaders }

export interface WebsocketUpstream {
  /** The route's `upstream`: http://127.0.0.1:PORT */
  url: string
  server: WebSocketServer
  /** Every handshake that reached it, accepted or not. */
  handshakes: Handshake[]
  /** Its side of every accepted connection. */
  sockets: WebSocket[]
}

/**
 * A websocket upstream on 127.0.0.1 port 0, closed after the test. `verify`
 * may refuse a handshake (status) or hold it (a promise); `connected` gets the
 * upstream's side of each accepted connection.
 */
export async function websocketUpstream (
  t: TestContext,
  options: { verify?: (req: IncomingMessage) => number | undefined | Promise<number | undefined>, connected?: (socket: WebSocket, req: IncomingMessage) => void, server?: WebSocket.ServerOptions } = {}
): Promise<WebsocketUpstream> {
  const handshakes: Handshake[] = []
  const sockets: WebSocket[] = []
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    ...options.server,
    verifyClient: (info, done) => {
      handshakes.push({ url: info.req.url ?? '', headers: info.req.headers })
      Promise.resolve(options.verify?.(info.req)).then((status) => {
        if (status === undefined) done(true)
        else done(false, status, 'refused by the test upstream', { 'content-type': 'text/plain', 'x-upstream-reason': 'test' })
      }, () => done(false, 500))
    }
  })
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => {
    for (const client of server.clients) client.terminate()
    server.close(() => resolve())
  }))
  server.on('connection', (socket, req) => {
    sockets.push(socket)
    options.connected?.(socket, req)
  })
  return { url: `http://127.0.0.1:${portOf(server)}`, server, handshakes, sockets }
}

export interface Opened {
  ws: WebSocket
  /** The refusal's status; undefined when the websocket opened. */
  status: number | undefined
  headers: IncomingHttpHeaders
  body: string
  messages: Buffer[]
  elapsedMs: number
}

/** Opens a websocket; resolves once open or refused (with the refusal's status and body), within `waitMs`. */
export async function openWebsocket (url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}, waitMs = 5000): Promise<Opened> {
  const started = Date.now()
  const { protocols, ...clientOptions } = options
  const ws = new WebSocket(url, protocols ?? [], clientOptions)
  const messages: Buffer[] = []
  ws.on('message', (data) => messages.push(data as Buffer))
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no websocket outcome within ${waitMs} ms`)) }, waitMs)
    ws.once('open', () => { clearTimeout(timer); resolve({ ws, status: undefined, headers: {}, body: '', messages, elapsedMs: Date.now() - started }) })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString('utf8') })
      res.once('end', () => {
        clearTimeout(timer)
        ws.terminate()
        resolve({ ws, status: res.statusCode, headers: res.headers, body, messages, elapsedMs: Date.now() - started })
      })
    })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

/** Waits until `condition()` holds, checking every `stepMs`; fails after `ms`. */
export async function until (condition: () => boolean, ms: number, what: string, stepMs = 10): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, stepMs))
  }
}

/** Waits until `value()` has not changed for `quietMs` (or `ms` passed), and returns it. */
export async function settled (value: () => number, quietMs: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms
  let last = value()
  let since = Date.now()
  while (Date.now() < deadline && Date.now() - since < quietMs) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const now = value()
    if (now !== last) {
      last = now
      since = Date.now()
    }
  }
  return last
}

/** Resolves with the close code and reason once `ws` closes, within `ms`. */
export async function closed (ws: WebSocket, ms = 5000): Promise<{ code: number, reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed: listen before it closes')
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms)
    ws.once('close', (code, reason) => { clearTimeout(timer); resolve({ code, reason: reason.toString('utf8') }) })
  })
}

/** The proxy's ws:// base URL from its http:// one. */
export function wsBase (url: string): string {
  return url.replace(/^http/, 'ws')
}
