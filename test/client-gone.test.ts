import assert from 'node:assert/strict'
import { request, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import { clientCredentialsRoute, listen, sendJson, startProxy, tokenServer, type TestProxy } from './helpers.js'
import { rawRequest } from './proxy-http-helpers.js'

const staticAuth = { type: 'static', token: 'route-key-1234' } as const
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** The request log lines for one proxy path. */
function requestLines (proxy: TestProxy, path: string): Array<Record<string, unknown>> {
  return proxy.logs.lines.filter((line) => line.msg === 'request' && line.path === path)
}

/** Waits (bounded) until `ready` holds. */
async function eventually (ready: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms
  while (!ready() && Date.now() < until) await sleep(20)
}

/** Sends GET /api/first and GET /api/second on one connection, pipelined; the answers are read and dropped. */
function pipelineFirstAndSecond (proxy: TestProxy): Socket {
  const socket = connect(proxy.port, '127.0.0.1')
  socket.on('error', () => {})
  socket.on('data', () => {})
  socket.write('GET /api/first HTTP/1.1\r\nHost: localhost\r\n\r\nGET /api/second HTTP/1.1\r\nHost: localhost\r\n\r\n')
  return socket
}

/** An answer that never ends: its head at once, then a byte every 20 ms. */
function trickle (res: ServerResponse): void {
  res.flushHeaders()
  const timer = setInterval(() => res.write('x'), 20)
  res.once('close', () => clearInterval(timer))
}

for (const phase of ['before the answer', 'while a small answer is read']) {
  test(`a client that goes away ${phase}: the upstream request ends at once and the request is logged as aborted`, async (t) => {
    let upstreamClosedAt = 0
    const upstream = await listen(t, (_req: IncomingMessage, res: ServerResponse) => {
      res.once('close', () => { upstreamClosedAt = Date.now() })
      // A long poll: answers after 5 s, or sends its head at once and its 2-byte body after 5 s.
      if (phase !== 'before the answer') {
        res.writeHead(200, { 'content-length': '2' })
        res.flushHeaders()
      }
      const timer = setTimeout(() => { if (!res.headersSent) res.writeHead(200, { 'content-length': '2' }); res.end('ok') }, 5000)
      res.once('close', () => clearTimeout(timer))
    })
    const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, timeout: 30_000, auth: staticAuth } } })
    const req = request(`${proxy.url}/api/poll`, { agent: false })
    req.on('error', () => {})
    req.end()
    await sleep(300)
    const leftAt = Date.now()
    req.destroy()
    await eventually(() => upstreamClosedAt !== 0 && requestLines(proxy, '/api/poll').length > 0)
    assert.ok(upstreamClosedAt !== 0, 'the upstream request outlived the client')
    assert.ok(upstreamClosedAt - leftAt < 1000, `the upstream request ended ${upstreamClosedAt - leftAt} ms after the client left`)
    // No answer had started: logged as nginx's "client closed request".
    assert.deepEqual(requestLines(proxy, '/api/poll').map(({ status, aborted }) => ({ status, aborted })), [{ status: 499, aborted: true }])
  })
}

test('a client that pipelines two endless downloads and leaves: both upstream requests end, and shutdown completes', async (t) => {
  const closed: Record<string, boolean> = {}
  const upstream = await listen(t, (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? ''
    closed[path] = false
    res.once('close', () => { closed[path] = true })
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    if (path === '/first') {
      trickle(res)
      return
    }
    // Endless with backpressure: the proxy queues this answer behind the first, pauses it, and
    // Node never closes a queued answer when the connection dies.
    const chunk = Buffer.alloc(16 * 1024, 97)
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump)
    }
    pump()
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, timeout: 1000, auth: staticAuth } } })
  const socket = pipelineFirstAndSecond(proxy)
  await eventually(() => Object.keys(closed).length === 2)
  assert.deepEqual(Object.keys(closed).sort(), ['/first', '/second'], 'both requests reached the upstream')
  // Time for the first answer's head to reach the client and the second's to fill the queue.
  await sleep(300)
  socket.destroy()
  await eventually(() => closed['/first'] === true && closed['/second'] === true)
  assert.deepEqual(closed, { '/first': true, '/second': true }, 'an upstream request outlived the client')
  const outcome = await Promise.race([proxy.close().then(() => 'closed'), sleep(5000).then(() => 'still closing')])
  assert.equal(outcome, 'closed')
  assert.deepEqual(requestLines(proxy, '/api/first').map(({ status, aborted }) => ({ status, aborted })), [{ status: 200, aborted: true }])
  // The second answer was queued behind the first: none of it reached the client.
  assert.deepEqual(requestLines(proxy, '/api/second').map(({ status, aborted }) => ({ status, aborted })), [{ status: 499, aborted: true }])
})

test('answers broken off mid-way are logged once, as aborted with the status that was sent', async (t) => {
  const upstream = await listen(t, (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/reset-streamed') {
      res.writeHead(201, { 'content-type': 'application/octet-stream' })
      res.write(Buffer.alloc(100_000))
      setTimeout(() => res.socket?.resetAndDestroy(), 50)
    } else if (req.url === '/reset-small') {
      res.writeHead(202, { 'content-length': '1000' })
      res.write('{"partial":')
      setTimeout(() => res.socket?.resetAndDestroy(), 50)
    } else {
      res.end('fine')
    }
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: staticAuth } } })
  const cases = [
    // Streamed: the head went out, then the connection was cut.
    { path: '/api/reset-streamed', logged: { status: 201, aborted: true } },
    // Read whole before sending: nothing went out; the client's connection is cut.
    { path: '/api/reset-small', logged: { status: 499, aborted: true } }
  ]
  for (const { path, logged } of cases) {
    await rawRequest(proxy.url, { path }).catch(() => {})
    await eventually(() => requestLines(proxy, path).length > 0)
    assert.deepEqual(requestLines(proxy, path).map(({ status, aborted }) => ({ status, aborted })), [logged], path)
  }
  const fine = await rawRequest(proxy.url, { path: '/api/fine' })
  assert.equal(fine.status, 200)
  assert.deepEqual(requestLines(proxy, '/api/fine').map(({ status, aborted }) => ({ status, aborted })), [{ status: 200, aborted: undefined }])
})

test('a pipelined request still waiting for its upstream when the client leaves: its upstream request ends, logged 499', async (t) => {
  const closed: Record<string, number> = {}
  const upstream = await listen(t, (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? ''
    closed[path] = 0
    res.once('close', () => { closed[path] = Date.now() })
    if (path === '/first') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      trickle(res)
      return
    }
    // A long poll: a small answer after 5 s.
    const timer = setTimeout(() => { res.writeHead(200, { 'content-length': '2' }); res.end('ok') }, 5000)
    res.once('close', () => clearTimeout(timer))
  })
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, timeout: 30_000, auth: staticAuth } } })
  const socket = pipelineFirstAndSecond(proxy)
  await eventually(() => Object.keys(closed).length === 2)
  await sleep(300)
  const leftAt = Date.now()
  socket.destroy()
  await eventually(() => closed['/second'] !== 0 && requestLines(proxy, '/api/second').length > 0)
  assert.ok(closed['/second'] !== 0 && closed['/second'] - leftAt < 1000, 'the queued request\'s upstream request outlived the client')
  assert.deepEqual(requestLines(proxy, '/api/second').map(({ status, aborted }) => ({ status, aborted })), [{ status: 499, aborted: true }])
})

test('a client that leaves while a refused request waits for its new token: no replay is sent', async (t) => {
  const tokens = await tokenServer(t, async (_call, n, res) => {
    if (n > 1) await sleep(1000)
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  const sent: string[] = []
  const upstream = await listen(t, (req: IncomingMessage, res: ServerResponse) => {
    sent.push(req.headers.authorization ?? '')
    if (req.headers.authorization === 'Bearer token-1') sendJson(res, 401, { error: 'revoked' })
    else sendJson(res, 200, { ok: true })
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const req = request(`${proxy.url}/api/poll`, { agent: false })
  req.on('error', () => {})
  req.end()
  await eventually(() => sent.length === 1)
  await sleep(200)
  req.destroy()
  // Past the new token's arrival.
  await eventually(() => tokens.calls.length === 2)
  await sleep(1500)
  assert.deepEqual(sent, ['Bearer token-1'], 'a replay went out after its client had left')
  assert.deepEqual(requestLines(proxy, '/api/poll').map(({ status, aborted }) => ({ status, aborted })), [{ status: 499, aborted: true }])
})
