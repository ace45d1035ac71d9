import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { SignJWT } from 'jose'
import type { TokenBroker } from '../src/auth/broker.js'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, ManualClock, tokenOf } from './token-lifecycle-helpers.js'

const SECOND = 1000
const DAY = 24 * 3600 * SECOND
const MIN_VALIDITY = 30
/** Distinct from every lifetime below, so a test can tell which source was used. */
const DEFAULT_TTL = 900
const JWT_KEY = new TextEncoder().encode('token-expiry-test-signing-key-0123456789')

/** Each answer's fields beyond access_token; `jwtExp` makes the access token a JWT with that exp. */
interface Answer {
  fields?: Record<string, unknown>
  jwtExp?: (clock: ManualClock) => number
}

async function setup (t: TestContext, answer: Answer) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, async (_call, n, res) => {
    const accessToken = answer.jwtExp === undefined
      ? `token-${n}`
      : await new SignJWT({ n }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(answer.jwtExp(clock)).sign(JWT_KEY)
    sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', ...answer.fields })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, {
    tokens: { minValidity: MIN_VALIDITY, defaultTtl: DEFAULT_TTL },
    routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) }
  }, { now: clock.now })
  const broker = proxy.brokers.get('api') as TokenBroker
  const start = clock.ms
  /** One request through the proxy; returns the token the upstream got. */
  const send = async (): Promise<string | undefined> => {
    const res = await call(`${proxy.url}/api/x`)
    assert.equal(res.status, 200)
    return tokenOf(upstream.requests.at(-1))
  }
  return { clock, tokens, upstream, broker, start, send }
}

/**
 * The token is reused within its lifetime and replaced once less than
 * minValidity is left (but before it has expired). No request falls into the
 * refresh-ahead window, so the replacement is the blocking one.
 */
async function assertLifetime (s: Awaited<ReturnType<typeof setup>>, lifetimeSeconds: number): Promise<void> {
  const first = await s.send()
  assert.equal(s.tokens.calls.length, 1)
  assert.equal(s.broker.status().expiresAt, s.start + lifetimeSeconds * SECOND)

  s.clock.advance(lifetimeSeconds * SECOND / 2)
  assert.equal(await s.send(), first, 'reused halfway through its lifetime')
  assert.equal(s.tokens.calls.length, 1)

  s.clock.ms = s.start + (lifetimeSeconds - MIN_VALIDITY + 1) * SECOND
  const second = await s.send()
  assert.notEqual(second, first, 'replaced inside the minValidity margin')
  assert.equal(s.tokens.calls.length, 2)
}

test('numeric expires_in sets the expiry', async (t) => {
  await assertLifetime(await setup(t, { fields: { expires_in: 3600 } }), 3600)
})

test('expires_in as a numeric string sets the expiry', async (t) => {
  await assertLifetime(await setup(t, { fields: { expires_in: '3600' } }), 3600)
})

test('without expires_in, the JWT exp claim sets the expiry', async (t) => {
  await assertLifetime(await setup(t, { jwtExp: (clock) => clock.seconds + 1800 }), 1800)
})

test('without expires_in or a JWT exp, tokens.defaultTtl sets the expiry', async (t) => {
  await assertLifetime(await setup(t, {}), DEFAULT_TTL)
})

test('expires_in 0 or negative is treated as absent', async (t) => {
  await assertLifetime(await setup(t, { fields: { expires_in: 0 } }), DEFAULT_TTL)
  await assertLifetime(await setup(t, { fields: { expires_in: -60 } }), DEFAULT_TTL)
  // Absent, so the next source (the JWT exp) decides.
  await assertLifetime(await setup(t, { fields: { expires_in: 0 }, jwtExp: (clock) => clock.seconds + 1200 }), 1200)
})

test('an absurd expires_in is capped: the token is still renewed within a year', async (t) => {
  const s = await setup(t, { fields: { expires_in: 1e12 } })
  const first = await s.send()
  const expiresAt = s.broker.status().expiresAt as number
  assert.ok(expiresAt <= s.start + 365 * DAY, `expiry within a year (got ${(expiresAt - s.start) / DAY} days)`)

  s.clock.advance(366 * DAY)
  const next = await s.send()
  assert.notEqual(next, first)
  assert.equal(s.tokens.calls.length, 2)
})

test('after the wall clock jumps past expiry (laptop sleep), the next request gets a new token, never the expired one', async (t) => {
  const s = await setup(t, { fields: { expires_in: 3600 } })
  assert.equal(await s.send(), 'token-1')

  // No request ran in between, so no renewal could have happened before the jump.
  s.clock.advance(8 * 3600 * SECOND)
  assert.equal(await s.send(), 'token-2')
  assert.equal(await s.send(), 'token-2')
  assert.deepEqual(s.upstream.requests.map(tokenOf), ['token-1', 'token-2', 'token-2'])
  assert.equal(s.tokens.calls.length, 2)
})
