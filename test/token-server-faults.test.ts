import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, ManualClock, tokenOf, type ProxyAnswer } from './token-lifecycle-helpers.js'

/**
 * A token endpoint that misbehaves (huge, truncated or contradictory answers,
 * no answer at all, an outage) costs the client one clear error, never a crash,
 * a hang or a flood of token requests. Status codes, Retry-After and backoff
 * timing are covered in token-backoff.test.ts; token lifetimes in token-expiry.test.ts.
 */
type Respond = (call: TokenCall, n: number, res: ServerResponse) => void | Promise<void>

async function setup (t: TestContext, respond: Respond, auth: Record<string, unknown> = {}, route: Record<string, unknown> = {}) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, respond)
  const upstream = await recordingUpstream(t)
  const base = clientCredentialsRoute(upstream.url, tokens.tokenUrl, route)
  const proxy = await startProxy(t, { routes: { api: { ...base, auth: { ...(base.auth as object), ...auth } } } }, { now: clock.now })
  return { clock, tokens, upstream, proxy, get: async (): Promise<ProxyAnswer> => await call(`${proxy.url}/api/x`) }
}

async function drainedOrClosed (res: ServerResponse): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}

function assertCode (res: ProxyAnswer, status: number, code: string): void {
  assert.equal(res.status, status, res.text)
  assert.equal(res.json?.error?.code, code)
  assert.equal(res.json.error.route, 'api')
}

test('an answer over 1 MiB is not read to the end: 503 TOKEN_UNAVAILABLE, and the proxy recovers', async (t) => {
  let huge = true
  let bytesSent = 0
  const s = await setup(t, async (_c, n, res) => {
    if (!huge) return sendJson(res, 200, { access_token: `token-${n}`, expires_in: 3600 })
    // A valid token answer padded to 64 MiB, streamed: the proxy must stop reading, not buffer it all.
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"access_token":"token-huge","expires_in":3600,"padding":"')
    const chunk = 'x'.repeat(64 * 1024)
    for (let i = 0; i < 1024 && !res.destroyed; i++) {
      bytesSent += chunk.length
      if (!res.write(chunk)) await drainedOrClosed(res)
    }
    if (!res.destroyed) res.end('"}')
  })
  const res = await s.get()
  assertCode(res, 503, 'TOKEN_UNAVAILABLE')
  assert.match(res.json.error.message, /larger than/)
  assert.equal(s.upstream.requests.length, 0)
  assert.ok(bytesSent < 16 * 1024 * 1024, `the proxy stopped reading early (the endpoint got to send ${bytesSent} bytes of 64 MiB)`)

  huge = false
  s.clock.advance(120_000)
  const after = await s.get()
  assert.equal(after.status, 200)
  assert.equal(tokenOf(s.upstream.requests[0]), 'token-2')
})

test('a truncated answer is 503 TOKEN_UNAVAILABLE', async (t) => {
  const answers: Respond[] = [
    // Complete HTTP, cut-off JSON.
    (_c, _n, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"token-cut","expires_') },
    // The connection drops before the announced length has arrived.
    (_c, _n, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' })
      res.write('{"access_token":"token-cut",')
      setTimeout(() => res.socket?.destroy(), 20)
    },
    // Chunked, and the connection drops before the last chunk.
    (_c, _n, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"access_token":"token-cut"')
      setTimeout(() => res.socket?.destroy(), 20)
    }
  ]
  for (const answer of answers) {
    const s = await setup(t, answer)
    assertCode(await s.get(), 503, 'TOKEN_UNAVAILABLE')
    assert.equal(s.upstream.requests.length, 0, 'the cut-off token was not used')
  }
})

test('HTTP 200 with an OAuth error and no token is 502 TOKEN_REJECTED', async (t) => {
  const s = await setup(t, (_c, _n, res) => sendJson(res, 200, { error: 'invalid_grant', error_description: 'client disabled' }))
  const res = await s.get()
  assertCode(res, 502, 'TOKEN_REJECTED')
  assert.match(res.json.error.message, /invalid_grant/)
  assert.equal(s.upstream.requests.length, 0)
})

test('a token endpoint that never answers fails within the auth timeout, well before the upstream timeout', async (t) => {
  // Never answers; the server is closed after the test.
  const s = await setup(t, () => {}, { timeout: 300 }, { timeout: 5000 })
  const started = Date.now()
  const res = await s.get()
  const elapsed = Date.now() - started
  assertCode(res, 503, 'TOKEN_UNAVAILABLE')
  assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
  assert.equal(s.tokens.calls.length, 1, 'the token endpoint was asked once')
  assert.ok(elapsed >= 250, `answered after ${elapsed} ms, before the 300 ms token timeout`)
  assert.ok(elapsed < 2000, `answered after ${elapsed} ms: not within the 300 ms token timeout (route timeout 5000 ms)`)
  assert.equal(s.upstream.requests.length, 0)
})

test('no retry storm: many requests during an outage cause at most one token request per backoff step', async (t) => {
  let connections = 0
  const s = await setup(t, (_c, _n, res) => {
    connections++
    // Refused at the TCP level: no status, no Retry-After, only the broker's own backoff.
    res.socket?.resetAndDestroy()
  })
  const burst = await Promise.all(Array.from({ length: 30 }, async () => await s.get()))
  for (const res of burst) assertCode(res, 503, 'TOKEN_UNAVAILABLE')
  assert.equal(connections, 1, '30 concurrent requests during the outage: one token request')

  for (let i = 0; i < 30; i++) assertCode(await s.get(), 503, 'TOKEN_UNAVAILABLE')
  assert.equal(connections, 1, '30 more during the backoff: no token request')

  // Past the first backoff step (at most 1 s), one more try for the next 30.
  s.clock.advance(1001)
  const next = await Promise.all(Array.from({ length: 30 }, async () => await s.get()))
  for (const res of next) assertCode(res, 503, 'TOKEN_UNAVAILABLE')
  assert.equal(connections, 2, 'one retry after the backoff, however many requests are waiting')
  assert.equal(s.upstream.requests.length, 0)
})
