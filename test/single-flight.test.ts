import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, countArrivals, gate, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const CONCURRENCY = 200

test('concurrent requests without a token cause exactly one token request and all use its token', async (t) => {
  const release = gate()
  const tokens = await tokenServer(t, async (_call, n, res) => {
    // Hold the answer until every client request is inside the proxy, so all of them find no token.
    await release.promise
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } })
  const arrivals = countArrivals(proxy)

  const answers = Array.from({ length: CONCURRENCY }, (_, i) => call(`${proxy.url}/api/item/${i}`))
  await waitFor(() => arrivals.count === CONCURRENCY, `${CONCURRENCY} requests to reach the proxy`, 5000)
  // Let the last arrivals reach their preHandler before the token comes back.
  await new Promise((resolve) => setTimeout(resolve, 50))
  release.open()
  const results = await Promise.all(answers)

  assert.equal(tokens.calls.length, 1)
  assert.deepEqual(results.filter((r) => r.status !== 200), [])
  assert.equal(upstream.requests.length, CONCURRENCY)
  assert.deepEqual(new Set(upstream.requests.map(tokenOf)), new Set(['token-1']))
})

test('a failed shared token request fails every waiter promptly, and is retried after the backoff', async (t) => {
  const clock = new ManualClock()
  const release = gate()
  let failing = true
  const tokens = await tokenServer(t, async (_call, n, res) => {
    if (failing) {
      await release.promise
      sendJson(res, 500, { error: 'server_error' }, { 'retry-after': '5' })
      return
    }
    sendJson(res, 200, { access_token: `token-${n}`, token_type: 'Bearer', expires_in: 3600 })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })
  const arrivals = countArrivals(proxy)

  const waiters = 50
  const started = Date.now()
  const answers = Array.from({ length: waiters }, () => call(`${proxy.url}/api/x`))
  await waitFor(() => arrivals.count === waiters, `${waiters} requests to reach the proxy`, 5000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  release.open()
  const results = await Promise.all(answers)
  const elapsed = Date.now() - started

  assert.equal(tokens.calls.length, 1, 'the waiters share one token request')
  assert.ok(elapsed < 2000, `waiters answered within 2 s (took ${elapsed} ms)`)
  for (const r of results) {
    assert.equal(r.status, 503)
    assert.equal(r.json?.error?.code, 'TOKEN_UNAVAILABLE')
    assert.equal(r.headers.get('retry-after'), '5')
  }
  assert.equal(upstream.requests.length, 0)

  // Still inside the server's Retry-After: the failure is served without asking again.
  failing = false
  clock.advance(2000)
  const during = await call(`${proxy.url}/api/x`)
  assert.equal(during.status, 503)
  assert.equal(during.json?.error?.code, 'TOKEN_UNAVAILABLE')
  assert.equal(during.headers.get('retry-after'), '3')
  assert.equal(tokens.calls.length, 1)

  // Past it, the failure is not cached: the next request asks again and succeeds.
  clock.advance(3001)
  const after = await call(`${proxy.url}/api/x`)
  assert.equal(after.status, 200)
  assert.equal(tokens.calls.length, 2)
  assert.equal(tokenOf(upstream.requests.at(-1)), 'token-2')
})
