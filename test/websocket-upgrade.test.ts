import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import { test, type TestContext } from 'node:test'
import WebSocket, { WebSocketServer } from 'ws'
import { clientCredentialsRoute, startProxy, tokenServer } from './helpers.js'
import { portOf, startProductionServer } from './security-helpers.js'

const ALLOWED = 'https://dashboard.example.test'
const WAIT_MS = 3000

interface Handshake { url: string, headers: IncomingHttpHeaders }

/** A websocket upstream that records each handshake, greets, and echoes every message. */
async function wsUpstream (t: TestContext): Promise<{ url: string, handshakes: Handshake[] }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  t.after(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate()
    wss.close(() => resolve())
  }))
  const handshakes: Handshake[] = []
  wss.on('connection', (socket, req) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers })
    socket.on('message', (data) => socket.send(`echo:${String(data)}`))
    socket.send('hello from upstream')
  })
  return { url: `http://127.0.0.1:${portOf(wss)}/base`, handshakes }
}

/** Opens a websocket; resolves once open, or with the refusal status. */
async function open (url: string, options: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket, status: number | undefined, body: string, messages: string[] }> {
  const ws = new WebSocket(url, options)
  const messages: string[] = []
  ws.on('message', (data) => messages.push(String(data)))
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no websocket outcome within ${WAIT_MS} ms`)) }, WAIT_MS)
    ws.once('open', () => { clearTimeout(timer); resolve({ ws, status: undefined, body: '', messages }) })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString('utf8') })
      res.once('end', () => { clearTimeout(timer); resolve({ ws, status: res.statusCode, body, messages }) })
    })
    ws.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}

async function nextMessages (messages: string[], count: number): Promise<string[]> {
  const deadline = Date.now() + WAIT_MS
  while (messages.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  return messages.slice(0, count)
}

const servers: Array<[string, (t: TestContext, input: Record<string, unknown>) => Promise<{ url: string }>]> = [
  ['startProxy (fastify\'s server)', startProxy],
  ['startServer (the production server)', startProductionServer]
]

for (const [name, start] of servers) {
  test(`a websocket upgrade carries the route's token, never the client's, and messages flow both ways: ${name}`, async (t) => {
    const tokens = await tokenServer(t)
    const upstream = await wsUpstream(t)
    const proxy = await start(t, { security: { allowedOrigins: [ALLOWED] }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
    const base = proxy.url.replace(/^http/, 'ws')

    const { ws, status, messages } = await open(`${base}/api/stream/live?topic=a%2Fb&since=1`, {
      headers: { authorization: 'Bearer client-own-token', 'x-proxy-key': 'client-side-key' },
      origin: ALLOWED
    })
    t.after(() => ws.terminate())
    assert.equal(status, undefined, 'the upgrade succeeded')
    assert.deepEqual(await nextMessages(messages, 1), ['hello from upstream'], 'upstream to client')
    ws.send('ping-1')
    ws.send(Buffer.from('ping-2'))
    assert.deepEqual(await nextMessages(messages, 3), ['hello from upstream', 'echo:ping-1', 'echo:ping-2'], 'client to upstream and back')

    assert.equal(upstream.handshakes.length, 1)
    const handshake = upstream.handshakes[0] as Handshake
    assert.equal(handshake.url, '/base/stream/live?topic=a%2Fb&since=1', 'base path and query kept')
    assert.equal(handshake.headers.authorization, 'Bearer token-1')
    assert.equal(tokens.calls.length, 1)
    const all = JSON.stringify(handshake.headers)
    assert.ok(!all.includes('client-own-token') && !all.includes('client-side-key'), 'no client credential reached the upstream')
    ws.close()
  })

  test(`a websocket upgrade from a refused origin, host or path never reaches the upstream: ${name}`, async (t) => {
    const tokens = await tokenServer(t)
    const upstream = await wsUpstream(t)
    const proxy = await start(t, { security: { allowedOrigins: [ALLOWED] }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
    const base = proxy.url.replace(/^http/, 'ws')

    const refused: Array<[string, string, WebSocket.ClientOptions, number, string]> = [
      ['a foreign origin', '/api/stream', { origin: 'https://evil.example' }, 403, 'ORIGIN_NOT_ALLOWED'],
      ['Origin null', '/api/stream', { origin: 'null' }, 403, 'ORIGIN_NOT_ALLOWED'],
      ['a rebinding host', '/api/stream', { headers: { host: 'evil.example' } }, 403, 'HOST_NOT_ALLOWED'],
      // (The ws client's URL parser would resolve a plain or %2e%2e traversal before sending.)
      ['a traversal', '/api/..%2fadmin', {}, 400, 'BAD_REQUEST'],
      ['an unknown prefix', '/other/stream', {}, 404, 'ROUTE_NOT_FOUND']
    ]
    for (const [what, path, options, expected, code] of refused) {
      const { ws, status, body } = await open(`${base}${path}`, options)
      ws.terminate()
      assert.equal(status, expected, what)
      assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, code, what)
    }
    assert.equal(upstream.handshakes.length, 0, 'the websocket upstream saw no connection')
    assert.equal(tokens.calls.length, 0, 'no token was requested')
  })
}

test('with security.clientKey a websocket upgrade needs the key too', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await wsUpstream(t)
  const proxy = await startProductionServer(t, { security: { clientKey: 'ws-client-key-81f3' }, routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const base = proxy.url.replace(/^http/, 'ws')

  const without = await open(`${base}/api/stream`)
  without.ws.terminate()
  assert.equal(without.status, 401)
  assert.equal(upstream.handshakes.length, 0)

  const withKey = await open(`${base}/api/stream`, { headers: { 'x-proxy-key': 'ws-client-key-81f3' } })
  t.after(() => withKey.ws.terminate())
  assert.equal(withKey.status, undefined)
  assert.deepEqual(await nextMessages(withKey.messages, 1), ['hello from upstream'])
  assert.equal(upstream.handshakes.length, 1)
  assert.equal(upstream.handshakes[0]?.headers['x-proxy-key'], undefined, 'the key is not forwarded')
  withKey.ws.close()
})
