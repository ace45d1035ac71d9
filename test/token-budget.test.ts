import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { test } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer, type TokenCall } from './helpers.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const SECOND = 1000

test('tokens.maxRequestsPerMinute caps token requests per token endpoint, shared by its routes', async (t) => {
  const clock = new ManualClock()
  const start = clock.ms
  // Tokens that live one second, so every request two seconds later needs a new one.
  const shortLived = (prefix: string) => (_call: TokenCall, n: number, res: ServerResponse) => {
    sendJson(res, 200, { access_token: `${prefix}-${n}`, expires_in: 1 })
  }
  const shared = await tokenServer(t, shortLived('shared'))
  const other = await tokenServer(t, shortLived('other'))
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    tokens: { maxRequestsPerMinute: 3 },
    routes: {
      a: clientCredentialsRoute(upstream.url, shared.tokenUrl),
      b: clientCredentialsRoute(upstream.url, shared.tokenUrl),
      c: clientCredentialsRoute(upstream.url, other.tokenUrl)
    }
  }, { now: clock.now })
  const get = (route: string) => call(`${proxy.url}/${route}/x`)

  assert.equal((await get('a')).status, 200)
  assert.equal((await get('b')).status, 200)
  clock.advance(2 * SECOND)
  assert.equal((await get('a')).status, 200)
  assert.equal(shared.calls.length, 3, 'the budget is spent by two routes together')

  clock.advance(2 * SECOND)
  const upstreamBefore = upstream.requests.length
  for (const route of ['b', 'a', 'b', 'a', 'b']) {
    const res = await get(route)
    assert.equal(res.status, 503, `route ${route} past the budget`)
    assert.equal(res.json?.error?.code, 'TOKEN_UNAVAILABLE')
    assert.equal(res.json.error.route, route)
    // The oldest of the three requests (at 0 s) leaves the one-minute window at 60 s.
    assert.equal(res.headers.get('retry-after'), '56')
  }
  assert.equal(shared.calls.length, 3, 'the token endpoint is not called past the budget')
  assert.equal(upstream.requests.length, upstreamBefore, 'nothing was forwarded without a token')

  // Another token endpoint has its own budget (of 3 as well).
  for (let i = 0; i < 3; i++) {
    const res = await get('c')
    assert.equal(res.status, 200, `c #${i}: ${res.text}`)
    clock.advance(2 * SECOND)
  }
  assert.equal(other.calls.length, 3)
  assert.equal(tokenOf(upstream.requests.at(-1)), 'other-3')

  clock.ms = start + 59 * SECOND
  assert.equal((await get('a')).status, 503)
  assert.equal(shared.calls.length, 3)

  // The two requests made at 0 s leave the window at 60 s: the shared endpoint is asked again.
  clock.ms = start + 60 * SECOND + 1
  assert.equal((await get('a')).status, 200)
  assert.equal(shared.calls.length, 4)
  assert.equal(tokenOf(upstream.requests.at(-1)), 'shared-4')
})

test('a spent budget names the token endpoint without its query or user-info, which may carry a key', async (t) => {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `short-${n}`, expires_in: 1 }))
  const upstream = await recordingUpstream(t)
  const keyed = tokens.tokenUrl.replace('http://', 'http://user:URL-PASSWORD-CANARY@') + '?apikey=QUERY-KEY-CANARY'
  const proxy = await startProxy(t, { tokens: { maxRequestsPerMinute: 1 }, routes: { a: clientCredentialsRoute(upstream.url, keyed) } }, { now: clock.now })
  assert.equal((await call(`${proxy.url}/a/x`)).status, 200)
  clock.advance(2 * SECOND)
  const spent = await call(`${proxy.url}/a/x`)
  assert.equal(spent.status, 503)
  assert.match(spent.json.error.message, /budget/)
  for (const canary of ['QUERY-KEY-CANARY', 'URL-PASSWORD-CANARY']) {
    assert.ok(!spent.text.includes(canary), `error body shows ${canary}`)
    assert.ok(!proxy.logs.text().includes(canary), `logs show ${canary}`)
  }
})
