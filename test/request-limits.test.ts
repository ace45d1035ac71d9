import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test, type TestContext } from 'node:test'
import { serverSettings } from '../src/app.js'
import { clientCredentialsRoute, recordingUpstream, startProxy, tokenServer } from './helpers.js'
import { jsonError, socketExchange, startProductionServer, type SocketAnswer } from './security-helpers.js'

const KiB = 1024
/** Slow-loris bound: the server promises the headers within 10 s (src/app.ts HEADERS_TIMEOUT_MS); a little slack for the check itself. */
const HEADERS_DEADLINE_MS = 10_000
const CUT_OFF_BY_MS = 12_500

/**
 * Requests Node's parser or the guards refuse before any work: each gets the
 * proxy's JSON error and none reaches the token endpoint or the upstream.
 * Checked on both ways of listening: fastify's server (tests, `startProxy`)
 * and the production one (src/server.ts).
 */
async function setup (t: TestContext) {
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t)
  const config = { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }
  const servers = [await startProxy(t, config), await startProductionServer(t, config)]
  return { tokens, upstream, urls: servers.map((s) => s.url) }
}

function assertJsonError (res: SocketAnswer, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.raw.slice(0, 200)}`)
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, what)
  assert.equal(jsonError(res.body)?.code, code, what)
}

test('a header block over 16 KiB gets 431 HEADERS_TOO_LARGE and the connection is closed', async (t) => {
  const { tokens, upstream, urls } = await setup(t)
  for (const url of urls) {
    const one = await socketExchange(url, `GET /api/x HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(17 * KiB)}\r\n\r\n`)
    assertJsonError(one, 431, 'HEADERS_TOO_LARGE', 'one large header')
    assert.ok(one.closed)
    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(40)}\r\n`).join('')
    const res = await socketExchange(url, `GET /api/x HTTP/1.1\r\nHost: localhost\r\n${many}\r\n`)
    assertJsonError(res, 431, 'HEADERS_TOO_LARGE', 'many headers')
    assert.ok(res.closed)
  }
  assert.equal(upstream.requests.length, 0)
  assert.equal(tokens.calls.length, 0)
})

test('a request target over 8 KiB gets 414 URI_TOO_LONG', async (t) => {
  const { tokens, upstream, urls } = await setup(t)
  for (const url of urls) {
    const path = await socketExchange(url, `GET /api/${'a'.repeat(9 * KiB)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    assertJsonError(path, 414, 'URI_TOO_LONG', 'long path')
    const query = await socketExchange(url, `GET /api/x?q=${'a'.repeat(9 * KiB)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    assertJsonError(query, 414, 'URI_TOO_LONG', 'long query')
    // Just under the limit is fine.
    const fits = await socketExchange(url, `GET /api/x?q=${'a'.repeat(8 * KiB - 20)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    assert.equal(fits.status, 200)
  }
  assert.equal(upstream.requests.length, urls.length, 'only the requests under the limit were forwarded')
  // One token per server: each has its own broker.
  assert.equal(tokens.calls.length, urls.length)
})

test('conflicting or malformed framing (request smuggling) gets 400, the connection is closed and nothing is forwarded', async (t) => {
  const { tokens, upstream, urls } = await setup(t)
  const smuggled = 'GET /api/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n'
  const attempts: Array<[string, string]> = [
    ['Content-Length and Transfer-Encoding', `POST /api/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`],
    ['two different Content-Length', `POST /api/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc${smuggled}`],
    ['Transfer-Encoding other than chunked last', `POST /api/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`],
    ['an obfuscated Transfer-Encoding', `POST /api/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled}`],
    ['a bare LF inside a header', `GET /api/x HTTP/1.1\r\nHost: localhost\r\nX-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`]
  ]
  for (const url of urls) {
    for (const [what, request] of attempts) {
      const res = await socketExchange(url, request)
      assertJsonError(res, 400, 'BAD_REQUEST', what)
      assert.ok(res.closed, `${what}: the connection is closed`)
      assert.equal(res.raw.match(/HTTP\/1\.1 /g)?.length, 1, `${what}: one answer, the smuggled request was not read`)
    }
  }
  assert.deepEqual(upstream.requests.map((r) => r.url), [], 'nothing reached the upstream')
  assert.equal(tokens.calls.length, 0)
})

test('headers that trickle in byte by byte (slow loris) are cut off after the headers timeout', async (t) => {
  assert.ok((serverSettings().headersTimeout ?? Infinity) <= HEADERS_DEADLINE_MS, 'the headers timeout is at most 10 s')

  const upstream = await recordingUpstream(t)
  const server = await startProductionServer(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'route-key-1234' } } } })
  const started = Date.now()
  const outcome = await new Promise<{ closedAfterMs: number | undefined, answer: string }>((resolve) => {
    const socket = connect(server.port, '127.0.0.1')
    let answer = ''
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
    socket.on('error', () => {})
    socket.write('GET /api/x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ')
    // One byte every 200 ms: never idle long enough for an idle timeout, never done.
    const drip = setInterval(() => socket.write('a'), 200)
    const giveUp = setTimeout(() => {
      clearInterval(drip)
      socket.destroy()
      resolve({ closedAfterMs: undefined, answer })
    }, CUT_OFF_BY_MS)
    socket.once('close', () => {
      clearInterval(drip)
      clearTimeout(giveUp)
      resolve({ closedAfterMs: Date.now() - started, answer })
    })
  })
  assert.ok(outcome.closedAfterMs !== undefined, `the connection was still open after ${CUT_OFF_BY_MS} ms of trickling headers`)
  assert.ok(outcome.closedAfterMs >= HEADERS_DEADLINE_MS - 500, `cut off after ${outcome.closedAfterMs} ms, before the headers timeout`)
  assert.match(outcome.answer, /^HTTP\/1\.1 408 /)
  assert.equal(jsonError(outcome.answer.slice(outcome.answer.indexOf('\r\n\r\n') + 4))?.code, 'REQUEST_TIMEOUT')
  assert.equal(upstream.requests.length, 0)
})

test('an upload that stops mid-body gets 408 REQUEST_TIMEOUT after the route timeout, and a connection idle after its answer is closed', async (t) => {
  const upstream = await recordingUpstream(t)
  const config = { routes: { api: { upstream: upstream.url, timeout: 400, auth: { type: 'static', token: 'route-key-1234' } } } }
  for (const server of [await startProxy(t, config), await startProductionServer(t, config)]) {
    // 10 of the 1,000 announced bytes, then silence.
    const stalled = await socketExchange(server.url, 'POST /api/upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n0123456789', 4000)
    assertJsonError(stalled, 408, 'REQUEST_TIMEOUT', 'stalled upload')
    assert.ok(stalled.closed, 'the connection was closed')
    assert.ok(stalled.elapsedMs >= 350, `answered after ${stalled.elapsedMs} ms, before the route timeout`)
  }
  const server = await startProductionServer(t, config)
  const idle = await socketExchange(server.url, 'GET /api/x HTTP/1.1\r\nHost: localhost\r\n\r\n', 9000)
  assert.equal(idle.status, 200)
  assert.ok(idle.closed, 'the idle connection was closed')
  assert.ok(idle.elapsedMs >= 4500 && idle.elapsedMs < 8500, `closed after ${idle.elapsedMs} ms, not after the 5 s keep-alive timeout`)
})
