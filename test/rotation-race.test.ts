import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, countArrivals, gate, ManualClock, tokenOf, waitFor } from './token-lifecycle-helpers.js'

const CONCURRENCY = 50
const LIFETIME_S = 300

/**
 * A server that rotates refresh tokens and refuses any but the latest (as
 * RFC 9700 §4.14.2 recommends) punishes a proxy that races itself: two
 * refreshes with the same token would get one of them refused, or worse,
 * the whole token family revoked.
 */
test('requests arriving together at expiry cause exactly one refresh, and the rotated refresh token is the only one used afterwards', async (t) => {
  const clock = new ManualClock()
  let latest = 'rt-0'
  let issued = 0
  let hold: ReturnType<typeof gate> | undefined
  const tokens = await tokenServer(t, async (c, _n, res) => {
    // Every refresh waits here while the test lets all client requests pile up.
    await hold?.promise
    const sent = c.form.get('refresh_token')
    if (c.form.get('grant_type') !== 'refresh_token' || sent !== latest) {
      sendJson(res, 400, { error: 'invalid_grant', error_description: 'refresh token reused or unknown' })
      return
    }
    issued++
    latest = `rt-${issued}`
    sendJson(res, 200, { access_token: `access-${issued}`, token_type: 'Bearer', expires_in: LIFETIME_S, refresh_token: latest })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    routes: { api: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: tokens.tokenUrl, clientId: 'rt-client', clientSecret: 'rt-client-secret', refreshToken: 'rt-0' } } }
  }, { now: clock.now })
  const arrivals = countArrivals(proxy)

  const first = await call(`${proxy.url}/api/warm-up`)
  assert.equal(first.status, 200)
  assert.equal(tokenOf(upstream.requests[0]), 'access-1')

  for (const round of [2, 3]) {
    // Past expiry, with no request in between: none could have refreshed in the background.
    clock.advance((LIFETIME_S + 60) * 1000)
    hold = gate()
    const before = { calls: tokens.calls.length, arrivals: arrivals.count, upstream: upstream.requests.length }
    const answers = Array.from({ length: CONCURRENCY }, async (_, i) => await call(`${proxy.url}/api/item/${round}-${i}`))
    await waitFor(() => arrivals.count === before.arrivals + CONCURRENCY, `${CONCURRENCY} requests to reach the proxy`, 5000)
    await waitFor(() => tokens.calls.length > before.calls, 'the refresh to start', 2000)
    // Let the last arrivals reach their preHandler before the refresh comes back.
    await new Promise((resolve) => setTimeout(resolve, 50))
    hold.open()
    const results = await Promise.all(answers)

    assert.equal(tokens.calls.length, before.calls + 1, `round ${round}: exactly one refresh`)
    assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => r.text), [], `round ${round}: every request succeeded`)
    const sent = upstream.requests.slice(before.upstream)
    assert.equal(sent.length, CONCURRENCY)
    assert.deepEqual(new Set(sent.map(tokenOf)), new Set([`access-${round}`]), `round ${round}: all with the new token`)
  }

  // rt-0 configured, rt-1 and rt-2 rotated in: each sent once, in order, never refused.
  assert.deepEqual(tokens.calls.map((c) => c.form.get('refresh_token')), ['rt-0', 'rt-1', 'rt-2'])
  assert.equal(issued, 3, 'no refresh was refused')
  assert.ok(!proxy.logs.lines.some((l) => l.event === 'refresh_refused' || l.event === 'token_failed'), 'no refused or failed token request was logged')
})
