import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import WebSocket from 'ws'
import { clientCredentialsRoute, freePort, startProxy, tokenServer } from './helpers.js'
import { jsonError, portOf, socketExchange } from './security-helpers.js'
import { openWebsocket, until, websocketUpstream, wsBase } from './websocket-helpers.js'

function errorOf (body: string): { code: string, route?: string } {
  return (JSON.parse(body) as { error: { code: string, route?: string } }).error
}

/** A TCP server that takes connections, reads them and never answers a byte. */
async function silentUpstream (t: TestContext): Promise<{ url: string, connections: Socket[], closed: () => number }> {
  const connections: Socket[] = []
  let closed = 0
  const server = createServer((socket) => {
    connections.push(socket)
    socket.resume()
    socket.once('close', () => { closed++ })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of connections) socket.destroy()
    server.close(() => resolve())
  }))
  return { url: `http://127.0.0.1:${portOf(server)}`, connections, closed: () => closed }
}

test('the client gets its 101 only once the upstream accepted the handshake', async (t) => {
  const tokens = await tokenServer(t)
  let accept: (() => void) | undefined
  const upstream = await websocketUpstream(t, {
    verify: async () => {
      await new Promise<void>((resolve) => { accept = resolve })
      return undefined
    },
    connected: (socket) => socket.send('accepted')
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const ws = new WebSocket(`${wsBase(proxy.url)}/api/live`)
  t.after(() => ws.terminate())
  let upgraded = false
  ws.once('upgrade', () => { upgraded = true })
  const opened = once(ws, 'open')
  const greeting = once(ws, 'message')
  await until(() => accept !== undefined, 5000, 'the upstream handshake')
  // The upstream is still deciding: the client must not have been told it is connected.
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(upgraded, false, 'no 101 before the upstream accepted')
  assert.equal(ws.readyState, WebSocket.CONNECTING)

  accept?.()
  await opened
  assert.equal(String((await greeting)[0]), 'accepted')
  ws.close()
})

test('an upstream that never answers the handshake: 504 UPSTREAM_TIMEOUT within the route timeout', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await silentUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl, { timeout: 500 }) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/api/live`, {}, 10_000)
  assert.equal(res.status, 504)
  assert.equal(errorOf(res.body).code, 'UPSTREAM_TIMEOUT')
  assert.equal(errorOf(res.body).route, 'api')
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  assert.ok(res.elapsedMs >= 450 && res.elapsedMs < 5000, `answered after ${res.elapsedMs} ms`)
  assert.equal(upstream.connections.length, 1)
  await until(() => upstream.closed() === 1, 5000, 'the upstream connection closed')
})

test('a 401 on the handshake is retried once with a new token', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, {
    verify: (req: IncomingMessage) => req.headers.authorization === 'Bearer token-2' ? undefined : 401,
    connected: (socket) => socket.send('accepted')
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/api/live`)
  t.after(() => res.ws.terminate())
  assert.equal(res.status, undefined, 'the upgrade succeeded with the new token')
  await until(() => res.messages.length === 1, 5000, 'the greeting')
  assert.equal(tokens.calls.length, 2, 'exactly one more token request')
  assert.deepEqual(upstream.handshakes.map((h) => h.headers.authorization), ['Bearer token-1', 'Bearer token-2'])
  res.ws.close()
})

test('a handshake refused with a retryOn status again after the retry: the refusal is passed on, one retry only', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, { verify: () => 401 })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/api/live`)
  assert.equal(res.status, 401)
  assert.equal(res.body, 'refused by the test upstream')
  assert.equal(res.headers['x-upstream-reason'], 'test')
  assert.equal(tokens.calls.length, 2)
  assert.equal(upstream.handshakes.length, 2)
})

test('a handshake refused with a status outside retryOn is passed on at once', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t, { verify: () => 403 })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/api/live`)
  assert.equal(res.status, 403)
  assert.equal(res.body, 'refused by the test upstream')
  assert.equal(tokens.calls.length, 1)
  assert.equal(upstream.handshakes.length, 1)
})

test('an upstream that cannot be reached: 502 UPSTREAM_UNAVAILABLE, no 101', async (t) => {
  const tokens = await tokenServer(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(`http://127.0.0.1:${await freePort()}`, tokens.tokenUrl) } })

  const res = await openWebsocket(`${wsBase(proxy.url)}/api/live`)
  assert.equal(res.status, 502)
  assert.equal(errorOf(res.body).code, 'UPSTREAM_UNAVAILABLE')
  assert.equal(errorOf(res.body).route, 'api')
})

test('a client that leaves during the handshake ends the upstream handshake and is logged as 499', async (t) => {
  const tokens = await tokenServer(t)
  let holding = false
  let upstreamClosed = false
  const upstream = await websocketUpstream(t, {
    // Holds the handshake; watches the connection for the proxy leaving it.
    verify: async (req) => {
      holding = true
      req.socket.once('close', () => { upstreamClosed = true })
      req.socket.once('end', () => req.socket.destroy())
      req.socket.resume()
      await new Promise(() => {})
      return undefined
    }
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })

  const ws = new WebSocket(`${wsBase(proxy.url)}/api/live?key=query-secret`)
  ws.on('error', () => {})
  await until(() => holding, 5000, 'the upstream handshake')
  ws.terminate()
  await until(() => upstreamClosed, 5000, 'the upstream handshake ended')
  await until(() => proxy.logs.lines.some((l) => l.msg === 'request'), 5000, 'the request line')
  const line = proxy.logs.lines.find((l) => l.msg === 'request')
  assert.equal(line?.status, 499)
  assert.equal(line?.path, '/api/live')
  assert.equal(line?.aborted, true)
  assert.equal(upstream.handshakes.length, 1)
})

test('an upgrade that is no valid websocket handshake gets 400 before any token or upstream work', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await websocketUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const host = `Host: 127.0.0.1:${new URL(proxy.url).port}`
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13'

  const invalid: Array<[string, string]> = [
    ['a HEAD upgrade', `HEAD /api/live HTTP/1.1\r\n${host}\r\n${upgrade}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`],
    ['a malformed key', `GET /api/live HTTP/1.1\r\n${host}\r\n${upgrade}\r\nSec-WebSocket-Key: short\r\n\r\n`],
    ['a duplicate subprotocol', `GET /api/live HTTP/1.1\r\n${host}\r\n${upgrade}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat, chat\r\n\r\n`]
  ]
  for (const [what, request] of invalid) {
    const answer = await socketExchange(proxy.url, request)
    assert.equal(answer.status, 400, what)
    if (!what.startsWith('a HEAD')) assert.equal(jsonError(answer.body)?.code, 'BAD_REQUEST', what)
    assert.ok(answer.closed, `${what}: the connection is closed`)
  }
  assert.equal(tokens.calls.length, 0)
  assert.equal(upstream.handshakes.length, 0)
})
