import assert from 'node:assert/strict'
import { test } from 'node:test'
import { neverUsable, renewAt, usableUntil } from '../src/auth/renewal-policy.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const SECOND = 1000
const T0 = 1_700_000_000_000

/** [lifetime s, minValidity s, refreshAhead, usable until s, renewal from s]: times after the token was obtained. */
const TABLE: Array<[number, number, number, number, number]> = [
  [3600, 30, 0.8, 3570, 2880],
  [300, 30, 0.8, 270, 240],
  [150, 30, 0.8, 120, 120],
  // refreshAhead's point (80 s) falls after the token stops being usable (70 s): renewal starts earlier, not the margin later.
  [100, 30, 0.8, 70, 56],
  [60, 30, 0.8, 30, 24],
  [6, 1, 0.95, 5, 4.75],
  [31, 30, 0.5, 1, 0.5],
  [10, 0, 0.5, 10, 5],
  // Shorter than the margin: never usable by it, due for renewal at once (the 1 s minimum interval paces it).
  [30, 30, 0.8, 0, 0],
  [1, 30, 0.8, -29, 0],
  [0, 30, 0.8, -30, 0]
]

test('usable until minValidity before expiry, never later; renewal at refreshAhead, or earlier for a short-lived token', () => {
  for (const [lifetime, minValidity, refreshAhead, usable, renew] of TABLE) {
    const token = { obtainedAt: T0, expiresAt: T0 + lifetime * SECOND }
    const margins = { minValidity, refreshAhead }
    const row = `lifetime ${lifetime} s, minValidity ${minValidity} s, refreshAhead ${refreshAhead}`
    assert.equal(usableUntil(token, margins), T0 + usable * SECOND, `usable until: ${row}`)
    assert.equal(renewAt(token, margins), T0 + renew * SECOND, `renewal from: ${row}`)
    assert.equal(neverUsable(token, margins), usable <= 0, `never usable: ${row}`)
  }
})

test('for any lifetime and margins, the renewal point is never after the token stops being usable, nor before it was obtained', () => {
  for (const lifetime of [0, 0.5, 1, 2, 5, 6, 10, 29, 30, 31, 45, 59, 60, 61, 100, 150, 300, 3600, 86_400]) {
    for (const minValidity of [0, 1, 5, 30, 120]) {
      for (const refreshAhead of [0.01, 0.5, 0.8, 0.95, 0.99]) {
        const token = { obtainedAt: T0, expiresAt: T0 + lifetime * SECOND }
        const margins = { minValidity, refreshAhead }
        const usable = usableUntil(token, margins)
        const renew = renewAt(token, margins)
        const row = `lifetime ${lifetime} s, minValidity ${minValidity} s, refreshAhead ${refreshAhead}`
        assert.equal(usable, token.expiresAt - minValidity * SECOND, `the margin is never shrunk: ${row}`)
        assert.ok(renew >= T0, `renewal not before the token was obtained: ${row}`)
        if (usable > T0) assert.ok(renew <= usable, `renewal starts while the token is usable: ${row}`)
        if (T0 + lifetime * refreshAhead * SECOND <= usable) assert.equal(renew, T0 + lifetime * refreshAhead * SECOND, `refreshAhead of the lifetime when that is in time: ${row}`)
      }
    }
  }
  const forever = { obtainedAt: T0, expiresAt: Infinity }
  assert.equal(usableUntil(forever, { minValidity: 30, refreshAhead: 0.8 }), Infinity)
  assert.equal(renewAt(forever, { minValidity: 30, refreshAhead: 0.8 }), Infinity, 'a key that never expires is never renewed')
})

test('a short-lived token is never sent inside its minValidity margin: the margin covers the time the token endpoint took', async (t) => {
  const clock = new ManualClock()
  const LIFETIME = 6
  const ENDPOINT_MS = 300
  /** Per token, when it really expires: counted from when the endpoint issued it, before its answer took 300 ms to arrive. */
  const realExpiry = new Map<string, number>()
  const tokens = await tokenServer(t, (_call, n, res) => {
    realExpiry.set(`token-${n}`, clock.ms + LIFETIME * SECOND)
    clock.advance(ENDPOINT_MS)
    sendJson(res, 200, { access_token: `token-${n}`, expires_in: LIFETIME })
  })
  /** Per upstream request, ms its token had left by its real expiry. */
  const left: number[] = []
  const upstream = await recordingUpstream(t, (req, res) => {
    left.push((realExpiry.get(tokenOf(req) ?? '') ?? -Infinity) - clock.ms)
    sendJson(res, 200, { ok: true })
  })
  const proxy = await startProxy(t, {
    tokens: { minValidity: 1, refreshAhead: 0.95 },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  }, { now: clock.now })

  // 20 s of requests 100 ms apart: three renewals and more.
  for (let i = 0; i < 200; i++) {
    const res = await call(`${proxy.url}/api/x`)
    assert.equal(res.status, 200, res.text)
    clock.advance(100)
  }
  assert.equal(upstream.requests.length, 200)
  assert.ok(tokens.calls.length >= 4, `tokens were renewed (${tokens.calls.length} token requests)`)
  // minValidity (1 s) less the endpoint's 300 ms, less up to 300 ms more that a renewal in flight
  // moves this test's clock between the proxy sending a request and the upstream reading it.
  const least = Math.min(...left)
  assert.ok(least >= SECOND - 2 * ENDPOINT_MS, `every token reached the upstream well before it expired; the least time left was ${least} ms`)
})

test('a 100 s token is not sent in its last 30 s (the default minValidity), whatever share refreshAhead leaves', async (t) => {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, (_call, n, res) => sendJson(res, 200, { access_token: `token-${n}`, expires_in: 100 }))
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })
  assert.equal((await call(`${proxy.url}/api/x`)).status, 200)
  clock.advance(75 * SECOND)
  assert.equal((await call(`${proxy.url}/api/x`)).status, 200)
  assert.deepEqual(upstream.requests.map(tokenOf), ['token-1', 'token-2'], '25 s before expiry token-1 is not sent')
})
