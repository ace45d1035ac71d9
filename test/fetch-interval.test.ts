import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { SignJWT } from 'jose'
import { clientCredentialsRoute, recordingUpstream, sendJson, startProxy, tokenServer } from './helpers.js'
import { call, ManualClock } from './token-lifecycle-helpers.js'

const REQUESTS = 50
/** 50 requests 20 ms apart on the broker's clock: one second. */
const STEP_MS = 20
/** Real time allowed for the whole run; a fetch loop paced at 1 s per request would blow it. */
const BUDGET_MS = 3000
const JWT_KEY = new TextEncoder().encode('fetch-interval-test-signing-key-0123456789')

async function run (t: TestContext, accessToken: (n: number, clock: ManualClock) => Promise<Record<string, unknown>>) {
  const clock = new ManualClock()
  const tokens = await tokenServer(t, async (_call, n, res) => {
    sendJson(res, 200, { token_type: 'Bearer', ...await accessToken(n, clock) })
  })
  const upstream = await recordingUpstream(t)
  const proxy = await startProxy(t, { routes: { api: clientCredentialsRoute(upstream.url, tokens.tokenUrl) } }, { now: clock.now })

  const statuses: number[] = []
  const started = Date.now()
  // Stops early once the outcome is decided: a loop paced at one fetch per second per request would take 50 s.
  for (let i = 0; i < REQUESTS && tokens.calls.length <= 2 && Date.now() - started < BUDGET_MS; i++) {
    statuses.push((await call(`${proxy.url}/api/x`)).status)
    clock.advance(STEP_MS)
  }
  const elapsed = Date.now() - started
  assert.ok(tokens.calls.length >= 1 && tokens.calls.length <= 2, `at most 2 token requests (got ${tokens.calls.length} for ${statuses.length} requests in ${elapsed} ms)`)
  assert.equal(statuses.length, REQUESTS, `all ${REQUESTS} requests done within ${BUDGET_MS} ms (only ${statuses.length} in ${elapsed} ms)`)
  assert.deepEqual(statuses.filter((s) => s !== 200), [])
  assert.equal(upstream.requests.length, REQUESTS)
}

test('a token with expires_in 1 (shorter than minValidity) does not cause a fetch loop', async (t) => {
  await run(t, async (n) => ({ access_token: `token-${n}`, expires_in: 1 }))
})

test('a JWT whose exp is already past does not cause a fetch loop', async (t) => {
  await run(t, async (n, clock) => ({
    access_token: await new SignJWT({ n }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(clock.seconds - 60).sign(JWT_KEY)
  }))
})
