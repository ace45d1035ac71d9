import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import { clientCredentialsRoute, listen, recordingUpstream, sendJson, startProxy, tokenServer, type ReceivedRequest } from './helpers.js'
import { call, gate, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const SECOND = 1000

type Respond = (req: ReceivedRequest, res: ServerResponse, clock: ManualClock) => void | Promise<void>

/** Echoes what the upstream got, like recordingUpstream's default. */
function ok (req: ReceivedRequest, res: ServerResponse): void {
  sendJson(res, 200, { url: req.url, authorization: req.headers.authorization ?? null, bodyLength: req.body.length })
}

async function setup (t: TestContext, respond: Respond, routeExtra: Record<string, unknown> = {}) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t)
  const upstream = await recordingUpstream(t, (req, res) => respond(req, res, clock))
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl, routeExtra) } }, { now: clock.now })
  return { clock, tokens, upstream, proxy }
}

/**
 * Refuses token-1 with `status`. Time moves on while it answers, so the new
 * token is not held back by the 1 s minimum between token requests.
 */
function revoked (status = 401): Respond {
  return (req, res, clock) => {
    if (tokenOf(req) !== 'token-1') return ok(req, res)
    clock.advance(2 * SECOND)
    sendJson(res, status, { error: 'invalid_token' })
  }
}

test('a 401 for a revoked token drops it, obtains a new one and replays the request once', async (t) => {
  const s = await setup(t, revoked())
  const res = await call(`${s.proxy.url}/api/items?x=1`)
  assert.equal(res.status, 200)
  assert.equal(res.json.authorization, 'Bearer token-2', 'the client sees only the replay\'s answer')
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2'])
  assert.deepEqual(s.upstream.requests.map((r) => r.url), ['/items?x=1', '/items?x=1'])
  assert.equal(s.tokens.calls.length, 2)

  // The new token is kept for later requests.
  assert.equal((await call(`${s.proxy.url}/api/items`)).status, 200)
  assert.equal(tokenOf(s.upstream.requests.at(-1)), 'token-2')
  assert.equal(s.tokens.calls.length, 2)
})

test('a replayed POST sends the identical body bytes both times', async (t) => {
  const s = await setup(t, revoked())
  const body = JSON.stringify({ name: 'Zoë', tags: ['a', 'b'], nested: { n: 1.5, none: null }, text: 'x'.repeat(64 * 1024) })
  const res = await call(`${s.proxy.url}/api/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  assert.equal(res.status, 200)
  assert.equal(s.upstream.requests.length, 2)
  const expected = Buffer.from(body, 'utf8')
  for (const req of s.upstream.requests) {
    assert.equal(req.method, 'POST')
    assert.ok(req.body.equals(expected), `upstream got ${req.body.length} bytes, expected ${expected.length}`)
    assert.equal(req.headers['content-type'], 'application/json')
  }
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2'])
})

test('bodies up to 1 MiB are replayed intact, one after another', async (t) => {
  // Refuses the first request that carries each body, whatever token it had, so every body is replayed.
  const seen = new Set<string>()
  const s = await setup(t, (req, res, clock) => {
    const digest = createHash('sha256').update(req.body).digest('hex')
    if (seen.has(digest)) return ok(req, res)
    seen.add(digest)
    clock.advance(2 * SECOND)
    sendJson(res, 401, { error: 'invalid_token' })
  })
  const bodies = [randomBytes(1024 * 1024), randomBytes(900 * 1024), randomBytes(70 * 1024)]
  for (const body of bodies) {
    const res = await call(`${s.proxy.url}/api/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json.bodyLength, body.length)
  }
  assert.equal(s.upstream.requests.length, 2 * bodies.length, 'each body was sent, refused and replayed')
  s.upstream.requests.forEach((req, i) => {
    assert.ok(req.body.equals(bodies[Math.floor(i / 2)] as Buffer), `request ${i} carried the bytes of body ${Math.floor(i / 2)}`)
  })
})

test('when the replay is refused too, that answer is passed on: two upstream requests, no loop', async (t) => {
  const s = await setup(t, (req, res, clock) => {
    clock.advance(2 * SECOND)
    sendJson(res, 401, { error: 'invalid_token', seen: tokenOf(req) }, { 'www-authenticate': 'Bearer error="invalid_token"' })
  })
  const res = await call(`${s.proxy.url}/api/items`)
  assert.equal(res.status, 401)
  assert.deepEqual(res.json, { error: 'invalid_token', seen: 'token-2' })
  assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(s.upstream.requests.length, 2)
  assert.equal(s.tokens.calls.length, 2)
})

test('retryOn: [401, 403] replays on 403; the default [401] passes a 403 on', async (t) => {
  const s = await setup(t, revoked(403), { retryOn: [401, 403] })
  const res = await call(`${s.proxy.url}/api/items`)
  assert.equal(res.status, 200)
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2'])

  const d = await setup(t, revoked(403))
  const passed = await call(`${d.proxy.url}/api/items`)
  assert.equal(passed.status, 403)
  assert.equal(d.upstream.requests.length, 1)
  assert.equal(d.tokens.calls.length, 1)
})

test('a body over 1 MiB is not replayed: the 401 is passed on after one upstream request', async (t) => {
  const s = await setup(t, revoked())
  const body = Buffer.alloc(2 * 1024 * 1024, 'a')
  const res = await call(`${s.proxy.url}/api/upload`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body })
  assert.equal(res.status, 401)
  assert.deepEqual(res.json, { error: 'invalid_token' })
  assert.equal(s.upstream.requests.length, 1)
  assert.equal(s.upstream.requests[0]?.headers['content-length'], String(body.length))
  assert.ok(s.upstream.requests[0]?.body.equals(body), 'the whole body was streamed through')
})

test('a 401 for a body too big to replay still drops the refused token (SPEC: dropped, then replayed only if kept)', async (t) => {
  const s = await setup(t, revoked())
  const body = Buffer.alloc(2 * 1024 * 1024, 'a')
  const upload = () => call(`${s.proxy.url}/api/upload`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body })
  assert.equal((await upload()).status, 401)
  // Otherwise every large upload would keep failing with the revoked token until it expires.
  const second = await upload()
  assert.equal(second.status, 200)
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2'])
})

test('a late 401 for an old token never discards a newer one (replaced after expiry)', async (t) => {
  const held = gate()
  const s = await setup(t, async (req, res) => {
    if (tokenOf(req) === 'token-1' && req.url === '/slow') {
      await held.promise
      return sendJson(res, 401, { error: 'invalid_token' })
    }
    ok(req, res)
  })
  t.after(held.open)
  const a = call(`${s.proxy.url}/api/slow`)
  await waitFor(() => s.upstream.requests.length === 1, 'request A to reach the upstream')

  // Meanwhile token-1 expires (the laptop slept) and B gets token-2.
  s.clock.advance(2 * 3600 * SECOND)
  assert.equal((await call(`${s.proxy.url}/api/fast`)).status, 200)
  assert.equal(tokenOf(s.upstream.requests.at(-1)), 'token-2')
  assert.equal(s.tokens.calls.length, 2)

  held.open()
  const resA = await a
  assert.equal(resA.status, 200, 'A is replayed with the current token')
  assert.deepEqual(s.upstream.requests.map((r) => `${r.url} ${tokenOf(r)}`), ['/slow token-1', '/fast token-2', '/slow token-2'])
  assert.equal(s.tokens.calls.length, 2, 'token-2 was not dropped')

  assert.equal((await call(`${s.proxy.url}/api/fast`)).status, 200)
  assert.equal(tokenOf(s.upstream.requests.at(-1)), 'token-2')
  assert.equal(s.tokens.calls.length, 2)
})

test('a late 401 for an old token never discards a newer one (replaced after another request\'s 401)', async (t) => {
  const gates = { '/a': gate(), '/b': gate() }
  const s = await setup(t, async (req, res) => {
    const held = gates[req.url as keyof typeof gates]
    if (tokenOf(req) === 'token-1' && held !== undefined) {
      await held.promise
      return sendJson(res, 401, { error: 'invalid_token' })
    }
    ok(req, res)
  })
  t.after(() => { gates['/a'].open(); gates['/b'].open() })
  const a = call(`${s.proxy.url}/api/a`)
  const b = call(`${s.proxy.url}/api/b`)
  await waitFor(() => s.upstream.requests.length === 2, 'A and B to reach the upstream with token-1')

  // B's 401 comes first: token-1 is dropped and B is replayed with token-2.
  s.clock.advance(2 * SECOND)
  gates['/b'].open()
  assert.equal((await b).status, 200)
  assert.equal(s.tokens.calls.length, 2)

  // A's 401 for token-1 arrives late: token-2 must survive it.
  gates['/a'].open()
  assert.equal((await a).status, 200)
  assert.equal(s.tokens.calls.length, 2, 'token-2 was not dropped')
  assert.deepEqual(s.upstream.requests.slice(2).map((r) => `${r.url} ${tokenOf(r)}`), ['/b token-2', '/a token-2'])

  assert.equal((await call(`${s.proxy.url}/api/c`)).status, 200)
  assert.equal(tokenOf(s.upstream.requests.at(-1)), 'token-2')
  assert.equal(s.tokens.calls.length, 2)
})

test('a static key refused by the upstream is neither replayed nor dropped: the answer is passed on at once', async (t) => {
  const upstream = await recordingUpstream(t, (_req, res) => sendJson(res, 401, { error: 'invalid_key' }))
  const proxy = await startProxy(t, { routes: { api: { upstream: upstream.url, auth: { type: 'static', token: 'static-key-1234' } } } })
  for (let i = 0; i < 2; i++) {
    const started = Date.now()
    const res = await call(`${proxy.url}/api/items`)
    assert.equal(res.status, 401)
    // Dropping a static key would make the next request wait out the minimum interval between token requests.
    assert.ok(Date.now() - started < 500, `answered after ${Date.now() - started} ms`)
  }
  assert.equal(upstream.requests.length, 2, 'one upstream request per client request')
})

test('a refused token while renewal is backing off answers 503 TOKEN_UNAVAILABLE instead of crashing the process', async (t) => {
  const clock = new ManualClock()
  // token-1 lives 100 s; every later token request fails, so renewal backs off.
  const tokens = await tokenServer(t, (_call, n, res) => n === 1
    ? sendJson(res, 200, { access_token: 'token-1', expires_in: 100 })
    : sendJson(res, 500, { error: 'server_error' }))
  const upstream = await recordingUpstream(t, (req, res) => req.url.startsWith('/refuse') ? sendJson(res, 401, { error: 'invalid_token' }) : ok(req, res))
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })
  assert.equal((await call(`${proxy.url}/api/items`)).status, 200)
  // The margins push the renewal of a 100 s token earlier than refreshAhead: from 56 s (usable until 70 s).
  clock.advance(60 * SECOND)
  // Past the renewal point: this request is served with token-1 and starts a renewal that fails.
  assert.equal((await call(`${proxy.url}/api/items`)).status, 200)
  await waitFor(() => tokens.calls.length === 2, 'the background renewal')
  await waitFor(() => proxy.logs.text().includes('token_failed'), 'the failed renewal is recorded')

  const refused = await call(`${proxy.url}/api/refuse`)
  assert.equal(refused.status, 503)
  assert.equal(refused.json.error.code, 'TOKEN_UNAVAILABLE')
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  // Still alive and answering.
  assert.equal((await call(`${proxy.url}/api/items`)).status, 503)
})

test('an upstream that refuses before reading the body gets its answer passed on, never half a body replayed', async (t) => {
  const tokens = await tokenServer(t)
  const upstream = await listen(t, (_req, res) => {
    // Answers at once, without reading the request body.
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"early"}')
  })
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const body = randomBytes(900 * 1024)
  const res = await call(`${proxy.url}/api/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body })
  assert.equal(res.status, 401)
  assert.deepEqual(res.json, { error: 'early' })
})

for (const size of [100 * 1024, 2 * 1024 * 1024]) {
  test(`a refused answer with a ${size / 1024} KiB body is dropped (drained or cut) and the request replayed`, async (t) => {
    const s = await setup(t, (req, res, clock) => {
      if (tokenOf(req) !== 'token-1') return ok(req, res)
      clock.advance(2 * SECOND)
      // A big HTML error page: read to its end when small enough to keep the connection, else cut.
      res.writeHead(401, { 'content-type': 'text/html', 'content-length': String(size) })
      res.end(Buffer.alloc(size, 60))
    })
    const res = await call(`${s.proxy.url}/api/items`)
    assert.equal(res.status, 200)
    assert.equal(res.json.authorization, 'Bearer token-2', 'the client sees only the replay\'s answer')
    assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2'])
    // The proxy serves on afterwards, on whatever connection is left.
    assert.equal((await call(`${s.proxy.url}/api/after`)).status, 200)
  })
}
