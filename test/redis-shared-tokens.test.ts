import assert from 'node:assert/strict'
import { test } from 'node:test'
import { recordingUpstream, sendJson, startProxy, tokenServer, type TestProxy } from './helpers.js'
import { allKeys, startRedis } from './redis-helpers.js'
import { call, tokenOf } from './token-lifecycle-helpers.js'

const PROXIES = 5
const BURST_PER_PROXY = 20
const SEED = 'rt-seed-CANARY-5e1d'
const PREFIX = 'bp-shared:'
/** Short-lived tokens renewed after half their life (1 s): the run spans several renewals. */
const LIFETIME_S = 2
const RENEWAL_PERIOD_MS = 1000
const RUN_MS = 5000

/**
 * Five proxies (five processes' worth: each with its own Redis client) share
 * one Redis store. A provider that rotates the refresh token on every use and
 * refuses any but the latest (RFC 9700 §4.14.2) would turn a refresh token
 * presented twice into a dead route; five independent renewals would cost five
 * token requests each time. They must share one token instead.
 */
test('five proxies on one Redis: a cold burst makes one token request, each renewal one more, and no refresh token is presented twice', async (t) => {
  const redis = await startRedis(t)
  const presented: string[] = []
  let latest = SEED
  let issued = 0
  let refused = 0
  const tokens = await tokenServer(t, async (c, _n, res) => {
    const refreshToken = c.form.get('refresh_token') ?? ''
    presented.push(refreshToken)
    // Slow enough that the whole burst arrives while the first request is in flight.
    await new Promise((resolve) => setTimeout(resolve, 100))
    if (c.form.get('grant_type') !== 'refresh_token' || refreshToken !== latest) {
      refused++
      return sendJson(res, 400, { error: 'invalid_grant', error_description: 'refresh token reused or unknown' })
    }
    issued++
    latest = `rt-${issued}`
    sendJson(res, 200, { access_token: `access-${issued}`, token_type: 'Bearer', expires_in: LIFETIME_S, refresh_token: latest })
  })
  const upstream = await recordingUpstream(t)
  const config = {
    store: { type: 'redis', url: redis.url, keyPrefix: PREFIX },
    tokens: { minValidity: 0.5, refreshAhead: 0.5 },
    routes: {
      api: { upstream: upstream.url, auth: { type: 'refresh_token', tokenUrl: tokens.tokenUrl, clientId: 'rt-client', clientSecret: 'rt-client-secret-value', refreshToken: SEED, timeout: 5000 } }
    }
  }
  const proxies: TestProxy[] = []
  for (let i = 0; i < PROXIES; i++) proxies.push(await startProxy(t, config))

  // Cold: every proxy at once, many requests each.
  const burst = await Promise.all(proxies.flatMap((proxy) => Array.from({ length: BURST_PER_PROXY }, async (_, i) => await call(`${proxy.url}/api/cold/${i}`))))
  assert.deepEqual(burst.filter((r) => r.status !== 200).map((r) => r.text), [], 'every request of the burst succeeded')
  assert.equal(tokens.calls.length, 1, 'one token request for the whole cold burst')
  assert.deepEqual(new Set(upstream.requests.map(tokenOf)), new Set(['access-1']))

  // Traffic on all five for several token lifetimes: the renewals run on each proxy's timer.
  const started = Date.now()
  const statuses: number[] = []
  for (let i = 0; Date.now() - started < RUN_MS && i < 10_000; i++) {
    const proxy = proxies[i % PROXIES] as TestProxy
    statuses.push((await call(`${proxy.url}/api/item/${i}`)).status)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const elapsed = Date.now() - started
  // A renewal may be on its way as the traffic stops: wait (bounded) until the token server has answered every call.
  const requestedLines = (): number => proxies.reduce((n, p) => n + p.logs.lines.filter((l) => l.event === 'token_obtained' || l.event === 'token_refreshed' || l.event === 'token_renewed').length, 0)
  for (const until = Date.now() + 5000; (issued + refused < tokens.calls.length || requestedLines() < tokens.calls.length) && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 20))

  assert.ok(statuses.length > 50, `traffic ran (${statuses.length} requests)`)
  assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every request succeeded')
  assert.deepEqual(presented.filter((rt, i) => presented.indexOf(rt) !== i), [], `no refresh token presented twice: ${presented.join(' ')}`)
  assert.equal(presented[0], SEED, 'the first request spent the configured refresh token')
  assert.equal(refused, 0, 'no token request was refused')
  assert.equal(tokens.calls.length, issued, 'every token request was answered with a token')
  const renewals = tokens.calls.length - 1
  assert.ok(renewals >= 3, `several renewals happened (${renewals})`)
  // One renewal per period at most (+1 for timing): five proxies renewing each on their own would make five.
  const most = Math.ceil(elapsed / RENEWAL_PERIOD_MS) + 1
  assert.ok(renewals <= most, `${renewals} renewals in ${elapsed} ms: at most ${most}`)
  // Each token request was made (and logged) by exactly one proxy; the others took its token from Redis.
  const requested = proxies.flatMap((p) => p.logs.lines.filter((l) => l.event === 'token_obtained' || l.event === 'token_refreshed' || l.event === 'token_renewed'))
  assert.equal(requested.length, tokens.calls.length, 'one process per token request')
  const adopted = proxies.flatMap((p) => p.logs.lines.filter((l) => l.event === 'token_adopted'))
  assert.ok(adopted.length >= (PROXIES - 1) * renewals, `the others adopted each token (${adopted.length})`)
  assert.ok(upstream.requests.every((r) => /^access-\d+$/.test(tokenOf(r) ?? '')), 'only issued tokens went upstream')

  // Every key the proxies wrote starts with the prefix: the entry and the store's secret.
  const keys = await allKeys(redis.raw)
  assert.ok(keys.length >= 2, keys.join(' '))
  assert.deepEqual(keys.filter((k) => !k.startsWith(PREFIX)), [])
  assert.ok(keys.includes(`${PREFIX}secret`))
  assert.ok(keys.some((k) => /^bp-shared:api:[0-9a-f]{64}$/.test(k)), keys.join(' '))
})
