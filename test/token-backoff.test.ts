import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test, type TestContext } from 'node:test'
import type { TokenBroker } from '../src/auth/broker.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, closedPortUrl, ManualClock, tokenOf, waitFor, type ProxyAnswer } from './token-lifecycle-helpers.js'

const SECOND = 1000
const CLIENT_SECRET = 'test-client-secret-value'

type Respond = (call: TokenCall, n: number, res: ServerResponse) => void | Promise<void>

async function setup (t: TestContext, endpoint: Respond | string) {
  const clock = new ManualClock()
  const tokens = typeof endpoint === 'string' ? undefined : await tokenServer(t, endpoint)
  const tokenUrl = typeof endpoint === 'string' ? endpoint : (tokens as { tokenUrl: string }).tokenUrl
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokenUrl) } }, { now: clock.now })
  const broker = proxy.brokers.get('api') as TokenBroker
  const calls = (): number => tokens?.calls.length ?? 0
  return { clock, proxy, upstream, broker, calls, get: () => call(`${proxy.url}/api/x`) }
}

function assertUnavailable (res: ProxyAnswer): number {
  assert.equal(res.status, 503)
  assert.deepEqual(Object.keys(res.json?.error ?? {}).sort(), ['code', 'message', 'route'])
  assert.equal(res.json.error.code, 'TOKEN_UNAVAILABLE')
  assert.equal(res.json.error.route, 'api')
  assert.equal(typeof res.json.error.message, 'string')
  const retryAfter = res.headers.get('retry-after')
  assert.match(retryAfter ?? '', /^[1-9]\d*$/, 'Retry-After is a positive number of seconds')
  return Number(retryAfter)
}

const transient: Array<[string, Respond | (() => Promise<string>), number?]> = [
  ['connection refused', closedPortUrl],
  ['HTTP 503', (_c, _n, res) => sendJson(res, 503, { error: 'temporarily_unavailable' })],
  ['HTTP 429 with Retry-After in seconds', (_c, _n, res) => sendJson(res, 429, { error: 'slow_down' }, { 'retry-after': '7' }), 7],
  ['an unparsable HTML answer', (_c, _n, res) => { res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Login</body></html>') }],
  ['HTTP 200 without access_token', (_c, _n, res) => sendJson(res, 200, { token_type: 'Bearer', expires_in: 3600 })]
]

for (const [name, endpoint, retryAfter] of transient) {
  test(`transient token failure (${name}) answers 503 TOKEN_UNAVAILABLE with Retry-After`, async (t) => {
    const s = await setup(t, endpoint === closedPortUrl ? await closedPortUrl() : endpoint as Respond)
    const seconds = assertUnavailable(await s.get())
    if (retryAfter !== undefined) assert.equal(seconds, retryAfter, 'the server\'s Retry-After is passed on')
    assert.equal(s.upstream.requests.length, 0)
  })
}

test('transient token failure (HTTP 429 with Retry-After as an HTTP-date) honours the date', async (t) => {
  const s = await setup(t, (_c, _n, res) => {
    sendJson(res, 429, { error: 'slow_down' }, { 'retry-after': new Date(Date.now() + 20 * SECOND).toUTCString() })
  })
  const seconds = assertUnavailable(await s.get())
  // The date has whole-second precision, so 19 or 20 s are left.
  assert.ok(seconds >= 18 && seconds <= 20, `Retry-After ${seconds} is about 20 s`)
})

test('a refused credential answers 502 TOKEN_REJECTED with the OAuth error, never the client secret', async (t) => {
  const s = await setup(t, (c, _n, res) => {
    // A careless server that echoes what it was sent.
    const sent = Buffer.from((c.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8')
    sendJson(res, 401, { error: 'invalid_client', error_description: `Client authentication failed for ${sent}` })
  })
  const res = await s.get()
  assert.equal(res.status, 502)
  assert.equal(res.json?.error?.code, 'TOKEN_REJECTED')
  assert.equal(res.json.error.route, 'api')
  assert.match(res.json.error.message, /invalid_client/)
  assert.match(res.json.error.message, /Client authentication failed for test-client:/)
  assert.ok(!res.text.includes(CLIENT_SECRET), 'the secret is not in the answer')
  assert.ok(!s.proxy.logs.text().includes(CLIENT_SECRET), 'the secret is not in the logs')
  assert.equal(s.upstream.requests.length, 0)
})

test('during the backoff further requests do not reach the token endpoint', async (t) => {
  const s = await setup(t, (_c, _n, res) => sendJson(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '30' }))
  assert.equal(assertUnavailable(await s.get()), 30)
  assert.equal(s.calls(), 1)

  const burst = await Promise.all(Array.from({ length: 20 }, () => s.get()))
  for (const res of burst) assert.equal(assertUnavailable(res), 30)
  s.clock.advance(10 * SECOND)
  for (let i = 0; i < 10; i++) assert.equal(assertUnavailable(await s.get()), 20, 'Retry-After counts down')
  assert.equal(s.calls(), 1)

  s.clock.advance(20 * SECOND + 1)
  assertUnavailable(await s.get())
  assert.equal(s.calls(), 2, 'asked again once the server\'s Retry-After has passed')
})

test('a refused credential is not retried in a loop either', async (t) => {
  const s = await setup(t, (_c, _n, res) => sendJson(res, 401, { error: 'invalid_client' }))
  assert.equal((await s.get()).status, 502)
  for (let i = 0; i < 20; i++) {
    const res = await s.get()
    assert.equal(res.status, 502)
    assert.equal(res.json?.error?.code, 'TOKEN_REJECTED')
  }
  assert.equal(s.calls(), 1)
})

test('retries back off exponentially', async (t) => {
  const s = await setup(t, (_c, _n, res) => sendJson(res, 503, { error: 'temporarily_unavailable' }))
  const waits: number[] = []
  for (let failure = 1; failure <= 6; failure++) {
    assertUnavailable(await s.get())
    assert.equal(s.calls(), failure)
    // Right after a failure, the Retry-After of the next request is the whole backoff.
    waits.push(assertUnavailable(await s.get()))
    assert.equal(s.calls(), failure)
    s.clock.advance(120 * SECOND)
  }
  // Equal jitter: failure k waits between 2^(k-2) and 2^(k-1) s.
  assert.ok((waits[5] as number) >= 16 && (waits[5] as number) <= 32, `sixth backoff ${waits[5]} s`)
  assert.ok((waits[5] as number) > (waits[0] as number) * 4, `backoff grows: ${waits.join(', ')}`)
})

/** A token for 300 s: renewal from 240 s, usable until 270 s, expired at 300 s. */
async function withFailingRenewal (t: TestContext, failure: Record<string, string>) {
  let failing = false
  const s = await setup(t, (_c, n, res) => {
    if (failing) sendJson(res, 503, { error: 'temporarily_unavailable' }, failure)
    else sendJson(res, 200, { access_token: `token-${n}`, expires_in: 300 })
  })
  const start = s.clock.ms
  const sendAt = async (seconds: number): Promise<ProxyAnswer & { token: string | undefined }> => {
    s.clock.ms = start + seconds * SECOND
    const before = s.upstream.requests.length
    const res = await s.get()
    return { ...res, token: s.upstream.requests.length > before ? tokenOf(s.upstream.requests.at(-1)) : undefined }
  }
  assert.equal((await sendAt(0)).token, 'token-1')
  failing = true
  return { ...s, sendAt }
}

test('a still-usable token keeps being served while its renewal fails (during the backoff), never inside its minValidity margin', async (t) => {
  const s = await withFailingRenewal(t, { 'retry-after': '60' })
  const inWindow = await s.sendAt(241)
  assert.equal(inWindow.status, 200)
  assert.equal(inWindow.token, 'token-1')
  await waitFor(() => s.broker.status().lastError !== undefined, 'the background renewal to fail')
  assert.equal(s.calls(), 2)

  for (const at of [245, 255, 265, 269]) {
    const res = await s.sendAt(at)
    assert.equal(res.status, 200, `served at ${at} s`)
    assert.equal(res.token, 'token-1', `old token at ${at} s`)
  }
  // minValidity before expiry the token stops being usable, renewal failing or not.
  for (const at of [271, 285, 299]) {
    const res = await s.sendAt(at)
    assert.ok(assertUnavailable(res) <= 60, `Retry-After within the server's at ${at} s`)
    assert.equal(res.token, undefined, `nothing sent at ${at} s`)
  }
  assert.equal(s.calls(), 2, 'no token request inside the server\'s Retry-After')
})

test('a still-usable token keeps being served while its renewal fails (after the backoff), never inside its minValidity margin', async (t) => {
  const s = await withFailingRenewal(t, {})
  const inWindow = await s.sendAt(241)
  assert.equal(inWindow.status, 200)
  assert.equal(inWindow.token, 'token-1')
  await waitFor(() => s.broker.status().lastError !== undefined, 'the background renewal to fail')

  // Each step is past the backoff, so the broker tries again and fails again.
  for (const at of [244, 252, 262]) {
    const res = await s.sendAt(at)
    assert.equal(res.status, 200, `served at ${at} s (got ${res.status} ${res.text})`)
    assert.equal(res.token, 'token-1', `old token at ${at} s`)
  }
  assert.ok(s.calls() >= 3, 'renewal was retried')

  // Inside the margin it is not sent, and once expired never either.
  for (const at of [271, 301]) {
    const res = await s.sendAt(at)
    assertUnavailable(res)
    assert.equal(res.token, undefined, `nothing sent at ${at} s`)
  }
})
